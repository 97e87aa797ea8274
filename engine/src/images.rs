//! Images: resolve a reference for a container, import a rootfs tarball
//! (`docker import`, with `--change` instructions), list, inspect, tag,
//! remove, prune, and `docker save`/`docker load` archives. Images live in
//! containerd's content store and snapshotter; names are normalised like
//! Docker's.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_containerd::oci::ImageConfigFile;
use berth_containerd::{ConfigSource, ImageConfig, ImageInfo, ImageStore, ImportRequest};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus};
use crate::reference::{self, Reference};
use crate::spec::ImageDefaults;

/// An image resolved for a container.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Docker's image id: the config digest.
    pub id: String,
    pub manifest_digest: String,
    /// The containerd name it was found under.
    pub name: String,
    pub chain_id: Option<String>,
    pub defaults: ImageDefaults,
    pub info: ImageInfo,
}

/// One image as listed: its id and every name pointing at it.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: String,
    pub names: Vec<String>,
    pub info: ImageInfo,
}

pub struct ImageService {
    store: ImageStore,
    events: Arc<EventBus>,
}

/// Runnable defaults of an image config.
pub fn defaults(cfg: &ImageConfig) -> ImageDefaults {
    ImageDefaults {
        env: cfg.env.clone().unwrap_or_default(),
        cmd: cfg.cmd.clone(),
        entrypoint: cfg.entrypoint.clone(),
        working_dir: cfg.working_dir.clone().unwrap_or_default(),
        user: cfg.user.clone().unwrap_or_default(),
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ImageService {
    pub fn new(store: ImageStore, events: Arc<EventBus>) -> Self {
        ImageService { store, events }
    }

    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// Finds an image by reference (`bb`, `bb:latest`, `docker.io/library/bb:latest`)
    /// or by id (`sha256:<hex>` or a unique hex prefix).
    pub async fn resolve(&self, given: &str) -> Result<ResolvedImage> {
        let not_found = || EngineError::NotFound(format!("No such image: {given}"));
        let by_name = match reference::parse(given) {
            Ok(r) => match self.store.get(&r.full()).await {
                Ok(info) => Some(info),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        let info = match by_name {
            Some(i) => i,
            None => {
                let want = given.strip_prefix("sha256:").unwrap_or(given);
                if !is_hex(want) || want.len() < 4 {
                    return Err(match reference::parse(given) {
                        Err(e) => EngineError::InvalidParameter(e.to_string()),
                        Ok(r) => EngineError::NotFound(format!("No such image: {}", r.familiar())),
                    });
                }
                let mut found: Option<ImageInfo> = None;
                for s in self.list().await? {
                    if s.id.trim_start_matches("sha256:").starts_with(want) {
                        if found.as_ref().is_some_and(|f| f.config_digest != s.info.config_digest) {
                            return Err(EngineError::InvalidParameter(format!("multiple images match prefix {given}; give more of the id")));
                        }
                        found = Some(s.info);
                    }
                }
                found.ok_or_else(not_found)?
            }
        };
        Ok(ResolvedImage {
            id: info.config_digest.clone(),
            manifest_digest: info.record.target.digest.clone(),
            name: info.record.name.clone(),
            chain_id: info.chain_id.clone(),
            defaults: defaults(&info.config),
            info,
        })
    }

    /// Every image (by id) with its names. Records that cannot be read are
    /// skipped with a warning.
    pub async fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut by_id: BTreeMap<String, ImageSummary> = BTreeMap::new();
        for rec in self.store.list().await? {
            match self.store.get(&rec.name).await {
                Ok(info) => {
                    let e = by_id.entry(info.config_digest.clone()).or_insert_with(|| ImageSummary { id: info.config_digest.clone(), names: vec![], info: info.clone() });
                    if !rec.name.starts_with("sha256:") {
                        e.names.push(rec.name.clone());
                    }
                }
                Err(e) => tracing::warn!(image = %rec.name, error = %e, "skipping unreadable image"),
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// Imports a rootfs tarball as a one-layer image with the given runnable
    /// defaults (used by tests and callers that build the config themselves).
    pub async fn import(&self, layer: PathBuf, name: Option<&str>, config: ImageConfig) -> Result<String> {
        let names = self.target_names(name)?;
        for n in &names {
            self.keep_displaced(n).await?;
        }
        let imported = self
            .store
            .import(ImportRequest { names: names.clone(), layers: vec![layer], config: ConfigSource::Build(config), labels: HashMap::new() })
            .await?;
        let id = imported.config_digest.clone();
        self.publish("import", &id, names.first().map(|n| familiar(n)));
        Ok(id)
    }

    /// `docker import`: checks that `opts.layer` is a tar archive (plain or
    /// gzip), builds the config from `opts.changes` (Dockerfile
    /// instructions), and imports it as a one-layer image. Returns the id.
    pub async fn import_tarball(&self, opts: ImportOptions) -> Result<String> {
        let names = self.target_names(opts.name.as_deref())?;
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &opts.changes)?;
        let path = opts.layer.clone();
        let digests = tokio::task::spawn_blocking(move || -> Result<berth_containerd::layers::LayerDigests> {
            check_tarball(&path)?;
            berth_containerd::layers::inspect_layer(&path).map_err(|e| EngineError::Internal(format!("Error processing tar file: {e}")))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("import task: {e}")))??;

        let now = berth_store::timefmt::now_rfc3339_nano();
        let mut file = ImageConfigFile::build(&cfg, vec![digests.diff_id.clone()]);
        file.created = Some(now.clone());
        let comment = opts.message.clone().filter(|m| !m.is_empty());
        if let Some(c) = &comment {
            file.extra.insert("comment".into(), serde_json::Value::String(c.clone()));
        }
        let history_comment = comment.unwrap_or_else(|| format!("Imported from {}", opts.source.as_deref().unwrap_or("-")));
        file.history = Some(vec![serde_json::json!({ "created": now, "comment": history_comment })]);
        let raw = serde_json::to_vec(&file).map_err(|e| EngineError::Internal(format!("encoding image config: {e}")))?;

        for n in &names {
            self.keep_displaced(n).await?;
        }
        let imported = self
            .store
            .import(ImportRequest { names: names.clone(), layers: vec![opts.layer], config: ConfigSource::Raw(raw), labels: HashMap::new() })
            .await?;
        let id = imported.config_digest.clone();
        self.publish("import", &id, names.first().map(|n| familiar(n)));
        Ok(id)
    }

    /// An image with every name pointing at it (`docker image inspect`).
    pub async fn details(&self, given: &str) -> Result<ImageDetails> {
        let image = self.resolve(given).await?;
        let mut names = Vec::new();
        let mut last_tag_time = None;
        for rec in self.store.list().await? {
            if rec.name.starts_with("sha256:") {
                continue;
            }
            // Cheap pre-check on the manifest; confirm by config digest.
            let same = rec.target.digest == image.manifest_digest
                || match self.store.get(&rec.name).await {
                    Ok(i) => i.config_digest == image.id,
                    Err(_) => false,
                };
            if same {
                names.push(rec.name.clone());
                let t = rec.updated_at.or(rec.created_at);
                if t > last_tag_time {
                    last_tag_time = t;
                }
            }
        }
        names.sort();
        Ok(ImageDetails { image, names, last_tag_time })
    }

    /// Tags an image with a new name.
    pub async fn tag(&self, source: &str, target: &str) -> Result<()> {
        let img = self.resolve(source).await?;
        let t = reference::parse(target).map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        if t.digest.is_some() {
            return Err(EngineError::InvalidParameter("refusing to create a tag with a digest reference".into()));
        }
        self.keep_displaced(&t.full()).await?;
        self.store.tag(&img.name, &t.full()).await?;
        self.publish("tag", &img.id, Some(t.familiar()));
        Ok(())
    }

    /// `docker rmi`. Given a name: untags it, and deletes the image when it
    /// was its last name. Given an id: untags every name and deletes it
    /// (several names need `force`). `in_use` names a container using the
    /// image id; without `force` that is a conflict, with `force` the names
    /// go but the image stays (as dangling) for the container.
    pub async fn remove(&self, given: &str, force: bool, in_use: impl Fn(&str) -> Option<String>) -> Result<Vec<Removed>> {
        let img = self.resolve(given).await?;
        let by_name = reference::parse(given).ok().map(|r| r.full()).filter(|f| *f == img.name && !f.starts_with("sha256:"));
        let (names, anonymous) = self.names_of(&img.id).await?;
        let user = in_use(&img.id);
        let mut out = Vec::new();
        match by_name {
            Some(name) if names.len() > 1 => {
                // Other names remain: only untag.
                self.untag(&img.id, &name, &mut out).await?;
                return Ok(out);
            }
            Some(name) => {
                if let (Some(cid), false) = (&user, force) {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                        familiar(&name),
                        short(cid),
                        short(&img.id)
                    )));
                }
            }
            None => {
                if !force {
                    if names.len() > 1 {
                        return Err(EngineError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            short(&img.id)
                        )));
                    }
                    if let Some(cid) = &user {
                        return Err(EngineError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is being used by container {}",
                            short(&img.id),
                            short(cid)
                        )));
                    }
                }
            }
        }
        if user.is_some() {
            // Keep the image reachable for its container.
            self.ensure_anonymous(&img, &anonymous).await?;
        }
        for n in &names {
            self.untag(&img.id, n, &mut out).await?;
        }
        if user.is_none() {
            for a in &anonymous {
                self.store.delete(a).await?;
            }
            out.push(Removed::Deleted(img.id.clone()));
            self.publish("delete", &img.id, None);
        }
        Ok(out)
    }

    /// Deletes whole images (every name) for `docker image prune`; the
    /// caller chose them (unused, matching the filters). Returns what was
    /// removed and the bytes reclaimed (sum of the images' sizes).
    pub async fn prune(&self, images: &[ImageSummary]) -> Result<(Vec<Removed>, i64)> {
        let mut out = Vec::new();
        let mut reclaimed = 0;
        for s in images {
            let (names, anonymous) = self.names_of(&s.id).await?;
            for n in &names {
                self.untag(&s.id, n, &mut out).await?;
            }
            for a in &anonymous {
                self.store.delete(a).await?;
            }
            out.push(Removed::Deleted(s.id.clone()));
            reclaimed += s.info.size;
            self.publish("delete", &s.id, None);
        }
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), reclaimed.to_string());
        self.events.publish(Event::new("image", "prune", "", attrs));
        Ok((out, reclaimed))
    }

    /// `docker load`: reads a `docker save` archive (`manifest.json` form,
    /// plain or gzip) from `archive`, unpacking it under `work` (an empty
    /// scratch directory the caller removes), and imports every image with
    /// its config byte for byte (so ids are preserved) and its tags.
    pub async fn load(&self, archive: PathBuf, work: PathBuf) -> Result<Vec<LoadedImage>> {
        let entries = tokio::task::spawn_blocking(move || read_save_archive(&archive, &work))
            .await
            .map_err(|e| EngineError::Internal(format!("load task: {e}")))??;
        let mut loaded = Vec::new();
        for entry in entries {
            let mut names = Vec::new();
            for tag in &entry.repo_tags {
                let r = reference::parse(tag).map_err(|e| EngineError::InvalidParameter(format!("invalid tag {tag:?} in manifest.json: {e}")))?;
                names.push(r.full());
            }
            for n in &names {
                self.keep_displaced(n).await?;
            }
            let imported = self
                .store
                .import(ImportRequest { names: names.clone(), layers: entry.layers, config: ConfigSource::Raw(entry.config), labels: HashMap::new() })
                .await
                .map_err(|e| match EngineError::from(e) {
                    EngineError::Internal(m) => EngineError::InvalidParameter(format!("loading {}: {m}", entry.config_path)),
                    other => other,
                })?;
            let tags: Vec<String> = names.iter().map(|n| familiar(n)).collect();
            if tags.is_empty() {
                self.publish("load", &imported.config_digest, None);
            }
            for t in &tags {
                self.publish("load", t, Some(t.clone()));
            }
            loaded.push(LoadedImage { id: imported.config_digest, tags });
        }
        Ok(loaded)
    }

    /// Resolves the images of `docker save` (so a missing one fails before
    /// anything is sent). Several names of one image share an entry.
    pub async fn save_plan(&self, names: &[String]) -> Result<SavePlan> {
        let mut images: Vec<SaveImage> = Vec::new();
        for given in names {
            let img = self.resolve(given).await?;
            let tag = reference::parse(given)
                .ok()
                .filter(|r| r.full() == img.name && r.digest.is_none())
                .map(|r| r.familiar());
            if let Some(existing) = images.iter_mut().find(|i| i.id == img.id) {
                if let Some(t) = tag {
                    if !existing.tags.contains(&t) {
                        existing.tags.push(t);
                    }
                }
                continue;
            }
            let (_, config) = self.store.read_config(&img.name).await?;
            let diff_ids = img.info.config_file.rootfs.diff_ids.clone();
            if diff_ids.len() != img.info.manifest.layers.len() {
                return Err(EngineError::Internal(format!(
                    "image {given}: its config lists {} layers but its manifest {}",
                    diff_ids.len(),
                    img.info.manifest.layers.len()
                )));
            }
            let chains = berth_containerd::layers::chain_ids(&diff_ids);
            let layers = img
                .info
                .manifest
                .layers
                .iter()
                .zip(chains.iter())
                .map(|(d, c)| SaveLayer { digest: d.digest.clone(), size: d.size, dir: c.trim_start_matches("sha256:").to_string() })
                .collect();
            images.push(SaveImage { id: img.id.clone(), config, tags: tag.into_iter().collect(), layers, created: img.info.config.created.clone() });
        }
        Ok(SavePlan { images })
    }

    /// Writes the `docker save` archive of a plan: `manifest.json`,
    /// `repositories`, `<id>.json` configs and `<layer>/{VERSION,json,layer.tar}`
    /// (Docker's legacy archive layout, which `docker load` of every
    /// version reads). Layer blobs are streamed from the content store.
    pub async fn write_save<W: AsyncWrite + Unpin + Send>(&self, plan: &SavePlan, out: &mut W) -> Result<()> {
        let io = |e: std::io::Error| EngineError::Internal(format!("writing the archive: {e}"));
        let mut written_dirs: Vec<String> = Vec::new();
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in &plan.images {
            let mtime = img
                .created
                .as_deref()
                .and_then(berth_store::timefmt::parse_rfc3339)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut layer_paths = Vec::new();
            let mut parent: Option<String> = None;
            for layer in &img.layers {
                let dir = layer.dir.clone();
                layer_paths.push(format!("{dir}/layer.tar"));
                if !written_dirs.contains(&dir) {
                    tar_dir(out, &format!("{dir}/"), mtime).await.map_err(io)?;
                    tar_file(out, &format!("{dir}/VERSION"), b"1.0", mtime).await.map_err(io)?;
                    let mut v1 = serde_json::json!({ "id": dir, "created": img.created.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()) });
                    if let Some(p) = &parent {
                        v1["parent"] = serde_json::Value::String(p.clone());
                    }
                    tar_file(out, &format!("{dir}/json"), v1.to_string().as_bytes(), mtime).await.map_err(io)?;
                    out.write_all(&tar_header(&format!("{dir}/layer.tar"), layer.size as u64, 0o644, tar::EntryType::Regular, mtime)?)
                        .await
                        .map_err(io)?;
                    let n = berth_containerd::content::copy_blob(self.store.client(), &layer.digest, out).await?;
                    if n != layer.size {
                        return Err(EngineError::Internal(format!("layer {} is {n} bytes, its descriptor says {}", layer.digest, layer.size)));
                    }
                    pad(out, layer.size as u64).await.map_err(io)?;
                    written_dirs.push(dir.clone());
                }
                parent = Some(dir);
            }
            let config_name = format!("{}.json", img.id.trim_start_matches("sha256:"));
            if !written_dirs.contains(&config_name) {
                tar_file(out, &config_name, &img.config, mtime).await.map_err(io)?;
                written_dirs.push(config_name.clone());
            }
            for t in &img.tags {
                if let (Ok(r), Some(top)) = (reference::parse(t), &parent) {
                    let fam = Reference { tag: None, digest: None, ..r.clone() }.familiar();
                    repositories.entry(fam).or_default().insert(r.tag.clone().unwrap_or_default(), top.clone());
                }
            }
            manifest.push(serde_json::json!({
                "Config": config_name,
                "RepoTags": if img.tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(img.tags) },
                "Layers": layer_paths,
            }));
            self.publish("save", &img.id, img.tags.first().cloned());
        }
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories).map_err(|e| EngineError::Internal(e.to_string()))?;
            tar_file(out, "repositories", &r, 0).await.map_err(io)?;
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| EngineError::Internal(e.to_string()))?;
        tar_file(out, "manifest.json", &m, 0).await.map_err(io)?;
        out.write_all(&[0u8; 1024]).await.map_err(io)?;
        out.flush().await.map_err(io)?;
        Ok(())
    }

    /// Names (full) and anonymous `sha256:` records of an image id.
    async fn names_of(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let mut names = Vec::new();
        let mut anonymous = Vec::new();
        for rec in self.store.list().await? {
            match self.store.get(&rec.name).await {
                Ok(info) if info.config_digest == id => {
                    if rec.name.starts_with("sha256:") {
                        anonymous.push(rec.name);
                    } else {
                        names.push(rec.name);
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((names, anonymous))
    }

    async fn untag(&self, id: &str, name: &str, out: &mut Vec<Removed>) -> Result<()> {
        match self.store.delete(name).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        out.push(Removed::Untagged(familiar(name)));
        self.publish("untag", id, Some(familiar(name)));
        Ok(())
    }

    /// Makes sure an image keeps a `sha256:<hex>` record (it stays, as
    /// `<none>`, when its names go).
    async fn ensure_anonymous(&self, img: &ResolvedImage, anonymous: &[String]) -> Result<()> {
        if anonymous.is_empty() {
            self.store.tag(&img.name, &anonymous_name(&img.id)).await?;
        }
        Ok(())
    }

    /// Before `name` is pointed at another image: if it is the last name
    /// of its current image, that image stays as `<none>` (as Docker does),
    /// so containers using it keep working and `image prune` can find it.
    async fn keep_displaced(&self, name: &str) -> Result<()> {
        let old = match self.store.get(name).await {
            Ok(i) => i,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (names, anonymous) = self.names_of(&old.config_digest).await?;
        if names.len() <= 1 && anonymous.is_empty() {
            self.store.tag(name, &anonymous_name(&old.config_digest)).await?;
        }
        Ok(())
    }

    fn target_names(&self, name: Option<&str>) -> Result<Vec<String>> {
        match name {
            Some(n) => {
                let r = reference::parse(n).map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
                if r.digest.is_some() {
                    return Err(EngineError::InvalidParameter(format!("invalid reference {n}: a digest cannot be a tag")));
                }
                Ok(vec![r.full()])
            }
            None => Ok(vec![]),
        }
    }

    fn publish(&self, action: &str, actor: &str, name: Option<String>) {
        let mut attrs = BTreeMap::new();
        if let Some(n) = name {
            attrs.insert("name".to_string(), n);
        }
        self.events.publish(Event::new("image", action, actor, attrs));
    }
}

/// `docker.io/library/bb:latest` → `bb:latest`.
pub fn familiar(full: &str) -> String {
    reference::parse(full).map(|r: Reference| r.familiar()).unwrap_or_else(|_| full.to_string())
}

/// `sha256:abcdef…` → `abcdef012345`.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// What `docker import` gives.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The rootfs tarball (plain or gzip), already on disk.
    pub layer: PathBuf,
    /// `repo[:tag]`, if any.
    pub name: Option<String>,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, …).
    pub changes: Vec<String>,
    /// The commit message (`--message`), stored as the config's `comment`.
    pub message: Option<String>,
    /// Where the tarball came from, for the history entry (`-` = stdin).
    pub source: Option<String>,
}

/// An image with all its names (`docker image inspect`).
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub image: ResolvedImage,
    /// Full names, sorted.
    pub names: Vec<String>,
    /// When a name was last set.
    pub last_tag_time: Option<std::time::SystemTime>,
}

/// One line of `docker rmi` / `image prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A familiar name (`bb:latest`).
    Untagged(String),
    /// An image id.
    Deleted(String),
}

