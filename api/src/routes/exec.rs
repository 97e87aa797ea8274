//! Exec routes: create, start (hijacked or detached), inspect, resize.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::containers::hub::Chunk;
use berth_engine::exec::ExecConfig;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::hijack;
use crate::docker::detach;
use crate::docker::body::{read_json, read_json_or_default, MAX_JSON_BODY};
use crate::docker::params::parse_int;
use crate::error::{json_response, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    privileged: bool,
    /// docker-py sends `detachKeys` (dockerd matches keys without case).
    #[serde(alias = "detachKeys")]
    detach_keys: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
    tty: bool,
}

async fn create(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Result<Response, ApiError> {
    let b: ExecCreateBody = read_json(req.into_body(), MAX_JSON_BODY).await?;
    let detach_keys = b.detach_keys.unwrap_or_default();
    detach::parse(&detach_keys).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let exec_id = state.engine.execs.create(
        &id,
        ExecConfig {
            cmd: b.cmd.unwrap_or_default(),
            env: b.env.unwrap_or_default(),
            user: b.user.unwrap_or_default(),
            working_dir: b.working_dir.unwrap_or_default(),
            tty: b.tty,
            attach_stdin: b.attach_stdin,
            attach_stdout: b.attach_stdout,
            attach_stderr: b.attach_stderr,
            privileged: b.privileged,
            detach_keys,
        },
    )?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": exec_id})))
}

async fn start(State(state): State<AppState>, Path(id): Path<String>, mut req: Request) -> Result<Response, ApiError> {
    let upgrade = hijack::wants_upgrade(&req);
    let body = std::mem::take(req.body_mut());
    let b: ExecStartBody = read_json_or_default(body, MAX_JSON_BODY).await?;
    let info = state.engine.execs.inspect(&id)?;
    // Framing follows the start request's Tty, as dockerd's does (an exec
    // created with a TTY and started without one is multiplexed).
    let tty = b.tty;
    if b.detach || !upgrade {
        let streams = state.engine.execs.start(&id).await?;
        // Detached: nobody reads the output; drain it so the process never blocks.
        let mut out = streams.output;
        tokio::spawn(async move { while out.recv().await.is_some() {} });
        return Ok(StatusCode::OK.into_response());
    }
    // The process starts once the 101 answer is on the wire, as under
    // dockerd: output that followed the answer at once would reach a client
    // that reads the answer through a buffer (docker-py does) in the same
    // read, and be lost with the buffer.
    state.engine.execs.check_startable(&id)?;
    let (stdout, stderr) = (info.config.attach_stdout, info.config.attach_stderr);
    Ok(hijack::upgrade(req, move |r, w| async move {
        let streams = match state.engine.execs.start(&id).await {
            Ok(s) => s,
            // Like dockerd: the reason the process could not start is
            // written into the stream; the exec's exit code (126) tells
            // `docker exec` how to exit.
            Err(e) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let _ = tx.send(Chunk::Stdout(format!("{e}\r\n").into())).await;
                drop(tx);
                hijack::pump_output(rx, w, tty, true, true, None).await;
                return;
            }
        };
        let mut exit = streams.exit;
        let stdin = streams.stdin;
        let detached = std::sync::Arc::new(tokio::sync::Notify::new());
        // Checked at create; detach keys apply with a TTY, as under dockerd.
        let escape = info.config.tty.then(|| detach::parse(&info.config.detach_keys).ok().map(detach::Escape::new)).flatten();
        if let Some(pipe) = stdin {
            let on_detach = detached.clone();
            let pipe = std::sync::Arc::new(tokio::sync::Mutex::new(Some(pipe)));
            let execs = state.engine.execs.clone();
            let exec_id = id.clone();
            let input = hijack::read_input(r, escape, move |piece| {
                let (pipe, execs, exec_id) = (pipe.clone(), execs.clone(), exec_id.clone());
                async move {
                    let mut guard = pipe.lock().await;
                    match (piece, guard.as_mut()) {
                        (Some(b), Some(p)) => p.write_all(&b).await.is_ok(),
                        _ => {
                            // EOF: close the process's stdin (the shim holds the
                            // FIFO open, so through containerd).
                            guard.take();
                            let _ = execs.close_stdin(&exec_id).await;
                            false
                        }
                    }
                }
            });
            tokio::spawn(async move {
                if input.await == hijack::InputEnd::Detached {
                    on_detach.notify_one();
                }
            });
        }
        // Output until the process's output ends; the exit code is recorded
        // before the stream closes, so `docker exec` reads the right one.
        let out = streams.output;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let forward = tokio::spawn(async move {
            let mut out = out;
            while let Some(c) = out.recv().await {
                if tx.send(c).await.is_err() {
                    while out.recv().await.is_some() {}
                    break;
                }
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), exit.wait_for(|e| e.is_some())).await;
        });
        let pump = hijack::pump_output(rx, w, tty, stdout, stderr, Some(detached));
        let _ = tokio::join!(forward, pump);
    }))
}

async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let e = state.engine.execs.inspect(&id)?;
    let (entrypoint, arguments) = match e.config.cmd.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), vec![]),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ID": e.id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {"tty": e.config.tty, "entrypoint": entrypoint, "arguments": arguments, "privileged": e.config.privileged, "user": e.config.user},
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": "",
            "Pid": e.pid,
        }),
    ))
}

async fn resize(State(state): State<AppState>, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let h = parse_int("h", q.get("h").map(String::as_str))?.unwrap_or(0).clamp(0, u16::MAX as i64) as u32;
    let w = parse_int("w", q.get("w").map(String::as_str))?.unwrap_or(0).clamp(0, u16::MAX as i64) as u32;
    state.engine.execs.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}
