//! Retention: a user record can be given an expiry (`/v1/exp/start`), after which
//! the sweeper erases it by crypto-shredding, unless the person chose to keep it
//! (`/v1/exp/retain/{exptoken}`) or to be erased at once (`/v1/exp/delete/{exptoken}`)
//! through the links sent to them (a `POST` to the link; its `GET` only shows the
//! button, see the server). The sweeper also marks consents whose end time has
//! passed as `expired`.
//!
//! The expiry state of a user lives in a record of its own, keyed by the user token
//! and not owned by the user, so it outlives the erasure it causes (its status then
//! reads `expired`). It holds no personal data.

use serde_json::{Map, Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::{RecordRow, WriteOp};

use crate::error::{Error, Result};
use crate::expiry::{capped_expiry, requested_seconds};
use crate::kinds::{Action, AuditAction, RecordKind};
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// A user's retention state, as `/v1/exp/status` answers it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExpirationStatus {
    /// When the record expires (Unix seconds), 0 when it does not.
    pub exptime: i64,
    /// `wait`, `retain`, `expired`, or empty.
    pub expstatus: String,
    /// The capability of the retain/delete links, empty when none.
    pub exptoken: String,
}

fn meta_of(row: &RecordRow) -> Result<Map<String, Value>> {
    match row.meta.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Object(m))) => Ok(m),
        _ => Err(Error::internal("a record's metadata is not a JSON object")),
    }
}

impl Vault {
    fn exp_row(&self, token: &str, status: &str, exptime: i64, exptoken: &str) -> RecordRow {
        let now = self.now();
        let meta = json!({"expstatus": status, "exptime": exptime, "exptoken": exptoken});
        RecordRow {
            kind: RecordKind::Retention.name().into(),
            id: token.to_string(),
            label: (!exptoken.is_empty()).then(|| exptoken.to_string()),
            created: now,
            updated: now,
            // Only a waiting expiry is due; the sweeper looks for nothing else.
            expires: (status == "wait" && exptime > 0).then_some(exptime),
            meta: serde_json::to_vec(&meta).ok(),
            ..RecordRow::default()
        }
    }

    /// Sets an expiry on user `{mode}/{identity}` (root only). Body: `expiration`
    /// (capped by `max_user_retention`), `status` (default `wait`; only `wait` is
    /// acted on by the sweeper). Returns the new exptoken.
    pub async fn start_expiration(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        body: Map<String, Value>,
    ) -> Result<String> {
        let action = Action::ExpirationStart.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        who.require_root()?;
        let now = self.now();
        let exptime = capped_expiry(
            now,
            self.config.policy.max_user_retention,
            requested_seconds(body.get("expiration"), now)?,
        );
        let status = match body.get("status") {
            None | Some(Value::Null) => "wait".to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_ascii_lowercase(),
            Some(_) => return Err(Error::bad_request("bad status: expected a string")),
        };
        let exptoken = new_record_token();
        let row = self.exp_row(&subject.token, &status, exptime, &exptoken);
        self.upsert_record(
            RecordKind::Retention.name(),
            &subject.token,
            |_| Ok(row.clone()),
            self.new_event(who, &action, Some(&subject.token), "ok"),
        )
        .await?;
        Ok(exptoken)
    }

