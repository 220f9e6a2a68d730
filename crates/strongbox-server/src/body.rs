//! Request bodies: size cap, content type, JSON depth cap, form decoding. Every
//! failure is a 4xx with a clear message, decided before anything is looked up.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};
use strongbox_core::{Error, ErrorKind, Result};

/// Deepest nesting of objects/arrays accepted in a JSON body.
pub const MAX_JSON_DEPTH: usize = 64;

/// How a body is read: at most `limit` bytes, within `timeout` of the headers.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub limit: usize,
    pub timeout: std::time::Duration,
}

/// A decoded body: `None` when the request carried none (or only whitespace).
pub async fn read(headers: &HeaderMap, body: Body, limits: BodyLimits) -> Result<Option<Value>> {
    let BodyLimits { limit, timeout } = limits;
    let too_large = || {
        Error::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(Error::new(
            ErrorKind::RequestTimeout,
            format!(
                "the request body did not arrive within {} seconds",
                timeout.as_secs()
            ),
        ));
    };
    let bytes = match read {
        Ok(b) => b,
        Err(e) => {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(too_large());
            }
            return Err(Error::bad_request("failed to read request body"));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    decode(content_type, &bytes)
}

/// Decodes a body that has been read whole: `None` for none (or only whitespace),
/// JSON or form fields by the content type, anything else 415. The step every body
/// from outside goes through (and what the body fuzz target feeds).
pub fn decode(content_type: Option<&str>, bytes: &[u8]) -> Result<Option<Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = content_type.map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match content_type.as_deref() {
        Some("application/json") => parse_json(bytes).map(Some),
        Some("application/x-www-form-urlencoded") => {
            parse_form(bytes).map(|m| Some(Value::Object(m)))
        }
        _ => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported content type: send application/json or application/x-www-form-urlencoded",
        )),
    }
}

/// A body that, if present, must be a JSON object (or form fields); none is an empty
/// object.
pub async fn read_optional_object(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Map<String, Value>> {
    match read(headers, body, limits).await? {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Error::bad_request(
            "failed to decode request body: expected a JSON object",
        )),
    }
}

/// A body that must be a JSON object (or form fields).
pub async fn read_object(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Map<String, Value>> {
    match read(headers, body, limits).await? {
        None => Err(Error::bad_request("empty request body")),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Error::bad_request(
            "failed to decode request body: expected a JSON object",
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value> {
    if !depth_within(bytes, MAX_JSON_DEPTH) {
        return Err(Error::bad_request(format!(
            "failed to decode request body: JSON nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    // serde_json rejects invalid UTF-8, and its error message carries only a position.
    serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_request(format!(
            "failed to decode request body: invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}

/// Form fields as a JSON object of strings; the first value of a repeated key wins.
fn parse_form(bytes: &[u8]) -> Result<Map<String, Value>> {
    let invalid =
        || Error::bad_request("failed to decode request body: form data is not valid UTF-8");
    if std::str::from_utf8(bytes).is_err() {
        return Err(invalid());
    }
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        // form_urlencoded decodes percent-escapes lossily; a replacement character
        // means the escaped bytes were not UTF-8.
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(invalid());
        }
        out.entry(k.into_owned())
            .or_insert(Value::String(v.into_owned()));
    }
    Ok(out)
}

/// True when no object/array in `bytes` nests deeper than `max` (strings skipped).
fn depth_within(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure() {
        assert!(depth_within(b"{\"a\":\"[[[[[[\"}", 1));
        assert!(!depth_within(b"[[]]", 1));
        assert!(depth_within(b"[[]]", 2));
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(!depth_within(deep.as_bytes(), MAX_JSON_DEPTH));
        assert!(depth_within(b"{\"a\\\"[\":1}", 1));
    }

    #[test]
    fn form_first_value_wins_and_rejects_bad_utf8() {
        let m = parse_form(b"login=a&login=b&email=x%40y.z").unwrap();
        assert_eq!(m["login"], "a");
        assert_eq!(m["email"], "x@y.z");
        assert!(parse_form(b"login=%ff").is_err());
        assert!(parse_form(&[b'a', b'=', 0xff]).is_err());
    }
}
