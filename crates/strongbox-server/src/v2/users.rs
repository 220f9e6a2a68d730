//! v2 user methods: the v1 user service under Databunker Pro's names and shapes.

use serde_json::{Map, Value, json};
use strongbox_core::{Change, Error, ErrorKind, Mode, Outcome, Principal, Result, Route, expiry};

use super::{Args, Reply, done_or_requested, requested};
use crate::AppState;
use crate::extract::{Caller, Creator, Tenant};
use crate::reply::{json_response, ok_fields};

/// Most records one `UserCreateBulk` may carry, and people one `UserDeleteBulk`
/// may name.
const MAX_BULK: usize = 10_000;

/// `finaltime` of a create, checked before anything is written: the person's
/// retention (as `POST /v1/exp/start`, capped by `max_user_retention`).
/// `slidingtime` is accepted and not acted on (people have no sliding expiry).
fn final_time(args: &Args) -> Result<Option<Value>> {
    let end = args.get("finaltime").cloned();
    expiry::requested_seconds(end.as_ref(), 0)?;
    Ok(end)
}

/// Starts the retention `finaltime` asks for on the person just created.
async fn expire(state: &AppState, who: &Principal, token: &str, end: &Value) -> Result<()> {
    let mut body = Map::new();
    body.insert("expiration".into(), end.clone());
    state
        .vault
        .start_expiration(who, Mode::Token, token, body)
        .await
        .map(|_| ())
}

/// `UserCreate {profile, finaltime?, slidingtime?}` → `{token}`.
pub async fn create(Tenant(state): Tenant, Creator(who): Creator, mut args: Args) -> Reply {
    let profile = args.take_object("profile")?;
    let end = final_time(&args)?;
    // Only root sets a retention or a group, and is told whether the group exists.
    let wants_group = ["groupid", "groupname", "roleid", "rolename"]
        .iter()
        .any(|k| args.get(k).is_some());
    if end.is_some() || wants_group {
        who.require_root()?;
    }
    let membership = super::access::membership(&state, &args).await?;
    let token = state.vault.create_user(&who, profile).await?;
    if let Some(end) = &end {
        expire(&state, &who, &token, end).await?;
    }
    // `groupname`/`groupid` with `rolename`/`roleid`: the new person joins it.
    if let Some((group, role)) = membership {
        state
            .vault
            .add_to_group(&who, Mode::Token, &token, &group, role.as_ref())
            .await?;
    }
    Ok(ok_fields(&[("token", Value::from(token))]))
}

/// `UserCreateBulk {records: [{profile}], finaltime?, slidingtime?}` (root) →
/// `{created: [{token, profile}], errors: [{profile, reason}]}`: each record is
/// created (or refused) on its own, as `UserCreate` would; `finaltime` applies to
/// every one.
pub async fn create_bulk(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    who.require_root()?;
    let records = match args.value("records")? {
        Value::Array(r) if r.is_empty() => {
            return Err(Error::bad_request("The records parameter is empty").into());
        }
        Value::Array(r) if r.len() > MAX_BULK => {
            return Err(Error::bad_request(format!(
                "The records parameter has more than {MAX_BULK} records"
            ))
            .into());
        }
        Value::Array(r) => r,
        _ => return Err(Error::bad_request("The records parameter must be an array").into()),
    };
    let end = final_time(&args)?;
    let mut profiles = Vec::with_capacity(records.len());
    for r in records {
        match r.get("profile") {
            Some(Value::Object(p)) => profiles.push(p.clone()),
            _ => {
                return Err(
                    Error::bad_request("Each record needs a profile (a JSON object)").into(),
                );
            }
        }
    }
    let results = state.vault.import_users(&who, profiles.clone()).await?;
    let mut created = Vec::new();
    let mut errors = Vec::new();
    for (profile, result) in profiles.into_iter().zip(results) {
        match result {
            Ok(token) => {
                if let Some(end) = &end {
                    expire(&state, &who, &token, end).await?;
                }
                created.push(json!({"token": token, "profile": profile}));
            }
            Err(e) if e.kind == ErrorKind::Internal || e.kind == ErrorKind::Unavailable => {
                return Err(e.into());
            }
            Err(e) => errors.push(json!({"profile": profile, "reason": e.message})),
        }
    }
    Ok(ok_fields(&[
        ("created", Value::from(created)),
        ("errors", Value::from(errors)),
    ]))
}

