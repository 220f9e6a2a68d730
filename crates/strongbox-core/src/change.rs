//! Changes to JSON documents (profiles and app documents), as sent with `PUT`: an
//! RFC 7386 merge patch or an RFC 6902 JSON Patch, applied within bounds.
//!
//! A JSON Patch can amplify: `copy` from the root into a new key doubles the
//! document, so twenty such operations in an 870-byte body make it a million times
//! larger. Every change is therefore applied under two bounds: the document it
//! produces may not exceed the vault's document limit (`max_document_bytes`, the
//! request body limit by default), and the work is bounded by that limit too, since
//! growth is accounted for before each operation runs (the size of what a `copy`
//! duplicates is measured, with an early exit, before the copy is made). A patch
//! also has at most [`MAX_PATCH_OPERATIONS`] operations, which bounds the array
//! shifting and pointer walks it can ask for.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// Most operations one JSON Patch may have.
pub const MAX_PATCH_OPERATIONS: usize = 256;

/// What became of an action a user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Carried out; the user's token.
    Done(String),
    /// Kept as a request for the DPO: `existed` when an identical open request was
    /// already waiting (its token is returned instead of a new one).
    Requested { rtoken: String, existed: bool },
}

/// How a change to a person's data that may need a DPO's approval is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Applied when the caller may (root; the person within the self-service
    /// settings), otherwise filed as a request for the DPO.
    AsAllowed,
    /// Filed as a request for the DPO, whoever asks (v2's `*Request` methods).
    Request,
}

/// Whether a profile change may be applied directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The root token, or a DPO approving a request.
    Open,
    /// A user's own change under self service: one that touches an `admin` field or
    /// a lookup field goes to the DPO instead.
    SelfService,
}

/// A change to a document, as sent with `PUT`.
pub enum Change {
    /// RFC 7386 merge patch: an object whose `null` values remove keys.
    Merge(Map<String, Value>),
    /// RFC 6902 JSON Patch operations.
    Patch(json_patch::Patch),
}

impl Change {
    /// Interprets a `PUT` body: an object is a merge patch, an array is a JSON Patch.
    pub fn from_json(body: Value) -> Result<Change> {
        match body {
            Value::Object(m) if m.is_empty() => Err(Error::bad_request("empty request body")),
            Value::Object(m) => Ok(Change::Merge(m)),
            Value::Array(a) if a.is_empty() => Err(Error::bad_request("empty request body")),
            Value::Array(a) if a.len() > MAX_PATCH_OPERATIONS => Err(Error::bad_request(format!(
                "failed to decode request body: a JSON Patch may have at most {MAX_PATCH_OPERATIONS} operations"
            ))),
            v @ Value::Array(_) => serde_json::from_value(v).map(Change::Patch).map_err(|_| {
                Error::bad_request("failed to decode request body: invalid JSON Patch")
            }),
            _ => Err(Error::bad_request(
                "failed to decode request body: expected a JSON object or a JSON Patch array",
            )),
        }
    }

    /// The change as JSON (to keep it in a request until a DPO approves it).
    pub(crate) fn to_json(&self) -> Result<Value> {
        match self {
            Change::Merge(m) => Ok(Value::Object(m.clone())),
            Change::Patch(p) => serde_json::to_value(p).map_err(Error::internal),
        }
    }

    /// The document after this change. `context` names what is changed in errors
    /// ("error updating user"). The result must still be a JSON object of at most
    /// `limit` bytes as JSON; a change that would go further is refused (413)
    /// without building the oversized document.
    pub fn apply_to(
        &self,
        old: Map<String, Value>,
        context: &str,
        limit: usize,
    ) -> Result<Map<String, Value>> {
        let mut doc = Value::Object(old);
        match self {
            Change::Merge(m) => json_patch::merge(&mut doc, &Value::Object(m.clone())),
            Change::Patch(p) => apply_bounded(&mut doc, p, context, limit)?,
        }
        if json_len(&doc, limit).is_none() {
            return Err(too_large(context, limit));
        }
        match doc {
            Value::Object(new) => Ok(new),
            _ => Err(Error::bad_request(format!(
                "{context}: the document must stay a JSON object"
            ))),
        }
    }
}

fn too_large(context: &str, limit: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!("{context}: the changed document would be larger than {limit} bytes"),
    )
}

