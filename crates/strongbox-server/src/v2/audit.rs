//! v2 audit methods: the v1 audit log under Databunker Pro's names.

use serde_json::{Map, Value};

use super::{Args, Reply};
use crate::extract::{Caller, Tenant};
use crate::reply::ok_fields;

/// An event as v2 lists it: v1's fields (`atoken`, `when`, `title`, `action`,
/// `status`, `identity`, `record`, `app`, `more`), with `auditeventuuid`,
/// `eventtype` and `timestamp`.
pub(super) fn v2_event(listed: Value) -> Map<String, Value> {
    let Value::Object(mut m) = listed else {
        return Map::new();
    };
    for (v2, v1) in [
        ("auditeventuuid", "atoken"),
        ("eventtype", "title"),
        ("timestamp", "when"),
    ] {
        if let Some(v) = m.get(v1).cloned() {
            m.insert(v2.into(), v);
        }
    }
    m
}

/// `AuditListUserEvents {mode, identity, offset?, limit?}` → `{total, rows}`: the
/// events about a person, newest first (root, or that person).
pub async fn list_of_user(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let (total, rows) = state
        .vault
        .list_audit_of_person(&who, mode, &identity, args.page()?)
        .await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| Value::Object(v2_event(r)))
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// `AuditGetEvent {auditeventuuid}` → `{eventtype, timestamp, details, event}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let view = state
        .vault
        .get_audit_event(&who, &args.text("auditeventuuid")?)
        .await?;
    let event = v2_event(view.listed);
    let field = |k: &str| event.get(k).cloned().unwrap_or(Value::Null);
    Ok(ok_fields(&[
        ("eventtype", field("eventtype")),
        ("timestamp", field("timestamp")),
        ("details", view.detail),
        ("event", Value::Object(event)),
    ]))
}
