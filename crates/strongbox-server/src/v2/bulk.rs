//! v2 bulk listings behind the unlock gate (`BulkListUnlock`, then `BulkList*` with
//! its `unlockuuid`): root only, the unlock bound to the token that asked for it.
//! Listings of people also need `--list-users true`, as `POST /v1/users` does.

use serde_json::{Value, json};
use strongbox_core::{Error, ErrorKind, Mode, Principal, Result};

use super::audit::v2_event;
use super::{Args, Reply};
use crate::AppState;
use crate::extract::{CallerToken, Tenant};
use crate::reply::ok_fields;

/// Most people one `BulkListUsers` call may name.
const MAX_PEOPLE: usize = 1000;

/// `BulkListUnlock {}` → `{unlockuuid}`: an unlock for 60 seconds.
pub async fn unlock(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    _args: Args,
) -> Reply {
    let unlock = state.vault.bulk_unlock(&who, &token).await?;
    Ok(ok_fields(&[("unlockuuid", Value::from(unlock))]))
}

/// The gate every bulk listing passes: a valid unlock of this caller's token.
pub(super) async fn unlocked(
    state: &AppState,
    who: &Principal,
    token: &str,
    args: &Args,
) -> Result<()> {
    let unlock = match args.get("unlockuuid") {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    state.vault.check_bulk_unlock(who, token, unlock).await
}

/// Listings of people are off unless `--list-users true`.
fn people_listing_allowed(state: &AppState, method: &str) -> Result<()> {
    if state.vault.config().list_users {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Forbidden,
            format!("{method} is disabled"),
        ))
    }
}

/// A person as listed: their token and profile.
pub(super) fn user_row(token: String, profile: &[u8]) -> Result<Value> {
    let profile: Value = serde_json::from_slice(profile).map_err(Error::internal)?;
    Ok(json!({"token": token, "profile": profile}))
}

/// `BulkListUsers {unlockuuid, users: [{mode, identity}]}` → `{total, rows}`: the
/// people named (those not in the vault are left out).
pub async fn list_users(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    people_listing_allowed(&state, "BulkListUsers")?;
    let users = match args.value("users")? {
        Value::Array(users) if users.is_empty() => {
            return Err(Error::bad_request("The users parameter is empty").into());
        }
        Value::Array(users) if users.len() > MAX_PEOPLE => {
            return Err(Error::bad_request(format!(
                "The users parameter names more than {MAX_PEOPLE} people"
            ))
            .into());
        }
        Value::Array(users) => users,
        _ => {
            return Err(Error::bad_request("The users parameter must be an array").into());
        }
    };
    let mut people = Vec::with_capacity(users.len());
    for u in &users {
        let mode = u["mode"]
            .as_str()
            .and_then(|m| Mode::parse(m).ok())
            .ok_or_else(|| Error::bad_request("The mode parameter has an incorrect format"))?;
        let identity = match &u["identity"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(Error::bad_request("Missing API request parameters: identity").into()),
        };
        people.push((mode, identity));
    }
    let found = state.vault.bulk_get_users(&who, &people).await?;
    let rows = found
        .into_iter()
        .map(|u| {
            user_row(
                u.token,
                u.profile.as_deref().map_or(b"{}".as_slice(), Vec::as_slice),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// `BulkListAllUsers {unlockuuid, offset?, limit?}` → `{total, rows}`.
pub async fn list_all_users(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    people_listing_allowed(&state, "BulkListAllUsers")?;
    let (total, users) = state.vault.list_users(&who, args.page()?).await?;
    let rows = users
        .into_iter()
        .map(|(token, profile)| user_row(token, &profile))
        .collect::<Result<Vec<_>>>()?;
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `BulkListAllUserRequests {unlockuuid, status?, offset?, limit?}` →
/// `{total, rows}`: every request (or those of one status), newest change first.
pub async fn list_all_requests(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let status = match args.get("status") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Error::bad_request("The status parameter has an incorrect format").into());
        }
    };
    let (total, rows) = state
        .vault
        .list_requests(&who, status.as_deref(), args.page()?)
        .await?;
    let rows: Vec<Value> = rows.into_iter().map(super::requests::v2_request).collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `BulkListAllAuditEvents {unlockuuid, offset?, limit?}` → `{total, rows}`: the
/// whole audit log, newest first.
pub async fn list_all_audit(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let (total, rows) = state.vault.list_audit(&who, args.page()?).await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| Value::Object(v2_event(r)))
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `UserSearch {identity, unlockuuid, limit}` → `{total, rows: [{token, profile,
/// version, score}]}`: the people whose login, phone or custom value (email, when
/// `identity` holds an `@`) is close to `identity`, best first (`--search true`).
pub async fn search_users(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let identity = args.text("identity")?;
    let found = state
        .vault
        .search_users(&who, &identity, search_limit(&args)?)
        .await?;
    let rows = found
        .into_iter()
        .map(|f| {
            let mut row = user_row(f.token, &f.profile)?;
            row["version"] = Value::from(f.version);
            row["score"] = score(f.score);
            Ok(row)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// A search's score as answered: three decimals.
pub(super) fn score(s: f64) -> Value {
    json!((s * 1000.0).round() / 1000.0)
}

/// A search's `limit` (1–100, default 100).
pub(super) fn search_limit(args: &Args) -> Result<usize> {
    let max = strongbox_core::search::MAX_RESULTS;
    match args.get("limit") {
        None | Some(Value::Null) => Ok(max),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(l) if l >= 1 => Ok((l as usize).min(max)),
            _ => Err(Error::bad_request(
                "The limit parameter has an incorrect format",
            )),
        },
        Some(_) => Err(Error::bad_request(
            "The limit parameter has an incorrect format",
        )),
    }
}
