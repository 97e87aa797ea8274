//! System routes: ping, version, info, events, and berth's own `/berth/v1`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_config::{Kind, ShimOptions};
use berth_engine::events::Event;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::docker::filters::Filters;
use crate::docker::params;
use crate::error::{json_response, ApiError};
use crate::{AppState, API_VERSION, MIN_API_VERSION};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version_info))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/berth/v1/reload", post(reload))
        .route("/berth/v1/runtimes", get(runtimes))
        .route("/berth/v1/runtimes/export", get(export_runtimes))
}

async fn ping(method: Method) -> Response {
    let body = if method == Method::HEAD { Body::empty() } else { Body::from("OK") };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

fn kernel_version() -> String {
    // SAFETY: uname fills a zeroed struct; the fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr()).to_string_lossy().into_owned()
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

async fn version_info(State(state): State<AppState>) -> Response {
    let snap = state.engine.runtimes.snapshot();
    let kernel = kernel_version();
    let version = env!("CARGO_PKG_VERSION");
    let mut components = vec![json!({
        "Name": "Engine",
        "Version": version,
        "Details": {
            "ApiVersion": API_VERSION, "Arch": arch(), "BuildTime": "", "Experimental": "false",
            "GitCommit": GIT_COMMIT, "GoVersion": "n/a (berth is written in Rust)", "KernelVersion": kernel,
            "MinAPIVersion": MIN_API_VERSION, "Os": "linux"
        }
    })];
    // The default runtime, as dockerd reports it (name + version).
    if let Some(rt) = snap.runtimes.runtimes.get(&snap.runtimes.default) {
        if let Some(v) = &rt.status.version {
            let ver = v.split_once("version").map(|(_, b)| b.trim_start_matches(':').trim()).unwrap_or(v);
            components.push(json!({"Name": rt.name, "Version": ver, "Details": {"GitCommit": ""}}));
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "berth"},
            "Components": components,
            "Version": version,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": GIT_COMMIT,
            "GoVersion": "n/a (berth is written in Rust)",
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel,
            "BuildTime": "",
        }),
    )
}

/// `POST /berth/v1/reload[?dry-run=1]`: 200 with the diff, or 400 with
/// `{"message": ..., "errors": [...]}` listing every problem.
async fn reload(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let dry_run = match q.get("dry-run").or_else(|| q.get("dry_run")).map(String::as_str) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") | Some("") => true,
        Some(other) => {
            return ApiError::bad_request(format!("invalid dry-run value {other:?}: use 1 or 0")).into_response()
        }
    };
    match state.engine.reload(dry_run).await {
        Ok(report) => json_response(StatusCode::OK, &report),
        Err(berth_engine::runtimes::ReloadError::Invalid(errs)) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({
                "message": errs.to_string(),
                "errors": errs.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "problems": errs.problems,
            }),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn runtimes(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &state.engine.inventory().await)
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}


/// A runtime as `/info` lists it: `path`/`runtimeArgs` as dockerd does,
/// plus `runtimeType`/`options` for shims and a `status` with what berth
/// probed (dockerd hides the first two and only knows features).
fn info_runtime(rt: &berth_config::Runtime) -> Value {
    let mut m = Map::new();
    match rt.kind {
        Kind::Stock | Kind::Path => {
            let path = rt.binary.as_ref().map(|b| b.display().to_string()).unwrap_or_default();
            m.insert("path".into(), json!(path));
            if !rt.args.is_empty() {
                m.insert("runtimeArgs".into(), json!(rt.args));
            }
        }
        Kind::Shim | Kind::Implicit => {
            m.insert("runtimeType".into(), json!(rt.shim));
            if rt.options != ShimOptions::None {
                m.insert("options".into(), serde_json::to_value(&rt.options).unwrap_or_default());
            }
        }
    }
    let mut status = Map::new();
    status.insert("berth.available".into(), json!(if rt.available() { "true" } else { "false" }));
    if let Some(u) = &rt.status.unavailable {
        status.insert("berth.unavailable-reason".into(), json!(u.message()));
    }
    status.insert("berth.version".into(), json!(rt.status.version.clone().unwrap_or_else(|| "unknown".into())));
    match &rt.status.features {
        Some(f) => {
            status.insert("org.opencontainers.runtime-spec.features".into(), json!(f.to_string()));
        }
        None => {
            status.insert("berth.features".into(), json!("features unknown"));
        }
    }
    if let Some(w) = &rt.wrapper {
        status.insert("berth.wrapper".into(), json!(w.path.display().to_string()));
    }
    m.insert("status".into(), Value::Object(status));
    Value::Object(m)
}

