//! The listener: accepts TCP connections and serves each over HTTP/1.1 with hyper,
//! under [`Limits`]. A client that trickles its headers (slowloris) is cut off when
//! the header timeout passes; connections beyond the cap are closed at once instead
//! of queueing behind the others; oversized or too many headers get 431. On shutdown
//! it stops accepting, lets each connection finish the request it is serving, and
//! waits for them at most the drain timeout.
//!
//! Each request runs in a task of its own, which the connection awaits for at most
//! the request timeout. A handler is never cancelled halfway (not by a client that
//! hangs up, not by the deadline): what it started, it finishes, so a change is
//! either carried out with its audit event or not at all. The client that waited
//! too long gets 503 and may retry.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Connection-level limits. Every one is a setting of `serve` (docs/operations.md).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from when the server
    /// is ready to read them (on an idle keep-alive connection too).
    pub header_read_timeout: Duration,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Longest wait at shutdown for requests in flight.
    pub drain_timeout: Duration,
    /// Time from a request's headers to its answer's head; 503 after that.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Connections closed on arrival because the cap was reached.
pub static CONNECTIONS_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Connections being served now.
pub static CONNECTIONS_OPEN: AtomicU64 = AtomicU64::new(0);
/// Requests answered 503 because they passed the request timeout.
pub static REQUESTS_TIMED_OUT: AtomicU64 = AtomicU64::new(0);

/// Serves `router` on `listener` under `limits` until `shutdown` completes, then
/// drains. Each request carries its peer address as `ConnectInfo<SocketAddr>`. With
/// `tls`, every connection must complete a TLS handshake (within the header timeout)
/// and every response says `Strict-Transport-Security`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let (closing, closed) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept:
                    // pause briefly rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            CONNECTIONS_REFUSED.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let secure = tls.is_some();
        let router = router.clone();
        let deadline = limits.request_timeout;
        let service = tower::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let mut resp = answer(router, req, deadline).await;
                if secure {
                    resp.headers_mut()
                        .insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(limits.max_headers)
            .max_header_size(limits.max_header_bytes)
            .keep_alive(true);
        let closed = closed.clone();
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.current()));
        let handshake_timeout = limits.header_read_timeout;
        CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            match acceptor {
                None => serve_connection(&builder, stream, service, closed).await,
                Some(acceptor) => {
                    // A client that does not finish its handshake in time is dropped
                    // like one that trickles its headers.
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(&builder, stream, service, closed).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    if tokio::time::timeout(limits.drain_timeout, permits.acquire_many(slots))
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight when the drain timeout passed; their connections close"
        );
    }
    Ok(())
}

/// Runs `req` through `router` in a task of its own and waits for its answer at
/// most `deadline`: after that 503, while the task goes on to its end.
async fn answer(
    router: Router,
    req: Request<Incoming>,
    deadline: Duration,
) -> axum::response::Response {
    let task = tokio::spawn(router.oneshot(req));
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(Ok(resp))) => resp,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a request's task failed");
            crate::error::error_response(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
        }
        Err(_) => {
            REQUESTS_TIMED_OUT.fetch_add(1, Ordering::Relaxed);
            crate::error::error_response(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "the request did not finish within {} seconds (a database that does not answer?); it may still complete",
                    deadline.as_secs()
                ),
            )
        }
    }
}

/// `Strict-Transport-Security` under TLS: a year, subdomains not included (the vault's
/// host name says nothing about its siblings).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// Serves one connection until it ends, or gracefully once `closed` turns true.
async fn serve_connection<I, S>(
    builder: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    mut closed: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { closed.wait_for(|c| *c).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The peer address of a request served by [`serve`].
pub fn peer(req: &Request<axum::body::Body>) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
