//! Image routes: list, inspect, import (and the refused pull), load, save,
//! tag, remove, prune, history.
//!
//! Image names contain `/` and `:`, so the per-image routes are wildcards
//! (`/images/{*rest}`) whose suffix (`/json`, `/get`, `/history`, `/tag`)
//! is split off here.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::images::scratch::ScratchKind;
use berth_engine::images::{ImageDetails, ImageSummary, ImportOptions, LoadedImage, Removed};
use berth_engine::model::timefmt::{format_rfc3339_nano, parse_rfc3339};
use futures_util::StreamExt;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::docker::filters::{labels_match, FilterError, Filters, ReferenceFilter};
use crate::docker::params::{parse_bool, parse_time};
use crate::error::{json_response, ApiError};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list).delete(|s, q| delete_fixed(s, q, "json")))
        .route("/images/create", post(create).delete(|s, q| delete_fixed(s, q, "create")))
        .route("/images/load", post(load).delete(|s, q| delete_fixed(s, q, "load")))
        .route("/images/get", get(save_many).delete(|s, q| delete_fixed(s, q, "get")))
        .route("/images/prune", post(prune).delete(|s, q| delete_fixed(s, q, "prune")))
        .route("/images/{*rest}", get(get_image).post(post_image).delete(remove))
}

// ---------------------------------------------------------------------------
// Query strings: some parameters repeat (`changes`, `names`).

pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: Option<String>) -> Query {
        Query(form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect())
    }
    /// The last value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub(super) fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
    fn flag(&self, key: &str) -> bool {
        parse_bool(self.get(key))
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
}

/// A scratch directory for one upload (see `berth_engine::images::scratch`).
pub(super) fn scratch(state: &AppState, kind: ScratchKind) -> Result<tempfile::TempDir, ApiError> {
    Ok(state.engine.images.scratch(kind)?)
}

/// Removes a scratch directory off the async threads (it may hold
/// gigabytes).
pub(super) async fn discard(dir: tempfile::TempDir) {
    let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
}

/// Streams a request body (possibly chunked) to a file, never holding it
/// in memory; a body over `limit` bytes is refused as it arrives.
pub(super) async fn body_to_file(body: Body, path: &std::path::Path, limit: u64) -> Result<u64, ApiError> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| internal(&format!("creating {}", path.display()), e))?;
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is over berth's limit of {} GiB for an archive; nothing was stored", limit >> 30),
            ));
        }
        file.write_all(&chunk).await.map_err(|e| internal(&format!("writing {}", path.display()), e))?;
    }
    file.flush().await.map_err(|e| internal(&format!("writing {}", path.display()), e))?;
    Ok(total)
}

/// A JSON-message stream (`application/json`, one object per line).
fn json_lines(lines: &[Value]) -> Response {
    let mut body = Vec::new();
    for l in lines {
        body.extend_from_slice(l.to_string().as_bytes());
        body.push(b'\n');
    }
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn stream_error(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(super) fn unix_secs(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(parse_rfc3339)
        .map(|t| match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        })
        .unwrap_or(0)
}

/// Size as listed: the layers' stored sizes.
fn image_size(info: &berth_engine::model::ImageInfo) -> i64 {
    info.manifest.layers.iter().map(|l| l.size).sum()
}

fn familiar_names(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| berth_engine::images::familiar(n)).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// GET /images/json

fn dangling_value(filters: &Filters) -> Result<Option<bool>, FilterError> {
    match filters.get("dangling").last() {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(FilterError::BadValue { key: "dangling".into(), value: v.clone() }),
        },
    }
}

async fn created_of(state: &AppState, key: &str, given: &str) -> Result<i64, ApiError> {
    let img = state.engine.images.resolve(given).await.map_err(|e| match e {
        berth_engine::EngineError::NotFound(m) => ApiError::not_found(format!("invalid filter '{key}={given}': {m}")),
        other => other.into(),
    })?;
    Ok(unix_secs(img.info.config.created.as_deref()))
}

