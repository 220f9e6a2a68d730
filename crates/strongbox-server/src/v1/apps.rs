//! `/v1/userapp` and `/v1/userapps`: per-application documents of a user.

use axum::extract::State;
use serde_json::Value;
use strongbox_core::{Change, Error, Route};

use super::{Reply, ok_fields, ok_json, outcome};
use crate::AppState;
use crate::extract::{Caller, OptionalJson, OptionalObject, UserAppPath, UserPath};

pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserAppPath {
        mode,
        identity,
        app,
    }: UserAppPath,
    OptionalObject(doc): OptionalObject,
) -> Reply {
    // An absent or empty body is refused by the core ("empty body").
    let done = state
        .vault
        .put_app(&who, mode, &identity, &app, doc)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserAppPath {
        mode,
        identity,
        app,
    }: UserAppPath,
) -> Reply {
    let (token, data) = state.vault.get_app(&who, mode, &identity, &app).await?;
    Ok(ok_fields(&[("token", Value::from(token)), ("data", data)]))
}

pub async fn update(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserAppPath {
        mode,
        identity,
        app,
    }: UserAppPath,
    OptionalJson(body): OptionalJson,
) -> Reply {
    let change = match body {
        None => return Err(Error::bad_request("empty body").into()),
        Some(v) => Change::from_json(v)?,
    };
    let done = state
        .vault
        .update_app(&who, mode, &identity, &app, change, Route::AsAllowed)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserAppPath {
        mode,
        identity,
        app,
    }: UserAppPath,
) -> Reply {
    let token = state.vault.delete_app(&who, mode, &identity, &app).await?;
    Ok(ok_json("token", &token))
}

pub async fn list_of_user(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    let (token, apps) = state.vault.list_user_apps(&who, mode, &identity).await?;
    Ok(ok_fields(&[
        ("token", Value::from(token)),
        ("apps", Value::from(apps)),
    ]))
}

pub async fn names(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let apps = state.vault.list_app_names(&who).await?;
    Ok(ok_fields(&[("apps", Value::from(apps))]))
}
