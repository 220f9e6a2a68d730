//! The API contract as an OpenAPI 3.1 document, built from the same table that
//! builds the routers. Every documented route is registered through [`Api::op`]
//! with its description, so a route cannot be added without its entry and the
//! document cannot describe a route that does not exist. A later API version
//! registers its operations the same way and lands in the same document
//! ([`document`]).
//!
//! The schemas are written here by hand, next to the operations, rather than
//! derived from types: the handlers write Databunker's JSON field by field, and a
//! derive would describe a type that no response is made from.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Public: no token.
    Public,
    /// `X-Bunker-Token`: the root token, or a user access token where the route
    /// lets a person act on their own record.
    Token,
    /// A token, or none when the vault lets users be created without one.
    OptionalToken,
    /// The root token, or the metrics scraper's bearer token.
    TokenOrBearer,
    /// No token: a capability in the path. Wrong guesses count against the
    /// client address (429 over the limit).
    Capability,
    /// No token: passwordless login. A refused login is 403; wrong guesses and
    /// prelogins are limited (429).
    Login,
}

/// What an operation takes as its body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// A JSON object or form fields; `required` says whether an empty body is
    /// refused.
    Object {
        required: bool,
    },
    /// A change: a JSON object (merged into the record) or a JSON Patch array.
    Change,
}

/// The successful answer of an operation.
pub enum Ok {
    /// `application/json; charset=utf-8` with this schema.
    Json(Value),
    /// Another content type, described in words.
    Other {
        content_type: &'static str,
        description: &'static str,
    },
}

/// One operation: a method on a path, and what the document says about it.
pub struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    description: &'static str,
    auth: Auth,
    query: Vec<Value>,
    body: Body,
    /// The JSON body's own schema, when the operation has one (v2 methods).
    body_schema: Option<Value>,
    ok: Ok,
    conflict: bool,
    missing: bool,
}

impl Op {
    fn new(
        method: &'static str,
        path: &'static str,
        id: &'static str,
        summary: &'static str,
    ) -> Op {
        Op {
            method,
            path,
            id,
            summary,
            tag: "",
            description: "",
            auth: Auth::Token,
            query: Vec::new(),
            body: Body::None,
            body_schema: None,
            ok: Ok::Json(ok(&[])),
            conflict: false,
            missing: false,
        }
    }

    pub fn get(path: &'static str, id: &'static str, summary: &'static str) -> Op {
        Op::new("get", path, id, summary)
    }

    pub fn post(path: &'static str, id: &'static str, summary: &'static str) -> Op {
        Op::new("post", path, id, summary)
    }

    pub fn put(path: &'static str, id: &'static str, summary: &'static str) -> Op {
        Op::new("put", path, id, summary)
    }

    pub fn delete(path: &'static str, id: &'static str, summary: &'static str) -> Op {
        Op::new("delete", path, id, summary)
    }

    pub fn auth(mut self, auth: Auth) -> Op {
        self.auth = auth;
        self
    }

    pub fn describe(mut self, text: &'static str) -> Op {
        self.description = text;
        self
    }

    pub fn body(mut self, body: Body) -> Op {
        self.body = body;
        self
    }

