//! Groups, roles, policies and the access tokens of roles (Databunker Pro's
//! `Group*`, `Role*`, `Policy*`, `XTokenCreateFor*`), and where a role token's
//! policies are asked (the decisions themselves are `crate::policy`'s).
//!
//! Roles and policies are the vault's, kept in the main tenant and used by every
//! tenant; only the main tenant's root creates, changes and links them. Groups and
//! memberships are each tenant's own. Each catalogue (groups, roles, policies) keeps
//! an entry per id (never reused: a deleted group stays as a tombstone) and a name
//! record whose key makes names unique. Names, descriptions and policies are
//! plaintext: they describe the organisation, never a person. A membership is a
//! record owned by the person, so erasing them removes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use strongbox_crypto::new_record_token;
use strongbox_store::{RecordRow, Store, StoreError, WriteOp};

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::capped_expiry;
use crate::kinds::{Action, RecordKind};
use crate::policy::{Facts, Part, Policy, Resource};
use crate::principal::{Principal, RoleGrant, RoleRules};
use crate::subjects::Mode;
use crate::vault::{DEFAULT_TENANT, Vault};

/// Lifetime of a role or user access token that does not ask for one (Databunker
/// Pro's 10 minutes).
pub const DEFAULT_XTOKEN_LIFETIME: i64 = 600;

/// A catalogue of named entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catalog {
    Group,
    Role,
    Policy,
}

impl Catalog {
    fn kinds(self) -> (RecordKind, RecordKind) {
        match self {
            Catalog::Group => (RecordKind::Group, RecordKind::GroupName),
            Catalog::Role => (RecordKind::Role, RecordKind::RoleName),
            Catalog::Policy => (RecordKind::Policy, RecordKind::PolicyName),
        }
    }

    /// The word in field names and messages (`groupid`, `The group …`).
    pub fn noun(self) -> &'static str {
        match self {
            Catalog::Group => "group",
            Catalog::Role => "role",
            Catalog::Policy => "policy",
        }
    }

    /// Kept in the main tenant for every tenant.
    fn global(self) -> bool {
        self != Catalog::Group
    }

    fn not_found(self) -> Error {
        Error::not_found(format!("The {} record was not found", self.noun()))
    }
}

/// An entry named by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryRef {
    Id(i64),
    Name(String),
}

/// A catalogue entry: its id, name and other fields (`groupdesc`, `policy`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub name: String,
    pub fields: Map<String, Value>,
}

/// A name of an entry: 1–64 characters, no control characters.
fn check_name(c: Catalog, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "The {}name parameter must be 1 to 64 characters",
            c.noun()
        )));
    }
    Ok(())
}

fn entry_of(row: &RecordRow) -> Option<Entry> {
    let meta: Map<String, Value> = serde_json::from_slice(row.meta.as_deref()?).ok()?;
    if meta.get("deleted") == Some(&Value::Bool(true)) {
        return None;
    }
    Some(Entry {
        id: row.id.parse().ok()?,
        name: meta.get("name")?.as_str()?.to_string(),
        fields: meta.into_iter().filter(|(k, _)| k != "name").collect(),
    })
}

impl Vault {
    fn catalog_home(&self, c: Catalog) -> (&Store, &str) {
        if c.global() {
            (&self.registry, DEFAULT_TENANT)
        } else {
            (&self.store, &self.tenant)
        }
    }

