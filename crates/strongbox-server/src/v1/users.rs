//! `/v1/user`: create, read, change and erase profiles.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use strongbox_core::{Change, Error, Outcome, Route};

use super::{Reply, ok_fields, ok_json, outcome};
use crate::AppState;
use crate::extract::{Caller, Creator, Object, OptionalJson, UserPath};
use crate::reply::json_response;

pub async fn create(
    State(state): State<AppState>,
    Creator(who): Creator,
    Object(profile): Object,
) -> Reply {
    let token = state.vault.create_user(&who, profile).await?;
    Ok(ok_json("token", &token))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    let user = state.vault.get_user(&who, mode, &identity, None).await?;
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
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
    OptionalJson(body): OptionalJson,
) -> Reply {
    let change = match body {
        None => return Err(Error::bad_request("empty request body").into()),
        Some(v) => Change::from_json(v)?,
    };
    let done = state
        .vault
        .update_user(&who, mode, &identity, change, Route::AsAllowed)
        .await?;
    Ok(outcome(done, |token| ok_json("token", &token)))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    let done = state
        .vault
        .delete_user(&who, mode, &identity, Route::AsAllowed)
        .await?;
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
