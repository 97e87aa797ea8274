//! `docker import`: a rootfs tarball as a one-layer image.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_containerd::oci::ImageConfigFile;
use berth_containerd::{ConfigSource, ImageConfig, ImportRequest};

use super::archive::{check_tarball, ArchiveError};
use super::change::apply_changes;
use super::{familiar, ImageService};
use crate::error::{EngineError, Result};

impl ImageService {
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
        let limits = self.import_limits;
        // One pass: the tar is checked and its diffID computed.
        let diff_id = tokio::task::spawn_blocking(move || check_tarball(&path, &limits, true).map(|s| s.digest.unwrap_or_default()))
            .await
            .map_err(|e| EngineError::Internal(format!("import task: {e}")))?
            .map_err(import_error)?;

        let now = berth_store::timefmt::now_rfc3339_nano();
        let mut file = ImageConfigFile::build(&cfg, vec![diff_id]);
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
}

/// A tarball `docker import` cannot take. Over a limit: 400; not a tar:
/// 500, with dockerd's "Error processing tar file" (the CLI shows it).
fn import_error(e: ArchiveError) -> EngineError {
    match e {
        ArchiveError::Limit { .. } => EngineError::InvalidParameter(format!(
            "docker import refused the archive: {e}; nothing was stored (berth's limits on archives are in its README)"
        )),
        ArchiveError::NotTar(m) => {
            EngineError::Internal(format!("Error processing tar file: the input is not a tar archive (plain or gzip-compressed): {m}"))
        }
        ArchiveError::Invalid(m) | ArchiveError::Io(m) => EngineError::Internal(format!("Error processing tar file: {m}")),
    }
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

