//! Root-key rotation: a new root key (or new shares) for the same vault.
//!
//! The root key wraps the key ring (KEKs, index secrets, the audit signing key) and
//! proves itself through the canary; it never touches data directly. Rotating it
//! re-wraps every key-ring entry under the new key and replaces the canary, in one
//! transaction guarded by the old canary (two rotations at once: one wins). Nothing
//! else changes: DEKs, ciphertext, index digests and audit rows stay as they are.
//!
//! Access-token hashes were keyed by a key derived from the root key; so that every
//! token stays valid, that key becomes a key-ring entry of its own, wrapped by the new
//! root key. Running servers keep working (their keys are in memory); a server
//! started afterwards needs the new key or shares.

use strongbox_crypto::{KeyRingEntry, RootKey};
use strongbox_store::{KeyRow, Store, StoreError, WriteOp};

use crate::clock::{Clock, SystemClock};
use crate::error::OpenError;
use crate::kinds::KeyKind;
use crate::vault::{DEFAULT_TENANT, token_entry};

/// Re-wraps the key ring of `store` from `old` to `new`, and sets (or, with `None`,
/// removes) the `meta` entries that say how the new key is kept: its shares'
/// configuration, or a key service's ciphertext of it.
pub async fn rotate_root_key(
    store: &Store,
    old: &RootKey,
    new: &RootKey,
    entries: Vec<(String, Option<Vec<u8>>)>,
) -> Result<(), OpenError> {
    let meta = store.meta().await?;
    if !old.check_canary(&meta.canary) {
        return Err(OpenError::WrongRootKey);
    }
    let tenant = DEFAULT_TENANT;
    let rows = store.keys(tenant).await?;
    let mut keys = Vec::with_capacity(rows.len() + 1);
    for row in &rows {
        let entry = KeyRingEntry {
            tenant,
            kind: &row.kind,
            version: row.version,
        };
        keys.push(KeyRow {
            wrapped: new.rewrap(old, &entry, &row.wrapped)?,
            ..row.clone()
        });
    }
    let mut added = Vec::new();
    if !rows.iter().any(|r| r.kind == KeyKind::TokenHasher.name()) {
        added.push(KeyRow {
            kind: KeyKind::TokenHasher.name().to_string(),
            version: 1,
            wrapped: new
                .wrapper()
                .wrap_token_hasher(&token_entry(tenant), &old.token_hasher())?,
            created: SystemClock.now(),
        });
    }
    let mut ops = vec![WriteOp::Rekey {
        tenant: tenant.to_string(),
        expected_canary: meta.canary,
        canary: new.make_canary()?,
        keys,
        added,
        meta: entries,
    }];
    // Every other tenant's ring, in the same commit.
    let others = crate::tenants::store_keys(store)
        .await
        .map_err(|_| OpenError::KeyRing("the tenant registry is unreadable"))?;
    for other in others {
        let rows = store.keys(&other).await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = KeyRingEntry {
                tenant: &other,
                kind: &row.kind,
                version: row.version,
            };
            keys.push(KeyRow {
                wrapped: new.rewrap(old, &entry, &row.wrapped)?,
                ..row.clone()
            });
        }
        ops.push(WriteOp::RewrapRing {
            tenant: other,
            keys,
        });
    }
    let op = WriteOp::Atomic(ops);
    match store.write(op).await {
        Ok(()) => Ok(()),
        Err(StoreError::Stale) => Err(OpenError::KeyRing(
            "the root key or the key ring changed meanwhile (another rotation, a KEK added or retired); nothing was changed: run it again",
        )),
        Err(e) => Err(e.into()),
    }
}