    /// The fields of an optional JSON object body: `(name, schema, required)`.
    /// Unknown fields are allowed (clients add their own, such as
    /// `request_metadata`).
    pub fn fields(mut self, fields: &[(&str, Value, bool)]) -> Op {
        let properties: Map<String, Value> = fields
            .iter()
            .map(|(name, schema, _)| ((*name).to_string(), schema.clone()))
            .collect();
        let required: Vec<Value> = fields
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(name, _, _)| Value::from(*name))
            .collect();
        let mut schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = Value::from(required);
        }
        self.body_schema = Some(schema);
        self
    }

    /// The successful answer: a JSON body with this schema.
    pub fn ok(mut self, schema: Value) -> Op {
        self.ok = Ok::Json(schema);
        self
    }

    /// The successful answer in another content type.
    pub fn ok_other(mut self, content_type: &'static str, description: &'static str) -> Op {
        self.ok = Ok::Other {
            content_type,
            description,
        };
        self
    }

    /// `offset` and `limit` in the query string.
    pub fn paged(mut self) -> Op {
        self.query
            .push(json!({"$ref": "#/components/parameters/offset"}));
        self.query
            .push(json!({"$ref": "#/components/parameters/limit"}));
        self
    }

    /// One more query parameter.
    pub fn query(mut self, name: &'static str, description: &'static str, schema: Value) -> Op {
        self.query.push(query_param(name, description, schema));
        self
    }

    /// The operation can answer 409 (it conflicts with work under way).
    pub fn conflict(mut self) -> Op {
        self.conflict = true;
        self
    }

    /// The operation can answer 404 though its path names nothing.
    pub fn can_miss(mut self) -> Op {
        self.missing = true;
        self
    }

    fn filter(&self) -> MethodFilter {
        match self.method {
            "post" => MethodFilter::POST,
            "put" => MethodFilter::PUT,
            "delete" => MethodFilter::DELETE,
            _ => MethodFilter::GET,
        }
    }

    /// The operation object of the document.
    fn to_json(&self) -> Value {
        let mut op = Map::new();
        op.insert("operationId".into(), self.id.into());
        op.insert("summary".into(), self.summary.into());
        if !self.description.is_empty() {
            op.insert("description".into(), self.description.into());
        }
        op.insert("tags".into(), json!([self.tag]));
        let mut params: Vec<Value> = path_params(self.path).into_iter().map(path_param).collect();
        params.extend(self.query.iter().cloned());
        if !params.is_empty() {
            op.insert("parameters".into(), Value::from(params));
        }
        match &self.body_schema {
            Some(schema) => {
                op.insert(
                    "requestBody".into(),
                    json!({
                        "description": "A JSON object; none is `{}`.",
                        "required": false,
                        "content": {"application/json": {"schema": schema}},
                    }),
                );
            }
            None => {
                if let Some(body) = request_body(self.body) {
                    op.insert("requestBody".into(), body);
                }
            }
        }
        let security = match self.auth {
            Auth::Public | Auth::Capability | Auth::Login => json!([]),
            Auth::Token => json!([{"token": []}]),
            Auth::OptionalToken => json!([{"token": []}, {}]),
            Auth::TokenOrBearer => json!([{"token": []}, {"metricsBearer": []}]),
        };
        op.insert("security".into(), security);
        op.insert("responses".into(), self.responses());
        Value::Object(op)
    }

    fn responses(&self) -> Value {
        let mut out = Map::new();
        let ok = match &self.ok {
            Ok::Json(schema) => json!({
                "description": "Done.",
                "content": {"application/json": {"schema": schema}},
            }),
            Ok::Other {
                content_type,
                description,
            } => json!({
                "description": description,
                "content": {*content_type: {"schema": {"type": "string"}}},
            }),
        };
        out.insert("200".into(), ok);
        let mut errors = vec![400];
        if matches!(
            self.auth,
            Auth::Token | Auth::OptionalToken | Auth::TokenOrBearer
        ) {
            errors.extend([401, 403]);
        }
        if self.auth == Auth::Login {
            errors.push(403);
        }
        if !path_params(self.path).is_empty() || self.missing {
            errors.push(404);
        }
        if self.body != Body::None {
            errors.extend([408, 413, 415]);
        }
        if self.conflict {
            errors.push(409);
        }
        if self.auth != Auth::Public {
            errors.push(429);
        }
        errors.push(503);
        errors.sort_unstable();
        for code in errors {
            out.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/E{code}")}),
            );
        }
        Value::Object(out)
    }
}

/// A table of routes with their documentation, for one router state type.
pub struct Api<S> {
    router: Router<S>,
    ops: Vec<Op>,
    tag: &'static str,
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    pub fn new() -> Api<S> {
        Api {
            router: Router::new(),
            ops: Vec::new(),
            tag: "",
        }
    }

