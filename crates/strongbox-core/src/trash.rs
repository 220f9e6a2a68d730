//! Soft delete (Databunker Pro's `SystemDeleteUserProfiles` and
//! `SystemRestoreUserProfile`): a profile leaves every lookup at once but stays
//! restorable, still under the person's key, for a grace period
//! (`--soft-delete-grace`), and is then crypto-shredded by an ordinary erasure
//! with its signed receipt.
//!
//! Hiding moves the profile's ciphertext and its wrapped DEK out of the user row
//! into a `trash` record owned by the person (the DEK re-wrapped for that record,
//! so KEK rotation keeps it openable), and drops the person's index entries; the
//! row becomes a tombstone like an erased one, so every path that reads people
//! treats the person as gone. The person's other records (app data, consents,
//! files, versions) stay as they are, unreadable meanwhile since the only copy of
//! their key is in the trash record. Restoring puts the profile and key back and
//! the index entries with them (409 if a lookup value was taken meanwhile). When
//! the grace period ends the sweeper erases the person: the erasure deletes the
//! trash record with everything else the person owns.

use serde_json::{Map, Value, json};
use strongbox_crypto::Dek;
use strongbox_store::{RecordRow, StoreError, WriteOp};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Action, RecordKind};
use crate::principal::Principal;
use crate::subjects::Mode;
use crate::tenants::TenantRef;
use crate::vault::Vault;

/// A person found (or hidden) by a cross-tenant call, with their tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    pub token: String,
    pub tenant_id: i64,
    pub tenant_name: String,
}

