//! Consent routes: `/v1/lbasis`, `/v1/agreement(s)`, `/v1/pactivity` and the cookie
//! banner feed `/v1/sys/cookiesettings`.

use axum::extract::State;
use serde_json::Value;
use strongbox_core::{Mode, Result, Route};

use super::{Reply, ok_fields, outcome};
use crate::AppState;
use crate::extract::{Caller, OptionalObject, Params, UserPath};

fn list(rows: Vec<Value>) -> Reply {
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// `{brief}/{mode}/{identity}`: one consent of one person.
fn agreement_path(
    Params((brief, mode, identity)): Params<(String, String, String)>,
) -> Result<(String, Mode, String)> {
    Ok((brief, Mode::parse(&mode)?, identity))
}

pub async fn list_legal_bases(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    list(state.vault.list_legal_bases(&who).await?)
}

pub async fn put_legal_basis(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(brief): Params<String>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    state
        .vault
        .put_legal_basis(&who, &brief, body, false)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn delete_legal_basis(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(brief): Params<String>,
) -> Reply {
    state.vault.delete_legal_basis(&who, &brief).await?;
    Ok(ok_fields(&[]))
}

pub async fn get_agreement(
    State(state): State<AppState>,
    Caller(who): Caller,
    path: Params<(String, String, String)>,
) -> Reply {
    let (brief, mode, identity) = agreement_path(path)?;
    let data = state
        .vault
        .get_agreement(&who, &brief, mode, &identity)
        .await?;
    Ok(ok_fields(&[("data", data)]))
}

pub async fn accept_agreement(
    State(state): State<AppState>,
    Caller(who): Caller,
    path: Params<(String, String, String)>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let (brief, mode, identity) = agreement_path(path)?;
    state
        .vault
        .accept_agreement(&who, &brief, mode, &identity, body)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn withdraw_agreement(
    State(state): State<AppState>,
    Caller(who): Caller,
    path: Params<(String, String, String)>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let (brief, mode, identity) = agreement_path(path)?;
    let done = state
        .vault
        .withdraw_agreement(&who, &brief, mode, &identity, body, Route::AsAllowed)
        .await?;
    Ok(outcome(done, |_| ok_fields(&[])))
}

pub async fn revoke_all(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(brief): Params<String>,
) -> Reply {
    state.vault.revoke_all_agreements(&who, &brief).await?;
    Ok(ok_fields(&[]))
}

pub async fn list_agreements(
    State(state): State<AppState>,
    Caller(who): Caller,
    UserPath { mode, identity }: UserPath,
) -> Reply {
    list(state.vault.list_agreements(&who, mode, &identity).await?)
}

pub async fn list_activities(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    list(state.vault.list_activities(&who).await?)
}

pub async fn put_activity(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(activity): Params<String>,
    OptionalObject(body): OptionalObject,
) -> Reply {
    state
        .vault
        .put_activity(&who, &activity, body, false)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn delete_activity(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params(activity): Params<String>,
) -> Reply {
    state.vault.delete_activity(&who, &activity).await?;
    Ok(ok_fields(&[]))
}

pub async fn link_activity(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params((activity, brief)): Params<(String, String)>,
) -> Reply {
    state
        .vault
        .link_activity(&who, &activity, &brief, true)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn unlink_activity(
    State(state): State<AppState>,
    Caller(who): Caller,
    Params((activity, brief)): Params<(String, String)>,
) -> Reply {
    state
        .vault
        .link_activity(&who, &activity, &brief, false)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn cookie_settings(State(state): State<AppState>) -> Reply {
    let (rows, scripts) = state.vault.cookie_settings().await?;
    Ok(ok_fields(&[
        ("ui", Value::Object(state.http.ui.clone())),
        ("rows", Value::from(rows)),
        ("scripts", Value::from(scripts)),
    ]))
}

pub async fn ui_configuration(State(state): State<AppState>) -> Reply {
    Ok(ok_fields(&[("ui", Value::Object(state.http.ui.clone()))]))
}
