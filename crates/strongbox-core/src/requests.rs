//! Data-subject requests with DPO approval. When a user (with their own access
//! token) asks for something self service does not allow — erasure, a profile or app
//! data change, withdrawing a consent the legal basis keeps under the organisation's
//! control — the change is kept as a request (its payload sealed under the user's
//! DEK) until root approves it (which carries it out, in the same commit) or someone
//! cancels it.

use serde_json::{Map, Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::{RecordRow, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Page;
use crate::users::{Change, Mode, Subject};
use crate::vault::{Principal, Vault, audit_event, now};

pub(crate) const KIND_REQUEST: &str = "request";

pub(crate) const ACTION_FORGET_ME: &str = "forget-me";
pub(crate) const ACTION_CHANGE_PROFILE: &str = "change-profile";
pub(crate) const ACTION_CHANGE_APP: &str = "change-app-data";
pub(crate) const ACTION_WITHDRAW: &str = "agreement-withdraw";

/// What became of an action a user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Carried out; the user's token.
    Done(String),
    /// Kept as a request for the DPO: `existed` when an identical open request was
    /// already waiting (its token is returned instead of a new one).
    Requested { rtoken: String, existed: bool },
}

/// The request statuses.
const OPEN: &str = "open";
const APPROVED: &str = "approved";
const CANCELED: &str = "canceled";

fn meta_of(row: &RecordRow) -> Result<Map<String, Value>> {
    match row.meta.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Object(m))) => Ok(m),
        _ => Err(Error::internal("a request's metadata is not a JSON object")),
    }
}

fn field<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key).and_then(Value::as_str)
}

/// A request as listed: its metadata, and `more` when it carries a change.
fn listed(row: &RecordRow) -> Result<Value> {
    let mut meta = meta_of(row)?;
    meta.insert("more".into(), Value::from(row.body.is_some()));
    Ok(Value::Object(meta))
}

impl Vault {
    /// Files (or finds the identical open) request of `subject` for `action`.
    pub(crate) async fn file_request(
        &self,
        who: &Principal,
        subject: &Subject,
        action: &str,
        app: Option<&str>,
        brief: Option<&str>,
        change: Option<Value>,
    ) -> Result<Outcome> {
        let title = format!("user {action} request");
        for row in self
            .store
            .records_of(&self.tenant, &subject.token, KIND_REQUEST)
            .await?
        {
            let meta = meta_of(&row)?;
            if field(&meta, "status") == Some(OPEN)
                && field(&meta, "action") == Some(action)
                && field(&meta, "app") == app
                && field(&meta, "brief") == brief
            {
                self.audit(audit_event(
                    who,
                    &title,
                    Some(&subject.token),
                    "request-exists",
                ))
                .await?;
                return Ok(Outcome::Requested {
                    rtoken: row.id,
                    existed: true,
                });
            }
        }
        let rtoken = new_record_token();
        let now = now();
        let mut meta = json!({
            "rtoken": rtoken, "token": subject.token, "action": action, "status": OPEN,
            "creationtime": now, "when": now,
        });
        if let Some(app) = app {
            meta["app"] = Value::from(app);
        }
        if let Some(brief) = brief {
            meta["brief"] = Value::from(brief);
        }
        let body = match change {
            Some(change) => Some(self.seal_body(
                &subject.dek,
                KIND_REQUEST,
                &rtoken,
                &json!({ "change": change }),
            )?),
            None => None,
        };
        self.upsert_record(
            KIND_REQUEST,
            &rtoken,
            |_| {
                Ok(RecordRow {
                    owner: Some(subject.token.clone()),
                    label: Some(OPEN.into()),
                    created: now,
                    updated: now,
                    meta: serde_json::to_vec(&meta).ok(),
                    body: body.clone(),
                    ..RecordRow::default()
                })
            },
            audit_event(who, &title, Some(&subject.token), "request-created"),
        )
        .await?;
        Ok(Outcome::Requested {
            rtoken,
            existed: false,
        })
    }

    /// The request `rtoken`, once `who` (root, or the user it is about) may see it.
    async fn request_row(&self, who: &Principal, rtoken: &str) -> Result<RecordRow> {
        let rtoken = parse_record_token(rtoken).ok_or_else(|| Error::bad_request("bad uuid"))?;
        let Some(row) = self
            .store
            .record(&self.tenant, KIND_REQUEST, &rtoken)
            .await?
        else {
            return Err(Error::not_found("not found"));
        };
        let owner = row
            .owner
            .as_deref()
            .ok_or_else(|| Error::internal("a request has no owner"))?;
        who.may_access(owner)?;
        Ok(row)
    }

    /// The live subject a request is about, and the change it carries.
    async fn request_subject(&self, row: &RecordRow) -> Result<(Subject, Option<Value>)> {
        let owner = row
            .owner
            .as_deref()
            .ok_or_else(|| Error::internal("a request has no owner"))?;
        let user = self
            .store
            .user(&self.tenant, owner)
            .await?
            .ok_or_else(|| Error::not_found("not found"))?;
        let subject = self.live(user)?;
        let change = match &row.body {
            Some(_) => self.open_body(&subject.dek, row)?.get("change").cloned(),
            None => None,
        };
        Ok((subject, change))
    }

    /// A request with what it would change: `(app, original, change)`.
    pub async fn get_request(
        &self,
        who: &Principal,
        rtoken: &str,
    ) -> Result<(Option<String>, Value, Option<Value>)> {
        const ACTION: &str = "get user request by request token";
        let row = self.request_row(who, rtoken).await?;
        let meta = meta_of(&row)?;
        let (subject, change) = self.request_subject(&row).await?;
        let app = field(&meta, "app").map(str::to_string);
        let original = match (&app, field(&meta, "brief")) {
            (Some(app), _) => self.app_document(&subject, app).await?,
            (None, Some(brief)) => self.agreement_of(&subject, brief).await?,
            (None, None) => Some(self.profile_of(&subject).await?),
        };
        let original = original.ok_or_else(|| Error::not_found("not found"))?;
        self.audit(audit_event(who, ACTION, Some(&subject.token), "ok"))
            .await?;
        Ok((app, original, change))
    }

