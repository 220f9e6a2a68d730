//! Sealed start: the vault without its root key.
//!
//! A store initialized with `--shares N --threshold K` has no root key anywhere: the
//! server starts *sealed*. Then `GET /v1/status` says so, `POST /v1/sys/unseal`
//! takes shares one at a time (`{"share": "sbx1-…"}`) and every other route answers
//! 503. When K distinct shares are in, they are combined and the result is checked
//! against the store's canary by opening the vault: a wrong or tampered share never
//! yields a key in use — the attempt is refused and the shares given so far are
//! dropped. Shares given longer ago than the timeout ([`UNSEAL_TIMEOUT`] by default)
//! expire.
//!
//! `POST /v1/sys/seal` (root token) drops the open vault — its keys are wiped when
//! the last request using it finishes — and stops its background jobs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use strongbox_core::unseal::SealConfig;
use strongbox_core::unseal::{Given, ShareError, Unsealing};
use strongbox_core::{RootKey, Vault};
use tower::ServiceExt;
use zeroize::Zeroizing;

use crate::error::error_response;
use crate::openapi::{Api, Auth, Body, Op, boolean, integer, ok};
use crate::reply::json_response;
use crate::{HttpConfig, router};

/// Shares given longer ago than this are dropped, by default.
pub const UNSEAL_TIMEOUT: Duration = Duration::from_secs(600);

/// Opening the vault from a root key (the canary check included).
pub type Opening = Pin<Box<dyn Future<Output = Result<Arc<Vault>, String>> + Send>>;

/// What the gate needs from the program that runs it.
pub trait Unsealer: Send + Sync + 'static {
    /// Opens the vault with `root`; fails for a key that is not the store's.
    fn open(&self, root: RootKey) -> Opening;
    /// Starts the background jobs of an opened vault; they are aborted when it is
    /// sealed again.
    fn start(&self, vault: Arc<Vault>) -> Vec<tokio::task::AbortHandle>;
}

struct Open {
    router: Router,
    vault: Arc<Vault>,
    jobs: Vec<tokio::task::AbortHandle>,
}

/// The vault behind a seal.
pub struct Gate {
    open: RwLock<Option<Open>>,
    /// The shares given so far; `None`: the store keeps no shares, so it cannot be
    /// sealed (its key is supplied).
    unsealing: Option<Unsealing>,
    unsealer: Box<dyn Unsealer>,
    http: HttpConfig,
}

impl Gate {
    /// The listener's limits from the HTTP settings the gate was made with.
    pub fn http_limits(&self) -> crate::Limits {
        self.http.limits.clone()
    }

    pub fn new(
        config: Option<SealConfig>,
        unsealer: Box<dyn Unsealer>,
        http: HttpConfig,
        timeout: Duration,
    ) -> Gate {
        Gate {
            open: RwLock::new(None),
            unsealing: config.map(|c| Unsealing::new(c, timeout)),
            unsealer,
            http,
        }
    }

    /// Drops shares given longer ago than the timeout (called by a timer, so they do
    /// not linger in memory until the next request).
    pub fn expire_shares(&self) {
        if let Some(u) = &self.unsealing {
            u.expire();
        }
    }

