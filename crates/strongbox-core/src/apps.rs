//! User app data: per-application JSON documents of a user, kept apart from the
//! profile (an order service may read the shipping address without ever receiving the
//! name, email or phone). Sealed under the user's DEK, erased with the user.

use serde_json::{Map, Value, json};
use strongbox_store::{RecordRow, StoreError, WriteOp};

use crate::change::{Change, Outcome, Route};
use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Action, RecordKind, RequestKind};
use crate::principal::Principal;
use crate::subjects::{Mode, Subject};
use crate::vault::Vault;

/// An app name as Databunker accepts it: lower-cased, then `[a-z][a-z0-9_]{1,30}`.
pub fn parse_app_name(name: &str) -> Result<String> {
    let name = name.to_ascii_lowercase();
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && (2..=31).contains(&name.len())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(Error::bad_request("bad appname"))
    }
}

/// Attempts at a read-modify-write of one app document under contention.
const MAX_APP_ATTEMPTS: usize = 64;

fn app_id(token: &str, app: &str) -> String {
    format!("{token}/{app}")
}

impl Vault {
    /// Creates or replaces a user's document for `app`. A user whose app is not in
    /// self service may create their document, but replacing an existing one files a
    /// request for the DPO (like a change), so the setting covers every write.
    pub async fn put_app(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        app: &str,
        doc: Map<String, Value>,
    ) -> Result<Outcome> {
        let app = parse_app_name(app)?;
        let action = Action::AppCreate.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        if doc.is_empty() {
            return Err(Error::bad_request("empty body"));
        }
        let restricted = self.app_needs_approval(who, &app);
        let id = app_id(&subject.token, &app);
        let doc = Value::Object(doc);
        let body = self.seal_body(&subject.dek, RecordKind::App.name(), &id, &doc)?;
        let mut audit = self.new_event(who, &action, Some(&subject.token), "ok");
        audit.app = Some(app.clone());
        let audit = self.with_detail(audit, &subject.dek, &json!({ "after": doc }))?;
        let now = self.now();
        let mut exists = false;
        let written = self
            .upsert_record(
                RecordKind::App.name(),
                &id,
                |current| {
                    if restricted && current.is_some() {
                        exists = true;
                        return Err(Error::new(ErrorKind::Conflict, "the document exists"));
                    }
                    Ok(RecordRow {
                        owner: Some(subject.token.clone()),
                        label: Some(app.clone()),
                        created: now,
                        updated: now,
                        body: Some(body.clone()),
                        ..RecordRow::default()
                    })
                },
                audit,
            )
            .await;
        match written {
            Err(_) if exists => {
                // The whole document replaced, as a change the DPO can approve.
                let change =
                    Change::from_json(json!([{"op": "replace", "path": "", "value": doc}]))?;
                self.file_request(
                    who,
                    &subject,
                    RequestKind::ChangeApp,
                    Some(&app),
                    None,
                    Some(change.to_json()?),
                )
                .await
            }
            Err(e) => Err(e),
            Ok(_) => Ok(Outcome::Done(subject.token)),
        }
    }

    /// Whether `who` changing a document of `app` needs a DPO's approval: a user's
    /// own change does unless the app is in self service.
    fn app_needs_approval(&self, who: &Principal, app: &str) -> bool {
        matches!(who, Principal::User { .. }) && !self.config.self_service.allows_app(app)
    }

