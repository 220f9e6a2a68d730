//! Legal bases: the catalogue of purposes (organisation data, plaintext).

use serde_json::{Map, Value, json};
use strongbox_store::RecordRow;

use super::*;
use crate::error::{Error, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::vault::Vault;

impl Vault {
    // ---- legal bases -------------------------------------------------------------

    /// Writes the two legal bases every Databunker install starts with.
    pub(crate) fn default_legal_bases(now: i64) -> Vec<RecordRow> {
        [
            (
                "core-send-email-on-login",
                "Send email on login",
                "Confirm to allow sending access code using 3rd party email gateway",
            ),
            (
                "core-send-sms-on-login",
                "Send SMS on login",
                "Confirm to allow sending access code using 3rd party SMS gateway",
            ),
        ]
        .into_iter()
        .map(|(brief, short, full)| {
            let meta = json!({
                "basistype": "consent", "brief": brief, "creationtime": now, "fulldesc": full,
                "module": "login", "requiredflag": true,
                "requiredmsg": "This consent is required to give you our service.",
                "shortdesc": short, "status": "active", "usercontrol": true,
            });
            RecordRow {
                kind: RecordKind::LegalBasis.name().into(),
                id: brief.into(),
                created: now,
                updated: now,
                version: 1,
                meta: serde_json::to_vec(&meta).ok(),
                ..RecordRow::default()
            }
        })
        .collect()
    }

    pub(super) async fn legal_basis(&self, brief: &str) -> Result<Option<Map<String, Value>>> {
        match self
            .store
            .record(&self.tenant, RecordKind::LegalBasis.name(), brief)
            .await?
        {
            Some(row) => meta_of(&row).map(Some),
            None => Ok(None),
        }
    }

    /// The active legal bases of `module` (no authentication: what a cookie banner or
    /// the login page shows), required ones first.
    pub async fn active_legal_bases(&self, module: &str) -> Result<Vec<Value>> {
        let mut rows: Vec<Value> = Vec::new();
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::LegalBasis.name())
            .await?
        {
            let meta = meta_of(&row)?;
            if meta.get("status") == Some(&Value::from("active"))
                && meta.get("module") == Some(&Value::from(module))
            {
                rows.push(Value::Object(meta));
            }
        }
        rows.sort_by_key(|r| r.get("requiredflag") != Some(&Value::Bool(true)));
        Ok(rows)
    }

    /// Every legal basis, by brief, for root; the active ones for a person (their
    /// access token), so the privacy portal can offer them (organisation data, no
    /// personal data; a Strongbox extension: Databunker answers root only).
    pub async fn list_legal_bases(&self, who: &Principal) -> Result<Vec<Value>> {
        let person = matches!(who, Principal::User { .. });
        if !person {
            who.require_root()?;
        }
        let mut out = Vec::new();
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::LegalBasis.name())
            .await?
        {
            let meta = meta_of(&row)?;
            if !person || meta.get("status") == Some(&Value::from("active")) {
                out.push(Value::Object(meta));
            }
        }
        Ok(out)
    }

    /// Creates or changes legal basis `brief` (root only). Fields absent from the
    /// body keep their value; a `brief` field renames it. With `must_exist`, only
    /// changes it (404 when there is none).
    pub async fn put_legal_basis(
        &self,
        who: &Principal,
        brief: &str,
        body: Map<String, Value>,
        must_exist: bool,
    ) -> Result<()> {
        who.require_root()?;
        let brief = parse_brief(brief, "bad brief format")?;
        let target = match text(&body, "brief")? {
            Some(b) => parse_brief(&b, "bad brief format")?,
            None => brief.clone(),
        };
        let now = self.now();
        let current = self.legal_basis(&brief).await?;
        if must_exist && current.is_none() {
            return Err(crate::error::Error::not_found("not found"));
        }
        let mut meta = current.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            for key in [
                "basistype",
                "fulldesc",
                "module",
                "requiredmsg",
                "shortdesc",
            ] {
                m.insert(key.into(), Value::from(""));
            }
            m.insert("creationtime".into(), Value::from(now));
            m.insert("requiredflag".into(), Value::from(false));
            m.insert("usercontrol".into(), Value::from(false));
            m.insert("status".into(), Value::from("active"));
            m
        });
        meta.insert("brief".into(), Value::from(target.clone()));
        if let Some(status) = text(&body, "status")? {
            let status = if status.trim().eq_ignore_ascii_case("disabled") {
                "disabled"
            } else {
                "active"
            };
            meta.insert("status".into(), Value::from(status));
        }
        for key in [
            "module",
            "shortdesc",
            "fulldesc",
            "basistype",
            "requiredmsg",
        ] {
            if let Some(v) = text(&body, key)? {
                meta.insert(key.into(), Value::from(v));
            }
        }
        for key in ["usercontrol", "requiredflag"] {
            if let Some(v) = flag(&body, key)? {
                meta.insert(key.into(), Value::from(v));
            }
        }
        if meta.get("requiredflag") != Some(&Value::Bool(true)) {
            meta.insert("requiredmsg".into(), Value::from(""));
        }
        self.put_catalog_entry(
            RecordKind::LegalBasis.name(),
            &brief,
            &target,
            &meta,
            current.is_some(),
            self.new_event(who, Action::LegalBasisChange, None, "ok"),
            "a legal basis with that brief exists",
        )
        .await
    }

    /// Deletes legal basis `brief` (root only). It leaves every processing activity;
    /// if agreements use it, they are revoked and it is kept with status `deleted`.
    pub async fn delete_legal_basis(&self, who: &Principal, brief: &str) -> Result<()> {
        who.require_root()?;
        let brief = parse_brief(brief, "bad brief format")?;
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::Activity.name())
            .await?
        {
            if activity_briefs(&meta_of(&row)?).contains(&brief) {
                self.link_activity(who, &row.id, &brief, false).await?;
            }
        }
        let agreements = self
            .store
            .records_by_label(&self.tenant, RecordKind::Agreement.name(), &brief)
            .await?;
        if agreements.is_empty() {
            return self
                .delete_record(
                    RecordKind::LegalBasis.name(),
                    &brief,
                    self.new_event(who, Action::LegalBasisDelete, None, "ok"),
                )
                .await;
        }
        self.revoke_agreements(who, &brief).await?;
        self.upsert_record(
            RecordKind::LegalBasis.name(),
            &brief,
            |current| {
                let current = current.ok_or_else(|| Error::not_found("not found"))?;
                let mut meta = meta_of(current)?;
                meta.insert("status".into(), Value::from("deleted"));
                Ok(RecordRow {
                    updated: self.now(),
                    meta: Some(meta_bytes(&meta)?),
                    ..RecordRow::default()
                })
            },
            self.new_event(who, Action::LegalBasisDelete, None, "ok"),
        )
        .await?;
        Ok(())
    }
}
