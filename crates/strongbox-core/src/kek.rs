//! KEK rotation while the vault serves.
//!
//! `rotate_kek` adds a KEK version to the key ring (wrapped by the root key's
//! wrapping key, which a running vault keeps). Every node reloads the key ring often
//! (`reload_keys`), and a new version wraps new DEKs [`KEK_ACTIVATION`] seconds after
//! its creation, so no node ever meets a DEK under a KEK it has not loaded. Then a
//! background job on every node re-wraps the DEKs under older versions, a batch at a
//! time in key order; each write applies only if the DEK is still under the version
//! it was read with, so nodes working at once, erasures and rewrites meanwhile are
//! all safe, and a crash loses nothing: the next run finds what is left. When no DEK
//! uses an old version any more, and the new one has been current for a while
//! (`kek_retire_after`), the old version is deleted from the key ring.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};
use strongbox_crypto::{KeyRingEntry, SecretKey};
use strongbox_store::{KeyRow, Rewrapped, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Action, KeyKind};
use crate::principal::Principal;
use crate::vault::Vault;

/// Where the re-wrap stands: the last user token and record key done in this pass.
/// The job that runs the passes owns it; a new current KEK starts it afresh.
#[derive(Default)]
pub struct Cursor {
    /// The current KEK version this state is about.
    current: i64,
    user: String,
    record: (String, String),
    users_done: bool,
    records_done: bool,
    /// A current version under which every DEK was found (nothing older left).
    clean: Option<i64>,
}

/// Progress of a key-rotation job (the KEK re-wrap, the index backfill), for
/// `/v1/metrics`.
pub struct JobStats {
    /// Items done by this node (DEKs re-wrapped, users backfilled).
    pub done: AtomicU64,
    /// Items left as they were because they did not open (or could not be done).
    pub skipped: AtomicU64,
    /// Items left, as last counted (-1: not counted yet).
    pub remaining: AtomicI64,
    /// Items tried twice and left alone for now, as the job last counted (backfill).
    pub stuck: AtomicU64,
}

impl JobStats {
    pub const fn new() -> JobStats {
        JobStats {
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            remaining: AtomicI64::new(-1),
            stuck: AtomicU64::new(0),
        }
    }
}

impl Default for JobStats {
    fn default() -> Self {
        JobStats::new()
    }
}

/// The KEK re-wrap: DEKs.
pub static REWRAP_STATS: JobStats = JobStats::new();

impl Vault {
    /// Loads KEK and index-secret versions added by any node, and picks the current
    /// ones; and the root token's hash, in case another node rotated it.
    pub async fn reload_keys(&self) -> Result<()> {
        self.reload_root_token().await?;
        let rows = self.store.keys(&self.tenant).await?;
        self.keys.reload(&rows, self.now())
    }

    /// Adds a new KEK version (root only); it wraps new DEKs on every node within
    /// seconds, and the DEKs under older versions are re-wrapped in the background.
    pub async fn rotate_kek(&self, who: &Principal) -> Result<i64> {
        who.require_root()?;
        let rows = self.store.keys(&self.tenant).await?;
        let newest = rows
            .iter()
            .filter(|r| r.kind == KeyKind::Kek.name())
            .max_by_key(|r| r.version)
            .ok_or_else(|| Error::internal("the key ring has no KEK"))?;
        let version = self
            .add_key_version(
                who,
                newest,
                Action::KekRotate,
                "another KEK rotation is under way",
            )
            .await?;
        self.reload_keys().await?;
        Ok(version)
    }

