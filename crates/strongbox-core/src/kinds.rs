//! The vocabulary of what is stored: the kinds of records (`records.kind`) and of
//! key-ring entries (`key_ring.kind`), in one place. Their names are written to the
//! database and to backups: never change one; add a new kind instead.

/// What a row of `records` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A user's document of one application (`/v1/userapp`).
    App,
    /// A session (`/v1/session`), linked to a user or not.
    Session,
    /// A legal basis (`/v1/lbasis`).
    LegalBasis,
    /// A consent: a person's agreement to a legal basis.
    Agreement,
    /// A processing activity (`/v1/pactivity`).
    Activity,
    /// A data-subject request waiting for the DPO.
    Request,
    /// The guard that makes filing one request atomic.
    RequestGuard,
    /// A shared record (`/v1/sharedrecord`).
    Share,
    /// A user access token (Databunker's xtoken), as its keyed hash.
    AccessToken,
    /// A user's retention state (`/v1/exp`).
    Retention,
    /// A signed erasure receipt (and so an entry of the erasure ledger).
    Receipt,
    /// A webhook waiting for delivery.
    Outbox,
    /// The pending login code of an email or phone, as its keyed hash.
    LoginCode,
    /// A captcha token already redeemed (kept until it would have expired).
    CaptchaSpent,
    /// A login code waiting to be sent by email or SMS.
    LoginMessage,
    /// An unlock of the bulk listings, as its keyed hash.
    BulkUnlock,
    /// A tenant's registry entry (in the main tenant), by tenant id.
    Tenant,
    /// A tenant name, taken (in the main tenant).
    TenantName,
    /// A tokenized value (`TokenCreate`), by the keyed digest of its `tokenbase`.
    Token,
    /// The token of a value tokenized with `unique`, by the value's keyed digest.
    TokenUnique,
    /// A group (by id), and its name (by name).
    Group,
    GroupName,
    /// A role (by id, in the main tenant), and its name.
    Role,
    RoleName,
    /// A policy (by id, in the main tenant), and its name.
    Policy,
    PolicyName,
    /// A person's membership of a group (`<group id>/<token>`), owned by them.
    Member,
    /// A file of the file vault (by its uuid), owned by its person: its tags and
    /// size in the clear, its name, type and digest sealed.
    File,
    /// One chunk of a file's content (`<file uuid>/<seq>`, labelled with the file's
    /// uuid), sealed under the owner's DEK.
    FileChunk,
    /// An earlier profile of a person (`<token>/<number>`), sealed under their DEK.
    Version,
    /// A soft-deleted profile (by token): its ciphertext and key until restored or
    /// erased.
    Trash,
    /// The search index's marker (`index`): its label says whether every person's
    /// trigram entries are written (`built`) or being written (`building`).
    SearchIndex,
}

impl RecordKind {
    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            RecordKind::App => "app",
            RecordKind::Session => "session",
            RecordKind::LegalBasis => "lbasis",
            RecordKind::Agreement => "agreement",
            RecordKind::Activity => "pactivity",
            RecordKind::Request => "request",
            RecordKind::RequestGuard => "reqguard",
            RecordKind::Share => "share",
            RecordKind::AccessToken => "xtoken",
            RecordKind::Retention => "exp",
            RecordKind::Receipt => "receipt",
            RecordKind::Outbox => "outbox",
            RecordKind::LoginCode => "logincode",
            RecordKind::CaptchaSpent => "captcha",
            RecordKind::LoginMessage => "loginmsg",
            RecordKind::BulkUnlock => "unlock",
            RecordKind::Tenant => "tenant",
            RecordKind::TenantName => "tenantname",
            RecordKind::Token => "fpt",
            RecordKind::TokenUnique => "fptuniq",
            RecordKind::Group => "group",
            RecordKind::GroupName => "groupname",
            RecordKind::Role => "role",
            RecordKind::RoleName => "rolename",
            RecordKind::Policy => "policy",
            RecordKind::PolicyName => "policyname",
            RecordKind::Member => "member",
            RecordKind::File => "file",
            RecordKind::FileChunk => "filechunk",
            RecordKind::Version => "version",
            RecordKind::Trash => "trash",
            RecordKind::SearchIndex => "search",
        }
    }
}

