//! Consent routes: `/v1/lbasis`, `/v1/agreement(s)`, `/v1/pactivity` and the cookie
//! banner feed `/v1/sys/cookiesettings`.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use strongbox_core::{Mode, Result};

use super::{PathOf, Reply, object_body, ok_fields, outcome, path_params, principal, user_path};
use crate::AppState;

fn list(rows: Vec<Value>) -> Reply {
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

fn agreement_path(path: PathOf<(String, String, String)>) -> Result<(String, Mode, String)> {
    let (brief, mode, identity) = path_params(path)?;
    Ok((brief, Mode::parse(&mode)?, identity))
}

pub async fn list_legal_bases(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = principal(&state, &headers).await?;
    list(state.vault.list_legal_bases(&who).await?)
}

pub async fn put_legal_basis(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let brief = path_params(path)?;
    let body = object_body(&state, &headers, body).await?;
    state.vault.put_legal_basis(&who, &brief, body).await?;
    Ok(ok_fields(&[]))
}

pub async fn delete_legal_basis(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let brief = path_params(path)?;
    state.vault.delete_legal_basis(&who, &brief).await?;
    Ok(ok_fields(&[]))
}

pub async fn get_agreement(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (brief, mode, identity) = agreement_path(path)?;
    let data = state
        .vault
        .get_agreement(&who, &brief, mode, &identity)
        .await?;
    Ok(ok_fields(&[("data", data)]))
}

pub async fn accept_agreement(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (brief, mode, identity) = agreement_path(path)?;
    let body = object_body(&state, &headers, body).await?;
    state
        .vault
        .accept_agreement(&who, &brief, mode, &identity, body)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn withdraw_agreement(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String, String)>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (brief, mode, identity) = agreement_path(path)?;
    let body = object_body(&state, &headers, body).await?;
    let done = state
        .vault
        .withdraw_agreement(&who, &brief, mode, &identity, body)
        .await?;
    Ok(outcome(done, |_| ok_fields(&[])))
}

pub async fn revoke_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let brief = path_params(path)?;
    state.vault.revoke_all_agreements(&who, &brief).await?;
    Ok(ok_fields(&[]))
}

pub async fn list_agreements(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (mode, identity) = user_path(path)?;
    list(state.vault.list_agreements(&who, mode, &identity).await?)
}

pub async fn list_activities(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = principal(&state, &headers).await?;
    list(state.vault.list_activities(&who).await?)
}

pub async fn put_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
    body: Body,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let activity = path_params(path)?;
    let body = object_body(&state, &headers, body).await?;
    state.vault.put_activity(&who, &activity, body).await?;
    Ok(ok_fields(&[]))
}

pub async fn delete_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<String>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let activity = path_params(path)?;
    state.vault.delete_activity(&who, &activity).await?;
    Ok(ok_fields(&[]))
}

pub async fn link_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (activity, brief) = path_params(path)?;
    state
        .vault
        .link_activity(&who, &activity, &brief, true)
        .await?;
    Ok(ok_fields(&[]))
}

pub async fn unlink_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: PathOf<(String, String)>,
) -> Reply {
    let who = principal(&state, &headers).await?;
    let (activity, brief) = path_params(path)?;
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