async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let filters = Filters::parse(q.get("filters"))?;
    filters.validate(&["reference", "dangling", "label", "before", "since"], &["until"])?;
    let dangling = dangling_value(&filters)?;
    let before = match filters.get("before").last() {
        Some(v) => Some(created_of(&state, "before", v).await?),
        None => None,
    };
    let since = match filters.get("since").last() {
        Some(v) => Some(created_of(&state, "since", v).await?),
        None => None,
    };
    let references = ReferenceFilter::new(filters.get("reference"))?;
    let images = state.engine.images.list().await?;
    // Matching patterns against every tag is CPU work bounded by the
    // filter limits, but not small: off the async threads.
    let out = tokio::task::spawn_blocking(move || list_rows(images, &filters, &references, dangling, before, since))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(json_response(StatusCode::OK, &out))
}

/// The rows of `GET /images/json`, newest first.
fn list_rows(
    images: Vec<berth_engine::images::ImageSummary>,
    filters: &Filters,
    references: &ReferenceFilter,
    dangling: Option<bool>,
    before: Option<i64>,
    since: Option<i64>,
) -> Vec<Value> {
    let mut out: Vec<(i64, Value)> = Vec::new();
    for s in images {
        let created = unix_secs(s.info.config.created.as_deref());
        let mut tags = familiar_names(&s.names);
        let is_dangling = tags.is_empty();
        if dangling.is_some_and(|d| d != is_dangling) {
            continue;
        }
        if !references.is_empty() {
            tags.retain(|t| references.matches(t));
            if tags.is_empty() {
                continue;
            }
        }
        let labels = s.info.config.labels.clone().unwrap_or_default();
        if !labels_match(filters.get("label"), &labels) {
            continue;
        }
        if before.is_some_and(|b| created >= b) || since.is_some_and(|b| created <= b) {
            continue;
        }
        let size = image_size(&s.info);
        let (repo_tags, repo_digests) = if is_dangling { (json!(["<none>:<none>"]), json!(["<none>@<none>"])) } else { (json!(tags), json!([])) };
        out.push((
            created,
            json!({
                "Containers": -1,
                "Created": created,
                "Id": s.id,
                "Labels": s.info.config.labels,
                "ParentId": s.info.config_file.extra.get("parent").and_then(Value::as_str).unwrap_or(""),
                "RepoDigests": repo_digests,
                "RepoTags": repo_tags,
                "SharedSize": -1,
                "Size": size,
                "VirtualSize": size,
            }),
        ));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.into_iter().map(|(_, v)| v).collect()
}

// ---------------------------------------------------------------------------
// GET /images/{name}/json|get|history

async fn get_image(State(state): State<AppState>, Path(rest): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let _ = raw;
    if let Some(name) = rest.strip_suffix("/json") {
        return inspect(&state, name).await;
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(&state, vec![name.to_string()]).await;
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return history(&state, name).await;
    }
    Err(ApiError::not_found("page not found"))
}

/// The runnable config as Docker's inspect shows it.
fn config_json(c: &berth_engine::model::ImageConfig) -> Value {
    let mut v = json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user.clone().unwrap_or_default(),
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": c.env,
        "Cmd": c.cmd,
        "Image": "",
        "Volumes": c.volumes,
        "WorkingDir": c.working_dir.clone().unwrap_or_default(),
        "Entrypoint": c.entrypoint,
        "OnBuild": null,
        "Labels": c.labels,
    });
    if let Some(p) = &c.exposed_ports {
        v["ExposedPorts"] = json!(p);
    }
    if let Some(s) = &c.stop_signal {
        v["StopSignal"] = json!(s);
    }
    if let Some(h) = &c.healthcheck {
        v["Healthcheck"] = json!(h);
    }
    v
}

