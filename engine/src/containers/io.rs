//! Moving bytes: the task's stdout/stderr FIFOs into the json-file log and
//! to attached clients; attached clients' input into the task's stdin FIFO.

use std::sync::Arc;

use berth_store::logfile::{LogStream, LogWriter};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::{Chunk, Hub, StdinMsg};

const READ_SIZE: usize = 32 * 1024;

async fn copy_stream(mut rx: pipe::Receiver, stream: LogStream, hub: Arc<Hub>, log: Option<Arc<LogWriter>>, id: String) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        let n = match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "reading container output failed");
                break;
            }
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        if let Some(Err(e)) = log.as_ref().map(|l| l.write(stream, &data)) {
            tracing::warn!(container = %id, error = %e, "writing the container log failed");
        }
        let chunk = match stream {
            LogStream::Stderr => Chunk::Stderr(data),
            _ => Chunk::Stdout(data),
        };
        let dropped = hub.broadcast(&chunk).await;
        if dropped > 0 {
            tracing::warn!(container = %id, clients = dropped, stall_limit_s = super::hub::STALL_LIMIT.as_secs(),
                "disconnected attached clients that took no output while their buffer was full; the output is in the container's log");
        }
    }
}

/// Copies a run's output until both streams end, then flushes the log and
/// ends the attached clients' streams.
pub fn spawn_output(
    id: &str,
    hub: Arc<Hub>,
    log: Option<Arc<LogWriter>>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
) -> JoinHandle<()> {
    let id = id.to_string();
    tokio::spawn(async move {
        let out = stdout.map(|rx| tokio::spawn(copy_stream(rx, LogStream::Stdout, hub.clone(), log.clone(), id.clone())));
        let err = stderr.map(|rx| tokio::spawn(copy_stream(rx, LogStream::Stderr, hub.clone(), log.clone(), id.clone())));
        for h in [out, err].into_iter().flatten() {
            let _ = h.await;
        }
        if let Some(log) = log {
            let _ = log.flush_partial();
        }
        hub.end_output();
    })
}

/// Feeds a run's stdin from attached clients. With `stdin_once`, the first
/// EOF from a client closes the container's stdin. (Closing our end of the
/// FIFO is not enough: the shim keeps it open, so the stdin is closed
/// through containerd's CloseIO.)
pub fn spawn_stdin(id: &str, mut rx: mpsc::Receiver<StdinMsg>, mut tx: pipe::Sender, stdin_once: bool, tasks: berth_containerd::Tasks) -> JoinHandle<()> {
    let id = id.to_string();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                StdinMsg::Data(d) => {
                    if let Err(e) = tx.write_all(&d).await {
                        tracing::debug!(container = %id, error = %e, "container stdin closed");
                        return;
                    }
                }
                StdinMsg::Eof if stdin_once => break,
                StdinMsg::Eof => {}
            }
        }
        drop(tx);
        if let Err(e) = tasks.close_stdin(&id, "").await {
            tracing::debug!(container = %id, error = %e, "closing stdin failed");
        }
    })
}
