//! Databunker Pro's v2 API: `POST /v2/{Method}` with a JSON body, answered
//! `{"status":"ok",…}` or `{"status":"error","message":…}`. A thin adapter, like v1:
//! every method calls the core service its v1 twin calls, so no rule exists twice.
//!
//! Transport rules (the reference's §0): an empty body is `{}`; `request_metadata`
//! (an object) is accepted by every method; `null` is an absent field; the tenant is
//! named by `X-Bunker-Tenant` (today only this vault's own tenant exists, and any
//! other name is refused); an unknown method is a JSON 404.

mod apps;
mod consent;
mod sessions;
mod users;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::any;
use serde_json::{Map, Value, json};
use strongbox_core::{Error, Mode, Outcome, Result};

use crate::AppState;
use crate::error::{ApiError, error_response};
use crate::openapi::{Api, Auth, Body, Op, object, ok, string};
use crate::reply::ok_fields;

/// What every handler returns.
type Reply = std::result::Result<Response, ApiError>;

/// The header that names the tenant.
const TENANT_HEADER: &str = "x-bunker-tenant";

/// A v2 method's operation: `POST /v2/<name>`, its JSON body optional.
macro_rules! method {
    ($name:literal, $summary:literal) => {
        Op::post(concat!("/v2/", $name), $name, $summary).body(Body::Object { required: false })
    };
}

