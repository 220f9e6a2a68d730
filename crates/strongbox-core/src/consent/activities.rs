//! Processing activities (what is done under which legal bases) and the cookie
//! banner's feed built from them.

use serde_json::{Map, Value, json};
use strongbox_store::{RecordRow, StoreError, WriteOp};

use super::*;
use crate::error::{Error, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::vault::Vault;

impl Vault {
    // ---- processing activities ---------------------------------------------------

    /// Every processing activity with its legal bases (root only).
    pub async fn list_activities(&self, who: &Principal) -> Result<Vec<Value>> {
        who.require_root()?;
        let bases = self.list_legal_bases(who).await?;
        let mut out = Vec::new();
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::Activity.name())
            .await?
        {
            let mut meta = meta_of(&row)?;
            let linked = activity_briefs(&meta);
            let briefs: Vec<Value> = bases
                .iter()
                .filter(|b| {
                    b.get("brief")
                        .and_then(Value::as_str)
                        .is_some_and(|s| linked.iter().any(|l| l == s))
                })
                .cloned()
                .collect();
            meta.insert("briefs".into(), Value::from(briefs));
            out.push(Value::Object(meta));
        }
        Ok(out)
    }

    /// Creates or changes processing activity `activity` (root only); with
    /// `must_exist`, only changes it (404 when there is none).
    pub async fn put_activity(
        &self,
        who: &Principal,
        activity: &str,
        body: Map<String, Value>,
        must_exist: bool,
    ) -> Result<()> {
        who.require_root()?;
        let activity = parse_brief(activity, "bad activity format")?;
        let target = match text(&body, "activity")? {
            Some(a) => parse_brief(&a, "bad activity format")?,
            None => activity.clone(),
        };
        let now = self.now();
        let current = match self
            .store
            .record(&self.tenant, RecordKind::Activity.name(), &activity)
            .await?
        {
            Some(row) => Some(meta_of(&row)?),
            None if must_exist => return Err(Error::not_found("not found")),
            None => None,
        };
        let mut meta = current.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            for key in ["script", "fulldesc", "applicableto", "legalbasis"] {
                m.insert(key.into(), Value::from(""));
            }
            m.insert("title".into(), Value::from(target.clone()));
            m.insert("creationtime".into(), Value::from(now));
            m
        });
        meta.insert("activity".into(), Value::from(target.clone()));
        for key in ["title", "script", "fulldesc", "applicableto"] {
            if let Some(v) = text(&body, key)? {
                meta.insert(key.into(), Value::from(v));
            }
        }
        self.put_catalog_entry(
            RecordKind::Activity.name(),
            &activity,
            &target,
            &meta,
            current.is_some(),
            self.new_event(who, Action::ActivityChange, None, "ok"),
            "a processing activity with that name exists",
        )
        .await
    }

    /// Writes catalogue entry `kind`/`target` (a legal basis, a processing activity)
    /// with `meta`. A `target` other than `id` is a rename: the new key must be free
    /// (409 `taken` otherwise) and the old entry goes in the same commit.
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one part of the consent record; a struct would only rename them"
    )]
    pub(super) async fn put_catalog_entry(
        &self,
        kind: &str,
        id: &str,
        target: &str,
        meta: &Map<String, Value>,
        existed: bool,
        audit: strongbox_store::AuditEvent,
        taken: &str,
    ) -> Result<()> {
        let now = self.now();
        let row = RecordRow {
            kind: kind.into(),
            id: target.into(),
            created: now,
            updated: now,
            version: 1,
            meta: Some(meta_bytes(meta)?),
            ..RecordRow::default()
        };
        if target == id {
            self.upsert_record(kind, id, |_| Ok(row.clone()), audit)
                .await?;
            return Ok(());
        }
        let mut ops = vec![WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: row,
            expected_version: None,
        }];
        if existed {
            ops.push(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: kind.into(),
                id: id.into(),
            });
        }
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit,
        });
        match self.store.write(WriteOp::Atomic(ops)).await {
            Err(StoreError::Duplicate(_)) => Err(Error::new(crate::ErrorKind::Conflict, taken)),
            other => Ok(other?),
        }
    }

    /// Deletes processing activity `activity` (root only).
    pub async fn delete_activity(&self, who: &Principal, activity: &str) -> Result<()> {
        who.require_root()?;
        let activity = parse_brief(activity, "bad activity format")?;
        self.delete_record(
            RecordKind::Activity.name(),
            &activity,
            self.new_event(who, Action::ActivityDelete, None, "ok"),
        )
        .await
    }

    /// Links (`link`) or unlinks legal basis `brief` to processing activity
    /// `activity` (root only).
    pub async fn link_activity(
        &self,
        who: &Principal,
        activity: &str,
        brief: &str,
        link: bool,
    ) -> Result<()> {
        who.require_root()?;
        let activity = parse_brief(activity, "bad activity format")?;
        let brief = parse_brief(brief, "bad brief format")?;
        if link && self.legal_basis(&brief).await?.is_none() {
            return Err(Error::not_found("not found"));
        }
        self.upsert_record(
            RecordKind::Activity.name(),
            &activity,
            |current| {
                let current = current.ok_or_else(|| Error::not_found("not found"))?;
                let mut meta = meta_of(current)?;
                let mut briefs = activity_briefs(&meta);
                briefs.retain(|b| *b != brief);
                if link {
                    briefs.push(brief.clone());
                }
                meta.insert("legalbasis".into(), Value::from(briefs.join(",")));
                Ok(RecordRow {
                    meta: Some(meta_bytes(&meta)?),
                    updated: self.now(),
                    ..current.clone()
                })
            },
            self.new_event(who, Action::ActivityChange, None, "ok"),
        )
        .await?;
        Ok(())
    }

    /// What a cookie banner needs (no authentication): the active legal bases of
    /// module `cookie-popup`, required ones first, and the scripts of the processing
    /// activities linked to them.
    pub async fn cookie_settings(&self) -> Result<(Vec<Value>, Vec<Value>)> {
        let rows = self.active_legal_bases("cookie-popup").await?;
        let cookie_briefs: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.get("brief").and_then(Value::as_str))
            .collect();
        let mut scripts = Vec::new();
        for row in self
            .store
            .records_of_kind(&self.tenant, RecordKind::Activity.name())
            .await?
        {
            let meta = meta_of(&row)?;
            let script = meta.get("script").and_then(Value::as_str).unwrap_or("");
            let briefs: Vec<String> = activity_briefs(&meta)
                .into_iter()
                .filter(|b| cookie_briefs.contains(&b.as_str()))
                .collect();
            if !script.is_empty() && !briefs.is_empty() {
                scripts.push(json!({"briefs": briefs, "script": script}));
            }
        }
        Ok((rows, scripts))
    }
}
