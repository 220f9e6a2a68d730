//! The audit-chain verifier: needs no key, only read access to a store.
//!
//! It recomputes every event's digest from the stored row, checks each link against
//! its predecessor, and compares the chain with the sealer's head and with signed
//! checkpoints — those in the store and one kept elsewhere (an external witness).
//! What it finds is named precisely: an event modified, deleted, inserted or
//! reordered; the tail truncated; a checkpoint that no longer matches.
//!
//! A chain hash needs no key, so someone who can write to the database can rewrite
//! the events after the last checkpoint *and* recompute their links; only a signed
//! checkpoint newer than the change (ideally copied off the box) reveals that. The
//! verifier says how far the checkpoints reach.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use strongbox_crypto::{
    SignedKind, chain_genesis, chain_link, checkpoint_message, verify_signature,
};
use strongbox_store::{AuditHead, SealRow, Store, StoreError};

use crate::chain::row_digest;
use crate::keys::public_key_name;
use crate::kinds::Action;

/// Rows read per query.
const PAGE: usize = 5000;
/// Broken links compared pairwise to recognise swaps, at most.
const MAX_PAIRING: usize = 2000;

/// Parses JSON refusing duplicate object keys: a signed document with two values
/// for one key could be read one way by the verifier and another way by a reader.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v.0)
}

struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = a.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = a.next_key::<String>()? {
            let Strict(v) = a.next_value()?;
            if out.insert(k.clone(), v).is_some() {
                return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
            }
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// A checkpoint kept outside the store (`GET /v1/audit/checkpoint`, saved to a file).
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub tenant: String,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: i64,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// Reads a checkpoint document: the object itself, or the endpoint's whole answer.
    pub fn from_json(v: &Value) -> Result<Checkpoint, String> {
        let c = v.get("checkpoint").unwrap_or(v);
        let text = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the checkpoint has no `{k}`"))
        };
        let bytes =
            |k: &str| text(k).and_then(|t| hex::decode(t).map_err(|_| format!("`{k}` is not hex")));
        let int = |k: &str| {
            c.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("the checkpoint has no integer `{k}`"))
        };
        Ok(Checkpoint {
            tenant: text("tenant")?.to_string(),
            seq: int("seq")?,
            hash: bytes("hash")?,
            at: int("at")?,
            public_key: bytes("publickey")?,
            signature: bytes("signature")?,
        })
    }

    fn signature_ok(&self, public_key: &[u8]) -> bool {
        let msg = checkpoint_message(&self.tenant, self.seq, &self.hash, self.at);
        verify_signature(public_key, SignedKind::Checkpoint, &msg, &self.signature)
    }
}

/// One problem the verifier found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The event at `seq` no longer matches its link.
    Modified { seq: i64, id: i64, atoken: String },
    /// The event at `seq` (row `id`) is gone.
    Deleted { seq: i64, id: i64 },
    /// The link at `seq` is gone (with its event, or the event is unlinked).
    LinkMissing { seq: i64 },
    /// The events at `a` and `b` changed places.
    Reordered { a: i64, b: i64 },
    /// Row `id` is in no link although the sealer has passed it.
    Inserted { id: i64, atoken: String },
    /// The chain ends at `last`, but `source` shows it reached `expected`.
    Truncated {
        last: i64,
        expected: i64,
        source: String,
    },
    /// `source` records a different hash at `seq` than the chain has.
    Diverged { seq: i64, source: String },
    /// A checkpoint's signature does not verify.
    BadSignature { seq: i64, source: String },
    /// The external checkpoint was signed by another key than the store's.
    KeyMismatch,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Modified { seq, id, atoken } => write!(
                f,
                "MODIFIED: the event at seq {seq} (row {id}, event {atoken}) does not match its link"
            ),
            Finding::Deleted { seq, id } => {
                write!(f, "DELETED: the event at seq {seq} (row {id}) is missing")
            }
            Finding::LinkMissing { seq } => {
                write!(
                    f,
                    "DELETED: the link at seq {seq} is missing from the chain"
                )
            }
            Finding::Reordered { a, b } => {
                write!(
                    f,
                    "REORDERED: the events at seq {a} and seq {b} are swapped"
                )
            }
            Finding::Inserted { id, atoken } => write!(
                f,
                "INSERTED: row {id} (event {atoken}) is not in the chain although the sealer passed it"
            ),
            Finding::Truncated {
                last,
                expected,
                source,
            } => write!(
                f,
                "TRUNCATED: the chain ends at seq {last}, but {source} shows it reached seq {expected}"
            ),
            Finding::Diverged { seq, source } => write!(
                f,
                "DIVERGED: {source} records another chain hash at seq {seq}: events at or before it were changed"
            ),
            Finding::BadSignature { seq, source } => {
                write!(
                    f,
                    "FORGED: the signature of {source} at seq {seq} does not verify"
                )
            }
            Finding::KeyMismatch => write!(
                f,
                "KEY: the store's public key is not the one given (pinned key or external checkpoint): the key or the store was replaced"
            ),
        }
    }
}