/// The v2 methods, each with its entry in the API document.
pub fn api() -> Api<AppState> {
    Api::new()
        .section("v2 users")
        .op(
            method!("UserCreate", "Create a person's record (v2)")
                .describe("`profile` (object, required): the person's data, indexed by `login`, `email`, `phone` and `custom`.")
                .conflict()
                .ok(ok(&[("token", string())])),
            users::create,
        )
        .op(
            method!("UserGet", "Read a person's profile (v2)")
                .describe("`mode` (`token`, `login`, `email`, `phone`, `custom`) and `identity` name the person.")
                .can_miss()
                .ok(ok(&[("token", string()), ("profile", object())])),
            users::get,
        )
        .op(
            method!("UserUpdate", "Change a person's profile by merge patch (v2)")
                .describe("`mode`, `identity`, `profile`: an RFC 7386 merge patch; the indexes follow the new values.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            users::update,
        )
        .op(
            method!("UserPatch", "Change a person's profile by JSON Patch (v2)")
                .describe("`mode`, `identity`, `patch`: an RFC 6902 JSON Patch.")
                .can_miss()
                .conflict()
                .ok(ok(&[])),
            users::patch,
        )
        .op(
            method!("UserDelete", "Erase a person (v2)")
                .describe("`mode`, `identity`. Crypto-shredding, with a signed erasure receipt, as `DELETE /v1/user`.")
                .can_miss()
                .ok(ok(&[])),
            users::delete,
        )
        .section("v2 app data")
        .op(
            method!("AppdataCreate", "Store an application's document of a person (v2)")
                .describe("`mode`, `identity`, `appname` (`^[a-z][a-z0-9_]{1,30}$`), `appdata` (object): replaces the document.")
                .can_miss()
                .ok(ok(&[])),
            apps::create,
        )
        .op(
            method!("AppdataGet", "Read an application's document of a person (v2)")
                .describe("`mode`, `identity`, `appname`.")
                .can_miss()
                .ok(ok(&[("appdata", object())])),
            apps::get,
        )
        .op(
            method!("AppdataUpdate", "Change an application's document of a person (v2)")
                .describe("`mode`, `identity`, `appname`, `appdata`: merged into the document (RFC 7386).")
                .can_miss()
                .ok(ok(&[])),
            apps::update,
        )
        .op(
            method!("AppdataDelete", "Delete an application's document of a person (v2)")
                .describe("`mode`, `identity`, `appname`.")
                .can_miss()
                .ok(ok(&[])),
            apps::delete,
        )
        .op(
            method!("AppdataListUserAppNames", "The applications holding a person's data (v2)")
                .describe("`mode`, `identity`.")
                .can_miss()
                .ok(ok(&[("apps", json!({"type": "array", "items": string()}))])),
            apps::list_of_user,
        )
        .op(
            method!("AppdataListAppNames", "The names of all applications (v2, root)")
                .ok(ok(&[("apps", json!({"type": "array", "items": string()}))])),
            apps::list_all,
        )
        .section("v2 consent")
        .op(
            method!("LegalBasisCreate", "Create a legal basis (v2, root)")
                .describe("`brief` (`^[a-z][a-z0-9-]{1,64}$`), `status`, `module`, `fulldesc`, `shortdesc`, `basistype`, `requiredmsg`, `requiredflag`, `usercontrol`.")
                .ok(ok(&[])),
            consent::create_basis,
        )
        .op(
            method!("LegalBasisUpdate", "Change a legal basis (v2, root)")
                .describe("`brief`, and `newbrief` to rename it, with the fields of LegalBasisCreate to change.")
                .can_miss()
                .ok(ok(&[])),
            consent::update_basis,
        )
        .op(
            method!("LegalBasisDelete", "Delete a legal basis (v2, root)")
                .describe("`brief`. Consents to it are revoked.")
                .can_miss()
                .ok(ok(&[])),
            consent::delete_basis,
        )
        .op(
            method!("LegalBasisListAgreements", "The legal bases (v2)")
                .describe("Root: every legal basis; a person's access token: the active ones.")
                .ok(rows_schema()),
            consent::list_bases,
        )
        .op(
            method!("AgreementAccept", "Record a person's consent (v2)")
                .describe("`mode`, `identity`, `brief`, and `agreementmethod`, `referencecode`, `starttime`, `finaltime`, `status`, `lastmodifiedby`.")
                .can_miss()
                .ok(ok(&[])),
            consent::accept,
        )
        .op(
            method!("AgreementGet", "A person's consent to a legal basis (v2)")
                .describe("`mode`, `identity`, `brief`.")
                .can_miss()
                .ok(ok(&[("agreement", object())])),
            consent::get,
        )
        .op(
            method!("AgreementListUserAgreements", "A person's consents (v2)")
                .describe("`mode`, `identity`.")
                .can_miss()
                .ok(rows_schema()),
            consent::list_of_user,
        )
        .op(
            method!("AgreementCancel", "Withdraw a person's consent (v2)")
                .describe("`mode`, `identity`, `brief`. A person's own withdrawal of a basis they may not withdraw themselves becomes a request.")
                .can_miss()
                .ok(json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}, "result": string(), "rtoken": string()}})),
            consent::cancel,
        )
        .op(
            method!("AgreementRevokeAll", "Withdraw everyone's consent to a legal basis (v2, root)")
                .describe("`brief`.")
                .can_miss()
                .ok(ok(&[])),
            consent::revoke_all,
        )
        .section("v2 sessions and shared records")
        .op(
            method!("SessionUpsert", "Store a session (v2, root)")
                .describe("`sessionuuid`, `sessiondata` (object; a `login`, `email`, `phone` or `token` in it links the person), `finaltime`.")
                .ok(ok(&[])),
            sessions::upsert,
        )
        .op(
            method!("SessionGet", "Read a session (v2)")
                .describe("`sessionuuid`.")
                .can_miss()
                .ok(ok(&[("sessiondata", object())])),
            sessions::get,
        )
        .op(
            method!("SessionDelete", "Delete a session (v2, root)")
                .describe("`sessionuuid`.")
                .ok(ok(&[])),
            sessions::delete,
        )
        .op(
            method!("SessionListUserSessions", "A person's sessions (v2)")
                .describe("`mode`, `identity`, `offset`, `limit` (1–100; other values are 100).")
                .can_miss()
                .ok(rows_schema()),
            sessions::list_of_user,
        )
        .op(
            method!("SharedRecordCreate", "A time-limited view of a person's data for a partner (v2)")
                .describe("`mode`, `identity`, `fields` (comma-separated; all when absent), `partner`, `appname` (share app data), `finaltime`.")
                .can_miss()
                .ok(ok(&[("recorduuid", string())])),
            sessions::share,
        )
        .op(
            method!("SharedRecordGet", "Read a shared record (v2; the id is the capability)")
                .auth(Auth::Capability)
                .describe("`recorduuid`. No token: an unknown id is a failed attempt of the client address.")
                .can_miss()
                .ok(ok(&[("data", object()), ("appname", string())])),
            sessions::get_shared,
        )
}

