//! `/v1/sharedrecord` and `/v1/get`: time-limited views for partners.

use axum::extract::State;
use serde_json::Value;
use strongbox_core::ErrorKind;

use super::{Reply, ok_fields, ok_json};
use crate::AppState;
use crate::extract::{Caller, Client, OptionalObject, Params, UserPath, failed_attempt};

pub async fn create(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let record = state
        .vault
        .create_share(&who, mode, &identity, body)
        .await?;
    Ok(ok_json("record", &record))
}

/// No token: the record id is the capability, so a miss is a failed attempt.
pub async fn get(
    State(state): State<AppState>,
    Client(client): Client,
    Params(record): Params<String>,
) -> Reply {
    let view = match state.vault.get_share(&record).await {
        Ok(view) => view,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(failed_attempt(&state, client, e).await);
        }
        Err(e) => return Err(e.into()),
    };
    let mut fields = Vec::new();
    if let Some(app) = view.app {
        fields.push(("app", Value::from(app)));
    } else if let Some(session) = view.session {
        fields.push(("session", Value::from(session)));
    }
    fields.push(("data", view.data));
    Ok(ok_fields(&fields))
}
