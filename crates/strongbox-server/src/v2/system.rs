//! v2 system methods: the vault's counts, and a person's export.

use serde_json::json;

use super::bulk::unlocked;
use super::{Args, Reply};
use crate::extract::{Caller, CallerToken, Tenant};
use crate::reply::ok_fields;

/// `SystemGetSystemStats {}` → `{stats: {numusers, numtenants, numtokens,
/// numsessions}}` (root).
pub async fn stats(Tenant(state): Tenant, Caller(who): Caller, _args: Args) -> Reply {
    let s = state.vault.system_stats(&who).await?;
    Ok(ok_fields(&[(
        "stats",
        json!({
            "numusers": s.users,
            "numtenants": s.tenants,
            "numtokens": s.tokens,
            "numsessions": s.sessions,
        }),
    )]))
}

/// `SystemGetUserReport {mode, identity}` → `{report}`: everything held about the
/// person, as one audited read (root, or the person).
pub async fn user_report(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let report = state.vault.export_person(&who, mode, &identity).await?;
    Ok(ok_fields(&[("report", report)]))
}

/// `SystemGetUserHTMLReport {mode, identity}` → `{html}`: the same export as
/// `SystemGetUserReport`, as a self-contained HTML page (every value escaped; no
/// script, no external resource) a DPO can hand to the person.
pub async fn user_html_report(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (mode, identity) = args.person()?;
    let report = state.vault.export_person(&who, mode, &identity).await?;
    Ok(ok_fields(&[(
        "html",
        serde_json::Value::from(html_report(&report)),
    )]))
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as HTML: objects as definition lists, arrays as lists, the rest as
/// escaped text.
fn html_value(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("<p><em>none</em></p>"),
        Value::Object(m) => {
            out.push_str("<dl>");
            for (k, v) in m {
                out.push_str("<dt>");
                out.push_str(&escape(k));
                out.push_str("</dt><dd>");
                html_value(v, out);
                out.push_str("</dd>");
            }
            out.push_str("</dl>");
        }
        Value::Array(a) if a.is_empty() => out.push_str("<p><em>none</em></p>"),
        Value::Array(a) => {
            out.push_str("<ol>");
            for v in a {
                out.push_str("<li>");
                html_value(v, out);
                out.push_str("</li>");
            }
            out.push_str("</ol>");
        }
        Value::String(s) => out.push_str(&escape(s)),
        other => out.push_str(&escape(&other.to_string())),
    }
}

fn html_report(report: &serde_json::Value) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Your data</title></head><body><h1>Everything held about you</h1>",
    );
    out.push_str("<p>Generated ");
    out.push_str(&escape(report["generated_at"].as_str().unwrap_or("")));
    out.push_str("</p>");
    for (key, title) in [
        ("profile", "Profile"),
        ("apps", "Application data"),
        ("agreements", "Consents"),
        ("requests", "Requests"),
        ("sessions", "Sessions"),
        ("audit", "Who accessed your data"),
    ] {
        out.push_str("<h2>");
        out.push_str(title);
        out.push_str("</h2>");
        html_value(&report[key], &mut out);
    }
    out.push_str("</body></html>");
    out
}

/// The tenant a cross-tenant call names: `tenantid` or `tenantname`, if any.
fn tenant_ref(args: &Args) -> strongbox_core::Result<Option<strongbox_core::tenants::TenantRef>> {
    use strongbox_core::tenants::TenantRef;
    if args.get("tenantid").is_some() {
        return Ok(Some(TenantRef::Id(args.int("tenantid")?)));
    }
    if args.get("tenantname").is_some() {
        return Ok(Some(TenantRef::Name(args.text("tenantname")?)));
    }
    Ok(None)
}

/// `SystemDeleteUserProfiles {mode, identity, unlockuuid, tenantid | tenantname}`
/// → `{total, rows: [{token, tenantid, tenantname}]}`: a soft delete, across
/// tenants unless one is named (the main tenant's root).
pub async fn delete_profiles(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let (mode, identity) = args.person()?;
    let hidden = state
        .vault
        .system_delete_profiles(&who, mode, &identity, tenant_ref(&args)?.as_ref())
        .await?;
    let rows: Vec<serde_json::Value> = hidden
        .iter()
        .map(strongbox_core::trash::hidden_json)
        .collect();
    Ok(ok_fields(&[
        ("total", json!(rows.len())),
        ("rows", json!(rows)),
    ]))
}

/// `SystemRestoreUserProfile {token, unlockuuid, tenantid | tenantname}` →
/// `{result: "restored", token, profile}`.
pub async fn restore_profile(
    Tenant(state): Tenant,
    CallerToken(who, caller): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &caller, &args).await?;
    let token = args.text("token")?;
    let profile = state
        .vault
        .system_restore_profile(&who, &token, tenant_ref(&args)?.as_ref())
        .await?;
    Ok(ok_fields(&[
        ("result", json!("restored")),
        ("token", json!(token)),
        ("profile", profile),
    ]))
}

/// `SystemGetUserProfiles {mode, identity, unlockuuid, tenantid | tenantname}` →
/// `{total, rows: [{tenantid, tenantname, token, profile}]}`: one person's
/// profiles across tenants (the main tenant's root).
pub async fn get_profiles(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let (mode, identity) = args.person()?;
    let found = state
        .vault
        .system_get_profiles(&who, mode, &identity, tenant_ref(&args)?.as_ref())
        .await?;
    let rows: Vec<serde_json::Value> = found
        .into_iter()
        .map(|(h, profile)| {
            let mut row = strongbox_core::trash::hidden_json(&h);
            row["profile"] = profile;
            row
        })
        .collect();
    Ok(ok_fields(&[
        ("total", json!(rows.len())),
        ("rows", json!(rows)),
    ]))
}

/// `SystemSearchUserProfiles {identity, unlockuuid, limit}` → `{total, rows:
/// [{tenantid, tenantname, token, profile, score}]}`: `UserSearch` in every tenant
/// (the main tenant's root), best first.
pub async fn search_profiles(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let identity = args.text("identity")?;
    let found = state
        .vault
        .system_search_profiles(&who, &identity, super::bulk::search_limit(&args)?)
        .await?;
    let rows = found
        .into_iter()
        .map(|(h, f)| {
            let mut row = strongbox_core::trash::hidden_json(&h);
            row["profile"] =
                serde_json::from_slice(&f.profile).map_err(strongbox_core::Error::internal)?;
            row["score"] = super::bulk::score(f.score);
            Ok(row)
        })
        .collect::<strongbox_core::Result<Vec<_>>>()?;
    Ok(ok_fields(&[
        ("total", json!(rows.len())),
        ("rows", json!(rows)),
    ]))
}
