//! `/v1/session` and `/v1/sessions`: server-side sessions.

use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};
use strongbox_core::SessionView;

use super::{Reply, ok_fields, ok_json, page};
use crate::AppState;
use crate::extract::{Caller, OptionalObject, Params, UserPath};

fn session_json(s: SessionView) -> Value {
    json!({"when": s.when, "session": s.session, "data": s.data})
}

pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(sid): Params<String>,
    OptionalObject(doc): OptionalObject,
) -> Reply {
    let sid = state.vault.put_session(&who, &sid, doc).await?;
    Ok(ok_json("session", &sid))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(sid): Params<String>,
) -> Reply {
    let s = state.vault.get_session(&who, &sid).await?;
    Ok(ok_fields(&[
        ("session", Value::from(s.session)),
        ("when", Value::from(s.when)),
        ("data", s.data),
    ]))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(sid): Params<String>,
) -> Reply {
    state.vault.delete_session(&who, &sid).await?;
    Ok(ok_fields(&[]))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
    UserPath { mode, identity }: UserPath,
) -> Reply {
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
