//! `/v1/xtoken`: user access tokens (a Strongbox addition; Databunker hands them out
//! only through its login flow).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;

use super::{PathOf, Reply, object_body, ok_fields, path_params, principal, user_path};
use crate::AppState;

pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let expiration = object_body(&state, &headers, body)
        .await?
        .remove("expiration");
    let t = state
        .vault
        .issue_user_token(&who, mode, &identity, expiration.as_ref())
        .await?;
    Ok(ok_fields(&[
        ("xtoken", Value::from(t.xtoken)),
        ("token", Value::from(t.token)),
        ("expires", Value::from(t.expires)),
    ]))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let xtoken = path_params(path)?;
    state.vault.revoke_user_token(&who, &xtoken).await?;
    Ok(ok_fields(&[]))
}
