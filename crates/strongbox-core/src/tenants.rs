//! Tenants (Databunker Pro's multi-tenancy): one vault process and one database
//! serving several organisations, each isolated as if it had a vault of its own.
//!
//! The main tenant (id 1, the store's `default` tenant) is the one the v1 API and
//! the root token serve. Every other tenant has:
//! - its own key ring — KEK, blind-index secret, token key and audit signing key —
//!   wrapped by the root key under the tenant's store key (`t<id>`), so the same
//!   email in two tenants has unrelated index digests and the two people unrelated
//!   tokens and keys;
//! - its rows under that store key in every table, so every query of its [`Vault`]
//!   is scoped to it in the store layer, the one place that builds queries;
//! - its own admin token (shown once, kept as a keyed hash under the tenant's token
//!   key), which acts as root within the tenant and nowhere else;
//! - its own audit chain.
//!
//! The registry is kept in the main tenant: a `tenant` record per tenant id (its
//! name, organisation, store key and admin token hash) and a `tenantname` record per
//! name, which makes names unique. A contact email given to `TenantCreate` is not
//! kept: nothing would read it, and it is personal data.
//! Ids are never reused. Deleting a tenant crypto-shreds it: its key ring and every
//! row it holds are removed in one commit (so nothing sealed under its keys can be
//! opened again), its name is freed, and the deletion is audited in the main
//! tenant's log.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use strongbox_crypto::{KeyRingEntry, SecretKey, TokenHasher, new_record_token};
use strongbox_store::{KeyRow, RecordRow, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, OpenError, Result};
use crate::expiry::Page;
use crate::keys::{Keys, public_key_name};
use crate::kinds::{Action, KeyKind, RecordKind};
use crate::principal::{Principal, RoleRules};
use crate::vault::{DEFAULT_TENANT, Vault, token_entry};

/// A tenant named by a call: `tenantid` or `tenantname`.
#[derive(Clone, Debug)]
pub enum TenantRef {
    Id(i64),
    Name(String),
}

/// The main tenant's id.
pub const MAIN_TENANT_ID: i64 = 1;

/// A tenant as the registry describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    pub id: i64,
    pub name: String,
    pub org: String,
    pub created: i64,
}

/// How long a name's resolution is reused before the registry is read again. A
/// tenant renamed or deleted on another node keeps answering to its old name here
/// for at most this long (on this node: at once); its admin token is re-read by the
/// key reloader every half second either way.
pub(crate) const RESOLVED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The tenants a main vault has opened, by store key, and recent resolutions of
/// names; and the main tenant's roles as recently read (every tenant's role
/// tokens name them), kept as long as a name's resolution.
#[derive(Default)]
pub(crate) struct OpenTenants {
    by_key: std::sync::RwLock<HashMap<String, Arc<Vault>>>,
    by_name: std::sync::RwLock<HashMap<String, (Arc<Vault>, std::time::Instant)>>,
    roles: std::sync::RwLock<HashMap<i64, (Arc<RoleRules>, std::time::Instant)>>,
}

impl OpenTenants {
    /// Role `id`'s rules, if read less than [`RESOLVED_FOR`] ago.
    pub(crate) fn role_rules(&self, id: i64) -> Option<Arc<RoleRules>> {
        self.roles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .filter(|(_, at)| at.elapsed() < RESOLVED_FOR)
            .map(|(r, _)| r.clone())
    }

    pub(crate) fn remember_role_rules(&self, id: i64, rules: &Arc<RoleRules>) {
        let mut roles = self
            .roles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if roles.len() > 10_000 {
            roles.retain(|_, (_, at)| at.elapsed() < RESOLVED_FOR);
        }
        roles.insert(id, (rules.clone(), std::time::Instant::now()));
    }

