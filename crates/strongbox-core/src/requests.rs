//! Data-subject requests with DPO approval. When a user (with their own access
//! token) asks for something self service does not allow — erasure, a profile or app
//! data change, withdrawing a consent the legal basis keeps under the organisation's
//! control — the change is kept as a request until root approves it (which carries it
//! out, in the same commit) or someone cancels it.
//!
//! A request's metadata (action, status, times, app, brief) is plaintext; what is
//! about the person is its body, sealed under the user's DEK: the change, and the
//! reason given when the request is decided. Erasing the user strips the body (the
//! row stays as a trace) and destroys the DEK, so neither survives in old copies.
//! Rows written before reasons were sealed keep theirs in the metadata, are read
//! as before, and lose it when the person is erased (`legacy_reasons_scrubbed`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use strongbox_crypto::{Dek, new_record_token, parse_record_token};
use strongbox_store::{RecordRow, StoreError, WriteOp};

use crate::change::{Change, Gate, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Page;
use crate::kinds::{Action, RecordKind, RequestKind};
use crate::principal::Principal;
use crate::subjects::{Mode, Subject};
use crate::vault::Vault;

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

/// How the refusal to decide an already decided request begins.
pub const REQUEST_CLOSED: &str = "wrong status";

/// A request as read one at a time.
pub struct RequestView {
    /// Its listed form: `rtoken`, `token`, `action`, `status`, `creationtime`,
    /// `when`, `app`, `brief`, `more` and the `reason` of its decision.
    pub listed: Value,
    /// The application whose document it changes.
    pub app: Option<String>,
    /// What it would change, as it is now: the profile, app document or agreement.
    pub original: Value,
    /// The change it carries.
    pub change: Option<Value>,
}

/// The body keys: the change a request carries, and the reason of its decision.
const CHANGE: &str = "change";
const REASON: &str = "reason";

impl Vault {
    /// A request as listed: its metadata, `more` when it carries a change, and the
    /// reason of its decision. `dek` is the owner's key (`None` once they are erased:
    /// their request rows have lost their bodies then).
    fn listed_request(&self, row: &RecordRow, dek: Option<&Dek>) -> Result<Value> {
        let mut meta = meta_of(row)?;
        let body = match (&row.body, dek) {
            (Some(_), Some(dek)) => Some(self.open_body(dek, row)?),
            _ => None,
        };
        let more = match &body {
            Some(body) => body.get(CHANGE).is_some(),
            None => row.body.is_some(),
        };
        meta.insert("more".into(), Value::from(more));
        if let Some(reason) = body.as_ref().and_then(|b| b.get(REASON)) {
            meta.insert(REASON.into(), reason.clone());
        }
        Ok(Value::Object(meta))
    }

    /// Every request of `subject`, oldest first, as listed (not audited: for a
    /// caller that audits the whole read).
    pub(crate) async fn requests_of(&self, subject: &Subject) -> Result<Vec<Value>> {
        let mut rows = self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::Request.name())
            .await?;
        rows.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        rows.iter()
            .map(|r| self.listed_request(r, Some(&subject.dek)))
            .collect()
    }

    /// The key of the user `owner`, if they are still in the vault.
    async fn owner_dek(&self, owner: &str) -> Result<Option<Dek>> {
        match self.store.user(&self.tenant, owner).await? {
            Some(user) if user.erased.is_none() => self.dek_of(&user),
            _ => Ok(None),
        }
    }

    /// Files (or finds the identical open) request of `subject` of `kind`.
    pub(crate) async fn file_request(
        &self,
        who: &Principal,
        subject: &Subject,
        kind: RequestKind,
        app: Option<&str>,
        brief: Option<&str>,
        change: Option<Value>,
    ) -> Result<Outcome> {
        let action = kind.name();
        let title = &Action::RequestFile.with([&action]);
        let exists = |rtoken: String| async move {
            self.audit(self.new_event(who, title, Some(&subject.token), "request-exists"))
                .await?;
            Ok(Outcome::Requested {
                rtoken,
                existed: true,
            })
        };
        // The same request, still open (filed before guards existed, or found
        // before trying): answered as Databunker does. A different change is a
        // request of its own.
        for row in self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::Request.name())
            .await?
        {
            let meta = meta_of(&row)?;
            if field(&meta, "status") == Some(OPEN)
                && field(&meta, "action") == Some(action)
                && field(&meta, "app") == app
                && field(&meta, "brief") == brief
                && self.same_change(&subject.dek, &row, change.as_ref())?
            {
                return exists(row.id).await;
            }
        }
        let guard = self.request_guard(&subject.token, action, app, brief, change.as_ref());
        let rtoken = new_record_token();
        let now = self.now();
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
        meta["guard"] = Value::from(guard.clone());
        let body = match change {
            Some(change) => Some(self.seal_body(
                &subject.dek,
                RecordKind::Request.name(),
                &rtoken,
                &json!({ "change": change }),
            )?),
            None => None,
        };
        // The request and its guard commit together: two identical requests filed
        // at once meet on the guard's key, and the second is answered as existing.
        let op = WriteOp::Atomic(vec![
            WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::Request.name().into(),
                    id: rtoken.clone(),
                    owner: Some(subject.token.clone()),
                    label: Some(OPEN.into()),
                    created: now,
                    updated: now,
                    version: 1,
                    meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                    body,
                    ..RecordRow::default()
                },
                expected_version: None,
            },
            WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::RequestGuard.name().into(),
                    id: guard.clone(),
                    owner: Some(subject.token.clone()),
                    created: now,
                    updated: now,
                    version: 1,
                    meta: Some(
                        serde_json::to_vec(&json!({ "rtoken": rtoken }))
                            .map_err(Error::internal)?,
                    ),
                    ..RecordRow::default()
                },
                expected_version: None,
            },
            WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(who, title, Some(&subject.token), "request-created"),
            },
        ]);
        match self.store.write(op).await {
            Ok(()) => Ok(Outcome::Requested {
                rtoken,
                existed: false,
            }),
            Err(StoreError::Duplicate("record")) => {
                let held = self
                    .store
                    .record(&self.tenant, RecordKind::RequestGuard.name(), &guard)
                    .await?
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Conflict,
                            "the request changed meanwhile: try again",
                        )
                    })?;
                let rtoken = meta_of(&held)?
                    .get("rtoken")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| Error::internal("a request guard has no request"))?;
                exists(rtoken).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The key that makes an open request unique: a keyed digest of who asks for
    /// what (the change included), so it holds no personal data.
    fn request_guard(
        &self,
        token: &str,
        action: &str,
        app: Option<&str>,
        brief: Option<&str>,
        change: Option<&Value>,
    ) -> String {
        let change = change.map(Value::to_string).unwrap_or_default();
        let what = format!(
            "open request\0{token}\0{action}\0{}\0{}\0{change}",
            app.unwrap_or(""),
            brief.unwrap_or("")
        );
        self.access_token_digest(&what)
    }

    /// Whether request `row` carries `change` (both none, or equal).
    fn same_change(&self, dek: &Dek, row: &RecordRow, change: Option<&Value>) -> Result<bool> {
        let held = match &row.body {
            Some(_) => self.open_body(dek, row)?.get("change").cloned(),
            None => None,
        };
        Ok(held.as_ref() == change)
    }

    /// The request `rtoken`, once `who` (root, or the user it is about) may see it.
    async fn request_row(&self, who: &Principal, rtoken: &str) -> Result<RecordRow> {
        let rtoken = parse_record_token(rtoken).ok_or_else(|| Error::bad_request("bad uuid"))?;
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::Request.name(), &rtoken)
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
            Some(_) => self.open_body(&subject.dek, row)?.get(CHANGE).cloned(),
            None => None,
        };
        Ok((subject, change))
    }

    /// A request with what it would change.
    pub async fn get_request(&self, who: &Principal, rtoken: &str) -> Result<RequestView> {
        const ACTION: Action = Action::RequestGet;
        let row = self.request_row(who, rtoken).await?;
        let meta = meta_of(&row)?;
        let (subject, change) = self.request_subject(&row).await?;
        let listed = self.listed_request(&row, Some(&subject.dek))?;
        let app = field(&meta, "app").map(str::to_string);
        let original = match (&app, field(&meta, "brief")) {
            (Some(app), _) => self.app_document(&subject, app).await?,
            (None, Some(brief)) => self.agreement_of(&subject, brief).await?,
            (None, None) => Some(self.profile_of(&subject).await?),
        };
        let original = original.ok_or_else(|| Error::not_found("not found"))?;
        self.audit(self.new_event(who, ACTION, Some(&subject.token), "ok"))
            .await?;
        Ok(RequestView {
            listed,
            app,
            original,
            change,
        })
    }

    /// For an erasure: the ops that drop the plaintext reason from the requests of
    /// `token` written before reasons were sealed, so it does not outlive the person.
    pub(crate) async fn legacy_reasons_scrubbed(&self, token: &str) -> Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for row in self
            .store
            .records_of(&self.tenant, token, RecordKind::Request.name())
            .await?
        {
            let mut meta = meta_of(&row)?;
            if meta.remove(REASON).is_none() {
                continue;
            }
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                    ..row.clone()
                },
                expected_version: Some(row.version),
            });
        }
        Ok(ops)
    }

    /// The row of `row` with a new status (and reason), for the commit that acts on it.
    /// The reason is sealed into the body under `dek`, the owner's key; with no key
    /// (the owner is erased) there is no one left to seal it for, and it is dropped.
    fn decided(
        &self,
        dek: Option<&Dek>,
        row: &RecordRow,
        status: &str,
        reason: Option<String>,
    ) -> Result<WriteOp> {
        let mut meta = meta_of(row)?;
        let guard = meta
            .remove("guard")
            .and_then(|g| g.as_str().map(str::to_string));
        meta.insert("status".into(), Value::from(status));
        meta.insert("when".into(), Value::from(self.now()));
        // Only rows from before reasons were sealed have one here.
        meta.remove(REASON);
        let body = match (reason.filter(|r| !r.is_empty()), dek) {
            (Some(reason), Some(dek)) => {
                let mut body = match &row.body {
                    Some(_) => match self.open_body(dek, row)? {
                        Value::Object(m) => m,
                        _ => return Err(Error::internal("a request's body is not an object")),
                    },
                    None => Map::new(),
                };
                body.insert(REASON.into(), Value::from(reason));
                Some(self.seal_body(
                    dek,
                    RecordKind::Request.name(),
                    &row.id,
                    &Value::Object(body),
                )?)
            }
            _ => row.body.clone(),
        };
        let put = WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                label: Some(status.into()),
                updated: self.now(),
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                body,
                ..row.clone()
            },
            expected_version: Some(row.version),
        };
        // Decided, it no longer blocks the same request being filed again.
        Ok(match guard {
            Some(id) => WriteOp::Atomic(vec![
                put,
                WriteOp::DeleteRecord {
                    tenant: self.tenant.clone(),
                    kind: RecordKind::RequestGuard.name().into(),
                    id,
                },
            ]),
            None => put,
        })
    }

    fn require_open(meta: &Map<String, Value>) -> Result<()> {
        match field(meta, "status") {
            Some(OPEN) => Ok(()),
            other => Err(Error::new(
                ErrorKind::Conflict,
                format!("{REQUEST_CLOSED}: {}", other.unwrap_or("")),
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
        let approved = self.decided(Some(&subject.dek), &row, APPROVED, reason)?;
        let audit = WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(who, Action::RequestApprove, Some(&subject.token), "ok"),
        };
        let extra = vec![approved, audit];
        let change = || -> Result<Change> {
            Change::from_json(
                change
                    .clone()
                    .ok_or_else(|| Error::internal("a change request has no change"))?,
            )
        };
        match field(&meta, "action").and_then(RequestKind::parse) {
            Some(RequestKind::ForgetMe) => {
                self.erase_user(
                    who,
                    &Action::UserDeleteByRequest.into(),
                    &subject.token,
                    extra,
                )
                .await
            }
            Some(RequestKind::ChangeProfile) => {
                let user = self
                    .store
                    .user(&self.tenant, &subject.token)
                    .await?
                    .ok_or_else(|| Error::not_found("not found"))?;
                self.apply_user_change(
                    who,
                    &Action::UserChangeByRequest.into(),
                    user,
                    &change()?,
                    &extra,
                    Gate::Open,
                )
                .await
                .map(|_| ())
            }
            Some(RequestKind::ChangeApp) => {
                let app = field(&meta, "app")
                    .ok_or_else(|| Error::internal("an app request has no app"))?;
                self.apply_app_change(who, &subject, app, &change()?, &extra)
                    .await
            }
            Some(RequestKind::Withdraw) => {
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
        // A request outlives its erased owner; it can still be canceled, without a
        // reason (see `decided`).
        let dek = match &owner {
            Some(owner) => self.owner_dek(owner).await?,
            None => None,
        };
        self.store
            .write(WriteOp::Atomic(vec![
                self.decided(dek.as_ref(), &row, CANCELED, reason)?,
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::RequestCancel, owner.as_deref(), "ok"),
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
        const ACTION: Action = Action::RequestList;
        let row = self
            .resolve_authorized(who, &ACTION.into(), mode, identity)
            .await?;
        let mut rows = self
            .store
            .records_of(&self.tenant, &row.token, RecordKind::Request.name())
            .await?;
        rows.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let total = rows.len();
        let dek = match row.erased {
            None => self.dek_of(&row)?,
            Some(_) => None,
        };
        let out = page
            .apply(rows)
            .iter()
            .map(|r| self.listed_request(r, dek.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.audit(self.new_event(who, ACTION, Some(&row.token), "ok"))
            .await?;
        Ok((total, out))
    }

    /// Every request with `status` (`None`: of any status), newest change first
    /// (root only).
    pub async fn list_requests(
        &self,
        who: &Principal,
        status: Option<&str>,
        page: Page,
    ) -> Result<(usize, Vec<Value>)> {
        who.require_root()?;
        let statuses = match status {
            None => vec![OPEN, APPROVED, CANCELED],
            Some(s) if [OPEN, APPROVED, CANCELED].contains(&s) => vec![s],
            Some(_) => {
                return Err(Error::bad_request(format!(
                    "bad status: expected {OPEN}, {APPROVED} or {CANCELED}"
                )));
            }
        };
        let mut rows = Vec::new();
        for status in statuses {
            rows.extend(
                self.store
                    .records_by_label(&self.tenant, RecordKind::Request.name(), status)
                    .await?,
            );
        }
        rows.sort_by(|a, b| (b.updated, &b.id).cmp(&(a.updated, &a.id)));
        let total = rows.len();
        // One key per owner on the page, and only for rows that have a body.
        let mut deks: HashMap<String, Option<Dek>> = HashMap::new();
        let mut out = Vec::new();
        for r in page.apply(rows) {
            let dek = match (&r.body, &r.owner) {
                (Some(_), Some(owner)) => {
                    if !deks.contains_key(owner) {
                        let dek = self.owner_dek(owner).await?;
                        deks.insert(owner.clone(), dek);
                    }
                    deks.get(owner).and_then(Option::as_ref)
                }
                _ => None,
            };
            out.push(self.listed_request(&r, dek)?);
        }
        Ok((total, out))
    }
}