/// What an entry of the key ring is (each wrapped by the root key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A key-encryption key: wraps the per-person DEKs.
    Kek,
    /// An index secret: the blind indexes' HMAC keys derive from it.
    Index,
    /// The access-token hasher's key, once a root-key rotation made it an entry.
    TokenHasher,
    /// The audit chain's Ed25519 signing key.
    Signing,
}

impl KeyKind {
    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::Kek => "kek",
            KeyKind::Index => "index",
            KeyKind::TokenHasher => "token",
            KeyKind::Signing => "signing",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<KeyKind> {
        [
            KeyKind::Kek,
            KeyKind::Index,
            KeyKind::TokenHasher,
            KeyKind::Signing,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// What a data-subject request asks for (stored as the request's `action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Erase me.
    ForgetMe,
    /// Change my profile.
    ChangeProfile,
    /// Change my document of an app.
    ChangeApp,
    /// Withdraw my consent to a legal basis the organisation keeps control of.
    Withdraw,
}

impl RequestKind {
    const ALL: [RequestKind; 4] = [
        RequestKind::ForgetMe,
        RequestKind::ChangeProfile,
        RequestKind::ChangeApp,
        RequestKind::Withdraw,
    ];

    /// The stored name (Databunker's).
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::ForgetMe => "forget-me",
            RequestKind::ChangeProfile => "change-profile",
            RequestKind::ChangeApp => "change-app-data",
            RequestKind::Withdraw => "agreement-withdraw",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What an audit event records: a closed set. Each action has a stable wire name
/// (`user.get`, stored in `audit.name`) and a title, Databunker's wording where it has
/// one, that its arguments complete (`get user record by email`, stored in
/// `audit.action` as before names existed). Never change a name or a title: add a new
/// action instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    // Keep `Action::ALL` in this order, the last variant last.
    UserCreate,
    UserGet,
    UserChange,
    UserChangeByRequest,
    UserDelete,
    UserDeleteByRequest,
    UserDeleteByExptoken,
    UserDeleteByExpiration,
    UserBulkList,
    AppCreate,
    AppGet,
    AppChange,
    AppWrite,
    AppDelete,
    AppList,
    SessionCreate,
    SessionGet,
    SessionDelete,
    SessionList,
    RequestFile,
    RequestGet,
    RequestList,
    RequestApprove,
    RequestCancel,
    ShareCreate,
    ShareGet,
    RootTokenRotate,
    AccessTokenIssue,
    AccessTokenRevoke,
    ExpirationStart,
    ExpirationGet,
    ExpirationClear,
    RetainByExptoken,
    AgreementAccept,
    AgreementGet,
    AgreementList,
    AgreementWithdraw,
    AgreementRevoke,
    AgreementExpire,
    AgreementRekey,
    LegalBasisChange,
    LegalBasisDelete,
    ActivityChange,
    ActivityDelete,
    AuditList,
    AuditGet,
    AuditProbe,
    AuditVerify,
    CheckpointSign,
    ReceiptGet,
    ReportGet,
    KekRotate,
    KekRewrap,
    KekRetire,
    IndexKeyRotate,
    IndexBackfill,
    IndexKeyRetire,
    Backup,
    Restore,
    RestoreEraseAgain,
    RateLimit,
    LoginPrelogin,
    Login,
    BulkUnlock,
    BulkUnlockRefused,
    UserExport,
    TenantCreate,
    TenantChange,
    TenantDelete,
    TokenCreate,
    TokenGet,
    TokenDelete,
    TokenExpire,
    AccessChange,
    AccessDelete,
    GroupMemberAdd,
    GroupMemberRemove,
    GroupList,
    RoleTokenIssue,
    PolicyRefusal,
    FileCreate,
    FileGet,
    FileList,
    FileChange,
    FileDelete,
    FileExpire,
    UserVersions,
    UserHide,
    UserRestore,
    UserSearch,
    SearchBuild,
    SearchDrop,
}

impl Action {
    /// Every action, for lookups by name.
    pub const ALL: &'static [Action] = &[
        Action::UserCreate,
        Action::UserGet,
        Action::UserChange,
        Action::UserChangeByRequest,
        Action::UserDelete,
        Action::UserDeleteByRequest,
        Action::UserDeleteByExptoken,
        Action::UserDeleteByExpiration,
        Action::UserBulkList,
        Action::AppCreate,
        Action::AppGet,
        Action::AppChange,
        Action::AppWrite,
        Action::AppDelete,
        Action::AppList,
        Action::SessionCreate,
        Action::SessionGet,
        Action::SessionDelete,
        Action::SessionList,
        Action::RequestFile,
        Action::RequestGet,
        Action::RequestList,
        Action::RequestApprove,
        Action::RequestCancel,
        Action::ShareCreate,
        Action::ShareGet,
        Action::RootTokenRotate,
        Action::AccessTokenIssue,
        Action::AccessTokenRevoke,
        Action::ExpirationStart,
        Action::ExpirationGet,
        Action::ExpirationClear,
        Action::RetainByExptoken,
        Action::AgreementAccept,
        Action::AgreementGet,
        Action::AgreementList,
        Action::AgreementWithdraw,
        Action::AgreementRevoke,
        Action::AgreementExpire,
        Action::AgreementRekey,
        Action::LegalBasisChange,
        Action::LegalBasisDelete,
        Action::ActivityChange,
        Action::ActivityDelete,
        Action::AuditList,
        Action::AuditGet,
        Action::AuditProbe,
        Action::AuditVerify,
        Action::CheckpointSign,
        Action::ReceiptGet,
        Action::ReportGet,
        Action::KekRotate,
        Action::KekRewrap,
        Action::KekRetire,
        Action::IndexKeyRotate,
        Action::IndexBackfill,
        Action::IndexKeyRetire,
        Action::Backup,
        Action::Restore,
        Action::RestoreEraseAgain,
        Action::RateLimit,
        Action::LoginPrelogin,
        Action::Login,
        Action::BulkUnlock,
        Action::BulkUnlockRefused,
        Action::UserExport,
        Action::TenantCreate,
        Action::TenantChange,
        Action::TenantDelete,
        Action::TokenCreate,
        Action::TokenGet,
        Action::TokenDelete,
        Action::TokenExpire,
        Action::AccessChange,
        Action::AccessDelete,
        Action::GroupMemberAdd,
        Action::GroupMemberRemove,
        Action::GroupList,
        Action::RoleTokenIssue,
        Action::PolicyRefusal,
        Action::FileCreate,
        Action::FileGet,
        Action::FileList,
        Action::FileChange,
        Action::FileDelete,
        Action::FileExpire,
        Action::UserVersions,
        Action::UserHide,
        Action::UserRestore,
        Action::UserSearch,
        Action::SearchBuild,
        Action::SearchDrop,
    ];

    /// The stable wire name and the title, whose `{}` the arguments fill in order.
    const fn spec(self) -> (&'static str, &'static str) {
        match self {
            Action::UserCreate => ("user.create", "create user record"),
            Action::UserGet => ("user.get", "get user record by {}"),
            Action::UserChange => ("user.change", "change user record by {}"),
            Action::UserChangeByRequest => {
                ("user.change-by-request", "change user record by request")
            }
            Action::UserDelete => ("user.delete", "delete user record by {}"),
            Action::UserDeleteByRequest => {
                ("user.delete-by-request", "delete user record by request")
            }
            Action::UserDeleteByExptoken => {
                ("user.delete-by-exptoken", "delete user data by exptoken")
            }
            Action::UserDeleteByExpiration => (
                "user.delete-by-expiration",
                "delete user data by expiration",
            ),
            Action::UserBulkList => ("user.bulk-list", "bulk list user record"),
            Action::AppCreate => ("app.create", "create user app record by {}"),
            Action::AppGet => ("app.get", "get user app record by {}"),
            Action::AppChange => ("app.change", "change user app record by {}"),
            Action::AppWrite => ("app.write", "change user app record"),
            Action::AppDelete => ("app.delete", "delete user app record by {}"),
            Action::AppList => ("app.list", "get user app list by {}"),
            Action::SessionCreate => ("session.create", "create session"),
            Action::SessionGet => ("session.get", "get session"),
            Action::SessionDelete => ("session.delete", "delete session"),
            Action::SessionList => ("session.list", "get all user sessions"),
            Action::RequestFile => ("request.file", "user {} request"),
            Action::RequestGet => ("request.get", "get user request by request token"),
            Action::RequestList => ("request.list", "get user privacy requests"),
            Action::RequestApprove => ("request.approve", "approve user request"),
            Action::RequestCancel => ("request.cancel", "cancel user request"),
            Action::ShareCreate => ("share.create", "create shareable record by {}"),
            Action::ShareGet => ("share.get", "get shareable record by token"),
            Action::RootTokenRotate => ("root-token.rotate", "rotate root token"),
            Action::AccessTokenIssue => ("access-token.issue", "issue user access token"),
            Action::AccessTokenRevoke => ("access-token.revoke", "revoke user access token"),
            Action::ExpirationStart => {
                ("expiration.start", "initiate user record expiration by {}")
            }
            Action::ExpirationGet => ("expiration.get", "get expiration status by {}"),
            Action::ExpirationClear => ("expiration.clear", "clear user expiration by {}"),
            Action::RetainByExptoken => ("expiration.retain", "retain user data by exptoken"),
            Action::AgreementAccept => ("agreement.accept", "accept agreement for {}"),
            Action::AgreementGet => ("agreement.get", "get agreements for {}"),
            Action::AgreementList => ("agreement.list", "get agreements for {}"),
            Action::AgreementWithdraw => ("agreement.withdraw", "withdraw agreement for {}"),
            Action::AgreementRevoke => ("agreement.revoke", "revoke agreement for {}"),
            Action::AgreementExpire => ("agreement.expire", "expire agreement"),
            Action::AgreementRekey => (
                "agreement.rekey",
                "re-key a pending consent under index key version {}",
            ),
            Action::LegalBasisChange => ("lbasis.change", "change legal basis"),
            Action::LegalBasisDelete => ("lbasis.delete", "delete legal basis"),
            Action::ActivityChange => ("pactivity.change", "change processing activity"),
            Action::ActivityDelete => ("pactivity.delete", "delete processing activity"),
            Action::AuditList => ("audit.list", "view audit events"),
            Action::AuditGet => ("audit.get", "view audit event"),
            Action::AuditProbe => ("audit.probe", "probe audit log"),
            Action::AuditVerify => ("audit.verify", "verify the audit chain"),
            Action::CheckpointSign => ("audit.checkpoint", "sign audit checkpoint"),
            Action::ReceiptGet => ("receipt.get", "view erasure receipt"),
            Action::ReportGet => ("report.get", "view access report"),
            Action::KekRotate => ("kek.rotate", "rotate KEK to version {}"),
            Action::KekRewrap => ("kek.rewrap", "rewrap {} DEKs under KEK version {}"),
            Action::KekRetire => ("kek.retire", "retire KEK version {}"),
            Action::IndexKeyRotate => ("index-key.rotate", "rotate index key to version {}"),
            Action::IndexBackfill => (
                "index-key.backfill",
                "backfill {} users under index key version {}",
            ),
            Action::IndexKeyRetire => ("index-key.retire", "retire index key version {}"),
            Action::Backup => ("backup", "backup"),
            Action::Restore => ("restore", "restore from backup"),
            Action::RestoreEraseAgain => (
                "restore.erase-again",
                "erase user again from the erasure ledger (restore)",
            ),
            Action::RateLimit => (
                "edge.rate-limit",
                "refuse failed attempts from an address over its limit",
            ),
            Action::LoginPrelogin => ("login.prelogin", "user prelogin by {}"),
            Action::Login => ("login.login", "user login by {}"),
            Action::BulkUnlock => ("bulk.unlock", "unlock bulk listings"),
            Action::BulkUnlockRefused => (
                "bulk.refused",
                "refuse a bulk listing without a valid unlock",
            ),
            Action::UserExport => ("user.export", "export user data by {}"),
            Action::TenantCreate => ("tenant.create", "create tenant {}"),
            Action::TenantChange => ("tenant.change", "change tenant {}"),
            Action::TenantDelete => ("tenant.delete", "delete tenant {}"),
            Action::TokenCreate => ("token.create", "create {} token"),
            Action::TokenGet => ("token.get", "detokenize {} token"),
            Action::TokenDelete => ("token.delete", "delete {} token"),
            Action::TokenExpire => ("token.expire", "expire {} token"),
            Action::AccessChange => ("access.change", "change {} {}"),
            Action::AccessDelete => ("access.delete", "delete {} {}"),
            Action::GroupMemberAdd => ("group.add-user", "add user to group {}"),
            Action::GroupMemberRemove => ("group.remove-user", "remove user from group {}"),
            Action::GroupList => ("group.list", "get user groups by {}"),
            Action::RoleTokenIssue => ("role-token.issue", "issue access token of role {}"),
            Action::PolicyRefusal => ("policy.refuse", "refuse {} by policy"),
            Action::FileCreate => ("file.create", "store file by {}"),
            Action::FileGet => ("file.get", "get file by {}"),
            Action::FileList => ("file.list", "list files by {}"),
            Action::FileChange => ("file.change", "change file tags by {}"),
            Action::FileDelete => ("file.delete", "delete file by {}"),
            Action::FileExpire => ("file.expire", "expire file"),
            Action::UserVersions => ("user.versions", "list user versions by {}"),
            Action::UserHide => ("user.hide", "soft-delete user record"),
            Action::UserRestore => ("user.restore", "restore soft-deleted user record"),
            Action::UserSearch => ("user.search", "search user record"),
            Action::SearchBuild => ("search.build", "write search index entries"),
            Action::SearchDrop => ("search.drop", "drop the search index"),
        }
    }

    /// The stable wire name.
    pub const fn name(self) -> &'static str {
        self.spec().0
    }

