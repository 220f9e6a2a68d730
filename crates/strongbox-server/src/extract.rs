//! What handlers take instead of repeating the same preamble: the authenticated
//! caller, checked path parameters and the decoded body. Shared by every API module
//! (v1 now; a v2 module would sit beside it and take the same ones).
//!
//! Axum runs extractors in argument order, and the body extractor must be last; so a
//! handler written `(State, Caller, path, body)` authenticates first, then checks
//! its path, then reads its body, and each refusal is the JSON error of
//! [`crate::error`].

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::Arc;

use strongbox_core::vault::Vault;
use strongbox_core::{Error, ErrorKind, Mode, Principal};

use crate::AppState;
use crate::body;
use crate::error::ApiError;

/// The header carrying the access token, as in Databunker.
pub(crate) const TOKEN_HEADER: &str = "x-bunker-token";

/// The access token, if any. A header that is not valid text counts as a wrong token.
pub(crate) fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"))
}

/// The header that names the tenant of a v2 call.
pub(crate) const TENANT_HEADER: &str = "x-bunker-tenant";

/// The tenant vault a request was resolved to (kept in its extensions).
#[derive(Clone)]
struct Resolved(Arc<Vault>);

/// The sub-domain of a `Host` (`acme.vault.example` or `acme.localhost` → `acme`),
/// none for an IP address or a bare host.
fn subdomain(parts: &Parts) -> Option<String> {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let has_sub = labels.len() >= 3 || (labels.len() == 2 && labels[1] == "localhost");
    has_sub.then(|| labels[0].to_ascii_lowercase())
}

/// The vault a request is about. The v1 API serves the main tenant. A v2 call
/// names its tenant by `X-Bunker-Tenant` (a name that is no tenant: 404), else by
/// the `Host` sub-domain when that names a tenant, else it is the main tenant's.
pub(crate) async fn vault_for(parts: &mut Parts, state: &AppState) -> Result<Arc<Vault>, ApiError> {
    if !parts.uri.path().starts_with("/v2/") {
        return Ok(state.vault.clone());
    }
    if let Some(Resolved(v)) = parts.extensions.get::<Resolved>() {
        return Ok(v.clone());
    }
    let named = match parts.headers.get(TENANT_HEADER) {
        Some(h) => match h.to_str() {
            Ok(name) if !name.is_empty() => Some((name.to_string(), true)),
            Ok(_) => None,
            Err(_) => return Err(Error::not_found("The tenant was not found").into()),
        },
        None => subdomain(parts).map(|name| (name, false)),
    };
    let vault = match named {
        None => state.vault.clone(),
        Some((name, explicit)) => match state.vault.tenant_vault(&name).await {
            Ok(Some(v)) => v,
            Ok(None) => state.vault.clone(),
            Err(e) if e.kind == ErrorKind::NotFound && !explicit => state.vault.clone(),
            Err(e) => return Err(e.into()),
        },
    };
    parts.extensions.insert(Resolved(vault.clone()));
    Ok(vault)
}

/// The application state with the vault of the request's tenant (see
/// [`vault_for`]): what every v2 handler takes instead of `State`.
pub struct Tenant(pub AppState);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let vault = vault_for(parts, state).await?;
        Ok(Tenant(AppState {
            vault,
            ..state.clone()
        }))
    }
}

/// The caller, authenticated by the `X-Bunker-Token` header: root (a tenant's
/// admin, in its tenant) or a user access token. A missing token is 401, one that
/// matches nothing (or has expired) 403.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let vault = vault_for(parts, state).await?;
        match vault.authenticate(token(&parts.headers)).await {
            Ok(who) => token_used(parts, state, who).await.map(Caller),
            Err(e) => Err(failed_auth(parts, state, e).await),
        }
    }
}

/// The caller as [`Caller`], with the token it presented (what a bulk unlock is
/// bound to). Never logged.
pub struct CallerToken(pub Principal, pub String);

impl FromRequestParts<AppState> for CallerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(who) = Caller::from_request_parts(parts, state).await?;
        let presented = token(&parts.headers).unwrap_or_default().to_string();
        Ok(CallerToken(who, presented))
    }
}

/// The caller of `POST /v1/user`: root, or anyone when the configuration lets
/// users be created without a token (a user access token may not create users).
pub struct Creator(pub Principal);

impl FromRequestParts<AppState> for Creator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let vault = vault_for(parts, state).await?;
        match vault.authenticate_create(token(&parts.headers)).await {
            Ok(who) => token_used(parts, state, who).await.map(Creator),
            Err(e) => Err(failed_auth(parts, state, e).await),
        }
    }
}

