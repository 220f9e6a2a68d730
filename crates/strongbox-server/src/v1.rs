//! Databunker's v1 REST API: same paths, same JSON.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strongbox_core::{Change, Error, Mode, Principal, Result};

use crate::error::{ApiError, error_response};
use crate::{AppState, body};

/// The header carrying the access token, as in Databunker.
const TOKEN_HEADER: &str = "x-bunker-token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/status/", get(status))
        .route("/status", get(status))
        .route("/status/", get(status))
        // The official Node client posts to the trailing-slash form.
        .route("/v1/user", post(create_user))
        .route("/v1/user/", post(create_user))
        .route(
            "/v1/user/{mode}/{identity}",
            get(get_user).put(update_user).delete(delete_user),
        )
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
    headers: HeaderMap,
    Path(token): Path<String>,
) -> std::result::Result<Response, ApiError> {
    principal(&state, &headers)?;
    if state.vault.probe_user_row(&token).await? {
        Ok(ok_json("result", "found"))
    } else {
        Err(Error::not_found("not found").into())
    }
}

/// A JSON response with Databunker's content type.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// `{"status":"ok","<key>":"<value>"}` in Databunker's field order. Values here are
/// tokens or fixed words, so they need no escaping beyond serde_json's.
fn ok_json(key: &str, value: &str) -> Response {
    let value = serde_json::Value::from(value);
    json_response(
        StatusCode::OK,
        format!(r#"{{"status":"ok","{key}":{value}}}"#).into_bytes(),
    )
}

/// The access token, if any. A header that is not valid text counts as a wrong token.
fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"))
}

fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal> {
    state.vault.authenticate(token(headers))
}

/// Path parameters `{mode}/{identity}`, checked after authentication.
fn user_path(
    path: std::result::Result<Path<(String, String)>, PathRejection>,
) -> Result<(Mode, String)> {
    let Path((mode, identity)) =
        path.map_err(|_| Error::bad_request("bad path: parameters must be valid UTF-8"))?;
    Ok((Mode::parse(&mode)?, identity))
}

async fn status(State(state): State<AppState>) -> Response {
    match state.vault.ping().await {
        Ok(()) => (StatusCode::OK, "OK").into_response(),
        Err(_) => error_response(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> std::result::Result<Response, ApiError> {
    let who = state.vault.authenticate_create(token(&headers))?;
    let profile = body::read_object(&headers, body, state.http.max_body_bytes).await?;
    let token = state.vault.create_user(&who, profile).await?;
    Ok(ok_json("token", &token))
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<(String, String)>, PathRejection>,
) -> std::result::Result<Response, ApiError> {
    let who = principal(&state, &headers)?;
    let (mode, identity) = user_path(path)?;
    let user = state.vault.get_user(&who, mode, &identity).await?;
    // The stored profile is already JSON: splice it in rather than re-serializing.
    let profile: &[u8] = user.profile.as_deref().map_or(b"{}", |p| p.as_slice());
    let mut out = Vec::with_capacity(profile.len() + 80);
    out.extend_from_slice(br#"{"status":"ok","token":""#);
    out.extend_from_slice(user.token.as_bytes());
    out.extend_from_slice(br#"","data":"#);
    out.extend_from_slice(profile);
    out.push(b'}');
    Ok(json_response(StatusCode::OK, out))
}

async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> std::result::Result<Response, ApiError> {
    let who = principal(&state, &headers)?;
    let (mode, identity) = user_path(path)?;
    let change = match body::read(&headers, body, state.http.max_body_bytes).await? {
        None => return Err(Error::bad_request("empty request body").into()),
        Some(v) => Change::from_json(v)?,
    };
    let token = state
        .vault
        .update_user(&who, mode, &identity, change)
        .await?;
    Ok(ok_json("token", &token))
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<(String, String)>, PathRejection>,
) -> std::result::Result<Response, ApiError> {
    let who = principal(&state, &headers)?;
    let (mode, identity) = user_path(path)?;
    state.vault.delete_user(&who, mode, &identity).await?;
    Ok(ok_json("result", "done"))
}
