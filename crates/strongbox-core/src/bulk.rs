//! The bulk gate (Databunker Pro's `BulkListUnlock`): a listing of many people's
//! data needs an unlock asked for just before. The unlock lives
//! [`UNLOCK_LIFETIME`] seconds, may be used again within them, and works only for
//! the token that asked for it, in the tenant it was asked in: a leaked unlock is
//! useless without that token, and a stolen token cannot list without asking for
//! one, which the audit log records.
//!
//! An unlock is kept as a record whose id is the keyed digest of the unlock (as user
//! access tokens are), holding the keyed digest of the token it is bound to; its
//! expiry is checked on every use and the sweeper deletes it after.

use serde_json::{Value, json};
use strongbox_crypto::{new_record_token, parse_record_token};
use strongbox_store::{RecordRow, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::vault::Vault;

/// How long an unlock works, in seconds.
pub const UNLOCK_LIFETIME: i64 = 60;

/// The refusal of a missing, unknown, expired or someone else's unlock.
fn not_valid() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "The unlockuuid value was not found or is not valid",
    )
}

impl Vault {
    /// A new unlock for the bulk listings, bound to `token` (the access token the
    /// caller presented). Root only; audited.
    pub async fn bulk_unlock(&self, who: &Principal, token: &str) -> Result<String> {
        who.require_root()?;
        let unlock = new_record_token();
        let now = self.now();
        let holder = self.access_token_digest(&format!("bulk unlock holder\0{token}"));
        self.store
            .write(WriteOp::Atomic(vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: RecordRow {
                        kind: RecordKind::BulkUnlock.name().into(),
                        id: self.access_token_digest(&unlock),
                        created: now,
                        updated: now,
                        expires: Some(now + UNLOCK_LIFETIME),
                        version: 1,
                        meta: Some(
                            serde_json::to_vec(&json!({ "holder": holder }))
                                .map_err(Error::internal)?,
                        ),
                        ..RecordRow::default()
                    },
                    expected_version: None,
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::BulkUnlock, None, "ok"),
                },
            ]))
            .await?;
        Ok(unlock)
    }

    /// Whether `unlock` lets `who`, presenting `token`, list in bulk now: root, an
    /// unlock asked for with the same token in this tenant, not expired. A refusal
    /// is audited.
    pub async fn check_bulk_unlock(
        &self,
        who: &Principal,
        token: &str,
        unlock: Option<&str>,
    ) -> Result<()> {
        who.may_list()?;
        let holder = self.access_token_digest(&format!("bulk unlock holder\0{token}"));
        let row = match unlock.and_then(parse_record_token) {
            Some(unlock) => {
                self.store
                    .record(
                        &self.tenant,
                        RecordKind::BulkUnlock.name(),
                        &self.access_token_digest(&unlock),
                    )
                    .await?
            }
            None => None,
        };
        let valid = row.is_some_and(|r| {
            r.expires.is_some_and(|e| e > self.now())
                && r.meta
                    .as_deref()
                    .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                    .is_some_and(|m| m["holder"].as_str() == Some(holder.as_str()))
        });
        if valid {
            return Ok(());
        }
        self.audit(self.new_event(who, Action::BulkUnlockRefused, None, "denied"))
            .await?;
        Err(not_valid())
    }

    /// Deletes expired unlocks (the sweeper's job).
    pub(crate) async fn purge_expired_unlocks(&self) -> Result<()> {
        self.store
            .write(WriteOp::DeleteExpired {
                tenant: self.tenant.clone(),
                kind: RecordKind::BulkUnlock.name().to_string(),
                now: self.now(),
            })
            .await?;
        Ok(())
    }
}
