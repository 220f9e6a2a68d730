//! `/v1/sys/health`, `/v1/sys/configuration`, `/v1/metrics` and the bulk listing
//! `POST /v1/users`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use strongbox_core::{Error, ErrorKind};

use super::{Reply, ok_fields, page};
use crate::AppState;
use crate::extract::{Caller, OptionalObject, token};

/// How long a health check waits for the database: a load balancer's probe gets an
/// answer even when the database hangs.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// For load balancers, without a token: 200 when the vault is unsealed (this router
/// only runs then; the seal gate answers while sealed) and its database answers
/// within [`HEALTH_TIMEOUT`], else 503 with the reason. Nothing is audited: it reads
/// no personal data and says nothing about any.
pub async fn health(State(state): State<AppState>) -> Response {
    let answered = tokio::time::timeout(HEALTH_TIMEOUT, state.vault.ping()).await;
    let (status, body) = match answered {
        Ok(Ok(())) => (
            StatusCode::OK,
            json!({"status": "ok", "sealed": false, "database": "ok"}),
        ),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "error", "message": "the database cannot be reached",
                "sealed": false, "database": "unreachable",
            }),
        ),
    };
    crate::reply::json_response(status, body.to_string().into_bytes())
}

/// A duration as Databunker's configuration spells one: seconds with an `s`.
fn secs(n: i64) -> Value {
    Value::from(format!("{n}s"))
}

/// The effective configuration, with Databunker's Go field names where it has one
/// (its UI reads them) and Strongbox's own settings under `Strongbox`. No secret is
/// ever shown: the root key and tokens are not part of it, and a metrics token shows
/// only whether it is set.
pub async fn configuration(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    who.require_root()?;
    let c = state.vault.config();
    let configuration = json!({
        "Generic": {
            "CreateUserWithoutAccessToken": c.create_user_without_access_token,
            "UseSeparateAppTables": false,
            "UserRecordSchema": if c.schema.is_some() { "(set)" } else { "" },
            "DisableAudit": false,
            "AdminEmail": "",
            "ListUsers": c.list_users,
        },
        "SelfService": {
            "ForgetMe": c.self_service.forget_me,
            "UserRecordChange": c.self_service.user_record_change,
            "AppRecordChange": c.self_service.app_record_change,
        },
        "Notification": {"NotificationURL": "", "MagicSyncURL": "", "MagicSyncToken": ""},
        "Policy": {
            "MaxUserRetentionPeriod": secs(c.policy.max_user_retention),
            "MaxAuditRetentionPeriod": "",
            "MaxSessionRetentionPeriod": secs(c.policy.max_session_retention),
            "MaxShareableRecordRetentionPeriod": secs(c.policy.max_shareable_record_retention),
        },
        "Sms": {"DefaultCountry": c.normalizer.default_country_code()},
        "UI": Value::Object(state.http.ui.clone()),
        "Strongbox": {
            "DataClassification": c.schema.as_ref().map(|s| json!(s.classification())).unwrap_or(json!({})),
            "MaxUserTokenLifetime": secs(c.policy.max_user_token_lifetime),
            "MaxBodyBytes": state.http.max_body_bytes,
            "MetricsPublic": state.http.metrics_public,
            "MetricsToken": if state.http.metrics_token.is_some() { "(set)" } else { "" },
        },
    });
    Ok(ok_fields(&[("configuration", configuration)]))
}

/// Prometheus text. Needs the root token, or the configured metrics token as
/// `Authorization: Bearer …`, unless metrics are configured public.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    if !state.http.metrics_public {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let scraper = match (&state.http.metrics_token, bearer) {
            (Some(expected), Some(given)) => {
                constant_time_eq(expected.expose().as_bytes(), given.as_bytes())
            }
            _ => false,
        };
        if !scraper {
            if token(&headers).is_none() && bearer.is_some() {
                return Err(Error::new(ErrorKind::Forbidden, "access denied").into());
            }
            state
                .vault
                .authenticate(token(&headers))
                .await?
                .require_root()?;
        }
    }
    let mut resp: Response = (StatusCode::OK, state.metrics.render()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /v1/users`: `{"status":"ok","total":N,"rows":[{"private":"<base64 profile>","token":…}]}`.
pub async fn list_users(State(state): State<AppState>, Caller(who): Caller, uri: Uri) -> Reply {
    let (total, users) = state.vault.list_users(&who, page(&uri)?).await?;
    let rows: Vec<Value> = users
        .into_iter()
        .map(|(token, profile)| json!({"private": base64(&profile), "token": token}))
        .collect();
    Ok(ok_fields(&[
        ("total", Value::from(total)),
        ("rows", Value::from(rows)),
    ]))
}

/// Standard base64 with padding (how Go marshals the `[]byte` Databunker returns).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A response body fed by a channel of chunks. An error ends the response
/// abruptly, so that a client never takes a cut-short body for a whole one.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>);

impl http_body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.poll_recv(cx).map(|item| {
            item.map(|chunk| {
                chunk
                    .map(|bytes| http_body::Frame::data(axum::body::Bytes::from(bytes)))
                    .map_err(std::io::Error::other)
            })
        })
    }
}

/// `GET /v1/sys/backup`: the whole store as a backup file, streamed as it is read
/// (root only; audited).
pub async fn backup(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let chunks = state.vault.backup(&who).await?;
    let mut resp: Response =
        (StatusCode::OK, axum::body::Body::new(ChannelBody(chunks))).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"strongbox.backup\""),
    );
    Ok(resp)
}

/// `POST /v1/sys/rotate/kek`: a new KEK version (root).
pub async fn rotate_kek(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let version = state.vault.rotate_kek(&who).await?;
    Ok(ok_fields(&[
        ("version", Value::from(version)),
        (
            "activates_in",
            Value::from(strongbox_core::keys::KEK_ACTIVATION),
        ),
    ]))
}

/// `POST /v1/sys/rotate/root-token`: a new root token, answered once (root). The
/// old one stops working on every node within a second.
pub async fn rotate_root_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    OptionalObject(body): OptionalObject,
) -> Reply {
    let new = match body.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(_) => return Err(Error::bad_request("bad token: expected a string").into()),
    };
    let token = state.vault.rotate_root_token(&who, new).await?;
    Ok(ok_fields(&[("token", Value::from(token))]))
}

/// `GET /v1/sys/rotate/kek`: where the re-wrap stands (root).
pub async fn kek_status(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let status = state.vault.kek_status(&who).await?;
    let fields: Vec<(&str, Value)> = ["current", "newest", "versions", "remaining", "total"]
        .iter()
        .map(|k| (*k, status[*k].clone()))
        .collect();
    Ok(ok_fields(&fields))
}

/// `POST /v1/sys/rotate/index`: a new blind-index key version (root).
pub async fn rotate_index(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let version = state.vault.rotate_index(&who).await?;
    Ok(ok_fields(&[
        ("version", Value::from(version)),
        (
            "activates_in",
            Value::from(strongbox_core::keys::KEK_ACTIVATION),
        ),
    ]))
}

/// `GET /v1/sys/rotate/index`: where the backfill stands (root).
pub async fn index_status(State(state): State<AppState>, Caller(who): Caller) -> Reply {
    let status = state.vault.index_status(&who).await?;
    let fields: Vec<(&str, Value)> = [
        "current",
        "newest",
        "versions",
        "remaining",
        "total",
        "pending_consents",
        "stuck",
    ]
    .iter()
    .map(|k| (*k, status[*k].clone()))
    .collect();
    Ok(ok_fields(&fields))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
