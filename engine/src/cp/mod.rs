//! `docker cp`: the stat of a path in a container (`HEAD .../archive`), a
//! tar of it (`GET`), and a client's tar extracted into a directory
//! (`PUT`), for running and stopped containers.
//!
//! Where the files are read or written, the container's root:
//! - running: `/proc/<pid>/root` of its init process (what the container
//!   sees, its mounts included), checked against containerd after it is
//!   opened so that a pid reused by another process is never taken; for a
//!   sandboxed runtime (gVisor), whose processes do not live in that
//!   filesystem, the root filesystem the shim mounted for it;
//! - stopped: its snapshot mounted on a scratch directory ([`mount`]),
//!   with the container's lock held until the operation ends (it cannot
//!   start meanwhile);
//! - never started: a read-only view of its image, under a lease, to read;
//!   to write, its snapshot prepared now (held by a lease of its own until
//!   its first start takes it over, or `rm` removes it).
//!
//! Every path is resolved inside that root ([`resolve`]); the tar out is
//! written by a confined walk ([`tar_out`]) and the tar in goes through
//! the capped walker ([`extract`]). The file work runs on blocking threads.

pub mod extract;
pub mod mount;
pub mod resolve;
pub mod tar_out;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use berth_containerd::Lease;
use berth_store::ContainerLock;
use rustix::fs::{FileType, Mode, OFlags};
use tokio::sync::mpsc;

use crate::containers::ContainerService;
use crate::error::{EngineError, Result};
use crate::images::archive::TarLimits;
use crate::images::scratch::ScratchKind;
use extract::ExtractOptions;
use mount::TempMount;
pub use resolve::PathStat;

/// Leases of the image views `docker cp` reads never-started containers
/// through; those left by a killed daemon go at start.
pub const CP_LEASE_PREFIX: &str = "berth-cp";

/// Why a copy failed (paths are the container's).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no such file: {path}")]
    NotFound { path: String },
    #[error("{0}")]
    Invalid(String),
    #[error("docker cp needs the openat2 system call (Linux 5.6 or later) to resolve paths inside the container")]
    NoOpenat2,
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// What `PUT .../archive` asks.
#[derive(Debug, Clone, Default)]
pub struct ExtractRequest {
    /// The destination directory in the container.
    pub path: String,
    /// The client's tar, already on disk (a scratch file).
    pub archive: PathBuf,
    pub no_overwrite_dir_non_dir: bool,
    /// Chown every entry to the container's user (`docker cp -a`).
    pub copy_uid_gid: bool,
}

/// A container's root opened for one copy, and what keeps it valid.
/// Fields drop in order: the mount goes before the lock and the lease.
struct CpRoot {
    fd: OwnedFd,
    _mount: Option<TempMount>,
    _lock: Option<ContainerLock>,
    _lease: Option<Lease>,
    /// The running container's pid, or its snapshot mounts.
    pid: Option<u32>,
    mounts: Option<Vec<berth_containerd::Mount>>,
}

fn open_root(p: &std::path::Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// Where the shim mounted a running container's root filesystem
/// (`…/io.containerd.runtime.v2.task/<ns>/<id>/rootfs`), from this
/// process's mount table.
fn bundle_rootfs(ns: &str, id: &str) -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let suffix = format!("/io.containerd.runtime.v2.task/{ns}/{id}/rootfs");
    table.lines().filter_map(|l| l.split(' ').nth(4)).find(|m| m.ends_with(&suffix)).map(|m| PathBuf::from(m.replace("\\040", " ")))
}