    /// The action a stored name stands for.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// How many arguments the action takes.
    pub fn arity(self) -> usize {
        self.spec().1.matches("{}").count()
    }

    /// Whether this action erases a person (what an erasure receipt stands on).
    pub fn is_erasure(self) -> bool {
        matches!(
            self,
            Action::UserDelete
                | Action::UserDeleteByRequest
                | Action::UserDeleteByExptoken
                | Action::UserDeleteByExpiration
        )
    }

    /// The action with its arguments (each a mode name, a brief, a request kind or a
    /// number: none holds personal data).
    pub fn with<const N: usize>(self, args: [&dyn std::fmt::Display; N]) -> AuditAction {
        AuditAction {
            action: self,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// An action with its arguments, as an audit event records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditAction {
    action: Action,
    args: Vec<String>,
}

impl From<Action> for AuditAction {
    fn from(action: Action) -> Self {
        AuditAction {
            action,
            args: Vec::new(),
        }
    }
}

impl From<&AuditAction> for AuditAction {
    fn from(a: &AuditAction) -> Self {
        a.clone()
    }
}

impl AuditAction {
    pub fn action(&self) -> Action {
        self.action
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut args = self.args.iter();
        let mut parts = self.action.spec().1.split("{}");
        if let Some(first) = parts.next() {
            f.write_str(first)?;
        }
        for part in parts {
            f.write_str(args.next().map_or("", String::as_str))?;
            f.write_str(part)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_action_is_listed() {
        // `ALL` lists the variants in declaration order, the last one last.
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i, "{a:?} is out of place in Action::ALL");
            assert!(!a.name().contains(':'), "{a:?}");
        }
        assert_eq!(Action::ALL.len(), Action::SearchDrop as usize + 1);
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "two actions share a wire name");
    }

    #[test]
    fn titles_keep_their_wording_and_names_read_back() {
        let a = Action::AgreementWithdraw.with([&"marketing-1"]);
        assert_eq!(a.to_string(), "withdraw agreement for marketing-1");
        let r = Action::KekRewrap.with([&12, &3]);
        assert_eq!(r.to_string(), "rewrap 12 DEKs under KEK version 3");
        assert_eq!(
            AuditAction::from(Action::UserCreate).to_string(),
            "create user record"
        );
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(*a));
        }
        assert_eq!(Action::from_name("get user record by login"), None);
    }

    #[test]
    fn nothing_is_cut() {
        // The longest title: a 65-character brief or a 20-digit number in every
        // argument. The column holds 255 characters (schema version 5).
        let brief = "b".repeat(65);
        let longest = Action::ALL
            .iter()
            .map(|a| {
                let args: Vec<String> = (0..a.arity()).map(|_| brief.clone()).collect();
                AuditAction { action: *a, args }.to_string().len()
            })
            .max()
            .unwrap_or(0);
        assert!(longest <= 255, "{longest}");
    }
}
