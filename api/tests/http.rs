//! The HTTP surface on a real unix socket: ping, versions, errors, reload.

use std::sync::Arc;

use berth_api::{listen, router, AppState};
use berth_config::{ConfigStore, Flags};
use berth_engine::runtimes::RuntimeService;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

struct Server {
    dir: tempfile::TempDir,
    sock: std::path::PathBuf,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let flags = Flags {
        config_file: Some(dir.path().join("daemon.json")),
        exec_root: Some(dir.path().join("exec")),
        data_root: Some(dir.path().join("data")),
        ..Default::default()
    };
    let store = Arc::new(ConfigStore::open(flags).unwrap());
    let state = AppState { runtimes: Arc::new(RuntimeService::new(store)), pinned_wrappers: Arc::new(Vec::new) };
    let host = format!("unix://{}", dir.path().join("api.sock").display());
    let (sock, listener) = listen::bind(&host).await.unwrap();
    tokio::spawn(async move {
        axum_serve(listener, state).await;
    });
    Server { dir, sock }
}

async fn axum_serve(listener: tokio::net::UnixListener, state: AppState) {
    // Minimal accept loop (the daemon uses axum::serve; this keeps the test's deps small).
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let svc = router(state.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let mut svc = svc.clone();
                async move {
                    use tower::Service;
                    svc.call(req.map(axum::body::Body::new)).await
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn call(s: &Server, method: Method, path: &str) -> (u16, hyper::HeaderMap, String) {
    let stream = tokio::net::UnixStream::connect(&s.sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::builder().method(method).uri(path).header("Host", "x").body(Full::new(Bytes::new())).unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ping_head_and_get() {
    let s = start().await;
    let (st, h, body) = call(&s, Method::HEAD, "/_ping").await;
    assert_eq!((st, body.as_str()), (200, ""));
    assert_eq!(h["api-version"], "1.41");
    assert_eq!(h["ostype"], "linux");
    let (st, _, body) = call(&s, Method::GET, "/_ping").await;
    assert_eq!((st, body.as_str()), (200, "OK"));
    let (st, h, _) = call(&s, Method::GET, "/v1.41/_ping").await;
    assert_eq!(st, 200);
    assert_eq!(h["api-version"], "1.41");
}

#[tokio::test]
async fn socket_mode_is_0660() {
    use std::os::unix::fs::PermissionsExt;
    let s = start().await;
    assert_eq!(std::fs::metadata(&s.sock).unwrap().permissions().mode() & 0o777, 0o660);
    let _ = &s.dir;
}

#[tokio::test]
async fn versions_out_of_range_and_unknown_routes() {
    let s = start().await;
    let (st, h, body) = call(&s, Method::GET, "/v1.50/version").await;
    assert_eq!(st, 400);
    assert_eq!(h["content-type"], "application/json");
    assert!(body.contains("client version 1.50 is too new. Maximum supported API version is 1.41"), "{body}");
    let (st, _, body) = call(&s, Method::GET, "/v1.11/version").await;
    assert_eq!(st, 400);
    assert!(body.contains("is too old"));
    let (st, _, body) = call(&s, Method::GET, "/v1.41/nope").await;
    assert_eq!(st, 404);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"], "page not found");
    let (st, _, body) = call(&s, Method::GET, "/v1.41/networks").await;
    assert_eq!(st, 404);
    assert!(body.contains("networks is not supported by berth yet"), "{body}");
}

#[tokio::test]
async fn version_reports_api_versions() {
    let s = start().await;
    let (st, _, body) = call(&s, Method::GET, "/v1.41/version").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["ApiVersion"].as_str(), v["MinAPIVersion"].as_str(), v["Os"].as_str()), (Some("1.41"), Some("1.24"), Some("linux")));
    assert_eq!(v["Components"][0]["Name"], "Engine");
}

#[tokio::test]
async fn reload_endpoint() {
    let s = start().await;
    std::fs::write(s.dir.path().join("daemon.json"), r#"{"runtimes":{"w":{"path":"/bin/true","runtimeArgs":["x"]}}}"#).unwrap();
    let (st, _, body) = call(&s, Method::POST, "/berth/v1/reload?dry-run=1").await;
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["generation"].as_u64(), v["dry_run"].as_bool()), (Some(2), Some(true)));
    assert_eq!(v["added"], serde_json::json!(["w"]));
    assert_eq!(v["default_runtime"], serde_json::json!({"old": "runc", "new": "runc"}));
    let (st, _, body) = call(&s, Method::POST, "/berth/v1/reload").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["generation"], 2);
    let (st, _, body) = call(&s, Method::POST, "/berth/v1/reload?dry-run=maybe").await;
    assert_eq!(st, 400);
    assert!(body.contains("invalid dry-run value"));

    std::fs::write(s.dir.path().join("daemon.json"), r#"{"runtimes":{"a":{},"b":{"path":"./x"}}}"#).unwrap();
    let (st, h, body) = call(&s, Method::POST, "/berth/v1/reload").await;
    assert_eq!(st, 400);
    assert_eq!(h["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert!(errors[0].as_str().unwrap().contains("runtimes.a") && errors[1].as_str().unwrap().contains("runtimes.b"));
    assert!(v["message"].as_str().unwrap().contains("2 problems"));
    let (_, _, body) = call(&s, Method::GET, "/berth/v1/runtimes").await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["generation"], 2);
}
