//! Serving HTTP/1.1 on a listener with the limits that keep clients from
//! exhausting the daemon (used for the API sockets and the metrics port).
//!
//! - **Header read timeout, which is also the idle timeout**
//!   ([`HEADER_READ_TIMEOUT`], 5 minutes: dockerd's `ReadHeaderTimeout`). A
//!   request's head must arrive within it, so a client that sends headers
//!   byte by byte (slowloris) or nothing at all is closed. hyper runs the same
//!   timer while a keep-alive connection waits for its next request, so an
//!   idle connection is closed after it too; it is longer than the idle
//!   timeouts of Go's and hyper's client pools (90 s), so clients drop idle
//!   connections first. The timer never runs while a response is being
//!   sent (`logs -f`, `events`, `stats`) nor on an upgraded connection
//!   (attach, exec): those live as long as they are in use.
//! - **A cap on open connections** ([`Limits::api`], [`Limits::metrics`]).
//!   At the cap berth stops accepting: new clients wait in the socket's
//!   backlog (as behind Go's `netutil.LimitListener`) and are served as soon
//!   as a connection closes. An upgraded connection counts until it closes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::serve::Listener;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How long a client may take to send a request's head, and how long a
/// keep-alive connection may sit idle (dockerd: `ReadHeaderTimeout` 5 min).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The most API connections open at once (all API listeners together),
/// unless half the process's file descriptor limit is lower.
pub const API_MAX_CONNECTIONS: usize = 4096;

/// The fewest API connections allowed, however low the descriptor limit.
pub const API_MIN_CONNECTIONS: usize = 64;

/// The most connections to the metrics port at once (scrapers hold one each).
pub const METRICS_MAX_CONNECTIONS: usize = 64;

/// The limits of one or more listeners. Clones share the connection cap.
#[derive(Clone)]
pub struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
    connections: Arc<Semaphore>,
}

impl Limits {
    pub fn new(header_read_timeout: Duration, max_connections: usize) -> Limits {
        Limits { header_read_timeout, max_connections, connections: Arc::new(Semaphore::new(max_connections)) }
    }

    /// The API sockets: [`HEADER_READ_TIMEOUT`] and a cap of
    /// [`API_MAX_CONNECTIONS`], lowered to half the soft `RLIMIT_NOFILE` (the
    /// other half stays for containerd, FIFOs, logs and records), never below
    /// [`API_MIN_CONNECTIONS`].
    pub fn api() -> Limits {
        Limits::new(HEADER_READ_TIMEOUT, api_max_connections(nofile_soft_limit()))
    }

    /// The metrics port: [`HEADER_READ_TIMEOUT`], [`METRICS_MAX_CONNECTIONS`].
    pub fn metrics() -> Limits {
        Limits::new(HEADER_READ_TIMEOUT, METRICS_MAX_CONNECTIONS)
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Connections open now (upgraded ones included).
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }
}

fn nofile_soft_limit() -> Option<libc::rlim_t> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0).then_some(rl.rlim_cur)
}

fn api_max_connections(nofile: Option<libc::rlim_t>) -> usize {
    match nofile {
        Some(n) if n != libc::RLIM_INFINITY => ((n / 2).min(API_MAX_CONNECTIONS as libc::rlim_t) as usize).max(API_MIN_CONNECTIONS),
        _ => API_MAX_CONNECTIONS,
    }
}

/// Serves `service` on `listener` within `limits` until `shutdown`
/// resolves; then stops accepting, lets requests in flight finish, and
/// returns once every connection still speaking HTTP has closed (upgraded
/// connections are not waited for).
pub async fn serve<L, S, F>(mut listener: L, service: S, limits: Limits, shutdown: F)
where
    L: Listener,
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // The permit is taken before accepting: at the cap, clients wait in
        // the backlog instead of being accepted and left hanging.
        let permit = tokio::select! {
            p = limits.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let svc = TowerToHyperService::new(service.clone().map_request(|r: Request<Incoming>| r.map(Body::new)));
        let conn = builder.serve_connection(TokioIo::new(Counted { io, _permit: permit }), svc).with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
                stop
            };
            let result = tokio::select! {
                r = conn.as_mut() => r,
                stop = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let r = conn.await;
                    drop(stop);
                    r
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
}

/// A connection's stream holding its place under the cap until dropped
/// (hyper keeps the stream inside an upgraded connection, so an attach or
/// exec session holds its place until it ends).
struct Counted<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
