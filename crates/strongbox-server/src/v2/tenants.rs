//! v2 tenant methods: create, read, change, delete and list the tenants of this
//! vault (`TenantCreate` and `TenantListTenants`, and deleting: the main tenant's
//! root only; a tenant's admin may read and change its own entry).

use serde_json::{Value, json};
use strongbox_core::Result;
use strongbox_core::tenants::TenantInfo;

use super::{Args, Reply};
use crate::extract::{Caller, Tenant};
use crate::reply::ok_fields;

fn row(t: &TenantInfo) -> Value {
    json!({"tenantid": t.id, "tenantname": t.name, "tenantorg": t.org})
}

/// An optional text argument.
fn optional_text(args: &Args, name: &str) -> Result<Option<String>> {
    match args.get(name) {
        None => Ok(None),
        Some(_) => args.text(name).map(Some),
    }
}

/// `TenantCreate {tenantname, tenantorg, email?}` → `{tenantid, xtoken}`: the new
/// tenant's admin token, shown this once.
pub async fn create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let name = args.text("tenantname")?;
    let org = args.text("tenantorg")?;
    // `email` is accepted and not kept (nothing reads it back).
    let (id, token) = state.vault.create_tenant(&who, &name, &org).await?;
    Ok(ok_fields(&[
        ("tenantid", Value::from(id)),
        ("tenantname", Value::from(name)),
        ("xtoken", Value::from(token)),
    ]))
}

/// `TenantGet {tenantid}` → `{tenantid, tenantname, tenantorg}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let t = state.vault.get_tenant(&who, args.int("tenantid")?).await?;
    Ok(ok_fields(&[
        ("tenantid", Value::from(t.id)),
        ("tenantname", Value::from(t.name)),
        ("tenantorg", Value::from(t.org)),
    ]))
}

/// `TenantUpdate {tenantid?, tenantname?, tenantorg?}`: without `tenantid`, the
/// calling tenant (`email` is accepted and not kept).
pub async fn update(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let id = match args.get("tenantid") {
        None => state.vault.tenant_id(),
        Some(_) => args.int("tenantid")?,
    };
    state
        .vault
        .update_tenant(
            &who,
            id,
            optional_text(&args, "tenantname")?.as_deref(),
            optional_text(&args, "tenantorg")?.as_deref(),
        )
        .await?;
    Ok(ok_fields(&[]))
}

/// `TenantDelete {tenantid}`: crypto-shreds the tenant (main tenant root).
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state
        .vault
        .delete_tenant(&who, args.int("tenantid")?)
        .await?;
    Ok(ok_fields(&[]))
}

/// `TenantListTenants {offset?, limit?}` → `{total, rows}` (main tenant root).
pub async fn list(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let (total, tenants) = state.vault.list_tenants(&who, args.page()?).await?;
    let rows: Vec<Value> = tenants.iter().map(row).collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}