    // The guarded values are always consistent (each change is one assignment), so
    // a panic elsewhere never hides the state behind a poisoned lock.
    fn read(&self) -> RwLockReadGuard<'_, Option<Open>> {
        self.open.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<Open>> {
        self.open.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs an opened vault (a root key supplied at start, or the shares in).
    /// If one is open already, the new one is dropped.
    pub fn install(&self, vault: Arc<Vault>) {
        let mut open = self.write();
        if open.is_some() {
            return;
        }
        let jobs = self.unsealer.start(vault.clone());
        let router = router(vault.clone(), self.http.clone());
        *open = Some(Open {
            router,
            vault,
            jobs,
        });
    }

    /// The open vault, if unsealed.
    pub fn vault(&self) -> Option<Arc<Vault>> {
        self.read().as_ref().map(|o| o.vault.clone())
    }

    fn inner(&self) -> Option<Router> {
        self.read().as_ref().map(|o| o.router.clone())
    }

    /// Drops the open vault and stops its jobs; returns it so a clean shutdown can
    /// finish its work.
    fn close(&self) -> Option<Arc<Vault>> {
        let open = self.write().take()?;
        for job in &open.jobs {
            job.abort();
        }
        Some(open.vault)
    }

    /// Unseal progress: (shares in, threshold, shares in all).
    fn progress(&self) -> (usize, u8, u8) {
        self.unsealing.as_ref().map_or((0, 0, 0), |u| {
            (u.given(), u.config().threshold, u.config().shares)
        })
    }

    fn status(&self) -> Value {
        let (given, threshold, shares) = self.progress();
        json!({
            "status": "ok",
            "sealed": self.inner().is_none(),
            "progress": given,
            "threshold": threshold,
            "shares": shares,
        })
    }
}

fn sealed_response(gate: &Gate) -> Response {
    let (given, threshold, _) = gate.progress();
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "the vault is sealed: unseal it with `strongbox unseal` ({given} of {threshold} shares given)"
        ),
    )
}

fn json(status: StatusCode, v: &Value) -> Response {
    json_response(status, v.to_string().into_bytes())
}

async fn seal_status(State(gate): State<Arc<Gate>>) -> Response {
    json(StatusCode::OK, &gate.status())
}

async fn status(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    match gate.inner() {
        Some(r) => forward(r, req).await,
        None => sealed_response(&gate),
    }
}

/// `/v1/sys/health`: the open vault's answer, or 503 saying it is sealed.
async fn health(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    match gate.inner() {
        Some(r) => forward(r, req).await,
        None => {
            let (given, threshold, _) = gate.progress();
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({
                    "status": "error",
                    "message": format!(
                        "the vault is sealed ({given} of {threshold} shares given)"
                    ),
                    "sealed": true,
                }),
            )
        }
    }
}

async fn forward(router: Router, mut req: Request) -> Response {
    // The inner router matches the path again; a matched path left from the gate's
    // own routes would be joined with it (`/v1/status/v1/status` in the log).
    req.extensions_mut().remove::<axum::extract::MatchedPath>();
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

async fn fallback(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    match gate.inner() {
        Some(r) => forward(r, req).await,
        None => sealed_response(&gate),
    }
}

async fn unseal(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let client = gate.http.guard.client(peer, &parts.headers);
    // A share that is not the vault's is a failed attempt of its client address.
    // (While sealed there is no audit log to record the refusal in.)
    let failed = |resp: Response| match client.map(|ip| gate.http.guard.failed(ip)) {
        Some(Err(refused)) => {
            crate::guard::too_many(refused.retry_after, crate::guard::Limit::Address)
        }
        _ => resp,
    };
    let bad = |m: &str| error_response(StatusCode::BAD_REQUEST, m);
    if gate.inner().is_some() {
        return json(StatusCode::OK, &gate.status());
    }
    let Some(unsealing) = gate.unsealing.as_ref() else {
        return bad("this vault keeps no key shares: start it with its root key");
    };
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return bad("the body must be a small JSON object: {\"share\": \"sbx1-…\"}");
    };
    let text: Option<Zeroizing<String>> =
        serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.get("share")
                .or(v.get("key"))
                .and_then(Value::as_str)
                .map(|s| Zeroizing::new(s.to_string()))
        });
    let Some(text) = text else {
        return bad("the body must be a JSON object: {\"share\": \"sbx1-…\"}");
    };
    let refused = || {
        bad(
            "the shares do not form the root key (a wrong or damaged share); the shares given so far were dropped, start again",
        )
    };
    // While `attempt` lives, further shares wait; when this function ends, however
    // it ends (even abandoned by a client that went away), they start over.
    let mut attempt = match unsealing.give(&text) {
        Ok(Given::Counted) => return json(StatusCode::OK, &gate.status()),
        Ok(Given::Ready(attempt)) => attempt,
        Err(e @ ShareError::Busy) => {
            return error_response(StatusCode::CONFLICT, &e.to_string());
        }
        Err(ShareError::DoNotFit) => {
            tracing::warn!("unsealing failed: the shares do not fit together");
            return failed(refused());
        }
        Err(e) => return failed(bad(&e.to_string())),
    };
    let Some(root) = attempt.take_key() else {
        return failed(refused());
    };
    match gate.unsealer.open(root).await {
        Ok(vault) => {
            gate.install(vault);
            tracing::info!("vault unsealed");
            drop(attempt);
            json(StatusCode::OK, &gate.status())
        }
        Err(e) => {
            tracing::warn!(error = %e, "unsealing failed: the shares do not form the root key");
            failed(refused())
        }
    }
}

