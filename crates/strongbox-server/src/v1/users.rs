//! `/v1/user`: create, read, change and erase profiles.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use strongbox_core::{Change, Error, Outcome};

use super::{
    PathOf, Reply, json_response, ok_fields, ok_json, outcome, principal, token, user_path,
};
use crate::{AppState, body};

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Reply {
    let who = state.vault.authenticate_create(token(&headers)).await?;
    let profile = body::read_object(&headers, body, state.http.max_body_bytes).await?;
    let token = state.vault.create_user(&who, profile).await?;
    Ok(ok_json("token", &token))
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let user = state.vault.get_user(&who, mode, &identity).await?;
    // The stored profile is already JSON: splice it in rather than re-serializing.
    let profile: &[u8] = user.profile.as_deref().map_or(b"{}", |p| p.as_slice());
    let mut out = Vec::with_capacity(profile.len() + 80);
    out.extend_from_slice(br#"{"status":"ok","token":""#);
    out.extend_from_slice(user.token.as_bytes());
    out.extend_from_slice(br#"","data":"#);
    out.extend_from_slice(profile);
    out.push(b'}');
    Ok(json_response(StatusCode::OK, out))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let change = match body::read(&headers, body, state.http.max_body_bytes).await? {
        None => return Err(Error::bad_request("empty request body").into()),
        Some(v) => Change::from_json(v)?,
    };
    let done = state
        .vault
        .update_user(&who, mode, &identity, change)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let done = state.vault.delete_user(&who, mode, &identity).await?;
    // Databunker's answer, plus the signed erasure receipt.
    let receipt = match &done {
        Outcome::Done(token) => state.vault.receipt_of(token).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the erasure receipt is not ready");
            None
        }),
        Outcome::Requested { .. } => None,
    };
    Ok(outcome(done, |_| {
        ok_fields(&[
            ("result", Value::from("done")),
            ("receipt", receipt.unwrap_or(Value::Null)),
        ])
    }))
}
