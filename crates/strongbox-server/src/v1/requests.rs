//! `/v1/request` and `/v1/requests`: data-subject requests awaiting the DPO.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::Value;
use strongbox_core::{Error, Result};

use super::{
    PathOf, Reply, object_body, ok_fields, page, path_params, principal, query_param, user_path,
};
use crate::AppState;

/// The optional `reason` of an approval or a cancellation.
async fn reason(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Option<String>> {
    match object_body(state, headers, body).await?.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request("bad reason: expected a string")),
    }
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: PathOf<String>) -> Reply {
    let who = principal(&state, &headers).await?;
    let rtoken = path_params(path)?;
    let (app, original, change) = state.vault.get_request(&who, &rtoken).await?;
    let mut fields = Vec::new();
    if let Some(app) = app {
        fields.push(("app", Value::from(app)));
    }
    fields.push(("original", original));
    if let Some(change) = change {
        fields.push(("change", change));
    }
    Ok(ok_fields(&fields))
}

pub async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let rtoken = path_params(path)?;
    let reason = reason(&state, &headers, body).await?;
    state.vault.approve_request(&who, &rtoken, reason).await?;
    Ok(ok_fields(&[("result", Value::from("done"))]))
}

pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let rtoken = path_params(path)?;
    let reason = reason(&state, &headers, body).await?;
    state.vault.cancel_request(&who, &rtoken, reason).await?;
    Ok(ok_fields(&[("result", Value::from("done"))]))
}

pub async fn list_of_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let (total, rows) = state
        .vault
        .list_user_requests(&who, mode, &identity, page(&uri)?)
        .await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn list_all(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Reply {
    let who = principal(&state, &headers).await?;
    let status = query_param(&uri, "status");
    let (total, rows) = state
        .vault
        .list_requests(&who, status.as_deref(), page(&uri)?)
        .await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}
