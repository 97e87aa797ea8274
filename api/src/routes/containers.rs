//! Container routes: create, list, inspect, lifecycle, wait, logs, attach,
//! top, stats, update, prune.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use berth_engine::containers::hub::{Chunk, StdinMsg};
use berth_engine::containers::stats::{BlkioEntry, Usage};
use berth_engine::containers::wait::{LogsOptions, WaitCondition};
use berth_engine::containers::CreateRequest;
use berth_engine::model::LogStream;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::hijack;
use crate::docker::detach;
use crate::docker::create::read_create_request;
use crate::docker::filters::{ContainerFilter, Filters, PruneFilter};
use crate::docker::inspect::{container_inspect_json, container_summary, InspectExtras};
use crate::docker::params::{parse_bool, parse_int, LogsQuery};
use crate::docker::stream::{log_chunk, StreamType};
use crate::error::{json_response, result_response, ApiError};
use crate::AppState;

type Q = Query<HashMap<String, String>>;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
}

fn q<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(String::as_str)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn extras(state: &AppState, rec: &berth_engine::model::ContainerRecord) -> InspectExtras {
    InspectExtras {
        log_path: Some(state.engine.containers.store().log_path(&rec.id).display().to_string()),
        driver: state.daemon.snapshotter.clone(),
        exec_ids: state.engine.execs.ids_of(&rec.id),
        attachment: state.engine.networks.attachment(&rec.id),
        network_ids: state.engine.networks.list().into_iter().map(|n| (n.name, n.id)).collect(),
        health: state.engine.containers.health(&rec.id),
        ..Default::default()
    }
}

