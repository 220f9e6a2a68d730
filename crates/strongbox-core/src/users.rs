//! User records: create, read, change and erase data subjects' profiles (finding and
//! reaching a person is `subjects`).
//!
//! A profile is the JSON object the application submitted, encrypted under the
//! subject's own DEK. Its `login`, `email`, `phone` and `custom` fields are also kept
//! as blind indexes so that the subject can be found by them.

use serde_json::{Map, Value, json};
use strongbox_crypto::{Dek, new_record_token, parse_record_token};
use strongbox_store::{AuditEvent, Guard, StoreError, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::change::{Change, Gate, Outcome, Route};
use crate::error::{Error, Result};
use crate::kinds::{Action, AuditAction, RecordKind, RequestKind};
use crate::normalize::USER_INDEXES;
use crate::principal::Principal;
use crate::search::{GRAM_INDEXES, gram_index};
use crate::subjects::Mode;
use crate::vault::Vault;

/// How many times a change is retried when the record changed under it. Each retry
/// means another writer's change to the same record committed first, so this bounds
/// the number of concurrent writers to one record that are served without error.
const MAX_UPDATE_ATTEMPTS: usize = 64;

/// A looked-up user: the token, and the profile JSON (`None` once erased).
pub struct UserView {
    pub token: String,
    pub profile: Option<Zeroizing<Vec<u8>>>,
    /// The version of the profile returned.
    pub version: i64,
}

/// A user about to be created: the write, the subject's new key, the `profilenew`
/// notification (when notifications are configured), and the owners under which
/// consents given for its email or phone before it existed would be waiting.
struct NewUser {
    token: String,
    /// The create, guarded when `owners` is not empty: it is refused (cheaply,
    /// inside the same statement or transaction) if such consents exist.
    op: WriteOp,
    dek: Dek,
    notify: Option<WriteOp>,
    owners: Vec<String>,
}

impl NewUser {
    /// The first try: the (guarded) create with its notification.
    fn first_try(&self) -> WriteOp {
        match &self.notify {
            None => self.op.clone(),
            Some(n) => WriteOp::Atomic(vec![self.op.clone(), n.clone()]),
        }
    }

    /// The create without its guard.
    fn unguarded(&self) -> WriteOp {
        match self.op.clone() {
            WriteOp::CreateUser {
                tenant,
                user,
                indexes,
                audit,
                guard: _,
            } => WriteOp::CreateUser {
                tenant,
                user,
                indexes,
                audit,
                guard: None,
            },
            other => other,
        }
    }
}

impl Vault {
    /// Creates a user from a profile object and returns its new token.
    pub async fn create_user(
        &self,
        who: &Principal,
        profile: Map<String, Value>,
    ) -> Result<String> {
        let new = self.new_user_op(who, profile)?;
        match self.store.write(new.first_try()).await {
            Err(StoreError::Guarded) => self.create_adopting(&new).await,
            other => other.map(|()| new.token).map_err(Error::from),
        }
    }

    /// Creates `new` together with the consents given for its email or phone before
    /// it existed, which move over to it in the same commit. They are rare, so a
    /// create only comes here when its guarded first try found some.
    async fn create_adopting(&self, new: &NewUser) -> Result<String> {
        let unguarded = new.unguarded();
        // `Stale`: a consent moved (an index-key rotation) between reading and
        // adopting it; nothing was written, so adopt again.
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let adopted = self
                .adopt_pending_agreements(&new.token, &new.dek, &new.owners)
                .await?;
            let op = WriteOp::Atomic(
                std::iter::once(unguarded.clone())
                    .chain(adopted)
                    .chain(new.notify.clone())
                    .collect(),
            );
            match self.store.write(op).await {
                Err(StoreError::Stale) => continue,
                other => return other.map(|()| new.token.clone()).map_err(Error::from),
            }
        }
        Err(Error::internal("create retried too often under contention"))
    }

    /// Creates many users at once (bulk import, `UserCreateBulk`), each as
    /// [`Vault::create_user`] would. Each profile succeeds or fails on its own;
    /// results are in input order.
    pub async fn import_users(
        &self,
        who: &Principal,
        profiles: Vec<Map<String, Value>>,
    ) -> Result<Vec<Result<String>>> {
        who.require_root()?;
        let mut out: Vec<Result<String>> = Vec::with_capacity(profiles.len());
        let mut ops = Vec::with_capacity(profiles.len());
        let mut slots = Vec::with_capacity(profiles.len());
        for profile in profiles {
            match self.new_user_op(who, profile) {
                Ok(new) => {
                    ops.push(new.first_try());
                    slots.push((out.len(), new));
                    out.push(Ok(String::new()));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        for ((slot, new), r) in slots.into_iter().zip(self.store.write_batch(ops).await?) {
            out[slot] = match r {
                Ok(()) => Ok(new.token),
                Err(StoreError::Guarded) => self.create_adopting(&new).await,
                Err(e) => Err(e.into()),
            };
        }
        Ok(out)
    }

    /// Validates a profile and builds the encrypted row, index entries and audit event.
    fn new_user_op(&self, who: &Principal, mut profile: Map<String, Value>) -> Result<NewUser> {
        if profile.is_empty() {
            return Err(Error::bad_request("empty request body"));
        }
        if let Some(schema) = &self.config.schema {
            let doc = Value::Object(profile);
            schema
                .check(&doc)
                .map_err(|e| Error::bad_request(format!("user schema error: {e}")))?;
            let Value::Object(p) = doc else {
                return Err(Error::internal("a profile stopped being an object"));
            };
            profile = p;
        }
        let indexes = self.indexes_of(&profile);
        if indexes.is_empty() {
            return Err(Error::bad_request(
                "failed to create user, all user lookup fields are missing",
            ));
        }
        let token = new_record_token();
        let kek = self.keys.current_kek()?;
        let dek = Dek::generate()?;
        let profile = Value::Object(profile);
        let plaintext = Zeroizing::new(serde_json::to_vec(&profile).map_err(Error::internal)?);
        let data = dek.seal(&self.profile_aad(&token), &plaintext)?;
        let now = self.now();
        let op = WriteOp::CreateUser {
            tenant: self.tenant.clone(),
            user: UserRow {
                token: token.clone(),
                kek_version: Some(kek.version),
                wrapped_dek: Some(kek.wrap_dek(&self.tenant, &token, &dek)?),
                data: Some(data),
                version: 1,
                created: now,
                updated: now,
                erased: None,
            },
            indexes: indexes
                .iter()
                .map(|(name, v)| self.index_entries(name, v))
                .chain(std::iter::once(self.gram_entries(&token, &indexes)))
                .collect::<Result<Vec<_>>>()?
                .concat(),
            guard: None,
            audit: self.with_detail(
                AuditEvent {
                    classes: self
                        .config
                        .schema
                        .as_ref()
                        .and_then(|s| s.classes_in(&profile)),
                    ..self.new_event(who, Action::UserCreate, Some(&token), "ok")
                },
                &dek,
                &json!({ "after": profile }),
            )?,
        };
        let notify = self.profile_notification("profilenew", &token, None, &profile)?;
        let owners = match &op {
            WriteOp::CreateUser { indexes, .. } => self.pending_owners(indexes),
            _ => Vec::new(),
        };
        let op = match op {
            WriteOp::CreateUser {
                tenant,
                user,
                indexes,
                audit,
                guard: _,
            } if !owners.is_empty() => WriteOp::CreateUser {
                tenant,
                user,
                indexes,
                audit,
                guard: Some(Guard {
                    kind: RecordKind::Agreement.name().to_string(),
                    owners: owners.clone(),
                }),
            },
            other => other,
        };
        Ok(NewUser {
            token,
            op,
            dek,
            notify,
            owners,
        })
    }

    /// Bulk listing (root, and only when `list_users` is configured): a page of users
    /// by token, descending, with their profiles; erased users are not listed (nor
    /// counted). Every listed profile is an audited read.
    pub async fn list_users(
        &self,
        who: &Principal,
        page: crate::expiry::Page,
    ) -> Result<(u64, Vec<(String, Zeroizing<Vec<u8>>)>)> {
        who.may_list()?;
        if !self.config.list_users {
            return Err(Error::new(crate::ErrorKind::Forbidden, "access denied"));
        }
        let (total, rows) = self
            .store
            .users_page(&self.tenant, page.offset, page.limit)
            .await?;
        let mut out = Vec::new();
        let mut events = Vec::new();
        for row in rows {
            if let Some(dek) = self.dek_of(&row)? {
                let Some(profile) = self
                    .as_seen(who, &row.token, self.decrypt_profile(&row, &dek)?)
                    .await?
                else {
                    // A person the role may read nothing of is left out, and the
                    // refusal audited with the decisions about them.
                    events.push(WriteOp::Audit {
                        tenant: self.tenant.clone(),
                        audit: self.new_event(
                            who,
                            Action::UserBulkList,
                            Some(&row.token),
                            "denied",
                        ),
                    });
                    continue;
                };
                events.push(WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::UserBulkList, Some(&row.token), "ok"),
                });
                out.push((row.token, profile));
            }
        }
        if !events.is_empty() {
            self.store.write(WriteOp::Atomic(events)).await?;
        }
        Ok((total, out))
    }

    /// The people named by `people` (mode and identity) with their profiles (root,
    /// and only when `list_users` is configured). Those not in the vault (or
    /// erased) are left out; every profile returned is an audited read.
    pub async fn bulk_get_users(
        &self,
        who: &Principal,
        people: &[(Mode, String)],
    ) -> Result<Vec<UserView>> {
        who.may_list()?;
        if !self.config.list_users {
            return Err(Error::new(crate::ErrorKind::Forbidden, "access denied"));
        }
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (mode, identity) in people {
            let Some(row) = self.resolve(*mode, identity).await? else {
                continue;
            };
            if out.iter().any(|u: &UserView| u.token == row.token) {
                continue;
            }
            if let (Some(dek), None) = (self.dek_of(&row)?, row.erased) {
                let Some(profile) = self
                    .as_seen(who, &row.token, self.decrypt_profile(&row, &dek)?)
                    .await?
                else {
                    // A person the role may read nothing of is left out, and the
                    // refusal audited with the decisions about them.
                    events.push(WriteOp::Audit {
                        tenant: self.tenant.clone(),
                        audit: self.new_event(
                            who,
                            Action::UserBulkList,
                            Some(&row.token),
                            "denied",
                        ),
                    });
                    continue;
                };
                events.push(WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::UserBulkList, Some(&row.token), "ok"),
                });
                out.push(UserView {
                    token: row.token,
                    profile: Some(profile),
                    version: row.version,
                });
            }
        }
        if !events.is_empty() {
            self.store.write(WriteOp::Atomic(events)).await?;
        }
        Ok(out)
    }

    /// A profile as `who` may see it: a role's policies star or drop fields, and
    /// a profile it may read nothing of is left out (`None`).
    pub(crate) async fn as_seen(
        &self,
        who: &Principal,
        token: &str,
        profile: Zeroizing<Vec<u8>>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match who {
            Principal::Role(grant) => Ok(self
                .role_view(grant, token, &profile)
                .await?
                .map(Zeroizing::new)),
            // Someone else's, through the person's group roles (or nothing).
            // (the first of their roles that shows anything).
            Principal::User { token: own, .. } if own != token => {
                for grant in self.group_grants(who).await? {
                    if let Some(seen) = self.role_view(&grant, token, &profile).await? {
                        return Ok(Some(Zeroizing::new(seen)));
                    }
                }
                Ok(None)
            }
            _ => Ok(Some(profile)),
        }
    }

    /// Reference point for benchmarks: a primary-key read of a user row with no
    /// decryption and no audit event. Served only when bench endpoints are enabled.
    pub async fn probe_user_row(&self, token: &str) -> Result<bool> {
        let token = parse_record_token(token).ok_or_else(|| Error::bad_request("bad uuid"))?;
        Ok(self.store.user(&self.tenant, &token).await?.is_some())
    }

    /// A change must keep `locked` fields and leave a valid profile.
    fn check_change(
        &self,
        schema: &crate::schema::UserSchema,
        old: &Value,
        new: &Value,
    ) -> Result<()> {
        if let Some(pointer) = schema.locked_change(old, new) {
            return Err(Error::bad_request(format!(
                "schema validation error: User schema check error. Locked value changed: {pointer}"
            )));
        }
        schema
            .check(new)
            .map_err(|e| Error::bad_request(format!("schema validation error: {e}")))
    }

    /// Reads a user's profile, or an earlier `version` of it. The read is audited
    /// durably before it is returned.
    pub async fn get_user(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        version: Option<i64>,
    ) -> Result<UserView> {
        let action = Action::UserGet.with([&mode.name()]);
        let row = self
            .resolve_authorized(who, &action, mode, identity)
            .await?;
        let shown = version.unwrap_or(row.version);
        let mut profile = match self.dek_of(&row)? {
            Some(dek) if shown == row.version => Some(self.decrypt_profile(&row, &dek)?),
            Some(dek) => Some(self.profile_version(&row, &dek, shown).await?),
            None if version.is_some() => {
                return Err(Error::not_found("The user record version was not found"));
            }
            None => None,
        };
        // A role sees the fields its policies allow: others starred or left out.
        if let Some(p) = profile.take() {
            match self.as_seen(who, &row.token, p).await? {
                Some(seen) => profile = Some(seen),
                None => {
                    self.audit(self.new_event(who, &action, Some(&row.token), "denied"))
                        .await?;
                    return Err(Error::new(crate::ErrorKind::Forbidden, "access denied"));
                }
            }
        }
        // With a schema, the event says which classes of data the read returned.
        let classes = match (&self.config.schema, &profile) {
            (Some(schema), Some(p)) => serde_json::from_slice::<Value>(p)
                .ok()
                .and_then(|doc| schema.classes_in(&doc)),
            _ => None,
        };
        self.audit(AuditEvent {
            classes,
            ..self.new_event(who, &action, Some(&row.token), "ok")
        })
        .await?;
        Ok(UserView {
            token: row.token,
            profile,
            version: shown,
        })
    }

    /// Applies a change to a user's profile; lookup indexes follow the data. A user
    /// changing their own profile files a request for the DPO instead, unless self
    /// service allows it and the change touches no `admin` field and no lookup field
    /// (a lookup field could collide with someone else's, and the answer would tell
    /// the user that person is in the vault). [`Route::Request`] files it whoever asks.
    pub async fn update_user(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        change: Change,
        route: Route,
    ) -> Result<Outcome> {
        let action = Action::UserChange.with([&mode.name()]);
        let row = self
            .resolve_authorized(who, &action, mode, identity)
            .await?;
        let direct = route == Route::AsAllowed;
        if direct && !matches!(who, Principal::User { .. }) {
            return self
                .apply_user_change(who, &action, row, &change, &[], Gate::Open)
                .await?
                .map(Outcome::Done)
                .ok_or_else(|| Error::internal("an ungated change asked for approval"));
        }
        let subject = self.live(row.clone())?;
        if direct && self.config.self_service.user_record_change {
            if let Some(token) = self
                .apply_user_change(who, &action, row, &change, &[], Gate::SelfService)
                .await?
            {
                return Ok(Outcome::Done(token));
            }
        } else {
            // Tried on the current profile now, so a change that cannot apply (a bad
            // patch, a profile past the size limit, the schema) is refused before
            // anything is stored, not when a DPO approves it.
            let old = self.profile_of(&subject).await?;
            let Value::Object(old_map) = old.clone() else {
                return Err(Error::internal("a profile is not an object"));
            };
            let new = Value::Object(change.apply_to(
                old_map,
                "error updating user",
                self.config.max_document_bytes,
            )?);
            if let Some(schema) = &self.config.schema {
                self.check_change(schema, &old, &new)?;
            }
        }
        self.file_request(
            who,
            &subject,
            RequestKind::ChangeProfile,
            None,
            None,
            Some(change.to_json()?),
        )
        .await
    }

    /// Applies `change` to the profile in `row`, committing `extra` ops with it.
    /// Under [`Gate::SelfService`] a change that needs a DPO's approval is not
    /// applied (`None`); the rule is checked on the exact old and new profile that
    /// would be committed, on every attempt, so a concurrent change cannot slip an
    /// `admin` field past it.
    pub(crate) async fn apply_user_change(
        &self,
        who: &Principal,
        action: &AuditAction,
        mut row: UserRow,
        change: &Change,
        extra: &[WriteOp],
        gate: Gate,
    ) -> Result<Option<String>> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let (Some(dek), None) = (self.dek_of(&row)?, row.erased) else {
                return Err(Error::not_found("user record not found"));
            };
            let old_plain = self.decrypt_profile(&row, &dek)?;
            let old: Map<String, Value> =
                serde_json::from_slice(&old_plain).map_err(Error::internal)?;
            let new = change.apply_to(
                old.clone(),
                "error updating user",
                self.config.max_document_bytes,
            )?;
            let mut admin_change = false;
            if let Some(schema) = &self.config.schema {
                let (old, new) = (Value::Object(old.clone()), Value::Object(new.clone()));
                self.check_change(schema, &old, &new)?;
                admin_change = schema.admin_change(&old, &new);
            }
            let (old_idx, new_idx) = (self.indexes_of(&old), self.indexes_of(&new));
            let mut drop_indexes = Vec::new();
            let mut add_indexes = Vec::new();
            for name in USER_INDEXES {
                let before = old_idx.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
                let after = new_idx.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
                if before != after {
                    if before.is_some() {
                        drop_indexes.push(name);
                        if self.config.search {
                            drop_indexes.extend(gram_index(name));
                        }
                    }
                    if let Some(v) = after {
                        add_indexes.extend(self.index_entries(name, v)?);
                        add_indexes.extend(self.gram_entries(&row.token, &[(name, v.clone())])?);
                    }
                }
            }
            if gate == Gate::SelfService
                && (admin_change || !drop_indexes.is_empty() || !add_indexes.is_empty())
            {
                return Ok(None);
            }
            let new = Value::Object(new);
            let plaintext = Zeroizing::new(serde_json::to_vec(&new).map_err(Error::internal)?);
            let old = Value::Object(old);
            let notify =
                self.profile_notification("profilechange", &row.token, Some(&old), &new)?;
            let audit = self.with_detail(
                AuditEvent {
                    classes: self
                        .config
                        .schema
                        .as_ref()
                        .and_then(|s| s.classes_changed(&old, &new)),
                    ..self.new_event(who, action, Some(&row.token), "ok")
                },
                &dek,
                &json!({ "before": old, "after": new }),
            )?;
            let op = WriteOp::UpdateUser {
                tenant: self.tenant.clone(),
                token: row.token.clone(),
                expected_version: row.version,
                data: dek.seal(&self.profile_aad(&row.token), &plaintext)?,
                drop_indexes,
                add_indexes,
                audit,
            };
            let versions = self.version_ops(&row, &dek, &old_plain).await?;
            let op = if extra.is_empty() && notify.is_none() && versions.is_empty() {
                op
            } else {
                WriteOp::Atomic(
                    std::iter::once(op)
                        .chain(versions)
                        .chain(extra.iter().cloned())
                        .chain(notify)
                        .collect(),
                )
            };
            match self.store.write(op).await {
                Ok(()) => return Ok(Some(row.token)),
                Err(StoreError::Stale) => {
                    row = self
                        .store
                        .user(&self.tenant, &row.token)
                        .await?
                        .ok_or_else(|| Error::not_found("user record not found"))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("update retried too often under contention"))
    }

    /// Erases a user by crypto-shredding: the wrapped DEK, the ciphertext and the
    /// index entries are destroyed, and every record the user owns; the token
    /// remains as a tombstone. A user erasing themselves files a request for the DPO
    /// instead, unless self service allows it; [`Route::Request`] files it whoever asks.
    pub async fn delete_user(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        route: Route,
    ) -> Result<Outcome> {
        let action = Action::UserDelete.with([&mode.name()]);
        let row = self
            .resolve_authorized(who, &action, mode, identity)
            .await?;
        if route == Route::Request
            || matches!(who, Principal::User { .. }) && !self.config.self_service.forget_me
        {
            let subject = self.live(row)?;
            return self
                .file_request(who, &subject, RequestKind::ForgetMe, None, None, None)
                .await;
        }
        self.erase_user(who, &action, &row.token, Vec::new())
            .await?;
        Ok(Outcome::Done(row.token))
    }

    /// The kept part of an erased profile, sealed under a fresh DEK (the old one is
    /// destroyed with everything else it protected); kept lookup fields keep their
    /// index entries.
    fn preserved(
        &self,
        token: &str,
        kept: &Map<String, Value>,
    ) -> Result<strongbox_store::Preserved> {
        let kek = self.keys.current_kek()?;
        let dek = Dek::generate()?;
        let plain = Zeroizing::new(serde_json::to_vec(kept).map_err(Error::internal)?);
        let kept_indexes = self.indexes_of(kept);
        Ok(strongbox_store::Preserved {
            data: dek.seal(&self.profile_aad(token), &plain)?,
            kek_version: kek.version,
            wrapped_dek: kek.wrap_dek(&self.tenant, token, &dek)?,
            // Kept fields keep their exact lookups, not their trigrams: an erased
            // person is not found by search.
            drop_indexes: USER_INDEXES
                .iter()
                .copied()
                .filter(|n| !kept_indexes.iter().any(|(k, _)| k == n))
                .chain(GRAM_INDEXES)
                .collect(),
        })
    }

    /// Erases user `token`, committing `extra` ops first in the same transaction.
    pub(crate) async fn erase_user(
        &self,
        who: &Principal,
        action: &AuditAction,
        token: &str,
        mut extra: Vec<WriteOp>,
    ) -> Result<()> {
        let mut preserve = None;
        let needs_profile = self.config.notification_url.is_some()
            || self
                .config
                .schema
                .as_ref()
                .is_some_and(|s| s.preserves_anything());
        if needs_profile
            && let Some(row) = self.store.user(&self.tenant, token).await?
            && let Some(plain) = match (row.erased, self.dek_of(&row)?) {
                (None, Some(dek)) => Some(self.decrypt_profile(&row, &dek)?),
                // Soft-deleted (the row reads as erased): the profile waits in its
                // trash record. Erased already: there is none.
                _ => self.hidden_profile(token).await?,
            }
        {
            let profile: Value = serde_json::from_slice(&plain).map_err(Error::internal)?;
            extra.extend(self.profile_notification("forgetme", token, None, &profile)?);
            if let Some(schema) = &self.config.schema
                && schema.preserves_anything()
            {
                preserve = Some(self.preserved(token, &schema.preserved(&profile))?);
            }
        }
        extra.extend(self.legacy_reasons_scrubbed(token).await?);
        let event = self.new_event(who, action, Some(token), "ok");
        let receipt = self.receipt_draft(token, &event).await?;
        extra.push(WriteOp::EraseUser {
            tenant: self.tenant.clone(),
            preserve,
            token: token.to_string(),
            keep_kind: RecordKind::Request.name().to_string(),
            audit: event,
        });
        extra.extend(receipt);
        self.store.write(WriteOp::Atomic(extra)).await?;
        // The erasure is done; the receipt is completed (sealed and signed) now, or
        // when it is first asked for if this fails.
        if let Err(e) = self.finish_receipt(token).await {
            tracing::warn!(error = %e, "completing an erasure receipt failed; it will be completed on request");
        }
        Ok(())
    }

    /// The signed receipt of an erasure just done, for the response.
    pub async fn receipt_of(&self, token: &str) -> Result<Option<Value>> {
        self.finish_receipt(token).await
    }
}
