//! v2 tokenization methods (`TokenCreate`, `TokenCreateBulk`, `TokenGet`,
//! `TokenDelete`, `BulkListTokens`, `BulkDeleteTokens`) over the core's
//! `tokenize` service.

use serde_json::{Value, json};
use strongbox_core::expiry::requested_seconds;
use strongbox_core::tokenize::MAX_BULK;
use strongbox_core::{Error, ErrorKind, Result, TokenOptions, TokenType};

use super::bulk::unlocked;
use super::{Args, Reply};
use crate::extract::{Caller, CallerToken, Tenant};
use crate::reply::ok_fields;

/// The options every create method takes: `unique`, `slidingtime`, `finaltime`,
/// and Strongbox's `keepfirst` and `keeplast` for cards.
fn options(args: &Args, now: i64) -> Result<TokenOptions> {
    let unique = match args.get("unique") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::bad_request(
                "The unique parameter must be true or false",
            ));
        }
    };
    let seconds = |name: &str| -> Result<Option<i64>> {
        let s = requested_seconds(args.get(name), now).map_err(|_| {
            Error::bad_request(format!(
                "The {name} parameter has an incorrect format: use a duration like 30d, 12h, 1m (a month) or 1y, seconds, or a Unix time"
            ))
        })?;
        Ok(s.filter(|s| *s > 0))
    };
    let keep = |name: &str| -> Result<usize> {
        match args.get(name) {
            None => Ok(0),
            Some(_) => usize::try_from(args.int(name)?).map_err(|_| {
                Error::bad_request(format!("The {name} parameter has an incorrect format"))
            }),
        }
    };
    Ok(TokenOptions {
        unique,
        sliding: seconds("slidingtime")?,
        final_after: seconds("finaltime")?,
        keep_first: keep("keepfirst")?,
        keep_last: keep("keeplast")?,
    })
}

/// A `tokentype` and `record` of `args`.
fn item(args: &Args) -> Result<(TokenType, String)> {
    let kind = TokenType::parse(&args.text("tokentype")?)?;
    Ok((kind, args.text("record")?))
}

/// `TokenCreate {tokentype, record, unique?, slidingtime?, finaltime?, keepfirst?,
/// keeplast?}` → `{tokenuuid, tokenbase?}`.
pub async fn create(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let opts = options(&args, state.vault.now())?;
    let (kind, record) = item(&args)?;
    let view = state.vault.create_token(&who, kind, &record, opts).await?;
    let mut fields = vec![
        ("tokenuuid", Value::from(view.uuid)),
        ("tokentype", Value::from(kind.name())),
    ];
    if let Some(base) = view.base {
        fields.push(("tokenbase", Value::from(base)));
    }
    if view.duplicate {
        fields.push(("duplicate", Value::Bool(true)));
    }
    Ok(ok_fields(&fields))
}

/// `TokenCreateBulk {records: [{tokentype, record}], unique?, slidingtime?,
/// finaltime?, keepfirst?, keeplast?}` → `{created, duplicates, errors, num,
/// summary}`: each record is tokenized, found again (`unique`) or refused on its own.
pub async fn create_bulk(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    who.require_root()?;
    let records = match args.value("records")? {
        Value::Array(r) if r.is_empty() => {
            return Err(Error::bad_request("The records parameter is empty").into());
        }
        Value::Array(r) if r.len() > MAX_BULK => {
            return Err(Error::bad_request(format!(
                "The records parameter has more than {MAX_BULK} records"
            ))
            .into());
        }
        Value::Array(r) => r,
        _ => return Err(Error::bad_request("The records parameter must be an array").into()),
    };
    let opts = options(&args, state.vault.now())?;
    let items: Vec<Result<(TokenType, String)>> = records
        .into_iter()
        .map(|r| match r {
            Value::Object(fields) => item(&Args::of(fields)),
            _ => Err(Error::bad_request(
                "Each record is an object with tokentype and record",
            )),
        })
        .collect();
    let results = state.vault.create_tokens(&who, &items, opts).await?;
    let (mut created, mut duplicates, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(view) if view.duplicate => duplicates.push(view.to_json()),
            Ok(view) => created.push(view.to_json()),
            Err(e) if e.kind == ErrorKind::Internal || e.kind == ErrorKind::Unavailable => {
                return Err(e.into());
            }
            Err(e) => errors.push(json!({"index": index, "message": e.message})),
        }
    }
    let summary = json!({
        "created": created.len(),
        "duplicates": duplicates.len(),
        "errors": errors.len(),
        "total": created.len() + duplicates.len() + errors.len(),
    });
    Ok(ok_fields(&[
        ("num", Value::from(created.len() + duplicates.len())),
        ("summary", summary),
        ("created", Value::from(created)),
        ("duplicates", Value::from(duplicates)),
        ("errors", Value::from(errors)),
    ]))
}

/// `TokenGet {token}` (its `tokenuuid` or `tokenbase`) → `{record, tokentype,
/// tokenuuid, tokenbase?}`.
pub async fn get(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    let view = state.vault.get_token(&who, &args.text("token")?).await?;
    let Value::Object(fields) = view.to_json() else {
        return Err(Error::internal("a token is not an object").into());
    };
    let fields: Vec<(&str, Value)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    Ok(ok_fields(&fields))
}

/// `TokenDelete {token}` (either form).
pub async fn delete(Tenant(state): Tenant, Caller(who): Caller, args: Args) -> Reply {
    state.vault.delete_token(&who, &args.text("token")?).await?;
    Ok(ok_fields(&[]))
}

/// The `tokens` argument: token texts (either form).
fn tokens(args: &Args) -> Result<Vec<String>> {
    let bad = || Error::bad_request("The tokens parameter must be an array of tokens");
    match args.value("tokens")? {
        Value::Array(t) if t.is_empty() => Err(Error::bad_request("The tokens parameter is empty")),
        Value::Array(t) if t.len() > MAX_BULK => Err(Error::bad_request(format!(
            "The tokens parameter has more than {MAX_BULK} tokens"
        ))),
        Value::Array(t) => t
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// `BulkListTokens {unlockuuid, tokens}` → `{total, rows: [{tokenuuid, tokenbase?,
/// record, tokentype}]}`: the live tokens named, each read audited.
pub async fn bulk_list(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let views = state.vault.list_tokens(&who, &tokens(&args)?).await?;
    let rows: Vec<Value> = views.iter().map(|v| v.to_json()).collect();
    Ok(ok_fields(&[
        ("total", Value::from(rows.len())),
        ("rows", Value::from(rows)),
    ]))
}

/// `BulkDeleteTokens {unlockuuid, tokens}` → `{deleted}`.
pub async fn bulk_delete(
    Tenant(state): Tenant,
    CallerToken(who, token): CallerToken,
    args: Args,
) -> Reply {
    unlocked(&state, &who, &token, &args).await?;
    let deleted = state.vault.delete_tokens(&who, &tokens(&args)?).await?;
    Ok(ok_fields(&[("deleted", Value::from(deleted))]))
}