async fn list(State(state): State<AppState>, Query(query): Q) -> Result<Response, ApiError> {
    let filters = Filters::parse(q(&query, "filters"))?;
    let all = parse_bool(q(&query, "all")) || !filters.get("before").is_empty() || !filters.get("since").is_empty();
    let limit = parse_int("limit", q(&query, "limit"))?.filter(|l| *l > 0);
    let with_size = parse_bool(q(&query, "size"));
    let containers = &state.engine.containers;
    let filter = ContainerFilter::new(&filters, |key| containers.get(key).ok().map(|r| r.created.clone()))?;
    let now = SystemTime::now();
    let mut out = Vec::new();
    for rec in containers.list() {
        if !all && !rec.state.running && filters.get("status").is_empty() {
            continue;
        }
        if !filter.matches(&rec) {
            continue;
        }
        let mut ex = extras(&state, &rec);
        if with_size {
            let size = containers.size(&rec.id).await?;
            (ex.size_rw, ex.size_root_fs) = (Some(size.rw), Some(size.root_fs));
        }
        out.push(container_summary(&rec, now, &ex));
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(json_response(StatusCode::OK, &out))
}

async fn create(State(state): State<AppState>, Query(query): Q, req: Request) -> Result<Response, ApiError> {
    let version = req.extensions().get::<crate::version::RequestedVersion>().copied();
    let mut c = read_create_request(req, q(&query, "name")).await?;
    if let Some(v) = version {
        crate::docker::create::version_defaults(&mut c.host_config, v);
    }
    let rec = state
        .engine
        .containers
        .create(CreateRequest { name: c.name, image: c.image, config: c.config, host_config: c.host_config, log_config: c.log_config, networking: c.networking })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": rec.id, "Warnings": []})))
}

async fn inspect(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let rec = state.engine.containers.get(&id)?;
    let mut ex = extras(&state, &rec);
    if parse_bool(q(&query, "size")) {
        let size = state.engine.containers.size(&rec.id).await?;
        (ex.size_rw, ex.size_root_fs) = (Some(size.rw), Some(size.root_fs));
    }
    Ok(json_response(StatusCode::OK, &container_inspect_json(&rec, &ex)))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Response {
    result_response(async {
        state.engine.containers.remove(&id, parse_bool(q(&query, "force"))).await?;
        Ok(no_content())
    }.await)
}

async fn start(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    result_response(async {
        state.engine.containers.start(&id).await?;
        Ok(no_content())
    }.await)
}

fn timeout(query: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    Ok(parse_int("t", q(query, "t").or(q(query, "timeout")))?)
}

async fn stop(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Response {
    result_response(async {
        state.engine.containers.stop(&id, timeout(&query)?).await?;
        Ok(no_content())
    }.await)
}

async fn restart(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Response {
    result_response(async {
        state.engine.containers.restart(&id, timeout(&query)?).await?;
        Ok(no_content())
    }.await)
}

async fn kill(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    state.engine.containers.kill(&id, q(&query, "signal").unwrap_or("")).await?;
    Ok(no_content())
}

async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    state.engine.containers.set_paused(&id, true).await?;
    Ok(no_content())
}

async fn unpause(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    state.engine.containers.set_paused(&id, false).await?;
    Ok(no_content())
}

async fn rename(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let name = q(&query, "name").unwrap_or("");
    let name = berth_engine::model::validate_name(name).map_err(|_| ApiError::bad_request(format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")))?;
    state.engine.containers.rename(&id, &name).await?;
    Ok(no_content())
}

async fn update(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Result<Response, ApiError> {
    let limit = crate::docker::body::MAX_JSON_BODY;
    crate::docker::body::check_content_length(req.headers(), limit)?;
    let bytes = crate::docker::body::read_limited(req.into_body(), limit).await?;
    let update = crate::docker::update::parse_update_request(&bytes)?;
    let warnings = state.engine.containers.update_container(&id, update).await?;
    Ok(json_response(StatusCode::OK, &json!({"Warnings": warnings})))
}

fn size(query: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let h = parse_int("h", q(query, "h"))?.unwrap_or(0);
    let w = parse_int("w", q(query, "w"))?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::bad_request("invalid terminal size: h and w must be between 0 and 65535"));
    }
    Ok((h as u32, w as u32))
}

async fn resize(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let (h, w) = size(&query)?;
    state.engine.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// Streams a JSON body: the headers go out at once, the body when `fut` resolves.
fn deferred_json<F>(fut: F) -> Response
where
    F: std::future::Future<Output = Value> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(1);
    tokio::spawn(async move {
        let v = fut.await;
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Ok(Bytes::from(b))).await;
    });
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn wait(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let cond = WaitCondition::parse(q(&query, "condition").unwrap_or(""))?;
    let waiter = state.engine.containers.waiter(&id, cond)?;
    Ok(deferred_json(async move {
        let code = waiter.await;
        json!({"Error": null, "StatusCode": code})
    }))
}

async fn logs(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let rec = state.engine.containers.get(&id)?;
    let LogsQuery { options: opts, timestamps } = LogsQuery::parse(&query, SystemTime::now())?;
    let tty = rec.config.tty;
    let mut reader = state.engine.containers.logs(&id, opts).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        while let Some(entry) = reader.next().await {
            let Ok(e) = entry else { break };
            let st = match e.stream {
                LogStream::Stderr => StreamType::Stderr,
                _ => StreamType::Stdout,
            };
            let chunk = log_chunk(st, &e.line, timestamps.then_some(e.time), tty);
            if tx.send(Ok(chunk)).await.is_err() {
                break;
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

async fn attach(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q, req: Request) -> Result<Response, ApiError> {
    let rec = state.engine.containers.get(&id)?;
    let (stdout, stderr, stdin) = (parse_bool(q(&query, "stdout")), parse_bool(q(&query, "stderr")), parse_bool(q(&query, "stdin")));
    let detach_keys = detach::parse(q(&query, "detachKeys").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (logs, stream) = (parse_bool(q(&query, "logs")), parse_bool(q(&query, "stream")));
    let hub = state.engine.containers.hub(&rec.id);
    // Subscribe now, before answering: output right after start must arrive.
    let mut attachment = hub.attach();
    if logs || !stream {
        // As dockerd: `logs` replays what the container wrote so far, and
        // only `stream` follows its live output (without it the answer ends
        // after the replay).
        let replay = match logs {
            true => {
                let opts = LogsOptions { follow: false, tail: None, since: None, until: None, stdout, stderr };
                Some(state.engine.containers.logs(&rec.id, opts).await?)
            }
            false => None,
        };
        let (tx, rx) = mpsc::channel(64);
        let live = stream.then_some(std::mem::replace(&mut attachment.output, rx));
        tokio::spawn(async move {
            if let Some(mut reader) = replay {
                while let Some(Ok(e)) = reader.next().await {
                    let chunk = match e.stream {
                        LogStream::Stderr => Chunk::Stderr(Bytes::from(e.line)),
                        _ => Chunk::Stdout(Bytes::from(e.line)),
                    };
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(mut live) = live {
                while let Some(c) = live.recv().await {
                    if tx.send(c).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    let input = (stdin && rec.config.open_stdin).then(|| hub.stdin());
    let tty = rec.config.tty;
    let stdin_once = rec.config.stdin_once;
    if let Ok(r) = state.engine.containers.get(&id) {
        state.engine.containers.event("attach", &r, &[]);
    }
    if !hijack::wants_upgrade(&req) {
        // A plain streaming response for clients that do not upgrade.
        let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
        tokio::spawn(async move {
            let (mut output, dropped) = (attachment.output, attachment.dropped);
            let mut buf = bytes::BytesMut::new();
            loop {
                let c = tokio::select! {
                    c = output.recv() => match c {
                        Some(c) => c,
                        None => break,
                    },
                    // Disconnected for not reading: end the body now.
                    _ = dropped.notified() => break,
                };
                if matches!(c, Chunk::Stdout(_)) && !stdout || matches!(c, Chunk::Stderr(_)) && !stderr {
                    continue;
                }
                buf.clear();
                hijack::encode(&c, tty, &mut buf);
                if tx.send(Ok(buf.split().freeze())).await.is_err() {
                    break;
                }
            }
        });
        let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.docker.raw-stream"));
        return Ok(resp);
    }
    Ok(hijack::upgrade(req, move |r, w| async move {
        let escape = tty.then(|| detach::Escape::new(detach_keys));
        let detached = attachment.dropped.clone();
        let reader = input.map(|tx| {
            let input = hijack::read_input(r, escape, move |piece| {
                let tx = tx.clone();
                async move {
                    match piece {
                        Some(b) => tx.send(StdinMsg::Data(b)).await.is_ok(),
                        None => {
                            if stdin_once {
                                let _ = tx.send(StdinMsg::Eof).await;
                            }
                            false
                        }
                    }
                }
            });
            tokio::spawn(async move {
                if input.await == hijack::InputEnd::Detached {
                    // Ends this client's output stream and its connection.
                    detached.notify_one();
                }
            })
        });
        let cut = hijack::pump_output(attachment.output, w, tty, stdout, stderr, Some(attachment.dropped)).await;
        if cut {
            // Disconnected (or gone): drop the read half too, so the
            // connection closes now rather than when the client writes.
            if let Some(reader) = reader {
                reader.abort();
            }
        }
    }))
}

async fn top(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let procs = state.engine.containers.top(&id).await?;
    let rows: Vec<Vec<String>> = procs.iter().map(|p| vec![p.uid.to_string(), p.pid.to_string(), p.ppid.to_string(), p.cmd.clone()]).collect();
    Ok(json_response(StatusCode::OK, &json!({"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": rows})))
}

/// Docker's stats JSON (`types.StatsJSON`): dockerd's `omitempty` fields
/// are left out when zero, and block I/O lists v2 lacks are `null`.
fn stats_json(id: &str, name: &str, u: &Usage, pre: Option<&Usage>) -> Value {
    let cpu = |u: &Usage| {
        let mut usage = json!({"total_usage": u.cpu.total_ns, "usage_in_kernelmode": u.cpu.system_ns, "usage_in_usermode": u.cpu.user_ns});
        if !u.cpu.percpu_ns.is_empty() {
            usage["percpu_usage"] = json!(u.cpu.percpu_ns);
        }
        let mut c = json!({
            "cpu_usage": usage,
            "throttling_data": {"periods": u.cpu.periods, "throttled_periods": u.cpu.throttled_periods, "throttled_time": u.cpu.throttled_ns}
        });
        if u.system_cpu_ns > 0 {
            c["system_cpu_usage"] = json!(u.system_cpu_ns);
        }
        if u.online_cpus > 0 {
            c["online_cpus"] = json!(u.online_cpus);
        }
        c
    };
    let blkio = |l: &Option<Vec<BlkioEntry>>| match l {
        None => Value::Null,
        Some(l) => l.iter().map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value})).collect(),
    };
    let b = &u.blkio;
    let mut memory = json!({"usage": u.memory.usage, "stats": u.memory.stats, "limit": u.memory.limit});
    for (k, v) in [("max_usage", u.memory.max_usage), ("failcnt", u.memory.failcnt)] {
        if v > 0 {
            memory[k] = json!(v);
        }
    }
    let mut pids = json!({"current": u.pids.current});
    if u.pids.limit > 0 {
        pids["limit"] = json!(u.pids.limit);
    }
    let now = berth_engine::model::timefmt::now_rfc3339_nano();
    json!({
        "read": now,
        "preread": if pre.is_some() { now.clone() } else { berth_engine::model::timefmt::ZERO_TIME.to_string() },
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio(&b.io_service_bytes_recursive),
            "io_serviced_recursive": blkio(&b.io_serviced_recursive),
            "io_queue_recursive": blkio(&b.io_queue_recursive),
            "io_service_time_recursive": blkio(&b.io_service_time_recursive),
            "io_wait_time_recursive": blkio(&b.io_wait_time_recursive),
            "io_merged_recursive": blkio(&b.io_merged_recursive),
            "io_time_recursive": blkio(&b.io_time_recursive),
            "sectors_recursive": blkio(&b.sectors_recursive),
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(u),
        "precpu_stats": cpu(pre.unwrap_or(&Usage::default())),
        "memory_stats": memory,
        "name": format!("/{name}"),
        "id": id,
        "networks": {}
    })
}

async fn stats(State(state): State<AppState>, Path(id): Path<String>, Query(query): Q) -> Result<Response, ApiError> {
    let rec = state.engine.containers.get(&id)?;
    let stream = q(&query, "stream").is_none_or(|v| parse_bool(Some(v)));
    let one_shot = parse_bool(q(&query, "one-shot"));
    let containers = state.engine.containers.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    let line = |v: Value| {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    if !rec.state.running {
        // Docker answers a stopped container with zeroed stats.
        let v = stats_json(&rec.id, &rec.name, &Default::default(), None);
        return Ok(json_response(StatusCode::OK, &v));
    }
    let first = containers.usage(&rec.id).await?;
    if !stream {
        let pre = if one_shot {
            None
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(first.clone())
        };
        let now = containers.usage(&rec.id).await.unwrap_or(first.clone());
        return Ok(json_response(StatusCode::OK, &stats_json(&rec.id, &rec.name, &now, pre.as_ref())));
    }
    tokio::spawn(async move {
        let mut pre = first;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(now) = containers.usage(&rec.id).await else { break };
            if tx.send(Ok(line(stats_json(&rec.id, &rec.name, &now, Some(&pre))))).await.is_err() {
                break;
            }
            pre = now;
        }
    });
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

async fn prune(State(state): State<AppState>, Query(query): Q) -> Result<Response, ApiError> {
    let filters = Filters::parse(q(&query, "filters"))?;
    let pf = PruneFilter::new(&filters, SystemTime::now())?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0i64;
    for rec in state.engine.containers.list() {
        if rec.state.running || !pf.matches(&rec) {
            continue;
        }
        // What goes is the container's own layer (dockerd counts the same).
        let size = match state.engine.containers.size(&rec.id).await {
            Ok(s) => s.rw,
            Err(e) => {
                tracing::warn!(container = %rec.id, error = %e, "prune: cannot read the container's size");
                0
            }
        };
        match state.engine.containers.remove(&rec.id, false).await {
            Ok(()) => {
                deleted.push(rec.id.clone());
                reclaimed += size;
            }
            Err(e) => tracing::warn!(container = %rec.id, error = %e, "prune: cannot remove"),
        }
    }
    Ok(json_response(StatusCode::OK, &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed})))
}