    /// The row of `row` with a new status (and reason), for the commit that acts on it.
    fn decided(&self, row: &RecordRow, status: &str, reason: Option<String>) -> Result<WriteOp> {
        let mut meta = meta_of(row)?;
        meta.insert("status".into(), Value::from(status));
        meta.insert("when".into(), Value::from(now()));
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            meta.insert("reason".into(), Value::from(reason));
        }
        Ok(WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                label: Some(status.into()),
                updated: now(),
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..row.clone()
            },
            expected_version: Some(row.version),
        })
    }

    fn require_open(meta: &Map<String, Value>) -> Result<()> {
        match field(meta, "status") {
            Some(OPEN) => Ok(()),
            other => Err(Error::new(
                ErrorKind::Conflict,
                format!("wrong status: {}", other.unwrap_or("")),
            )),
        }
    }

    /// Approves request `rtoken` (root only): carries out its action and marks it
    /// approved in one commit.
    pub async fn approve_request(
        &self,
        who: &Principal,
        rtoken: &str,
        reason: Option<String>,
    ) -> Result<()> {
        who.require_root()?;
        let row = self.request_row(who, rtoken).await?;
        let meta = meta_of(&row)?;
        Self::require_open(&meta)?;
        let (subject, change) = self.request_subject(&row).await?;
        let approved = self.decided(&row, APPROVED, reason)?;
        let audit = WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: audit_event(who, "approve user request", Some(&subject.token), "ok"),
        };
        let extra = vec![approved, audit];
        let change = || -> Result<Change> {
            Change::from_json(
                change
                    .clone()
                    .ok_or_else(|| Error::internal("a change request has no change"))?,
            )
        };
        match field(&meta, "action") {
            Some(ACTION_FORGET_ME) => {
                self.erase_user(who, "delete user record by request", &subject.token, extra)
                    .await
            }
            Some(ACTION_CHANGE_PROFILE) => {
                let user = self
                    .store
                    .user(&self.tenant, &subject.token)
                    .await?
                    .ok_or_else(|| Error::not_found("not found"))?;
                self.apply_user_change(
                    who,
                    "change user record by request",
                    user,
                    &change()?,
                    &extra,
                    crate::users::Gate::Open,
                )
                .await
                .map(|_| ())
            }
            Some(ACTION_CHANGE_APP) => {
                let app = field(&meta, "app")
                    .ok_or_else(|| Error::internal("an app request has no app"))?;
                self.apply_app_change(who, &subject, app, &change()?, &extra)
                    .await
            }
            Some(ACTION_WITHDRAW) => {
                let brief = field(&meta, "brief")
                    .ok_or_else(|| Error::internal("a withdrawal request has no brief"))?;
                self.apply_withdrawal(who, subject, brief, "admin", &extra)
                    .await
            }
            _ => Err(Error::internal("a request has an unknown action")),
        }
    }

    /// Cancels request `rtoken` (root, or the user it is about).
    pub async fn cancel_request(
        &self,
        who: &Principal,
        rtoken: &str,
        reason: Option<String>,
    ) -> Result<()> {
        let row = self.request_row(who, rtoken).await?;
        let meta = meta_of(&row)?;
        Self::require_open(&meta)?;
        let reason = match (reason, who) {
            (Some(r), _) if !r.is_empty() => Some(r),
            (_, Principal::User { .. }) => Some("user operation".into()),
            (r, _) => r,
        };
        let owner = row.owner.clone();
        self.store
            .write(WriteOp::Atomic(vec![
                self.decided(&row, CANCELED, reason)?,
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: audit_event(who, "cancel user request", owner.as_deref(), "ok"),
                },
            ]))
            .await?;
        Ok(())
    }

    /// A user's requests, oldest first: (total, page).
    pub async fn list_user_requests(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        page: Page,
    ) -> Result<(usize, Vec<Value>)> {
        const ACTION: &str = "get user privacy requests";
        let row = self.resolve_authorized(who, ACTION, mode, identity).await?;
        let mut rows = self
            .store
            .records_of(&self.tenant, &row.token, KIND_REQUEST)
            .await?;
        rows.sort_by_key(|r| r.created);
        let total = rows.len();
        let out = page
            .apply(rows)
            .iter()
            .map(listed)
            .collect::<Result<Vec<_>>>()?;
        self.audit(audit_event(who, ACTION, Some(&row.token), "ok"))
            .await?;
        Ok((total, out))
    }

    /// Every request with `status` (default `open`), newest change first (root only).
    pub async fn list_requests(
        &self,
        who: &Principal,
        status: Option<&str>,
        page: Page,
    ) -> Result<(usize, Vec<Value>)> {
        who.require_root()?;
        let status = status.filter(|s| !s.is_empty()).unwrap_or(OPEN);
        if ![OPEN, APPROVED, CANCELED].contains(&status) {
            return Err(Error::bad_request(format!(
                "bad status: expected {OPEN}, {APPROVED} or {CANCELED}"
            )));
        }
        let mut rows = self
            .store
            .records_by_label(&self.tenant, KIND_REQUEST, status)
            .await?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.updated));
        let total = rows.len();
        let out = page
            .apply(rows)
            .iter()
            .map(listed)
            .collect::<Result<Vec<_>>>()?;
        Ok((total, out))
    }
}
