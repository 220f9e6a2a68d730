//! The vault: an opened store plus the unwrapped key ring; who a token is, the time
//! and new audit events. Its settings are in `config`, callers in `principal`, how the
//! root key is kept in `unseal`; each domain area adds its methods in its own module.

use strongbox_crypto::{KeyRingEntry, RootKey, SecretKey, TokenHasher, new_event_token};
use strongbox_store::{AuditEvent, InitData, KeyRow, Store, StoreError, WriteOp};

use crate::clock::{Clock, SystemClock};
use crate::config::VaultConfig;
use crate::error::{Error, ErrorKind, OpenError, Result};
use crate::keys::Keys;
use crate::kinds::{Action, AuditAction, KeyKind};
use crate::principal::Principal;

/// The tenant of the v1 API (Databunker's open-source edition has one).
pub const DEFAULT_TENANT: &str = "default";

pub(crate) fn token_entry(tenant: &str) -> KeyRingEntry<'_> {
    KeyRingEntry {
        tenant,
        kind: KeyKind::TokenHasher.name(),
        version: 1,
    }
}

/// An audit event's actor: `label`, followed by the policy decisions made since
/// the request's last event.
pub(crate) fn actor_with_decisions(label: String) -> String {
    match crate::context::decisions() {
        Some(d) => format!("{label} {d}"),
        None => label,
    }
}

/// Time spent sealing and opening records (profiles, documents, event details).
pub static CRYPTO_TIMINGS: strongbox_store::metrics::Histogram =
    strongbox_store::metrics::Histogram::new();

pub struct Vault {
    /// The store, confined to this tenant where the database can do it (PostgreSQL's
    /// row-level security).
    pub(crate) store: Store,
    /// The store as the main tenant sees it: where the tenant registry is kept.
    pub(crate) registry: Store,
    /// The tenant's unwrapped key ring: the only holder of key material.
    pub(crate) keys: Keys,
    pub(crate) tenant: String,
    /// The tenant's id: [`crate::tenants::MAIN_TENANT_ID`] for the main tenant.
    pub(crate) tenant_id: i64,
    pub(crate) config: VaultConfig,
    pub(crate) token_hasher: TokenHasher,
    /// The root token's keyed hash, as last read from the store (a rotation on any
    /// node reaches this one with the next key reload).
    pub(crate) root_token_hash: std::sync::RwLock<Vec<u8>>,
    /// Held by a rotation from its write until the new hash is in memory, and by a
    /// reload from its read until it stores what it read, so a reload can never put
    /// back the hash a rotation just replaced.
    pub(crate) root_token_turn: tokio::sync::Mutex<()>,
    /// The other tenants' vaults the main vault has opened (shared by the main
    /// vault and its tenants, so a tenant renamed by its own admin is resolved
    /// afresh).
    pub(crate) tenants: std::sync::Arc<crate::tenants::OpenTenants>,
}

impl Vault {
    /// Initializes an empty store: a first KEK and index secret (wrapped by the root
    /// key), the root-key canary and the root token's hash, and `meta` entries (how
    /// the root key is kept: its shares' configuration, or the key service's entry).
    pub async fn initialize(
        store: &Store,
        root: &RootKey,
        root_token: &str,
        meta: Vec<(String, Vec<u8>)>,
    ) -> std::result::Result<(), OpenError> {
        let tenant = DEFAULT_TENANT;
        let now = SystemClock.now();
        let mut keys = Vec::new();
        for kind in [KeyKind::Kek.name(), KeyKind::Index.name()] {
            let entry = KeyRingEntry {
                tenant,
                kind,
                version: 1,
            };
            keys.push(KeyRow {
                kind: kind.to_string(),
                version: 1,
                wrapped: root.wrap(&entry, &SecretKey::generate()?)?,
                created: now,
            });
        }
        store
            .initialize(InitData {
                tenant: tenant.to_string(),
                canary: root.make_canary()?,
                root_token_hash: root.token_hasher().hash(root_token).to_vec(),
                keys,
                meta,
            })
            .await?;
        // Databunker's two built-in legal bases.
        let bases = Vault::default_legal_bases(now)
            .into_iter()
            .map(|record| WriteOp::PutRecord {
                tenant: tenant.to_string(),
                record,
                expected_version: None,
            })
            .collect();
        store.write(WriteOp::Atomic(bases)).await?;
        Ok(())
    }

    /// Opens an initialized store with `root`, refusing a wrong key (checked against
    /// the stored canary before anything else is unwrapped).
    pub async fn open(
        store: Store,
        root: &RootKey,
        config: VaultConfig,
    ) -> std::result::Result<Vault, OpenError> {
        let meta = store.meta().await?;
        if !root.check_canary(&meta.canary) {
            return Err(OpenError::WrongRootKey);
        }
        let tenant = DEFAULT_TENANT.to_string();
        let rows = store.keys(&tenant).await?;
        // After a root-key rotation the token hasher is a key-ring entry; before, it
        // is derived from the root key.
        let token_hasher = match rows.iter().find(|r| r.kind == KeyKind::TokenHasher.name()) {
            Some(row) => root
                .wrapper()
                .unwrap_token_hasher(&token_entry(&tenant), &row.wrapped)?,
            None => root.token_hasher(),
        };
        let keys = Keys::open(&store, &root.wrapper(), &tenant, &rows, config.clock.now()).await?;
        Ok(Vault::assemble(
            store.clone(),
            store,
            Default::default(),
            keys,
            tenant,
            crate::tenants::MAIN_TENANT_ID,
            config,
            token_hasher,
            meta.root_token_hash,
        ))
    }