fn inspect_json(d: &ImageDetails, snapshotter: &str) -> Value {
    let info = &d.image.info;
    let file = &info.config_file;
    let extra = |k: &str| file.extra.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let size = image_size(info);
    let mut v = json!({
        "Id": d.image.id,
        "RepoTags": familiar_names(&d.names),
        "RepoDigests": [],
        "Parent": extra("parent"),
        "Comment": extra("comment"),
        "Created": file.created.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "Container": extra("container"),
        "ContainerConfig": file.extra.get("container_config").cloned().unwrap_or_else(|| config_json(&Default::default())),
        "DockerVersion": extra("docker_version"),
        "Author": file.author.clone().unwrap_or_default(),
        "Config": config_json(&info.config),
        "Architecture": file.architecture,
        "Os": file.os,
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": { "Data": {}, "Name": snapshotter },
        "RootFS": { "Type": "layers", "Layers": file.rootfs.diff_ids },
        "Metadata": { "LastTagTime": d.last_tag_time.map(format_rfc3339_nano).unwrap_or_else(|| ZERO_TIME.into()) },
    });
    if let Some(variant) = file.extra.get("variant") {
        v["Variant"] = variant.clone();
    }
    v
}

async fn inspect(state: &AppState, name: &str) -> Result<Response, ApiError> {
    let d = state.engine.images.details(name).await?;
    Ok(json_response(StatusCode::OK, &inspect_json(&d, state.engine.images.store().snapshotter())))
}

async fn history(state: &AppState, name: &str) -> Result<Response, ApiError> {
    let d = state.engine.images.details(name).await?;
    let info = &d.image.info;
    let layers: Vec<i64> = info.manifest.layers.iter().map(|l| l.size).collect();
    let mut entries: Vec<Value> = Vec::new();
    let mut layer = 0usize;
    match &info.config_file.history {
        Some(h) if !h.is_empty() => {
            for e in h {
                let empty = e.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
                let size = if empty {
                    0
                } else {
                    layer += 1;
                    layers.get(layer - 1).copied().unwrap_or(0)
                };
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                entries.push(json!({
                    "Id": "<missing>",
                    "Created": unix_secs(e.get("created").and_then(Value::as_str)),
                    "CreatedBy": s("created_by"),
                    "Tags": null,
                    "Size": size,
                    "Comment": s("comment"),
                }));
            }
        }
        _ => {
            let created = unix_secs(info.config.created.as_deref());
            for size in &layers {
                entries.push(json!({ "Id": "<missing>", "Created": created, "CreatedBy": "", "Tags": null, "Size": size, "Comment": "" }));
            }
        }
    }
    entries.reverse();
    if let Some(top) = entries.first_mut() {
        top["Id"] = json!(d.image.id);
        let tags = familiar_names(&d.names);
        top["Tags"] = if tags.is_empty() { Value::Null } else { json!(tags) };
    }
    Ok(json_response(StatusCode::OK, &entries))
}

// ---------------------------------------------------------------------------
// POST /images/create (import; pulls are refused)

async fn create(State(state): State<AppState>, RawQuery(raw): RawQuery, body: Body) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    if let Some(image) = q.get("fromImage").filter(|s| !s.is_empty()) {
        let tag = q.get("tag").filter(|t| !t.is_empty());
        let wanted = match tag {
            Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
            Some(t) => format!("{image}:{t}"),
            None => image.to_string(),
        };
        let shown = berth_engine::reference::parse(&wanted).map(|r| r.familiar()).unwrap_or(wanted);
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "berth cannot pull images (it has no registry access), so {shown} is not available; \
                 load it with `docker load -i FILE` (an archive written by `docker save`) or create it with `docker import FILE {shown}`"
            ),
        ));
    }
    let src = q.get("fromSrc").unwrap_or("");
    if src.is_empty() {
        return Err(ApiError::bad_request("either fromImage or fromSrc is required"));
    }
    if src != "-" {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("berth cannot import from a URL ({src}); download the file and run `docker import FILE`"),
        ));
    }
    let repo = q.get("repo").unwrap_or("");
    let name = match (repo, q.get("tag").unwrap_or("")) {
        ("", _) => None,
        (r, "") => Some(r.to_string()),
        (r, t) => Some(format!("{r}:{t}")),
    };
    if let Some(n) = &name {
        berth_engine::reference::parse(n).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let dir = scratch(&state, ScratchKind::Import)?;
    let layer = dir.path().join("layer.tar");
    let id = async {
        body_to_file(body, &layer, state.engine.images.upload_limit()).await?;
        let options = ImportOptions {
            layer,
            name,
            changes: q.all("changes"),
            message: q.get("message").map(str::to_string),
            source: Some("-".into()),
        };
        Ok::<String, ApiError>(state.engine.images.import_tarball(options).await?)
    }
    .await;
    discard(dir).await;
    Ok(json_lines(&[json!({ "status": id? })]))
}

