//! Data subjects: how a person is addressed (`{mode}/{identity}`), found (through a
//! blind index or their token) and reached (their DEK), with the refusals audited.
//! Every service that acts on a person starts here; what it then does with the
//! profile, app data, consents or requests is its own module's.

use serde_json::{Map, Value};
use strongbox_crypto::{Aad, Dek, parse_record_token};
use strongbox_store::{IndexEntry, UserRow};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kinds::{Action, AuditAction};
use crate::normalize::USER_INDEXES;
use crate::policy::Part;
use crate::principal::Principal;
use crate::vault::Vault;

/// How a user is addressed in a path: `/v1/user/{mode}/{identity}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Token,
    Login,
    Email,
    Phone,
    Custom,
}

impl Mode {
    /// Parses a mode name (case-insensitive, as in Databunker).
    pub fn parse(s: &str) -> Result<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "token" => Ok(Mode::Token),
            "login" => Ok(Mode::Login),
            "email" => Ok(Mode::Email),
            "phone" => Ok(Mode::Phone),
            "custom" => Ok(Mode::Custom),
            _ => Err(Error::bad_request("bad mode")),
        }
    }

    /// The mode's name in paths and audit titles.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Token => "token",
            Mode::Login => "login",
            Mode::Email => "email",
            Mode::Phone => "phone",
            Mode::Custom => "custom",
        }
    }

    pub(crate) fn index(self) -> Option<&'static str> {
        match self {
            Mode::Token => None,
            Mode::Login => Some("login"),
            Mode::Email => Some("email"),
            Mode::Phone => Some("phone"),
            Mode::Custom => Some("custom"),
        }
    }
}

/// A live user reached through a path, with the key to its records.
pub(crate) struct Subject {
    pub token: String,
    pub dek: Dek,
}

impl Vault {
    /// What a profile's ciphertext is bound to.
    pub(crate) fn profile_aad(&self, token: &str) -> Aad {
        Aad::new(&self.tenant, "user", token, "profile")
    }

    /// Blind-index entries of a profile, in Databunker's order.
    pub(crate) fn indexes_of(&self, profile: &Map<String, Value>) -> Vec<(&'static str, String)> {
        USER_INDEXES
            .iter()
            .filter_map(|&name| {
                self.config
                    .normalizer
                    .field(name, profile.get(name))
                    .map(|v| (name, v))
            })
            .collect()
    }

    /// The entries of a value in index `name`: one per index-key version in the key
    /// ring (two while a rotation's backfill runs), so that every node finds it.
    pub(crate) fn index_entries(
        &self,
        name: &'static str,
        normalized: &str,
    ) -> Result<Vec<IndexEntry>> {
        self.keys.indexes().entries(name, normalized)
    }

    /// The user holding a (normalized) value in index `name`, under any index-key
    /// version in use, in one query.
    pub(crate) async fn find_by_index(
        &self,
        name: &'static str,
        normalized: &str,
    ) -> Result<Option<UserRow>> {
        let digests = self.keys.indexes().digests(name, normalized)?;
        Ok(self
            .store
            .user_by_index(&self.tenant, name, &digests)
            .await?)
    }

    pub(crate) fn dek_of(&self, row: &UserRow) -> Result<Option<Dek>> {
        let (Some(version), Some(wrapped)) = (row.kek_version, row.wrapped_dek.as_ref()) else {
            return Ok(None);
        };
        let kek = self.keys.kek(version)?;
        Ok(Some(kek.unwrap_dek(&self.tenant, &row.token, wrapped)?))
    }

    /// Finds the user a `{mode}/{identity}` pair names. `None` if there is none.
    pub(crate) async fn resolve(&self, mode: Mode, identity: &str) -> Result<Option<UserRow>> {
        match mode.index() {
            None => {
                let token =
                    parse_record_token(identity).ok_or_else(|| Error::bad_request("bad uuid"))?;
                Ok(self.store.user(&self.tenant, &token).await?)
            }
            Some(name) => match self.config.normalizer.normalize(name, identity) {
                None => Ok(None),
                Some(v) => self.find_by_index(name, &v).await,
            },
        }
    }

    /// Resolves or answers "not found", auditing the miss. A user access token gets
    /// "access denied" instead, so it cannot probe which other people exist.
    async fn resolve_or_404(
        &self,
        who: &Principal,
        action: &AuditAction,
        mode: Mode,
        identity: &str,
    ) -> Result<UserRow> {
        match self.resolve(mode, identity).await? {
            Some(row) => Ok(row),
            None => {
                self.audit(self.new_event(who, action, None, "not-found"))
                    .await?;
                if who.is_root() {
                    Err(Error::not_found("not found"))
                } else {
                    Err(Error::new(crate::ErrorKind::Forbidden, "access denied"))
                }
            }
        }
    }