    /// The tag of the operations registered after this call.
    pub fn section(mut self, tag: &'static str) -> Api<S> {
        self.tag = tag;
        self
    }

    /// Registers `handler` for the operation's method and path, and documents it.
    pub fn op<H, T>(mut self, mut op: Op, handler: H) -> Api<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        op.tag = self.tag;
        self.router = self.router.route(op.path, on(op.filter(), handler));
        self.ops.push(op);
        self
    }

    /// A second path for a documented operation (Databunker's clients use both
    /// spellings): routed, and documented as its own operation.
    pub fn alias<H, T>(self, path: &'static str, id: &'static str, op: Op, handler: H) -> Api<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let op = Op {
            path,
            id,
            description: "The same operation under a second spelling of its path.",
            ..op
        };
        self.op(op, handler)
    }

    pub fn into_parts(self) -> (Router<S>, Vec<Op>) {
        (self.router, self.ops)
    }
}

/// The document for these operations.
pub fn document(ops: &[Op]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in ops {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(op.method.to_string(), op.to_json());
        }
    }
    let mut tags: Vec<&str> = Vec::new();
    for op in ops {
        if !tags.contains(&op.tag) {
            tags.push(op.tag);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Strongbox",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A self-hosted privacy vault with Databunker's API.",
            "description": "Databunker's v1 REST API as Strongbox serves it. Every answer is JSON with a `status` of `ok` or `error`; an error carries a `message`. Tokens go in the `X-Bunker-Token` header.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "paths": paths,
        "components": components(),
    })
}

fn components() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        })
    };
    json!({
        "securitySchemes": {
            "token": {
                "type": "apiKey", "in": "header", "name": "X-Bunker-Token",
                "description": "The root token, or a user access token (`/v1/xtoken`) for a person's own record.",
            },
            "metricsBearer": {
                "type": "http", "scheme": "bearer",
                "description": "The metrics scraper's token (`--metrics-token`).",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"const": "error"},
                    "message": {"type": "string"},
                },
            },
        },
        "parameters": parameters(),
        "requestBodies": request_bodies(),
        "responses": {
            "E400": error("The request is malformed: a bad path parameter, query value or body."),
            "E401": error("No token was given."),
            "E403": error("The token is wrong, expired, or may not do this."),
            "E404": error("No such record, or no such route."),
            "E408": error("The body did not arrive within the body read timeout."),
            "E409": error("The operation conflicts with work under way; try again."),
            "E413": error("The body is larger than the configured maximum."),
            "E415": error("The body is neither JSON nor form fields."),
            "E429": {
                "description": "Too many failed attempts from this client address, too many login codes asked for one identity or from one address, or (when the per-token limit is on) too many requests with this access token.",
                "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "E503": error("The vault is sealed, or its database or audit log is unavailable."),
        },
    })
}

/// The names in a path template, in order (`/v1/user/{mode}/{identity}`).
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The path parameters every route shares, described once under
/// `components/parameters`.
const PATH_PARAMS: &[(&str, &str)] = &[
    ("mode", "How `identity` names the person."),
    (
        "identity",
        "The person's token, login, email, phone or custom index, as `mode` says.",
    ),
    ("app", "The application's name."),
    ("session", "The session id (a UUID)."),
    ("token", "The person's token."),
    ("xtoken", "A user access token."),
    ("rtoken", "A request's token."),
    ("atoken", "An audit event's token."),
    ("record", "A shared record's id (the capability)."),
    ("exptoken", "The retention link's token (the capability)."),
    ("brief", "A legal basis's short name."),
    ("activity", "A processing activity's short name."),
    (
        "code",
        "In a prelogin, the digits read from the captcha image; in `/v1/captcha/{code}`, the captcha token.",
    ),
    (
        "captcha",
        "The captcha token whose image the digits were read from.",
    ),
    ("tmp", "The login code that prelogin sent."),
];

