//! v2 system methods: the vault's counts, and a person's export.

use serde_json::json;

use super::{Args, Reply};
use crate::extract::{Caller, Tenant};
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