    /// Resolves and checks that `who` may reach the user, auditing a refusal.
    pub(crate) async fn resolve_authorized(
        &self,
        who: &Principal,
        action: &AuditAction,
        mode: Mode,
        identity: &str,
    ) -> Result<UserRow> {
        let row = self.resolve_or_404(who, action, mode, identity).await?;
        match (who, action.action()) {
            // A read of the profile is decided field by field when it is answered;
            // a share, once the body says what it shares.
            (Principal::Role(_), Action::UserGet | Action::ShareCreate) => {}
            // So is a person's read of someone else through their group roles.
            (Principal::User { token, .. }, Action::UserGet)
                if *token != row.token && !self.group_grants(who).await?.is_empty() => {}
            _ => {
                self.authorize(who, action, &row.token, &part_of(action.action()))
                    .await?
            }
        }
        Ok(row)
    }

    /// Checks that `who` may do `action` to `part` of person `token`, auditing a
    /// refusal.
    pub(crate) async fn authorize(
        &self,
        who: &Principal,
        action: &AuditAction,
        token: &str,
        part: &Part,
    ) -> Result<()> {
        let allowed = match who {
            Principal::Role(grant) => self.role_may_reach(grant, token, part).await,
            Principal::User { token: own, .. } if own != token => {
                let mut allowed = who.may_access(token);
                for grant in self.group_grants(who).await? {
                    allowed = self.role_may_reach(&grant, token, part).await;
                    if allowed.is_ok() {
                        break;
                    }
                }
                allowed
            }
            _ => who.may_access(token),
        };
        if let Err(e) = allowed {
            self.audit(self.new_event(who, action, Some(token), "denied"))
                .await?;
            return Err(e);
        }
        Ok(())
    }

    /// The live user `{mode}/{identity}` names, once `who` is allowed to reach it:
    /// "not found" (audited) when there is none, "user record not found" once erased.
    pub(crate) async fn subject(
        &self,
        who: &Principal,
        action: &AuditAction,
        mode: Mode,
        identity: &str,
    ) -> Result<Subject> {
        let row = self.resolve_authorized(who, action, mode, identity).await?;
        self.live(row)
    }

    /// `subject`'s current profile.
    pub(crate) async fn profile_of(&self, subject: &Subject) -> Result<Value> {
        let row = self
            .store
            .user(&self.tenant, &subject.token)
            .await?
            .ok_or_else(|| Error::not_found("not found"))?;
        let plain = self.decrypt_profile(&row, &subject.dek)?;
        serde_json::from_slice(&plain).map_err(Error::internal)
    }

    pub(crate) fn decrypt_profile(&self, row: &UserRow, dek: &Dek) -> Result<Zeroizing<Vec<u8>>> {
        let data = row
            .data
            .as_ref()
            .ok_or_else(|| Error::internal("a live user row has no data"))?;
        let started = std::time::Instant::now();
        let plain = dek.open(&self.profile_aad(&row.token), data)?;
        crate::vault::CRYPTO_TIMINGS.observe(started.elapsed());
        Ok(plain)
    }

    /// The subject of a live user row ("user record not found" once erased).
    pub(crate) fn live(&self, row: UserRow) -> Result<Subject> {
        if row.erased.is_some() {
            return Err(Error::not_found("user record not found"));
        }
        match self.dek_of(&row)? {
            Some(dek) => Ok(Subject {
                token: row.token,
                dek,
            }),
            None => Err(Error::not_found("user record not found")),
        }
    }
}

/// What part of a person an action reaches, for a role's policies.
fn part_of(action: Action) -> Part {
    use Action as A;
    match action {
        A::AppCreate | A::AppGet | A::AppChange | A::AppWrite | A::AppDelete | A::AppList => {
            Part::AppData
        }
        A::AgreementAccept
        | A::AgreementGet
        | A::AgreementList
        | A::AgreementWithdraw
        | A::AgreementRevoke => Part::Agreement,
        A::SessionCreate | A::SessionGet | A::SessionDelete | A::SessionList => Part::Session,
        A::GroupMemberAdd | A::GroupMemberRemove | A::GroupList => Part::Group,
        A::UserGet
        | A::UserChange
        | A::UserChangeByRequest
        | A::ShareCreate
        | A::RequestFile
        | A::UserVersions => Part::Profile(None),
        A::FileCreate | A::FileGet | A::FileList | A::FileChange | A::FileDelete => Part::Files,
        _ => Part::All,
    }
}
