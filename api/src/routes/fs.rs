//! Routes on a container's filesystem: `docker diff`
//! (`/containers/{id}/changes`), `docker commit` (`/commit`), `docker cp`
//! (`/containers/{id}/archive`) and `docker system df` (`/system/df`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::cp::{ExtractRequest, PathStat};
use berth_engine::images::scratch::ScratchKind;
use berth_engine::model::timefmt::format_rfc3339_nano;
use http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::containers::fs::CommitOptions;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::images::Query;
use crate::docker::inspect::{container_summary, InspectExtras};
use crate::docker::params::{parse_bool, parse_bool_or};
use crate::error::{json_response, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
        .route("/containers/{id}/archive", get(get_archive).head(head_archive).put(put_archive))
        .route("/system/df", get(disk_usage))
}

async fn changes(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let changes = state.engine.containers.changes(&id).await?;
    let out: Vec<Value> = changes.iter().map(|c| json!({ "Path": c.path, "Kind": c.kind as u8 })).collect();
    Ok(json_response(StatusCode::OK, &out))
}

/// The most bytes of a commit body berth reads (it only takes `null` or
/// an empty object).
const COMMIT_BODY_LIMIT: usize = 64 << 10;

async fn commit(State(state): State<AppState>, RawQuery(raw): RawQuery, body: Body) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let container = q.get("container").unwrap_or("");
    if container.is_empty() {
        return Err(ApiError::bad_request("a container is required (the `container` parameter)"));
    }
    // The body is a container config that dockerd merges into the image's;
    // berth takes the changes only, so any setting there is refused.
    let bytes = http_body_util::Limited::new(body, COMMIT_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the commit body: {e}")))?
        .to_bytes();
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Null) => {}
            Ok(Value::Object(m)) if m.values().all(|v| v.is_null()) => {}
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "berth does not take a container config in the commit body; give the settings as changes (`docker commit --change`)",
                ))
            }
            Err(e) => return Err(ApiError::bad_request(format!("invalid commit body: {e}"))),
        }
    }
    let reference = match (q.get("repo").unwrap_or(""), q.get("tag").unwrap_or("")) {
        ("", "") => None,
        ("", t) => return Err(ApiError::bad_request(format!("a tag ({t}) needs a repository"))),
        (r, "") => Some(r.to_string()),
        (r, t) => Some(format!("{r}:{t}")),
    };
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").map(str::to_string),
        author: q.get("author").map(str::to_string),
        // Absent or empty: pause (dockerd's default since API 1.13).
        pause: parse_bool_or(q.get("pause"), true),
        changes: q.all("changes"),
    };
    let id = state.engine.containers.commit(container, opts).await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "Id": id })))
}

async fn disk_usage(State(state): State<AppState>) -> Result<Response, ApiError> {
    let usage = state.engine.disk_usage().await?;
    let images: Vec<Value> = usage
        .images
        .iter()
        .map(|u| {
            let info = &u.image.info;
            let mut tags: Vec<String> = u.image.names.iter().map(|n| berth_engine::images::familiar(n)).collect();
            tags.sort();
            json!({
                "Id": u.image.id,
                "ParentId": info.config_file.extra.get("parent").and_then(Value::as_str).unwrap_or(""),
                "RepoTags": tags,
                "RepoDigests": [],
                "Created": super::images::unix_secs(info.config.created.as_deref()),
                "Size": u.size,
                "SharedSize": u.shared_size,
                "VirtualSize": u.size,
                "Labels": info.config.labels,
                "Containers": u.containers,
            })
        })
        .collect();
    let now = std::time::SystemTime::now();
    let containers: Vec<Value> = usage
        .containers
        .iter()
        .map(|(rec, size)| {
            let extras = InspectExtras {
                driver: state.daemon.snapshotter.clone(),
                size_rw: Some(size.rw),
                size_root_fs: Some(size.root_fs),
                health: state.engine.containers.health(&rec.id),
                ..Default::default()
            };
            serde_json::to_value(container_summary(rec, now, &extras)).unwrap_or(Value::Null)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "LayersSize": usage.layers_size, "Images": images, "Containers": containers, "Volumes": [], "BuildCache": [] }),
    ))
}

// ---------------------------------------------------------------------------
// docker cp: HEAD/GET/PUT /containers/{id}/archive?path=

/// `X-Docker-Container-Path-Stat`: base64 of moby's `ContainerPathStat`.
fn path_stat_header(s: &PathStat) -> HeaderValue {
    let json = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": format_rfc3339_nano(s.mtime),
        "linkTarget": s.link_target,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

fn archive_path(q: &Query) -> Result<String, ApiError> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path is required (the `path` parameter)")),
    }
}

async fn head_archive(State(state): State<AppState>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let path = archive_path(&Query::parse(raw))?;
    let stat = state.engine.containers.stat_path(&id, &path).await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert("X-Docker-Container-Path-Stat", path_stat_header(&stat));
    Ok(resp)
}

async fn get_archive(State(state): State<AppState>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let path = archive_path(&Query::parse(raw))?;
    let (stat, rx) = state.engine.containers.archive_path(&id, &path).await?;
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    resp.headers_mut().insert("X-Docker-Container-Path-Stat", path_stat_header(&stat));
    Ok(resp)
}

async fn put_archive(State(state): State<AppState>, Path(id): Path<String>, RawQuery(raw): RawQuery, body: Body) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let path = archive_path(&q)?;
    // The container must exist before anything is uploaded.
    state.engine.containers.get(&id)?;
    let dir = super::images::scratch(&state, ScratchKind::Copy)?;
    let archive = dir.path().join("archive.tar");
    let result = async {
        super::images::body_to_file(body, &archive, state.engine.images.upload_limit()).await?;
        let req = ExtractRequest {
            path,
            archive: archive.clone(),
            no_overwrite_dir_non_dir: parse_bool(q.get("noOverwriteDirNonDir")),
            copy_uid_gid: parse_bool(q.get("copyUIDGID")),
        };
        Ok::<(), ApiError>(state.engine.containers.extract_to_dir(&id, req).await?)
    }
    .await;
    super::images::discard(dir).await;
    result?;
    Ok(StatusCode::OK.into_response())
}
