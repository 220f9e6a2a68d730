//! The audit API: who did what to whose records, when, with what result.
//!
//! Events are written by every other module in the same commit as the change they
//! record (reads: before the answer leaves). An event's metadata is plaintext and
//! holds no personal data; the profile or document values of a change (before and
//! after) are sealed under the subject's DEK in `detail`, so erasing the subject
//! makes them unreadable while the event itself stays.

use serde_json::{Map, Value, json};
use strongbox_crypto::{Aad, Dek, parse_record_token};
use strongbox_store::{AuditEvent, AuditRow};
use zeroize::Zeroizing;

use crate::context::request_metadata;
use crate::error::{Error, Result};
use crate::expiry::Page;
use crate::kinds::Action;
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::vault::Vault;

/// How an event's detail that holds only the request's metadata begins. A detail
/// sealed under a subject's DEK starts with a random nonce, which could begin so by
/// chance (one in 2^40): a detail that does not open as an envelope is then tried
/// as a sealed detail.
const METADATA_ENVELOPE: &[u8] = b"SBMD1";

/// One audit event as read on its own.
pub struct AuditView {
    /// The event as listed (metadata only).
    pub listed: Value,
    /// Its detail (the values before and after a change), `{}` when it has none or
    /// it can no longer be opened.
    pub detail: Value,
}

/// The Unix time (seconds) a UUIDv7 event token carries.
fn event_time(atoken: &str) -> Option<i64> {
    let hex: String = atoken.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || hex.as_bytes()[12] != b'7' {
        return None;
    }
    i64::from_str_radix(&hex[..12], 16).ok().map(|ms| ms / 1000)
}

impl Vault {
    fn detail_aad(&self, atoken: &str) -> Aad {
        Aad::new(&self.tenant, "audit", atoken, "detail")
    }

    /// Seals `detail` (e.g. `{"before": …, "after": …}`) into `event` under the
    /// subject's DEK.
    /// The request's metadata, when there is some, goes in with it (replacing the
    /// envelope `new_event` made for it).
    pub(crate) fn with_detail(
        &self,
        mut event: AuditEvent,
        dek: &Dek,
        detail: &Value,
    ) -> Result<AuditEvent> {
        let mut detail = detail.clone();
        if let (Some(md), Value::Object(m)) = (request_metadata(), &mut detail) {
            m.insert("request_metadata".into(), md);
        }
        let plain = Zeroizing::new(serde_json::to_vec(&detail).map_err(Error::internal)?);
        event.detail = Some(dek.seal(&self.detail_aad(&event.atoken), &plain)?);
        Ok(event)
    }

    /// The request's metadata sealed for an event that has no detail of its own:
    /// under a fresh DEK wrapped by the tenant's current KEK, in an envelope
    /// (`METADATA_ENVELOPE`, the KEK version, the wrapped DEK, the ciphertext).
    pub(crate) fn metadata_envelope(&self, atoken: &str) -> Result<Option<Vec<u8>>> {
        let Some(md) = request_metadata() else {
            return Ok(None);
        };
        let (dek, kek_version, wrapped) = self.new_record_dek("audit", atoken)?;
        let plain = Zeroizing::new(
            serde_json::to_vec(&json!({ "request_metadata": md })).map_err(Error::internal)?,
        );
        let sealed = dek.seal(&self.detail_aad(atoken), &plain)?;
        let mut out =
            Vec::with_capacity(METADATA_ENVELOPE.len() + 12 + wrapped.len() + sealed.len());
        out.extend_from_slice(METADATA_ENVELOPE);
        out.extend_from_slice(&kek_version.to_be_bytes());
        out.extend_from_slice(&(wrapped.len() as u32).to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&sealed);
        Ok(Some(out))
    }

