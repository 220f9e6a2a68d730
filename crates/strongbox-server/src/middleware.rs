//! Cross-cutting layers: one access-log line per request and security headers.
//!
//! The log line names the route *template* (`/v1/user/{mode}/{identity}`), never the
//! path, which can hold an email address or a phone number; nor the query string or
//! any header value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

static REQUEST_ID: AtomicU64 = AtomicU64::new(1);

pub async fn access_log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut resp = next.run(req).await;
    let refused = resp.status().is_client_error() || resp.status().is_server_error();
    let h = resp.headers_mut();
    // A refused request's body may be left unread (authorization comes before
    // reading it), and the server then drops the connection after answering; saying
    // so keeps a client from sending its next request on a connection about to close.
    if has_body && refused {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    security_headers(h);
    let latency = started.elapsed();
    state
        .metrics
        .observe(method.as_str(), &route, resp.status().as_u16(), latency);
    tracing::info!(
        target: "strongbox::access",
        request_id = id,
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        latency_us = latency.as_micros() as u64,
    );
    resp
}

/// The headers every answer carries (a Content-Security-Policy the handler set is
/// kept).
pub fn security_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A handler may set a policy of its own (the exptoken pages: stricter still).
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Security headers on the seal gate's own answers (sealed 503s, unseal, seal).
pub async fn gate_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    security_headers(resp.headers_mut());
    resp
}
