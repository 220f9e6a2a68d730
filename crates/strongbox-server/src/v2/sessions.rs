//! v2 session and shared-record methods, over the v1 services.

use serde_json::{Value, json};

use super::{Args, Reply};
use crate::extract::{Caller, Client, Tenant};
use crate::reply::ok_fields;

/// `SessionUpsert {sessionuuid, sessiondata, finaltime?}`: `sessiondata` is the
/// session (a `login`, `email`, `phone` or `token` in it links it to the person);
/// `finaltime` is v1's `expiration`.
pub async fn upsert(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let sid = args.text("sessionuuid")?;
    let mut body = args.object("sessiondata")?;
    if let Some(end) = args.get("finaltime") {
        body.insert("expiration".into(), end.clone());
    }
    state.vault.put_session(&who, &sid, body).await?;
    Ok(ok_fields(&[]))
}

/// `SessionGet {sessionuuid}` → `{sessiondata}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let s = state
        .vault
        .get_session(&who, &args.text("sessionuuid")?)
        .await?;
    Ok(ok_fields(&[("sessiondata", s.data)]))
}

/// `SessionDelete {sessionuuid}`.
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .delete_session(&who, &args.text("sessionuuid")?)
        .await?;
    Ok(ok_fields(&[]))
}

/// `SessionListUserSessions {mode, identity, offset?, limit?}` →
/// `{total, rows: [{sessionuuid, sessiondata}]}`.
pub async fn list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let (total, rows) = state
        .vault
        .list_sessions(&who, mode, &identity, args.page()?)
        .await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|s| json!({"sessionuuid": s.session, "sessiondata": s.data}))
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `SharedRecordCreate {mode, identity, fields?, partner?, appname?, finaltime?}` →
/// `{recorduuid}`.
pub async fn share(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let mut body = args.fields_except(&["mode", "identity", "appname", "finaltime"]);
    if let Some(app) = args.get("appname") {
        body.insert("app".into(), app.clone());
    }
    if let Some(end) = args.get("finaltime") {
        body.insert("expiration".into(), end.clone());
    }
    let record = state
        .vault
        .create_share(&who, mode, &identity, body)
        .await?;
    Ok(ok_fields(&[("recorduuid", Value::from(record))]))
}

/// `SharedRecordGet {recorduuid}` → `{data}`: no token (the id is the capability),
/// and an unknown id counts as a failed attempt of the address.
pub async fn get_shared(Tenant(state): Tenant, Client(client): Client, args: Args) -> Reply {
    let record = args.text("recorduuid")?;
    match state.vault.get_share(&record).await {
        Ok(view) => {
            let mut fields = vec![("data", view.data)];
            if let Some(app) = view.app {
                fields.push(("appname", Value::from(app)));
            }
            Ok(ok_fields(&fields))
        }
        Err(e) if e.kind == strongbox_core::ErrorKind::NotFound => {
            Err(crate::extract::failed_attempt(&state, client, e).await)
        }
        Err(e) => Err(e.into()),
    }
}