    /// Opens a metadata envelope (`None`: `sealed` is not one, or its KEK is gone).
    fn open_metadata_envelope(&self, atoken: &str, sealed: &[u8]) -> Option<Value> {
        let rest = sealed.strip_prefix(METADATA_ENVELOPE)?;
        let version = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let len = u32::from_be_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
        let wrapped = rest.get(12..12 + len)?;
        let ciphertext = rest.get(12 + len..)?;
        let kek = self.keys.kek(version).ok()?;
        let dek = kek
            .unwrap_dek(&self.tenant, &format!("audit/{atoken}"), wrapped)
            .ok()?;
        let plain = dek.open(&self.detail_aad(atoken), ciphertext).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// An event as listed: metadata only; `more` says whether it carries detail.
    pub(crate) fn listed(row: &AuditRow) -> Value {
        let e = &row.event;
        let mut out = Map::new();
        out.insert("atoken".into(), Value::from(e.atoken.clone()));
        out.insert("when".into(), Value::from(e.at));
        out.insert("title".into(), Value::from(e.action.clone()));
        // The stable name (`user.get`); events written before actions had names have
        // only their title.
        if let Some(name) = &e.name {
            out.insert("action".into(), Value::from(name.clone()));
        }
        out.insert("status".into(), Value::from(e.status.clone()));
        out.insert("identity".into(), Value::from(e.actor.clone()));
        if let Some(record) = &e.record {
            out.insert("record".into(), Value::from(record.clone()));
        }
        if let Some(app) = &e.app {
            out.insert("app".into(), Value::from(app.clone()));
        }
        if let Some(classes) = &e.classes {
            let list: Vec<Value> = classes.split(',').map(Value::from).collect();
            out.insert("classes".into(), Value::Array(list));
        }
        out.insert("more".into(), Value::from(e.detail.is_some()));
        Value::Object(out)
    }

    /// Every event, newest first (root only). Viewing the log is itself audited.
    pub async fn list_audit(&self, who: &Principal, page: Page) -> Result<(u64, Vec<Value>)> {
        who.require_root()?;
        let (total, rows) = self
            .store
            .audit_page(&self.tenant, None, page.offset, page.limit)
            .await?;
        self.audit(self.new_event(who, Action::AuditList, None, "ok"))
            .await?;
        Ok((total, rows.iter().map(Self::listed).collect()))
    }

    /// Walks this tenant's audit chain as `strongbox audit verify` does (root only;
    /// audited): every event against its link, the links against the stored signed
    /// checkpoints. Signatures are checked with the key stored beside the chain; a
    /// check against a key kept elsewhere is the CLI's `--public-key`.
    pub async fn verify_audit(&self, who: &Principal) -> Result<crate::verify::Verification> {
        who.require_root()?;
        self.audit(self.new_event(who, Action::AuditVerify, None, "ok"))
            .await?;
        crate::verify::verify_chain(&self.store, &self.tenant, None, None)
            .await
            .map_err(|e| match e {
                crate::verify::VerifyError::Unavailable(why) => {
                    Error::new(crate::ErrorKind::Unavailable, why)
                }
                crate::verify::VerifyError::Invalid(why) => Error::internal(why),
            })
    }

    /// The events about user `token`, newest first: root, or that user. The user
    /// need not exist any more (an erased user's events stay).
    pub async fn list_audit_of(
        &self,
        who: &Principal,
        token: &str,
        page: Page,
    ) -> Result<(u64, Vec<Value>)> {
        let token = parse_record_token(token).ok_or_else(|| Error::bad_request("bad uuid"))?;
        who.may_access(&token)?;
        let (total, rows) = self
            .store
            .audit_page(&self.tenant, Some(&token), page.offset, page.limit)
            .await?;
        self.audit(self.new_event(who, Action::AuditList, Some(&token), "ok"))
            .await?;
        Ok((total, rows.iter().map(Self::listed).collect()))
    }

    /// The events about the person `{mode}/{identity}`, newest first: root, or that
    /// person. By token the person need not exist any more (an erased person's
    /// events stay); by a lookup field they must.
    pub async fn list_audit_of_person(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        page: Page,
    ) -> Result<(u64, Vec<Value>)> {
        if mode == Mode::Token {
            return self.list_audit_of(who, identity, page).await;
        }
        let row = self
            .resolve_authorized(who, &Action::AuditList.into(), mode, identity)
            .await?;
        self.list_audit_of(who, &row.token, page).await
    }

    /// One event, as listed and with its detail opened: root, or the user it is
    /// about. Once the user is erased the detail cannot be opened and reads as `{}`.
    pub async fn get_audit_event(&self, who: &Principal, atoken: &str) -> Result<AuditView> {
        let atoken = parse_record_token(atoken).ok_or_else(|| Error::bad_request("bad uuid"))?;
        // Event tokens are UUIDv7: their first 48 bits are the Unix time in ms. Other
        // UUIDs name no event.
        let Some(around) = event_time(&atoken) else {
            return Err(Error::not_found("not found"));
        };
        let Some(row) = self
            .store
            .audit_event(&self.tenant, &atoken, around)
            .await?
        else {
            return Err(Error::not_found("not found"));
        };
        let e = &row.event;
        match (&e.record, who) {
            (Some(record), _) => who.may_access(record)?,
            (None, _) => who.require_root()?,
        }
        let mut event = json!({});
        let envelope = e
            .detail
            .as_deref()
            .and_then(|sealed| self.open_metadata_envelope(&e.atoken, sealed));
        if let Some(opened) = envelope {
            event = opened;
        } else if let (Some(record), Some(sealed)) = (&e.record, &e.detail)
            && let Some(user) = self.store.user(&self.tenant, record).await?
            && let Some(dek) = self.dek_of(&user)?
        {
            // After an erasure that kept some fields the user has a new key, and the
            // old events' details no longer open: they read as `{}` like the rest.
            if let Ok(plain) = dek.open(&self.detail_aad(&e.atoken), sealed) {
                event = serde_json::from_slice(&plain).map_err(Error::internal)?;
            }
        }
        self.audit(self.new_event(who, Action::AuditGet, e.record.as_deref(), "ok"))
            .await?;
        Ok(AuditView {
            listed: Self::listed(&row),
            detail: event,
        })
    }
}