async fn info(State(state): State<AppState>) -> Response {
    // The host's files are read on a blocking thread.
    let ((os, os_version), mem_total) = tokio::task::spawn_blocking(|| (os_release(), berth_engine::cgroups::host_memory())).await.unwrap_or_default();
    let snap = state.engine.runtimes.snapshot();
    let containers = state.engine.containers.list();
    let running = containers.iter().filter(|c| c.state.running && !c.state.paused).count();
    let paused = containers.iter().filter(|c| c.state.paused).count();
    let images = state.engine.images.list().await.map(|l| l.len()).unwrap_or(0);
    let runtimes: Map<String, Value> = snap.runtimes.runtimes.iter().map(|(k, rt)| (k.clone(), info_runtime(rt))).collect();
    let d = &state.daemon;
    let mut warnings = vec![
        "berth: bridge networking is not available yet; containers in the default network get a private network namespace with loopback only (use --network host for the host's network)".to_string(),
    ];
    for h in state.engine.containers.store().held_back() {
        warnings.push(format!(
            "container {}: its record could not be loaded ({}); it is set aside at {} and its containerd container and filesystem are kept: repair or remove the record, then restart berth",
            h.id, h.reason, h.record.display()
        ));
    }
    for rt in snap.runtimes.runtimes.values().filter(|r| !r.available()) {
        warnings.push(format!("runtime {} is unavailable: {}", rt.name, rt.status.unavailable.as_ref().map(|u| u.message()).unwrap_or("")));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "ID": d.id,
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": d.snapshotter,
            "DriverStatus": [["containerd snapshotter", d.snapshotter]],
            "Plugins": {"Volume": [], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file", "local", "none"]},
            "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": false, "PidsLimit": true,
            "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1"), "Debug": snap.config.debug, "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
            "SystemTime": berth_engine::model::timefmt::now_rfc3339_nano(),
            "LoggingDriver": snap.config.log_driver,
            "CgroupDriver": state.engine.cgroups.driver().as_str(),
            "CgroupVersion": state.engine.cgroups.layout().version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": os,
            "OSVersion": os_version,
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
            "DockerRootDir": d.data_root.display().to_string(),
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": d.name,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": runtimes,
            "DefaultRuntime": snap.runtimes.default,
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": snap.config.live_restore,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": d.containerd_version, "Expected": d.containerd_version},
            "RuncCommit": {"ID": "N/A", "Expected": "N/A"},
            "InitCommit": {"ID": "N/A", "Expected": "N/A"},
            "SecurityOptions": [],
            "Warnings": warnings,
        }),
    )
}

/// Docker's JSON form of an event.
pub(crate) fn event_json(e: &Event) -> Value {
    let secs = (e.time_nano / 1_000_000_000) as i64;
    let from = e.attributes.get("image").cloned().unwrap_or_default();
    json!({
        "status": e.action,
        "id": e.actor,
        "from": from,
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.actor, "Attributes": e.attributes},
        "scope": "local",
        "time": secs,
        "timeNano": e.time_nano,
    })
}

fn event_matches(f: &Filters, e: &Event) -> bool {
    let any = |key: &str, value: &str| f.get(key).is_empty() || f.get(key).iter().any(|v| v == value);
    let name = e.attributes.get("name").map(String::as_str).unwrap_or("");
    any("type", &e.kind)
        && any("event", &e.action)
        && (f.get("container").is_empty()
            || (e.kind == "container" && f.get("container").iter().any(|v| e.actor.starts_with(v.as_str()) || v == name)))
        && (f.get("image").is_empty() || f.get("image").iter().any(|v| e.attributes.get("image").is_some_and(|i| i == v) || (e.kind == "image" && (&e.actor == v || name == v))))
        && (f.get("label").is_empty()
            || f.get("label").iter().all(|l| match l.split_once('=') {
                Some((k, v)) => e.attributes.get(k).is_some_and(|x| x == v),
                None => e.attributes.contains_key(l.as_str()),
            }))
        && (f.get("daemon").is_empty() || e.kind == "daemon")
}

/// `GET /events`: past events since `since`, then live ones until `until`.
async fn events(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let now = std::time::SystemTime::now();
    let to_nanos = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    let since = match q.get("since").filter(|s| !s.is_empty()) {
        Some(s) => Some(to_nanos(params::parse_time("since", s, now).map_err(ApiError::from)?)),
        None => None,
    };
    let until = match q.get("until").filter(|s| !s.is_empty()) {
        Some(s) => Some(to_nanos(params::parse_time("until", s, now).map_err(ApiError::from)?)),
        None => None,
    };
    let filters = Filters::parse(q.get("filters").map(String::as_str)).map_err(ApiError::from)?;
    let (past, mut rx) = state.engine.events.subscribe(since);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let line = |e: &Event| {
            let mut v = serde_json::to_vec(&event_json(e)).unwrap_or_default();
            v.push(b'\n');
            bytes::Bytes::from(v)
        };
        for e in past.iter().filter(|e| until.is_none_or(|u| e.time_nano <= u)).filter(|e| event_matches(&filters, e)) {
            if tx.send(Ok(line(e))).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now_n = to_nanos(std::time::SystemTime::now());
            tokio::time::Instant::now() + std::time::Duration::from_nanos((u - now_n).max(0) as u64)
        });
        loop {
            let next = async { rx.recv().await };
            let ev = match deadline {
                Some(d) => match tokio::time::timeout_at(d, next).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => next.await,
            };
            match ev {
                Ok(e) if event_matches(&filters, &e) => {
                    if tx.send(Ok(line(&e))).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `GET /berth/v1/runtimes/export?format=containerd|runtimeclass`.
async fn export_runtimes(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let snap = state.engine.runtimes.snapshot();
    let clashes = berth_config::export::handler_collisions(&snap);
    if !clashes.is_empty() {
        return Err(ApiError::new(StatusCode::CONFLICT, clashes.join("; ")));
    }
    let (text, ct) = match q.get("format").map(String::as_str) {
        Some("containerd") => (berth_config::export::containerd_toml(&snap), "application/toml"),
        Some("runtimeclass") => (berth_config::export::runtimeclass_yaml(&snap), "application/yaml"),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown export format {:?}: use format=containerd (CRI runtime handlers, TOML) or format=runtimeclass (Kubernetes RuntimeClass, YAML)",
                other.unwrap_or("")
            )))
        }
    };
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}
