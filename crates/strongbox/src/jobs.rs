//! The vault's background jobs, each a loop on a timer run by one driver
//! ([`every`]): the sweeper, the audit sealer, the key-ring reload, the key-rotation
//! passes, the search index's build and the scheduled KEK rotation. A failing job logs once and again when it
//! works again, not on every tick. (Webhook delivery has its own loop, in
//! `webhooks`.)

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use strongbox_core::Vault;
use tokio::time::MissedTickBehavior;

/// How often new audit events are sealed into the chain.
const SEAL_EVERY: Duration = Duration::from_millis(200);

/// A job's health, for logging transitions only.
struct Health {
    what: &'static str,
    failing: bool,
}

impl Health {
    fn new(what: &'static str) -> Health {
        Health {
            what,
            failing: false,
        }
    }

    /// Notes the outcome of one run; the value of a success.
    fn note<T, E: Display>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                if self.failing {
                    tracing::info!(job = self.what, "works again");
                    self.failing = false;
                }
                Some(v)
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(job = self.what, error = %e, "failed; will retry");
                    self.failing = true;
                }
                None
            }
        }
    }
}

/// Runs `step` every `period` (a late tick waits rather than bunching up).
async fn every<T, E, F, Fut>(what: &'static str, period: Duration, mut step: F)
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = Health::new(what);
    loop {
        tick.tick().await;
        health.note(step().await);
    }
}

/// The main vault and every live tenant's (opened as needed): what the per-tenant
/// jobs (sweeping, key reloads, sealing) walk on each run. If the registry cannot be
/// read, the tenants opened so far.
async fn with_tenants(vault: &Arc<Vault>) -> Vec<Arc<Vault>> {
    let tenants = match vault.tenant_vaults().await {
        Ok(t) => t,
        Err(_) => vault.open_tenants(),
    };
    std::iter::once(vault.clone()).chain(tenants).collect()
}

/// Deletes what has expired (sessions, tokens, shared records, users past their
/// retention, consents past their end) every `period`, in every open tenant.
pub async fn sweeper(vault: Arc<Vault>, period: Duration) {
    every("sweeping expired data", period, || async {
        for v in with_tenants(&vault).await {
            v.sweep().await?;
        }
        Ok::<(), strongbox_core::Error>(())
    })
    .await
}

/// Keeps the key ring current (versions added by any node, a rotated root token),
/// every 500 ms: a new KEK becomes current only after
/// [`strongbox_core::keys::KEK_ACTIVATION`] seconds, by which time every node has
/// loaded it.
pub async fn key_reloader(vault: Arc<Vault>) {
    every(
        "reloading the key ring",
        Duration::from_millis(500),
        || async {
            for v in with_tenants(&vault).await {
                v.reload_keys().await?;
            }
            Ok::<(), strongbox_core::Error>(())
        },
    )
    .await
}

/// Erasure epochs: checks once a minute (or every `period` seconds, if shorter)
/// whether the KEK is due for its scheduled rotation. The re-wrap pass then moves
/// every DEK to the new KEK and retires the old one.
pub async fn kek_rotator(vault: Arc<Vault>, period: i64) {
    let check = Duration::from_secs(period.clamp(1, 60) as u64);
    every("the scheduled KEK rotation", check, || {
        vault.rotate_kek_if_due(period)
    })
    .await
}

/// The key-rotation passes: re-wraps DEKs under old KEKs and backfills index
/// entries under a new index key, `batch` of each per 100 ms while there is work;
/// idle, one cheap check per 500 ms. The job owns where each pass stands.
pub async fn rewrapper(vault: Arc<Vault>, batch: usize, retire_after: i64) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rewrap = Health::new("re-wrapping DEKs");
    let mut reindex = Health::new("backfilling index entries");
    let mut rewrap_at = strongbox_core::kek::Cursor::default();
    let mut reindex_at = strongbox_core::reindex::Cursor::default();
    loop {
        tick.tick().await;
        let wrapped = rewrap.note(vault.rewrap_pass(&mut rewrap_at, batch, retire_after).await);
        let indexed = reindex.note(vault.reindex_pass(&mut reindex_at, batch).await);
        let busy = wrapped.unwrap_or(0) + indexed.unwrap_or(0) > 0;
        if !busy {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

/// Seals new audit events into the chain every 200 ms, and signs a checkpoint every
/// `checkpoint_every` (when the chain moved).
pub async fn sealer(vault: Arc<Vault>, checkpoint_every: Option<Duration>) {
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(SEAL_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = Health::new("sealing the audit chain");
    loop {
        tick.tick().await;
        let due = checkpoint_every.is_some_and(|every| last_checkpoint.elapsed() >= every);
        if due {
            last_checkpoint = tokio::time::Instant::now();
        }
        let mut r = Ok(());
        for v in with_tenants(&vault).await {
            r = r.and(if due {
                v.periodic_checkpoint().await
            } else {
                v.seal_audit().await.map(|_| ())
            });
        }
        health.note(r);
    }
}

/// Keeps the search index as the configuration says, in every tenant: with search
/// on, writes the trigram entries of the people stored before it was on (`batch`
/// per 100 ms while there is work); with it off, drops them. Settled tenants cost
/// nothing.
pub async fn search_indexer(vault: Arc<Vault>, batch: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = Health::new("building the search index");
    let mut cursors: std::collections::HashMap<String, strongbox_core::search::Cursor> =
        std::collections::HashMap::new();
    loop {
        tick.tick().await;
        let mut busy = false;
        for v in with_tenants(&vault).await {
            let cursor = cursors.entry(v.tenant().to_string()).or_default();
            busy |= health.note(v.search_pass(cursor, batch).await).unwrap_or(0) > 0;
        }
        if !busy {
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    }
}