async fn seal(State(gate): State<Arc<Gate>>, headers: HeaderMap) -> Response {
    let Some(vault) = gate.vault() else {
        return json(StatusCode::OK, &gate.status());
    };
    let token = headers
        .get(crate::extract::TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"));
    match vault.authenticate(token).await.and_then(|p| {
        p.require_root()?;
        Ok(p)
    }) {
        Ok(_) => {}
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    }
    let Some(unsealing) = gate.unsealing.as_ref() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "this vault keeps no key shares, so it could not be unsealed again: stop the process instead",
        );
    };
    if unsealing.opening() {
        return error_response(
            StatusCode::CONFLICT,
            "the vault is being unsealed; try again",
        );
    }
    // Seal what is pending, so the events of this session are in the chain.
    if let Err(e) = vault.seal_audit().await {
        tracing::warn!(error = %e, "sealing the audit chain before sealing the vault failed");
    }
    drop(vault);
    gate.close();
    tracing::info!("vault sealed");
    json(StatusCode::OK, &gate.status())
}

/// The gate's own operations, with their entries in the API document.
pub(crate) fn api() -> Api<Arc<Gate>> {
    let status = || {
        ok(&[
            ("sealed", boolean()),
            ("progress", integer()),
            ("threshold", integer()),
            ("shares", integer()),
        ])
    };
    Api::new()
        .section("Seal")
        .op(
            Op::get("/v1/sys/seal-status", "sealStatus", "Whether the vault is sealed, and the unseal progress")
                .auth(Auth::Public)
                .ok(status()),
            seal_status,
        )
        .op(
            Op::post("/v1/sys/unseal", "unseal", "Give one key share")
                .auth(Auth::Capability)
                .describe("Body `{\"share\": \"sbx1-…\"}`. A share that is not the vault's is a failed attempt of the client address.")
                .body(Body::Object { required: true })
                .conflict()
                .ok(status()),
            unseal,
        )
        .op(
            Op::post("/v1/sys/seal", "seal", "Seal the vault (root; only a vault that keeps key shares)")
                .conflict()
                .ok(status()),
            seal,
        )
}

/// The router in front of the gate: seal and unseal, status, and everything else
/// passed to the open vault's router. The status and health routes forward to the
/// open vault's documented ones, or answer for the sealed vault.
pub fn gated_router(gate: Arc<Gate>) -> Router {
    let (own, _) = api().into_parts();
    own.route("/v1/status", get(status))
        .route("/v1/status/", get(status))
        .route("/status", get(status))
        .route("/v1/sys/health", get(health))
        .route("/openapi.json", get(crate::openapi_json))
        // The pages load while the vault is sealed too (they then say so).
        .merge(crate::ui::routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn(crate::middleware::gate_headers))
        .with_state(gate)
}

/// Seals the gate for good at shutdown, handing back the vault for final work.
pub fn shut(gate: &Gate) -> Option<Arc<Vault>> {
    gate.close()
}