/// What the verifier saw.
#[derive(Debug, Default)]
pub struct Verification {
    pub tenant: String,
    /// Links in the chain.
    pub sealed: i64,
    /// Events not sealed yet (after the sealer's position): fine on a live store.
    pub pending: usize,
    /// Checkpoints whose signature and hash both verified (stored and external).
    pub checkpoints: usize,
    /// The newest position a verified checkpoint covers.
    pub anchored: i64,
    /// Whether signatures were checked with a key from outside the store.
    pub key_pinned: bool,
    pub findings: Vec<Finding>,
}

/// Why a verification did not succeed: the document or chain does not verify, or
/// the check could not be made (the store failed). Verifiers exit 1 for the first
/// and 2 for the second, so a database outage is never reported as forgery.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for VerifyError {
    fn from(why: String) -> Self {
        VerifyError::Invalid(why)
    }
}

impl From<&str> for VerifyError {
    fn from(why: &str) -> Self {
        VerifyError::Invalid(why.to_string())
    }
}

fn store_err(e: StoreError) -> VerifyError {
    VerifyError::Unavailable(format!("the store could not be read: {e}"))
}

/// Verifies `tenant`'s chain in `store`, and against `external` if given.
///
/// `pinned` is the vault's public key as kept outside the store: without it (or an
/// external checkpoint, which carries its key) the key stored beside the chain is
/// trusted, and someone able to replace both could re-sign a rewritten chain.
pub async fn verify_chain(
    store: &Store,
    tenant: &str,
    external: Option<&Checkpoint>,
    pinned: Option<&[u8]>,
) -> Result<Verification, VerifyError> {
    let mut out = Verification {
        tenant: tenant.to_string(),
        ..Verification::default()
    };
    // The head first: on a live store, whatever is sealed after this read counts as
    // pending, never as inserted.
    let head = store.audit_head(tenant).await.map_err(store_err)?;
    // Checkpoints before links too: the links read next reach at least as far.
    let stored = store.audit_checkpoints(tenant).await.map_err(store_err)?;
    // Links, in order.
    let mut links: Vec<SealRow> = Vec::new();
    loop {
        let after = links.last().map_or(0, |l| l.seq);
        let page = store
            .audit_seals(tenant, after, PAGE)
            .await
            .map_err(store_err)?;
        let done = page.len() < PAGE;
        links.extend(page);
        if done {
            break;
        }
    }
    let index: HashMap<i64, usize> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.audit_id, i))
        .collect();
    // Every event row: its digest goes to its link; unlinked rows are collected.
    let mut digests: Vec<Option<([u8; 32], String)>> = vec![None; links.len()];
    let mut unlinked = Vec::new();
    // From the very first id: a row slipped in below the first real one counts too.
    let mut after = i64::MIN;
    loop {
        let page = store.audit_after(after, PAGE).await.map_err(store_err)?;
        let done = page.len() < PAGE;
        for row in &page {
            after = row.id;
            if row.tenant != tenant {
                continue;
            }
            match index.get(&row.id) {
                Some(&i) => digests[i] = Some((row_digest(row), row.event.atoken.clone())),
                None => unlinked.push((row.id, row.event.atoken.clone())),
            }
        }
        if done {
            break;
        }
    }
    check_links(tenant, &links, &digests, &mut out);
    out.sealed = links.last().map_or(0, |l| l.seq);
    check_unlinked(head.as_ref(), &unlinked, &mut out);
    let hash_at = |seq: i64| -> Option<Vec<u8>> {
        if seq == 0 {
            return Some(chain_genesis(tenant).to_vec());
        }
        links
            .binary_search_by_key(&seq, |l| l.seq)
            .ok()
            .map(|i| links[i].hash.clone())
    };
    if let Some(h) = &head {
        compare(h.seq, &h.hash, "the chain head", &hash_at, &mut out);
    }
    // Signed checkpoints: in the store, then the external one, each checked with the
    // pinned key if there is one.
    let stored_key = store
        .meta_value(&public_key_name(tenant))
        .await
        .map_err(store_err)?;
    let trusted = pinned
        .map(<[u8]>::to_vec)
        .or_else(|| external.map(|x| x.public_key.clone()));
    if let Some(t) = &trusted
        && stored_key.as_deref() != Some(t.as_slice())
    {
        out.findings.push(Finding::KeyMismatch);
    }
    out.key_pinned = trusted.is_some();
    let public_key = trusted.or(stored_key);
    let mut candidates: Vec<(Checkpoint, &str)> = stored
        .into_iter()
        .map(|c| {
            (
                Checkpoint {
                    tenant: tenant.to_string(),
                    seq: c.seq,
                    hash: c.hash,
                    at: c.at,
                    public_key: public_key.clone().unwrap_or_default(),
                    signature: c.signature,
                },
                "the stored checkpoint",
            )
        })
        .collect();
    if let Some(x) = external {
        if x.tenant != tenant {
            return Err(VerifyError::Invalid(format!(
                "the checkpoint is of tenant `{}`, not `{tenant}`",
                x.tenant
            )));
        }
        if public_key.as_deref() != Some(x.public_key.as_slice())
            && !out.findings.contains(&Finding::KeyMismatch)
        {
            out.findings.push(Finding::KeyMismatch);
        }
        candidates.push((x.clone(), "the external checkpoint"));
    }
    for (c, source) in &candidates {
        if !c.signature_ok(&c.public_key) {
            out.findings.push(Finding::BadSignature {
                seq: c.seq,
                source: source.to_string(),
            });
            continue;
        }
        if compare(c.seq, &c.hash, source, &hash_at, &mut out) {
            out.checkpoints += 1;
            out.anchored = out.anchored.max(c.seq);
        }
    }
    Ok(out)
}

