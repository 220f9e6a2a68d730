//! v2 app-data methods: the v1 `userapp` service under Databunker Pro's names.

use serde_json::Value;
use strongbox_core::{Change, Outcome, Principal, Result, Route};

use super::{Args, Reply, done_or_requested, requested};
use crate::AppState;
use crate::extract::{Caller, Tenant};
use crate::reply::ok_fields;

/// `AppdataCreate {mode, identity, appname, appdata}`: stores the document.
pub async fn create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let app = args.text("appname")?;
    let doc = args.object("appdata")?;
    let done = state
        .vault
        .put_app(&who, mode, &identity, &app, doc)
        .await?;
    Ok(done_or_requested(done))
}

/// `AppdataGet {mode, identity, appname}` → `{appdata}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let app = args.text("appname")?;
    let (_, data) = state.vault.get_app(&who, mode, &identity, &app).await?;
    Ok(ok_fields(&[("appdata", data)]))
}

/// `AppdataUpdate {mode, identity, appname, appdata}`: merged into the document.
pub async fn update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    Ok(done_or_requested(
        update_via(&state, &who, &args, Route::AsAllowed).await?,
    ))
}

/// `AppdataUpdateRequest {mode, identity, appname, appdata}` → `{requestuuid}`: the
/// merge, filed for the DPO.
pub async fn update_request(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    requested(update_via(&state, &who, &args, Route::Request).await?)
}

async fn update_via(
    state: &AppState,
    who: &Principal,
    args: &Args,
    route: Route,
) -> Result<Outcome> {
    let (mode, identity) = args.person()?;
    let app = args.text("appname")?;
    let change = Change::from_json(Value::Object(args.object("appdata")?))?;
    state
        .vault
        .update_app(who, mode, &identity, &app, change, route)
        .await
}

/// `AppdataDelete {mode, identity, appname}`.
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let app = args.text("appname")?;
    state.vault.delete_app(&who, mode, &identity, &app).await?;
    Ok(ok_fields(&[]))
}

/// `AppdataListUserAppNames {mode, identity}` → `{apps}`.
pub async fn list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let (_, apps) = state.vault.list_user_apps(&who, mode, &identity).await?;
    Ok(ok_fields(&[("apps", Value::from(apps))]))
}

/// `AppdataListAppNames {}` → `{apps}` (root).
pub async fn list_all(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    let apps = state.vault.list_app_names(&who).await?;
    Ok(ok_fields(&[("apps", Value::from(apps))]))
}
