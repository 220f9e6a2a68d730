//! `/v1/exp`: retention of user records.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

use super::{PathOf, Reply, object_body, ok_fields, ok_json, path_params, principal, user_path};
use crate::AppState;

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let body = object_body(&state, &headers, body).await?;
    let exptoken = state
        .vault
        .start_expiration(&who, mode, &identity, body)
        .await?;
    Ok(ok_json("exptoken", &exptoken))
}

pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let s = state.vault.expiration_status(&who, mode, &identity).await?;
    Ok(ok_fields(&[
        ("exptime", Value::from(s.exptime)),
        ("expstatus", Value::from(s.expstatus)),
        ("exptoken", Value::from(s.exptoken)),
    ]))
}

pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    state.vault.cancel_expiration(&who, mode, &identity).await?;
    Ok(ok_fields(&[]))
}

/// No token: the exptoken in the link is the capability. Answers plain `OK`, as
/// Databunker does (the link is opened in a browser).
pub async fn retain(State(state): State<AppState>, path: PathOf<String>) -> Reply {
    let exptoken = path_params(path)?;
    state.vault.retain_by_exptoken(&exptoken).await?;
    Ok((StatusCode::OK, "OK").into_response())
}

pub async fn delete(State(state): State<AppState>, path: PathOf<String>) -> Reply {
    let exptoken = path_params(path)?;
    state.vault.delete_by_exptoken(&exptoken).await?;
    Ok((StatusCode::OK, "OK").into_response())
}
