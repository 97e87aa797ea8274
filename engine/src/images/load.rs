//! `docker load`: a `docker save` archive into the image store.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_containerd::{ConfigSource, ImportRequest};

use super::archive::read_save_archive;
use super::{familiar, ImageService};
use crate::error::{EngineError, Result};
use crate::reference;

impl ImageService {
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
}

/// One image of a `docker load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar names.
    pub tags: Vec<String>,
}
