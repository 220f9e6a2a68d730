//! The vault's outboxes ([`Queue`]): webhooks (Databunker's notification payloads
//! `profilenew`, `profilechange`, `forgetme`, `consentchange`, sent to
//! `notification_url`) and login codes (sent by email or SMS).
//!
//! A message is written to its outbox in the same commit as the change it reports
//! (a profile change, a prelogin), so none is lost if the process dies, and none is
//! sent for a change that did not commit. A delivery worker (outside the request
//! path) sends due ones and deletes them once delivered, or retries later with
//! exponential backoff. Payloads carry personal data (and login codes), so each is
//! sealed under a DEK of its own; it is destroyed with the outbox row after delivery.
//!
//! The webhook outbox is bounded (`notification_outbox_max`): while a receiver is
//! down for long, changes keep committing and the notifications past the bound are
//! dropped, counted and logged, so a dead receiver can neither fill the disk nor
//! stop the vault. A login code is given up when it would have expired anyway, so
//! that outbox holds at most [`crate::login::CODE_LIFETIME`] seconds of prelogins,
//! which the prelogin limits bound. [`Queue::stats`] shows both in `/v1/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};
use strongbox_crypto::new_event_token;
use strongbox_store::{RecordRow, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kinds::RecordKind;
use crate::vault::Vault;

/// Attempts before a webhook is given up (about a day with the backoff below).
pub const MAX_ATTEMPTS: i64 = 20;
/// Longest wait between two attempts of a webhook, seconds.
const MAX_BACKOFF: i64 = 3600;
/// Longest wait between two attempts of a login code, seconds (it lives 5 minutes).
const MAX_CODE_BACKOFF: i64 = 30;
/// Seconds a worker holds a message it took: other nodes leave it alone meanwhile,
/// and take it over if that worker died (longer than any one send's timeouts).
const LEASE: i64 = 60;

/// An outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Webhooks to `notification_url`.
    Webhooks,
    /// Login codes to send by email or SMS.
    LoginCodes,
}

impl Queue {
    fn kind(self) -> &'static str {
        match self {
            Queue::Webhooks => RecordKind::Outbox.name(),
            Queue::LoginCodes => RecordKind::LoginMessage.name(),
        }
    }

    /// What became of this process's messages in this outbox.
    pub fn stats(self) -> &'static OutboxStats {
        match self {
            Queue::Webhooks => &OUTBOX_STATS,
            Queue::LoginCodes => &LOGIN_CODE_STATS,
        }
    }
}

/// What became of this process's messages in one outbox.
pub struct OutboxStats {
    /// Messages in the outbox: counted by the delivery worker, plus those queued
    /// since.
    pub queued: AtomicI64,
    /// Delivered (a webhook receiver answered 2xx, a mail server or SMS gateway
    /// took the message).
    pub delivered: AtomicU64,
    /// Attempts that failed (each is retried later, within its queue's bounds).
    pub failed: AtomicU64,
    /// Given up: a webhook after [`MAX_ATTEMPTS`] attempts, a login code once it
    /// has expired.
    pub given_up: AtomicU64,
    /// Never queued because the outbox was full (webhooks only).
    pub dropped: AtomicU64,
}