/// Checks that the chain has `hash` at `seq` as `source` says; true if so.
fn compare(
    seq: i64,
    hash: &[u8],
    source: &str,
    hash_at: &dyn Fn(i64) -> Option<Vec<u8>>,
    out: &mut Verification,
) -> bool {
    match hash_at(seq) {
        Some(h) if h == hash => true,
        Some(_) => {
            out.findings.push(Finding::Diverged {
                seq,
                source: source.to_string(),
            });
            false
        }
        None if seq > out.sealed => {
            let f = Finding::Truncated {
                last: out.sealed,
                expected: seq,
                source: source.to_string(),
            };
            if !out
                .findings
                .iter()
                .any(|x| matches!(x, Finding::Truncated { .. }))
            {
                out.findings.push(f);
            }
            false
        }
        // The link itself is missing; already reported.
        None => false,
    }
}

/// The chain hash before link `i`: the genesis value, or the stored hash of the link
/// at the previous position (`None` if that link is missing).
fn prev_hash<'a>(genesis: &'a [u8], links: &'a [SealRow], i: usize) -> Option<&'a [u8]> {
    if links[i].seq == 1 {
        return Some(genesis);
    }
    i.checked_sub(1)
        .map(|p| &links[p])
        .filter(|p| p.seq == links[i].seq - 1)
        .map(|p| p.hash.as_slice())
}

