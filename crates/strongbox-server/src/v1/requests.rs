//! `/v1/request` and `/v1/requests`: data-subject requests awaiting the DPO.

use axum::extract::State;
use axum::http::Uri;
use serde_json::{Map, Value};
use strongbox_core::{Error, Result};

use super::{Reply, ok_fields, page, query_param};
use crate::AppState;
use crate::extract::{Caller, OptionalObject, Params, UserPath};

/// The optional `reason` of an approval or a cancellation.
fn reason(body: &Map<String, Value>) -> Result<Option<String>> {
    match body.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request("bad reason: expected a string")),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(rtoken): Params<String>,
) -> Reply {
    let view = state.vault.get_request(&who, &rtoken).await?;
    let mut fields = Vec::new();
    if let Some(app) = view.app {
        fields.push(("app", Value::from(app)));
    }
    fields.push(("original", view.original));
    if let Some(change) = view.change {
        fields.push(("change", change));
    }
    Ok(ok_fields(&fields))
}

pub async fn approve(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(rtoken): Params<String>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let reason = reason(&body)?;
    state.vault.approve_request(&who, &rtoken, reason).await?;
    Ok(ok_fields(&[("result", Value::from("done"))]))
}

pub async fn cancel(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(rtoken): Params<String>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let reason = reason(&body)?;
    state.vault.cancel_request(&who, &rtoken, reason).await?;
    Ok(ok_fields(&[("result", Value::from("done"))]))
}

pub async fn list_of_user(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    let (total, rows) = state
        .vault
        .list_user_requests(&who, mode, &identity, page(&uri)?)
        .await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn list_all(State(state): State<AppState>, Caller(who): Caller, uri: Uri) -> Reply {
    // Databunker lists the open ones unless asked for another status.
    let status = query_param(&uri, "status").filter(|s| !s.is_empty());
    let (total, rows) = state
        .vault
        .list_requests(&who, Some(status.as_deref().unwrap_or("open")), page(&uri)?)
        .await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}