// ---------------------------------------------------------------------------
// POST /images/load, GET /images/get

async fn load(State(state): State<AppState>, RawQuery(raw): RawQuery, body: Body) -> Response {
    let _ = Query::parse(raw); // `quiet` changes nothing: berth sends no progress bars.
    let result = async {
        let dir = scratch(&state, ScratchKind::Load)?;
        let archive = dir.path().join("archive.tar");
        let work = dir.path().join("files");
        let loaded = async {
            std::fs::create_dir(&work).map_err(|e| internal("creating the load directory", e))?;
            body_to_file(body, &archive, state.engine.images.upload_limit()).await?;
            Ok::<Vec<LoadedImage>, ApiError>(state.engine.images.load(archive, work).await?)
        }
        .await;
        discard(dir).await;
        loaded
    }
    .await;
    match result {
        Ok(images) => {
            let mut lines = Vec::new();
            for img in images {
                if img.tags.is_empty() {
                    lines.push(json!({ "stream": format!("Loaded image ID: {}\n", img.id) }));
                }
                for t in img.tags {
                    lines.push(json!({ "stream": format!("Loaded image: {t}\n") }));
                }
            }
            json_lines(&lines)
        }
        // The CLI expects load errors inside the stream.
        Err(e) => json_lines(&[stream_error(&e.message)]),
    }
}

async fn save_many(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let names = Query::parse(raw).all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given (names=...)"));
    }
    save(&state, names).await
}

async fn save(state: &AppState, names: Vec<String>) -> Result<Response, ApiError> {
    let plan = state.engine.images.save_plan(&names).await?;
    let (mut w, r) = tokio::io::duplex(256 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let res = engine.images.write_save(&plan, &mut w).await.map_err(|e| e.to_string());
        if let Err(e) = &res {
            tracing::warn!(error = %e, "docker save failed mid-stream");
        }
        let _ = done_tx.send(res);
    });
    // A failure after the headers went out aborts the body, so the client
    // sees a broken transfer rather than a short, valid-looking tar.
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(std::io::Error::other(e))),
            Err(_) => Some(Err(std::io::Error::other("the save task ended early"))),
        }
    })
    .filter_map(|x| async move { x });
    let stream = tokio_util::io::ReaderStream::new(r).chain(tail);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

// ---------------------------------------------------------------------------
// POST /images/{name}/tag, DELETE /images/{name}, POST /images/prune

async fn post_image(State(state): State<AppState>, Path(rest): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let Some(source) = rest.strip_suffix("/tag") else {
        return Err(ApiError::not_found("page not found"));
    };
    let q = Query::parse(raw);
    let repo = q.get("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name must have at least one component (repo=...)"));
    }
    let target = match q.get("tag").unwrap_or("") {
        "" => repo.to_string(),
        t => format!("{repo}:{t}"),
    };
    state.engine.images.tag(source, &target).await?;
    Ok(StatusCode::CREATED.into_response())
}

fn removed_json(items: &[Removed]) -> Vec<Value> {
    items
        .iter()
        .map(|r| match r {
            Removed::Untagged(n) => json!({ "Untagged": n }),
            Removed::Deleted(id) => json!({ "Deleted": id }),
        })
        .collect()
}

fn images_in_use(state: &AppState) -> HashSet<String> {
    state.engine.containers.list().iter().map(|c| c.image_id.clone()).collect()
}

async fn remove(State(state): State<AppState>, Path(name): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    remove_named(&state, &name, Query::parse(raw)).await
}

async fn delete_fixed(State(state): State<AppState>, RawQuery(raw): RawQuery, name: &'static str) -> Result<Response, ApiError> {
    remove_named(&state, name, Query::parse(raw)).await
}

async fn remove_named(state: &AppState, name: &str, q: Query) -> Result<Response, ApiError> {
    let force = q.flag("force");
    let containers = state.engine.containers.list();
    let removed = state
        .engine
        .images
        .remove(name, force, |id| containers.iter().find(|c| c.image_id == id).map(|c| c.id.clone()))
        .await?;
    Ok(json_response(StatusCode::OK, &removed_json(&removed)))
}

