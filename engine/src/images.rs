//! Images: resolve a reference for a container, import a rootfs tarball
//! (`docker import`), list, inspect, tag, remove. Images live in
//! containerd's content store and snapshotter; names are normalised like
//! Docker's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use berth_containerd::{ConfigSource, ImageConfig, ImageInfo, ImageStore, ImportRequest};

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

    /// Imports a rootfs tarball as a one-layer image (`docker import`).
    pub async fn import(&self, layer: PathBuf, name: Option<&str>, config: ImageConfig) -> Result<String> {
        let names = match name {
            Some(n) => vec![reference::parse(n).map_err(|e| EngineError::InvalidParameter(e.to_string()))?.full()],
            None => vec![],
        };
        let imported = self
            .store
            .import(ImportRequest { names: names.clone(), layers: vec![layer], config: ConfigSource::Build(config), labels: HashMap::new() })
            .await?;
        let id = imported.config_digest.clone();
        let mut attrs = BTreeMap::new();
        if let Some(n) = names.first() {
            attrs.insert("name".to_string(), familiar(n));
        }
        self.events.publish(Event::new("image", "import", &id, attrs));
        Ok(id)
    }

    /// Tags an image with a new name.
    pub async fn tag(&self, source: &str, target: &str) -> Result<()> {
        let img = self.resolve(source).await?;
        let t = reference::parse(target).map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        self.store.tag(&img.name, &t.full()).await?;
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), t.familiar());
        self.events.publish(Event::new("image", "tag", &img.id, attrs));
        Ok(())
    }

    /// Removes a name (or, given an id, every name of that image).
    /// `in_use` says whether a container uses the image id; without `force`
    /// that is a conflict. Returns the deleted names.
    pub async fn remove(&self, given: &str, force: bool, in_use: impl Fn(&str) -> Option<String>) -> Result<Vec<String>> {
        let img = self.resolve(given).await?;
        let by_name = reference::parse(given).ok().map(|r| r.full()).filter(|f| *f == img.name);
        if !force {
            if let Some(cid) = in_use(&img.id) {
                let shown = by_name.as_deref().map(familiar).unwrap_or_else(|| given.to_string());
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{shown}\" (must force) - container {} is using its referenced image {}",
                    &cid[..12.min(cid.len())],
                    short(&img.id)
                )));
            }
        }
        let names: Vec<String> = match by_name {
            Some(n) => vec![n],
            None => self.list().await?.into_iter().filter(|s| s.id == img.id).flat_map(|s| s.names).collect(),
        };
        let mut deleted = Vec::new();
        for n in &names {
            self.store.delete(n).await?;
            deleted.push(familiar(n));
            let mut attrs = BTreeMap::new();
            attrs.insert("name".to_string(), familiar(n));
            self.events.publish(Event::new("image", "untag", &img.id, attrs));
        }
        if names.is_empty() {
            // Untagged image known only by id.
            let _ = self.store.delete(&img.name).await;
        }
        let still_named = self.list().await?.iter().any(|s| s.id == img.id);
        if !still_named {
            self.events.publish(Event::new("image", "delete", &img.id, BTreeMap::new()));
        }
        Ok(deleted)
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
