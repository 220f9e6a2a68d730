//! The listener: accepts TCP connections and serves each with hyper under
//! [`Limits`]: HTTP/1.1, or HTTP/2 when a TLS client asks for it through ALPN. A
//! client that trickles its headers (slowloris) is cut off when the header timeout
//! passes; an HTTP/2 connection with no request in flight is closed (GOAWAY) after
//! the same time; connections beyond the cap are closed at once instead of queueing
//! behind the others; oversized or too many headers get 431. On shutdown it stops
//! accepting, lets each connection finish the requests it is serving, and waits for
//! them at most the drain timeout.
//!
//! Each request's handler runs in its connection's task, awaited for at most the
//! request timeout. A handler is never cancelled halfway (not by a client that
//! hangs up, not by the deadline): what is left of it then moves to a task of its
//! own and finishes, so a change is either carried out with its audit event or not
//! at all. The client that waited too long gets 503 and may retry.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

/// Requests one HTTP/2 connection may have in flight at once (its
/// `SETTINGS_MAX_CONCURRENT_STREAMS`), so that `max_connections` still bounds the
/// work clients can start.
pub const H2_MAX_STREAMS: u32 = 32;

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
        let max_headers = limits.max_headers;
        let activity = Arc::new(Activity::new());
        let busy = activity.clone();
        let service = tower::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            let in_flight = busy.begin();
            async move {
                // HTTP/1.1's count is enforced by hyper while it parses; HTTP/2
                // has only a size limit, so the count is checked here.
                let mut resp = if req.headers().len() > max_headers {
                    crate::error::error_response(
                        axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "too many header fields",
                    )
                } else {
                    answer(router, req, deadline).await
                };
                drop(in_flight);
                if secure {
                    resp.headers_mut()
                        .insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let closed = closed.clone();
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.current()));
        let limits = limits.clone();
        CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            match acceptor {
                None => serve_http1(&limits, stream, service, closed).await,
                Some(acceptor) => {
                    // A client that does not finish its handshake in time is dropped
                    // like one that trickles its headers.
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                            serve_http2(&limits, stream, service, &activity, closed).await;
                        }
                        Ok(Ok(stream)) => serve_http1(&limits, stream, service, closed).await,
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

/// Runs `req` through `router` and waits for its answer at most `deadline`: after
/// that 503, while the handler goes on to its end in a task of its own. The
/// handler runs inline in the connection's task (no task per request); if that
/// task lets go of it early (the deadline passed, or the client hung up and hyper
/// dropped the request), [`Detached`] hands what is left of it to a task.
async fn answer(
    router: Router,
    req: Request<Incoming>,
    deadline: Duration,
) -> axum::response::Response {
    let mut handler = Detached(Some(Box::pin(router.oneshot(req))));
    match tokio::time::timeout(deadline, &mut handler).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(never)) => match never {},
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

/// A handler's future that is never cancelled: dropped before it finished, it is
/// spawned to run to its end (its answer then goes nowhere), so a change is
/// carried out whole, with its audit event, or not at all. A handler that panics
/// answers 500 and is not polled again.
struct Detached<F>(Option<std::pin::Pin<Box<F>>>)
where
    F: Future<Output = Handled> + Send + 'static;

type Handled = Result<axum::response::Response, Infallible>;

impl<F> Future for Detached<F>
where
    F: Future<Output = Handled> + Send + 'static,
{
    type Output = Handled;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Handled> {
        let Some(fut) = self.0.as_mut() else {
            // Polled after it finished: hyper and tokio never do.
            return Poll::Pending;
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(ready) => {
                self.0 = None;
                ready
            }
            Err(_) => {
                self.0 = None;
                tracing::error!("a request's handler panicked");
                Poll::Ready(Ok(crate::error::error_response(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                )))
            }
        }
    }
}

impl<F> Drop for Detached<F>
where
    F: Future<Output = Handled> + Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.0.take() {
            tokio::spawn(rest);
        }
    }
}

/// `Strict-Transport-Security` under TLS: a year, subdomains not included (the vault's
/// host name says nothing about its siblings).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// When a connection last finished a request, and how many it is serving now:
/// what tells an idle HTTP/2 connection from a busy one.
struct Activity {
    started: Instant,
    /// Milliseconds from `started` to the end of the last request.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

/// A request in flight on its connection; counted until dropped (answered, or
/// given up by a client that reset its stream).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let now = u64::try_from(a.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.last.store(now, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection turns idle for `limit`, if it has nothing in flight now.
    fn idle_deadline(&self, limit: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0).then(|| {
            self.started + Duration::from_millis(self.last.load(Ordering::Relaxed)) + limit
        })
    }
}

/// The bounds of the HTTP service every connection needs.
trait Service:
    hyper::service::HttpService<Incoming, Future: Send, ResBody: Send + 'static> + Send + 'static
{
}
impl<S> Service for S where
    S: hyper::service::HttpService<Incoming, Future: Send, ResBody: Send + 'static>
        + Send
        + 'static
{
}

/// Serves one HTTP/1.1 connection until it ends, or gracefully once `closed`
/// turns true. hyper's header read timeout also bounds an idle keep-alive.
async fn serve_http1<I, S>(limits: &Limits, io: I, service: S, mut closed: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
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

/// Serves one HTTP/2 connection (TLS with ALPN `h2`) until it ends, it has had no
/// request in flight for the header timeout, or `closed` turns true; the last two
/// end it gracefully (GOAWAY: requests in flight finish, no new ones start).
async fn serve_http2<I, S>(
    limits: &Limits,
    io: I,
    service: S,
    activity: &Activity,
    mut closed: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let idle = limits.header_read_timeout;
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        // Checked again at the deadline: a request may have come and gone since.
        let wake = activity
            .idle_deadline(idle)
            .unwrap_or_else(|| Instant::now() + idle);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = async { closed.wait_for(|c| *c).await.map(|_| ()) } => break,
            () = tokio::time::sleep_until(wake.into()) => {
                if activity.idle_deadline(idle).is_some_and(|d| d <= Instant::now()) {
                    break;
                }
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    // Requests in flight get their answer (bounded by the request timeout). With
    // none, a peer that does not finish the close (it never acknowledges the
    // GOAWAY's ping) is dropped after the idle time once more.
    let give_up = Instant::now() + limits.request_timeout + idle;
    loop {
        match tokio::time::timeout(idle, conn.as_mut()).await {
            Ok(_) => return,
            Err(_) if activity.in_flight.load(Ordering::Relaxed) == 0 => return,
            Err(_) if Instant::now() >= give_up => return,
            Err(_) => {}
        }
    }
}

/// The peer address of a request served by [`serve`].
pub fn peer(req: &Request<axum::body::Body>) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
