//! A container's filesystem as a whole: its changes (`docker diff`), a new
//! image from them (`docker commit`), and its size (`SizeRw`,
//! `SizeRootFs`, what a prune reclaims).
//!
//! The container's filesystem is its containerd snapshot, which exists
//! from its first start (or the first `docker cp` into it) until `rm`; a
//! container without one has no changes and no size of its own.

use std::path::{Path, PathBuf};

use berth_containerd::snapshotter::OVERLAYFS;
use berth_containerd::Mount;

use super::ContainerService;
use crate::changes::{overlay_changes, Change, ChangesError};
use crate::error::{EngineError, Result};
use crate::images::CommitRequest;

/// What `docker commit` asks besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]`, if any.
    pub reference: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Pause a running container during the commit (dockerd's default).
    pub pause: bool,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
}

/// A container's disk usage: its own changes, and with its image's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    pub rw: i64,
    pub root_fs: i64,
}

impl From<ChangesError> for EngineError {
    fn from(e: ChangesError) -> Self {
        EngineError::Internal(e.to_string())
    }
}

/// The upper directory and the lower ones (top first) of a container's
/// overlay snapshot.
fn overlay_layers(mounts: &[Mount], snapshotter: &str) -> Result<(PathBuf, Vec<PathBuf>)> {
    let opt = |m: &Mount, k: &str| m.options.iter().find_map(|o| o.strip_prefix(k).map(str::to_string));
    match mounts {
        [m] if m.r#type == "overlay" => {
            let upper = opt(m, "upperdir=").ok_or_else(|| EngineError::Internal("the container's overlay mount has no upper directory".into()))?;
            let lowers = opt(m, "lowerdir=").unwrap_or_default().split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect();
            Ok((PathBuf::from(upper), lowers))
        }
        // An overlay snapshot without parent (an image without layers) is
        // a plain directory: everything in it was added.
        [m] if snapshotter == OVERLAYFS && (m.r#type == "bind" || m.options.iter().any(|o| o == "rbind" || o == "bind")) => {
            Ok((PathBuf::from(&m.source), Vec::new()))
        }
        _ => Err(EngineError::NotImplemented(format!(
            "docker diff needs containerd's overlayfs snapshotter; this daemon's containerd uses {snapshotter}"
        ))),
    }
}

impl ContainerService {
    /// The mounts of a container's snapshot; `None` when it has none yet
    /// (it never ran, and nothing was copied into it).
    pub(crate) async fn snapshot_mounts(&self, id: &str) -> Result<Option<Vec<Mount>>> {
        match self.ctd.containers.rootfs_mounts(id).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_not_found() => Ok(self.ctd.containers.prestart_mounts(id, self.ctd.images.snapshotter()).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// `docker diff`: the changes of the container's filesystem against
    /// its image, running or stopped.
    pub async fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let rec = self.get(key)?;
        let Some(mounts) = self.snapshot_mounts(&rec.id).await? else { return Ok(Vec::new()) };
        let (upper, lowers) = overlay_layers(&mounts, self.ctd.images.snapshotter())?;
        tokio::task::spawn_blocking(move || {
            let lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
            overlay_changes(&upper, &lowers)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("diff task failed: {e}")))?
        .map_err(EngineError::from)
    }

    /// `docker commit`: a new image from the container's filesystem and
    /// settings; returns its id. The container's lock is held throughout
    /// (it cannot start, stop or go meanwhile); a running container is
    /// paused during the commit when `opts.pause`, and resumed whatever
    /// happens.
    pub async fn commit(&self, key: &str, opts: CommitOptions) -> Result<String> {
        let id = self.get(key)?.id.clone();
        let _lock = self.store.lock(&id).await;
        let rec = self.get(&id)?;
        let mut pause = opts.pause && rec.state.running && !rec.state.paused;
        if pause {
            // No health probe while paused (as `docker pause`).
            let hub = self.hub(&id);
            hub.health.stop();
            hub.health.idle(crate::health::probe_deadline(rec.config.healthcheck.as_ref())).await;
            if let Err(e) = self.ctd.tasks.pause(&id).await {
                // The container may have exited since (its exit is not
                // recorded yet): a stopped container needs no pause.
                let running = matches!(self.ctd.tasks.get(&id, "").await, Ok(t) if t.status == berth_containerd::TaskStatus::Running);
                if running {
                    self.start_health(&rec, false);
                    return Err(e.into());
                }
                pause = false;
            }
        }
        let result = async {
            let mounts = self.snapshot_mounts(&id).await?;
            let req = CommitRequest {
                container_id: id.clone(),
                image_id: rec.image_id.clone(),
                config: rec.config.clone(),
                mounts,
                reference: opts.reference.clone(),
                changes: opts.changes.clone(),
                comment: opts.comment.clone(),
                author: opts.author.clone(),
            };
            self.images.commit(req).await
        }
        .await;
        if pause {
            let resumed = self.ctd.tasks.resume(&id).await;
            self.start_health(&rec, false);
            if let Err(e) = resumed {
                tracing::warn!(container = %id, error = %e, "resuming the container after its commit failed");
                if result.is_ok() {
                    return Err(e.into());
                }
            }
        }
        let image = result?;
        self.event("commit", &rec, &[]);
        Ok(image)
    }

    /// The container's disk usage from containerd's snapshot usage; zero
    /// for a container that never ran.
    pub async fn size(&self, id: &str) -> Result<ContainerSize> {
        let info = match self.ctd.containers.get(id).await {
            Ok(i) => i,
            Err(e) if e.is_not_found() => return Ok(ContainerSize::default()),
            Err(e) => return Err(e.into()),
        };
        if info.snapshot_key.is_empty() {
            return Ok(ContainerSize::default());
        }
        let (rw, root_fs) = berth_containerd::snapshots::usage_with_parents(&self.ctd.client, &info.snapshotter, &info.snapshot_key).await?;
        Ok(ContainerSize { rw, root_fs })
    }
}
