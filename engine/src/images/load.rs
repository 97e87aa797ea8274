//! `docker load`: a `docker save` archive into the image store.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_containerd::{ConfigSource, ImportRequest};

use super::archive::{check_layers, read_save_archive, ArchiveError};
use super::{familiar, ImageService};
use crate::error::{EngineError, Result};
use crate::reference;

impl ImageService {
    /// `docker load`: reads a `docker save` archive (`manifest.json` form,
    /// plain or gzip) from `archive`, unpacking it under `work` (an empty
    /// scratch directory the caller removes), and imports every image with
    /// its config byte for byte (so ids are preserved) and its tags.
    ///
    /// The whole archive is checked before anything is stored: its tar
    /// structure and sizes (see [`super::archive::SaveArchiveLimits`]), every layer's
    /// (walked, their decompressed sizes sharing one budget), each config
    /// against its layers' diffIDs, and every tag.
    pub async fn load(&self, archive: PathBuf, work: PathBuf) -> Result<Vec<LoadedImage>> {
        let limits = self.load_limits;
        let entries = tokio::task::spawn_blocking(move || {
            let images = read_save_archive(&archive, &work, &limits).map_err(|e| load_error(None, e))?;
            check_layers(&images, &limits.tar).map_err(|e| load_error(Some(&e.layer), e.error))?;
            Ok::<_, EngineError>(images)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("load task: {e}")))??;
        let mut planned = Vec::new();
        for entry in entries {
            let mut names = Vec::new();
            for tag in &entry.repo_tags {
                let r = reference::parse(tag).map_err(|e| EngineError::InvalidParameter(format!("invalid tag {tag:?} in manifest.json: {e}")))?;
                names.push(r.full());
            }
            planned.push((entry, names));
        }
        let mut loaded = Vec::new();
        for (entry, names) in planned {
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

/// An archive `docker load` cannot take (400), or berth's own failure
/// (500). `layer` names the layer (or config) the error is about.
fn load_error(layer: Option<&str>, e: ArchiveError) -> EngineError {
    let about = layer.map(|l| format!("{l}: ")).unwrap_or_default();
    match e {
        ArchiveError::Limit { .. } => EngineError::InvalidParameter(format!(
            "loading the archive: refused: {about}{e}; nothing was stored (berth's limits on archives are in its README)"
        )),
        ArchiveError::NotTar(m) => EngineError::InvalidParameter(format!("loading the archive: {about}the input is not a tar archive: {m}")),
        ArchiveError::Invalid(m) => EngineError::InvalidParameter(format!("loading the archive: {about}{m}")),
        ArchiveError::Io(m) => EngineError::Internal(format!("loading the archive: {m}")),
    }
}

/// One image of a `docker load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    /// Familiar names.
    pub tags: Vec<String>,
}
