//! The HTTP layer of Strongbox: Databunker's v1 REST API as a thin adapter over
//! `strongbox-core`. Handlers take their caller, path and body from the extractors
//! in `extract` (authentication first, then the path, then the body) and call one
//! core function; errors map to HTTP in one place ([`error`]). A v2 API would be a
//! module beside `v1` taking the same extractors.

mod body;
mod captcha;
mod error;
mod extract;
pub mod guard;
pub mod listen;
mod metrics;
mod middleware;
mod openapi;
mod reply;
pub mod seal;
pub mod tls;
mod ui;
mod v1;
mod v2;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use strongbox_core::Vault;

pub use body::{MAX_JSON_DEPTH, decode as decode_body};

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Serve the benchmark reference endpoint `GET /bench/lookup/{token}` (root token
    /// required): a user-row read with no decryption and no audit event.
    pub bench_endpoints: bool,
    /// Databunker's `ui` settings (company name, links), served unauthenticated by
    /// `/v1/sys/uiconfiguration` and `/v1/sys/cookiesettings` with its Go field names.
    pub ui: serde_json::Map<String, serde_json::Value>,
    /// A secret that lets a scraper read `/v1/metrics` (`Authorization: Bearer …`)
    /// without the root token. Without it, metrics need the root token.
    pub metrics_token: Option<strongbox_core::Secret>,
    /// Serve `/v1/metrics` without any token (Databunker's behaviour). Off by default.
    pub metrics_public: bool,
    /// Connection limits of the listener.
    pub limits: Limits,
    /// Time a client has to send a request's body once its headers are in.
    pub body_read_timeout: std::time::Duration,
    /// The limit on failed attempts per client address, shared by every router.
    pub guard: Arc<guard::Guard>,
    /// TLS on the listener (HTTPS only), when configured.
    pub tls: Option<Arc<tls::Tls>>,
    /// Prelogin checks a captcha (on by default; off for applications with their
    /// own bot defence).
    pub login_captcha: bool,
    /// Print login codes on standard error (`strongbox demo` only).
    pub print_login_codes: bool,
}

/// The keys of Databunker's `ui` object, all empty by default.
pub const UI_KEYS: &[&str] = &[
    "LogoLink",
    "CompanyTitle",
    "CompanyVAT",
    "CompanyCity",
    "CompanyLink",
    "CompanyCountry",
    "CompanyAddress",
    "TermOfServiceTitle",
    "TermOfServiceLink",
    "PrivacyPolicyTitle",
    "PrivacyPolicyLink",
    "CustomCSSLink",
];

impl Default for HttpConfig {
    fn default() -> Self {
        let mut ui: serde_json::Map<String, serde_json::Value> = UI_KEYS
            .iter()
            .map(|k| (k.to_string(), serde_json::Value::from("")))
            .collect();
        ui.insert("MagicLookup".into(), serde_json::Value::from(false));
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            bench_endpoints: false,
            ui,
            metrics_token: None,
            metrics_public: false,
            limits: Limits::default(),
            body_read_timeout: std::time::Duration::from_secs(30),
            guard: Arc::new(guard::Guard::new(guard::GuardConfig::default())),
            tls: None,
            login_captcha: true,
            print_login_codes: false,
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub vault: Arc<Vault>,
    /// Shared, not copied: `State` extraction clones the state for every request.
    pub http: Arc<HttpConfig>,
    pub metrics: Arc<metrics::HttpMetrics>,
}

/// The full application router.
pub fn router(vault: Arc<Vault>, http: HttpConfig) -> Router {
    let state = AppState {
        vault,
        http: Arc::new(http),
        metrics: Arc::default(),
    };
    // JSON answers for unknown paths and methods, whichever API version they are in.
    let mut routes = v1::routes()
        .merge(v2::routes(state.clone()))
        .fallback(|| async { error::error_response(StatusCode::NOT_FOUND, "endpoint is missing") })
        .method_not_allowed_fallback(|| async {
            error::error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        });
    if state.http.bench_endpoints {
        routes = routes.merge(v1::bench_routes());
    }
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::access_log,
        ))
        .with_state(state)
}

pub use listen::{Limits, serve};

/// The API document (OpenAPI 3.1) as served at `/openapi.json` and committed at
/// `docs/openapi.json`: every route of every router, built once.
pub fn openapi_document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let (_, mut ops) = v1::api().into_parts();
        let (_, v2) = v2::api().into_parts();
        ops.extend(v2);
        let (_, gate) = seal::api().into_parts();
        ops.extend(gate);
        let doc = openapi::document(&ops);
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`: the API document, without a token (sealed or not).
async fn openapi_json() -> axum::response::Response {
    reply::json_response(
        axum::http::StatusCode::OK,
        openapi_document().as_bytes().to_vec(),
    )
}
