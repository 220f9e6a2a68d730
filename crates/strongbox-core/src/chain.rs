//! The tamper-evident audit chain: sealing, signed checkpoints, and the vault's
//! signing key.
//!
//! Events are written by the requests they record, in the same commit as the change
//! (see `audit.rs`), as before: the chain costs a request nothing. A *sealer* then
//! links committed events into the tenant's chain, in the order it finds them: every
//! Strongbox node runs one, and they agree through the chain head row (a sealer whose
//! head moved underneath it starts over), so any number of nodes on one database
//! produce one order. Event ids come from the database and may become visible out of
//! order (a transaction that took id 7 can commit after the one that took id 8); the
//! sealer remembers the ids it has not seen yet (`gaps`) and seals them when they
//! appear, giving up on an id after [`GAP_TTL`] seconds (its transaction rolled back).
//!
//! Every link covers the stored event — metadata and the *ciphertext* of its detail
//! — so erasing a subject later leaves the chain verifiable. Checkpoints sign a chain
//! head with the vault's Ed25519 key (a key-ring entry wrapped by the root key, like
//! the KEKs); its public key is stored in plain text so that the verifier needs no
//! secret.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use strongbox_crypto::{
    ChainEvent, SignedKind, VaultSigner, chain_genesis, chain_link, checkpoint_message,
    event_digest,
};
use strongbox_store::{AuditHead, AuditRow, CheckpointRow, SealRow, StoreError, WriteOp};

use crate::error::{Error, Result};
use crate::kinds::Action;
use crate::principal::Principal;
use crate::vault::Vault;

/// Events linked by one sealing pass at most.
pub const SEAL_BATCH: usize = 2000;
/// Seconds after which an id never seen is given up: its transaction rolled back
/// (on PostgreSQL and MariaDB a refused insert still uses up its id). A transaction
/// that commits its event later than this leaves the event unsealed, and the
/// verifier reports it.
pub const GAP_TTL: i64 = 120;
/// Ids waited for at most; beyond that the oldest are given up.
const MAX_GAPS: usize = 10_000;

/// The digest of a stored event, as the chain covers it.
pub fn row_digest(row: &AuditRow) -> [u8; 32] {
    let e = &row.event;
    event_digest(&ChainEvent {
        tenant: &row.tenant,
        atoken: &e.atoken,
        at: e.at,
        actor: &e.actor,
        action: &e.action,
        record: e.record.as_deref(),
        status: &e.status,
        app: e.app.as_deref(),
        detail: e.detail.as_deref(),
        classes: e.classes.as_deref(),
        name: e.name.as_deref(),
    })
}

/// JSON with object keys sorted and no whitespace: the bytes that signatures over
/// JSON documents (receipts, reports) cover, whatever order a client keeps keys in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A signed JSON statement: `{"<name>": body, "signature": hex}`.
pub(crate) fn signed(signer: &VaultSigner, kind: SignedKind, name: &str, body: Value) -> Value {
    let sig = signer.sign(kind, canonical_json(&body).as_bytes());
    let mut out = Map::new();
    out.insert(name.into(), body);
    out.insert("signature".into(), Value::from(hex::encode(sig)));
    Value::Object(out)
}

/// A checkpoint as served and as the verifier reads it from a file.
pub fn checkpoint_json(tenant: &str, c: &CheckpointRow, public_key: &[u8]) -> Value {
    json!({
        "tenant": tenant,
        "seq": c.seq,
        "hash": hex::encode(&c.hash),
        "at": c.at,
        "algorithm": "ed25519",
        "publickey": hex::encode(public_key),
        "signature": hex::encode(&c.signature),
    })
}

/// Where the chain stands after sealing.
#[derive(Clone, Debug)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// The sealer's progress, for `/v1/metrics`.
pub struct ChainStats {
    /// Position of the last sealed event.
    pub sealed: AtomicI64,
    /// Sealing passes that failed.
    pub failures: AtomicU64,
}

pub static CHAIN_STATS: ChainStats = ChainStats {
    sealed: AtomicI64::new(0),
    failures: AtomicU64::new(0),
};

