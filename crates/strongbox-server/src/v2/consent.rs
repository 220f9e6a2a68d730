//! v2 consent methods: legal bases and agreements, over the v1 consent service.

use serde_json::{Map, Value};
use strongbox_core::{Outcome, Principal, Result, Route};

use super::{Args, Reply, done_or_requested, requested};
use crate::AppState;
use crate::extract::{Caller, Tenant};
use crate::reply::ok_fields;

/// `{total, rows}`.
fn rows(rows: Vec<Value>) -> axum::response::Response {
    ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ])
}

/// The legal basis fields of a create or update call (absent and `null` left out).
fn basis_fields(args: &Args) -> Map<String, Value> {
    args.fields_except(&["brief", "newbrief"])
}

/// `LegalBasisCreate {brief, …}`.
pub async fn create_basis(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let brief = args.text("brief")?;
    state
        .vault
        .put_legal_basis(&who, &brief, basis_fields(&args), false)
        .await?;
    Ok(ok_fields(&[]))
}

/// `LegalBasisUpdate {brief, newbrief?, …}`: `newbrief` renames it.
pub async fn update_basis(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let brief = args.text("brief")?;
    let mut fields = basis_fields(&args);
    if args.get("newbrief").is_some() {
        fields.insert("brief".into(), Value::from(args.text("newbrief")?));
    }
    state
        .vault
        .put_legal_basis(&who, &brief, fields, true)
        .await?;
    Ok(ok_fields(&[]))
}

/// `LegalBasisDelete {brief}`.
pub async fn delete_basis(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .delete_legal_basis(&who, &args.text("brief")?)
        .await?;
    Ok(ok_fields(&[]))
}

/// `LegalBasisListAgreements {}`: the legal bases (Pro's name for the catalogue).
pub async fn list_bases(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    Ok(rows(state.vault.list_legal_bases(&who).await?))
}

/// `AgreementAccept {mode, identity, brief, …}`; `finaltime` is v1's `expiration`.
pub async fn accept(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let brief = args.text("brief")?;
    let mut body = args.fields_except(&["mode", "identity", "brief", "finaltime"]);
    if let Some(end) = args.get("finaltime") {
        body.insert("expiration".into(), end.clone());
    }
    state
        .vault
        .accept_agreement(&who, &brief, mode, &identity, body)
        .await?;
    Ok(ok_fields(&[]))
}

/// `AgreementGet {mode, identity, brief}` → `{agreement}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let brief = args.text("brief")?;
    let agreement = state
        .vault
        .get_agreement(&who, &brief, mode, &identity)
        .await?;
    Ok(ok_fields(&[("agreement", agreement)]))
}

/// `AgreementListUserAgreements {mode, identity}` → `{total, rows}`.
pub async fn list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    Ok(rows(
        state.vault.list_agreements(&who, mode, &identity).await?,
    ))
}

/// `AgreementCancel {mode, identity, brief}`: withdraws the consent (or files the
/// request a user's own withdrawal becomes).
pub async fn cancel(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    Ok(done_or_requested(
        cancel_via(&state, &who, &args, Route::AsAllowed).await?,
    ))
}

/// `AgreementCancelRequest {mode, identity, brief}` → `{requestuuid}`: the
/// withdrawal, filed for the DPO.
pub async fn cancel_request(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    requested(cancel_via(&state, &who, &args, Route::Request).await?)
}

async fn cancel_via(
    state: &AppState,
    who: &Principal,
    args: &Args,
    route: Route,
) -> Result<Outcome> {
    let (mode, identity) = args.person()?;
    let brief = args.text("brief")?;
    let body = args.fields_except(&["mode", "identity", "brief"]);
    state
        .vault
        .withdraw_agreement(who, &brief, mode, &identity, body, route)
        .await
}

/// `AgreementRevokeAll {brief}`: withdraws everyone's consent (root).
pub async fn revoke_all(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .revoke_all_agreements(&who, &args.text("brief")?)
        .await?;
    Ok(ok_fields(&[]))
}

/// The processing activity's fields of a create or update call.
fn activity_fields(args: &Args) -> Map<String, Value> {
    args.fields_except(&["activity", "newactivity"])
}

/// `ProcessingActivityCreate {activity, title?, script?, fulldesc?, applicableto?}`
/// (root): creates it, or changes the one of that name.
pub async fn create_activity(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let activity = args.text("activity")?;
    state
        .vault
        .put_activity(&who, &activity, activity_fields(&args), false)
        .await?;
    Ok(ok_fields(&[]))
}

/// `ProcessingActivityUpdate {activity, newactivity?, …}` (root): changes it, and
/// renames it to `newactivity`.
pub async fn update_activity(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let activity = args.text("activity")?;
    let mut body = activity_fields(&args);
    if let Some(new) = args.get("newactivity") {
        body.insert("activity".into(), new.clone());
    }
    state
        .vault
        .put_activity(&who, &activity, body, true)
        .await?;
    Ok(ok_fields(&[]))
}

/// `ProcessingActivityDelete {activity}` (root).
pub async fn delete_activity(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .delete_activity(&who, &args.text("activity")?)
        .await?;
    Ok(ok_fields(&[]))
}

/// `ProcessingActivityLinkLegalBasis {activity, brief}` (root).
pub async fn link_activity(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .link_activity(&who, &args.text("activity")?, &args.text("brief")?, true)
        .await?;
    Ok(ok_fields(&[]))
}

/// `ProcessingActivityUnlinkLegalBasis {activity, brief}` (root).
pub async fn unlink_activity(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .link_activity(&who, &args.text("activity")?, &args.text("brief")?, false)
        .await?;
    Ok(ok_fields(&[]))
}

/// `ProcessingActivityListActivities {}` → `{total, rows}` (root).
pub async fn list_activities(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    Ok(rows(state.vault.list_activities(&who).await?))
}
