//! Connection upgrades for attach and exec start: answer `101 UPGRADED`
//! with Docker's raw-stream headers, then hand the upgraded connection to a
//! task. Output is framed with stdcopy unless the process has a TTY.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use berth_engine::containers::hub::Chunk;
use bytes::BytesMut;
use http::{header, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::docker::detach::{Escape, Scan};
use crate::docker::stream::{encode_frame_into, StreamType};

pub type Io = TokioIo<hyper::upgrade::Upgraded>;

/// Whether the client asked for an upgrade (`Upgrade: tcp`).
pub fn wants_upgrade(req: &Request) -> bool {
    req.headers().get(header::UPGRADE).is_some()
}

/// Answers 101 and runs `f` on the upgraded connection's two halves.
pub fn upgrade<F, Fut>(mut req: Request, f: F) -> Response
where
    F: FnOnce(ReadHalf<Io>, WriteHalf<Io>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                f(r, w).await;
            }
            Err(e) => tracing::debug!(error = %e, "connection upgrade failed"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.docker.raw-stream"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

/// Encodes a chunk for the wire (stdcopy frame, or raw with a TTY).
pub fn encode(chunk: &Chunk, tty: bool, out: &mut BytesMut) {
    match (chunk, tty) {
        (Chunk::Stdout(b) | Chunk::Stderr(b), true) => out.extend_from_slice(b),
        (Chunk::Stdout(b), false) => encode_frame_into(StreamType::Stdout, b, out),
        (Chunk::Stderr(b), false) => encode_frame_into(StreamType::Stderr, b, out),
    }
}

/// Writes output chunks until the channel closes, then shuts the write side.
/// Returns early when `dropped` is notified (the hub disconnected this
/// client for not reading: what is still buffered is not written) or the
/// client went away; returns whether it ended so.
pub async fn pump_output(mut rx: mpsc::Receiver<Chunk>, mut w: WriteHalf<Io>, tty: bool, stdout: bool, stderr: bool, dropped: Option<Arc<Notify>>) -> bool {
    let dropped = dropped.unwrap_or_default();
    let mut buf = BytesMut::new();
    loop {
        let chunk = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = dropped.notified() => return true,
        };
        let wanted = match &chunk {
            Chunk::Stdout(_) => stdout,
            Chunk::Stderr(_) => stderr,
        };
        if !wanted {
            continue;
        }
        buf.clear();
        encode(&chunk, tty, &mut buf);
        tokio::select! {
            r = w.write_all(&buf) => if r.is_err() {
                // The client went away: dropping `rx` tells the copier.
                return true;
            },
            _ = dropped.notified() => return true,
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    false
}

/// How a client's input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEnd {
    /// EOF or a read error (`send(None)` was called).
    Eof,
    /// The client typed the detach keys (nothing more is sent; the
    /// container's stdin stays open).
    Detached,
    /// `send` refused more input.
    Stopped,
}

/// Reads the client's input until EOF, calling `send` for each piece;
/// with `escape`, watches for the detach keys (TTY attaches only, as
/// dockerd).
pub async fn read_input<F, Fut>(mut r: ReadHalf<Io>, mut escape: Option<Escape>, mut send: F) -> InputEnd
where
    F: FnMut(Option<bytes::Bytes>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                send(None).await;
                return InputEnd::Eof;
            }
            Ok(n) => {
                let (piece, detach) = match escape.as_mut().map(|e| e.scan(&buf[..n])) {
                    None => (buf[..n].to_vec(), false),
                    Some(Scan::Forward(b)) => (b, false),
                    Some(Scan::Detach(b)) => (b, true),
                };
                if !piece.is_empty() && !send(Some(bytes::Bytes::from(piece))).await {
                    return InputEnd::Stopped;
                }
                if detach {
                    return InputEnd::Detached;
                }
            }
        }
    }
}
