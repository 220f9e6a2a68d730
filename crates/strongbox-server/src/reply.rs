//! JSON responses in Databunker's content type, shared by every API version and by
//! the error mapping.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON response with Databunker's content type.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// `{"status":"ok", …fields}` with the fields in the given order (Databunker's).
pub fn ok_fields(fields: &[(&str, serde_json::Value)]) -> Response {
    let mut out = String::from(r#"{"status":"ok""#);
    for (key, value) in fields {
        out.push_str(&format!(",{}:{}", serde_json::Value::from(*key), value));
    }
    out.push('}');
    json_response(StatusCode::OK, out.into_bytes())
}
