//! `/v1/session` and `/v1/sessions`: server-side sessions.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};
use strongbox_core::SessionView;

use super::{
    PathOf, Reply, object_body, ok_fields, ok_json, page, path_params, principal, user_path,
};
use crate::AppState;

fn session_json(s: SessionView) -> Value {
    json!({"when": s.when, "session": s.session, "data": s.data})
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let sid = path_params(path)?;
    let doc = object_body(&state, &headers, body).await?;
    let sid = state.vault.put_session(&who, &sid, doc).await?;
    Ok(ok_json("session", &sid))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: PathOf<String>) -> Reply {
    let who = principal(&state, &headers).await?;
    let sid = path_params(path)?;
    let s = state.vault.get_session(&who, &sid).await?;
    Ok(ok_fields(&[
        ("session", Value::from(s.session)),
        ("when", Value::from(s.when)),
        ("data", s.data),
    ]))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let sid = path_params(path)?;
    state.vault.delete_session(&who, &sid).await?;
    Ok(ok_fields(&[]))
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    let page = page(&uri)?;
    let (total, rows) = state
        .vault
        .list_sessions(&who, mode, &identity, page)
        .await?;
    let rows: Vec<Value> = rows.into_iter().map(session_json).collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}
