//! The key ring of one tenant, unwrapped: its KEKs, blind-index secrets and signing
//! key, and the wrapping key that adds new entries. The one holder of key material in
//! memory: services ask it for what they need (the KEK that wraps new DEKs, KEK
//! version n, the index secrets) and never hold keys of their own. Loaded when the
//! vault opens; every node keeps it current with `reload` (every 500 ms), which takes
//! in versions any node added and drops retired ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use strongbox_crypto::{IndexSecret, Kek, KeyRingEntry, KeyWrapper, SecretKey, VaultSigner};
use strongbox_store::{IndexEntry, KeyRow, Store, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, OpenError, Result};
use crate::kinds::KeyKind;

/// The KEKs of a tenant: every version still in the key ring, and the one that
/// wraps new DEKs.
pub(crate) struct KekSet {
    pub current: i64,
    pub all: HashMap<i64, Arc<Kek>>,
    /// When this node took each version in (Unix seconds; at start: its creation).
    pub created: HashMap<i64, i64>,
    /// The store has a KEK this node cannot open: it wraps no new DEKs.
    pub stale: bool,
}

/// Seconds after its creation before a new KEK wraps new DEKs: every node reloads
/// the key ring more often than that, so none ever meets a DEK under a KEK it has not
/// loaded yet.
pub const KEK_ACTIVATION: i64 = 2;

impl KekSet {
    /// The newest version old enough to be active (the oldest one if none is).
    pub(crate) fn pick_current(&mut self, now: i64) {
        let oldest = self.all.keys().copied().min().unwrap_or(0);
        self.current = self
            .created
            .iter()
            .filter(|(v, t)| self.all.contains_key(v) && **t <= now - KEK_ACTIVATION)
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(oldest);
    }
}

/// The blind-index secrets of a tenant.
#[derive(Default)]
pub(crate) struct IndexSet {
    /// Every version in the key ring: one, or two while a rotation runs.
    pub all: BTreeMap<i64, Arc<IndexSecret>>,
    /// When this node took each version in (Unix seconds; at start: its creation).
    pub loaded: HashMap<i64, i64>,
    /// The newest version active on this node: the backfill's target, and the key
    /// of new pending consents.
    pub current: i64,
    /// Every version this node has was retired, and it cannot open the one that
    /// replaced them (it runs on an old root key): it must not look up or write
    /// index entries until restarted.
    pub stale: bool,
}

impl IndexSet {
    pub(crate) fn insert(&mut self, version: i64, secret: IndexSecret, loaded: i64) {
        self.all.insert(version, Arc::new(secret));
        self.loaded.insert(version, loaded);
    }

    /// The newest version loaded [`KEK_ACTIVATION`] seconds ago or more (the oldest
    /// one if none is).
    pub(crate) fn pick_current(&mut self, now: i64) {
        let oldest = self.oldest();
        self.current = self
            .loaded
            .iter()
            .filter(|(v, t)| self.all.contains_key(v) && **t <= now - KEK_ACTIVATION)
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(oldest);
    }

    pub(crate) fn oldest(&self) -> i64 {
        self.all.keys().next().copied().unwrap_or(0)
    }

    /// The entries of a normalized value in index `name`, one per version.
    pub(crate) fn entries(&self, name: &'static str, normalized: &str) -> Result<Vec<IndexEntry>> {
        self.usable()?;
        Ok(self
            .all
            .values()
            .map(|s| entry(s, name, normalized))
            .collect())
    }

    /// The digests of a normalized value in index `name`, newest version first.
    pub(crate) fn digests(&self, name: &str, normalized: &str) -> Result<Vec<Vec<u8>>> {
        self.usable()?;
        Ok(self
            .all
            .values()
            .rev()
            .map(|s| s.index_key(name).digest(normalized).to_vec())
            .collect())
    }

    pub(crate) fn usable(&self) -> Result<()> {
        if self.stale {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the key ring has an index key this server cannot open: restart it with the current root key",
            ));
        }
        Ok(())
    }
}

pub(crate) fn entry(secret: &IndexSecret, name: &'static str, normalized: &str) -> IndexEntry {
    IndexEntry {
        name,
        digest: secret.index_key(name).digest(normalized).to_vec(),
        key_version: secret.version,
    }
}

/// The `meta` entry holding a tenant's public verification key.
pub fn public_key_name(tenant: &str) -> String {
    format!("audit_public_key/{tenant}")
}