/// A request authenticated as `who` counts against its token's own limit, when
/// that is on (`--token-requests-per-second`); over it, 429. The first refusal of
/// an episode is audited (as `who`, without the token).
async fn token_used(
    parts: &Parts,
    state: &AppState,
    who: Principal,
) -> Result<Principal, ApiError> {
    let Some(t) = token(&parts.headers) else {
        return Ok(who);
    };
    match state.http.guard.token_used(t) {
        Ok(()) => Ok(who),
        Err(refused) => {
            if refused.first
                && let Err(audit) = state.vault.record_rate_limit(&who).await
            {
                tracing::warn!(error = %audit, "the rate-limit refusal could not be audited");
            }
            Err(ApiError::TokenLimited(refused.retry_after))
        }
    }
}

/// A token that did not authenticate is a failed attempt of its client address.
async fn failed_auth(parts: &Parts, state: &AppState, e: Error) -> ApiError {
    match e.kind {
        ErrorKind::Unauthenticated | ErrorKind::Forbidden => {
            failed_attempt(state, client_of(parts, state), e).await
        }
        _ => e.into(),
    }
}

fn client_of(parts: &Parts, state: &AppState) -> Option<std::net::IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    state.http.guard.client(peer, &parts.headers)
}

/// The client address of a request (the peer, or as a trusted proxy names it).
pub struct Client(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Client(client_of(parts, state)))
    }
}

/// `e` answers a guessable request (a capability that does not exist, a token that
/// does not authenticate): counted against `client`, and 429 once it is over its
/// limit. The first refusal of an episode is audited (without address or token).
pub async fn failed_attempt(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    e: Error,
) -> ApiError {
    let Some(Err(refused)) = client.map(|ip| state.http.guard.failed(ip)) else {
        return e.into();
    };
    if refused.first
        && let Err(audit) = state.vault.record_rate_limit(&Principal::Anonymous).await
    {
        tracing::warn!(error = %audit, "the rate-limit refusal could not be audited");
    }
    ApiError::Limited(refused.retry_after)
}

fn bad_path() -> ApiError {
    Error::bad_request("bad path: parameters must be valid UTF-8").into()
}

/// Path parameters (a `String` or a tuple of them), as axum's `Path` with the API's
/// error for parameters that are not valid UTF-8.
pub struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(Params(p)),
            Err(_) => Err(bad_path()),
        }
    }
}

/// `{mode}/{identity}`: which person a route is about (`mode` checked).
pub struct UserPath {
    pub mode: Mode,
    pub identity: String,
}

impl<S: Send + Sync> FromRequestParts<S> for UserPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Params((mode, identity)) =
            Params::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(UserPath {
            mode: Mode::parse(&mode)?,
            identity,
        })
    }
}

/// `{mode}/{identity}/{app}`: one application's document of a person.
pub struct UserAppPath {
    pub mode: Mode,
    pub identity: String,
    pub app: String,
}

impl<S: Send + Sync> FromRequestParts<S> for UserAppPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Params((mode, identity, app)) =
            Params::<(String, String, String)>::from_request_parts(parts, state).await?;
        Ok(UserAppPath {
            mode: Mode::parse(&mode)?,
            identity,
            app,
        })
    }
}

/// A body that must be a JSON object (or form fields); empty is 400.
pub struct Object(pub Map<String, Value>);

impl FromRequest<AppState> for Object {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        Ok(Object(
            body::read_object(&parts.headers, body, body_limits(state)).await?,
        ))
    }
}

/// A body that, if present, must be a JSON object (or form fields); none is `{}`.
pub struct OptionalObject(pub Map<String, Value>);

impl FromRequest<AppState> for OptionalObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        Ok(OptionalObject(
            body::read_optional_object(&parts.headers, body, body_limits(state)).await?,
        ))
    }
}

/// Any JSON value (or form fields), or `None` for an empty body.
pub struct OptionalJson(pub Option<Value>);

impl FromRequest<AppState> for OptionalJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        Ok(OptionalJson(
            body::read(&parts.headers, body, body_limits(state)).await?,
        ))
    }
}

/// How the request body is read, from the HTTP settings.
pub(crate) fn body_limits(state: &AppState) -> body::BodyLimits {
    body::BodyLimits {
        limit: state.http.max_body_bytes,
        timeout: state.http.body_read_timeout,
    }
}
