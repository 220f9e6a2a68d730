//! v2 groups, roles, policies and access tokens, over the core's `access`
//! service (`Group*`, `BulkListGroupUsers`, `Role*`, `Policy*`, `XTokenCreateFor*`).

use serde_json::{Map, Value, json};
use strongbox_core::access::{Catalog, Entry, EntryRef, entry_ref};
use strongbox_core::expiry::requested_seconds;
use strongbox_core::policy::Policy;
use strongbox_core::{Error, Mode, Result};

use super::bulk::unlocked;
use super::{Args, Reply};
use crate::extract::{Caller, CallerToken, Tenant};
use crate::reply::ok_fields;

/// `<noun>id` (a number or numeric text), if given.
fn id_of(args: &Args, c: Catalog) -> Result<Option<i64>> {
    let name = format!("{}id", c.noun());
    match args.get(&name) {
        None => Ok(None),
        Some(_) => args.int(&name).map(Some),
    }
}

/// `<noun>name`, if given.
fn name_of(args: &Args, c: Catalog) -> Result<Option<String>> {
    let name = format!("{}name", c.noun());
    match args.get(&name) {
        None => Ok(None),
        Some(_) => args.text(&name).map(Some),
    }
}

/// The entry an update names and its new name: by id, `<noun>name` renames it;
/// by name alone (the clients send that too), it names the entry.
fn target_and_rename(args: &Args, c: Catalog) -> Result<(EntryRef, Option<String>)> {
    match (id_of(args, c)?, name_of(args, c)?) {
        (Some(id), rename) => Ok((EntryRef::Id(id), rename)),
        (None, Some(name)) => Ok((EntryRef::Name(name), None)),
        (None, None) => Err(entry_ref(c, None, None)
            .err()
            .unwrap_or_else(|| Error::bad_request("missing reference"))),
    }
}

fn reference(args: &Args, c: Catalog) -> Result<EntryRef> {
    entry_ref(c, id_of(args, c)?, name_of(args, c)?)
}

/// The optional text fields `names` of `args`.
fn texts(args: &Args, names: &[&str]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for name in names {
        if let Some(v) = args.get(name) {
            let Value::String(s) = v else {
                return Err(Error::bad_request(format!(
                    "The {name} parameter must be text"
                )));
            };
            if s.chars().count() > 1024 {
                return Err(Error::bad_request(format!(
                    "The {name} parameter is longer than 1024 characters"
                )));
            }
            out.insert((*name).to_string(), v.clone());
        }
    }
    Ok(out)
}

fn group_json(e: &Entry) -> Value {
    json!({
        "groupid": e.id,
        "groupname": e.name,
        "groupdesc": e.fields.get("groupdesc").cloned().unwrap_or(Value::from("")),
        "grouptype": e.fields.get("grouptype").cloned().unwrap_or(Value::from("users")),
    })
}

fn fields_of(v: Value) -> Vec<(String, Value)> {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn reply(fields: Vec<(String, Value)>) -> Reply {
    let borrowed: Vec<(&str, Value)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    Ok(ok_fields(&borrowed))
}

/// `GroupCreate {groupname, groupdesc?, grouptype?}` → `{groupid}`.
pub async fn group_create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let name = args.text("groupname")?;
    let mut fields = texts(&args, &["groupdesc", "grouptype"])?;
    if fields
        .get("grouptype")
        .and_then(Value::as_str)
        .is_some_and(|t| t.chars().count() > 30)
    {
        return Err(Error::bad_request("The grouptype parameter has at most 30 characters").into());
    }
    fields
        .entry("grouptype")
        .or_insert_with(|| Value::from("users"));
    let id = state
        .vault
        .create_entry(&who, Catalog::Group, &name, fields)
        .await?;
    Ok(ok_fields(&[("groupid", Value::from(id))]))
}

/// `GroupGet {groupid | groupname}` → `{groupid, groupname, groupdesc, grouptype}`.
pub async fn group_get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    who.require_root()?;
    let r = reference(&args, Catalog::Group)?;
    let e = state
        .vault
        .catalog_entry(Catalog::Group, &r)
        .await?
        .ok_or_else(|| Error::not_found("The group record was not found"))?;
    reply(fields_of(group_json(&e)))
}

/// `GroupListAllGroups {}` → `{total, rows}`.
pub async fn group_list(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    who.require_root()?;
    let rows: Vec<Value> = state
        .vault
        .entries(Catalog::Group)
        .await?
        .iter()
        .map(group_json)
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// `GroupUpdate {groupid, groupname?, groupdesc?, grouptype?}`.
pub async fn group_update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (r, rename) = target_and_rename(&args, Catalog::Group)?;
    let fields = texts(&args, &["groupdesc", "grouptype"])?;
    state
        .vault
        .update_entry(&who, Catalog::Group, &r, rename.as_deref(), fields)
        .await?;
    Ok(ok_fields(&[]))
}