/// Loads the tenant's signing key, creating it on first use (a store initialized
/// before the chain existed, or a fresh one): a random seed wrapped by the root key,
/// and its public key in `meta`. Two nodes racing both end up with the winner's key.
async fn signing_key(
    store: &Store,
    wrap: &KeyWrapper,
    tenant: &str,
    rows: &[KeyRow],
    now: i64,
) -> std::result::Result<VaultSigner, OpenError> {
    let entry = KeyRingEntry {
        tenant,
        kind: KeyKind::Signing.name(),
        version: 1,
    };
    let published = store.meta_value(&public_key_name(tenant)).await?;
    // The key and its public key are added in one commit: a public key without the
    // key in `rows` may be one another opener (a node, or a background job opening
    // the same tenant) added after `rows` was read, so the ring is read again then.
    let again;
    let rows = if published.is_some() && !rows.iter().any(|r| r.kind == KeyKind::Signing.name()) {
        again = store.keys(tenant).await?;
        again.as_slice()
    } else {
        rows
    };
    if let Some(row) = rows.iter().find(|r| r.kind == KeyKind::Signing.name()) {
        let signer = VaultSigner::new(&wrap.unwrap(&entry, &row.wrapped)?);
        // The public key verifiers read must be this key's: a replaced one would let
        // someone with database access re-sign a rewritten chain.
        if published.as_deref() != Some(signer.public_key().as_slice()) {
            return Err(OpenError::KeyRing(
                "the stored audit public key is not the signing key's (was it replaced?)",
            ));
        }
        return Ok(signer);
    }
    // A missing key with a published public key or checkpoints means it was removed:
    // refuse rather than quietly start a new one.
    if published.is_some() || !store.audit_checkpoints(tenant).await?.is_empty() {
        return Err(OpenError::KeyRing(
            "the audit signing key is missing although checkpoints were signed with it",
        ));
    }
    let seed = SecretKey::generate()?;
    let signer = VaultSigner::new(&seed);
    let op = WriteOp::AddKey {
        tenant: tenant.to_string(),
        key: KeyRow {
            kind: KeyKind::Signing.name().to_string(),
            version: 1,
            wrapped: wrap.wrap(&entry, &seed)?,
            created: now,
        },
        meta: vec![(public_key_name(tenant), signer.public_key().to_vec())],
    };
    match store.write(op).await {
        Ok(()) => Ok(signer),
        Err(StoreError::Duplicate(_)) => {
            let rows = store.keys(tenant).await?;
            let row = rows
                .iter()
                .find(|r| r.kind == KeyKind::Signing.name())
                .ok_or(OpenError::KeyRing("the signing key vanished"))?;
            Ok(VaultSigner::new(&wrap.unwrap(&entry, &row.wrapped)?))
        }
        Err(e) => Err(e.into()),
    }
}

/// The unwrapped keys of one tenant.
pub(crate) struct Keys {
    tenant: String,
    keks: RwLock<KekSet>,
    /// Wraps new key-ring entries (a new KEK) while the vault runs.
    wrapper: KeyWrapper,
    /// Blind-index secrets: one version, or two while a rotation runs.
    index: RwLock<IndexSet>,
    /// Signs audit checkpoints, erasure receipts and access reports.
    signer: VaultSigner,
}

impl Keys {
    /// The tenant's key ring from its `rows`, with its signing key (made on first use).
    pub(crate) async fn open(
        store: &Store,
        wrap: &KeyWrapper,
        tenant: &str,
        rows: &[KeyRow],
        now: i64,
    ) -> std::result::Result<Keys, OpenError> {
        let signer = signing_key(store, wrap, tenant, rows, now).await?;
        Keys::load(wrap, tenant, rows, signer, now)
    }

    /// Unwraps `tenant`'s key-ring `rows` with `wrap` (the root key's wrapping key). A ring without a KEK or an index
    /// secret, or with an entry of an unknown kind, is refused.
    pub(crate) fn load(
        wrap: &KeyWrapper,
        tenant: &str,
        rows: &[KeyRow],
        signer: VaultSigner,
        now: i64,
    ) -> std::result::Result<Keys, OpenError> {
        let mut keks = KekSet {
            current: 0,
            all: HashMap::new(),
            created: HashMap::new(),
            stale: false,
        };
        let mut index = IndexSet::default();
        for row in rows {
            let entry = KeyRingEntry {
                tenant,
                kind: &row.kind,
                version: row.version,
            };
            let key = wrap.unwrap(&entry, &row.wrapped)?;
            match KeyKind::parse(&row.kind) {
                Some(KeyKind::Kek) => {
                    keks.all
                        .insert(row.version, Arc::new(Kek::new(row.version, key)));
                    keks.created.insert(row.version, row.created);
                }
                Some(KeyKind::Index) => {
                    index.insert(row.version, IndexSecret::new(row.version, key), row.created)
                }
                Some(KeyKind::Signing | KeyKind::TokenHasher) => {}
                None => return Err(OpenError::KeyRing("unknown key kind")),
            }
        }
        if keks.all.is_empty() {
            return Err(OpenError::KeyRing("no KEK"));
        }
        if index.all.is_empty() {
            return Err(OpenError::KeyRing("no index secret"));
        }
        keks.pick_current(now);
        index.pick_current(now);
        Ok(Keys {
            tenant: tenant.to_string(),
            keks: RwLock::new(keks),
            wrapper: wrap.clone(),
            index: RwLock::new(index),
            signer,
        })
    }

