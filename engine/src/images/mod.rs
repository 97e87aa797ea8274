//! Images: resolve a reference for a container, import a rootfs tarball
//! (`docker import`, with `--change` instructions), list, inspect, tag,
//! remove, prune, and `docker save`/`docker load` archives. Images live in
//! containerd's content store and snapshotter; names are normalised like
//! Docker's.
//!
//! This file is the service core (resolve, list, details, tag, names);
//! each operation with its own input or output format has its module:
//! `import` (`docker import`), `change` (`--change` lines), `commit`
//! (`docker commit`), `load`
//! (`docker load`), `save` (`docker save`), `remove` (`rmi`, prune),
//! and `archive` reads the tar archives clients send.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_containerd::{ImageConfig, ImageInfo, ImageStore};

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus};
use crate::reference::{self, Reference};
use crate::spec::ImageDefaults;
use archive::{SaveArchiveLimits, TarLimits};
use scratch::{Scratch, ScratchKind};

pub mod archive;
pub mod change;
pub mod commit;
mod import;
mod load;
mod remove;
mod save;
pub mod scratch;

pub use change::apply_changes;
pub use commit::CommitRequest;
pub use import::ImportOptions;
pub use load::LoadedImage;
pub use remove::Removed;
pub use save::{SaveImage, SaveLayer, SavePlan};

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
    scratch: Scratch,
    /// Bounds on a `docker import` tarball.
    import_limits: TarLimits,
    /// Bounds on a `docker load` archive (and, through its `tar`, on its
    /// layers).
    load_limits: SaveArchiveLimits,
}

/// Runnable defaults of an image config.
pub fn defaults(cfg: &ImageConfig) -> ImageDefaults {
    ImageDefaults {
        env: cfg.env.clone().unwrap_or_default(),
        cmd: cfg.cmd.clone(),
        entrypoint: cfg.entrypoint.clone(),
        working_dir: cfg.working_dir.clone().unwrap_or_default(),
        user: cfg.user.clone().unwrap_or_default(),
        exposed_ports: cfg.exposed_ports.as_ref().map(|p| p.keys().cloned().collect()).unwrap_or_default(),
        healthcheck: cfg.healthcheck.as_ref().map(|h| berth_store::Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            retries: h.retries,
        }),
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ImageService {
    /// A service over `store`; uploads get scratch directories from
    /// `scratch` (see [`scratch::Scratch::clean`] for start-up).
    pub fn new(store: ImageStore, events: Arc<EventBus>, scratch: Scratch) -> Self {
        ImageService { store, events, scratch, import_limits: TarLimits::DEFAULT, load_limits: SaveArchiveLimits::DEFAULT }
    }

    /// A scratch directory for one upload, removed when dropped.
    pub fn scratch(&self, kind: ScratchKind) -> Result<tempfile::TempDir> {
        self.scratch.create(kind).map_err(|e| EngineError::Internal(format!("creating a scratch directory in {}: {e}", self.scratch.base().display())))
    }

    /// The most bytes an upload (`docker import`, `docker load`) may have:
    /// its decompressed stream is bounded by this, so a larger upload
    /// cannot be acceptable.
    pub fn upload_limit(&self) -> u64 {
        self.import_limits.total.max(self.load_limits.tar.total)
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

/// An image with all its names (`docker image inspect`).
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub image: ResolvedImage,
    /// Full names, sorted.
    pub names: Vec<String>,
    /// When a name was last set.
    pub last_tag_time: Option<std::time::SystemTime>,
}

/// The record name that keeps an untagged image: `sha256:<hex>`.
fn anonymous_name(id: &str) -> String {
    format!("sha256:{}", id.trim_start_matches("sha256:"))
}