fn check_links(
    tenant: &str,
    links: &[SealRow],
    digests: &[Option<([u8; 32], String)>],
    out: &mut Verification,
) {
    let genesis = chain_genesis(tenant).to_vec();
    let mut broken = Vec::new();
    let mut deleted = Vec::new();
    let mut expected = 1;
    for (i, link) in links.iter().enumerate() {
        for seq in expected..link.seq {
            out.findings.push(Finding::LinkMissing { seq });
        }
        expected = link.seq + 1;
        let prev = prev_hash(&genesis, links, i);
        let Some((digest, _)) = &digests[i] else {
            deleted.push(i);
            continue;
        };
        // After a missing link the chain cannot be checked across the hole; it
        // resumes from the next link's stored hash.
        if let Some(prev) = prev
            && chain_link(prev, link.seq, digest).as_slice() != link.hash.as_slice()
        {
            broken.push(i);
        }
    }
    // Deleted events at the very end are a truncated tail.
    let tail = deleted
        .iter()
        .rev()
        .zip((0..links.len()).rev())
        .take_while(|(d, i)| *d == i)
        .count();
    if tail > 0 {
        let first = deleted[deleted.len() - tail];
        out.findings.push(Finding::Truncated {
            last: first.checked_sub(1).map_or(0, |p| links[p].seq),
            expected: links[links.len() - 1].seq,
            source: "its own last links (their events are gone)".into(),
        });
    }
    for &i in &deleted[..deleted.len() - tail] {
        out.findings.push(Finding::Deleted {
            seq: links[i].seq,
            id: links[i].audit_id,
        });
    }
    // Two broken links whose events fit each other's place: a swap.
    let fits = |at: usize, from: usize| -> bool {
        let (Some(prev), Some((d, _))) = (prev_hash(&genesis, links, at), &digests[from]) else {
            return false;
        };
        chain_link(prev, links[at].seq, d).as_slice() == links[at].hash.as_slice()
    };
    let mut paired = HashSet::new();
    if broken.len() <= MAX_PAIRING {
        for (x, &i) in broken.iter().enumerate() {
            if paired.contains(&i) {
                continue;
            }
            for &j in &broken[x + 1..] {
                if !paired.contains(&j) && fits(i, j) && fits(j, i) {
                    out.findings.push(Finding::Reordered {
                        a: links[i].seq,
                        b: links[j].seq,
                    });
                    paired.insert(i);
                    paired.insert(j);
                    break;
                }
            }
        }
    }
    for &i in &broken {
        if !paired.contains(&i) {
            out.findings.push(Finding::Modified {
                seq: links[i].seq,
                id: links[i].audit_id,
                atoken: digests[i]
                    .as_ref()
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default(),
            });
        }
    }
}

fn check_unlinked(head: Option<&AuditHead>, unlinked: &[(i64, String)], out: &mut Verification) {
    for (id, atoken) in unlinked {
        let pending = match head {
            None => true,
            Some(h) => *id > h.max_id || h.gaps.iter().any(|(g, _)| g == id),
        };
        if pending {
            out.pending += 1;
        } else {
            out.findings.push(Finding::Inserted {
                id: *id,
                atoken: atoken.clone(),
            });
        }
    }
}

/// What checking a receipt established.
#[derive(Debug)]
pub struct ReceiptCheck {
    pub subject: String,
    pub erased: i64,
    /// Position of the erasure event, when a store was given and holds it.
    pub chain_seq: Option<i64>,
}

/// Finds `{"receipt": {...}, "signature": "..."}` in a receipt document: the pair
/// itself, or an API answer that carries it (`DELETE /v1/user/…`,
/// `GET /v1/audit/receipt/…`).
fn signed_pair<'a>(doc: &'a Value, name: &str) -> Option<(&'a Value, &'a str)> {
    if let (Some(body), Some(sig)) = (
        doc.get(name).filter(|v| v.is_object()),
        doc.get("signature").and_then(Value::as_str),
    ) {
        return Some((body, sig));
    }
    doc.get(name).and_then(|inner| signed_pair(inner, name))
}

/// A public key given as hex, or as the `GET /v1/audit/publickey` answer.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let hex_text = match serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
    {
        Some(v) => v
            .get("publickey")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or("the JSON has no `publickey`")?,
        None => text.to_string(),
    };
    let key = hex::decode(hex_text.trim()).map_err(|_| "the public key is not hex")?;
    if key.len() != 32 {
        return Err("an Ed25519 public key is 32 bytes (64 hex characters)".into());
    }
    Ok(key)
}

