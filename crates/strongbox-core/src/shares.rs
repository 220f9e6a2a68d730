//! Shared records: a time-limited view of chosen fields of a user's profile, app
//! document or session, for a partner. The record's random id is the capability:
//! whoever holds it reads the view without a token until it expires. Nothing is
//! copied: the view is cut from the current data when read, and erasing the user
//! ends it. Who the record is for (`partner`) is about the person, so it is sealed
//! under their DEK as the record's body; the rest of its metadata (what is shared,
//! until when) is plaintext.

use serde_json::{Map, Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::RecordRow;

use crate::apps::parse_app_name;
use crate::error::{Error, Result};
use crate::expiry::{capped_expiry, requested_seconds};
use crate::kinds::{Action, RecordKind};
use crate::policy::Part;
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// What a shared record shows.
pub struct SharedView {
    pub app: Option<String>,
    pub session: Option<String>,
    pub data: Value,
}

/// The value at a dotted path (`address.city`, `devices.0.name`), as gjson reads
/// Databunker's field lists; `None` when there is none.
fn at_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn text(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Error::bad_request(format!("bad {key}: expected a string"))),
    }
}

impl Vault {
    /// Creates a shared record of user `{mode}/{identity}`. Body: `fields`
    /// (comma-separated paths; all fields when absent), `app` or `session` (what to
    /// share instead of the profile), `partner`, `expiration` (capped by policy).
    pub async fn create_share(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        body: Map<String, Value>,
    ) -> Result<String> {
        let action = Action::ShareCreate.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        // What the share hands out is what a role must be allowed to reach.
        let part = if text(&body, "app")?.is_some() {
            Part::AppData
        } else if text(&body, "session")?.is_some() {
            Part::Session
        } else {
            Part::Profile(None)
        };
        self.authorize(who, &action, &subject.token, &part).await?;
        let now = self.now();
        let app = match text(&body, "app")? {
            Some(a) => {
                let a = parse_app_name(&a).map_err(|_| Error::bad_request("unknown app name"))?;
                if self.app_document(&subject, &a).await?.is_none() {
                    return Err(Error::not_found("app not found"));
                }
                Some(a)
            }
            None => None,
        };
        let session = match text(&body, "session")? {
            Some(s) => {
                let sid =
                    parse_record_token(&s).ok_or_else(|| Error::bad_request("bad session"))?;
                let row = self
                    .store
                    .record(&self.tenant, RecordKind::Session.name(), &sid)
                    .await?;
                if row.and_then(|r| r.owner).as_deref() != Some(subject.token.as_str()) {
                    return Err(Error::not_found("session not found"));
                }
                Some(sid)
            }
            None => None,
        };
        let fields = text(&body, "fields")?;
        let partner = text(&body, "partner")?;
        let expires = capped_expiry(
            now,
            self.config.policy.max_shareable_record_retention,
            requested_seconds(body.get("expiration"), now)?,
        );
        let record = new_record_token();
        let meta = json!({ "app": app, "session": session, "fields": fields });
        // Databunker stores the partner but never shows it; it is kept, sealed.
        let body = match partner {
            Some(partner) => Some(self.seal_body(
                &subject.dek,
                RecordKind::Share.name(),
                &record,
                &json!({ "partner": partner }),
            )?),
            None => None,
        };
        self.upsert_record(
            RecordKind::Share.name(),
            &record,
            |current| {
                if current.is_some() {
                    return Err(Error::internal("a fresh shared-record id collided"));
                }
                Ok(RecordRow {
                    owner: Some(subject.token.clone()),
                    created: now,
                    updated: now,
                    expires: Some(expires),
                    meta: serde_json::to_vec(&meta).ok(),
                    body: body.clone(),
                    ..RecordRow::default()
                })
            },
            self.new_event(who, &action, Some(&subject.token), "ok"),
        )
        .await?;
        Ok(record)
    }

    /// Reads shared record `record` (no token: the id is the capability). Unknown
    /// and expired records are "not found" alike.
    pub async fn get_share(&self, record: &str) -> Result<SharedView> {
        const ACTION: Action = Action::ShareGet;
        let record = parse_record_token(record).ok_or_else(|| Error::bad_request("bad uuid"))?;
        let row = self
            .store
            .record(&self.tenant, RecordKind::Share.name(), &record)
            .await?;
        let Some(row) = row.filter(|r| r.expires.is_some_and(|e| e > self.now())) else {
            return Err(Error::not_found("not found"));
        };
        let owner = row
            .owner
            .clone()
            .ok_or_else(|| Error::internal("a shared record has no owner"))?;
        let meta: Map<String, Value> = match row.meta.as_deref().map(serde_json::from_slice) {
            Some(Ok(Value::Object(m))) => m,
            _ => {
                return Err(Error::internal(
                    "a shared record's metadata is not an object",
                ));
            }
        };
        let get = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        let (app, session) = (get("app"), get("session"));
        let user = self
            .store
            .user(&self.tenant, &owner)
            .await?
            .ok_or_else(|| Error::not_found("not found"))?;
        let subject = self.live(user)?;
        let doc = match (&app, &session) {
            (Some(app), _) => self
                .app_document(&subject, app)
                .await?
                .ok_or_else(|| Error::not_found("not found"))?,
            (None, Some(sid)) => {
                let s = self
                    .store
                    .record(&self.tenant, RecordKind::Session.name(), sid)
                    .await?
                    .filter(|s| s.expires.is_none_or(|e| e > self.now()))
                    // Written again since for someone else (or for nobody): it is no
                    // longer this person's, and is sealed under another key.
                    .filter(|s| s.owner.as_deref() == Some(subject.token.as_str()))
                    .ok_or_else(|| Error::not_found("not found"))?;
                self.open_body(&subject.dek, &s)?
            }
            (None, None) => self.profile_of(&subject).await?,
        };
        let data = match get("fields") {
            None => doc,
            Some(fields) => {
                let mut out = Map::new();
                for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    let v = if f == "token" {
                        Value::from(subject.token.clone())
                    } else {
                        at_path(&doc, f).cloned().unwrap_or(Value::Null)
                    };
                    out.insert(f.to_string(), v);
                }
                Value::Object(out)
            }
        };
        self.audit(self.new_event(&Principal::Anonymous, ACTION, Some(&subject.token), "ok"))
            .await?;
        Ok(SharedView { app, session, data })
    }

    /// Deletes expired shared records (the sweeper's job).
    pub(crate) async fn purge_expired_shares(&self) -> Result<()> {
        self.store
            .write(strongbox_store::WriteOp::DeleteExpired {
                tenant: self.tenant.clone(),
                kind: RecordKind::Share.name().to_string(),
                now: self.now(),
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::at_path;
    use serde_json::json;

    #[test]
    fn paths() {
        let d = json!({"a": {"b": 1}, "l": [{"n": "x"}], "k": null});
        assert_eq!(at_path(&d, "a.b"), Some(&json!(1)));
        assert_eq!(at_path(&d, "l.0.n"), Some(&json!("x")));
        assert_eq!(at_path(&d, "l.1.n"), None);
        assert_eq!(at_path(&d, "a.c"), None);
        assert_eq!(at_path(&d, "k"), Some(&json!(null)));
    }
}