    /// The KEK that wraps new DEKs.
    pub(crate) fn current_kek(&self) -> Result<Arc<Kek>> {
        let set = self.keks();
        if set.stale {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the key ring has a KEK this server cannot open: restart it with the current root key",
            ));
        }
        set.all
            .get(&set.current)
            .cloned()
            .ok_or_else(|| Error::internal("the current KEK is missing"))
    }

    /// KEK `version`, if this node has it.
    pub(crate) fn kek(&self, version: i64) -> Result<Arc<Kek>> {
        self.keks().all.get(&version).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "a key is being rotated and this node has not loaded it yet; retry",
            )
        })
    }

    pub(crate) fn keks(&self) -> RwLockReadGuard<'_, KekSet> {
        self.keks.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn indexes(&self) -> RwLockReadGuard<'_, IndexSet> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps (and checks) key-ring entries with the key this node was opened with.
    pub(crate) fn wrapper(&self) -> &KeyWrapper {
        &self.wrapper
    }

    pub(crate) fn signer(&self) -> &VaultSigner {
        &self.signer
    }

    /// Forgets KEK `version` once it is retired from the store.
    pub(crate) fn forget_kek(&self, version: i64) {
        self.keks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .all
            .remove(&version);
    }

    /// Takes in the versions in `rows` (the store's key ring now) that this node lacks,
    /// drops index versions retired by any node (never the last), and picks the
    /// current ones. A version this node cannot open (the root key was rotated and
    /// this node still runs on the old one) makes the ring stale: it then refuses
    /// writes that need a new DEK or index entry until restarted, and says so here.
    pub(crate) fn reload(&self, rows: &[KeyRow], now: i64) -> Result<()> {
        let index_readable = self.reload_index(rows, now);
        let (loaded, readable) = {
            let set = self.keks();
            self.unwrap_missing(rows, KeyKind::Kek, |v| set.all.contains_key(&v))
        };
        let mut set = self.keks.write().unwrap_or_else(PoisonError::into_inner);
        for (version, key) in loaded {
            set.all.insert(version, Arc::new(Kek::new(version, key)));
            // Activation counts from when this node loaded it, not from the clock of
            // the node that made it.
            set.created.insert(version, now);
        }
        set.pick_current(now);
        // A KEK this node cannot open must not be one it wraps new DEKs under while
        // others may retire the old ones.
        set.stale = !readable || !index_readable;
        if set.stale {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the key ring has a key this server cannot open: restart it with the current root key",
            ));
        }
        Ok(())
    }

    /// The entries of `kind` in `rows` that `have` says this node lacks, unwrapped;
    /// `false` when one of them does not open with this node's key.
    fn unwrap_missing(
        &self,
        rows: &[KeyRow],
        kind: KeyKind,
        have: impl Fn(i64) -> bool,
    ) -> (Vec<(i64, SecretKey)>, bool) {
        let mut loaded = Vec::new();
        let mut readable = true;
        for row in rows
            .iter()
            .filter(|r| r.kind == kind.name() && !have(r.version))
        {
            let entry = KeyRingEntry {
                tenant: &self.tenant,
                kind: kind.name(),
                version: row.version,
            };
            match self.wrapper.unwrap(&entry, &row.wrapped) {
                Ok(key) => loaded.push((row.version, key)),
                Err(_) => readable = false,
            }
        }
        (loaded, readable)
    }

    /// The index part of [`Keys::reload`]: `false` if a version does not open with
    /// this node's key.
    fn reload_index(&self, rows: &[KeyRow], now: i64) -> bool {
        let (loaded, readable) = {
            let set = self.indexes();
            self.unwrap_missing(rows, KeyKind::Index, |v| set.all.contains_key(&v))
        };
        let mut set = self.index.write().unwrap_or_else(PoisonError::into_inner);
        for (version, key) in loaded {
            set.insert(version, IndexSecret::new(version, key), now);
        }
        let retired: Vec<i64> = set
            .all
            .keys()
            .copied()
            .filter(|v| {
                !rows
                    .iter()
                    .any(|r| r.kind == KeyKind::Index.name() && r.version == *v)
            })
            .collect();
        if retired.len() < set.all.len() {
            for v in retired {
                set.all.remove(&v);
                set.loaded.remove(&v);
            }
            set.stale = false;
        } else if !retired.is_empty() {
            set.stale = true;
        }
        set.pick_current(now);
        readable
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "a test fails loudly at the first surprise; unwrap is how it says so"
    )]

    use strongbox_crypto::{RootKey, SecretKey};

    use super::*;

    const T: &str = "default";

    fn row(root: &RootKey, kind: KeyKind, version: i64, created: i64) -> KeyRow {
        let entry = KeyRingEntry {
            tenant: T,
            kind: kind.name(),
            version,
        };
        KeyRow {
            kind: kind.name().to_string(),
            version,
            wrapped: root.wrap(&entry, &SecretKey::generate().unwrap()).unwrap(),
            created,
        }
    }

    fn load(root: &RootKey, rows: &[KeyRow], now: i64) -> std::result::Result<Keys, OpenError> {
        let signer = VaultSigner::new(&SecretKey::generate().unwrap());
        Keys::load(&root.wrapper(), T, rows, signer, now)
    }

    #[test]
    fn a_ring_needs_a_kek_and_an_index_secret() {
        let root = RootKey::generate().unwrap();
        let kek = row(&root, KeyKind::Kek, 1, 0);
        let index = row(&root, KeyKind::Index, 1, 0);
        assert!(matches!(
            load(&root, std::slice::from_ref(&kek), 10),
            Err(OpenError::KeyRing("no index secret"))
        ));
        assert!(matches!(
            load(&root, std::slice::from_ref(&index), 10),
            Err(OpenError::KeyRing("no KEK"))
        ));
        let other = RootKey::generate().unwrap();
        assert!(load(&other, &[kek.clone(), index.clone()], 10).is_err());
        let keys = load(&root, &[kek, index], 10).unwrap();
        assert_eq!(keys.current_kek().unwrap().version, 1);
        assert_eq!(keys.indexes().current, 1);
    }

    #[test]
    fn a_new_kek_wraps_new_deks_only_once_every_node_has_it() {
        let root = RootKey::generate().unwrap();
        let mut rows = vec![
            row(&root, KeyKind::Kek, 1, 0),
            row(&root, KeyKind::Index, 1, 0),
        ];
        let keys = load(&root, &rows, 100).unwrap();
        rows.push(row(&root, KeyKind::Kek, 2, 100));
        keys.reload(&rows, 100).unwrap();
        // Loaded, readable, but not current yet.
        assert_eq!(keys.kek(2).unwrap().version, 2);
        assert_eq!(keys.current_kek().unwrap().version, 1);
        keys.reload(&rows, 100 + KEK_ACTIVATION).unwrap();
        assert_eq!(keys.current_kek().unwrap().version, 2);
        // Retired from the store: forgotten here.
        keys.forget_kek(1);
        assert!(keys.kek(1).is_err());
    }

    #[test]
    fn a_version_this_node_cannot_open_makes_the_ring_stale() {
        let root = RootKey::generate().unwrap();
        let mut rows = vec![
            row(&root, KeyKind::Kek, 1, 0),
            row(&root, KeyKind::Index, 1, 0),
        ];
        let keys = load(&root, &rows, 100).unwrap();
        // Another node runs on a rotated root key and added a KEK under it.
        let rotated = RootKey::generate().unwrap();
        rows.push(row(&rotated, KeyKind::Kek, 2, 100));
        let e = keys.reload(&rows, 200).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        let e = keys.current_kek().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn index_versions_retired_elsewhere_are_dropped_but_never_the_last() {
        let root = RootKey::generate().unwrap();
        let v1 = row(&root, KeyKind::Index, 1, 0);
        let v2 = row(&root, KeyKind::Index, 2, 0);
        let kek = row(&root, KeyKind::Kek, 1, 0);
        let keys = load(&root, &[kek.clone(), v1, v2.clone()], 100).unwrap();
        assert_eq!(keys.indexes().all.len(), 2);
        keys.reload(&[kek.clone(), v2], 100).unwrap();
        assert_eq!(keys.indexes().all.keys().copied().collect::<Vec<_>>(), [2]);
        // Every version this node has was retired and it cannot open the new one.
        let rotated = RootKey::generate().unwrap();
        let v3 = row(&rotated, KeyKind::Index, 3, 0);
        assert!(keys.reload(&[kek, v3], 100).is_err());
        assert!(keys.indexes().entries("email", "a@example.com").is_err());
    }
}