    /// Roles and policies change only through the main tenant's root.
    fn may_change(&self, who: &Principal, c: Catalog) -> Result<()> {
        who.require_root()?;
        if c.global() && !(self.is_main() && who.is_root()) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!("Only the main tenant's root manages {} records", c.noun()),
            ));
        }
        Ok(())
    }

    /// After a write to `c`: role tokens on this node read roles and policies
    /// afresh.
    fn forget_rules_of(&self, c: Catalog) {
        if matches!(c, Catalog::Role | Catalog::Policy) {
            self.tenants.forget_role_rules();
        }
    }

    /// The live entry `r` names.
    pub async fn catalog_entry(&self, c: Catalog, r: &EntryRef) -> Result<Option<Entry>> {
        let (store, tenant) = self.catalog_home(c);
        let (kind, name_kind) = c.kinds();
        let id = match r {
            EntryRef::Id(id) => id.to_string(),
            EntryRef::Name(name) => {
                let Some(row) = store.record(tenant, name_kind.name(), name).await? else {
                    return Ok(None);
                };
                match row.label {
                    Some(id) => id,
                    None => return Ok(None),
                }
            }
        };
        Ok(store
            .record(tenant, kind.name(), &id)
            .await?
            .as_ref()
            .and_then(entry_of))
    }

    async fn existing(&self, c: Catalog, r: &EntryRef) -> Result<Entry> {
        self.catalog_entry(c, r).await?.ok_or_else(|| c.not_found())
    }

    /// Every live entry, by id.
    pub async fn entries(&self, c: Catalog) -> Result<Vec<Entry>> {
        let (store, tenant) = self.catalog_home(c);
        let mut out: Vec<Entry> = store
            .records_of_kind(tenant, c.kinds().0.name())
            .await?
            .iter()
            .filter_map(entry_of)
            .collect();
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    fn name_op(&self, c: Catalog, tenant: &str, name: &str, id: i64, now: i64) -> WriteOp {
        WriteOp::PutRecord {
            tenant: tenant.to_string(),
            record: RecordRow {
                kind: c.kinds().1.name().into(),
                id: name.to_string(),
                label: Some(id.to_string()),
                created: now,
                updated: now,
                version: 1,
                ..RecordRow::default()
            },
            expected_version: None,
        }
    }

    fn entry_row(
        c: Catalog,
        id: i64,
        name: &str,
        fields: &Map<String, Value>,
        now: i64,
    ) -> Result<RecordRow> {
        let mut meta = fields.clone();
        meta.insert("name".into(), Value::from(name));
        Ok(RecordRow {
            kind: c.kinds().0.name().into(),
            id: id.to_string(),
            label: Some(name.to_string()),
            created: now,
            updated: now,
            version: 1,
            meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
            ..RecordRow::default()
        })
    }

    /// Creates an entry `name` with `fields` (audited): its id. 409 when the name
    /// is taken.
    pub async fn create_entry(
        &self,
        who: &Principal,
        c: Catalog,
        name: &str,
        fields: Map<String, Value>,
    ) -> Result<i64> {
        self.may_change(who, c)?;
        check_name(c, name)?;
        let (store, tenant) = self.catalog_home(c);
        for _ in 0..16 {
            let id = store
                .records_of_kind(tenant, c.kinds().0.name())
                .await?
                .iter()
                .filter_map(|r| r.id.parse::<i64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            let now = self.now();
            let ops = vec![
                WriteOp::PutRecord {
                    tenant: tenant.to_string(),
                    record: Self::entry_row(c, id, name, &fields, now)?,
                    expected_version: None,
                },
                self.name_op(c, tenant, name, id, now),
                WriteOp::Audit {
                    tenant: tenant.to_string(),
                    audit: self.new_event(
                        who,
                        Action::AccessChange.with([&c.noun(), &id]),
                        None,
                        "ok",
                    ),
                },
            ];
            match store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => {
                    self.forget_rules_of(c);
                    return Ok(id);
                }
                Err(StoreError::Duplicate(_)) => {
                    if self
                        .catalog_entry(c, &EntryRef::Name(name.into()))
                        .await?
                        .is_some()
                    {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            format!("The {} record already exists", c.noun()),
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "entries are being created too fast: try again",
        ))
    }

    /// Renames entry `r` and/or merges `fields` into it (audited).
    pub async fn update_entry(
        &self,
        who: &Principal,
        c: Catalog,
        r: &EntryRef,
        new_name: Option<&str>,
        fields: Map<String, Value>,
    ) -> Result<()> {
        self.may_change(who, c)?;
        if let Some(n) = new_name {
            check_name(c, n)?;
        }
        let (store, tenant) = self.catalog_home(c);
        let (kind, name_kind) = c.kinds();
        for _ in 0..16 {
            let current = self.existing(c, r).await?;
            let Some(row) = store
                .record(tenant, kind.name(), &current.id.to_string())
                .await?
            else {
                return Err(c.not_found());
            };
            let now = self.now();
            let name = new_name.unwrap_or(&current.name);
            let mut merged = current.fields.clone();
            merged.extend(fields.clone());
            let record = RecordRow {
                version: row.version + 1,
                created: row.created,
                ..Self::entry_row(c, current.id, name, &merged, now)?
            };
            let mut ops = vec![WriteOp::PutRecord {
                tenant: tenant.to_string(),
                record,
                expected_version: Some(row.version),
            }];
            if name != current.name {
                ops.push(WriteOp::DeleteRecord {
                    tenant: tenant.to_string(),
                    kind: name_kind.name().into(),
                    id: current.name.clone(),
                });
                ops.push(self.name_op(c, tenant, name, current.id, now));
            }
            ops.push(WriteOp::Audit {
                tenant: tenant.to_string(),
                audit: self.new_event(
                    who,
                    Action::AccessChange.with([&c.noun(), &current.id]),
                    None,
                    "ok",
                ),
            });
            match store.write(WriteOp::Atomic(ops)).await {
                Ok(()) => {
                    self.forget_rules_of(c);
                    return Ok(());
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::Duplicate(_)) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("The {} record already exists", c.noun()),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the entry is changing too fast: try again",
        ))
    }

    /// Deletes group `r` and its memberships (audited); its id stays taken.
    pub async fn delete_group(&self, who: &Principal, r: &EntryRef) -> Result<()> {
        let c = Catalog::Group;
        self.may_change(who, c)?;
        let current = self.existing(c, r).await?;
        let now = self.now();
        let id = current.id.to_string();
        let mut ops = vec![
            WriteOp::PutRecord {
                tenant: self.tenant.clone(),
                record: RecordRow {
                    kind: RecordKind::Group.name().into(),
                    id: id.clone(),
                    created: now,
                    updated: now,
                    version: 1,
                    meta: Some(
                        serde_json::to_vec(&json!({"deleted": true})).map_err(Error::internal)?,
                    ),
                    ..RecordRow::default()
                },
                expected_version: None,
            },
            WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::GroupName.name().into(),
                id: current.name.clone(),
            },
        ];
        // `PutRecord` without a version inserts: replace the entry by deleting it first.
        ops.insert(
            0,
            WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Group.name().into(),
                id: id.clone(),
            },
        );
        for m in self
            .store
            .records_by_label(&self.tenant, RecordKind::Member.name(), &id)
            .await?
        {
            ops.push(WriteOp::DeleteRecord {
                tenant: self.tenant.clone(),
                kind: RecordKind::Member.name().into(),
                id: m.id,
            });
        }
        ops.push(WriteOp::Audit {
            tenant: self.tenant.clone(),
            audit: self.new_event(
                who,
                Action::AccessDelete.with([&c.noun(), &current.id]),
                None,
                "ok",
            ),
        });
        self.store.write(WriteOp::Atomic(ops)).await?;
        Ok(())
    }

    /// Links policy `p` to role `r` (the main tenant's root; audited).
    pub async fn link_policy(&self, who: &Principal, r: &EntryRef, p: &EntryRef) -> Result<()> {
        self.may_change(who, Catalog::Role)?;
        let role = self.existing(Catalog::Role, r).await?;
        let policy = self.existing(Catalog::Policy, p).await?;
        let mut linked: Vec<i64> = role
            .fields
            .get("policies")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if linked.contains(&policy.id) {
            return Ok(());
        }
        linked.push(policy.id);
        let mut fields = Map::new();
        fields.insert("policies".into(), json!(linked));
        self.update_entry(who, Catalog::Role, &EntryRef::Id(role.id), None, fields)
            .await
    }

    /// Adds the person to group `g`, holding role `role` there (or changes their
    /// role); audited.
    pub async fn add_to_group(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        g: &EntryRef,
        role: Option<&EntryRef>,
    ) -> Result<()> {
        who.require_root()?;
        let group = self.existing(Catalog::Group, g).await?;
        let role_id = match role {
            Some(r) => Some(self.existing(Catalog::Role, r).await?.id),
            None => None,
        };
        let action = Action::GroupMemberAdd.with([&group.id]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let id = format!("{}/{}", group.id, subject.token);
        let now = self.now();
        let meta = serde_json::to_vec(&json!({ "role": role_id })).map_err(Error::internal)?;
        self.upsert_record(
            RecordKind::Member.name(),
            &id,
            |_| {
                Ok(RecordRow {
                    owner: Some(subject.token.clone()),
                    label: Some(group.id.to_string()),
                    created: now,
                    updated: now,
                    meta: Some(meta.clone()),
                    ..RecordRow::default()
                })
            },
            self.new_event(who, &action, Some(&subject.token), "ok"),
        )
        .await?;
        Ok(())
    }

    /// Takes the person out of group `g` (audited; not being in it is no error).
    pub async fn remove_from_group(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        g: &EntryRef,
    ) -> Result<()> {
        who.require_root()?;
        let group = self.existing(Catalog::Group, g).await?;
        let action = Action::GroupMemberRemove.with([&group.id]);
        let subject = self.subject(who, &action, mode, identity).await?;
        self.delete_record(
            RecordKind::Member.name(),
            &format!("{}/{}", group.id, subject.token),
            self.new_event(who, &action, Some(&subject.token), "ok"),
        )
        .await
    }

    /// The groups of a person, with their role in each (audited).
    pub async fn groups_of_person(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
    ) -> Result<Vec<(Entry, Option<i64>)>> {
        let action = Action::GroupList.with([&mode.name()]);
        let subject = self.subject(who, &action, mode, identity).await?;
        let mut out = Vec::new();
        for (group, role) in self.memberships(&subject.token).await? {
            if let Some(e) = self
                .catalog_entry(Catalog::Group, &EntryRef::Id(group))
                .await?
            {
                out.push((e, role));
            }
        }
        self.audit(self.new_event(who, &action, Some(&subject.token), "ok"))
            .await?;
        Ok(out)
    }

    /// (group id, role id) of each group `token` is in.
    async fn memberships(&self, token: &str) -> Result<Vec<(i64, Option<i64>)>> {
        Ok(self
            .store
            .records_of(&self.tenant, token, RecordKind::Member.name())
            .await?
            .iter()
            .filter_map(|r| {
                let group = r.label.as_deref()?.parse().ok()?;
                let role = r
                    .meta
                    .as_deref()
                    .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                    .and_then(|m| m["role"].as_i64());
                Some((group, role))
            })
            .collect())
    }

    /// The members of group `g`: (token, role id), by token; root or a role
    /// allowed the call.
    pub async fn group_members(
        &self,
        who: &Principal,
        g: &EntryRef,
    ) -> Result<Vec<(String, Option<i64>)>> {
        who.require_root()?;
        let group = self.existing(Catalog::Group, g).await?;
        let mut out: Vec<(String, Option<i64>)> = self
            .store
            .records_by_label(
                &self.tenant,
                RecordKind::Member.name(),
                &group.id.to_string(),
            )
            .await?
            .into_iter()
            .filter_map(|r| {
                let role = r
                    .meta
                    .as_deref()
                    .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                    .and_then(|m| m["role"].as_i64());
                Some((r.owner?, role))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// A new access token for role `r` (root; audited): `lifetime` seconds (default
    /// 10 minutes), capped by the user-token maximum. Hashed at rest, shown once.
    pub async fn issue_role_token(
        &self,
        who: &Principal,
        r: &EntryRef,
        lifetime: Option<i64>,
    ) -> Result<(String, i64)> {
        if !who.is_root() {
            return Err(Error::new(ErrorKind::Forbidden, "access denied"));
        }
        let role = self.existing(Catalog::Role, r).await?;
        let now = self.now();
        let expires = capped_expiry(
            now,
            self.config.policy.max_user_token_lifetime,
            Some(lifetime.unwrap_or(DEFAULT_XTOKEN_LIFETIME)),
        );
        let xtoken = new_record_token();
        let digest = self.access_token_digest(&xtoken);
        let meta = json!({"type": "role", "role": role.id, "created": now, "expires": expires});
        self.store
            .write(WriteOp::Atomic(vec![
                WriteOp::PutRecord {
                    tenant: self.tenant.clone(),
                    record: RecordRow {
                        kind: RecordKind::AccessToken.name().into(),
                        id: digest,
                        label: Some("role".into()),
                        created: now,
                        updated: now,
                        expires: Some(expires),
                        version: 1,
                        meta: Some(serde_json::to_vec(&meta).map_err(Error::internal)?),
                        ..RecordRow::default()
                    },
                    expected_version: None,
                },
                WriteOp::Audit {
                    tenant: self.tenant.clone(),
                    audit: self.new_event(who, Action::RoleTokenIssue.with([&role.id]), None, "ok"),
                },
            ]))
            .await?;
        Ok((xtoken, expires))
    }

    /// The grant of role `role_id` to the token labelled `label`: the role's rules
    /// as read at most [`crate::tenants::RESOLVED_FOR`] ago (at once after a change
    /// on this node).
    pub(crate) async fn role_grant(&self, role_id: i64, label: String) -> Result<Principal> {
        Ok(Principal::Role(Arc::new(RoleGrant {
            rules: self.role_rules(role_id).await?,
            label: format!("{label} role:{role_id}"),
            principal_groups: BTreeSet::new(),
        })))
    }

    /// Role `role_id`'s rules, from the cache when fresh.
    async fn role_rules(&self, role_id: i64) -> Result<Arc<RoleRules>> {
        if let Some(r) = self.tenants.role_rules(role_id) {
            return Ok(r);
        }
        let r = Arc::new(self.read_role_rules(role_id).await?);
        self.tenants.remember_role_rules(role_id, &r);
        Ok(r)
    }

    /// What a person's access token may do to others in a v2 call: one grant per
    /// role they hold in a group, each with only the groups where they hold that
    /// role as the principal's (`${principal_group_id}`), so a teacher of one class
    /// is not a teacher of another they merely belong to. Each role is decided on
    /// its own; a call one of them allows is allowed. None for anyone else, in v1
    /// (a person's token reaches their own record only there), and for a person
    /// without a role.
    pub(crate) async fn group_grants(&self, who: &Principal) -> Result<Vec<RoleGrant>> {
        let Principal::User { token, label } = who else {
            return Ok(Vec::new());
        };
        if crate::context::method().is_none() {
            return Ok(Vec::new());
        }
        let mut held: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for (group, role) in self.memberships(token).await? {
            if let Some(role) = role {
                held.entry(role).or_default().insert(group.to_string());
            }
        }
        let mut grants = Vec::new();
        for (id, groups) in held {
            let rules = match self.role_rules(id).await {
                Ok(r) => r,
                // A role deleted since grants nothing; any other failure refuses.
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            grants.push(RoleGrant {
                rules,
                label: format!("{label} role:{id}"),
                principal_groups: groups,
            });
        }
        Ok(grants)
    }

    /// Role `role_id`'s name and its policies, as stored now.
    async fn read_role_rules(&self, role_id: i64) -> Result<RoleRules> {
        let role = self.existing(Catalog::Role, &EntryRef::Id(role_id)).await?;
        let mut rules = RoleRules {
            roles: vec![role.name],
            ids: Vec::new(),
            policies: Vec::new(),
        };
        for id in role
            .fields
            .get("policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
        {
            let Some(p) = self
                .catalog_entry(Catalog::Policy, &EntryRef::Id(id))
                .await?
            else {
                continue;
            };
            // Stored policies were checked when written; one that no longer parses
            // (a newer vault's form) grants nothing.
            if let Some(Ok(policy)) = p.fields.get("policy").map(Policy::parse) {
                rules.ids.push(id);
                rules.policies.push(policy);
            }
        }
        Ok(rules)
    }

    /// The facts a role's decision about person `row` may read: the person's
    /// groups, and their consents and profile when a policy asks.
    pub(crate) async fn person_facts(
        &self,
        grant: &RoleGrant,
        token: &str,
        profile: Option<&Map<String, Value>>,
    ) -> Result<Facts> {
        let mut facts = RoleGrant::call_facts();
        facts.person = true;
        facts.principal_groups = grant.principal_groups.clone();
        if grant.rules.reads_groups() {
            for (group, role) in self.memberships(token).await? {
                let role_name = match role {
                    Some(r) => self
                        .catalog_entry(Catalog::Role, &EntryRef::Id(r))
                        .await?
                        .map(|e| e.name),
                    None => None,
                };
                facts.target_groups.insert(group.to_string(), role_name);
            }
        }
        if grant.rules.reads_person() {
            let now = self.now();
            let mut agreements = BTreeMap::new();
            for row in self
                .store
                .records_of(&self.tenant, token, RecordKind::Agreement.name())
                .await?
            {
                let Some(meta) = row
                    .meta
                    .as_deref()
                    .and_then(|m| serde_json::from_slice::<Value>(m).ok())
                else {
                    continue;
                };
                let (Some(brief), Some(status)) = (meta["brief"].as_str(), meta["status"].as_str())
                else {
                    continue;
                };
                let start = meta["starttime"].as_i64().unwrap_or(0);
                let end = meta["endtime"].as_i64().unwrap_or(0);
                // Given, begun and not ended.
                let live = status == "yes" && start <= now && (end == 0 || end > now);
                agreements.insert(
                    brief.to_string(),
                    if live { "yes" } else { "no" }.to_string(),
                );
            }
            facts.agreements = agreements;
            facts.profile = match profile {
                Some(p) => Some(Value::Object(p.clone())),
                None => match self.store.user(&self.tenant, token).await? {
                    Some(row) => match self.dek_of(&row)? {
                        Some(dek) => {
                            serde_json::from_slice(&self.decrypt_profile(&row, &dek)?).ok()
                        }
                        None => None,
                    },
                    None => None,
                },
            };
        }
        Ok(facts)
    }

    /// Whether role `grant` may do the current v2 method to `part` of person
    /// `token` (the decision recorded for the audit).
    pub(crate) async fn role_may_reach(
        &self,
        grant: &RoleGrant,
        token: &str,
        part: &Part,
    ) -> Result<()> {
        let facts = self.person_facts(grant, token, None).await?;
        grant.check(&Resource::Person(part), &facts)
    }

    /// Person `token`'s profile as role `grant` may see it (`None`: no field).
    pub(crate) async fn role_view(
        &self,
        grant: &RoleGrant,
        token: &str,
        profile: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(profile) else {
            return Err(Error::internal("a profile is not an object"));
        };
        let facts = self.person_facts(grant, token, Some(&fields)).await?;
        grant
            .mask(&fields, &facts)
            .map(|m| serde_json::to_vec(&Value::Object(m)).map_err(Error::internal))
            .transpose()
    }

    /// A user's access token for `{mode}/{identity}` (root; audited): the token and
    /// the person's record token.
    pub async fn issue_xtoken_for_user(
        &self,
        who: &Principal,
        mode: Mode,
        identity: &str,
        lifetime: Option<i64>,
    ) -> Result<crate::tokens::IssuedToken> {
        if !who.is_root() {
            return Err(Error::new(ErrorKind::Forbidden, "access denied"));
        }
        let action = Action::AccessTokenIssue;
        let subject = self.subject(who, &action.into(), mode, identity).await?;
        let event = self.new_event(who, action, Some(&subject.token), "ok");
        self.create_access_token(
            &subject.token,
            Some(lifetime.unwrap_or(DEFAULT_XTOKEN_LIFETIME)),
            event,
        )
        .await
    }
}

impl Vault {
    /// Records a refusal by a role's policies that the refused service did not
    /// record itself (it failed before writing any event).
    pub async fn record_policy_refusal(&self, label: &str, method: &str) -> Result<()> {
        // The decisions go to the role's label, not to the system's.
        let actor = crate::vault::actor_with_decisions(label.to_string());
        let mut event = self.new_event(
            &Principal::System,
            Action::PolicyRefusal.with([&method]),
            None,
            "denied",
        );
        event.actor = actor;
        self.audit(event).await
    }
}

/// The reference to an entry from `<noun>id` / `<noun>name` fields.
pub fn entry_ref(c: Catalog, id: Option<i64>, name: Option<String>) -> Result<EntryRef> {
    match (id, name) {
        (Some(id), _) => Ok(EntryRef::Id(id)),
        (None, Some(n)) => Ok(EntryRef::Name(n)),
        (None, None) => Err(Error::bad_request(format!(
            "Missing API request parameters: {0}id or {0}name",
            c.noun()
        ))),
    }
}
