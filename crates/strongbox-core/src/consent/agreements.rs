//! Agreements: one person's consent to one legal basis, sealed under their key (or,
//! for an email or phone not in the vault yet, under a key of its own until the
//! person is created and adopts it).

use serde_json::{Map, Value, json};
use strongbox_crypto::Dek;
use strongbox_store::{IndexEntry, RecordRow, StoreError, WriteOp};

use super::*;
use crate::change::{Outcome, Route};
use crate::error::{Error, Result};
use crate::kinds::{Action, AuditAction, RecordKind, RequestKind};
use crate::principal::Principal;
use crate::subjects::{Mode, Subject};
use crate::vault::Vault;

/// Who an agreement belongs to.
enum Party {
    /// A user in the vault.
    User { token: String, dek: Dek },
    /// An email or phone not in the vault yet: its owner keys (see
    /// [`pending_owner`]), one per index-key version in use, the current one first.
    Pending(Vec<String>),
}

impl Party {
    fn key(&self) -> &str {
        match self {
            Party::User { token, .. } => token,
            Party::Pending(keys) => keys.first().map(String::as_str).unwrap_or_default(),
        }
    }
}

/// The owner key of consents given for an email or phone not in the vault yet: the
/// index name and the value's blind-index digest, `email:<hex>` under index-key
/// version 1 and `email:<version>:<hex>` under later ones (a rotation re-keys them).
pub(crate) fn pending_owner(e: &IndexEntry) -> String {
    match e.key_version {
        1 => format!("{}:{}", e.name, hex(&e.digest)),
        v => format!("{}:{v}:{}", e.name, hex(&e.digest)),
    }
}

/// The index-key version of a pending owner key; `None` for a user token.
pub(crate) fn pending_owner_version(owner: &str) -> Option<i64> {
    let mut parts = owner.split(':');
    let (_, second, third) = (parts.next()?, parts.next()?, parts.next());
    match third {
        None => Some(1),
        Some(_) => second.parse().ok(),
    }
}

/// The key of an agreement: its user's (borrowed) or its own.
enum DekRef<'a> {
    User(&'a Dek),
    Own(Dek),
}

impl std::ops::Deref for DekRef<'_> {
    type Target = Dek;
    fn deref(&self) -> &Dek {
        match self {
            DekRef::User(d) => d,
            DekRef::Own(d) => d,
        }
    }
}

fn agreement_id(party: &str, brief: &str) -> String {
    format!("{party}/{brief}")
}

impl Vault {
    // ---- agreements --------------------------------------------------------------

    /// The party an agreement route names. Email and phone may name a person not in
    /// the vault yet (`pending` allowed); other modes must name a live user.
    async fn party(
        &self,
        who: &Principal,
        action: &AuditAction,
        mode: Mode,
        identity: &str,
        pending: bool,
    ) -> Result<Party> {
        // Only root may record consent for someone not in the vault. Anyone else
        // goes through `subject`, which answers and audits a person who is not in
        // the vault exactly as one who is someone else (no probing who exists).
        let index = match mode {
            Mode::Email | Mode::Phone if pending && who.is_root() => mode.index(),
            _ => None,
        };
        if let Some(name) = index
            && self.resolve(mode, identity).await?.is_none()
        {
            let normalized = self
                .config
                .normalizer
                .normalize(name, identity)
                .ok_or_else(|| Error::bad_request(format!("bad {name}")))?;
            let current = self.keys.indexes().current;
            let mut entries = self.index_entries(name, &normalized)?;
            entries.sort_by_key(|e| e.key_version != current);
            return Ok(Party::Pending(entries.iter().map(pending_owner).collect()));
        }
        let s = self.subject(who, action, mode, identity).await?;
        Ok(Party::User {
            token: s.token,
            dek: s.dek,
        })
    }

    /// Where `party`'s agreement to `brief` is, or goes: for a pending party, the
    /// agreement under any index-key version in use, else the current version's key.
    /// Returns its id and owner.
    async fn agreement_slot(&self, party: &Party, brief: &str) -> Result<(String, String)> {
        if let Party::Pending(keys) = party
            && keys.len() > 1
        {
            for key in keys {
                let id = agreement_id(key, brief);
                if self
                    .store
                    .record(&self.tenant, RecordKind::Agreement.name(), &id)
                    .await?
                    .is_some()
                {
                    return Ok((id, key.clone()));
                }
            }
        }
        Ok((agreement_id(party.key(), brief), party.key().to_string()))
    }