    /// Erasure epochs: rotates the KEK when the newest version is `every` seconds old
    /// and no rotation is under way (a single KEK in the ring). With the re-wrap and
    /// the retirement that follow, whatever an erasure left on disk (a dead row
    /// version, a log record) is wrapped under a KEK that stops existing at the end
    /// of its epoch. Every node may call this: the first to add the version wins,
    /// the others find it there. Returns the version it added.
    pub async fn rotate_kek_if_due(&self, every: i64) -> Result<Option<i64>> {
        let rows = self.store.keys(&self.tenant).await?;
        let keks: Vec<&KeyRow> = rows
            .iter()
            .filter(|r| r.kind == KeyKind::Kek.name())
            .collect();
        let Some(newest) = keks.iter().max_by_key(|r| r.version) else {
            return Ok(None);
        };
        if keks.len() > 1
            || self.now().saturating_sub(newest.created) < every
            || self.keys.keks().stale
        {
            return Ok(None);
        }
        match self
            .add_key_version(
                &Principal::System,
                newest,
                Action::KekRotate,
                "another KEK rotation is under way",
            )
            .await
        {
            Ok(version) => {
                tracing::info!(
                    version,
                    "scheduled KEK rotation: a new erasure epoch begins"
                );
                self.reload_keys().await?;
                Ok(Some(version))
            }
            // Another node rotated first, or this one runs on an old root key (it
            // says so on every reload).
            Err(e) if e.kind == ErrorKind::Conflict => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds the version after `newest` of its kind to the key ring, with a fresh
    /// secret wrapped by the key this server was opened with, and an audit event
    /// (`action`, with the version). `busy` is the 409 if that version exists.
    pub(crate) async fn add_key_version(
        &self,
        who: &Principal,
        newest: &KeyRow,
        action: Action,
        busy: &str,
    ) -> Result<i64> {
        // If the root key was rotated since this server started, the store's entries
        // no longer open with its key, and one wrapped now would be unreadable to
        // every server started with the new key.
        let kind = newest.kind.as_str();
        let probe = KeyRingEntry {
            tenant: &self.tenant,
            kind,
            version: newest.version,
        };
        if self.keys.wrapper().unwrap(&probe, &newest.wrapped).is_err() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "the root key was rotated since this server started: restart it with the new key first",
            ));
        }
        let version = newest.version + 1;
        let entry = KeyRingEntry {
            tenant: &self.tenant,
            kind,
            version,
        };
        let op = WriteOp::Atomic(vec![
            WriteOp::AddKey {
                tenant: self.tenant.clone(),
                key: KeyRow {
                    kind: kind.to_string(),
                    version,
                    wrapped: self.keys.wrapper().wrap(&entry, &SecretKey::generate()?)?,
                    created: self.now(),
                },
                meta: Vec::new(),
            },
            WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(who, action.with([&version]), None, "ok"),
            },
        ]);
        match self.store.write(op).await {
            Ok(()) => Ok(version),
            Err(StoreError::Duplicate(_)) => Err(Error::new(ErrorKind::Conflict, busy)),
            Err(e) => Err(e.into()),
        }
    }

    /// Re-wraps up to `batch` DEKs under an older KEK with the current one. Returns
    /// how many it re-wrapped; 0 when there is nothing (left) to do.
    pub async fn rewrap_pass(
        &self,
        c: &mut Cursor,
        batch: usize,
        retire_after: i64,
    ) -> Result<usize> {
        let (current, oldest) = {
            let set = self.keys.keks();
            (set.current, set.all.keys().copied().min().unwrap_or(0))
        };
        if oldest >= current {
            return Ok(0);
        }
        if c.current != current {
            *c = Cursor {
                current,
                ..Cursor::default()
            };
        }
        let (user, record, users_done, records_done) = (
            c.user.clone(),
            c.record.clone(),
            c.users_done,
            c.records_done,
        );
        let users = if users_done {
            Vec::new()
        } else {
            self.store
                .users_to_rewrap(&self.tenant, current, &user, batch)
                .await?
        };
        let records = if records_done {
            Vec::new()
        } else {
            self.store
                .records_to_rewrap(&self.tenant, current, (&record.0, &record.1), batch)
                .await?
        };
        let kek = self.keys.kek(current)?;
        let mut rows = Vec::with_capacity(users.len() + records.len());
        let mut skipped = 0u64;
        for d in users.iter().chain(&records) {
            let subject = match &d.kind {
                None => d.id.clone(),
                Some(kind) => format!("{kind}/{}", d.id),
            };
            // A DEK that does not open (damaged, or under a KEK this node lacks) is
            // skipped rather than allowed to stall the rest; its KEK is never retired.
            let Ok(dek) = self
                .keys
                .kek(d.kek_version)
                .and_then(|k| Ok(k.unwrap_dek(&self.tenant, &subject, &d.wrapped)?))
            else {
                skipped += 1;
                continue;
            };
            rows.push(Rewrapped {
                old: d.clone(),
                new_version: current,
                new_wrapped: kek.wrap_dek(&self.tenant, &subject, &dek)?,
            });
        }
        if skipped > 0 {
            REWRAP_STATS.skipped.fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(skipped, "DEKs that do not open were left as they are");
        }
        let n = rows.len();
        if n > 0 {
            self.store
                .write(WriteOp::Rewrap {
                    tenant: self.tenant.clone(),
                    rows,
                    audit: self.new_event(
                        &Principal::System,
                        Action::KekRewrap.with([&n, &current]),
                        None,
                        "ok",
                    ),
                })
                .await?;
            REWRAP_STATS.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        {
            match users.last() {
                Some(last) if users.len() == batch => c.user = last.id.clone(),
                _ => c.users_done = true,
            }
            match records.last() {
                Some(last) if records.len() == batch => {
                    c.record = (last.kind.clone().unwrap_or_default(), last.id.clone())
                }
                _ => c.records_done = true,
            }
            if c.users_done && c.records_done {
                // A pass is over: the next one starts from the beginning, and finds
                // only what was written under an old KEK meanwhile.
                *c = Cursor {
                    current,
                    clean: c.clean,
                    ..Cursor::default()
                };
            }
        }
        if n == 0 {
            self.retire_keks(c, current, retire_after).await?;
        }
        Ok(n)
    }

    /// Deletes KEK versions older than `current` that no DEK uses, once `current` has
    /// been active for `retire_after` seconds.
    async fn retire_keks(&self, c: &mut Cursor, current: i64, retire_after: i64) -> Result<()> {
        // Once clean, nothing can fall back under an old KEK (every node has the
        // current one, and rewraps bump record versions), so no need to count again.
        let clean = c.clean == Some(current);
        let remaining = if clean {
            0
        } else {
            self.store.count_wrapped(&self.tenant, 0, current).await?
        };
        REWRAP_STATS.remaining.store(remaining, Ordering::Relaxed);
        if remaining == 0 {
            c.clean = Some(current);
        }
        let (old, created) = {
            let set = self.keys.keks();
            let old: Vec<i64> = set.all.keys().copied().filter(|v| *v < current).collect();
            (old, set.created.get(&current).copied().unwrap_or(0))
        };
        if remaining > 0 || self.now() - created < retire_after {
            return Ok(());
        }
        if self.keys.keks().stale {
            return Ok(());
        }
        for version in old {
            let op = WriteOp::RetireKek {
                tenant: self.tenant.clone(),
                version,
                audit: self.new_event(
                    &Principal::System,
                    Action::KekRetire.with([&version]),
                    None,
                    "ok",
                ),
            };
            match self.store.write(op).await {
                Ok(()) => {}
                // Something (a lagging node) wrapped a DEK under it after all: the
                // re-wrap goes on, and retirement waits.
                Err(StoreError::Stale) => {
                    c.clean = None;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            self.keys.forget_kek(version);
        }
        Ok(())
    }

    /// Where a KEK rotation stands (root only).
    pub async fn kek_status(&self, who: &Principal) -> Result<Value> {
        who.require_root()?;
        self.reload_keys().await?;
        let (current, mut versions, newest) = {
            let set = self.keys.keks();
            let versions: Vec<i64> = set.all.keys().copied().collect();
            let newest = versions.iter().copied().max().unwrap_or(0);
            (set.current, versions, newest)
        };
        versions.sort_unstable();
        let remaining = self.store.count_wrapped(&self.tenant, 0, current).await?;
        let total = self.store.count_wrapped(&self.tenant, 0, i64::MAX).await?;
        REWRAP_STATS.remaining.store(remaining, Ordering::Relaxed);
        Ok(json!({
            "current": current,
            "newest": newest,
            "versions": versions,
            "remaining": remaining,
            "total": total,
        }))
    }
}