/// One image of a `docker load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar names.
    pub tags: Vec<String>,
}

/// What `docker save` writes, resolved up front.
#[derive(Debug, Clone)]
pub struct SavePlan {
    pub images: Vec<SaveImage>,
}

#[derive(Debug, Clone)]
pub struct SaveImage {
    pub id: String,
    /// The config document, verbatim.
    pub config: Vec<u8>,
    /// Familiar names to record in the archive.
    pub tags: Vec<String>,
    pub layers: Vec<SaveLayer>,
    pub created: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SaveLayer {
    /// Blob digest in the content store.
    pub digest: String,
    pub size: i64,
    /// Directory in the archive (the layer's chainID hex).
    pub dir: String,
}

/// The record name that keeps an untagged image: `sha256:<hex>`.
fn anonymous_name(id: &str) -> String {
    format!("sha256:{}", id.trim_start_matches("sha256:"))
}

// ---------------------------------------------------------------------------
// `docker import --change`: Dockerfile instructions applied to a config.

/// Instructions `docker import --change` accepts (as dockerd).
const CHANGE_INSTRUCTIONS: &[&str] = &["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// Applies Dockerfile instructions to `cfg`: `CMD`, `ENTRYPOINT` (JSON array
/// or shell form → `["/bin/sh","-c",…]`), `ENV`, `LABEL` (`k=v …` or the
/// legacy `k v`), `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `STOPSIGNAL`.
pub fn apply_changes(cfg: &mut ImageConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instr, rest) = match change.split_once(|c: char| c.is_whitespace()) {
            Some((i, r)) => (i.to_ascii_uppercase(), r.trim()),
            None => (change.to_ascii_uppercase(), ""),
        };
        let bad = |why: &str| EngineError::InvalidParameter(format!("invalid change {change:?}: {why}"));
        match instr.as_str() {
            "CMD" => cfg.cmd = Some(command_form(rest)),
            "ENTRYPOINT" => cfg.entrypoint = Some(command_form(rest)),
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(rest).map_err(|e| bad(&e))? {
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.starts_with(&prefix) && e != &k);
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in key_values(rest).map_err(|e| bad(&e))? {
                    labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(bad("WORKDIR needs a path"));
                }
                let dir = unquote(rest);
                cfg.working_dir = Some(match cfg.working_dir.as_deref() {
                    Some(prev) if !dir.starts_with('/') && !prev.is_empty() => format!("{}/{dir}", prev.trim_end_matches('/')),
                    _ if !dir.starts_with('/') => format!("/{dir}"),
                    _ => dir,
                });
            }
            "USER" => {
                if rest.is_empty() {
                    return Err(bad("USER needs a user"));
                }
                cfg.user = Some(unquote(rest));
            }
            "STOPSIGNAL" => {
                if rest.is_empty() {
                    return Err(bad("STOPSIGNAL needs a signal"));
                }
                cfg.stop_signal = Some(unquote(rest));
            }
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in split_words(rest).map_err(|e| bad(&e))? {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let valid = !num.is_empty()
                        && num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                    if !valid {
                        return Err(bad(&format!("invalid port {p:?}")));
                    }
                    ports.insert(format!("{num}/{}", proto.to_ascii_lowercase()), serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
                let list = match json_array(rest) {
                    Some(l) => l,
                    None => split_words(rest).map_err(|e| bad(&e))?,
                };
                for v in list {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            other => {
                return Err(EngineError::InvalidParameter(format!(
                    "{other} is not a valid change command (allowed: {})",
                    CHANGE_INSTRUCTIONS.join(", ")
                )))
            }
        }
    }
    Ok(())
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// JSON-array (exec) form, or shell form wrapped in `/bin/sh -c`.
fn command_form(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn unquote(s: &str) -> String {
    split_words(s).ok().filter(|w| w.len() == 1).map(|mut w| w.remove(0)).unwrap_or_else(|| s.to_string())
}

/// Splits on unquoted whitespace; handles `"…"`, `'…'` and backslashes.
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `k=v k2="v 2"`, or the legacy single `k the value`.
fn key_values(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err("needs at least one key=value".into());
    }
    if !words[0].contains('=') {
        let key = words[0].clone();
        let value = rest.trim_start()[rest.trim_start().find(char::is_whitespace).unwrap_or(rest.trim_start().len())..].trim().to_string();
        if value.is_empty() {
            return Err(format!("{key} needs a value (use {key}=value)"));
        }
        return Ok(vec![(key, unquote(&value))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not key=value")),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Tar archives: checking an import, reading a `docker save` archive, writing one.

/// The compression of a file by its magic bytes, if any.
fn compression(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    }
}

/// Opens a plain or gzip tar; other compressions are refused with a hint.
fn open_tar(path: &Path, what: &str) -> Result<Box<dyn Read>> {
    let ctx = |e: std::io::Error| EngineError::Internal(format!("reading {what}: {e}"));
    let mut file = std::fs::File::open(path).map_err(ctx)?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut file, &mut magic).map_err(ctx)?;
    if n == 0 {
        return Err(EngineError::InvalidParameter(format!("{what}: the input is empty, expected a tar archive")));
    }
    let file = std::fs::File::open(path).map_err(ctx)?;
    match compression(&magic[..n]) {
        None => Ok(Box::new(BufReader::new(file))),
        Some("gzip") => Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))),
        Some(other) => Err(EngineError::InvalidParameter(format!(
            "{what}: the input is {other}-compressed, which berth cannot read; decompress it (or use gzip) and try again"
        ))),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A tar reading error in words (the tar crate quotes raw header bytes).
fn tar_error(e: &std::io::Error) -> String {
    let m = e.to_string();
    if m.contains("failed to read entire block") {
        "invalid tar header: the data ends inside a 512-byte header block".into()
    } else if m.contains("cksum") || m.contains("checksum") {
        "invalid tar header: bad header checksum".into()
    } else if m.contains("numeric field") {
        "invalid tar header: a numeric header field is not a number".into()
    } else {
        let clean: String = m.chars().map(|c| if c.is_control() || c == '\u{fffd}' { '?' } else { c }).take(200).collect();
        clean
    }
}

/// Reads a whole tarball to make sure it is one (`docker import`), with a
/// message saying what is wrong when it is not.
fn check_tarball(path: &Path) -> Result<()> {
    let what = "Error processing tar file";
    let reader = open_tar(path, what).map_err(|e| match e {
        EngineError::InvalidParameter(m) => EngineError::Internal(m),
        other => other,
    })?;
    let mut archive = tar::Archive::new(reader);
    let invalid = |e: std::io::Error| {
        EngineError::Internal(format!("{what}: the input is not a tar archive (plain or gzip-compressed): {}", tar_error(&e)))
    };
    let mut count = 0usize;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        entry.path().map_err(invalid)?;
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(invalid)?;
        count += 1;
    }
    if count == 0 {
        return Err(EngineError::Internal(format!("{what}: the archive has no entries")));
    }
    Ok(())
}

/// One image of a `docker save` archive, with its files unpacked.
#[derive(Debug)]
struct ArchiveImage {
    config_path: String,
    config: Vec<u8>,
    repo_tags: Vec<String>,
    layers: Vec<PathBuf>,
}

#[derive(serde::Deserialize)]
struct ArchiveManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Lexically normalises an archive path; `None` if it leaves the archive.
fn clean_archive_path(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Unpacks a `docker save` archive under `work` (regular files only; links
/// are kept as a table and followed inside the archive) and reads its
/// `manifest.json`.
fn read_save_archive(archive: &Path, work: &Path) -> Result<Vec<ArchiveImage>> {
    let what = "loading the archive";
    let bad = |m: String| EngineError::InvalidParameter(m);
    let reader = open_tar(archive, what)?;
    let mut tar = tar::Archive::new(reader);
    let invalid = |e: std::io::Error| EngineError::InvalidParameter(format!("{what}: the input is not a tar archive: {}", tar_error(&e)));
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    for (i, entry) in tar.entries().map_err(invalid)?.enumerate() {
        let mut entry = entry.map_err(invalid)?;
        let raw = entry.path().map_err(invalid)?.to_string_lossy().into_owned();
        let Some(name) = clean_archive_path(&raw).filter(|n| !n.is_empty()) else { continue };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Flat names on disk: no directories, nothing to escape.
                let dest = work.join(format!("f{i}"));
                let mut f = std::fs::File::create(&dest).map_err(|e| EngineError::Internal(format!("{what}: {e}")))?;
                std::io::copy(&mut entry, &mut f).map_err(invalid)?;
                files.insert(name, dest);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name().map_err(invalid)?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink && !target.starts_with('/') {
                    let parent = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    clean_archive_path(&format!("{parent}/{target}"))
                } else {
                    clean_archive_path(&target)
                };
                if let Some(r) = resolved {
                    links.insert(name, r);
                }
            }
            _ => {}
        }
    }
    let lookup = |p: &str| -> Result<PathBuf> {
        let mut cur = clean_archive_path(p).ok_or_else(|| bad(format!("{what}: path {p:?} leaves the archive")))?;
        for _ in 0..16 {
            if let Some(f) = files.get(&cur) {
                return Ok(f.clone());
            }
            match links.get(&cur) {
                Some(next) => cur = next.clone(),
                None => break,
            }
        }
        Err(bad(format!("{what}: the archive lists {p:?} but does not contain it")))
    };
    let manifest_path = match files.get("manifest.json") {
        Some(p) => p.clone(),
        None if files.contains_key("index.json") => {
            return Err(bad(format!(
                "{what}: this is an OCI image layout without manifest.json, which berth cannot load yet; use an archive written by `docker save`"
            )))
        }
        None => return Err(bad(format!("{what}: manifest.json not found; is this an archive written by `docker save`?"))),
    };
    let raw = std::fs::read(&manifest_path).map_err(|e| EngineError::Internal(format!("{what}: {e}")))?;
    let entries: Vec<ArchiveManifestEntry> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("{what}: manifest.json is not valid: {e}")))?;
    if entries.is_empty() {
        return Err(bad(format!("{what}: manifest.json lists no image")));
    }
    let mut out = Vec::new();
    for e in entries {
        let config_file = lookup(&e.config)?;
        let meta = std::fs::metadata(&config_file).map_err(|x| EngineError::Internal(format!("{what}: {x}")))?;
        if meta.len() > 16 * 1024 * 1024 {
            return Err(bad(format!("{what}: config {} is too large", e.config)));
        }
        let config = std::fs::read(&config_file).map_err(|x| EngineError::Internal(format!("{what}: {x}")))?;
        ImageConfigFile::parse(&config).map_err(|x| bad(format!("{what}: config {} is not an image config: {x}", e.config)))?;
        let layers = e.layers.iter().map(|l| lookup(l)).collect::<Result<Vec<_>>>()?;
        out.push(ArchiveImage { config_path: e.config, config, repo_tags: e.repo_tags.unwrap_or_default(), layers });
    }
    Ok(out)
}

fn tar_header(path: &str, size: u64, mode: u32, kind: tar::EntryType, mtime: u64) -> Result<[u8; 512]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| EngineError::Internal(format!("tar path {path}: {e}")))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

