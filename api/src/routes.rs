//! Routes. Handlers only translate: parse the request, call the engine, map
//! the result.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderValue, Method, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::error::{json_response, ApiError};
use crate::{version, AppState, API_VERSION, MIN_API_VERSION};

/// The whole API as one tower service: version rewriting happens before
/// routing, Docker's headers are added to every response.
pub fn router(state: AppState) -> impl tower::Service<Request<Body>, Response = Response, Error = std::convert::Infallible, Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send> + Clone + Send + Sync + 'static {
    let routes = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version_info))
        .route("/berth/v1/reload", post(reload))
        .route("/berth/v1/runtimes", get(runtimes))
        .fallback(not_found)
        .with_state(state);
    tower::service_fn(move |req: Request<Body>| {
        let routes = routes.clone();
        async move {
            let mut resp = match version::rewrite(req) {
                Ok(req) => routes.oneshot(req).await.unwrap_or_else(|e| match e {}),
                Err(resp) => resp,
            };
            version::add_headers(&mut resp);
            Ok(resp)
        }
    })
}

async fn not_found(method: Method, uri: http::Uri) -> ApiError {
    let (_, path) = version::split_version(uri.path());
    let what = ["/networks", "/volumes", "/plugins", "/swarm", "/services", "/nodes", "/secrets", "/configs", "/build", "/session", "/distribution"]
        .iter()
        .find(|p| path.starts_with(*p));
    match what {
        Some(p) => ApiError::not_found(format!(
            "{} is not supported by berth yet ({method} {path})",
            p.trim_start_matches('/')
        )),
        None => ApiError::not_found("page not found"),
    }
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
    let snap = state.runtimes.snapshot();
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
    let pinned = (state.pinned_wrappers)();
    match state.runtimes.reload(dry_run, pinned).await {
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
    json_response(StatusCode::OK, &state.runtimes.inventory())
}
