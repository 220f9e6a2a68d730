//! Databunker's v1 REST API: same paths, same JSON. One submodule per resource; the
//! response helpers here (Databunker's field order, request outcomes, paging) are
//! shared by all of them, the extractors by every API (`crate::extract`).

mod apps;
mod audit;
mod consent;
mod login;
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
use axum::routing::get;
use serde_json::{Value, json};
use strongbox_core::{Error, Outcome, Page, Result};

use crate::AppState;
use crate::error::{ApiError, error_response};
use crate::extract::{Caller, Params};
use crate::openapi::{
    Api, Auth, Body, Op, array, boolean, integer, listing, object, ok, or_request, string,
};
use crate::reply::ok_fields;

/// What every handler returns.
type Reply = std::result::Result<Response, ApiError>;

/// Databunker's v1 API: every route with its entry in the API document.
pub fn api() -> Api<AppState> {
    let user_path = "/v1/user/{mode}/{identity}";
    let app_path = "/v1/userapp/{mode}/{identity}/{app}";
    let token = || ok(&[("token", string())]);
    let done = || ok(&[("result", json!({"const": "done"}))]);
    let share_row = json!({
        "type": "object",
        "required": ["status", "data"],
        "properties": {
            "status": {"const": "ok"},
            "app": string(),
            "session": string(),
            "data": object(),
        },
    });
    let request = json!({
        "type": "object",
        "required": ["status", "original"],
        "properties": {
            "status": {"const": "ok"},
            "app": string(),
            "original": {},
            "change": {},
        },
    });
    let key_status = |extra: &[(&str, Value)]| {
        let mut fields = vec![
            ("current", integer()),
            ("newest", integer()),
            ("versions", array(integer())),
            ("remaining", integer()),
            ("total", integer()),
        ];
        fields.extend(extra.iter().cloned());
        ok(&fields)
    };
    let rotated = || ok(&[("version", integer()), ("activates_in", integer())]);
    let status_op = || {
        Op::get("/v1/status", "status", "Liveness, as Databunker answers it")
            .auth(Auth::Public)
            .ok_other("text/plain", "`OK`.")
            .describe("`OK` while the vault can work; 503 with the reason when its audit log is unavailable.")
    };

    let metrics_op = || {
        Op::get("/v1/metrics", "metrics", "Prometheus metrics")
            .auth(Auth::TokenOrBearer)
            .ok_other("text/plain", "Prometheus text format 0.0.4.")
            .describe("Also at `/metrics`, where Databunker Pro's clients read it; `http_requests_total{method,path,status}` counts requests by route template.")
    };

    Api::new()
        .section("System")
        .op(status_op(), status)
        .alias("/v1/status/", "statusSlash", status_op(), status)
        .alias("/status", "statusRoot", status_op(), status)
        .alias("/status/", "statusRootSlash", status_op(), status)
        .op(
            Op::get("/v1/sys/health", "health", "Health for load balancers")
                .auth(Auth::Public)
                .describe("200 when the vault is unsealed and its database answers within 2 seconds; 503 with `sealed` and `database` saying why not.")
                .ok(ok(&[("sealed", boolean()), ("database", string())])),
            system::health,
        )
        .op(
            Op::get("/openapi.json", "openapi", "This document")
                .auth(Auth::Public)
                .ok(object()),
            crate::openapi_json,
        )
        .op(metrics_op(), system::metrics)
        .alias("/metrics", "metricsRoot", metrics_op(), system::metrics)
        .op(
            Op::get("/v1/sys/configuration", "configuration", "The effective configuration (root)")
                .ok(ok(&[("configuration", object())])),
            system::configuration,
        )
        .op(
            Op::get("/v1/sys/backup", "backup", "A backup of the whole store (root; audited)")
                .ok_other("application/x-ndjson", "The backup file, streamed as it is read."),
            system::backup,
        )
        .op(
            Op::get("/v1/sys/rotate/kek", "kekStatus", "Where the KEK re-wrap stands (root)")
                .ok(key_status(&[])),
            system::kek_status,
        )
        .op(
            Op::post("/v1/sys/rotate/kek", "rotateKek", "Start a new KEK version (root)")
                .conflict()
                .ok(rotated()),
            system::rotate_kek,
        )
        .op(
            Op::post("/v1/sys/rotate/root-token", "rotateRootToken", "Replace the root token (root)")
                .describe("Body `{\"token\": …}` to choose it, or empty for a random one; the new token is answered once.")
                .body(Body::Object { required: false })
                .ok(token()),
            system::rotate_root_token,
        )
        .op(
            Op::get("/v1/sys/rotate/index", "indexStatus", "Where the blind-index backfill stands (root)")
                .ok(key_status(&[("pending_consents", integer()), ("stuck", integer())])),
            system::index_status,
        )
        .op(
            Op::post("/v1/sys/rotate/index", "rotateIndex", "Start a new blind-index key version (root)")
                .conflict()
                .ok(rotated()),
            system::rotate_index,
        )
        .op(
            Op::get("/v1/sys/loginsettings", "loginSettings", "What the login page needs")
                .auth(Auth::Public)
                .describe("A Strongbox addition: whether prelogin checks a captcha, which login modes have their codes sent (`delivery.email`, `delivery.phone`), and the active legal bases of module `login`, which the page asks consent for and passes to `/v1/login/…?consent=`.")
                .ok(ok(&[("captcha", json!({"type": "boolean"})), ("delivery", object()), ("consents", json!({"type": "array", "items": {"type": "object"}}))])),
            login::settings,
        )
        .op(
            Op::get("/v1/sys/uiconfiguration", "uiConfiguration", "Settings of the web pages")
                .auth(Auth::Public)
                .ok(ok(&[("ui", object())])),
            consent::ui_configuration,
        )
        .op(
            Op::get("/v1/sys/cookiesettings", "cookieSettings", "The cookie banner's feed")
                .auth(Auth::Public)
                .ok(ok(&[("ui", object()), ("rows", array(object())), ("scripts", array(string()))])),
            consent::cookie_settings,
        )
        .section("Users")
        .op(
            Op::post("/v1/user", "createUser", "Create a person's record")
                .auth(Auth::OptionalToken)
                .body(Body::Object { required: true })
                .conflict()
                .ok(token()),
            users::create,
        )
        .alias(
            "/v1/user/",
            "createUserSlash",
            Op::post("/v1/user", "", "Create a person's record")
                .auth(Auth::OptionalToken)
                .body(Body::Object { required: true })
                .conflict()
                .ok(token()),
            users::create,
        )
        .op(
            Op::get(user_path, "getUser", "Read a person's profile")
                .ok(ok(&[("token", string()), ("data", object())])),
            users::get,
        )
        .op(
            Op::put(user_path, "updateUser", "Change a person's profile")
                .body(Body::Change)
                .conflict()
                .ok(or_request(token())),
            users::update,
        )
        .op(
            Op::delete(user_path, "deleteUser", "Erase a person")
                .describe("Crypto-shreds the person's key and answers the signed erasure receipt.")
                .ok(or_request(ok(&[
                    ("result", json!({"const": "done"})),
                    ("receipt", json!({"type": ["object", "null"]})),
                ]))),
            users::delete,
        )
        .op(
            Op::post("/v1/users", "listUsers", "List people (root; needs `list_users`)")
                .paged()
                .ok(listing(json!({
                    "type": "object",
                    "required": ["private", "token"],
                    "properties": {"private": string(), "token": string()},
                }))),
            system::list_users,
        )
        .section("App data")
        .op(
            Op::post(app_path, "createApp", "Store an application's document of a person")
                .body(Body::Object { required: true })
                .conflict()
                .ok(or_request(token())),
            apps::create,
        )
        .op(
            Op::get(app_path, "getApp", "Read an application's document of a person")
                .ok(ok(&[("token", string()), ("data", object())])),
            apps::get,
        )
        .op(
            Op::put(app_path, "updateApp", "Change an application's document of a person")
                .body(Body::Change)
                .conflict()
                .ok(or_request(token())),
            apps::update,
        )
        .op(
            Op::delete(app_path, "deleteApp", "Delete an application's document of a person")
                .ok(token()),
            apps::delete,
        )
        .op(
            Op::get("/v1/userapp/{mode}/{identity}", "listUserApps", "The applications holding a person's data")
                .ok(ok(&[("token", string()), ("apps", array(string()))])),
            apps::list_of_user,
        )
        .op(
            Op::get("/v1/userapps", "listApps", "The names of all applications")
                .ok(ok(&[("apps", array(string()))])),
            apps::names,
        )
        .section("Sessions")
        .op(
            Op::post("/v1/session/{session}", "putSession", "Store a session of a person")
                .describe("The body names the person (`login`, `email`, `phone` or `token`) beside the session's data.")
                .body(Body::Object { required: false })
                .conflict()
                .ok(ok(&[("session", string())])),
            sessions::create,
        )
        .op(
            Op::get("/v1/session/{session}", "getSession", "Read a session")
                .ok(ok(&[("session", string()), ("when", integer()), ("data", object())])),
            sessions::get,
        )
        .op(
            Op::delete("/v1/session/{session}", "deleteSession", "Delete a session"),
            sessions::delete,
        )
        .op(
            Op::get("/v1/sessions/{mode}/{identity}", "listSessions", "A person's sessions")
                .paged()
                .ok(listing(json!({
                    "type": "object",
                    "required": ["when", "session", "data"],
                    "properties": {"when": integer(), "session": string(), "data": object()},
                }))),
            sessions::list,
        )
        .section("Access tokens")
        .op(
            Op::post("/v1/xtoken/{mode}/{identity}", "issueUserToken", "A user access token for a person (root)")
                .describe("Body `{\"expiration\": \"1h\"}` (or seconds); capped by the policy. The token is answered once.")
                .body(Body::Object { required: false })
                .ok(ok(&[("xtoken", string()), ("token", string()), ("expires", integer())])),
            tokens::issue,
        )
        .op(
            Op::delete("/v1/xtoken/{xtoken}", "revokeUserToken", "Revoke a user access token"),
            tokens::revoke,
        )
        .section("Requests")
        .op(
            Op::get("/v1/request/{rtoken}", "getRequest", "A data-subject request with its change")
                .ok(request),
            requests::get,
        )
        .op(
            Op::post("/v1/request/{rtoken}", "approveRequest", "Approve a request (root)")
                .body(Body::Object { required: false })
                .conflict()
                .ok(done()),
            requests::approve,
        )
        .op(
            Op::delete("/v1/request/{rtoken}", "cancelRequest", "Cancel a request")
                .body(Body::Object { required: false })
                .conflict()
                .ok(done()),
            requests::cancel,
        )
        .op(
            Op::get("/v1/requests", "listRequests", "All requests (root)")
                .paged()
                .query("status", "Only requests in this state (`open`, `approved`, `canceled`).", string())
                .ok(listing(object())),
            requests::list_all,
        )
        .op(
            Op::get("/v1/requests/{mode}/{identity}", "listUserRequests", "A person's requests")
                .paged()
                .ok(listing(object())),
            requests::list_of_user,
        )
        .section("Audit")
        .op(
            Op::get("/v1/audit/admin", "listAudit", "The whole audit log (root)")
                .paged()
                .ok(listing(object())),
            audit::admin,
        )
        .alias(
            "/v1/audit/admin/",
            "listAuditSlash",
            Op::get("/v1/audit/admin", "", "The whole audit log (root)")
                .paged()
                .ok(listing(object())),
            audit::admin,
        )
        .op(
            Op::get("/v1/audit/list/{token}", "listUserAudit", "The audit events about a person")
                .paged()
                .ok(listing(object())),
            audit::list,
        )
        .op(
            Op::get("/v1/audit/get/{atoken}", "getAuditEvent", "One audit event")
                .ok(ok(&[("event", object())])),
            audit::get,
        )
        .op(
            Op::get("/v1/audit/publickey", "auditPublicKey", "The key that signs checkpoints, receipts and reports")
                .auth(Auth::Public)
                .ok(ok(&[("algorithm", json!({"const": "ed25519"})), ("publickey", string())])),
            audit::public_key,
        )
        .op(
            Op::get("/v1/audit/checkpoint", "getCheckpoint", "The newest signed checkpoint of the chain (root)")
                .can_miss()
                .ok(ok(&[("checkpoint", object())])),
            audit::checkpoint,
        )
        .op(
            Op::post("/v1/audit/checkpoint", "makeCheckpoint", "Seal what is pending and sign a checkpoint (root)")
                .ok(ok(&[("checkpoint", object())])),
            audit::make_checkpoint,
        )
        .op(
            Op::get("/v1/audit/verify", "verifyAudit", "Walk the audit chain and report what does not verify (root)")
                .describe("What `strongbox audit verify` checks, on the live store: every event against its link, the links against the signed checkpoints (with the key stored beside the chain; pin a key kept elsewhere with the CLI's `--public-key`). Reads the whole chain: an operator's action, not a health probe.")
                .ok(ok(&[
                    ("intact", json!({"type": "boolean"})),
                    ("sealed", json!({"type": "integer"})),
                    ("pending", json!({"type": "integer"})),
                    ("checkpoints", json!({"type": "integer"})),
                    ("anchored", json!({"type": "integer"})),
                    ("findings", json!({"type": "array", "items": {"type": "string"}})),
                ])),
            audit::verify,
        )
        .op(
            Op::get("/v1/audit/receipt/{token}", "erasureReceipt", "The signed receipt of an erasure (root)")
                .ok(ok(&[("receipt", object())])),
            audit::receipt,
        )
        .op(
            Op::get("/v1/audit/report/{token}", "accessReport", "Who accessed a person's data, signed")
                .ok(ok(&[("report", object())])),
            audit::report,
        )
        .section("Shared records")
        .op(
            Op::post("/v1/sharedrecord/{mode}/{identity}", "createShare", "A time-limited view of a person's data for a partner")
                .body(Body::Object { required: false })
                .ok(ok(&[("record", string())])),
            shares::create,
        )
        .op(
            Op::get("/v1/get/{record}", "getShare", "Read a shared record (the id is the capability)")
                .auth(Auth::Capability)
                .ok(share_row),
            shares::get,
        )
        .section("Login")
        .op(
            Op::get("/v1/prelogin/{mode}/{identity}/{code}/{captcha}", "prelogin", "Send a login code to an email or phone")
                .auth(Auth::Login)
                .describe("`mode` is `email` or `phone`; `code` is what the person read in the image of captcha token `captcha` (both ignored with `--login-captcha false`). The answer is the same whether or not the identity is in the vault; only a person in it is sent a code (6 digits, valid 5 minutes, 5 tries). Limited per identity and per client address.")
                .ok(done()),
            login::prelogin,
        )
        .op(
            Op::get("/v1/login/{mode}/{identity}/{tmp}", "login", "Trade a login code for a user access token")
                .auth(Auth::Login)
                .describe("Every failure (no prelogin, a wrong, expired or used code, too many tries) is the same 403. `consent` lists legal bases the person agreed to on the login page: they are recorded (method `login`) only once the code is verified; an unknown brief is 404 and spends nothing.")
                .query("consent", "Briefs of legal bases to record consent to, comma-separated.", json!({"type": "string"}))
                .can_miss()
                .ok(ok(&[("xtoken", string()), ("token", string())])),
            login::login,
        )
        .op(
            Op::get("/v1/captcha", "newCaptcha", "A fresh captcha token and the path of its image")
                .auth(Auth::Public)
                .ok(ok(&[("captcha", string()), ("image", string())])),
            login::new_captcha,
        )
        .op(
            Op::get("/v1/captcha/{code}", "captchaImage", "The image of a captcha token")
                .auth(Auth::Public)
                .ok_other("image/png", "128×64 pixels showing 6 digits."),
            login::image,
        )
        .section("Retention")
        .op(
            Op::post("/v1/exp/start/{mode}/{identity}", "startExpiration", "Set when a person's record expires")
                .body(Body::Object { required: false })
                .ok(ok(&[("exptoken", string())])),
            retention::start,
        )
        .op(
            Op::get("/v1/exp/status/{mode}/{identity}", "expirationStatus", "When a person's record expires")
                .ok(ok(&[("exptime", integer()), ("expstatus", string()), ("exptoken", string())])),
            retention::status,
        )
        .op(
            Op::delete("/v1/exp/cancel/{mode}/{identity}", "cancelExpiration", "Cancel a record's expiry"),
            retention::cancel,
        )
        .op(
            Op::get("/v1/exp/retain/{exptoken}", "retainPage", "The page that confirms keeping the data")
                .auth(Auth::Public)
                .describe("Acts on nothing (mail scanners follow links): its button posts to the same path.")
                .ok_other("text/html", "A confirmation page."),
            retention::retain_page,
        )
        .op(
            Op::post("/v1/exp/retain/{exptoken}", "retain", "Keep the data (the link is the capability)")
                .auth(Auth::Capability)
                .ok_other("text/plain", "`OK`."),
            retention::retain,
        )
        .op(
            Op::get("/v1/exp/delete/{exptoken}", "deletePage", "The page that confirms the erasure")
                .auth(Auth::Public)
                .describe("Acts on nothing (mail scanners follow links): its button posts to the same path.")
                .ok_other("text/html", "A confirmation page."),
            retention::delete_page,
        )
        .op(
            Op::post("/v1/exp/delete/{exptoken}", "deleteByLink", "Erase the person now (the link is the capability)")
                .auth(Auth::Capability)
                .ok_other("text/plain", "`OK`."),
            retention::delete,
        )
        .section("Consent")
        .op(
            Op::get("/v1/lbasis", "listLegalBases", "Legal bases")
                .describe("Root: every legal basis. A person's access token: the active ones (a Strongbox extension, for the privacy portal; Databunker answers root only).")
                .ok(listing(object())),
            consent::list_legal_bases,
        )
        .op(
            Op::post("/v1/lbasis/{brief}", "putLegalBasis", "Create or change a legal basis (root)")
                .body(Body::Object { required: false }),
            consent::put_legal_basis,
        )
        .op(
            Op::delete("/v1/lbasis/{brief}", "deleteLegalBasis", "Delete a legal basis (root)"),
            consent::delete_legal_basis,
        )
        .op(
            Op::get("/v1/agreement/{brief}/{mode}/{identity}", "getAgreement", "A person's consent to a legal basis")
                .ok(ok(&[("data", object())])),
            consent::get_agreement,
        )
        .op(
            Op::post("/v1/agreement/{brief}/{mode}/{identity}", "acceptAgreement", "Record a person's consent")
                .body(Body::Object { required: false }),
            consent::accept_agreement,
        )
        .op(
            Op::delete("/v1/agreement/{brief}/{mode}/{identity}", "withdrawAgreement", "Withdraw a person's consent")
                .body(Body::Object { required: false })
                .ok(or_request(ok(&[]))),
            consent::withdraw_agreement,
        )
        .op(
            Op::delete("/v1/agreement/{brief}", "revokeAllAgreements", "Withdraw everyone's consent to a legal basis (root)"),
            consent::revoke_all,
        )
        .op(
            Op::get("/v1/agreements/{mode}/{identity}", "listAgreements", "A person's consents")
                .ok(listing(object())),
            consent::list_agreements,
        )
        .op(
            Op::get("/v1/pactivity", "listActivities", "Processing activities")
                .ok(listing(object())),
            consent::list_activities,
        )
        .op(
            Op::post("/v1/pactivity/{activity}", "putActivity", "Create or change a processing activity (root)")
                .body(Body::Object { required: false }),
            consent::put_activity,
        )
        .op(
            Op::delete("/v1/pactivity/{activity}", "deleteActivity", "Delete a processing activity (root)"),
            consent::delete_activity,
        )
        .op(
            Op::post("/v1/pactivity/{activity}/{brief}", "linkActivity", "Link a legal basis to a processing activity (root)"),
            consent::link_activity,
        )
        .op(
            Op::delete("/v1/pactivity/{activity}/{brief}", "unlinkActivity", "Unlink a legal basis from a processing activity (root)"),
            consent::unlink_activity,
        )
}

/// The v1 router: [`api`]'s routes.
pub fn routes() -> Router<AppState> {
    let (router, _) = api().into_parts();
    router
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
