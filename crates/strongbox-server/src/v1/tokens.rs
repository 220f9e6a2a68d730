//! `/v1/xtoken`: user access tokens (a Strongbox addition; Databunker hands them out
//! only through its login flow).

use axum::extract::State;
use serde_json::Value;

use super::{Reply, ok_fields};
use crate::AppState;
use crate::extract::{Caller, OptionalObject, Params, UserPath};

pub async fn issue(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
    OptionalObject(mut body): OptionalObject,
) -> Reply {
    let expiration = body.remove("expiration");
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
    Caller(who): Caller,
    Params(xtoken): Params<String>,
) -> Reply {
    state.vault.revoke_user_token(&who, &xtoken).await?;
    Ok(ok_fields(&[]))
}
