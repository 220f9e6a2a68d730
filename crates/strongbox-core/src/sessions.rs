//! Sessions: server-side JSON documents keyed by a client-chosen UUID, optionally
//! linked to a user named in the body, expiring after at most the configured maximum.
//! The Node `@databunker/session-store` keeps express sessions here.

use serde_json::{Map, Value};
use strongbox_crypto::parse_record_token;
use strongbox_store::{RecordRow, UserRow, WriteOp};

use crate::error::{Error, Result};
use crate::expiry::{Page, capped_expiry, requested_seconds};
use crate::kinds::{Action, RecordKind};
use crate::normalize::USER_INDEXES;
use crate::principal::Principal;
use crate::subjects::{Mode, Subject};
use crate::vault::Vault;

/// A session as read back.
pub struct SessionView {
    pub session: String,
    /// Last write, Unix seconds.
    pub when: i64,
    pub data: Value,
}

fn session_id(sid: &str) -> Result<String> {
    parse_record_token(sid).ok_or_else(|| Error::bad_request("bad uuid"))
}

impl Vault {
    /// The live user a session body names through `login`, `email`, `phone`,
    /// `custom` or `token` (the first of these present decides), if any.
    async fn session_owner(&self, body: &Map<String, Value>) -> Result<Option<UserRow>> {
        for name in USER_INDEXES {
            if body.contains_key(name) {
                let Some(v) = self.config.normalizer.field(name, body.get(name)) else {
                    return Ok(None);
                };
                return self.find_by_index(name, &v).await;
            }
        }
        match body
            .get("token")
            .and_then(Value::as_str)
            .and_then(parse_record_token)
        {
            Some(token) => Ok(self.store.user(&self.tenant, &token).await?),
            None => Ok(None),
        }
    }

    /// Creates or replaces session `sid` (root only). The whole body is kept,
    /// encrypted; `expiration` sets the lifetime, capped by the policy maximum.
    pub async fn put_session(
        &self,
        who: &Principal,
        sid: &str,
        body: Map<String, Value>,
    ) -> Result<String> {
        let sid = session_id(sid)?;
        who.require_root()?;
        if body.is_empty() {
            return Err(Error::bad_request("empty body"));
        }
        let now = self.now();
        let expires = capped_expiry(
            now,
            self.config.policy.max_session_retention,
            requested_seconds(body.get("expiration"), now)?,
        );
        let owner = match self.session_owner(&body).await? {
            Some(row) => self.dek_of(&row)?.map(|dek| (row.token, dek)),
            None => None,
        };
        let data = Value::Object(body);
        let row = match &owner {
            Some((token, dek)) => RecordRow {
                owner: Some(token.clone()),
                body: Some(self.seal_body(dek, RecordKind::Session.name(), &sid, &data)?),
                ..RecordRow::default()
            },
            None => {
                let (dek, kek_version, wrapped) =
                    self.new_record_dek(RecordKind::Session.name(), &sid)?;
                RecordRow {
                    body: Some(self.seal_body(&dek, RecordKind::Session.name(), &sid, &data)?),
                    kek_version: Some(kek_version),
                    wrapped_dek: Some(wrapped),
                    ..RecordRow::default()
                }
            }
        };
        let row = RecordRow {
            created: now,
            updated: now,
            expires: Some(expires),
            ..row
        };
        let record = owner.as_ref().map(|(t, _)| t.as_str());
        self.upsert_record(
            RecordKind::Session.name(),
            &sid,
            |_| Ok(row.clone()),
            self.new_event(who, Action::SessionCreate, record, "ok"),
        )
        .await?;
        Ok(sid)
    }

    /// The key that opens a session's body: its owner's DEK or its own.
    async fn open_session(&self, row: &RecordRow) -> Result<Option<Value>> {
        let dek = match &row.owner {
            Some(owner) => match self.store.user(&self.tenant, owner).await? {
                Some(user) => self.dek_of(&user)?,
                None => None,
            },
            None => self.own_dek(row)?,
        };
        match dek {
            Some(dek) => self.open_body(&dek, row).map(Some),
            None => Ok(None),
        }
    }