/// `UserDeleteBulk {users: [{mode, identity}]}` → `{deleted_count, errors:
/// [{index, reason}]}`: each person erased as `UserDelete` would (a person's own
/// token files requests instead, which are not counted as deleted).
pub async fn delete_bulk(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let users = match args.value("users")? {
        Value::Array(u) if u.is_empty() => {
            return Err(Error::bad_request("The users parameter is empty").into());
        }
        Value::Array(u) if u.len() > MAX_BULK => {
            return Err(Error::bad_request(format!(
                "The users parameter names more than {MAX_BULK} people"
            ))
            .into());
        }
        Value::Array(u) => u,
        _ => return Err(Error::bad_request("The users parameter must be an array").into()),
    };
    let people = users
        .iter()
        .map(|u| match u {
            Value::Object(m) => Args::of(m.clone()).person(),
            _ => Err(Error::bad_request("Each user must be a JSON object")),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut deleted = 0usize;
    let mut errors = Vec::new();
    for (index, (mode, identity)) in people.into_iter().enumerate() {
        match state
            .vault
            .delete_user(&who, mode, &identity, Route::AsAllowed)
            .await
        {
            Ok(Outcome::Done(_)) => deleted += 1,
            Ok(Outcome::Requested { .. }) => {}
            Err(e) if e.kind == ErrorKind::Internal || e.kind == ErrorKind::Unavailable => {
                return Err(e.into());
            }
            Err(e) => errors.push(json!({"index": index, "reason": e.message})),
        }
    }
    Ok(ok_fields(&[
        ("deleted_count", Value::from(deleted)),
        ("errors", Value::from(errors)),
    ]))
}

/// `UserGet {mode, identity}` → `{token, profile}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let version = match args.get("version") {
        None => None,
        Some(_) => Some(args.int("version")?),
    };
    let user = state.vault.get_user(&who, mode, &identity, version).await?;
    // The stored profile is already JSON: spliced in, as v1 does.
    let profile: &[u8] = user.profile.as_deref().map_or(b"{}", |p| p.as_slice());
    let mut out = Vec::with_capacity(profile.len() + 100);
    out.extend_from_slice(br#"{"status":"ok","token":""#);
    out.extend_from_slice(user.token.as_bytes());
    out.extend_from_slice(br#"","profile":"#);
    out.extend_from_slice(profile);
    out.extend_from_slice(format!(r#","version":{}}}"#, user.version).as_bytes());
    Ok(json_response(axum::http::StatusCode::OK, out))
}

/// `UserListVersions {mode, identity}` → `{token, versions: [{version, optime, md5,
/// current}]}`: the earlier profiles kept (`--versioning true`), oldest first, and
/// the current one last.
pub async fn list_versions(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let (token, versions) = state.vault.list_versions(&who, mode, &identity).await?;
    let rows: Vec<Value> = versions
        .iter()
        .map(|v| json!({"version": v.version, "optime": v.optime, "md5": v.md5, "current": v.current}))
        .collect();
    Ok(ok_fields(&[
        ("token", Value::from(token)),
        ("versions", Value::from(rows)),
    ]))
}

/// `UserUpdate {mode, identity, profile}`: a merge patch.
pub async fn update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    Ok(done_or_requested(
        update_via(&state, &who, args, Route::AsAllowed).await?,
    ))
}

/// `UserUpdateRequest {mode, identity, profile}` → `{requestuuid}`: the merge patch,
/// filed for the DPO.
pub async fn update_request(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    requested(update_via(&state, &who, args, Route::Request).await?)
}

async fn update_via(
    state: &AppState,
    who: &Principal,
    mut args: Args,
    route: Route,
) -> Result<Outcome> {
    let (mode, identity) = args.person()?;
    let change = Change::from_json(Value::Object(args.take_object("profile")?))?;
    state
        .vault
        .update_user(who, mode, &identity, change, route)
        .await
}

/// `UserPatch {mode, identity, patch}`: a JSON Patch.
pub async fn patch(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    Ok(done_or_requested(
        patch_via(&state, &who, &args, Route::AsAllowed).await?,
    ))
}

/// `UserPatchRequest {mode, identity, patch}` → `{requestuuid}`.
pub async fn patch_request(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    requested(patch_via(&state, &who, &args, Route::Request).await?)
}

async fn patch_via(
    state: &AppState,
    who: &Principal,
    args: &Args,
    route: Route,
) -> Result<Outcome> {
    let (mode, identity) = args.person()?;
    let patch = args.value("patch")?;
    if !patch.is_array() {
        return Err(Error::bad_request(
            "The patch parameter must be a JSON Patch array",
        ));
    }
    let change = Change::from_json(patch)?;
    state
        .vault
        .update_user(who, mode, &identity, change, route)
        .await
}

/// `UserDelete {mode, identity}`: erasure, as `DELETE /v1/user`.
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let done = state
        .vault
        .delete_user(&who, mode, &identity, Route::AsAllowed)
        .await?;
    Ok(done_or_requested(done))
}

/// `UserDeleteRequest {mode, identity}` → `{requestuuid}`: erasure, filed for the DPO.
pub async fn delete_request(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    requested(
        state
            .vault
            .delete_user(&who, mode, &identity, Route::Request)
            .await?,
    )
}