fn path_param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn parameters() -> Value {
    let mut out = Map::new();
    for (name, description) in PATH_PARAMS {
        let schema = match *name {
            "mode" => {
                json!({"type": "string", "enum": ["token", "login", "email", "phone", "custom"]})
            }
            "identity" | "app" | "code" | "captcha" | "tmp" => string(),
            // Lower-case letters, digits and `-`, starting with a letter (upper case
            // is accepted and lowered).
            "brief" | "activity" => json!({"type": "string", "pattern": "^[a-z][a-z0-9-]{1,64}$"}),
            _ => json!({"type": "string", "format": "uuid"}),
        };
        out.insert(
            (*name).to_string(),
            json!({
                "name": name, "in": "path", "required": true,
                "description": description, "schema": schema,
            }),
        );
    }
    out.insert(
        "offset".into(),
        query_param(
            "offset",
            "Rows to skip (default 0).",
            json!({"type": "integer", "minimum": 0}),
        ),
    );
    out.insert(
        "limit".into(),
        query_param(
            "limit",
            "Rows to return (default 10; 0, or anything above the maximum, means the maximum).",
            json!({"type": "integer", "minimum": 0}),
        ),
    );
    Value::Object(out)
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn request_body(body: Body) -> Option<Value> {
    let name = match body {
        Body::None => return None,
        Body::Object { required: true } => "Object",
        Body::Object { required: false } => "OptionalObject",
        Body::Change => "Change",
    };
    Some(json!({"$ref": format!("#/components/requestBodies/{name}")}))
}

fn request_bodies() -> Value {
    let body = |required: bool, description: &str, schema: Value| {
        json!({
            "description": description,
            "required": required,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            },
        })
    };
    json!({
        "Object": body(true, "A JSON object, or form fields.", object()),
        "OptionalObject": body(false, "A JSON object, or form fields; none is `{}`.", object()),
        "Change": body(
            true,
            "A JSON object (merged into the record) or a JSON Patch (RFC 6902) array.",
            json!({"oneOf": [object(), array(object())]}),
        ),
    })
}

pub fn string() -> Value {
    json!({"type": "string"})
}

pub fn integer() -> Value {
    json!({"type": "integer"})
}

pub fn boolean() -> Value {
    json!({"type": "boolean"})
}

pub fn object() -> Value {
    json!({"type": "object"})
}

pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// `{"status":"ok", …fields}`, every field required.
pub fn ok(fields: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    properties.insert("status".into(), json!({"const": "ok"}));
    let mut required = vec![Value::from("status")];
    for (name, schema) in fields {
        properties.insert((*name).to_string(), schema.clone());
        required.push(Value::from(*name));
    }
    json!({"type": "object", "required": required, "properties": properties})
}

/// [`ok`] with fields that are there only sometimes (`optional`).
pub fn ok_some(fields: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut schema = ok(fields);
    for (name, field) in optional {
        schema["properties"][*name] = field.clone();
    }
    schema
}

/// `{"status":"ok","total":N,"rows":[…]}`.
pub fn listing(row: Value) -> Value {
    ok(&[("total", integer()), ("rows", array(row))])
}

/// An answer that is either `done` or, for a person acting on their own record
/// under a "request" self-service setting, a DPO request.
pub fn or_request(done: Value) -> Value {
    json!({
        "oneOf": [
            done,
            ok(&[
                ("result", json!({"enum": ["request-created", "request-exists"]})),
                ("rtoken", string()),
            ]),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_read_from_the_template() {
        assert_eq!(
            path_params("/v1/userapp/{mode}/{identity}/{app}"),
            vec!["mode", "identity", "app"]
        );
        assert!(path_params("/v1/status").is_empty());
    }

    #[test]
    fn errors_follow_auth_and_body() {
        let public = Op::get("/v1/status", "s", "s").auth(Auth::Public);
        let codes: Vec<String> = public
            .responses()
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(codes, ["200", "400", "503"]);
        let create = Op::post("/v1/user", "c", "c").body(Body::Object { required: true });
        let codes: Vec<String> = create
            .responses()
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            codes,
            [
                "200", "400", "401", "403", "408", "413", "415", "429", "503"
            ]
        );
    }
}