    /// Forgets every role's rules (a role or policy changed here).
    pub(crate) fn forget_role_rules(&self) {
        self.roles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn named(&self, name: &str) -> Option<Arc<Vault>> {
        self.by_name
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .filter(|(_, at)| at.elapsed() < RESOLVED_FOR)
            .map(|(v, _)| v.clone())
    }

    fn remember(&self, name: &str, vault: &Arc<Vault>) {
        let mut names = self
            .by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded by the live tenants, plus stale names until the next clean-up.
        if names.len() > 10_000 {
            names.retain(|_, (_, at)| at.elapsed() < RESOLVED_FOR);
        }
        names.insert(name.to_string(), (vault.clone(), std::time::Instant::now()));
    }

    /// Forgets every resolved name (a tenant was renamed or deleted here).
    pub(crate) fn forget_names(&self) {
        self.by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn get(&self, key: &str) -> Option<Arc<Vault>> {
        self.by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn put(&self, key: &str, vault: Arc<Vault>) -> Arc<Vault> {
        self.by_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_string())
            .or_insert(vault)
            .clone()
    }

    fn forget(&self, key: &str) {
        self.forget_names();
        self.by_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    fn all(&self) -> Vec<Arc<Vault>> {
        self.by_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// The store key of tenant `id`.
fn store_key(id: i64) -> String {
    if id == MAIN_TENANT_ID {
        DEFAULT_TENANT.to_string()
    } else {
        format!("t{id}")
    }
}

/// A tenant name: `[a-z0-9]+`, 2–64 characters, as the reference's docs ask.
fn parse_name(name: &str) -> Result<String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok && name != DEFAULT_TENANT {
        Ok(name.to_string())
    } else {
        Err(Error::bad_request(
            "The tenantname parameter has an incorrect format (2–64 of a-z and 0-9)",
        ))
    }
}

/// An organisation's name: any text up to 256 bytes.
fn parse_org(org: &str) -> Result<String> {
    if org.len() <= 256 {
        Ok(org.to_string())
    } else {
        Err(Error::bad_request(
            "The tenantorg parameter is too long (at most 256 bytes)",
        ))
    }
}

fn tenant_not_found() -> Error {
    Error::not_found("The tenant was not found")
}

fn registry_meta(row: &RecordRow) -> Result<Map<String, Value>> {
    match row.meta.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Object(m))) => Ok(m),
        _ => Err(Error::internal("a tenant record is not a JSON object")),
    }
}

/// A live tenant's registry entry.
struct Entry {
    row: RecordRow,
    meta: Map<String, Value>,
    info: TenantInfo,
    key: String,
    admin: Vec<u8>,
}

impl Entry {
    fn of(row: RecordRow) -> Result<Option<Entry>> {
        let meta = registry_meta(&row)?;
        if meta.get("deleted").and_then(Value::as_i64).is_some() {
            return Ok(None);
        }
        let text = |k: &str| {
            meta.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let id = meta
            .get("tenantid")
            .and_then(Value::as_i64)
            .ok_or_else(|| Error::internal("a tenant record has no id"))?;
        let admin = hex::decode(text("admin"))
            .map_err(|_| Error::internal("a tenant's admin token hash is not hex"))?;
        let info = TenantInfo {
            id,
            name: text("tenantname"),
            org: text("tenantorg"),
            created: row.created,
        };
        Ok(Some(Entry {
            key: text("key"),
            admin,
            info,
            meta,
            row,
        }))
    }
}

/// The store keys of every live tenant other than the main one (a root-key
/// rotation re-wraps their rings too).
pub(crate) async fn store_keys(store: &strongbox_store::Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for row in store
        .records_of_kind(DEFAULT_TENANT, RecordKind::Tenant.name())
        .await?
    {
        if let Some(e) = Entry::of(row)? {
            out.push(e.key);
        }
    }
    Ok(out)
}

impl Vault {
    /// This vault's tenant id (1: the main tenant).
    pub fn tenant_id(&self) -> i64 {
        self.tenant_id
    }

    /// Whether this is the main tenant's vault (the one v1 serves).
    pub fn is_main(&self) -> bool {
        self.tenant_id == MAIN_TENANT_ID
    }

