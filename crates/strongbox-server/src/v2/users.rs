//! v2 user methods: the v1 user service under Databunker Pro's names and shapes.

use axum::extract::State;
use serde_json::Value;
use strongbox_core::{Change, Error};

use super::{Args, Reply, done_or_requested};
use crate::AppState;
use crate::extract::{Caller, Creator};
use crate::reply::ok_fields;

/// `UserCreate {profile}` → `{token}`.
pub async fn create(State(state): State<AppState>, Creator(who): Creator, args: Args) -> Reply {
    let profile = args.object("profile")?;
    let token = state.vault.create_user(&who, profile).await?;
    Ok(ok_fields(&[("token", Value::from(token))]))
}

/// `UserGet {mode, identity}` → `{token, profile}`.
pub async fn get(State(state): State<AppState>, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let user = state.vault.get_user(&who, mode, &identity).await?;
    let profile: Value = match user.profile.as_deref() {
        Some(p) => serde_json::from_slice(p).map_err(Error::internal)?,
        None => Value::Object(Default::default()),
    };
    Ok(ok_fields(&[
        ("token", Value::from(user.token)),
        ("profile", profile),
    ]))
}

/// `UserUpdate {mode, identity, profile}`: a merge patch.
pub async fn update(State(state): State<AppState>, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let change = Change::from_json(Value::Object(args.object("profile")?))?;
    let done = state
        .vault
        .update_user(&who, mode, &identity, change)
        .await?;
    Ok(done_or_requested(done))
}

/// `UserPatch {mode, identity, patch}`: a JSON Patch.
pub async fn patch(State(state): State<AppState>, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let patch = args.value("patch")?;
    if !patch.is_array() {
        return Err(Error::bad_request("The patch parameter must be a JSON Patch array").into());
    }
    let change = Change::from_json(patch)?;
    let done = state
        .vault
        .update_user(&who, mode, &identity, change)
        .await?;
    Ok(done_or_requested(done))
}

/// `UserDelete {mode, identity}`: erasure, as `DELETE /v1/user`.
pub async fn delete(State(state): State<AppState>, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let done = state.vault.delete_user(&who, mode, &identity).await?;
    Ok(done_or_requested(done))
}