/// `GroupDelete {groupid | groupname}`: the group and its memberships.
pub async fn group_delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .delete_group(&who, &reference(&args, Catalog::Group)?)
        .await?;
    Ok(ok_fields(&[]))
}

/// The role reference of `GroupAddUser`, if any.
fn role_ref(args: &Args) -> Result<Option<EntryRef>> {
    match (id_of(args, Catalog::Role)?, name_of(args, Catalog::Role)?) {
        (None, None) => Ok(None),
        (id, name) => entry_ref(Catalog::Role, id, name).map(Some),
    }
}

/// The group (and role in it) a `UserCreate` names, checked to exist: `None`
/// when it names none.
pub(super) async fn membership(
    state: &crate::AppState,
    args: &Args,
) -> Result<Option<(EntryRef, Option<EntryRef>)>> {
    let group = match (id_of(args, Catalog::Group)?, name_of(args, Catalog::Group)?) {
        (None, None) => return Ok(None),
        (id, name) => entry_ref(Catalog::Group, id, name)?,
    };
    let role = role_ref(args)?;
    if state
        .vault
        .catalog_entry(Catalog::Group, &group)
        .await?
        .is_none()
    {
        return Err(Error::not_found("The group record was not found"));
    }
    if let Some(r) = &role
        && state.vault.catalog_entry(Catalog::Role, r).await?.is_none()
    {
        return Err(Error::not_found("The role record was not found"));
    }
    Ok(Some((group, role)))
}

/// `GroupAddUser {mode, identity, groupid | groupname, roleid | rolename}`.
pub async fn group_add_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let g = reference(&args, Catalog::Group)?;
    let role = role_ref(&args)?;
    state
        .vault
        .add_to_group(&who, mode, &identity, &g, role.as_ref())
        .await?;
    Ok(ok_fields(&[]))
}

/// `GroupDeleteUser {mode, identity, groupid | groupname}`.
pub async fn group_delete_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let g = reference(&args, Catalog::Group)?;
    state
        .vault
        .remove_from_group(&who, mode, &identity, &g)
        .await?;
    Ok(ok_fields(&[]))
}

/// The name of role `id`, if it exists.
async fn role_name(state: &crate::AppState, id: Option<i64>) -> Result<Option<String>> {
    match id {
        Some(id) => Ok(state
            .vault
            .catalog_entry(Catalog::Role, &EntryRef::Id(id))
            .await?
            .map(|e| e.name)),
        None => Ok(None),
    }
}

/// `GroupListUserGroups {mode, identity}` → `{total, rows: [{groupid, groupname,
/// groupdesc, grouptype, roleid?, rolename?}]}`.
pub async fn group_list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let mut rows = Vec::new();
    for (group, role) in state.vault.groups_of_person(&who, mode, &identity).await? {
        let mut row = group_json(&group);
        if let Some(name) = role_name(&state, role).await? {
            row["roleid"] = Value::from(role);
            row["rolename"] = Value::from(name);
        }
        rows.push(row);
    }
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// `BulkListGroupUsers {unlockuuid, groupid | groupname, offset?, limit?}` →
/// `{total, rows: [{token, profile, rolename?}]}`.
pub async fn bulk_list_group_users(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let g = reference(&args, Catalog::Group)?;
    let members = state.vault.group_members(&who, &g).await?;
    let total = members.len();
    let page = args.page()?.apply(members);
    let people: Vec<(Mode, String)> = page.iter().map(|(t, _)| (Mode::Token, t.clone())).collect();
    let found = if people.is_empty() {
        Vec::new()
    } else {
        state.vault.bulk_get_users(&who, &people).await?
    };
    let mut rows = Vec::new();
    for u in found {
        let profile: Value = match u.profile.as_deref() {
            Some(p) => serde_json::from_slice(p).map_err(Error::internal)?,
            None => json!({}),
        };
        let mut row = json!({"token": u.token, "profile": profile});
        let role = page
            .iter()
            .find(|(t, _)| *t == u.token)
            .and_then(|(_, r)| *r);
        if let Some(name) = role_name(&state, role).await? {
            row["rolename"] = Value::from(name);
        }
        rows.push(row);
    }
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `RoleCreate {rolename, roledesc?}` → `{roleid}` (main tenant root).
pub async fn role_create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let name = args.text("rolename")?;
    let fields = texts(&args, &["roledesc"])?;
    let id = state
        .vault
        .create_entry(&who, Catalog::Role, &name, fields)
        .await?;
    Ok(ok_fields(&[("roleid", Value::from(id))]))
}