    /// The retention state of user `{mode}/{identity}` (root or the user).
    pub async fn expiration_status(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<ExpirationStatus> {
        let action = Action::ExpirationGet.with([&mode.name()]);
        let row = self
            .resolve_authorized(who, &action, mode, identity)
            .await?;
        let status = match self
            .store
            .record(&self.tenant, RecordKind::Retention.name(), &row.token)
            .await?
        {
            None => ExpirationStatus::default(),
            Some(r) => {
                let m = meta_of(&r)?;
                let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                ExpirationStatus {
                    exptime: m.get("exptime").and_then(Value::as_i64).unwrap_or(0),
                    expstatus: s("expstatus"),
                    exptoken: s("exptoken"),
                }
            }
        };
        self.audit(self.new_event(who, &action, Some(&row.token), "ok"))
            .await?;
        Ok(status)
    }

    /// Removes the expiry of user `{mode}/{identity}` (root or the user).
    pub async fn cancel_expiration(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<()> {
        let action = Action::ExpirationClear.with([&mode.name()]);
        let row = self
            .resolve_authorized(who, &action, mode, identity)
            .await?;
        self.delete_record(
            RecordKind::Retention.name(),
            &row.token,
            self.new_event(who, &action, Some(&row.token), "ok"),
        )
        .await
    }

    /// The expiry record an exptoken names.
    async fn exp_by_token(&self, exptoken: &str) -> Result<RecordRow> {
        let exptoken =
            parse_record_token(exptoken).ok_or_else(|| Error::bad_request("bad uuid"))?;
        self.store
            .records_by_label(&self.tenant, RecordKind::Retention.name(), &exptoken)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("not found"))
    }

    /// The person keeps their record: no expiry any more (the link's capability).
    pub async fn retain_by_exptoken(&self, exptoken: &str) -> Result<()> {
        let row = self.exp_by_token(exptoken).await?;
        let token = row.id.clone();
        self.upsert_record(
            RecordKind::Retention.name(),
            &token,
            |_| Ok(self.exp_row(&token, "retain", 0, "")),
            self.new_event(
                &Principal::Anonymous,
                Action::RetainByExptoken,
                Some(&token),
                "ok",
            ),
        )
        .await?;
        Ok(())
    }

    /// The person asks to be erased now (the link's capability).
    pub async fn delete_by_exptoken(&self, exptoken: &str) -> Result<()> {
        let row = self.exp_by_token(exptoken).await?;
        self.expire_user(
            &Principal::Anonymous,
            &row,
            &Action::UserDeleteByExptoken.into(),
        )
        .await
    }

    /// Erases the user of expiry record `row` and marks it `expired`, in one commit.
    async fn expire_user(
        &self,
        who: &Principal,
        row: &RecordRow,
        action: &AuditAction,
    ) -> Result<()> {
        let token = row.id.clone();
        let mut expired = self.exp_row(&token, "expired", 0, "");
        expired.created = row.created;
        expired.version = row.version + 1;
        let mark = WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: expired,
            expected_version: Some(row.version),
        };
        self.erase_user(who, action, &token, vec![mark]).await
    }

    /// The sweeper's retention work: erases users whose expiry has passed and marks
    /// consents past their end time `expired`.
    pub(crate) async fn apply_retention(&self) -> Result<()> {
        let now = self.now();
        for row in self
            .store
            .records_due(&self.tenant, RecordKind::Retention.name(), now)
            .await?
        {
            if let Err(e) = self
                .expire_user(
                    &Principal::System,
                    &row,
                    &Action::UserDeleteByExpiration.into(),
                )
                .await
            {
                // Changed in between (retained, cancelled, another node was faster):
                // the next sweep sees the current state.
                tracing::debug!(error = %e, "expiring a user did not complete");
            }
        }
        for row in self
            .store
            .records_due(&self.tenant, RecordKind::Agreement.name(), now)
            .await?
        {
            let mut meta = meta_of(&row)?;
            let record = row.owner.clone().filter(|o| !o.contains(':'));
            let mut notify = None;
            if meta.get("status") == Some(&Value::from("yes")) {
                meta.insert("status".into(), Value::from("expired"));
                meta.insert("when".into(), Value::from(now));
                let brief = row.label.clone().unwrap_or_default();
                notify = match &record {
                    Some(token) => self.consent_notification(&brief, token, "token", "expired")?,
                    // Someone not in the vault: the notification cannot name them
                    // without opening the consent; it names the pseudonymous key.
                    None => self.consent_notification(
                        &brief,
                        row.owner.as_deref().unwrap_or(""),
                        "pending",
                        "expired",
                    )?,
                };
            }
            let updated = RecordRow {
                expires: None,
                updated: now,
                version: row.version + 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..row.clone()
            };
            let mut ops = vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: updated,
                    expected_version: Some(row.version),
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(
                        &Principal::System,
                        Action::AgreementExpire,
                        record.as_deref(),
                        "ok",
                    ),
                },
            ];
            ops.extend(notify);
            let op = WriteOp::Atomic(ops);
            match self.store.write(op).await {
                Ok(()) | Err(strongbox_store::StoreError::Stale) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
