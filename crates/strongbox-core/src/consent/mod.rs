//! Consent: legal bases (the catalogue of purposes), agreements (one person's
//! consent to one purpose) and processing activities (what is done under which
//! purposes), as in Databunker.
//!
//! Legal bases and processing activities describe the organisation, not people, so
//! they are kept as plaintext metadata. An agreement names a person: its identity
//! (`who`), reference code and modifier are sealed under the person's DEK; only its
//! state (brief, status, times, method) is plaintext. Consent can be recorded for an
//! email or phone that is not in the vault yet: it is then keyed by the blind-index
//! digest of that identity, sealed under a DEK of its own, and adopted by the user
//! created later with that email or phone.

// One module per concern; the helpers below are shared by them.
mod activities;
mod agreements;
mod bases;

use serde_json::{Map, Value};
use strongbox_store::RecordRow;

use crate::error::{Error, Result};
use crate::expiry::parse_duration;

/// A brief or activity name as Databunker accepts it: lower-cased, then
/// `[a-z][a-z0-9-]{1,64}`. `message` is the route's error text.
pub fn parse_brief(s: &str, message: &str) -> Result<String> {
    let s = s.to_ascii_lowercase();
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && (2..=65).contains(&s.len())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s)
    } else {
        Err(Error::bad_request(message))
    }
}

/// Databunker's reading of an agreement status: agreeing words mean `yes`.
fn consent_status(v: Option<&Value>) -> String {
    const YES: &[&str] = &[
        "1", "active", "accept", "agree", "approve", "given", "good", "ok", "on", "true", "y",
        "yes",
    ];
    let text = match v {
        None | Some(Value::Null) => return "yes".into(),
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => String::new(),
    };
    if YES.contains(&text.as_str()) {
        "yes"
    } else {
        "no"
    }
    .into()
}

/// A boolean field: JSON booleans, and `true`/`false`/`1`/`0` as text or numbers (form
/// bodies carry only strings; Databunker's handler crashes on them).
fn flag(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
            _ => Err(Error::bad_request(format!(
                "bad {key}: expected true or false"
            ))),
        },
        Some(_) => Err(Error::bad_request(format!(
            "bad {key}: expected true or false"
        ))),
    }
}

/// A text field; numbers and booleans are taken as their text.
fn text(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(Error::bad_request(format!("bad {key}: expected a string"))),
    }
}

/// A consent time (`starttime`, `expiration`): a duration string counts from now, a
/// number is an absolute Unix time (Databunker's rule for consents).
fn consent_time(body: &Map<String, Value>, key: &str, now: i64) -> Result<Option<i64>> {
    let bad = || Error::bad_request(format!("bad {key}: use a duration like 30d or a Unix time"));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse_duration(s).map(|d| Some(now + d)).ok_or_else(bad),
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

fn meta_of(row: &RecordRow) -> Result<Map<String, Value>> {
    match row.meta.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Object(m))) => Ok(m),
        _ => Err(Error::internal("a record's metadata is not a JSON object")),
    }
}

fn meta_bytes(meta: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(meta).map_err(Error::internal)
}

/// Tries at finding a pending consent that an index-key rotation moves meanwhile.
const MAX_SLOT_ATTEMPTS: usize = 3;
const MOVED: &str = "the consent was moved to a new index key meanwhile: try again";

fn moved() -> Error {
    Error::new(crate::ErrorKind::Conflict, MOVED)
}

fn is_moved(e: &Error) -> bool {
    e.kind == crate::ErrorKind::Conflict && e.message == MOVED
}

/// The briefs linked to a processing activity (`legalbasis`, comma-separated).
fn activity_briefs(meta: &Map<String, Value>) -> Vec<String> {
    meta.get("legalbasis")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) use agreements::pending_owner_version;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::agreements::pending_owner;
    use super::*;
    use serde_json::json;
    use strongbox_store::IndexEntry;

    #[test]
    fn briefs() {
        assert_eq!(parse_brief("Marketing-1", "x").unwrap(), "marketing-1");
        for bad in ["a", "1abc", "ali$baba", "under_score", ""] {
            assert!(parse_brief(bad, "x").is_err(), "{bad}");
        }
        assert!(parse_brief(&"a".repeat(65), "x").is_ok());
        assert!(parse_brief(&"a".repeat(66), "x").is_err());
    }

    #[test]
    fn pending_owner_keys_carry_their_index_version() {
        let e = |v| IndexEntry {
            name: "email",
            digest: vec![0xab, 0x01],
            key_version: v,
        };
        assert_eq!(pending_owner(&e(1)), "email:ab01");
        assert_eq!(pending_owner(&e(7)), "email:7:ab01");
        assert_eq!(pending_owner_version("email:ab01"), Some(1));
        assert_eq!(pending_owner_version("phone:7:ab01"), Some(7));
        // A user token owns the consents of people in the vault.
        assert_eq!(
            pending_owner_version("0b4ecb62-8c2e-4fa4-8a7a-f53b9e0f4c01"),
            None
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(consent_status(None), "yes");
        assert_eq!(consent_status(Some(&json!("Agree"))), "yes");
        assert_eq!(consent_status(Some(&json!(true))), "yes");
        assert_eq!(consent_status(Some(&json!(1))), "yes");
        assert_eq!(consent_status(Some(&json!("nope"))), "no");
        assert_eq!(consent_status(Some(&json!({}))), "no");
    }

    #[test]
    fn flags() {
        let body = json!({"a": true, "b": "0", "c": 1, "d": "maybe", "e": [1]});
        let Value::Object(m) = body else { panic!() };
        assert_eq!(flag(&m, "a").unwrap(), Some(true));
        assert_eq!(flag(&m, "b").unwrap(), Some(false));
        assert_eq!(flag(&m, "c").unwrap(), Some(true));
        assert!(flag(&m, "d").is_err());
        assert!(flag(&m, "e").is_err());
        assert_eq!(flag(&m, "z").unwrap(), None);
    }
}
