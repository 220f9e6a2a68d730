//! Webhooks: Databunker's notification payloads (`profilenew`, `profilechange`,
//! `forgetme`, `consentchange`) sent to `notification_url`.
//!
//! A notification is written to an outbox in the same commit as the change it
//! reports, so none is lost if the process dies, and none is sent for a change that
//! did not commit. A delivery worker (outside the request path) sends due ones and
//! deletes them once the receiver answered 2xx, or retries later with exponential
//! backoff. Payloads carry personal data, so each is sealed under a DEK of its own;
//! it is destroyed with the outbox row after delivery.
//!
//! The outbox is bounded (`notification_outbox_max`): while a receiver is down
//! for long, changes keep committing and the notifications past the bound are
//! dropped, counted and logged, so a dead receiver can neither fill the disk nor
//! stop the vault. [`OUTBOX_STATS`] shows it all in `/v1/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};
use strongbox_crypto::new_event_token;
use strongbox_store::{RecordRow, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kinds::RecordKind;
use crate::vault::Vault;

/// Attempts before a notification is given up (about a day with the backoff below).
pub const MAX_ATTEMPTS: i64 = 20;
/// Longest wait between two attempts, seconds.
const MAX_BACKOFF: i64 = 3600;

/// What became of this process's notifications.
pub struct OutboxStats {
    /// Notifications in the outbox: counted by the delivery worker, plus those
    /// queued since.
    pub queued: AtomicI64,
    /// Delivered (the receiver answered 2xx).
    pub delivered: AtomicU64,
    /// Attempts that failed (each is retried later, up to [`MAX_ATTEMPTS`]).
    pub failed: AtomicU64,
    /// Given up after [`MAX_ATTEMPTS`] attempts.
    pub given_up: AtomicU64,
    /// Never queued because the outbox was full.
    pub dropped: AtomicU64,
}

pub static OUTBOX_STATS: OutboxStats = OutboxStats {
    queued: AtomicI64::new(0),
    delivered: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    given_up: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

/// A notification due for delivery.
pub struct Notification {
    pub id: String,
    /// The JSON body to POST.
    pub payload: Zeroizing<Vec<u8>>,
    /// Failed attempts so far.
    pub attempts: i64,
    row: RecordRow,
}

impl Vault {
    /// The outbox op for `payload`, if notifications are configured. `person`: the
    /// record token it is about, when known; notifications about one person are
    /// delivered in the order they were made.
    pub(crate) fn notification(
        &self,
        payload: Value,
        person: Option<&str>,
    ) -> Result<Option<WriteOp>> {
        if self.config.notification_url.is_none() {
            return Ok(None);
        }
        let max = i64::try_from(self.config.notification_outbox_max).unwrap_or(i64::MAX);
        if OUTBOX_STATS.queued.load(Ordering::Relaxed) >= max {
            // The change still commits: a dead receiver must not stop the vault.
            let dropped = OUTBOX_STATS.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                max,
                dropped,
                "the webhook outbox is full: a notification was dropped"
            );
            return Ok(None);
        }
        // Counted before its commit: a change that then fails leaves the count one
        // high until the worker counts again.
        OUTBOX_STATS.queued.fetch_add(1, Ordering::Relaxed);
        let id = new_event_token();
        let (dek, kek_version, wrapped) = self.new_record_dek(RecordKind::Outbox.name(), &id)?;
        let now = self.now();
        Ok(Some(WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: RecordKind::Outbox.name().into(),
                id: id.clone(),
                // A random record token, as in every record's `owner`: not personal
                // data, and what keeps one person's notifications in order.
                label: person.map(str::to_string),
                created: now,
                updated: now,
                expires: Some(now),
                version: 1,
                meta: serde_json::to_vec(&json!({"attempts": 0})).ok(),
                body: Some(self.seal_body(&dek, RecordKind::Outbox.name(), &id, &payload)?),
                kek_version: Some(kek_version),
                wrapped_dek: Some(wrapped),
                ..RecordRow::default()
            },
            expected_version: None,
        }))
    }

    /// `profilenew`, `profilechange` (with `old`) or `forgetme`, as Databunker sends.
    pub(crate) fn profile_notification(
        &self,
        action: &str,
        token: &str,
        old: Option<&Value>,
        profile: &Value,
    ) -> Result<Option<WriteOp>> {
        if self.config.notification_url.is_none() {
            return Ok(None);
        }
        let mut payload =
            json!({"action": action, "identity": token, "mode": "token", "profile": profile});
        if let Some(old) = old {
            payload["old"] = old.clone();
        }
        self.notification(payload, Some(token))
    }

    /// `consentchange` for a withdrawn or expired consent.
    pub(crate) fn consent_notification(
        &self,
        brief: &str,
        identity: &str,
        mode: &str,
        status: &str,
    ) -> Result<Option<WriteOp>> {
        // By email or phone (a consent given before sign-up) the identity is personal
        // data and stays in the sealed body only: no ordering key then.
        let person = (mode == "token").then_some(identity);
        self.notification(
            json!({
                "action": "consentchange", "brief": brief, "identity": identity, "mode": mode,
                "status": status,
            }),
            person,
        )
    }

    /// Notifications due now, oldest first (the delivery worker's input).
    pub async fn due_notifications(&self, limit: usize) -> Result<Vec<Notification>> {
        let rows = self
            .store
            .records_due_first(&self.tenant, RecordKind::Outbox.name(), self.now(), limit)
            .await?;
        let mut out = Vec::new();
        for row in rows {
            if !self.first_of_its_person(&row).await? {
                continue;
            }
            let dek = self
                .own_dek(&row)?
                .ok_or_else(|| Error::internal("a notification has no key"))?;
            let payload = Zeroizing::new(
                serde_json::to_vec(&self.open_body(&dek, &row)?).map_err(Error::internal)?,
            );
            let attempts = row
                .meta
                .as_deref()
                .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                .and_then(|m| m.get("attempts").and_then(Value::as_i64))
                .unwrap_or(0);
            out.push(Notification {
                id: row.id.clone(),
                payload,
                attempts,
                row,
            });
        }
        Ok(out)
    }

    /// Counts the outbox again (the delivery worker does, now and then), so the
    /// bound is kept against what is there, whichever node queued or sent it.
    pub async fn count_outbox(&self) -> Result<i64> {
        let n = self
            .store
            .count_records(&self.tenant, RecordKind::Outbox.name())
            .await?;
        OUTBOX_STATS.queued.store(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Whether `row` is the oldest notification about its person still in the
    /// outbox. A younger one waits: it is postponed to when the older one is tried
    /// again, so a receiver never sees `profilechange` before the `profilenew` that
    /// failed at first.
    async fn first_of_its_person(&self, row: &RecordRow) -> Result<bool> {
        let Some(person) = &row.label else {
            return Ok(true);
        };
        let queued = self
            .store
            .records_by_label(&self.tenant, RecordKind::Outbox.name(), person)
            .await?;
        let Some(oldest) = queued.first().filter(|o| o.id != row.id) else {
            return Ok(true);
        };
        if let (Some(blocker), Some(mine)) = (oldest.expires, row.expires)
            && blocker > mine
        {
            let mut later = row.clone();
            later.expires = Some(blocker);
            later.version += 1;
            match self
                .store
                .write(WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: later,
                    expected_version: Some(row.version),
                })
                .await
            {
                Ok(()) | Err(strongbox_store::StoreError::Stale) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    /// A notification was delivered: its row and key go.
    pub async fn notification_done(&self, n: &Notification) -> Result<()> {
        self.forget_notification(n).await?;
        OUTBOX_STATS.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A notification failed [`MAX_ATTEMPTS`] times: it is given up.
    pub async fn notification_given_up(&self, n: &Notification) -> Result<()> {
        self.forget_notification(n).await?;
        OUTBOX_STATS.given_up.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn forget_notification(&self, n: &Notification) -> Result<()> {
        self.store
            .write(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Outbox.name().into(),
                id: n.id.clone(),
            })
            .await?;
        OUTBOX_STATS.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// A delivery failed: try again after an exponential backoff.
    pub async fn notification_failed(&self, n: &Notification) -> Result<()> {
        OUTBOX_STATS.failed.fetch_add(1, Ordering::Relaxed);
        let attempts = n.attempts + 1;
        let wait = (1_i64 << attempts.clamp(0, 12)).min(MAX_BACKOFF);
        let mut row = n.row.clone();
        row.expires = Some(self.now() + wait);
        row.updated = self.now();
        row.version += 1;
        row.meta = serde_json::to_vec(&json!({ "attempts": attempts })).ok();
        match self
            .store
            .write(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: row,
                expected_version: Some(n.row.version),
            })
            .await
        {
            Ok(()) | Err(strongbox_store::StoreError::Stale) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