/// The root of a running container: its init's `/proc/<pid>/root` (the
/// container's own view, its mounts included), unless that is not the
/// root filesystem the shim mounted for it: a sandboxed runtime (gVisor)
/// runs its processes elsewhere, and then the shim's rootfs mount is the
/// container's filesystem.
/// Also says whether it is such a sandbox.
fn running_root(pid: u32, ns: &str, id: &str) -> std::io::Result<(OwnedFd, bool)> {
    let proc_root = open_root(std::path::Path::new(&format!("/proc/{pid}/root")))?;
    let Some(bundle) = bundle_rootfs(ns, id) else { return Ok((proc_root, false)) };
    let (a, b) = (rustix::fs::fstat(&proc_root)?, rustix::fs::stat(&bundle)?);
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
        Ok((proc_root, false))
    } else {
        Ok((open_root(&bundle)?, true))
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

/// Sends what a blocking writer writes to the response, in chunks; a
/// client that goes away ends the walk (the write fails).
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl ContainerService {
    /// Maps a copy error, naming the path and the container as given.
    fn copy_error(e: CopyError, path: &str, container: &str) -> EngineError {
        match e {
            CopyError::NotFound { .. } => EngineError::NotFound(format!("Could not find the file {path} in container {container}")),
            CopyError::Invalid(m) => EngineError::InvalidParameter(m),
            e @ CopyError::NoOpenat2 => EngineError::NotImplemented(e.to_string()),
            e @ CopyError::Io { .. } => EngineError::Internal(e.to_string()),
        }
    }

    /// Opens the root of the container `key` for a copy (read-only for
    /// reads).
    async fn cp_root(&self, key: &str, write: bool) -> Result<CpRoot> {
        let id = self.get(key)?.id.clone();
        for _ in 0..3 {
            let lock = self.store.lock(&id).await;
            let rec = self.get(&id)?;
            if write && rec.host_config.readonly_rootfs {
                return Err(EngineError::InvalidParameter("container rootfs is marked read-only".into()));
            }
            if rec.state.running {
                let pid = rec.state.pid;
                drop(lock);
                let ns = self.ctd.client.namespace().to_string();
                let cid = id.clone();
                let fd = tokio::task::spawn_blocking(move || running_root(pid, &ns, &cid))
                    .await
                    .map_err(|e| internal("root task failed", e))?;
                // Opened by pid: it counts only if the container still runs
                // with that pid now (a pid is not reused before containerd
                // has seen its process exit).
                let still = matches!(self.ctd.tasks.get(&id, "").await, Ok(t) if t.pid == pid && matches!(t.status, berth_containerd::TaskStatus::Running | berth_containerd::TaskStatus::Paused));
                match fd {
                    Ok((_, true)) if still && write => {
                        return Err(EngineError::Conflict(format!(
                            "berth cannot copy into container {key} while it runs: its runtime runs it in a sandbox (gVisor) that caches \
                             its files, so the container would not see the copy; stop the container, copy, and start it again"
                        )))
                    }
                    Ok((fd, _)) if still => return Ok(CpRoot { fd, _mount: None, _lock: None, _lease: None, pid: Some(pid), mounts: None }),
                    // It stopped meanwhile: again, as a stopped container.
                    _ => continue,
                }
            }
            let (mounts, lease) = match self.snapshot_mounts(&id).await? {
                Some(m) => (m, None),
                None => {
                    let image = self.images.resolve(&rec.image_id).await?;
                    if write {
                        // Its filesystem, made now rather than at its first
                        // start (which takes it over).
                        let parent = image.chain_id.clone().unwrap_or_default();
                        let m = self.ctd.containers.prepare_prestart(&id, self.ctd.images.snapshotter(), &parent).await?;
                        (m, None)
                    } else {
                        let Some(chain) = image.chain_id else {
                            return Err(EngineError::NotImplemented(format!("container {key} has an image without layers: nothing to copy")));
                        };
                    let lease = self.ctd.client.create_lease(CP_LEASE_PREFIX, Duration::from_secs(3600)).await?;
                        let (_, m) = berth_containerd::snapshots::view(&self.ctd.client, &lease, self.ctd.images.snapshotter(), &chain).await?;
                        (m, Some(lease))
                    }
                }
            };
            let dir = self.images.scratch(ScratchKind::Mount)?;
            let m = mounts.clone();
            let mounted = tokio::task::spawn_blocking(move || -> std::io::Result<(TempMount, OwnedFd)> {
                let tm = TempMount::mount(dir, &m, !write)?;
                let fd = open_root(&tm.path())?;
                Ok((tm, fd))
            })
            .await
            .map_err(|e| internal("mount task failed", e))?
            .map_err(|e| internal("mounting the container's filesystem", e))?;
            return Ok(CpRoot { fd: mounted.1, _mount: Some(mounted.0), _lock: Some(lock), _lease: lease, pid: None, mounts: Some(mounts) });
        }
        Err(EngineError::Conflict(format!("container {key} kept starting and stopping; try the copy again")))
    }

    /// `HEAD .../archive`: the stat of `path` in the container.
    pub async fn stat_path(&self, key: &str, path: &str) -> Result<PathStat> {
        let root = self.cp_root(key, false).await?;
        let p = path.to_string();
        tokio::task::spawn_blocking(move || {
            let r = resolve::resolve(&root.fd, &p).and_then(|t| resolve::stat(&t));
            drop(root);
            r
        })
        .await
        .map_err(|e| internal("stat task failed", e))?
        .map_err(|e| Self::copy_error(e, path, key))
    }

    /// `GET .../archive`: the stat of `path` and a stream of its tar.
    pub async fn archive_path(&self, key: &str, path: &str) -> Result<(PathStat, mpsc::Receiver<std::io::Result<Vec<u8>>>)> {
        let root = self.cp_root(key, false).await?;
        let (p, container) = (path.to_string(), key.to_string());
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let target = match resolve::resolve(&root.fd, &p).and_then(|t| resolve::stat(&t).map(|s| (t, s))) {
                Ok(t) => t,
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                    return;
                }
            };
            let (t, stat) = target;
            if tar_out::is_kernel_fs(&t.parent) {
                let _ = stat_tx.send(Err(CopyError::Invalid(format!("{p} is on procfs or sysfs; docker cp does not copy those"))));
                return;
            }
            let _ = stat_tx.send(Ok(stat.clone()));
            let base = if p.ends_with("/.") || resolve::clean(&p).is_empty() { ".".to_string() } else { stat.name.clone() };
            let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
            let r = tar_out::write_tar(&t, &base, &mut w).and_then(|()| w.flush().map_err(|e| CopyError::Io { path: p.clone(), source: e }));
            if let Err(e) = r {
                tracing::warn!(container = %container, path = %p, error = %e, "docker cp: the archive was cut short");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            drop(root);
        });
        let stat = stat_rx
            .await
            .map_err(|e| internal("archive task failed", e))?
            .map_err(|e| Self::copy_error(e, path, key))?;
        Ok((stat, rx))
    }

    /// `PUT .../archive`: extracts the tar `req.archive` into the
    /// directory `req.path` of the container.
    pub async fn extract_to_dir(&self, key: &str, req: ExtractRequest) -> Result<()> {
        let root = self.cp_root(key, true).await?;
        let rec = self.get(key)?;
        let owner = if req.copy_uid_gid {
            let (user, groups) = (rec.config.user.clone(), rec.host_config.group_add.clone());
            let (pid, mounts) = (root.pid, root.mounts.clone());
            let u = tokio::task::spawn_blocking(move || match (pid, mounts) {
                (Some(pid), _) => crate::user::resolve_in_process(&user, &groups, pid),
                (None, m) => crate::user::resolve_in_rootfs(&user, &groups, &m.unwrap_or_default()),
            })
            .await
            .map_err(|e| internal("user task failed", e))?
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let path = req.path.clone();
        tokio::task::spawn_blocking(move || {
            let t = resolve::resolve_follow(&root.fd, &path)?;
            if FileType::from_raw_mode(t.stat.st_mode) != FileType::Directory {
                return Err(CopyError::Invalid("extraction point is not a directory".into()));
            }
            if tar_out::is_kernel_fs(&t.parent) {
                return Err(CopyError::Invalid(format!("{path} is on procfs or sysfs; docker cp does not write there")));
            }
            let file = std::fs::File::open(&req.archive).map_err(|e| CopyError::Io { path: path.clone(), source: e })?;
            let input = crate::images::archive::open_stream(std::io::BufReader::new(file)).map_err(|e| CopyError::Invalid(e.to_string()))?;
            let opts = ExtractOptions { no_overwrite_dir_non_dir: req.no_overwrite_dir_non_dir, owner };
            let r = extract::extract(&root.fd, &t.path, input, &TarLimits::DEFAULT, opts);
            drop(root);
            r
        })
        .await
        .map_err(|e| internal("extract task failed", e))?
        .map_err(|e| Self::copy_error(e, &req.path, key))
    }
}
