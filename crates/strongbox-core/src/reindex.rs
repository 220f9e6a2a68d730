//! Blind-index key rotation while the vault serves.
//!
//! `rotate_index` adds an index-secret version to the key ring. From the moment a
//! node loads it (`reload_keys`, every 500 ms), that node writes every index entry
//! under both versions and looks values up under both in one query (dual lookup);
//! uniqueness stays enforced by the old version's entries, which every node still
//! writes. [`KEK_ACTIVATION`] seconds after loading it, the new version becomes the
//! node's current one: new pending consents are keyed by it, and the background job
//! backfills the entries of every user who has one under the old version only. It
//! decrypts the profile (or the fields an erasure preserved) and writes the entries
//! only if the user row is still at the version it read, holding the row's lock (a
//! change meanwhile wrote entries of its own). Then it re-keys consents given for an
//! email or phone not in the vault yet. When nothing is left under the old version,
//! it is deleted from the key ring by a statement that checks exactly that again
//! (the cut-over): nodes drop it within a reload and look up, and write, only under
//! the new version. The old entries are then purged, a batch of users at a time.
//! Nodes may run the job at once; a crash loses nothing, the next pass finds what is
//! left.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};
use strongbox_store::{IndexEntry, KeyRow, Reindexed, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{KEK_ACTIVATION, entry};
use crate::kinds::{Action, KeyKind};
use crate::principal::Principal;
use crate::vault::Vault;

/// Where the backfill stands. The job that runs the passes owns it.
#[derive(Default)]
pub struct Cursor {
    /// The (old, new) versions this state is about; another pair starts afresh
    /// (every node notices a rotation by itself, not only the one that made it).
    target: (i64, i64),
    /// The last user token done in this pass.
    user: String,
    /// A whole pass is done: what later passes find was written under the old
    /// version alone meanwhile (by a lagging node), or cannot be backfilled.
    first_pass_done: bool,
    /// Users a later pass tried (and whose batch committed): the row version
    /// tried, how often, and when first. Tried twice at one version, they cannot
    /// be backfilled (a value another person holds under the new key, or a field
    /// gone from the profile) and are left alone for [`STUCK_RETRY`] seconds.
    tried: HashMap<String, Tried>,
    /// Entries under versions below `below` are left to purge, for tokens after
    /// `after`, from `not_before` on. `None` once none are left; a new process
    /// checks once.
    purge: Option<Purge>,
    started: bool,
}

struct Tried {
    version: i64,
    attempts: u8,
    since: i64,
}

/// Seconds before users found stuck are tried again.
const STUCK_RETRY: i64 = 600;

/// How long one step of the job walks ranges with nothing to write before it
/// yields.
const EMPTY_RANGES_BUDGET: std::time::Duration = std::time::Duration::from_millis(200);

impl Tried {
    fn stuck(&self, now: i64) -> bool {
        self.attempts >= 2 && now - self.since < STUCK_RETRY
    }
}

struct Purge {
    below: i64,
    after: String,
    not_before: i64,
}

/// The index backfill: users done, users and pending consents skipped, and index
/// entries not yet under the new version.
pub static REINDEX_STATS: crate::kek::JobStats = crate::kek::JobStats::new();

impl Vault {
    /// Adds a new index-key version (root only). Every node writes and looks up
    /// under both versions within a second; the background job backfills, then
    /// retires the old version.
    pub async fn rotate_index(&self, who: &Principal) -> Result<i64> {
        who.require_root()?;
        let rows = self.store.keys(&self.tenant).await?;
        let index: Vec<&KeyRow> = rows
            .iter()
            .filter(|r| r.kind == KeyKind::Index.name())
            .collect();
        if index.len() > 1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "an index-key rotation is under way: wait for it to finish",
            ));
        }
        let newest = index
            .first()
            .ok_or_else(|| Error::internal("the key ring has no index secret"))?;
        let busy = "an index-key rotation is under way: wait for it to finish";
        let version = self
            .add_key_version(who, newest, Action::IndexKeyRotate, busy)
            .await?;
        // Done: the reloader takes it in within 500 ms if this fails.
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "reloading the key ring after the rotation failed");
        }
        Ok(version)
    }

    /// One step of the background job: backfills up to `batch` users, or re-keys
    /// pending consents, or retires the old version, or purges its entries for up
    /// to `batch` users. Returns how much it did; 0 when there is nothing to do.
    pub async fn reindex_pass(&self, c: &mut Cursor, batch: usize) -> Result<usize> {
        let (oldest, current) = {
            let set = self.keys.indexes();
            (set.oldest(), set.current)
        };
        if !c.started {
            // Entries a crash left behind after a cut-over: checked once.
            c.started = true;
            c.purge = Some(Purge {
                below: oldest,
                after: String::new(),
                not_before: 0,
            });
        }
        let now = self.now();
        let stuck = c.tried.values().filter(|t| t.stuck(now)).count();
        REINDEX_STATS.stuck.store(stuck as u64, Ordering::Relaxed);
        if oldest < current {
            // Ranges with nothing to write (done by another node, or before a
            // restart) are walked through quickly; the rest waits for the pass's end.
            let started = std::time::Instant::now();
            loop {
                let (n, more) = self.backfill_users(c, oldest, current, batch).await?;
                if n > 0 {
                    return Ok(n);
                }
                if !more {
                    break;
                }
                if started.elapsed() > EMPTY_RANGES_BUDGET {
                    return Ok(1);
                }
            }
            let (moved, left) = self.rekey_pending_agreements(current).await?;
            if moved > 0 {
                return Ok(moved);
            }
            if left == 0 {
                self.retire_index(c, oldest, current).await?;
            }
            return Ok(0);
        }
        self.purge_index(c, batch).await
    }

    /// One batch of the backfill: returns how many users it wrote entries for, and
    /// whether the pass goes on.
    async fn backfill_users(
        &self,
        c: &mut Cursor,
        old: i64,
        new: i64,
        batch: usize,
    ) -> Result<(usize, bool)> {
        if c.target != (old, new) {
            *c = Cursor {
                target: (old, new),
                purge: c.purge.take(),
                started: c.started,
                ..Cursor::default()
            };
        }
        let (after, later_pass) = (c.user.clone(), c.first_pass_done);
        let (found, next) = self
            .store
            .users_to_reindex(&self.tenant, (old, new), &after, batch)
            .await?;
        let now = self.now();
        let users: Vec<_> = if later_pass {
            found
                .into_iter()
                .filter(|u| {
                    !c.tried
                        .get(&u.token)
                        .is_some_and(|t| t.version == u.version && t.stuck(now))
                })
                .collect()
        } else {
            found
        };
        let secret = self
            .keys
            .indexes()
            .all
            .get(&new)
            .cloned()
            .ok_or_else(|| Error::internal("the current index secret is missing"))?;
        let mut rows = Vec::with_capacity(users.len());
        let mut skipped = 0u64;
        for user in &users {
            // A profile that does not open is skipped rather than allowed to stall
            // the rest; the old version then stays (and so does the dual lookup).
            let profile = self.dek_of(user).and_then(|dek| match dek {
                Some(dek) => {
                    let plain = self.decrypt_profile(user, &dek)?;
                    serde_json::from_slice::<Map<String, Value>>(&plain).map_err(Error::internal)
                }
                None => Ok(Map::new()),
            });
            let Ok(profile) = profile else {
                skipped += 1;
                continue;
            };
            let indexes = self.indexes_of(&profile);
            let mut entries: Vec<IndexEntry> = indexes
                .iter()
                .map(|(name, v)| entry(&secret, name, v))
                .collect();
            // Trigrams for the living only: an erased person's kept lookups are not
            // searchable.
            if !entries.is_empty() && user.erased.is_none() {
                entries.extend(self.gram_entries_under(&secret, &user.token, &indexes));
            }
            // Nothing to write (the entry's field is gone from the profile: it can
            // only be left, and the old version with it).
            if entries.is_empty() {
                skipped += 1;
                continue;
            }
            rows.push(Reindexed {
                token: user.token.clone(),
                version: user.version,
                entries,
            });
        }
        if skipped > 0 {
            REINDEX_STATS.skipped.fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(skipped, "profiles that do not open were left unindexed");
        }
        let n = rows.len();
        if n > 0 {
            self.store
                .write(WriteOp::Reindex {
                    tenant: self.tenant.clone(),
                    rows,
                    audit: self.new_event(
                        &Principal::System,
                        Action::IndexBackfill.with([&n, &new]),
                        None,
                        "ok",
                    ),
                })
                .await?;
            REINDEX_STATS.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        if later_pass {
            // Counted only once the batch committed: a failed write is no attempt.
            for u in &users {
                let t = c.tried.entry(u.token.clone()).or_insert(Tried {
                    version: u.version,
                    attempts: 0,
                    since: now,
                });
                if t.version != u.version || !t.stuck(now) && t.attempts >= 2 {
                    *t = Tried {
                        version: u.version,
                        attempts: 0,
                        since: now,
                    };
                }
                t.attempts += 1;
                if t.attempts == 2 {
                    REINDEX_STATS.skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "a user's index entries cannot be backfilled; the old index key stays"
                    );
                }
            }
        }
        let more = next.is_some();
        match next {
            Some(next) => c.user = next,
            // The pass is over; the next one starts again from the beginning and
            // finds only what was written under the old version alone meanwhile.
            _ => {
                c.user.clear();
                c.first_pass_done = true;
            }
        }
        Ok((n, more))
    }

    /// The cut-over: deletes index version `old` if nothing is left under it alone.
    async fn retire_index(&self, c: &mut Cursor, old: i64, new: i64) -> Result<()> {
        let (remaining, _) = self.store.count_reindex(&self.tenant, old, new).await?;
        REINDEX_STATS.remaining.store(remaining, Ordering::Relaxed);
        if remaining > 0 {
            return Ok(());
        }
        let op = WriteOp::RetireIndexKey {
            tenant: self.tenant.clone(),
            version: old,
            successor: new,
            audit: self.new_event(
                &Principal::System,
                Action::IndexKeyRetire.with([&old]),
                None,
                "ok",
            ),
        };
        match self.store.write(op).await {
            Ok(()) => {}
            // Written under the old version alone after the count (a lagging
            // node): the backfill goes on.
            Err(StoreError::Stale) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(version = old, "index key version retired");
        self.reload_keys().await?;
        // Nodes stop writing under the old version within a reload; its entries
        // are purged after that.
        c.purge = Some(Purge {
            below: new,
            after: String::new(),
            not_before: self.now() + KEK_ACTIVATION,
        });
        Ok(())
    }

    /// Deletes the entries under retired versions of up to `batch` users.
    async fn purge_index(&self, c: &mut Cursor, batch: usize) -> Result<usize> {
        let (below, after) = match &c.purge {
            Some(p) if p.not_before <= self.now() => (p.below, p.after.clone()),
            _ => return Ok(0),
        };
        if after.is_empty() {
            // Consents a lagging node keyed under the old version just before the
            // cut-over (every node has dropped it by now).
            let current = self.keys.indexes().current;
            self.rekey_pending_agreements(current).await?;
        }
        let tokens = self
            .store
            .tokens_with_old_index(&self.tenant, below, &after, batch)
            .await?;
        let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
            c.purge = None;
            return Ok(0);
        };
        self.store
            .write(WriteOp::PurgeIndex {
                tenant: self.tenant.clone(),
                below,
                from: first.clone(),
                to: last.clone(),
            })
            .await?;
        if let Some(p) = c.purge.as_mut() {
            p.after = last.clone();
        }
        Ok(tokens.len())
    }

    /// Where an index-key rotation stands (root only).
    pub async fn index_status(&self, who: &Principal) -> Result<Value> {
        who.require_root()?;
        self.reload_keys().await?;
        let (current, versions) = {
            let set = self.keys.indexes();
            (set.current, set.all.keys().copied().collect::<Vec<i64>>())
        };
        let (oldest, newest) = (
            versions.first().copied().unwrap_or(0),
            versions.last().copied().unwrap_or(0),
        );
        let (remaining, total) = if oldest < newest {
            self.store
                .count_reindex(&self.tenant, oldest, newest)
                .await?
        } else {
            (0, 0)
        };
        let pending = self.pending_agreements_below(newest).await?;
        // As the job last counted them (it owns the state).
        let stuck = REINDEX_STATS.stuck.load(Ordering::Relaxed);
        REINDEX_STATS.remaining.store(remaining, Ordering::Relaxed);
        Ok(json!({
            "current": current,
            "newest": newest,
            "versions": versions,
            "remaining": remaining,
            "total": total,
            "pending_consents": pending,
            "stuck": stuck,
        }))
    }
}