    /// Reads a user's document for `app`: (user token, document).
    pub async fn get_app(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        app: &str,
    ) -> Result<(String, Value)> {
        let app = parse_app_name(app)?;
        let action = Action::AppGet.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let id = app_id(&subject.token, &app);
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::App.name(), &id)
            .await?
        else {
            self.audit(self.new_event(who, &action, Some(&subject.token), "not-found"))
                .await?;
            return Err(Error::not_found("not found"));
        };
        let doc = self.open_body(&subject.dek, &row)?;
        self.audit(self.new_event(who, &action, Some(&subject.token), "ok"))
            .await?;
        Ok((subject.token, doc))
    }

    /// Changes a user's document for `app` (merge patch or JSON Patch). A user
    /// changing their own app data files a request for the DPO instead, unless the
    /// app matches a self-service pattern; [`Route::Request`] files it whoever asks.
    pub async fn update_app(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        app: &str,
        change: Change,
        route: Route,
    ) -> Result<Outcome> {
        let app = parse_app_name(app)?;
        let action = Action::AppChange.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        if route == Route::Request || self.app_needs_approval(who, &app) {
            // The change is tried on the current document now, so one that cannot
            // apply (a bad patch, a document past the size limit) is refused before
            // anything is stored, not when a DPO approves it.
            match self.app_document(&subject, &app).await? {
                None => return Err(Error::not_found("not found")),
                Some(Value::Object(doc)) => {
                    change.apply_to(
                        doc,
                        "error updating app data",
                        self.config.max_document_bytes,
                    )?;
                }
                Some(_) => return Err(Error::internal("an app document is not an object")),
            }
            return self
                .file_request(
                    who,
                    &subject,
                    RequestKind::ChangeApp,
                    Some(&app),
                    None,
                    Some(change.to_json()?),
                )
                .await;
        }
        self.apply_app_change(who, &subject, &app, &change, &[])
            .await?;
        Ok(Outcome::Done(subject.token))
    }

    /// Applies `change` to `subject`'s document for `app`, committing `extra` with it.
    pub(crate) async fn apply_app_change(
        &self,
        who: &Principal,
        subject: &Subject,
        app: &str,
        change: &Change,
        extra: &[WriteOp],
    ) -> Result<()> {
        let id = app_id(&subject.token, app);
        let mut audit = self.new_event(who, Action::AppWrite, Some(&subject.token), "ok");
        audit.app = Some(app.to_string());
        // The event carries the document before and after, so it is built on each
        // attempt, once the current document is known.
        for _ in 0..MAX_APP_ATTEMPTS {
            let Some(current) = self
                .store
                .record(&self.tenant, RecordKind::App.name(), &id)
                .await?
            else {
                return Err(Error::not_found("not found"));
            };
            let old = match self.open_body(&subject.dek, &current)? {
                Value::Object(m) => m,
                _ => return Err(Error::internal("an app document is not an object")),
            };
            let new = Value::Object(change.apply_to(
                old.clone(),
                "error updating app data",
                self.config.max_document_bytes,
            )?);
            let event = self.with_detail(
                audit.clone(),
                &subject.dek,
                &json!({ "before": Value::Object(old), "after": new }),
            )?;
            let row = RecordRow {
                kind: RecordKind::App.name().into(),
                id: id.clone(),
                owner: Some(subject.token.clone()),
                label: Some(app.to_string()),
                created: current.created,
                updated: self.now(),
                version: current.version + 1,
                body: Some(self.seal_body(&subject.dek, RecordKind::App.name(), &id, &new)?),
                ..RecordRow::default()
            };
            let mut ops = vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: row,
                    expected_version: Some(current.version),
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: event,
                },
            ];
            ops.extend_from_slice(extra);
            match self.store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal(
            "app data update retried too often under contention",
        ))
    }

    /// `subject`'s document for `app`, if any.
    /// Every application document of `subject`, by application (not audited: for a
    /// caller that audits the whole read).
    pub(crate) async fn app_documents(&self, subject: &Subject) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for row in self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::App.name())
            .await?
        {
            let name = row
                .label
                .clone()
                .ok_or_else(|| Error::internal("an app document has no app name"))?;
            out.insert(name, self.open_body(&subject.dek, &row)?);
        }
        Ok(out)
    }

    pub(crate) async fn app_document(&self, subject: &Subject, app: &str) -> Result<Option<Value>> {
        let id = app_id(&subject.token, app);
        match self
            .store
            .record(&self.tenant, RecordKind::App.name(), &id)
            .await?
        {
            Some(row) => self.open_body(&subject.dek, &row).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes a user's document for `app` (done even when there was none).
    pub async fn delete_app(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        app: &str,
    ) -> Result<String> {
        let app = parse_app_name(app)?;
        let action = Action::AppDelete.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        if self.app_needs_approval(who, &app) {
            // There is no request to delete app data: the DPO deletes it, or the
            // user asks to be forgotten.
            self.audit(self.new_event(who, &action, Some(&subject.token), "denied"))
                .await?;
            return Err(Error::new(
                ErrorKind::Forbidden,
                "access denied: deleting this app's data is not self service; ask the DPO",
            ));
        }
        let id = app_id(&subject.token, &app);
        self.delete_record(
            RecordKind::App.name(),
            &id,
            self.new_event(who, &action, Some(&subject.token), "ok"),
        )
        .await?;
        Ok(subject.token)
    }

    /// The apps a user has documents for, newest name first (as Databunker sorts).
    pub async fn list_user_apps(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<(String, Vec<String>)> {
        let action = Action::AppList.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let rows = self
            .store
            .records_of(&self.tenant, &subject.token, RecordKind::App.name())
            .await?;
        let mut apps: Vec<String> = rows.into_iter().filter_map(|r| r.label).collect();
        apps.sort_unstable_by(|a, b| b.cmp(a));
        self.audit(self.new_event(who, &action, Some(&subject.token), "ok"))
            .await?;
        Ok((subject.token, apps))
    }

    /// Every app name in use (root only), sorted.
    pub async fn list_app_names(&self, who: &Principal) -> Result<Vec<String>> {
        who.require_root()?;
        Ok(self
            .store
            .record_labels(&self.tenant, RecordKind::App.name())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_app_name;

    #[test]
    fn app_names() {
        assert_eq!(parse_app_name("Shipping").unwrap(), "shipping");
        assert_eq!(parse_app_name("a1_b").unwrap(), "a1_b");
        for bad in ["a", "1app", "app!123", "app-x", "", &"a".repeat(32)] {
            assert!(parse_app_name(bad).is_err(), "{bad}");
        }
        assert!(parse_app_name(&"a".repeat(31)).is_ok());
    }
}