impl Vault {
    /// Hides the live profile of `token` (audited). `Ok(false)` when it is not live.
    async fn hide_user(&self, who: &Principal, token: &str) -> Result<bool> {
        let kind = RecordKind::Trash.name();
        for _ in 0..16 {
            let Some(row) = self.store.user(&self.tenant, token).await? else {
                return Ok(false);
            };
            let (None, Some(dek), Some(data)) = (row.erased, self.dek_of(&row)?, row.data.clone())
            else {
                return Ok(false);
            };
            let kek = self.keys.current_kek()?;
            let now = self.now();
            let keep = RecordRow {
                kind: kind.into(),
                id: token.to_string(),
                owner: Some(token.to_string()),
                created: now,
                updated: now,
                expires: Some(now.saturating_add(self.config.soft_delete_grace)),
                version: 1,
                body: Some(data),
                kek_version: Some(kek.version),
                wrapped_dek: Some(kek.wrap_dek(&self.tenant, &format!("{kind}/{token}"), &dek)?),
                ..RecordRow::default()
            };
            let ops = vec![
                WriteOp::HideUser {
                    tenant: self.tenant.clone(),
                    token: token.to_string(),
                    expected_version: row.version,
                    audit: self.new_event(who, Action::UserHide, Some(token), "ok"),
                },
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: keep,
                    expected_version: None,
                },
            ];
            match self.store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the profile is changing too fast: try again",
        ))
    }

    /// The profile of soft-deleted person `token`, opened from its trash record
    /// (`None` if they are not soft-deleted): what an erasure before the end of
    /// the grace period needs for the schema's `preserve` fields and `forgetme`.
    pub(crate) async fn hidden_profile(&self, token: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.opened_trash(token).await?.map(|(_, _, plain)| plain))
    }

    /// The trash record of `token` (expired or not), its key, and the profile it
    /// holds, opened.
    async fn opened_trash(
        &self,
        token: &str,
    ) -> Result<Option<(RecordRow, Dek, Zeroizing<Vec<u8>>)>> {
        let Some(kept) = self
            .store
            .record(&self.tenant, RecordKind::Trash.name(), token)
            .await?
        else {
            return Ok(None);
        };
        let (Some(dek), Some(data)) = (self.own_dek(&kept)?, kept.body.as_ref()) else {
            return Ok(None);
        };
        let plain = dek.open(&self.profile_aad(token), data)?;
        Ok(Some((kept, dek, plain)))
    }

    /// Brings hidden profile `token` back (audited): the profile.
    async fn restore_user(&self, who: &Principal, token: &str) -> Result<Value> {
        let kind = RecordKind::Trash.name();
        let gone = || Error::not_found("The deleted user profile was not found");
        let (kept, dek, plain) = self
            .opened_trash(token)
            .await?
            .filter(|(r, _, _)| r.expires.is_none_or(|e| e > self.now()))
            .ok_or_else(gone)?;
        let data = kept.body.clone().ok_or_else(gone)?;
        let profile: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(Error::internal)?;
        let indexes = self.indexes_of(&profile);
        let mut add_indexes = self.gram_entries(token, &indexes)?;
        for (name, value) in &indexes {
            add_indexes.extend(self.index_entries(name, value)?);
        }
        let kek = self.keys.current_kek()?;
        let ops = vec![
            WriteOp::ReviveUser {
                tenant: self.tenant.clone(),
                token: token.to_string(),
                data,
                kek_version: kek.version,
                wrapped_dek: kek.wrap_dek(&self.tenant, token, &dek)?,
                add_indexes,
                audit: self.new_event(who, Action::UserRestore, Some(token), "ok"),
            },
            // Still the record read: an erasure meanwhile deleted it, and then the
            // whole restore is refused (the person stays erased).
            WriteOp::DeleteRecordAt {
                tenant: self.tenant.clone(),
                kind: kind.into(),
                id: token.to_string(),
                version: kept.version,
            },
        ];
        match self.store.write(WriteOp::Atomic(ops)).await {
            Ok(()) => Ok(Value::Object(profile)),
            Err(StoreError::Stale) => Err(gone()),
            Err(StoreError::Duplicate(index)) => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "The profile cannot be restored: its {index} now belongs to another person"
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Soft-deletes the profiles `{mode}/{identity}` names in every tenant, or in
    /// the one `tenant` names (the main vault's root; a `token` names one person,
    /// so it needs a tenant): those hidden.
    pub async fn system_delete_profiles(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        tenant: Option<&TenantRef>,
    ) -> Result<Vec<Hidden>> {
        if mode == Mode::Token && tenant.is_none() {
            return Err(Error::bad_request(
                "mode token needs a tenantid or tenantname",
            ));
        }
        let mut out = Vec::new();
        for (info, vault) in self.tenants_for(who, tenant).await? {
            let v: &Vault = vault.as_deref().unwrap_or(self);
            let Some(row) = v.resolve(mode, identity).await? else {
                continue;
            };
            if v.hide_user(who, &row.token).await? {
                out.push(Hidden {
                    token: row.token,
                    tenant_id: info.id,
                    tenant_name: info.name,
                });
            }
        }
        Ok(out)
    }

    /// Restores the profile `token` hidden in the tenant `tenant` names (the main
    /// tenant when none; the main vault's root): the profile.
    pub async fn system_restore_profile(
        &self,
        who: &Principal,
        token: &str,
        tenant: Option<&TenantRef>,
    ) -> Result<Value> {
        let token = strongbox_crypto::parse_record_token(token)
            .ok_or_else(|| Error::bad_request("bad token"))?;
        let main = TenantRef::Id(crate::tenants::MAIN_TENANT_ID);
        let found = self.tenants_for(who, Some(tenant.unwrap_or(&main))).await?;
        let Some((_, vault)) = found.into_iter().next() else {
            return Err(Error::not_found("The tenant was not found"));
        };
        vault
            .as_deref()
            .unwrap_or(self)
            .restore_user(who, &token)
            .await
    }

    /// The live profiles `{mode}/{identity}` names in every tenant, or in the one
    /// `tenant` names (the main vault's root): each with its tenant, each read
    /// audited in its tenant's log.
    pub async fn system_get_profiles(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        tenant: Option<&TenantRef>,
    ) -> Result<Vec<(Hidden, Value)>> {
        if mode == Mode::Token && tenant.is_none() {
            return Err(Error::bad_request(
                "mode token needs a tenantid or tenantname",
            ));
        }
        let mut out = Vec::new();
        for (info, vault) in self.tenants_for(who, tenant).await? {
            let v: &Vault = vault.as_deref().unwrap_or(self);
            if v.resolve(mode, identity).await?.is_none() {
                continue;
            }
            let user = v.get_user(who, mode, identity, None).await?;
            let profile = match user.profile {
                Some(p) => serde_json::from_slice(&p).map_err(Error::internal)?,
                None => continue,
            };
            out.push((
                Hidden {
                    token: user.token,
                    tenant_id: info.id,
                    tenant_name: info.name,
                },
                profile,
            ));
        }
        Ok(out)
    }

    /// Erases the people whose grace period after a soft delete is over.
    pub(crate) async fn purge_hidden_users(&self) -> Result<()> {
        loop {
            let due = self
                .store
                .records_due_first(&self.tenant, RecordKind::Trash.name(), self.now(), 100)
                .await?;
            for row in &due {
                let action: crate::kinds::AuditAction = Action::UserDeleteByExpiration.into();
                self.erase_user(&Principal::System, &action, &row.id, Vec::new())
                    .await?;
            }
            if due.len() < 100 {
                return Ok(());
            }
        }
    }
}

/// The JSON row of a hidden profile.
pub fn hidden_json(h: &Hidden) -> Value {
    json!({"token": h.token, "tenantid": h.tenant_id, "tenantname": h.tenant_name})
}
