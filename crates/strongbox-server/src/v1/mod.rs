//! Databunker's v1 REST API: same paths, same JSON. One submodule per resource; the
//! response helpers here (Databunker's field order, request outcomes, paging) are
//! shared by all of them, the extractors by every API (`crate::extract`).

mod apps;
mod audit;
mod consent;
mod requests;
mod retention;
mod sessions;
mod shares;
mod system;
mod tokens;
mod users;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::Value;
use strongbox_core::{Error, Outcome, Page, Result};

use crate::AppState;
use crate::error::{ApiError, error_response};
use crate::extract::{Caller, Params};
use crate::reply::json_response;

/// What every handler returns.
type Reply = std::result::Result<Response, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/sys/health", get(system::health))
        .route("/v1/status/", get(status))
        .route("/status", get(status))
        .route("/status/", get(status))
        // The official Node client posts to the trailing-slash form.
        .route("/v1/user", post(users::create))
        .route("/v1/user/", post(users::create))
        .route(
            "/v1/user/{mode}/{identity}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route(
            "/v1/userapp/{mode}/{identity}/{app}",
            get(apps::get)
                .post(apps::create)
                .put(apps::update)
                .delete(apps::delete),
        )
        .route("/v1/userapp/{mode}/{identity}", get(apps::list_of_user))
        .route("/v1/userapps", get(apps::names))
        .route(
            "/v1/session/{session}",
            get(sessions::get)
                .post(sessions::create)
                .delete(sessions::delete),
        )
        .route("/v1/sessions/{mode}/{identity}", get(sessions::list))
        .route("/v1/xtoken/{mode}/{identity}", post(tokens::issue))
        .route("/v1/xtoken/{xtoken}", delete(tokens::revoke))
        .route(
            "/v1/request/{rtoken}",
            get(requests::get)
                .post(requests::approve)
                .delete(requests::cancel),
        )
        .route("/v1/requests", get(requests::list_all))
        .route(
            "/v1/requests/{mode}/{identity}",
            get(requests::list_of_user),
        )
        .route("/v1/audit/admin", get(audit::admin))
        // Databunker's admin page asks for the trailing-slash form.
        .route("/v1/audit/admin/", get(audit::admin))
        .route("/v1/audit/list/{token}", get(audit::list))
        .route("/v1/audit/get/{atoken}", get(audit::get))
        .route("/v1/audit/publickey", get(audit::public_key))
        .route(
            "/v1/audit/checkpoint",
            get(audit::checkpoint).post(audit::make_checkpoint),
        )
        .route("/v1/audit/receipt/{token}", get(audit::receipt))
        .route("/v1/audit/report/{token}", get(audit::report))
        .route("/v1/sharedrecord/{mode}/{identity}", post(shares::create))
        .route("/v1/get/{record}", get(shares::get))
        .route("/v1/exp/start/{mode}/{identity}", post(retention::start))
        .route("/v1/exp/status/{mode}/{identity}", get(retention::status))
        .route(
            "/v1/exp/cancel/{mode}/{identity}",
            delete(retention::cancel),
        )
        // A GET only shows a confirming page (mail scanners follow links); the POST
        // it submits acts.
        .route(
            "/v1/exp/retain/{exptoken}",
            get(retention::retain_page).post(retention::retain),
        )
        .route(
            "/v1/exp/delete/{exptoken}",
            get(retention::delete_page).post(retention::delete),
        )
        .route("/v1/sys/configuration", get(system::configuration))
        .route("/v1/sys/backup", get(system::backup))
        .route(
            "/v1/sys/rotate/kek",
            get(system::kek_status).post(system::rotate_kek),
        )
        .route("/v1/sys/rotate/root-token", post(system::rotate_root_token))
        .route(
            "/v1/sys/rotate/index",
            get(system::index_status).post(system::rotate_index),
        )
        .route("/v1/metrics", get(system::metrics))
        .route("/v1/users", post(system::list_users))
        .route("/v1/lbasis", get(consent::list_legal_bases))
        .route(
            "/v1/lbasis/{brief}",
            post(consent::put_legal_basis).delete(consent::delete_legal_basis),
        )
        .route(
            "/v1/agreement/{brief}/{mode}/{identity}",
            get(consent::get_agreement)
                .post(consent::accept_agreement)
                .delete(consent::withdraw_agreement),
        )
        .route("/v1/agreement/{brief}", delete(consent::revoke_all))
        .route(
            "/v1/agreements/{mode}/{identity}",
            get(consent::list_agreements),
        )
        .route("/v1/pactivity", get(consent::list_activities))
        .route(
            "/v1/pactivity/{activity}",
            post(consent::put_activity).delete(consent::delete_activity),
        )
        .route(
            "/v1/pactivity/{activity}/{brief}",
            post(consent::link_activity).delete(consent::unlink_activity),
        )
        .route("/v1/sys/cookiesettings", get(consent::cookie_settings))
        .route("/v1/sys/uiconfiguration", get(consent::ui_configuration))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "endpoint is missing") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
}

/// Reference endpoints for the load benchmark (off unless configured).
pub fn bench_routes() -> Router<AppState> {
    Router::new().route("/bench/lookup/{token}", get(bench_lookup))
}

async fn bench_lookup(
    State(state): State<AppState>,
    Caller(_): Caller,
    Params(token): Params<String>,
) -> Reply {
    if state.vault.probe_user_row(&token).await? {
        Ok(ok_json("result", "found"))
    } else {
        Err(Error::not_found("not found").into())
    }
}

/// `{"status":"ok","<key>":"<value>"}` in Databunker's field order.
fn ok_json(key: &str, value: &str) -> Response {
    ok_fields(&[(key, Value::from(value))])
}

/// `{"status":"ok", …fields}` with the fields in the given order (Databunker's).
fn ok_fields(fields: &[(&str, Value)]) -> Response {
    let mut out = String::from(r#"{"status":"ok""#);
    for (key, value) in fields {
        out.push_str(&format!(",{}:{}", Value::from(*key), value));
    }
    out.push('}');
    json_response(StatusCode::OK, out.into_bytes())
}

/// The answer to an action a user may have turned into a DPO request: `done` renders
/// the carried-out case; a request is `{"status":"ok","result":"request-created",
/// "rtoken":…}` (or `request-exists`), as in Databunker.
fn outcome(o: Outcome, done: impl FnOnce(String) -> Response) -> Response {
    match o {
        Outcome::Done(token) => done(token),
        Outcome::Requested { rtoken, existed } => ok_fields(&[
            (
                "result",
                Value::from(if existed {
                    "request-exists"
                } else {
                    "request-created"
                }),
            ),
            ("rtoken", Value::from(rtoken)),
        ]),
    }
}

/// A query-string parameter.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `offset` and `limit` from the query string.
fn page(uri: &Uri) -> Result<Page> {
    Page::parse(
        query_param(uri, "offset").as_deref(),
        query_param(uri, "limit").as_deref(),
    )
}

/// `OK` (Databunker's answer), or 503 saying why the vault refuses work: without its
/// audit log it answers neither changes nor reads of personal data.
async fn status(State(state): State<AppState>) -> Response {
    match state.vault.audit_unavailable().await {
        None => (StatusCode::OK, "OK").into_response(),
        Some(why) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "audit log unavailable: {why}; changes and reads of personal data are refused until it is back"
            ),
        ),
    }
}