    /// Reads session `sid`: root, or the user it is linked to.
    pub async fn get_session(&self, who: &Principal, sid: &str) -> Result<SessionView> {
        const ACTION: Action = Action::SessionGet;
        let sid = session_id(sid)?;
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::Session.name(), &sid)
            .await?
        else {
            return Err(Error::not_found("not found"));
        };
        match &row.owner {
            Some(owner) => who.may_access(owner)?,
            None => who.require_root()?,
        }
        if row.expires.is_some_and(|e| e <= self.now()) {
            self.delete_record(
                RecordKind::Session.name(),
                &sid,
                self.new_event(who, ACTION, row.owner.as_deref(), "expired"),
            )
            .await?;
            return Err(Error::not_found("session expired"));
        }
        let Some(data) = self.open_session(&row).await? else {
            // Its owner was erased in between: the body cannot be opened any more.
            return Err(Error::not_found("not found"));
        };
        self.audit(self.new_event(who, ACTION, row.owner.as_deref(), "ok"))
            .await?;
        Ok(SessionView {
            session: sid,
            when: row.updated,
            data,
        })
    }

    /// Deletes session `sid` (root only); done even when there was none.
    pub async fn delete_session(&self, who: &Principal, sid: &str) -> Result<()> {
        let sid = session_id(sid)?;
        who.require_root()?;
        let owner = self
            .store
            .record(&self.tenant, RecordKind::Session.name(), &sid)
            .await?
            .and_then(|r| r.owner);
        self.delete_record(
            RecordKind::Session.name(),
            &sid,
            self.new_event(who, Action::SessionDelete, owner.as_deref(), "ok"),
        )
        .await
    }

    /// A user's live sessions, by session id: (total, page of sessions). Expired
    /// sessions of the user are deleted on the way.
    pub async fn list_sessions(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        page: Page,
    ) -> Result<(usize, Vec<SessionView>)> {
        const ACTION: Action = Action::SessionList;
        let subject = self.subject(who, &ACTION.into(), mode, identity).await?;
        let now = self.now();
        let rows = self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::Session.name())
            .await?;
        let (expired, live): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|r| r.expires.is_some_and(|e| e <= now));
        let mut ops: Vec<WriteOp> = expired
            .into_iter()
            .map(|r| WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Session.name().to_string(),
                id: r.id,
            })
            .collect();
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(who, ACTION, Some(&subject.token), "ok"),
        });
        let total = live.len();
        let mut out = Vec::new();
        for row in page.apply(live) {
            out.push(SessionView {
                data: self.open_body(&subject.dek, &row)?,
                session: row.id,
                when: row.updated,
            });
        }
        self.store.write(WriteOp::Atomic(ops)).await?;
        Ok((total, out))
    }

    /// The live sessions of `subject` (not audited: for a caller that audits the
    /// whole read).
    pub(crate) async fn sessions_of(&self, subject: &Subject) -> Result<Vec<SessionView>> {
        let now = self.now();
        let mut out = Vec::new();
        for row in self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::Session.name())
            .await?
        {
            if row.expires.is_some_and(|e| e <= now) {
                continue;
            }
            out.push(SessionView {
                data: self.open_body(&subject.dek, &row)?,
                session: row.id,
                when: row.updated,
            });
        }
        Ok(out)
    }

    /// Deletes every expired session (the background sweeper's job).
    pub async fn purge_expired_sessions(&self) -> Result<()> {
        self.store
            .write(WriteOp::DeleteExpired {
                tenant: self.tenant.clone(),
                kind: RecordKind::Session.name().to_string(),
                now: self.now(),
            })
            .await?;
        Ok(())
    }
}
