//! Signed erasure receipts and "who accessed my data" reports.
//!
//! Erasing a subject (a DELETE, an approved forget-me request, retention expiry)
//! commits, with the erasure itself, a draft receipt: the subject's token, when, why,
//! what was destroyed (a fingerprint of the wrapped DEK, and how many documents of
//! each kind went with it) and the erasure's audit event. Right after the commit the
//! event is sealed into the audit chain, and the receipt gets the event's chain
//! position and link and is signed with the vault's key. If that second step fails
//! (a crash in between), the receipt is completed the next time it is asked for.
//!
//! Receipts hold no personal data (the token is random), so they outlive the person
//! they are about — that is their point — and, being a list of who was erased and
//! when, they are also the erasure ledger.

use serde_json::{Map, Value, json};
use strongbox_crypto::{SignedKind, fingerprint, parse_record_token};
use strongbox_store::{AuditEvent, RecordRow, WriteOp};

use crate::chain::signed;
use crate::error::{Error, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::vault::Vault;

/// What the receipt calls each kind of document an erasure destroys.
const DESTROYED_KINDS: &[(&str, &str)] = &[
    (RecordKind::App.name(), "app_documents"),
    (RecordKind::Session.name(), "sessions"),
    (RecordKind::Agreement.name(), "consents"),
    (RecordKind::AccessToken.name(), "access_tokens"),
    (RecordKind::Share.name(), "shared_records"),
    (RecordKind::Retention.name(), "retention_records"),
];

/// Audit events listed in one report at most.
const REPORT_LIMIT: usize = 10_000;

fn meta_of(row: &RecordRow) -> Result<Map<String, Value>> {
    let bytes = row
        .meta
        .as_deref()
        .ok_or_else(|| Error::internal("a receipt has no content"))?;
    serde_json::from_slice(bytes).map_err(Error::internal)
}

impl Vault {
    /// The draft receipt for erasing `token` with audit `event`, as ops to commit
    /// with the erasure (none if the subject has a receipt already).
    pub(crate) async fn receipt_draft(
        &self,
        token: &str,
        event: &AuditEvent,
    ) -> Result<Vec<WriteOp>> {
        // Erasing an erased subject again changes nothing, and its receipt stays the
        // one of the erasure that destroyed the data.
        if self
            .store
            .record(&self.tenant, RecordKind::Receipt.name(), token)
            .await?
            .is_some()
        {
            return Ok(Vec::new());
        }
        let user = self.store.user(&self.tenant, token).await?;
        let mut destroyed = Map::new();
        destroyed.insert(
            "dek".into(),
            user.as_ref()
                .and_then(|u| u.wrapped_dek.as_deref())
                .map(|w| Value::from(fingerprint(w)))
                .unwrap_or(Value::Null),
        );
        destroyed.insert(
            "profile".into(),
            Value::from(user.as_ref().is_some_and(|u| u.data.is_some())),
        );
        for (kind, name) in DESTROYED_KINDS {
            let n = self
                .store
                .records_of(&self.tenant, token, kind)
                .await?
                .len();
            destroyed.insert((*name).into(), Value::from(n));
        }
        let after = self
            .store
            .audit_head(&self.tenant)
            .await?
            .map_or(0, |h| h.seq);
        let receipt = json!({
            "type": "erasure",
            "version": 1,
            "tenant": self.tenant,
            "subject": token,
            "erased": event.at,
            "erased_at": crate::expiry::rfc3339(event.at),
            "reason": event.action,
            "destroyed": destroyed,
            "audit": {"event": event.atoken},
            "publickey": self.public_key_hex(),
        });
        let meta = json!({"receipt": receipt, "after": after});
        let now = self.now();
        Ok(vec![WriteOp::PutRecord {
            tenant: self.tenant.clone(),
            record: RecordRow {
                kind: RecordKind::Receipt.name().into(),
                id: token.into(),
                created: now,
                updated: now,
                version: 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..RecordRow::default()
            },
            expected_version: None,
        }])
    }

    /// The signed receipt of `token`'s erasure, completing it first if needed.
    /// `None` if the subject was never erased.
    pub(crate) async fn finish_receipt(&self, token: &str) -> Result<Option<Value>> {
        for _ in 0..8 {
            let Some(row) = self
                .store
                .record(&self.tenant, RecordKind::Receipt.name(), token)
                .await?
            else {
                return Ok(None);
            };
            let meta = meta_of(&row)?;
            if let Some(done) = meta.get("signed") {
                return Ok(Some(done.clone()));
            }
            let mut receipt = meta
                .get("receipt")
                .cloned()
                .ok_or_else(|| Error::internal("a receipt draft is empty"))?;
            let after = meta.get("after").and_then(Value::as_i64).unwrap_or(0);
            let atoken = receipt["audit"]["event"].as_str().unwrap_or("").to_string();
            let at = receipt["erased"].as_i64().unwrap_or(0);
            self.seal_audit().await?;
            let event = self
                .store
                .audit_event(&self.tenant, &atoken, at)
                .await?
                .ok_or_else(|| Error::internal("the erasure's audit event is missing"))?;
            let link = self
                .store
                .audit_seal_of(&self.tenant, after, event.id)
                .await?
                .ok_or_else(|| Error::internal("the erasure's audit event is not sealed"))?;
            receipt["audit"] = json!({
                "event": atoken,
                "seq": link.seq,
                "chain": hex::encode(&link.hash),
            });
            let done = signed(self.keys.signer(), SignedKind::Receipt, "receipt", receipt);
            let mut meta = meta;
            meta.insert("signed".into(), done.clone());
            let updated = RecordRow {
                updated: self.now(),
                version: row.version + 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..row.clone()
            };
            let op = WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: updated,
                expected_version: Some(row.version),
            };
            match self.store.write(op).await {
                Ok(()) => return Ok(Some(done)),
                Err(strongbox_store::StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("completing a receipt kept racing"))
    }

    /// The receipt of an erasure (root only; audited).
    pub async fn erasure_receipt(&self, who: &Principal, token: &str) -> Result<Value> {
        who.require_root()?;
        let token = parse_record_token(token).ok_or_else(|| Error::bad_request("bad uuid"))?;
        let receipt = self
            .finish_receipt(&token)
            .await?
            .ok_or_else(|| Error::not_found("no erasure receipt for this token"))?;
        self.audit(self.new_event(who, Action::ReceiptGet, Some(&token), "ok"))
            .await?;
        Ok(receipt)
    }

    /// Every recorded access to and change of `token`'s records, oldest first, signed
    /// and anchored to the chain head: root, or the subject with their own token.
    pub async fn access_report(&self, who: &Principal, token: &str) -> Result<Value> {
        let token = parse_record_token(token).ok_or_else(|| Error::bad_request("bad uuid"))?;
        who.may_access(&token)?;
        let (_, mut rows) = self
            .store
            .audit_page(&self.tenant, Some(&token), 0, REPORT_LIMIT)
            .await?;
        rows.reverse();
        let events: Vec<Value> = rows
            .iter()
            .map(|r| {
                let e = &r.event;
                let mut v = json!({
                    "atoken": e.atoken,
                    "when": e.at,
                    "time": crate::expiry::rfc3339(e.at),
                    "action": e.action,
                    "actor": e.actor,
                    "status": e.status,
                });
                if let Some(app) = &e.app {
                    v["app"] = Value::from(app.clone());
                }
                if let Some(c) = &e.classes {
                    v["classes"] = c.split(',').map(Value::from).collect();
                }
                v
            })
            .collect();
        let head = self.seal_audit().await?;
        let generated = self.now();
        let report = json!({
            "type": "access-report",
            "version": 1,
            "tenant": self.tenant,
            "subject": token,
            "generated": generated,
            "generated_at": crate::expiry::rfc3339(generated),
            "complete": rows.len() < REPORT_LIMIT,
            "events": events,
            "chain": {"seq": head.seq, "hash": hex::encode(&head.hash)},
            "publickey": self.public_key_hex(),
        });
        self.audit(self.new_event(who, Action::ReportGet, Some(&token), "ok"))
            .await?;
        Ok(signed(
            self.keys.signer(),
            SignedKind::Report,
            "report",
            report,
        ))
    }
}