    /// The key that opens an agreement's body.
    fn agreement_dek<'a>(&self, party: &'a Party, row: &RecordRow) -> Result<DekRef<'a>> {
        match party {
            Party::User { dek, .. } => Ok(DekRef::User(dek)),
            Party::Pending(_) => self
                .own_dek(row)?
                .map(DekRef::Own)
                .ok_or_else(|| Error::internal("a pending agreement has no key")),
        }
    }

    /// The JSON Databunker answers for an agreement row.
    /// Every agreement of `subject` (not audited: for a caller that audits the
    /// whole read).
    pub(crate) async fn agreements_of(&self, subject: &Subject) -> Result<Vec<Value>> {
        let party = Party::User {
            token: subject.token.clone(),
            dek: subject.dek.clone(),
        };
        self.store
            .records_of(&self.tenant, &subject.token, RecordKind::Agreement.name())
            .await?
            .iter()
            .map(|r| self.agreement_json(&party, r))
            .collect()
    }

    fn agreement_json(&self, party: &Party, row: &RecordRow) -> Result<Value> {
        let mut out = meta_of(row)?;
        let body = self.open_body(&*self.agreement_dek(party, row)?, row)?;
        for key in ["who", "lastmodifiedby", "referencecode"] {
            if let Some(v) = body.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        let token = match party {
            Party::User { token, .. } => token.as_str(),
            Party::Pending(_) => "",
        };
        out.insert("token".into(), Value::from(token));
        Ok(Value::Object(out))
    }

    /// Records consent of `{mode}/{identity}` to `brief`.
    pub async fn accept_agreement(
        &self,
        who: &Principal,
        brief: &str,
        mode: Mode,
        identity: &str,
        body: Map<String, Value>,
    ) -> Result<()> {
        let brief = parse_brief(brief, "incorrect brief format")?;
        if self.legal_basis(&brief).await?.is_none() {
            return Err(Error::not_found("not found"));
        }
        let action = Action::AgreementAccept.with([&brief]);
        let party = self.party(who, &action, mode, identity, true).await?;
        let now = self.now();
        let status = consent_status(body.get("status"));
        let starttime = consent_time(&body, "starttime", now)?.unwrap_or(0);
        let endtime = consent_time(&body, "expiration", now)?.unwrap_or(0);
        let method = text(&body, "agreementmethod")?.unwrap_or_else(|| "api".into());
        let mut sealed = Map::new();
        sealed.insert("who".into(), Value::from(identity));
        sealed.insert(
            "lastmodifiedby".into(),
            Value::from(text(&body, "lastmodifiedby")?.unwrap_or_default()),
        );
        if let Some(code) = text(&body, "referencecode")? {
            sealed.insert("referencecode".into(), Value::from(code));
        }
        let record = match &party {
            Party::User { token, .. } => Some(token.as_str()),
            Party::Pending(_) => None,
        };
        for _ in 0..MAX_SLOT_ATTEMPTS {
            let (id, owner) = self.agreement_slot(&party, &brief).await?;
            let r = self
                .upsert_record(
                    RecordKind::Agreement.name(),
                    &id,
                    |current| {
                        // Found under an older index key, then moved to the current one by
                        // an index-key rotation: look it up again.
                        if current.is_none() && owner != party.key() {
                            return Err(moved());
                        }
                        let creation = match current {
                            Some(c) => meta_of(c)?
                                .get("creationtime")
                                .cloned()
                                .unwrap_or(Value::from(now)),
                            None => Value::from(now),
                        };
                        let meta = json!({
                            "agreementmethod": method, "brief": brief, "creationtime": creation,
                            "endtime": endtime, "mode": mode.name(), "starttime": starttime,
                            "status": status, "when": now,
                        });
                        let mut row = RecordRow {
                            owner: Some(owner.clone()),
                            label: Some(brief.clone()),
                            created: now,
                            updated: now,
                            expires: (endtime > 0).then_some(endtime),
                            meta: serde_json::to_vec(&meta).ok(),
                            ..RecordRow::default()
                        };
                        let dek = match (&party, current) {
                            (Party::User { dek, .. }, _) => DekRef::User(dek),
                            (Party::Pending(_), Some(c)) => {
                                row.kek_version = c.kek_version;
                                row.wrapped_dek = c.wrapped_dek.clone();
                                self.agreement_dek(&party, c)?
                            }
                            (Party::Pending(_), None) => {
                                let (dek, version, wrapped) =
                                    self.new_record_dek(RecordKind::Agreement.name(), &id)?;
                                row.kek_version = Some(version);
                                row.wrapped_dek = Some(wrapped);
                                DekRef::Own(dek)
                            }
                        };
                        row.body = Some(self.seal_body(
                            &dek,
                            RecordKind::Agreement.name(),
                            &id,
                            &Value::Object(sealed.clone()),
                        )?);
                        Ok(row)
                    },
                    self.new_event(who, &action, record, "ok"),
                )
                .await;
            match r {
                Err(e) if is_moved(&e) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(moved())
    }

    /// One agreement of a user.
    pub async fn get_agreement(
        &self,
        who: &Principal,
        brief: &str,
        mode: Mode,
        identity: &str,
    ) -> Result<Value> {
        let brief = parse_brief(brief, "bad brief format")?;
        if self.legal_basis(&brief).await?.is_none() {
            return Err(Error::not_found("not found"));
        }
        let action = Action::AgreementGet.with([&brief]);
        let party = self.party(who, &action, mode, identity, false).await?;
        let id = agreement_id(party.key(), &brief);
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::Agreement.name(), &id)
            .await?
        else {
            return Err(Error::not_found("not found"));
        };
        let out = self.agreement_json(&party, &row)?;
        self.audit(self.new_event(who, &action, Some(party.key()), "ok"))
            .await?;
        Ok(out)
    }

    /// Every agreement of a user, by brief.
    pub async fn list_agreements(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<Vec<Value>> {
        let action = Action::AgreementList.with([&mode.name()]);
        let party = self.party(who, &action, mode, identity, false).await?;
        let rows = self
            .store
            .records_of(&self.tenant, party.key(), RecordKind::Agreement.name())
            .await?;
        let out = rows
            .iter()
            .map(|r| self.agreement_json(&party, r))
            .collect::<Result<Vec<_>>>()?;
        self.audit(self.new_event(who, &action, Some(party.key()), "ok"))
            .await?;
        Ok(out)
    }

    /// Withdraws consent of `{mode}/{identity}` to `brief` (status `no`). Nothing is
    /// created when there was no agreement. A user withdrawing a consent whose legal
    /// basis is not under user control files a request for the DPO instead;
    /// [`Route::Request`] files it whoever asks (and there must be an agreement).
    pub async fn withdraw_agreement(
        &self,
        who: &Principal,
        brief: &str,
        mode: Mode,
        identity: &str,
        body: Map<String, Value>,
        route: Route,
    ) -> Result<Outcome> {
        let brief = parse_brief(brief, "bad brief format")?;
        let Some(basis) = self.legal_basis(&brief).await? else {
            return Err(Error::not_found("not found"));
        };
        let action = Action::AgreementWithdraw.with([&brief]);
        let party = self.party(who, &action, mode, identity, true).await?;
        let modifier = text(&body, "lastmodifiedby")?.unwrap_or_default();
        let user_asks = matches!(who, Principal::User { .. })
            && basis.get("usercontrol") != Some(&Value::Bool(true));
        if route == Route::Request && !matches!(party, Party::User { .. }) {
            return Err(Error::not_found("not found"));
        }
        if let Party::User { token, dek } = &party
            && (user_asks || route == Route::Request)
        {
            let id = agreement_id(token, &brief);
            if self
                .store
                .record(&self.tenant, RecordKind::Agreement.name(), &id)
                .await?
                .is_none()
            {
                return match route {
                    Route::Request => Err(Error::not_found("not found")),
                    Route::AsAllowed => Ok(Outcome::Done(token.clone())),
                };
            }
            let subject = Subject {
                token: token.clone(),
                dek: dek.clone(),
            };
            return self
                .file_request(
                    who,
                    &subject,
                    RequestKind::Withdraw,
                    None,
                    Some(&brief),
                    None,
                )
                .await;
        }
        let token = party.key().to_string();
        self.withdraw_for(who, &party, &brief, mode, identity, &modifier, &[])
            .await?;
        Ok(Outcome::Done(token))
    }

    /// Withdraws `subject`'s consent to `brief` for an approved request, committing
    /// `extra` with it.
    pub(crate) async fn apply_withdrawal(
        &self,
        who: &Principal,
        subject: Subject,
        brief: &str,
        modifier: &str,
        extra: &[WriteOp],
    ) -> Result<()> {
        let identity = subject.token.clone();
        let party = Party::User {
            token: subject.token,
            dek: subject.dek,
        };
        self.withdraw_for(who, &party, brief, Mode::Token, &identity, modifier, extra)
            .await
    }

    /// `subject`'s agreement to `brief`, if any.
    pub(crate) async fn agreement_of(
        &self,
        subject: &Subject,
        brief: &str,
    ) -> Result<Option<Value>> {
        let id = agreement_id(&subject.token, brief);
        let Some(row) = self
            .store
            .record(&self.tenant, RecordKind::Agreement.name(), &id)
            .await?
        else {
            return Ok(None);
        };
        let party = Party::User {
            token: subject.token.clone(),
            dek: subject.dek.clone(),
        };
        self.agreement_json(&party, &row).map(Some)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one part of the consent record; a struct would only rename them"
    )]
    async fn withdraw_for(
        &self,
        who: &Principal,
        party: &Party,
        brief: &str,
        mode: Mode,
        identity: &str,
        modifier: &str,
        extra: &[WriteOp],
    ) -> Result<()> {
        let action = Action::AgreementWithdraw.with([&brief]);
        let record = match party {
            Party::User { token, .. } => Some(token.as_str()),
            Party::Pending(_) => None,
        };
        for _ in 0..MAX_SLOT_ATTEMPTS {
            let (id, owner) = self.agreement_slot(party, brief).await?;
            // Found under an older index key, then moved by an index-key rotation.
            let gone = || {
                if owner != party.key() {
                    moved()
                } else {
                    Error::not_found("not found")
                }
            };
            if self
                .store
                .record(&self.tenant, RecordKind::Agreement.name(), &id)
                .await?
                .is_none()
            {
                if owner != party.key() {
                    continue;
                }
                if extra.is_empty() {
                    self.audit(self.new_event(who, &action, record, "not-found"))
                        .await?;
                } else {
                    self.store.write(WriteOp::Atomic(extra.to_vec())).await?;
                }
                return Ok(());
            }
            let now = self.now();
            // Databunker names a known user by token in the notification.
            let notify = match party {
                Party::User { token, .. } => {
                    self.consent_notification(brief, token, "token", "no")?
                }
                Party::Pending(_) => {
                    self.consent_notification(brief, identity, mode.name(), "no")?
                }
            };
            let extra: Vec<WriteOp> = extra.iter().cloned().chain(notify).collect();
            let result = self
                .upsert_record_with(
                    RecordKind::Agreement.name(),
                    &id,
                    |current| {
                        let current = current.ok_or_else(gone)?;
                        let mut meta = meta_of(current)?;
                        meta.insert("status".into(), Value::from("no"));
                        meta.insert("endtime".into(), Value::from(0));
                        meta.insert("when".into(), Value::from(now));
                        meta.insert("mode".into(), Value::from(mode.name()));
                        let dek = self.agreement_dek(party, current)?;
                        let mut sealed = match self.open_body(&dek, current)? {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        sealed.insert("who".into(), Value::from(identity));
                        sealed.insert("lastmodifiedby".into(), Value::from(modifier));
                        Ok(RecordRow {
                            owner: current.owner.clone(),
                            label: current.label.clone(),
                            updated: now,
                            meta: Some(meta_bytes(&meta)?),
                            body: Some(self.seal_body(
                                &dek,
                                RecordKind::Agreement.name(),
                                &id,
                                &Value::Object(sealed),
                            )?),
                            kek_version: current.kek_version,
                            wrapped_dek: current.wrapped_dek.clone(),
                            ..RecordRow::default()
                        })
                    },
                    self.new_event(who, &action, record, "ok"),
                    &extra,
                )
                .await;
            return match result {
                Err(e) if is_moved(&e) => continue,
                // Deleted in between (the user was erased): nothing left to withdraw.
                Err(e) if e.kind == crate::ErrorKind::NotFound => Ok(()),
                other => other.map(|_| ()),
            };
        }
        Err(moved())
    }

    /// Revokes every given consent to `brief` (root only): status `revoked`.
    pub async fn revoke_all_agreements(&self, who: &Principal, brief: &str) -> Result<()> {
        who.require_root()?;
        let brief = parse_brief(brief, "bad brief format")?;
        if self.legal_basis(&brief).await?.is_none() {
            return Err(Error::not_found("not found"));
        }
        self.revoke_agreements(who, &brief).await
    }

    pub(super) async fn revoke_agreements(&self, who: &Principal, brief: &str) -> Result<()> {
        let action = Action::AgreementRevoke.with([&brief]);
        for row in self
            .store
            .records_by_label(&self.tenant, RecordKind::Agreement.name(), brief)
            .await?
        {
            if meta_of(&row)?.get("status") != Some(&Value::from("yes")) {
                continue;
            }
            let record = row.owner.as_deref().filter(|o| !o.contains(':'));
            let result = self
                .upsert_record(
                    RecordKind::Agreement.name(),
                    &row.id,
                    |current| {
                        let current = current.ok_or_else(|| Error::not_found("not found"))?;
                        let mut meta = meta_of(current)?;
                        meta.insert("status".into(), Value::from("revoked"));
                        meta.insert("when".into(), Value::from(self.now()));
                        Ok(RecordRow {
                            meta: Some(meta_bytes(&meta)?),
                            updated: self.now(),
                            ..current.clone()
                        })
                    },
                    self.new_event(who, &action, record, "ok"),
                )
                .await;
            match result {
                Err(e) if e.kind == crate::ErrorKind::NotFound => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Ops that move consents given to `email`/`phone` digests before the user
    /// existed over to the new user `token` (sealed under `dek`). The email's consent
    /// wins when both name the same brief, as in Databunker.
    /// The owner keys pending consents of a new user's email and phone entries would
    /// have (at most four: two identities under at most two index-key versions).
    pub(crate) fn pending_owners(&self, entries: &[IndexEntry]) -> Vec<String> {
        entries
            .iter()
            .filter(|e| matches!(e.name, "email" | "phone"))
            .map(pending_owner)
            .collect()
    }

    pub(crate) async fn adopt_pending_agreements(
        &self,
        token: &str,
        dek: &Dek,
        owners: &[String],
    ) -> Result<Vec<WriteOp>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        // One query for both identities (creating a user is a hot path).
        let mut rows = self
            .store
            .records_of_owners(&self.tenant, RecordKind::Agreement.name(), owners)
            .await?;
        // On a brief given both ways the email's consent wins, as in Databunker; of
        // one given under two index keys (during a rotation), the later one.
        let identity = |r: &RecordRow| r.owner.clone().unwrap_or_default().starts_with("phone:");
        rows.sort_by(|a, b| {
            identity(a)
                .cmp(&identity(b))
                .then(b.updated.cmp(&a.updated))
        });
        let mut ops = Vec::new();
        let mut briefs = Vec::new();
        for row in rows {
            // Only as read: an index-key rotation may move it meanwhile (`Stale`:
            // the caller adopts again).
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: row.clone(),
                expected_version: Some(row.version),
            });
            ops.push(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Agreement.name().into(),
                id: row.id.clone(),
            });
            let Some(brief) = row.label.clone() else {
                continue;
            };
            if briefs.contains(&brief) {
                continue;
            }
            let own = self
                .own_dek(&row)?
                .ok_or_else(|| Error::internal("a pending agreement has no key"))?;
            let body = self.open_body(&own, &row)?;
            let id = agreement_id(token, &brief);
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    id: id.clone(),
                    owner: Some(token.to_string()),
                    body: Some(self.seal_body(dek, RecordKind::Agreement.name(), &id, &body)?),
                    kek_version: None,
                    wrapped_dek: None,
                    version: 1,
                    ..row
                },
                expected_version: None,
            });
            briefs.push(brief);
        }
        Ok(ops)
    }

    /// Moves consents given for an email or phone not in the vault, under an index
    /// key older than `current`, to their key under `current` (an index-key
    /// rotation). Returns how many moved and how many are left (they did not open,
    /// or changed meanwhile: the next pass tries again).
    pub(crate) async fn rekey_pending_agreements(&self, current: i64) -> Result<(usize, usize)> {
        let Some(secret) = self.keys.indexes().all.get(&current).cloned() else {
            return Ok((0, 0));
        };
        let (mut moved, mut left) = (0, 0);
        for row in self.pending_agreements(current).await? {
            match self.rekey_pending(&row, &secret).await {
                Ok(true) => moved += 1,
                Ok(false) => left += 1,
                Err(e) => {
                    left += 1;
                    crate::reindex::REINDEX_STATS
                        .skipped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "a pending consent could not be re-keyed");
                }
            }
        }
        Ok((moved, left))
    }

    /// How many pending consents are keyed under index versions below `version`.
    pub(crate) async fn pending_agreements_below(&self, version: i64) -> Result<usize> {
        Ok(self.pending_agreements(version).await?.len())
    }

    async fn pending_agreements(&self, below: i64) -> Result<Vec<RecordRow>> {
        Ok(self
            .store
            .records_of_kind(&self.tenant, RecordKind::Agreement.name())
            .await?
            .into_iter()
            .filter(|r| {
                r.owner
                    .as_deref()
                    .and_then(pending_owner_version)
                    .is_some_and(|v| v < below)
            })
            .collect())
    }

    /// One pending consent moved under `secret`'s key; `false` if it changed
    /// meanwhile. Should a consent already be there (given while the two versions
    /// were both in use), the one changed last is kept.
    async fn rekey_pending(
        &self,
        row: &RecordRow,
        secret: &strongbox_crypto::IndexSecret,
    ) -> Result<bool> {
        let owner = row.owner.as_deref().unwrap_or_default();
        let name = match owner.split(':').next() {
            Some("email") => "email",
            Some("phone") => "phone",
            _ => return Err(Error::internal("a pending consent has an unknown owner")),
        };
        let own = self
            .own_dek(row)?
            .ok_or_else(|| Error::internal("a pending agreement has no key"))?;
        let body = self.open_body(&own, row)?;
        let normalized = body
            .get("who")
            .and_then(Value::as_str)
            .and_then(|who| self.config.normalizer.normalize(name, who))
            .ok_or_else(|| Error::internal("a pending agreement names nobody"))?;
        let brief = row
            .label
            .clone()
            .ok_or_else(|| Error::internal("a pending agreement has no brief"))?;
        let new_owner = pending_owner(&crate::keys::entry(secret, name, &normalized));
        let id = agreement_id(&new_owner, &brief);
        let (dek, kek_version, wrapped) = self.new_record_dek(RecordKind::Agreement.name(), &id)?;
        let mut moved = RecordRow {
            id: id.clone(),
            owner: Some(new_owner),
            body: Some(self.seal_body(&dek, RecordKind::Agreement.name(), &id, &body)?),
            kek_version: Some(kek_version),
            wrapped_dek: Some(wrapped),
            version: 1,
            ..row.clone()
        };
        // The old one goes only if unchanged since it was read.
        let take_old = [
            WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: row.clone(),
                expected_version: Some(row.version),
            },
            WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Agreement.name().into(),
                id: row.id.clone(),
            },
            WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(
                    &Principal::System,
                    Action::AgreementRekey.with([&secret.version]),
                    None,
                    "ok",
                ),
            },
        ];
        let put = |record: RecordRow, expected_version| {
            let mut ops = take_old.to_vec();
            ops.push(WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record,
                expected_version,
            });
            WriteOp::Atomic(ops)
        };
        let r = match self.store.write(put(moved.clone(), None)).await {
            Err(StoreError::Duplicate(_)) => {
                match self
                    .store
                    .record(&self.tenant, RecordKind::Agreement.name(), &id)
                    .await?
                {
                    Some(there) if there.updated > row.updated => {
                        self.store.write(WriteOp::Atomic(take_old.to_vec())).await
                    }
                    Some(there) => {
                        moved.created = there.created;
                        self.store.write(put(moved, Some(there.version))).await
                    }
                    None => return Ok(false),
                }
            }
            other => other,
        };
        match r {
            Ok(()) => Ok(true),
            Err(StoreError::Stale) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