/// Checks a receipt's signature with `public_key` (or the store's key) and, given a
/// store, that its chain holds the erasure event at the position the receipt names.
pub async fn verify_receipt(
    doc: &Value,
    public_key: Option<&[u8]>,
    store: Option<&Store>,
) -> Result<ReceiptCheck, VerifyError> {
    // An access report is checked the same way: its signature, and that the chain
    // head it is anchored to is in the chain.
    let (kind, receipt, signature) = match signed_pair(doc, "receipt") {
        Some((r, s)) => (SignedKind::Receipt, r, s),
        None => {
            let (r, s) = signed_pair(doc, "report")
                .ok_or("no signed receipt or access report in this document")?;
            (SignedKind::Report, r, s)
        }
    };
    let text = |k: &str| receipt.get(k).and_then(Value::as_str).unwrap_or("");
    let tenant = text("tenant").to_string();
    let subject = text("subject").to_string();
    let stored_key = match store {
        Some(s) => s
            .meta_value(&public_key_name(&tenant))
            .await
            .map_err(store_err)?,
        None => None,
    };
    let key = match (public_key, &stored_key) {
        (Some(k), Some(s)) if k != s.as_slice() => {
            return Err("the given public key is not the store's".into());
        }
        (Some(k), _) => k.to_vec(),
        (None, Some(s)) => s.clone(),
        (None, None) => return Err("no public key: give one, or a store that has it".into()),
    };
    if hex::decode(text("publickey")).ok().as_deref() != Some(key.as_slice()) {
        return Err("the receipt names another signing key than the one given".into());
    }
    let sig = hex::decode(signature).map_err(|_| "the signature is not hex")?;
    let msg = crate::chain::canonical_json(receipt);
    if !verify_signature(&key, kind, msg.as_bytes(), &sig) {
        return Err("the signature does not verify: the document was altered or forged".into());
    }
    let mut check = ReceiptCheck {
        subject: subject.clone(),
        erased: receipt
            .get("erased")
            .or(receipt.get("generated"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        chain_seq: None,
    };
    let Some(store) = store else {
        return Ok(check);
    };
    if kind == SignedKind::Report {
        let chain = &receipt["chain"];
        let seq = chain["seq"]
            .as_i64()
            .ok_or("the report names no chain position")?;
        let hash = if seq == 0 {
            Some(chain_genesis(&tenant).to_vec())
        } else {
            store
                .audit_seals(&tenant, seq - 1, 1)
                .await
                .map_err(store_err)?
                .into_iter()
                .find(|l| l.seq == seq)
                .map(|l| l.hash)
        };
        if hash.map(hex::encode).as_deref() != chain["hash"].as_str() {
            return Err(VerifyError::Invalid(format!(
                "the audit chain does not have the report's hash at seq {seq}"
            )));
        }
        check.chain_seq = Some(seq);
        return Ok(check);
    }
    let audit = &receipt["audit"];
    let seq = audit["seq"]
        .as_i64()
        .ok_or("the receipt names no chain position")?;
    let link = store
        .audit_seals(&tenant, seq - 1, 1)
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|l| l.seq == seq)
        .ok_or(format!("the audit chain has no link at seq {seq}"))?;
    if hex::encode(&link.hash) != audit["chain"].as_str().unwrap_or("") {
        return Err(VerifyError::Invalid(format!(
            "the audit chain's hash at seq {seq} is not the receipt's"
        )));
    }
    let row = store
        .audit_by_id(link.audit_id)
        .await
        .map_err(store_err)?
        .ok_or(format!("the event at seq {seq} is missing from the store"))?;
    let e = &row.event;
    if e.atoken != audit["event"].as_str().unwrap_or("")
        || e.record.as_deref() != Some(subject.as_str())
        || !e
            .name
            .as_deref()
            .and_then(Action::from_name)
            .map_or_else(|| e.action.starts_with("delete user"), Action::is_erasure)
    {
        return Err(VerifyError::Invalid(format!(
            "the event at seq {seq} is not this subject's erasure"
        )));
    }
    check.chain_seq = Some(seq);
    Ok(check)
}
