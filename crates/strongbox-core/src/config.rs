//! The domain layer's settings: what the binary's configuration becomes once parsed.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::normalize::Normalizer;

/// Notifications the outbox holds at most unless configured: about a day of a
/// busy vault's changes, some hundreds of megabytes at most.
pub const DEFAULT_OUTBOX_MAX: u64 = 100_000;

/// The file vault's size limit unless configured: 128 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// Settings of the domain layer.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Largest file the file vault stores, in bytes.
    pub max_file_bytes: u64,
    /// Where file content goes (`--file-store DIR`); `None`: in the database.
    pub file_store: Option<Arc<strongbox_store::ChunkDir>>,
    /// Whether earlier profiles are kept, and for how long.
    pub versioning: Versioning,
    /// Seconds a soft-deleted profile stays restorable before it is erased.
    pub soft_delete_grace: i64,
    /// Fuzzy search (`UserSearch`, `SystemSearchUserProfiles`) over keyed trigram
    /// digests of the indexed fields. Off by default: the digests reveal which
    /// people's values share trigrams (`docs/security-model.md`).
    pub search: bool,
    /// Largest document (profile, app document) a change may produce, as JSON.
    /// The binary sets it to the request body limit.
    pub max_document_bytes: usize,
    pub normalizer: Normalizer,
    /// Databunker's `create_user_without_access_token`: off by default.
    pub create_user_without_access_token: bool,
    pub policy: Policy,
    pub self_service: SelfService,
    /// Databunker's `list_users`: allow the bulk listing `POST /v1/users` (root
    /// only). Off by default.
    pub list_users: bool,
    /// Databunker's `notification_url`: where webhooks go (none by default).
    pub notification_url: Option<String>,
    /// Most notifications the outbox holds; past it new ones are dropped (and
    /// counted) while the changes still commit.
    pub notification_outbox_max: u64,
    /// Databunker's `user_record_schema`, compiled.
    pub schema: Option<std::sync::Arc<crate::schema::UserSchema>>,
    /// Answer reads even when their audit event cannot be written (logged as a
    /// warning). Off by default: no read of personal data goes unaudited. Changes
    /// always fail closed (their event commits with them).
    pub audit_fail_open_reads: bool,
    /// Where the vault reads the time (the system clock; tests move a manual one).
    pub clock: Arc<dyn Clock>,
    /// The login modes whose codes are sent (a delivery worker runs for them):
    /// their prelogins queue the code in the login-code outbox.
    pub login_delivery: LoginDelivery,
}

/// Which login codes have a way to their owner.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoginDelivery {
    /// By email (SMTP is configured).
    pub email: bool,
    /// By SMS (a gateway is configured).
    pub phone: bool,
}

impl Default for VaultConfig {
    fn default() -> Self {
        VaultConfig {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            file_store: None,
            versioning: Versioning::default(),
            soft_delete_grace: 30 * 24 * 3600,
            search: false,
            max_document_bytes: 1024 * 1024,
            normalizer: Normalizer::default(),
            create_user_without_access_token: false,
            policy: Policy::default(),
            self_service: SelfService::default(),
            list_users: false,
            notification_url: None,
            notification_outbox_max: DEFAULT_OUTBOX_MAX,
            schema: None,
            audit_fail_open_reads: false,
            clock: Arc::new(SystemClock),
            login_delivery: LoginDelivery::default(),
        }
    }
}

/// Record versions (Databunker Pro's `versioning` section): each change of a
/// profile keeps the profile it replaces, sealed under the person's key.
#[derive(Clone, Copy, Debug)]
pub struct Versioning {
    /// Off by default, as in Databunker Pro.
    pub enabled: bool,
    /// Earlier profiles kept per person; the oldest goes first.
    pub max_versions: usize,
    /// Seconds an earlier profile is kept.
    pub max_age: i64,
}

impl Default for Versioning {
    fn default() -> Self {
        Versioning {
            enabled: false,
            max_versions: 10,
            max_age: 30 * 24 * 3600,
        }
    }
}

/// What users may do with their own access token without a DPO's approval
/// (Databunker's `selfservice` section). Everything is off by default.
#[derive(Clone, Debug, Default)]
pub struct SelfService {
    /// Erase themselves (`forget_me`).
    pub forget_me: bool,
    /// Change their profile (`user_record_change`).
    pub user_record_change: bool,
    /// App names whose documents they may change (`app_record_change`): exact
    /// names, or patterns `*`, `prefix*`, `*suffix`, `*infix*`.
    pub app_record_change: Vec<String>,
}

impl SelfService {
    /// Whether a user may change their document of `app` directly.
    pub fn allows_app(&self, app: &str) -> bool {
        self.app_record_change.iter().any(|p| {
            let p = p.trim().to_ascii_lowercase();
            match (p.strip_prefix('*'), p.strip_suffix('*')) {
                _ if p == "*" => true,
                (Some(rest), _) if rest.ends_with('*') => app.contains(rest.trim_end_matches('*')),
                (Some(suffix), _) => app.ends_with(suffix),
                (None, Some(prefix)) => app.starts_with(prefix),
                (None, None) => app == p,
            }
        })
    }
}

/// Retention limits, in seconds (Databunker's `policy` section).
#[derive(Clone, Debug)]
pub struct Policy {
    /// Longest lifetime of a session (`max_session_retention_period`, default 1h).
    pub max_session_retention: i64,
    /// Longest lifetime of a user access token (default 1 day; a token asks for
    /// 10 minutes unless told otherwise, like Databunker's login tokens).
    pub max_user_token_lifetime: i64,
    /// Longest expiry `/v1/exp/start` may set (`max_user_retention_period`, 1m).
    pub max_user_retention: i64,
    /// Longest life of a shared record (`max_shareable_record_retention_period`, 1m).
    pub max_shareable_record_retention: i64,
}

/// Databunker's month: 31 days.
const MONTH: i64 = 31 * 24 * 3600;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_session_retention: 3600,
            max_user_token_lifetime: 24 * 3600,
            max_user_retention: MONTH,
            max_shareable_record_retention: MONTH,
        }
    }
}
