//! A tiny HTTP/1.1 client over the daemon's unix socket, for the CLI.

use std::path::Path;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Sends one request and returns the status and body.
pub async fn request(host: &str, method: Method, path: &str) -> Result<(StatusCode, Vec<u8>), String> {
    let socket = host
        .strip_prefix("unix://")
        .ok_or_else(|| format!("unsupported host {host:?}: use unix:///path/to.sock"))?;
    let stream = UnixStream::connect(Path::new(socket)).await.map_err(|e| {
        format!("cannot connect to the berth daemon at {socket}: {e}; is `berth daemon` running? (set -H or BERTH_HOST for another socket)")
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {socket} failed: {e}"))?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "berth")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("request to {socket} failed: {e}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| format!("reading the answer failed: {e}"))?.to_bytes();
    Ok((status, body.to_vec()))
}
