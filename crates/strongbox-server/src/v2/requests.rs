//! v2 user-request methods: the DPO queue of v1 (`/v1/request`) under Databunker
//! Pro's names. A request is named by `requestuuid` (v1's `rtoken`).

use serde_json::{Map, Value};
use strongbox_core::requests::REQUEST_CLOSED;
use strongbox_core::{Error, ErrorKind, Result};

use super::{Args, Reply};
use crate::extract::{Caller, Tenant};
use crate::reply::ok_fields;

/// A request as v2 shows it: v1's fields, with `requestuuid` and `requesttype`.
pub(super) fn v2_request(listed: Value) -> Value {
    let Value::Object(mut m) = listed else {
        return listed;
    };
    if let Some(id) = m.get("rtoken").cloned() {
        m.insert("requestuuid".into(), id);
    }
    if let Some(action) = m.get("action").cloned() {
        m.insert("requesttype".into(), action);
    }
    Value::Object(m)
}

/// A decided request cannot be decided again: Databunker Pro's words for it.
fn closed(e: Error) -> Error {
    if e.kind == ErrorKind::Conflict && e.message.starts_with(REQUEST_CLOSED) {
        return Error::new(ErrorKind::Conflict, "This user request is closed");
    }
    e
}

/// `UserRequestGet {requestuuid}` → `{request}`: the request with `original` (what
/// it changes, as it is now) and `change`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let view = state
        .vault
        .get_request(&who, &args.text("requestuuid")?)
        .await?;
    let mut request = match v2_request(view.listed) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    request.insert("original".into(), view.original);
    if let Some(change) = view.change {
        request.insert("change".into(), change);
    }
    Ok(ok_fields(&[("request", Value::Object(request))]))
}

/// `UserRequestListUserRequests {mode, identity, offset?, limit?}` → `{total, rows}`.
pub async fn list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let (total, rows) = state
        .vault
        .list_user_requests(&who, mode, &identity, args.page()?)
        .await?;
    let rows: Vec<Value> = rows.into_iter().map(v2_request).collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// The optional `reason` of a decision.
fn reason(args: &Args) -> Result<Option<String>> {
    match args.get("reason") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(
            "The reason parameter has an incorrect format",
        )),
    }
}

/// `UserRequestApprove {requestuuid, reason?}` (root): carries the request out.
pub async fn approve(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let id = args.text("requestuuid")?;
    state
        .vault
        .approve_request(&who, &id, reason(&args)?)
        .await
        .map_err(closed)?;
    Ok(ok_fields(&[]))
}

/// `UserRequestCancel {requestuuid, reason?}` (root, or the person it is about).
pub async fn cancel(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let id = args.text("requestuuid")?;
    state
        .vault
        .cancel_request(&who, &id, reason(&args)?)
        .await
        .map_err(closed)?;
    Ok(ok_fields(&[]))
}
