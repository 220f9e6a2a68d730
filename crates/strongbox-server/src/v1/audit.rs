//! `/v1/audit`: reading the audit log.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::Value;

use super::{PathOf, Reply, ok_fields, page, path_params, principal};
use crate::AppState;

pub async fn admin(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Reply {
    let who = principal(&state, &headers).await?;
    let (total, rows) = state.vault.list_audit(&who, page(&uri)?).await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let token = path_params(path)?;
    let (total, rows) = state.vault.list_audit_of(&who, &token, page(&uri)?).await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: PathOf<String>) -> Reply {
    let who = principal(&state, &headers).await?;
    let atoken = path_params(path)?;
    let event = state.vault.get_audit_event(&who, &atoken).await?;
    Ok(ok_fields(&[("event", event)]))
}