async fn pad<W: AsyncWrite + Unpin>(out: &mut W, size: u64) -> std::io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem]).await?;
    }
    Ok(())
}

async fn tar_file<W: AsyncWrite + Unpin>(out: &mut W, path: &str, data: &[u8], mtime: u64) -> std::io::Result<()> {
    let h = tar_header(path, data.len() as u64, 0o644, tar::EntryType::Regular, mtime).map_err(std::io::Error::other)?;
    out.write_all(&h).await?;
    out.write_all(data).await?;
    pad(out, data.len() as u64).await
}

async fn tar_dir<W: AsyncWrite + Unpin>(out: &mut W, path: &str, mtime: u64) -> std::io::Result<()> {
    let h = tar_header(path, 0, 0o755, tar::EntryType::Directory, mtime).map_err(std::io::Error::other)?;
    out.write_all(&h).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[&str]) -> Result<ImageConfig> {
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &list.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(cfg)
    }

    #[test]
    fn changes_like_dockerfile_instructions() {
        let c = changes(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run --flag",
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "env LEGACY some value",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "LABEL a=b \"c d\"=e",
            "EXPOSE 80 53/udp",
            r#"VOLUME ["/data"]"#,
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".into(), "-c".into(), "echo hi".into()]));
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".into(), "-c".into(), "/bin/run --flag".into()]));
        assert_eq!(c.env, Some(vec!["B=two words".into(), "A=3".into(), "LEGACY=some value".into()]));
        assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let labels = c.labels.unwrap();
        assert_eq!((labels["a"].as_str(), labels["c d"].as_str()), ("b", "e"));
        assert_eq!(c.exposed_ports.unwrap().keys().cloned().collect::<Vec<_>>(), vec!["53/udp".to_string(), "80/tcp".to_string()]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        // Shell form of CMD.
        assert_eq!(changes(&["CMD echo $HOME"]).unwrap().cmd, Some(vec!["/bin/sh".into(), "-c".into(), "echo $HOME".into()]));
    }

    #[test]
    fn bad_changes_are_400s() {
        for bad in ["RUN echo hi", "FROM scratch", "ENV", "EXPOSE eighty", "LABEL \"unterminated=1", "USER"] {
            let e = changes(&[bad]).unwrap_err();
            assert!(matches!(e, EngineError::InvalidParameter(_)), "{bad}: {e:?}");
        }
        assert!(changes(&["RUN x"]).unwrap_err().to_string().starts_with("RUN is not a valid change command"));
    }

    fn make_tar(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, *data).unwrap();
        }
        for (p, target) in links {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, p, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn import_checks_the_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, make_tar(&[("bin/sh", b"x")], &[])).unwrap();
        check_tarball(&p).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &make_tar(&[("a", b"x")], &[])).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        check_tarball(&p).unwrap();
        for (data, want) in [
            (&b"hello\n"[..], "ends inside a 512-byte header block"),
            (&[7u8; 2048][..], "invalid tar header"),
            (&b""[..], "the input is empty"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..], "xz-compressed"),
        ] {
            std::fs::write(&p, data).unwrap();
            let e = check_tarball(&p).unwrap_err().to_string();
            assert!(e.starts_with("Error processing tar file") && e.contains(want), "{e}");
            assert!(!e.contains('\u{fffd}'), "{e}");
        }
    }

    #[test]
    fn reads_docker_save_archives_with_links() {
        let dir = tempfile::tempdir().unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let manifest = br#"[{"Config":"blobs/sha256/cc","RepoTags":["bb:latest","me/x:1"],"Layers":["abc/layer.tar"]}]"#;
        let tar = make_tar(
            &[("manifest.json", manifest), ("blobs/sha256/cc", config), ("blobs/sha256/ll", b"layer bytes")],
            &[("abc/layer.tar", "../blobs/sha256/ll")],
        );
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, tar).unwrap();
        let work = dir.path().join("w");
        std::fs::create_dir(&work).unwrap();
        let images = read_save_archive(&archive, &work).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].config, config.to_vec());
        assert_eq!(images[0].repo_tags, vec!["bb:latest".to_string(), "me/x:1".to_string()]);
        assert_eq!(std::fs::read(&images[0].layers[0]).unwrap(), b"layer bytes");

        // Paths that leave the archive, missing files, no manifest.
        for (entries, links, want) in [
            (vec![("manifest.json", &br#"[{"Config":"../../etc/passwd","Layers":[]}]"#[..])], vec![], "leaves the archive"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![], "does not contain it"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![("c.json", "/etc/passwd")], "does not contain it"),
            (vec![("index.json", &b"{}"[..])], vec![], "OCI image layout"),
            (vec![("x", &b"{}"[..])], vec![], "manifest.json not found"),
        ] {
            std::fs::write(&archive, make_tar(&entries, &links)).unwrap();
            let work = tempfile::tempdir().unwrap();
            let e = read_save_archive(&archive, work.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[tokio::test]
    async fn written_tar_entries_read_back() {
        let mut out = Vec::new();
        tar_dir(&mut out, "abc/", 5).await.unwrap();
        tar_file(&mut out, "abc/VERSION", b"1.0", 5).await.unwrap();
        tar_file(&mut out, "manifest.json", &[b'x'; 700], 0).await.unwrap();
        out.extend_from_slice(&[0u8; 1024]);
        let mut a = tar::Archive::new(&out[..]);
        let got: Vec<(String, u64)> =
            a.entries().unwrap().map(|e| e.unwrap()).map(|e| (e.path().unwrap().display().to_string(), e.size())).collect();
        assert_eq!(got, vec![("abc/".to_string(), 0), ("abc/VERSION".to_string(), 3), ("manifest.json".to_string(), 700)]);
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(clean_archive_path("./a/../b/c").as_deref(), Some("b/c"));
        assert_eq!(clean_archive_path("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean_archive_path("../x"), None);
    }
}