    /// A vault of tenant `tenant` (its store key) from its opened parts.
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one part of an opened vault; a struct would only rename them"
    )]
    pub(crate) fn assemble(
        store: Store,
        registry: Store,
        tenants: std::sync::Arc<crate::tenants::OpenTenants>,
        keys: Keys,
        tenant: String,
        tenant_id: i64,
        config: VaultConfig,
        token_hasher: TokenHasher,
        root_token_hash: Vec<u8>,
    ) -> Vault {
        Vault {
            store,
            registry,
            keys,
            tenant,
            tenant_id,
            config,
            token_hasher,
            root_token_hash: std::sync::RwLock::new(root_token_hash),
            root_token_turn: tokio::sync::Mutex::new(()),
            tenants,
        }
    }

    /// Replaces the admin (root) token hash this vault accepts.
    pub(crate) fn set_root_token_hash(&self, hash: Vec<u8>) {
        *self
            .root_token_hash
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hash;
    }

    /// The tenant this vault serves.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The current time (Unix seconds) from the configured clock.
    pub fn now(&self) -> i64 {
        self.config.clock.now()
    }

    /// A new audit event for `principal` doing `action` on `record`, now: the action's
    /// title with its arguments, and its stable name.
    pub(crate) fn new_event(
        &self,
        principal: &Principal,
        action: impl Into<AuditAction>,
        record: Option<&str>,
        status: &str,
    ) -> AuditEvent {
        let action = action.into();
        let atoken = new_event_token();
        // The request's metadata, sealed; an event that gets a detail of its own
        // carries it there instead (`with_detail`). A sealing failure (no usable KEK)
        // leaves it out rather than failing the action: logged.
        let detail = match self.metadata_envelope(&atoken) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "request_metadata could not be sealed into the audit event");
                None
            }
        };
        AuditEvent {
            atoken,
            at: self.now(),
            actor: actor_with_decisions(principal.audit_label()),
            action: action.to_string(),
            name: Some(action.action().name().to_string()),
            record: record.map(str::to_string),
            status: status.to_string(),
            app: None,
            detail,
            classes: None,
        }
    }

    /// Resolves an access token: the root token (compared in constant time, in
    /// memory), else a user access token (looked up by its keyed hash). A missing token
    /// is `Unauthenticated`; one that matches nothing, or has expired, is `Forbidden`.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal> {
        match token {
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "missing access token",
            )),
            Some(t) if self.is_root_token(t) => Ok(Principal::Root),
            Some(t) => self.user_principal(t).await,
        }
    }

    /// Authorization for creating a user: root, or anyone when the configuration
    /// allows creation without a token. A user access token may not create users.
    pub async fn authenticate_create(&self, token: Option<&str>) -> Result<Principal> {
        match token {
            None if self.config.create_user_without_access_token => Ok(Principal::Anonymous),
            other => {
                let who = self.authenticate(other).await?;
                who.require_root()?;
                Ok(who)
            }
        }
    }

    /// The keyed hash of an access token, as hex (how user tokens are stored).
    pub(crate) fn access_token_digest(&self, token: &str) -> String {
        self.token_hasher
            .hash(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Periodic housekeeping: deletes what has expired.
    pub async fn sweep(&self) -> Result<()> {
        self.purge_expired_sessions().await?;
        self.purge_expired_tokens().await?;
        self.purge_expired_unlocks().await?;
        self.purge_expired_login_codes().await?;
        self.purge_expired_shares().await?;
        self.purge_expired_fpt().await?;
        self.purge_expired_files().await?;
        self.purge_stray_chunks().await?;
        self.purge_expired_versions().await?;
        self.purge_hidden_users().await?;
        self.apply_retention().await
    }

    /// Cheap health check of the store.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Why the audit log cannot record events now, if it cannot: then every change
    /// and every read of personal data is refused (fail closed), since none of them
    /// may happen unaudited.
    pub async fn audit_unavailable(&self) -> Option<&'static str> {
        if self.store.ping().await.is_err() {
            return Some("the database cannot be reached");
        }
        if self.store.probe_audit().await.is_err() {
            return Some("the audit log cannot be read");
        }
        let health = &strongbox_store::metrics::WRITE_HEALTH;
        if health.failing(std::time::Duration::from_secs(30)) {
            // The latest write failed: try one (an event of its own) to see whether
            // the log is back.
            let probe = WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: self.new_event(&Principal::System, Action::AuditProbe, None, "ok"),
            };
            if self.store.write(probe).await.is_err() {
                return Some("the audit log refuses writes");
            }
        }
        None
    }

    /// Records that a client went over one of the edge's rate limits, once per
    /// episode, without its address or any token: `who` is anonymous for an address
    /// over its limit of failed attempts, or the caller whose valid token went over
    /// the per-token limit.
    pub async fn record_rate_limit(&self, who: &Principal) -> Result<()> {
        self.audit(self.new_event(who, Action::RateLimit, None, "refused"))
            .await
    }

    /// Records an audit event on its own (a read, a view of the log), durably, before
    /// the answer leaves. If it cannot be written the read is refused, unless the
    /// configuration fails reads open.
    pub(crate) async fn audit(&self, event: AuditEvent) -> Result<()> {
        let r = self
            .store
            .write(WriteOp::Audit {
                tenant: self.tenant.clone(),
                audit: event,
            })
            .await;
        match r {
            Err(StoreError::Backend(_) | StoreError::Deadlock(_))
                if self.config.audit_fail_open_reads =>
            {
                tracing::warn!("a read was answered without its audit event (fail-open reads)");
                Ok(())
            }
            other => Ok(other?),
        }
    }
}
