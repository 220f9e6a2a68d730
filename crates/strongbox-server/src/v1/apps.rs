//! `/v1/userapp` and `/v1/userapps`: per-application documents of a user.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use strongbox_core::{Change, Error, Mode};

use super::{
    PathOf, Reply, object_body, ok_fields, ok_json, outcome, path_params, principal, user_path,
};
use crate::{AppState, body};

/// Path parameters `{mode}/{identity}/{app}`.
fn app_path(
    path: PathOf<(String, String, String)>,
) -> strongbox_core::Result<(Mode, String, String)> {
    let (mode, identity, app) = path_params(path)?;
    Ok((Mode::parse(&mode)?, identity, app))
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity, app) = app_path(path)?;
    // An absent or empty body is refused by the core ("empty body").
    let doc = object_body(&state, &headers, body).await?;
    let done = state
        .vault
        .put_app(&who, mode, &identity, &app, doc)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity, app) = app_path(path)?;
    let (token, data) = state.vault.get_app(&who, mode, &identity, &app).await?;
    Ok(ok_fields(&[("token", Value::from(token)), ("data", data)]))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity, app) = app_path(path)?;
    let change = match body::read(&headers, body, state.http.max_body_bytes).await? {
        None => return Err(Error::bad_request("empty body").into()),
        Some(v) => Change::from_json(v)?,
    };
    let done = state
        .vault
        .update_app(&who, mode, &identity, &app, change)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity, app) = app_path(path)?;
    let token = state.vault.delete_app(&who, mode, &identity, &app).await?;
    Ok(ok_json("token", &token))
}

pub async fn list_of_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let (token, apps) = state.vault.list_user_apps(&who, mode, &identity).await?;
    Ok(ok_fields(&[
        ("token", Value::from(token)),
        ("apps", Value::from(apps)),
    ]))
}

pub async fn names(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = principal(&state, &headers).await?;
    let apps = state.vault.list_app_names(&who).await?;
    Ok(ok_fields(&[("apps", Value::from(apps))]))
}