async fn prune(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let filters = Filters::parse(q.get("filters"))?;
    filters.validate(&["dangling", "label", "label!", "until"], &[])?;
    let only_dangling = dangling_value(&filters)?.unwrap_or(true);
    let until = match filters.get("until").last() {
        Some(v) => Some(parse_time("until", v, SystemTime::now())?),
        None => None,
    };
    let in_use = images_in_use(&state);
    let candidates: Vec<ImageSummary> = state
        .engine
        .images
        .list()
        .await?
        .into_iter()
        .filter(|s| !in_use.contains(&s.id))
        .filter(|s| !only_dangling || s.names.is_empty())
        .filter(|s| {
            let labels: BTreeMap<String, String> = s.info.config.labels.clone().unwrap_or_default();
            labels_match(filters.get("label"), &labels) && !filters.get("label!").iter().any(|c| labels_match(std::slice::from_ref(c), &labels))
        })
        .filter(|s| match until {
            None => true,
            Some(u) => s.info.config.created.as_deref().and_then(parse_rfc3339).is_some_and(|c| c < u),
        })
        .collect();
    let (removed, reclaimed) = state.engine.images.prune(&candidates).await?;
    let deleted = removed_json(&removed);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_has_the_fixture_keys() {
        let raw = br#"{"architecture":"amd64","os":"linux","created":"2026-11-29T04:22:15.79210898Z","comment":"my msg","config":{"Env":["FOO=bar"],"Cmd":["echo","fromcmd"]},"rootfs":{"type":"layers","diff_ids":["sha256:3d1e"]}}"#;
        let file = berth_engine::model::oci::ImageConfigFile::parse(raw).unwrap();
        let desc = |d: &str, s| berth_engine::model::oci::Descriptor { media_type: "x".into(), digest: d.into(), size: s, platform: None };
        let info = berth_engine::model::ImageInfo {
            record: berth_engine::model::ImageRecord {
                name: "docker.io/library/rsh-imp2:latest".into(),
                target: desc("sha256:m", 1),
                labels: Default::default(),
                created_at: None,
                updated_at: None,
            },
            manifest: berth_engine::model::oci::Manifest { schema_version: 2, media_type: None, config: desc("sha256:c", 10), layers: vec![desc("sha256:l", 1982303)] },
            config_digest: "sha256:1a53".into(),
            config: file.image_config(),
            config_file: file,
            chain_id: None,
            size: 1982313,
        };
        let d = ImageDetails {
            image: berth_engine::images::ResolvedImage {
                id: "sha256:1a53".into(),
                manifest_digest: "sha256:m".into(),
                name: info.record.name.clone(),
                chain_id: None,
                defaults: berth_engine::images::defaults(&info.config),
                info,
            },
            names: vec!["docker.io/library/rsh-imp2:latest".into()],
            last_tag_time: None,
        };
        let v = inspect_json(&d, "overlayfs");
        {
            let dir = crate::docker::models::tests::fixtures_dir();
            let fixture: Value = serde_json::from_slice(&std::fs::read(dir.join("resp-images-name-json.json")).unwrap()).unwrap();
            for k in fixture.as_object().unwrap().keys() {
                assert!(v.get(k).is_some(), "missing {k}");
            }
            for k in fixture["Config"].as_object().unwrap().keys() {
                assert!(v["Config"].get(k).is_some(), "missing Config.{k}");
            }
        }
        assert_eq!(v["RepoTags"], json!(["rsh-imp2:latest"]));
        assert_eq!(v["Comment"], "my msg");
        assert_eq!(v["Config"]["Cmd"], json!(["echo", "fromcmd"]));
        assert_eq!(v["Size"], 1982303);
        assert_eq!(v["RootFS"]["Layers"], json!(["sha256:3d1e"]));
        // Typed view round-trips through bollard's model.
        let typed: crate::docker::models::ImageInspect = serde_json::from_value(v).unwrap();
        assert_eq!(typed.id.as_deref(), Some("sha256:1a53"));
    }
}