impl OutboxStats {
    const fn new() -> Self {
        OutboxStats {
            queued: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            given_up: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

pub static OUTBOX_STATS: OutboxStats = OutboxStats::new();
pub static LOGIN_CODE_STATS: OutboxStats = OutboxStats::new();

fn meta_of(row: &RecordRow) -> Value {
    row.meta
        .as_deref()
        .and_then(|m| serde_json::from_slice::<Value>(m).ok())
        .unwrap_or_default()
}

/// Failed attempts so far.
fn attempts_of(row: &RecordRow) -> i64 {
    meta_of(row)["attempts"].as_i64().unwrap_or(0)
}

/// Whether a worker holds the message (see [`LEASE`]).
fn leased(row: &RecordRow) -> bool {
    meta_of(row)["leased"].as_bool().unwrap_or(false)
}

/// A message due for delivery.
pub struct Notification {
    pub id: String,
    pub queue: Queue,
    /// The JSON payload (a webhook's body; a login code's channel, address and code).
    pub payload: Zeroizing<Vec<u8>>,
    /// Failed attempts so far.
    pub attempts: i64,
    row: RecordRow,
}

impl Vault {
    /// The outbox op for `payload`, if notifications are configured. `person`: the
    /// record token it is about, when known; notifications about one person are
    /// delivered in the order they were made. Webhooks are the main tenant's: other
    /// tenants queue none (their changes would reach a receiver that cannot tell
    /// the tenants apart).
    pub(crate) fn notification(
        &self,
        payload: Value,
        person: Option<&str>,
    ) -> Result<Option<WriteOp>> {
        if self.config.notification_url.is_none() || !self.is_main() {
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
        self.queue_message(Queue::Webhooks, &payload, person)
            .map(Some)
    }

    /// The op that puts `payload` in `queue`, sealed under a DEK of its own, due
    /// now. `person`: the record token it is about, when known.
    pub(crate) fn queue_message(
        &self,
        queue: Queue,
        payload: &Value,
        person: Option<&str>,
    ) -> Result<WriteOp> {
        // Counted before its commit: a change that then fails leaves the count one
        // high until the worker counts again.
        queue.stats().queued.fetch_add(1, Ordering::Relaxed);
        let kind = queue.kind();
        let id = new_event_token();
        let (dek, kek_version, wrapped) = self.new_record_dek(kind, &id)?;
        let now = self.now();
        Ok(WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: kind.into(),
                id: id.clone(),
                // A random record token, as in every record's `owner`: not personal
                // data, and what keeps one person's notifications in order.
                label: person.map(str::to_string),
                created: now,
                updated: now,
                expires: Some(now),
                version: 1,
                meta: serde_json::to_vec(&json!({"attempts": 0})).ok(),
                body: Some(self.seal_body(&dek, kind, &id, payload)?),
                kek_version: Some(kek_version),
                wrapped_dek: Some(wrapped),
                ..RecordRow::default()
            },
            expected_version: None,
        })
    }

    /// `profilenew`, `profilechange` (with `old`) or `forgetme`, as Databunker sends.
    pub(crate) fn profile_notification(
        &self,
        action: &str,
        token: &str,
        old: Option<&Value>,
        profile: &Value,
    ) -> Result<Option<WriteOp>> {
        if self.config.notification_url.is_none() || !self.is_main() {
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

    /// Messages of `queue` due now, oldest first (a delivery worker's input).
    pub async fn due(&self, queue: Queue, limit: usize) -> Result<Vec<Notification>> {
        let rows = self
            .store
            .records_due_first(&self.tenant, queue.kind(), self.now(), limit)
            .await?;
        let mut out = Vec::new();
        for row in rows {
            if queue == Queue::Webhooks && !self.first_of_its_person(&row).await? {
                continue;
            }
            let dek = self
                .own_dek(&row)?
                .ok_or_else(|| Error::internal("an outbox message has no key"))?;
            let body = self.open_body(&dek, &row)?;
            if queue == Queue::LoginCodes && !self.worth_sending(&row, &body).await? {
                // Expired, used, dropped after wrong tries, or replaced by a newer
                // prelogin (the worker was down): only a code that works is sent.
                self.forget_row(queue, &row.id).await?;
                queue.stats().given_up.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Taken by a write that expects the version read, so that of several
            // nodes sharing the database one sends it: the others see it leased.
            let mut row = row;
            let mut taken = row.clone();
            taken.expires = Some(self.now() + LEASE);
            taken.version += 1;
            taken.meta =
                serde_json::to_vec(&json!({"attempts": attempts_of(&row), "leased": true})).ok();
            match self
                .store
                .write(WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: taken.clone(),
                    expected_version: Some(row.version),
                })
                .await
            {
                Ok(()) => row = taken,
                Err(strongbox_store::StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
            let payload = Zeroizing::new(serde_json::to_vec(&body).map_err(Error::internal)?);
            let attempts = attempts_of(&row);
            out.push(Notification {
                id: row.id.clone(),
                queue,
                payload,
                attempts,
                row,
            });
        }
        Ok(out)
    }

    /// Drops login codes that expired unsent (the sweeper's job: with no delivery
    /// worker running, after a channel was removed, nothing else would).
    pub(crate) async fn purge_expired_login_codes(&self) -> Result<()> {
        let queue = Queue::LoginCodes;
        let now = self.now();
        for row in self
            .store
            .records_of_kind(&self.tenant, queue.kind())
            .await?
        {
            if row.created + crate::login::CODE_LIFETIME <= now {
                self.forget_row(queue, &row.id).await?;
                queue.stats().given_up.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Counts an outbox again (its delivery worker does, now and then), so the
    /// bound is kept against what is there, whichever node queued or sent it.
    pub async fn count_queue(&self, queue: Queue) -> Result<i64> {
        let n = self.store.count_records(&self.tenant, queue.kind()).await?;
        queue.stats().queued.store(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Whether a queued login code still works: not expired, used or dropped, and
    /// not replaced by a newer prelogin of its identity (the row's label).
    async fn worth_sending(&self, row: &RecordRow, body: &Value) -> Result<bool> {
        if row.created + crate::login::CODE_LIFETIME <= self.now() {
            return Ok(false);
        }
        match (&row.label, body.get("code").and_then(Value::as_str)) {
            (Some(id), Some(code)) => self.is_current_login_code(id, code).await,
            _ => Ok(false),
        }
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
        if leased(oldest) {
            // Being sent right now (here or by another node): wait for the outcome,
            // which is seconds away; postponing to the lease's end would cost a minute.
            return Ok(false);
        }
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

    /// A message was delivered: its row and key go.
    pub async fn delivered(&self, n: &Notification) -> Result<()> {
        self.forget_message(n).await?;
        n.queue.stats().delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn forget_message(&self, n: &Notification) -> Result<()> {
        self.forget_row(n.queue, &n.id).await
    }

    async fn forget_row(&self, queue: Queue, id: &str) -> Result<()> {
        self.store
            .write(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: queue.kind().into(),
                id: id.to_string(),
            })
            .await?;
        queue.stats().queued.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// A delivery failed: it is tried again after an exponential backoff, or given
    /// up (a webhook after [`MAX_ATTEMPTS`] attempts, a login code when it would
    /// have expired before the next one). Returns whether it was given up.
    pub async fn delivery_failed(&self, n: &Notification) -> Result<bool> {
        let stats = n.queue.stats();
        stats.failed.fetch_add(1, Ordering::Relaxed);
        let attempts = n.attempts + 1;
        let wait = 1_i64 << attempts.clamp(0, 12);
        let (wait, give_up) = match n.queue {
            Queue::Webhooks => (wait.min(MAX_BACKOFF), attempts >= MAX_ATTEMPTS),
            Queue::LoginCodes => {
                let wait = wait.min(MAX_CODE_BACKOFF);
                let expires = n.row.created + crate::login::CODE_LIFETIME;
                (wait, self.now() + wait >= expires)
            }
        };
        if give_up {
            self.forget_message(n).await?;
            stats.given_up.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
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
            Ok(()) | Err(strongbox_store::StoreError::Stale) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
