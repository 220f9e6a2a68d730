//! The optional user-profile schema (Databunker's `user_record_schema`): a JSON
//! Schema (draft 2019-09 and later) that profiles must satisfy on create **and** on
//! every change, with Databunker's keywords on properties —
//! `"admin": true` (a user's own change goes to the DPO), `"locked": true` (never
//! changes after creation), `"preserve": true` (kept through forget-me) — and
//! Strongbox's `"classification"`: `pii`, `phi`, `kyc`, `pci` or `none`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The data classes a property can be tagged with.
pub const CLASSES: &[&str] = &["pii", "phi", "kyc", "pci", "none"];

pub struct UserSchema {
    validator: jsonschema::Validator,
    /// JSON pointers of properties with each keyword.
    locked: Vec<String>,
    admin: Vec<String>,
    preserve: Vec<String>,
    classification: BTreeMap<String, String>,
}

impl std::fmt::Debug for UserSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSchema")
            .field("locked", &self.locked)
            .field("admin", &self.admin)
            .field("preserve", &self.preserve)
            .field("classification", &self.classification)
            .finish()
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// What is wrong with a schema document, or with a profile the schema refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(String);

impl SchemaError {
    /// Whether the message mentions `s` (for tests and callers that look for a field).
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
}

impl From<String> for SchemaError {
    fn from(why: String) -> Self {
        SchemaError(why)
    }
}

