//! `/v1/sharedrecord` and `/v1/get`: time-limited views for partners.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;

use super::{PathOf, Reply, object_body, ok_fields, ok_json, path_params, principal, user_path};
use crate::AppState;

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let body = object_body(&state, &headers, body).await?;
    let record = state
        .vault
        .create_share(&who, mode, &identity, body)
        .await?;
    Ok(ok_json("record", &record))
}

/// No token: the record id is the capability.
pub async fn get(State(state): State<AppState>, path: PathOf<String>) -> Reply {
    let record = path_params(path)?;
    let view = state.vault.get_share(&record).await?;
    let mut fields = Vec::new();
    if let Some(app) = view.app {
        fields.push(("app", Value::from(app)));
    } else if let Some(session) = view.session {
        fields.push(("session", Value::from(session)));
    }
    fields.push(("data", view.data));
    Ok(ok_fields(&fields))
}
