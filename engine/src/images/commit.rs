//! `docker commit`: a new image, the container's image plus one layer
//! holding the container's changes.
//!
//! The layer is made by containerd's diff service
//! ([`berth_containerd::snapshots::diff_layer`]): it compares a read-only
//! view of the image's top snapshot with the container's snapshot and
//! writes the uncompressed tar straight into the content store. Every
//! object of a commit (the view, the layer, config and manifest until the
//! image record references them) lives under one lease with an expiry,
//! whose prefix [`COMMIT_LEASE_PREFIX`] the engine's start deletes, so a
//! daemon killed in the middle leaves nothing behind.

use std::collections::HashMap;
use std::time::Duration;

use berth_containerd::content::{write_blob, BlobSource};
use berth_containerd::oci::{Descriptor, ImageConfig, MEDIA_TYPE_LAYER_TAR};
use berth_containerd::Mount;
use berth_store::ContainerConfig;

use super::change::apply_changes;
use super::{familiar, ImageService};
use crate::error::{EngineError, Result};

/// Leases of commits; those left by a killed daemon go at start.
pub const COMMIT_LEASE_PREFIX: &str = "berth-commit";
const COMMIT_LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// The empty layer: a tar with only its end-of-archive blocks, as Go's
/// `archive/tar` writes it.
const EMPTY_TAR: [u8; 1024] = [0; 1024];

/// What a commit takes from the container and the client.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The container's id (recorded in the config, as dockerd does).
    pub container_id: String,
    /// The id of the container's image (the parent).
    pub image_id: String,
    /// The container's config (its runnable settings become the image's).
    pub config: ContainerConfig,
    /// The container's snapshot mounts; `None` for a container that never
    /// ran (its filesystem is the image's: the layer is empty).
    pub mounts: Option<Vec<Mount>>,
    /// `repo[:tag]`, if any.
    pub reference: Option<String>,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
}

/// The image config of a commit: the parent's, with the container's
/// runnable settings over it (as dockerd's commit merges them), then the
/// `--change` lines.
pub fn commit_config(parent: &ImageConfig, c: &ContainerConfig, changes: &[String]) -> Result<ImageConfig> {
    let mut cfg = parent.clone();
    cfg.cmd = c.cmd.clone();
    cfg.entrypoint = c.entrypoint.clone();
    cfg.env = if c.env.is_empty() { None } else { Some(c.env.clone()) };
    cfg.working_dir = if c.working_dir.is_empty() { None } else { Some(c.working_dir.clone()) };
    cfg.user = if c.user.is_empty() { None } else { Some(c.user.clone()) };
    // The image's labels, then the container's (berth keeps only the
    // container's own in its config).
    let mut labels = parent.labels.clone().unwrap_or_default();
    labels.extend(c.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    cfg.labels = if labels.is_empty() { None } else { Some(labels) };
    if c.stop_signal.is_some() {
        cfg.stop_signal = c.stop_signal.clone();
    }
    // The container's check (already merged with the parent's at create).
    if let Some(h) = &c.healthcheck {
        cfg.healthcheck = Some(berth_containerd::oci::ImageHealthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            retries: h.retries,
        });
    }
    apply_changes(&mut cfg, changes)?;
    Ok(cfg)
}

impl ImageService {
    /// Commits a container's changes as a new image; returns its id. The
    /// caller keeps the container from starting, stopping or being removed
    /// meanwhile (and pauses it when asked).
    pub async fn commit(&self, req: CommitRequest) -> Result<String> {
        let names = self.target_names(req.reference.as_deref())?;
        let parent = self.resolve(&req.image_id).await?;
        let cfg = commit_config(&parent.info.config, &req.config, &req.changes)?;
        let client = self.store.client().clone();
        let lease = client.create_lease(COMMIT_LEASE_PREFIX, COMMIT_LEASE_EXPIRY).await?;
        let result = async {
            let layer = match req.mounts.clone() {
                Some(mounts) => {
                    berth_containerd::snapshots::diff_layer(&client, &lease, self.store.snapshotter(), parent.chain_id.as_deref(), mounts).await?
                }
                None => {
                    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(EMPTY_TAR)));
                    write_blob(&client, &lease, BlobSource::Bytes(EMPTY_TAR.to_vec()), &digest, EMPTY_TAR.len() as i64, HashMap::new()).await?;
                    Descriptor { media_type: MEDIA_TYPE_LAYER_TAR.into(), digest, size: EMPTY_TAR.len() as i64, platform: None }
                }
            };
            let now = berth_store::timefmt::now_rfc3339_nano();
            let mut file = parent.info.config_file.clone();
            file.rootfs.diff_ids.push(layer.digest.clone());
            file.created = Some(now.clone());
            file.author = req.author.clone().filter(|a| !a.is_empty());
            file.config = Some(cfg);
            let comment = req.comment.clone().unwrap_or_default();
            file.extra.insert("parent".into(), serde_json::Value::String(parent.id.clone()));
            file.extra.insert("container".into(), serde_json::Value::String(req.container_id.clone()));
            file.extra.remove("comment");
            if !comment.is_empty() {
                file.extra.insert("comment".into(), serde_json::Value::String(comment.clone()));
            }
            let mut entry = serde_json::json!({ "created": now, "created_by": req.config.cmd.clone().unwrap_or_default().join(" ") });
            if let Some(a) = &file.author {
                entry["author"] = serde_json::Value::String(a.clone());
            }
            if !comment.is_empty() {
                entry["comment"] = serde_json::Value::String(comment);
            }
            file.history.get_or_insert_with(Vec::new).push(entry);
            let raw = serde_json::to_vec(&file).map_err(|e| EngineError::Internal(format!("encoding image config: {e}")))?;
            let mut layers = parent.info.manifest.layers.clone();
            layers.push(layer);
            for n in &names {
                self.keep_displaced(n).await?;
            }
            let stored = self.store.store_image(&lease, raw, layers, &file.rootfs.diff_ids, &names, HashMap::new()).await?;
            Ok::<_, EngineError>(stored)
        }
        .await;
        if let Err(e) = lease.delete().await {
            tracing::warn!(error = %e, "deleting the commit lease failed; it will expire");
        }
        let stored = result?;
        tracing::info!(container = %req.container_id, image = %stored.config_digest, names = ?stored.names, "container committed");
        self.publish("commit", &stored.config_digest, names.first().map(|n| familiar(n)));
        Ok(stored.config_digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_settings_win_then_the_changes() {
        let parent = ImageConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            labels: Some([("from".to_string(), "image".to_string()), ("both".to_string(), "image".to_string())].into()),
            ..Default::default()
        };
        let c = ContainerConfig {
            cmd: Some(vec!["touch".into(), "/test".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            labels: [("both".to_string(), "container".to_string())].into(),
            ..Default::default()
        };
        let cfg = commit_config(&parent, &c, &["EXPOSE 8000".into(), "CMD [\"bash\"]".into()]).unwrap();
        assert_eq!(cfg.cmd, Some(vec!["bash".to_string()]));
        assert_eq!(cfg.env, Some(vec!["PATH=/bin".to_string(), "A=1".to_string()]));
        let ports: Vec<&String> = cfg.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["80/tcp", "8000/tcp"]);
        let labels: Vec<(&str, &str)> = cfg.labels.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("both", "container"), ("from", "image")]);
        assert!(commit_config(&parent, &c, &["RUN true".into()]).is_err(), "what --change cannot do is refused");
    }
}