impl UserSchema {
    /// Compiles a schema document; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<UserSchema, SchemaError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("the schema is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&doc)
            .map_err(|e| format!("the schema is not a valid JSON Schema: {e}"))?;
        let mut schema = UserSchema {
            validator,
            locked: Vec::new(),
            admin: Vec::new(),
            preserve: Vec::new(),
            classification: BTreeMap::new(),
        };
        schema.collect(&doc, "")?;
        Ok(schema)
    }

    /// Walks `properties` (nested ones too), noting each keyword's pointers.
    fn collect(&mut self, node: &Value, prefix: &str) -> Result<(), SchemaError> {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return Ok(());
        };
        for (key, sub) in props {
            let pointer = format!("{prefix}/{}", escape_pointer(key));
            let flag = |k: &str| sub.get(k) == Some(&Value::Bool(true));
            if flag("locked") {
                self.locked.push(pointer.clone());
            }
            if flag("admin") {
                self.admin.push(pointer.clone());
            }
            if flag("preserve") {
                self.preserve.push(pointer.clone());
            }
            if let Some(c) = sub.get("classification") {
                let class = c.as_str().filter(|c| CLASSES.contains(c)).ok_or_else(|| {
                    format!(
                        "{pointer}: classification must be one of {}",
                        CLASSES.join(", ")
                    )
                })?;
                self.classification
                    .insert(pointer.clone(), class.to_string());
            }
            self.collect(sub, &pointer)?;
        }
        Ok(())
    }

    /// The first validation error of `doc`, if any (with where it is).
    pub fn check(&self, doc: &Value) -> Result<(), SchemaError> {
        match self.validator.iter_errors(doc).next() {
            None => Ok(()),
            Some(e) => {
                let at = e.instance_path().to_string();
                Err(if at.is_empty() {
                    e.to_string().into()
                } else {
                    format!("{at}: {e}").into()
                })
            }
        }
    }

    /// The first locked pointer whose value differs between `old` and `new`.
    pub fn locked_change(&self, old: &Value, new: &Value) -> Option<&str> {
        self.locked
            .iter()
            .find(|p| old.pointer(p) != new.pointer(p))
            .map(String::as_str)
    }

    /// Whether any `admin` property differs between `old` and `new`.
    pub fn admin_change(&self, old: &Value, new: &Value) -> bool {
        self.admin.iter().any(|p| old.pointer(p) != new.pointer(p))
    }

    /// The part of `doc` that survives forget-me: its `preserve` properties.
    pub fn preserved(&self, doc: &Value) -> Map<String, Value> {
        let mut out = Value::Object(Map::new());
        for pointer in &self.preserve {
            let Some(v) = doc.pointer(pointer) else {
                continue;
            };
            let mut node = &mut out;
            let keys: Vec<String> = pointer
                .split('/')
                .skip(1)
                .map(|k| k.replace("~1", "/").replace("~0", "~"))
                .collect();
            for (i, k) in keys.iter().enumerate() {
                let Value::Object(m) = node else { break };
                if i + 1 == keys.len() {
                    m.insert(k.clone(), v.clone());
                    break;
                }
                node = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        match out {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The classes of the classified properties present in `doc`, sorted and
    /// comma-separated; `None` when there are none.
    pub fn classes_in(&self, doc: &Value) -> Option<String> {
        join_classes(
            self.classification
                .iter()
                .filter(|(p, _)| doc.pointer(p).is_some()),
        )
    }

    /// The classes of the classified properties that differ between `old` and `new`.
    pub fn classes_changed(&self, old: &Value, new: &Value) -> Option<String> {
        join_classes(
            self.classification
                .iter()
                .filter(|(p, _)| old.pointer(p) != new.pointer(p)),
        )
    }

    /// The data class of each classified property, by JSON pointer.
    pub fn classification(&self) -> &BTreeMap<String, String> {
        &self.classification
    }

    pub fn preserves_anything(&self) -> bool {
        !self.preserve.is_empty()
    }
}

fn join_classes<'a>(found: impl Iterator<Item = (&'a String, &'a String)>) -> Option<String> {
    let mut classes: Vec<&str> = found.map(|(_, c)| c.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    (!classes.is_empty()).then(|| classes.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> UserSchema {
        UserSchema::parse(
            &json!({
                "type": "object",
                "properties": {
                    "login": {"type": "string", "locked": true, "preserve": true, "classification": "pii"},
                    "email": {"type": "string", "format": "email", "preserve": true, "classification": "pii"},
                    "kyc": {"type": "object", "admin": true, "classification": "kyc",
                            "properties": {"passport": {"type": "string", "preserve": true}}},
                    "age": {"type": "integer", "minimum": 0}
                },
                "required": ["login"]
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn validates_and_locates_errors() {
        let s = schema();
        assert!(s.check(&json!({"login": "a", "age": 3})).is_ok());
        assert!(s.check(&json!({"age": 3})).unwrap_err().contains("login"));
        assert!(
            s.check(&json!({"login": "a", "age": -1}))
                .unwrap_err()
                .to_string()
                .starts_with("/age")
        );
    }

    #[test]
    fn keywords() {
        let s = schema();
        let old = json!({"login": "a", "email": "a@x", "kyc": {"passport": "P1"}, "name": "A"});
        assert_eq!(
            s.locked_change(&old, &json!({"login": "b"})),
            Some("/login")
        );
        assert_eq!(s.locked_change(&old, &old), None);
        assert!(s.admin_change(&old, &json!({"login": "a", "kyc": {}})));
        assert!(!s.admin_change(
            &old,
            &json!({"login": "a", "kyc": {"passport": "P1"}, "x": 1})
        ));
        assert_eq!(
            Value::Object(s.preserved(&old)),
            json!({"login": "a", "email": "a@x", "kyc": {"passport": "P1"}})
        );
        assert_eq!(
            s.classification().get("/kyc").map(String::as_str),
            Some("kyc")
        );
        assert_eq!(s.classes_in(&old).as_deref(), Some("kyc,pii"));
        assert_eq!(s.classes_in(&json!({"age": 1})), None);
        assert_eq!(
            s.classes_changed(&old, &json!({"login": "a", "email": "b@x"}))
                .as_deref(),
            Some("kyc,pii")
        );
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(UserSchema::parse("{").is_err());
        assert!(UserSchema::parse(r#"{"type": 5}"#).is_err());
        assert!(
            UserSchema::parse(r#"{"properties": {"a": {"classification": "secret"}}}"#).is_err()
        );
    }
}