/// Applies `patch` one operation at a time. `grown` counts, from above, how large
/// the document can have become: its size at the start plus every value an `add`,
/// `replace` or `copy` put in (removals are not subtracted). Values added from the
/// patch itself are bounded by the body limit; a `copy` is measured before it is
/// made, so no step builds more than `2 * limit` bytes. The exact size of the result
/// is checked by the caller.
fn apply_bounded(
    doc: &mut Value,
    patch: &json_patch::Patch,
    context: &str,
    limit: usize,
) -> Result<()> {
    use json_patch::PatchOperation as Op;
    let ceiling = limit.saturating_mul(2);
    let mut grown = json_len(doc, ceiling).ok_or_else(|| too_large(context, limit))?;
    for (i, op) in patch.iter().enumerate() {
        let added = match op {
            Op::Add(a) => json_len(&a.value, ceiling),
            Op::Replace(r) => json_len(&r.value, ceiling),
            Op::Copy(c) => match doc.pointer(c.from.as_str()) {
                Some(v) => json_len(v, ceiling.saturating_sub(grown)),
                // Let the patch report the bad pointer.
                None => Some(0),
            },
            Op::Remove(_) | Op::Move(_) | Op::Test(_) => Some(0),
        };
        grown = added
            .map(|n| grown.saturating_add(n))
            .filter(|&n| n <= ceiling)
            .ok_or_else(|| too_large(context, limit))?;
        // A failed operation leaves `doc` half-changed; the caller drops it.
        json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|e| {
            Error::bad_request(format!(
                "{context}: operation '/{i}' failed at path '{}': {}",
                e.path, e.kind
            ))
        })?;
    }
    Ok(())
}

/// The length of `v` serialized as compact JSON, or `None` once it exceeds
/// `budget` (the walk stops there, so measuring costs at most `budget` steps).
pub(crate) fn json_len(v: &Value, budget: usize) -> Option<usize> {
    let mut used = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        used = used.checked_add(match v {
            Value::Null => 4,
            Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => n.to_string().len(),
            Value::String(s) => string_len(s),
            Value::Array(a) => {
                stack.extend(a.iter());
                // Brackets and commas.
                2 + a.len().saturating_sub(1)
            }
            Value::Object(m) => {
                let mut n = 2 + m.len().saturating_sub(1);
                for (k, v) in m {
                    // Key, colon.
                    n = n.saturating_add(string_len(k) + 1);
                    stack.push(v);
                }
                n
            }
        })?;
        if used > budget {
            return None;
        }
    }
    Some(used)
}

/// The length of `s` as a JSON string literal, escapes included.
fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn json_len_matches_serde() {
        for v in [
            json!({}),
            json!([]),
            json!({"a": [1, 2.5, -3, null, true, false], "b\"\n\u{1}": "x\ty\\z\u{7f}é"}),
            json!({"nested": {"deep": [[[{"k": "v"}]]]}, "n": 12345678901234567u64}),
        ] {
            let expected = serde_json::to_vec(&v).map(|b| b.len()).ok();
            assert_eq!(json_len(&v, usize::MAX), expected, "{v}");
            let n = expected.unwrap_or(0);
            assert_eq!(json_len(&v, n), Some(n));
            assert_eq!(json_len(&v, n - 1), None);
        }
    }

    #[test]
    fn copy_amplification_is_refused_before_it_grows() -> Result<()> {
        let ops: Vec<Value> = (0..24)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
            .collect();
        let change = Change::from_json(Value::Array(ops))?;
        let old = obj(json!({"login": "amp", "pad": "x".repeat(100)}));
        let started = std::time::Instant::now();
        let err = change
            .apply_to(old, "error updating user", 1024 * 1024)
            .err()
            .map(|e| e.kind);
        assert_eq!(err, Some(ErrorKind::PayloadTooLarge));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        Ok(())
    }

    #[test]
    fn patches_within_the_limit_apply() -> Result<()> {
        let change = Change::from_json(json!([
            {"op": "copy", "from": "/a", "path": "/b"},
            {"op": "add", "path": "/c", "value": [1, 2]},
            {"op": "remove", "path": "/a"},
            {"op": "test", "path": "/b", "value": "hello"},
        ]))?;
        let new = change.apply_to(obj(json!({"a": "hello"})), "ctx", 100)?;
        assert_eq!(Value::Object(new), json!({"b": "hello", "c": [1, 2]}));
        Ok(())
    }

    #[test]
    fn a_merge_past_the_limit_is_refused() -> Result<()> {
        let change = Change::from_json(json!({"big": "y".repeat(200)}))?;
        let err = change.apply_to(obj(json!({"a": 1})), "ctx", 100).err();
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::PayloadTooLarge));
        Ok(())
    }

    #[test]
    fn failed_operations_name_their_index() -> Result<()> {
        let change = Change::from_json(json!([
            {"op": "add", "path": "/x", "value": 1},
            {"op": "remove", "path": "/missing"},
        ]))?;
        let err = change.apply_to(obj(json!({"a": 1})), "ctx", 100).err();
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(
            message.starts_with("ctx: operation '/1' failed"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn too_many_operations_are_refused() {
        let ops: Vec<Value> = (0..=MAX_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = Change::from_json(Value::Array(ops)).err();
        assert_eq!(err.map(|e| e.kind), Some(ErrorKind::BadRequest));
    }
}