/// `{status, total, rows}`.
fn rows_schema() -> Value {
    ok(&[
        ("total", json!({"type": "integer"})),
        ("rows", json!({"type": "array", "items": object()})),
    ])
}

/// `{"status":"ok"}`, or the DPO request a user's own change became.
fn done_or_requested(o: Outcome) -> Response {
    match o {
        Outcome::Done(_) => ok_fields(&[]),
        Outcome::Requested { rtoken, existed } => ok_fields(&[
            (
                "result",
                Value::from(if existed {
                    "request-exists"
                } else {
                    "request-created"
                }),
            ),
            ("rtoken", Value::from(rtoken)),
        ]),
    }
}

/// The v2 router: [`api`]'s methods, and a JSON 404 for any other `/v2/…`.
pub fn routes() -> Router<AppState> {
    let (router, _) = api().into_parts();
    router.route("/v2/{*method}", any(unknown))
}

async fn unknown() -> Response {
    error_response(StatusCode::NOT_FOUND, "The API request was not found")
}

/// A v2 call's arguments: the body's fields (none: `{}`), without `request_metadata`,
/// once the tenant is checked.
pub struct Args(Map<String, Value>);

impl FromRequest<AppState> for Args {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> std::result::Result<Self, ApiError> {
        if let Some(name) = req.headers().get(TENANT_HEADER) {
            let name = name.to_str().unwrap_or("");
            if !name.is_empty() && name != state.vault.tenant() {
                return Err(Error::not_found("The tenant was not found").into());
            }
        }
        let crate::extract::OptionalObject(mut args) =
            crate::extract::OptionalObject::from_request(req, state).await?;
        match args.remove("request_metadata") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(_) => {
                return Err(Error::bad_request("request_metadata must be a JSON object").into());
            }
        }
        Ok(Args(args))
    }
}

impl Args {
    /// The fields other than `skip`, `null` ones left out.
    fn fields_except(&self, skip: &[&str]) -> Map<String, Value> {
        self.0
            .iter()
            .filter(|(k, v)| !v.is_null() && !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A field, `null` counting as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn missing(name: &str) -> Error {
        Error::bad_request(format!("Missing API request parameters: {name}"))
    }

    /// A required string field (a number is taken as its text, as Databunker's
    /// clients send numeric identities).
    fn text(&self, name: &str) -> Result<String> {
        match self.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(_) => Err(Error::bad_request(format!(
                "The {name} parameter has an incorrect format"
            ))),
        }
    }

    /// A required object field.
    fn object(&self, name: &str) -> Result<Map<String, Value>> {
        match self.get(name) {
            None => Err(Self::missing(name)),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(Error::bad_request(format!(
                "The {name} parameter must be a JSON object"
            ))),
        }
    }

    /// A required field of any JSON type.
    fn value(&self, name: &str) -> Result<Value> {
        self.get(name).cloned().ok_or_else(|| Self::missing(name))
    }

    /// `offset` and `limit` (numbers or numeric text); a limit outside 1–100 is 100,
    /// as in Databunker Pro.
    fn page(&self) -> Result<strongbox_core::Page> {
        let bad = |name: &str| {
            Error::bad_request(format!("The {name} parameter has an incorrect format"))
        };
        let number = |name: &str| -> Result<Option<i64>> {
            match self.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(name)),
                Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad(name)),
                Some(_) => Err(bad(name)),
            }
        };
        let offset = number("offset")?.unwrap_or(0).max(0);
        let limit = number("limit")?
            .filter(|l| (1..=100).contains(l))
            .unwrap_or(100);
        strongbox_core::Page::parse(Some(&offset.to_string()), Some(&limit.to_string()))
    }

    /// `mode` and `identity`: who the call is about.
    fn person(&self) -> Result<(Mode, String)> {
        let mode = Mode::parse(&self.text("mode")?)
            .map_err(|_| Error::bad_request("The mode parameter has an incorrect format"))?;
        Ok((mode, self.text("identity")?))
    }
}
