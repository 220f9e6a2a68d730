//! `/v1/audit`: reading the audit log.

use axum::extract::State;
use axum::http::Uri;
use serde_json::Value;
use strongbox_core::Error;

use super::{Reply, ok_fields, page};
use crate::AppState;
use crate::extract::{Caller, Params};

pub async fn admin(State(state): State<AppState>, Caller(who): Caller, uri: Uri) -> Reply {
    let (total, rows) = state.vault.list_audit(&who, page(&uri)?).await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    uri: Uri,
    Params(token): Params<String>,
) -> Reply {
    let (total, rows) = state.vault.list_audit_of(&who, &token, page(&uri)?).await?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(atoken): Params<String>,
) -> Reply {
    let event = state.vault.get_audit_event(&who, &atoken).await?;
    Ok(ok_fields(&[("event", event.detail)]))
}

/// The vault's public key: verifies checkpoints, receipts and reports. Public.
pub async fn public_key(State(state): State<AppState>) -> Reply {
    Ok(ok_fields(&[
        ("algorithm", Value::from("ed25519")),
        ("publickey", Value::from(state.vault.public_key_hex())),
    ]))
}

/// The newest signed checkpoint of the audit chain (root).
pub async fn checkpoint(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    who.require_root()?;
    match state.vault.latest_checkpoint().await? {
        Some(c) => Ok(ok_fields(&[("checkpoint", c)])),
        None => Err(Error::not_found("no checkpoint yet (POST to make one)").into()),
    }
}

/// Walks the chain and reports what does not verify (root).
pub async fn verify(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let v = state.vault.verify_audit(&who).await?;
    let findings: Vec<Value> = v.findings.iter().map(|f| f.to_string().into()).collect();
    Ok(ok_fields(&[
        ("intact", Value::from(findings.is_empty())),
        ("sealed", Value::from(v.sealed)),
        ("pending", Value::from(v.pending)),
        ("checkpoints", Value::from(v.checkpoints)),
        ("anchored", Value::from(v.anchored)),
        ("findings", Value::from(findings)),
    ]))
}

/// Seals what is pending and signs a checkpoint now (root).
pub async fn make_checkpoint(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let c = state.vault.checkpoint_audit(&who).await?;
    Ok(ok_fields(&[("checkpoint", c)]))
}

/// The signed receipt of an erasure (root).
pub async fn receipt(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(token): Params<String>,
) -> Reply {
    let r = state.vault.erasure_receipt(&who, &token).await?;
    Ok(ok_fields(&[("receipt", r)]))
}

/// Who accessed the subject's data: root, or the subject with their own token.
pub async fn report(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(token): Params<String>,
) -> Reply {
    let r = state.vault.access_report(&who, &token).await?;
    Ok(ok_fields(&[("report", r)]))
}