    fn require_main_root(&self, who: &Principal) -> Result<()> {
        who.require_root()?;
        if self.is_main() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Forbidden,
                "Only the main tenant admin can do this",
            ))
        }
    }

    /// The live registry entry of tenant `id`, read from the main tenant.
    async fn entry(&self, id: i64) -> Result<Option<Entry>> {
        match self
            .registry
            .record(DEFAULT_TENANT, RecordKind::Tenant.name(), &id.to_string())
            .await?
        {
            Some(row) => Entry::of(row),
            None => Ok(None),
        }
    }

    /// The id of the live tenant named `name`.
    async fn id_of(&self, name: &str) -> Result<Option<i64>> {
        let Some(row) = self
            .registry
            .record(DEFAULT_TENANT, RecordKind::TenantName.name(), name)
            .await?
        else {
            return Ok(None);
        };
        Ok(registry_meta(&row)?.get("tenantid").and_then(Value::as_i64))
    }

    /// The vault of the tenant named `name` (a main vault only): `None` for the
    /// main tenant itself, an error for a name that is no live tenant. Opened on
    /// first use and kept; a name's resolution is reused for [`RESOLVED_FOR`].
    pub async fn tenant_vault(&self, name: &str) -> Result<Option<Arc<Vault>>> {
        if !self.is_main() {
            return Err(Error::internal("tenants are opened through the main vault"));
        }
        if name == DEFAULT_TENANT {
            return Ok(None);
        }
        if let Some(v) = self.tenants.named(name) {
            return Ok(Some(v));
        }
        let Some(id) = self.id_of(name).await? else {
            return Err(tenant_not_found());
        };
        let Some(entry) = self.entry(id).await? else {
            return Err(tenant_not_found());
        };
        let vault = match self.tenants.get(&entry.key) {
            Some(v) => {
                v.set_root_token_hash(entry.admin);
                v
            }
            None => {
                let vault = self.open_tenant(&entry).await.map_err(|e| {
                    Error::internal(format!("a tenant's key ring did not open: {e}"))
                })?;
                self.tenants.put(&entry.key, Arc::new(vault))
            }
        };
        self.tenants.remember(name, &vault);
        Ok(Some(vault))
    }

    /// The tenants a cross-tenant call reaches (the main vault's root only): the one
    /// `only` names, or all of them, the main tenant first; each with its vault
    /// (`None`: this main vault).
    pub(crate) async fn tenants_for(
        &self,
        who: &Principal,
        only: Option<&TenantRef>,
    ) -> Result<Vec<(TenantInfo, Option<Arc<Vault>>)>> {
        self.require_main_root(who)?;
        let main = TenantInfo {
            id: MAIN_TENANT_ID,
            name: DEFAULT_TENANT.into(),
            org: String::new(),
            created: 0,
        };
        let wanted = |info: &TenantInfo| match only {
            None => true,
            Some(TenantRef::Id(id)) => info.id == *id,
            Some(TenantRef::Name(n)) => info.name == *n,
        };
        let mut out = Vec::new();
        if wanted(&main) {
            out.push((main, None));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for row in self
            .registry
            .records_of_kind(DEFAULT_TENANT, RecordKind::Tenant.name())
            .await?
        {
            if let Some(e) = Entry::of(row)? {
                entries.push(e);
            }
        }
        entries.sort_by_key(|e| e.info.id);
        for e in entries {
            if wanted(&e.info)
                && let Some(v) = self.tenant_vault(&e.info.name).await?
            {
                out.push((e.info, Some(v)));
            }
        }
        if only.is_some() && out.is_empty() {
            return Err(tenant_not_found());
        }
        Ok(out)
    }

    /// Every tenant vault this main vault has opened.
    pub fn open_tenants(&self) -> Vec<Arc<Vault>> {
        self.tenants.all()
    }

    /// Every live tenant's vault, opening those not opened yet (for the background
    /// jobs: a tenant nobody has called since the start still gets its sweeps and
    /// its audit sealing). A tenant whose ring does not open is left out, logged.
    pub async fn tenant_vaults(&self) -> Result<Vec<Arc<Vault>>> {
        if !self.is_main() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for row in self
            .registry
            .records_of_kind(DEFAULT_TENANT, RecordKind::Tenant.name())
            .await?
        {
            let Some(entry) = Entry::of(row)? else {
                continue;
            };
            if let Some(v) = self.tenants.get(&entry.key) {
                out.push(v);
                continue;
            }
            match self.open_tenant(&entry).await {
                Ok(v) => out.push(self.tenants.put(&entry.key, Arc::new(v))),
                Err(e) => {
                    tracing::warn!(tenant = entry.info.id, error = %e, "a tenant's key ring did not open");
                }
            }
        }
        Ok(out)
    }

    async fn open_tenant(&self, entry: &Entry) -> std::result::Result<Vault, OpenError> {
        let key = &entry.key;
        // Read through the tenant's own handle: on PostgreSQL that checks now that
        // its row-level security scope can be entered.
        let scoped = self.store.scoped(key);
        let rows = scoped.keys(key).await?;
        let wrap = self.keys.wrapper();
        let hasher = rows
            .iter()
            .find(|r| r.kind == KeyKind::TokenHasher.name())
            .ok_or(OpenError::KeyRing("a tenant's key ring has no token key"))?;
        let token_hasher = wrap.unwrap_token_hasher(&token_entry(key), &hasher.wrapped)?;
        let keys = Keys::open(&self.store, wrap, key, &rows, self.now()).await?;
        Ok(Vault::assemble(
            scoped,
            self.store.clone(),
            self.tenants.clone(),
            keys,
            key.clone(),
            entry.info.id,
            self.config.clone(),
            token_hasher,
            entry.admin.clone(),
        ))
    }

    /// The admin token hash of this tenant vault, as the registry has it now.
    pub(crate) async fn reload_tenant_admin(&self) -> Result<()> {
        match self.entry(self.tenant_id).await? {
            Some(entry) => self.set_root_token_hash(entry.admin),
            // Deleted (here or on another node): no token works any more, and the
            // main vault stops serving it and running its jobs.
            None => {
                self.set_root_token_hash(Vec::new());
                self.tenants.forget(&self.tenant);
            }
        }
        Ok(())
    }

    /// Creates tenant `name` (main tenant root only): its key ring, the built-in
    /// legal bases and its registry entry, in one commit, audited in the main
    /// tenant's log. Returns its id and its admin token (shown once).
    pub async fn create_tenant(
        &self,
        who: &Principal,
        name: &str,
        org: &str,
    ) -> Result<(i64, String)> {
        self.require_main_root(who)?;
        let name = parse_name(name)?;
        let org = parse_org(org)?;
        let wrap = self.keys.wrapper();
        // A ring wrapped with a root key that was rotated since this server started
        // would open nowhere after a restart: refuse, as adding a KEK does.
        let main_ring = self.store.keys(DEFAULT_TENANT).await?;
        let stale = main_ring.iter().any(|row| {
            let entry = KeyRingEntry {
                tenant: DEFAULT_TENANT,
                kind: &row.kind,
                version: row.version,
            };
            row.kind == KeyKind::Kek.name() && wrap.unwrap(&entry, &row.wrapped).is_err()
        });
        if stale {
            return Err(Error::new(
                ErrorKind::Conflict,
                "the root key was rotated since this server started: restart it with the new key first",
            ));
        }
        for _ in 0..16 {
            let id = self.next_tenant_id().await?;
            let key = store_key(id);
            let now = self.now();
            let hasher = TokenHasher::generate()?;
            let admin_token = new_record_token();
            let admin = hex::encode(hasher.hash(&admin_token));
            let mut ops = Vec::new();
            for kind in [KeyKind::Kek, KeyKind::Index] {
                let entry = KeyRingEntry {
                    tenant: &key,
                    kind: kind.name(),
                    version: 1,
                };
                ops.push(WriteOp::AddKey {
                    tenant: key.clone(),
                    key: KeyRow {
                        kind: kind.name().to_string(),
                        version: 1,
                        wrapped: wrap.wrap(&entry, &SecretKey::generate()?)?,
                        created: now,
                    },
                    meta: Vec::new(),
                });
            }
            ops.push(WriteOp::AddKey {
                tenant: key.clone(),
                key: KeyRow {
                    kind: KeyKind::TokenHasher.name().to_string(),
                    version: 1,
                    wrapped: wrap.wrap_token_hasher(&token_entry(&key), &hasher)?,
                    created: now,
                },
                meta: Vec::new(),
            });
            ops.extend(Vault::default_legal_bases(now).into_iter().map(|record| {
                WriteOp::PutRecord {
                    tenant: key.clone(),
                    record,
                    expected_version: None,
                }
            }));
            let id_text = id.to_string();
            let meta = json!({
                "tenantid": id, "tenantname": name, "tenantorg": org, "key": key,
                "admin": admin,
            });
            let record = RecordRow {
                kind: RecordKind::Tenant.name().into(),
                id: id_text.clone(),
                label: Some(name.clone()),
                created: now,
                updated: now,
                version: 1,
                meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                ..RecordRow::default()
            };
            ops.push(WriteOp::PutRecord {
                tenant: DEFAULT_TENANT.into(),
                record,
                expected_version: None,
            });
            ops.push(self.name_record(&name, id, now)?);
            ops.push(WriteOp::Audit {
                tenant: DEFAULT_TENANT.into(),
                audit: self.new_event(who, Action::TenantCreate.with([&id]), None, "ok"),
            });
            match self.registry.write(WriteOp::Atomic(ops)).await {
                Ok(()) => return Ok((id, admin_token)),
                // The name is taken, or another create took this id: find out which.
                Err(StoreError::Duplicate(_)) => {
                    if self.id_of(&name).await?.is_some() {
                        return Err(Error::new(ErrorKind::Conflict, "Duplicate tenant name"));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "tenants are being created too fast: try again",
        ))
    }

    /// The `tenantname` record that makes `name` unique.
    fn name_record(&self, name: &str, id: i64, now: i64) -> Result<WriteOp> {
        Ok(WriteOp::PutRecord {
            tenant: DEFAULT_TENANT.into(),
            record: RecordRow {
                kind: RecordKind::TenantName.name().into(),
                id: name.to_string(),
                created: now,
                updated: now,
                version: 1,
                meta: Some(
                    serde_json::to_vec(&json!({ "tenantid": id })).map_err(Error::internal)?,
                ),
                ..RecordRow::default()
            },
            expected_version: None,
        })
    }

    /// One more than the highest tenant id ever used (deleted ones included).
    async fn next_tenant_id(&self) -> Result<i64> {
        let rows = self
            .registry
            .records_of_kind(DEFAULT_TENANT, RecordKind::Tenant.name())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.id.parse::<i64>().ok())
            .max()
            .unwrap_or(MAIN_TENANT_ID)
            .max(MAIN_TENANT_ID)
            + 1)
    }

    /// Whether `who`, calling through this vault, may see or change tenant `id`:
    /// the main tenant's root any tenant, a tenant's admin its own.
    fn may_manage(&self, who: &Principal, id: i64) -> Result<()> {
        who.require_root()?;
        if self.is_main() || self.tenant_id == id {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Forbidden, "Access denied"))
        }
    }

    /// Tenant `id` as the registry describes it.
    pub async fn get_tenant(&self, who: &Principal, id: i64) -> Result<TenantInfo> {
        self.may_manage(who, id)?;
        if id == MAIN_TENANT_ID {
            return Ok(TenantInfo {
                id,
                name: DEFAULT_TENANT.into(),
                org: String::new(),
                created: 0,
            });
        }
        self.entry(id)
            .await?
            .map(|e| e.info)
            .ok_or_else(tenant_not_found)
    }

    /// Changes tenant `id`'s name or organisation (the main tenant's root, or the
    /// tenant's own admin). A new name must be free.
    pub async fn update_tenant(
        &self,
        who: &Principal,
        id: i64,
        name: Option<&str>,
        org: Option<&str>,
    ) -> Result<()> {
        self.may_manage(who, id)?;
        if id == MAIN_TENANT_ID {
            return Err(Error::bad_request("The main tenant cannot be changed"));
        }
        // A name routes requests (the `Host` sub-domain): only the main tenant's root
        // names tenants, so no tenant can take a name that would draw another's
        // traffic to it.
        if name.is_some() && !self.is_main() {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "Only the main tenant admin can rename a tenant",
            ));
        }
        let Some(entry) = self.entry(id).await? else {
            return Err(tenant_not_found());
        };
        let now = self.now();
        let mut meta = entry.meta.clone();
        let mut ops = Vec::new();
        if let Some(org) = org {
            meta.insert("tenantorg".into(), Value::from(parse_org(org)?));
        }
        let mut row = entry.row.clone();
        if let Some(new) = name
            && new != entry.info.name
        {
            let new = parse_name(new)?;
            ops.push(self.name_record(&new, id, now)?);
            ops.push(WriteOp::DeleteRecord {
                tenant: DEFAULT_TENANT.into(),
                kind: RecordKind::TenantName.name().into(),
                id: entry.info.name.clone(),
            });
            meta.insert("tenantname".into(), Value::from(new.clone()));
            row.label = Some(new);
        }
        row.meta = Some(serde_json::to_vec(&meta).map_err(Error::internal)?);
        row.updated = now;
        ops.push(WriteOp::PutRecord {
            tenant: DEFAULT_TENANT.into(),
            record: row,
            expected_version: Some(entry.row.version),
        });
        // In the log of whoever changed it: the main tenant's root, or the tenant's
        // own admin (whose event the main tenant could not tell from its root's).
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(who, Action::TenantChange.with([&id]), None, "ok"),
        });
        let written = self.registry.write(WriteOp::Atomic(ops)).await;
        // Renamed or not, names resolve afresh (the cache is the main vault's, shared
        // with its tenants).
        self.tenants.forget_names();
        match written {
            Ok(()) => Ok(()),
            Err(StoreError::Duplicate(_)) => {
                Err(Error::new(ErrorKind::Conflict, "Duplicate tenant name"))
            }
            Err(StoreError::Stale) => Err(Error::new(
                ErrorKind::Conflict,
                "the tenant changed meanwhile: try again",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes tenant `id` (main tenant root only) by crypto-shredding: its key
    /// ring and every row it holds go in one commit with its name, its registry
    /// entry is kept as deleted (ids are never reused), audited in the main log.
    pub async fn delete_tenant(&self, who: &Principal, id: i64) -> Result<()> {
        self.require_main_root(who)?;
        if id == MAIN_TENANT_ID {
            return Err(Error::bad_request("The main tenant cannot be deleted"));
        }
        let Some(entry) = self.entry(id).await? else {
            return Err(tenant_not_found());
        };
        let mut meta = entry.meta.clone();
        meta.insert("deleted".into(), Value::from(self.now()));
        // Only the id stays (ids are never reused): not the name, organisation or
        // admin token hash.
        for key in ["admin", "tenantname", "tenantorg"] {
            meta.remove(key);
        }
        let ops = vec![
            WriteOp::DropTenant {
                tenant: entry.key.clone(),
                meta: vec![public_key_name(&entry.key)],
            },
            WriteOp::DeleteRecord {
                tenant: DEFAULT_TENANT.into(),
                kind: RecordKind::TenantName.name().into(),
                id: entry.info.name.clone(),
            },
            WriteOp::PutRecord {
                tenant: DEFAULT_TENANT.into(),
                record: RecordRow {
                    label: None,
                    updated: self.now(),
                    meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                    ..entry.row.clone()
                },
                expected_version: Some(entry.row.version),
            },
            WriteOp::Audit {
                tenant: DEFAULT_TENANT.into(),
                audit: self.new_event(who, Action::TenantDelete.with([&id]), None, "ok"),
            },
        ];
        match self.registry.write(WriteOp::Atomic(ops)).await {
            Ok(()) => {}
            Err(StoreError::Stale) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "the tenant changed meanwhile: try again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(v) = self.tenants.get(&entry.key) {
            v.set_root_token_hash(Vec::new());
        }
        self.tenants.forget(&entry.key);
        // Its file content went with its key ring; the sealed chunks are removed.
        if let Some(dir) = &self.config.file_store
            && let Err(e) = dir.remove_tenant(&entry.key).await
        {
            tracing::warn!(error = %e, "a deleted tenant's file chunks were left in the file store");
        }
        Ok(())
    }

    /// A page of the live tenants, main tenant first (main tenant root only).
    pub async fn list_tenants(
        &self,
        who: &Principal,
        page: Page,
    ) -> Result<(usize, Vec<TenantInfo>)> {
        self.require_main_root(who)?;
        let mut all = vec![TenantInfo {
            id: MAIN_TENANT_ID,
            name: DEFAULT_TENANT.into(),
            org: String::new(),
            created: 0,
        }];
        for row in self
            .registry
            .records_of_kind(DEFAULT_TENANT, RecordKind::Tenant.name())
            .await?
        {
            if let Some(e) = Entry::of(row)? {
                all.push(e.info);
            }
        }
        all.sort_by_key(|t| t.id);
        let total = all.len();
        Ok((total, page.apply(all)))
    }
}
