//! The serving limits on a real unix socket with a small router: slow
//! headers and idle connections are closed, streams and upgraded
//! connections are not, and the connection cap holds yet frees up.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

use super::{serve, Limits};

const TIMEOUT: Duration = Duration::from_millis(300);

fn app() -> Router {
    Router::new()
        .route("/_ping", get(|| async { "OK" }))
        // Ten chunks 100 ms apart: a response that outlives the timeout.
        .route(
            "/stream",
            get(|| async {
                let chunks = tokio_stream::StreamExt::throttle(
                    tokio_stream::iter((0..10).map(|i| Ok::<_, std::convert::Infallible>(format!("chunk{i};")))),
                    Duration::from_millis(100),
                );
                Body::from_stream(chunks)
            }),
        )
        // Answers after 1 s: a handler that outlives the timeout (`wait`).
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "done"
            }),
        )
        // Answers 101, then echoes what it reads.
        .route(
            "/upgrade",
            post(|mut req: Request| async move {
                let on = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    if let Ok(up) = on.await {
                        let mut io = TokioIo::new(up);
                        let mut buf = [0u8; 64];
                        while let Ok(n) = io.read(&mut buf).await {
                            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                });
                Response::builder().status(StatusCode::SWITCHING_PROTOCOLS).header("Connection", "Upgrade").header("Upgrade", "tcp").body(Body::empty()).unwrap()
            }),
        )
}

struct Server {
    dir: tempfile::TempDir,
    limits: Limits,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    fn start(limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s.sock")).unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, app(), limits.clone(), async move {
            let _ = rx.await;
        }));
        Server { dir, limits, stop: Some(tx), task: Some(task) }
    }

    async fn connect(&self) -> UnixStream {
        UnixStream::connect(self.dir.path().join("s.sock")).await.unwrap()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap()).await.expect("serve returns after shutdown").unwrap();
    }
}

/// Reads one response head (through the blank line).
async fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "connection closed mid-head: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// `GET /_ping` on a keep-alive connection; returns the status line.
async fn ping(s: &mut UnixStream) -> String {
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let head = read_head(s).await;
    let mut body = [0u8; 2];
    s.read_exact(&mut body).await.unwrap();
    assert_eq!(&body, b"OK");
    head.lines().next().unwrap().to_string()
}

/// Waits (at most 5 s) for the server to close `s`; returns how long it took.
async fn closed_within(s: &mut UnixStream) -> Duration {
    let t = Instant::now();
    let mut rest = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await {
        Ok(_) => t.elapsed(),
        Err(_) => panic!("the server did not close the connection; read {:?}", String::from_utf8_lossy(&rest)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_closed() {
    let server = Server::start(Limits::new(TIMEOUT, 8));
    let s = server.connect().await;
    let (mut r, mut w) = s.into_split();
    // One header byte every 50 ms: 10 s for the whole head if allowed.
    let writer = tokio::spawn(async move {
        if w.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.is_err() {
            return;
        }
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if w.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let t = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "a client trickling its headers was not cut off");
    assert!(t.elapsed() >= TIMEOUT - Duration::from_millis(50), "closed before the timeout: {:?}", t.elapsed());
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "the trickled request was answered");
    writer.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let server = Server::start(Limits::new(TIMEOUT, 8));
    // Connects and sends nothing.
    let mut silent = server.connect().await;
    // One request, then idle on keep-alive.
    let mut idle = server.connect().await;
    assert_eq!(ping(&mut idle).await, "HTTP/1.1 200 OK");
    let (a, b) = tokio::join!(closed_within(&mut silent), closed_within(&mut idle));
    for d in [a, b] {
        assert!(d >= TIMEOUT - Duration::from_millis(50), "closed too early: {d:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_streams_and_upgraded_connections_outlive_the_timeout() {
    let server = Server::start(Limits::new(TIMEOUT, 8));
    // A 1 s streaming response (chunked) is delivered whole.
    let mut s = server.connect().await;
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("chunk0;") && all.contains("chunk9;"), "stream cut short: {all}");

    // A request whose answer takes 3x the timeout is answered.
    let mut slow = server.connect().await;
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut all = Vec::new();
    slow.read_to_end(&mut all).await.unwrap();
    assert!(String::from_utf8_lossy(&all).ends_with("done"), "{}", String::from_utf8_lossy(&all));

    // An upgraded connection idle for 3x the timeout still works.
    let mut up = server.connect().await;
    up.write_all(b"POST /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    assert!(read_head(&mut up).await.starts_with("HTTP/1.1 101"));
    tokio::time::sleep(TIMEOUT * 3).await; // the idleness under test
    up.write_all(b"still here").await.unwrap();
    let mut echo = [0u8; 10];
    tokio::time::timeout(Duration::from_secs(5), up.read_exact(&mut echo)).await.expect("echo").unwrap();
    assert_eq!(&echo, b"still here");
    drop(up);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_and_frees_up() {
    let server = Server::start(Limits::new(Duration::from_secs(60), 2));
    let mut first = server.connect().await;
    assert_eq!(ping(&mut first).await, "HTTP/1.1 200 OK");
    // An upgraded connection counts too.
    let mut up = server.connect().await;
    up.write_all(b"POST /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    assert!(read_head(&mut up).await.starts_with("HTTP/1.1 101"));
    assert_eq!(server.limits.open_connections(), 2);

    // At the cap, a third client waits in the backlog, unanswered.
    let mut third = server.connect().await;
    third.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut b = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.read(&mut b)).await.is_err(),
        "a connection beyond the cap was served"
    );
    assert_eq!(server.limits.open_connections(), 2);

    // Once one closes, the waiting client is answered.
    drop(first);
    let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut third)).await.expect("served once a place freed up");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    // And a brand-new client after the upgraded one leaves.
    drop(up);
    drop(third);
    let mut fresh = server.connect().await;
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), ping(&mut fresh)).await.expect("answered"), "HTTP/1.1 200 OK");
    server.shutdown().await;
}

#[test]
fn api_cap_follows_the_descriptor_limit() {
    use super::{api_max_connections, API_MAX_CONNECTIONS, API_MIN_CONNECTIONS};
    assert_eq!(api_max_connections(Some(1024)), 512);
    assert_eq!(api_max_connections(Some(1 << 20)), API_MAX_CONNECTIONS);
    assert_eq!(api_max_connections(Some(16)), API_MIN_CONNECTIONS);
    assert_eq!(api_max_connections(None), API_MAX_CONNECTIONS);
}