impl Vault {
    /// Links every committed, unsealed event of the tenant into its chain.
    pub async fn seal_audit(&self) -> Result<ChainHead> {
        loop {
            let (head, more) = match self.seal_pass().await {
                Ok(r) => r,
                Err(e) => {
                    CHAIN_STATS.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            CHAIN_STATS.sealed.store(head.seq, Ordering::Relaxed);
            if !more {
                return Ok(head);
            }
        }
    }

    /// One pass: up to [`SEAL_BATCH`] events. Says whether there may be more.
    async fn seal_pass(&self) -> Result<(ChainHead, bool)> {
        for _ in 0..16 {
            let current = self.store.audit_head(&self.tenant).await?;
            let (mut seq, mut hash, max_id, gaps, version) = match &current {
                Some(h) => (
                    h.seq,
                    h.hash.clone(),
                    h.max_id,
                    h.gaps.clone(),
                    Some(h.version),
                ),
                None => (0, chain_genesis(&self.tenant).to_vec(), 0, Vec::new(), None),
            };
            let now = self.now();
            // Late arrivals first: ids that were missing when later ones were sealed,
            // looked up together. An id missing for longer than GAP_TTL is given up
            // (its transaction rolled back).
            let ids: Vec<i64> = gaps.iter().map(|(id, _)| *id).collect();
            // Event ids are one sequence over every tenant, and a gap is told from
            // another tenant's event only by seeing that event: these reads go
            // through the unscoped handle (row-level security would hide the other
            // tenants' rows and make every one of them a gap).
            let found = self.registry.audit_by_ids(&ids).await?;
            let mut waiting: Vec<(i64, i64)> = gaps
                .iter()
                .filter(|(id, since)| {
                    now - since < GAP_TTL && found.binary_search_by_key(id, |r| r.id).is_err()
                })
                .copied()
                .collect();
            let fresh = self.registry.audit_after(max_id, SEAL_BATCH).await?;
            let mut new_max = max_id;
            for row in &fresh {
                // Ids skipped so far may belong to transactions still committing —
                // on the very first pass too (events can be in flight then). On a
                // store upgraded with a long history the skipped ids are old
                // rollbacks; they expire after GAP_TTL.
                let from = (new_max + 1).max(row.id - MAX_GAPS as i64);
                if from > new_max + 1 {
                    tracing::warn!(
                        skipped = from - new_max - 1,
                        "audit ids jumped; not waiting for the skipped ones"
                    );
                }
                waiting.extend((from..row.id).map(|id| (id, now)));
                new_max = row.id;
            }
            if waiting.len() > MAX_GAPS {
                let drop = waiting.len() - MAX_GAPS;
                tracing::warn!(drop, "too many missing audit ids; giving up the oldest");
                waiting.drain(..drop);
            }
            let mut seals = Vec::new();
            for row in found.iter().chain(&fresh) {
                if row.tenant != self.tenant {
                    continue;
                }
                seq += 1;
                let link = chain_link(&hash, seq, &row_digest(row));
                hash = link.to_vec();
                seals.push(SealRow {
                    seq,
                    audit_id: row.id,
                    hash: hash.clone(),
                });
            }
            let head = ChainHead {
                seq,
                hash: hash.clone(),
            };
            if fresh.is_empty() && found.is_empty() && waiting == gaps {
                return Ok((head, false));
            }
            let op = WriteOp::Seal {
                tenant: self.tenant.clone(),
                expected_version: version,
                seals,
                head: AuditHead {
                    seq,
                    hash,
                    max_id: new_max,
                    gaps: waiting,
                    version: version.map_or(1, |v| v + 1),
                },
            };
            match self.store.write(op).await {
                Ok(()) => return Ok((head, fresh.len() == SEAL_BATCH)),
                // Another node sealed meanwhile: start over from its head.
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("sealing the audit chain kept racing"))
    }

    /// The public key that verifies the vault's checkpoints and receipts.
    pub fn public_key(&self) -> [u8; 32] {
        self.keys.signer().public_key()
    }

    /// The public key as lowercase hex, as every document and endpoint shows it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// Seals what is pending and signs the chain head (root only; the sweeper too).
    pub async fn checkpoint_audit(&self, who: &Principal) -> Result<Value> {
        who.require_root()?;
        let head = self.seal_audit().await?;
        let at = self.now();
        let msg = checkpoint_message(&self.tenant, head.seq, &head.hash, at);
        let row = CheckpointRow {
            seq: head.seq,
            hash: head.hash,
            at,
            signature: self
                .keys
                .signer()
                .sign(SignedKind::Checkpoint, &msg)
                .to_vec(),
        };
        let mut ops = vec![WriteOp::Checkpoint {
            tenant: self.tenant.clone(),
            checkpoint: row.clone(),
        }];
        if !matches!(who, Principal::System) {
            ops.push(WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(who, Action::CheckpointSign, None, "ok"),
            });
        }
        match self.store.write(WriteOp::Atomic(ops)).await {
            // Another node signed this very position at the same moment.
            Ok(()) | Err(StoreError::Stale) => {}
            Err(e) => return Err(e.into()),
        }
        // The checkpoint stored at this position (an earlier one if there was).
        let stored = self
            .store
            .audit_checkpoints(&self.tenant)
            .await?
            .into_iter()
            .find(|c| c.seq == row.seq)
            .unwrap_or(row);
        Ok(checkpoint_json(&self.tenant, &stored, &self.public_key()))
    }

    /// The newest checkpoint, if any. Public information, like the public key.
    pub async fn latest_checkpoint(&self) -> Result<Option<Value>> {
        let all = self.store.audit_checkpoints(&self.tenant).await?;
        Ok(all
            .last()
            .map(|c| checkpoint_json(&self.tenant, c, &self.public_key())))
    }

    /// Signs a periodic checkpoint if the chain moved since the last one.
    pub async fn periodic_checkpoint(&self) -> Result<()> {
        let head = self.seal_audit().await?;
        let last = self.store.audit_checkpoints(&self.tenant).await?;
        if last.last().is_some_and(|c| c.seq == head.seq) {
            return Ok(());
        }
        self.checkpoint_audit(&Principal::System).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":"é\""}],"c":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[{"y":"é\"","z":1}]},"b":1}"#
        );
    }
}