/// `RoleUpdate {roleid | rolename, rolename?, roledesc?}` (main tenant root).
pub async fn role_update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (r, rename) = target_and_rename(&args, Catalog::Role)?;
    let fields = texts(&args, &["roledesc"])?;
    state
        .vault
        .update_entry(&who, Catalog::Role, &r, rename.as_deref(), fields)
        .await?;
    Ok(ok_fields(&[]))
}

/// `RoleLinkPolicy {roleid | rolename, policyid | policyname}` (main tenant root).
pub async fn role_link_policy(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let r = reference(&args, Catalog::Role)?;
    let p = reference(&args, Catalog::Policy)?;
    state.vault.link_policy(&who, &r, &p).await?;
    Ok(ok_fields(&[]))
}

/// A policy document, checked: the reason when it is not valid.
fn policy_doc(args: &Args) -> Result<Option<Value>> {
    match args.get("policy") {
        None => Ok(None),
        Some(doc) => {
            Policy::parse(doc)?;
            if doc.to_string().len() > 64 * 1024 {
                return Err(Error::bad_request(
                    "The policy is not valid: larger than 64 KiB",
                ));
            }
            Ok(Some(doc.clone()))
        }
    }
}

/// `PolicyCreate {policyname, policydesc?, policy}` → `{policyid}` (main tenant root).
pub async fn policy_create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let name = args.text("policyname")?;
    let doc = policy_doc(&args)?
        .ok_or_else(|| Error::bad_request("Missing API request parameters: policy"))?;
    let mut fields = texts(&args, &["policydesc"])?;
    fields.insert("policy".into(), doc);
    let id = state
        .vault
        .create_entry(&who, Catalog::Policy, &name, fields)
        .await?;
    Ok(ok_fields(&[("policyid", Value::from(id))]))
}

/// `PolicyUpdate {policyid | policyname, policyname?, policydesc?, policy?}`.
pub async fn policy_update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (r, rename) = target_and_rename(&args, Catalog::Policy)?;
    let mut fields = texts(&args, &["policydesc"])?;
    if let Some(doc) = policy_doc(&args)? {
        fields.insert("policy".into(), doc);
    }
    state
        .vault
        .update_entry(&who, Catalog::Policy, &r, rename.as_deref(), fields)
        .await?;
    Ok(ok_fields(&[]))
}

fn policy_json(e: &Entry, with_doc: bool) -> Value {
    let mut v = json!({
        "policyid": e.id,
        "policyname": e.name,
        "policydesc": e.fields.get("policydesc").cloned().unwrap_or(Value::from("")),
    });
    if with_doc {
        v["policy"] = e.fields.get("policy").cloned().unwrap_or(Value::Null);
    }
    v
}

/// `PolicyGet {policyid | policyname}` → `{policyid, policyname, policydesc, policy}`.
pub async fn policy_get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    who.require_root()?;
    let r = reference(&args, Catalog::Policy)?;
    let e = state
        .vault
        .catalog_entry(Catalog::Policy, &r)
        .await?
        .ok_or_else(|| Error::not_found("The policy record was not found"))?;
    reply(fields_of(policy_json(&e, true)))
}

/// `PolicyListAllPolicies {}` → `{total, rows: [{policyid, policyname, policydesc}]}`.
pub async fn policy_list(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    who.require_root()?;
    let rows: Vec<Value> = state
        .vault
        .entries(Catalog::Policy)
        .await?
        .iter()
        .map(|e| policy_json(e, false))
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// The lifetime an access token asks for: `finaltime`, else `slidingtime`.
fn lifetime(state: &crate::AppState, args: &Args) -> Result<Option<i64>> {
    let now = state.vault.now();
    for name in ["finaltime", "slidingtime"] {
        let s = requested_seconds(args.get(name), now).map_err(|_| {
            Error::bad_request(format!("The {name} parameter has an incorrect format"))
        })?;
        if let Some(s) = s.filter(|s| *s > 0) {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// `XTokenCreateForUser {mode, identity, finaltime?, slidingtime?}` → `{xtoken,
/// token}`: the person's own access token.
pub async fn xtoken_for_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let issued = state
        .vault
        .issue_xtoken_for_user(&who, mode, &identity, lifetime(&state, &args)?)
        .await?;
    Ok(ok_fields(&[
        ("xtoken", Value::from(issued.xtoken)),
        ("token", Value::from(issued.token)),
        ("expires", Value::from(issued.expires)),
    ]))
}

/// `XTokenCreateForRole {roleid | rolename, finaltime?, slidingtime?}` → `{xtoken}`.
pub async fn xtoken_for_role(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let r = reference(&args, Catalog::Role)?;
    let (xtoken, expires) = state
        .vault
        .issue_role_token(&who, &r, lifetime(&state, &args)?)
        .await?;
    Ok(ok_fields(&[
        ("xtoken", Value::from(xtoken)),
        ("expires", Value::from(expires)),
    ]))
}
