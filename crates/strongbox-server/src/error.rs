//! The one place where domain errors become HTTP responses. The body keeps
//! Databunker's shape, `{"status":"error","message":"…"}`; the status code fits the
//! error instead of Databunker's blanket 405.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strongbox_core::{Error, ErrorKind};

use crate::guard::{Limit, too_many};
use crate::reply::json_response;

pub enum ApiError {
    /// A domain error, mapped by its kind.
    Domain(Error),
    /// A failed attempt over its address's limit: 429 after this many seconds.
    Limited(u64),
    /// A valid token over its own limit: 429 after this many seconds.
    TokenLimited(u64),
    /// A prelogin over its identity's or address's limit: 429 after this many seconds.
    PreloginLimited(u64),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response with Databunker's JSON body.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    // Field order as Databunker writes it; the message is escaped by serde_json.
    let message = serde_json::Value::from(message);
    json_response(
        status,
        format!(r#"{{"status":"error","message":{message}}}"#).into_bytes(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Domain(e) => error_response(status_of(e.kind), &e.message),
            ApiError::Limited(wait) => too_many(wait, Limit::Address),
            ApiError::TokenLimited(wait) => too_many(wait, Limit::Token),
            ApiError::PreloginLimited(wait) => too_many(wait, Limit::Prelogin),
        }
    }
}
