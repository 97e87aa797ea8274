//! The container store: crash-safe record files plus the lock-free index.
//!
//! Layout under the data root:
//!
//! ```text
//! <root>/containers/.store.lock            flock: one berth per data root
//! <root>/containers/<id>/config.json       the record (atomic replace)
//! <root>/containers/<id>/<id>-json.log     its log (see crate::logfile)
//! <root>/containers/.creating-<id>/        a create in progress (never loaded)
//! <root>/containers/.removing-<id>/        a removal in progress (never loaded)
//! <root>/containers/<id>.corrupt-<stamp>/  a record that failed to load, set aside
//! ```
//!
//! Concurrency design:
//! - Readers call [`Store::snapshot`] (one `ArcSwap` load) and never block.
//! - Every change first becomes durable on disk and is then published as a
//!   new immutable [`Snapshot`] (copy-on-write). Publication and name
//!   reservations are serialized by one `std::sync::Mutex` that is held only
//!   for in-memory work, never across I/O.
//! - Disk writes of one container are serialized by a per-id
//!   `std::sync::Mutex`, so the order of writes on disk is the order of
//!   publication.
//! - Lifecycle operations (start, stop, rm, …) serialize on the per-id async
//!   mutex from [`Store::lock`]; the store itself never takes it.
//!
//! Writing methods ([`Store::create`], [`Store::update`], [`Store::rename`],
//! [`Store::remove`]) do blocking file I/O with fsync (about a millisecond
//! on a healthy disk); async callers may wrap them in
//! `tokio::task::spawn_blocking` (a [`Store`] is a cheap `Clone`).

use std::collections::{HashMap, HashSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tracing::{debug, error, info, warn};

use crate::error::StoreError;
use crate::fsutil::{fsync_dir, is_no_space, write_atomic, TMP_MARKER};
use crate::id::{generate_id, is_valid_id};
use crate::index::{Index, Snapshot};
use crate::names::{generate_name, validate_name};
use crate::record::{self, ContainerConfig, ContainerRecord, DecodeError, HostConfig, LogConfig, State, RECORD_VERSION};
use crate::timefmt::now_rfc3339_nano;

const CONTAINERS_DIR: &str = "containers";
const RECORD_FILE: &str = "config.json";
const LOCK_FILE: &str = ".store.lock";
const CREATING_PREFIX: &str = ".creating-";
const REMOVING_PREFIX: &str = ".removing-";
const CORRUPT_MARKER: &str = ".corrupt-";

/// What a new container is made of. The store assigns `created`, the
/// initial [`State`] and, unless given, the id and the name.
#[derive(Debug, Clone, Default)]
pub struct NewContainer {
    /// A pre-generated id (see [`crate::generate_id`]); `None` = generate.
    pub id: Option<String>,
    /// Requested name (with or without `/`); `None` = generate one.
    pub name: Option<String>,
    /// Image reference as given by the client.
    pub image: String,
    /// Resolved image id.
    pub image_id: String,
    /// Resolved manifest digest, if known.
    pub image_digest: Option<String>,
    /// Process settings.
    pub config: ContainerConfig,
    /// Resource and runtime settings.
    pub host_config: HostConfig,
    /// The resolved log configuration.
    pub log_config: LogConfig,
    /// Network settings.
    pub networking: crate::record::Networking,
}

/// A record that [`Store::open`] could not load and moved aside (or, if
/// even that failed, left in place). Never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRecord {
    /// The directory name (normally the container id).
    pub id: String,
    /// Where the directory is now.
    pub moved_to: PathBuf,
    /// Why it could not be loaded.
    pub reason: String,
}

/// A record that [`Store::open`] left in place without loading it (e.g.
/// written by a newer berth), or loaded with a caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// The container id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// What [`Store::open`] found, for the daemon to log and show.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Records loaded.
    pub loaded: usize,
    /// Records that failed to load, set aside by this open.
    pub corrupt: Vec<CorruptRecord>,
    /// Records left in place and not loaded (format too new).
    pub unsupported: Vec<SkippedRecord>,
    /// Records loaded but not reachable by name because an older container
    /// already has their name (only after manual edits).
    pub name_conflicts: Vec<SkippedRecord>,
    /// Leftovers of interrupted writes, creates and removals that were
    /// deleted.
    pub cleaned: Vec<PathBuf>,
    /// Records set aside by earlier opens, still waiting for an operator.
    pub previously_quarantined: Vec<PathBuf>,
}

/// Names and ids promised to operations whose disk write is in progress.
#[derive(Default)]
struct Reservations {
    names: HashMap<String, String>,
    ids: HashSet<String>,
}

struct Inner {
    root: PathBuf,
    dir: PathBuf,
    index: ArcSwap<Index>,
    /// Serializes publication and reservations; never held across I/O.
    publish: Mutex<Reservations>,
    /// Per-container disk-write locks.
    io_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Per-container lifecycle locks handed out by [`Store::lock`].
    life_locks: Arc<LifeLocks>,
    /// Records found at open that could not be loaded (corrupt, set aside
    /// now or earlier, or written by a newer berth): their containers'
    /// other state must be kept, not reconciled away.
    held_back: Vec<HeldBack>,
    /// Holds the flock for the store's lifetime.
    _lock_file: File,
}

/// A container whose record exists but could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub id: String,
    /// Where its record is now.
    pub record: PathBuf,
    pub reason: String,
}

fn held_back(dir: &Path, report: &OpenReport) -> Vec<HeldBack> {
    let mut out: Vec<HeldBack> = report
        .corrupt
        .iter()
        .map(|c| HeldBack { id: c.id.clone(), record: c.moved_to.clone(), reason: c.reason.clone() })
        .collect();
    out.extend(report.unsupported.iter().map(|u| HeldBack { id: u.id.clone(), record: dir.join(&u.id), reason: u.reason.clone() }));
    for p in &report.previously_quarantined {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some((id, _)) = name.split_once(CORRUPT_MARKER) {
            if is_valid_id(id) && !out.iter().any(|h| h.id == id) {
                out.push(HeldBack { id: id.to_string(), record: p.clone(), reason: "set aside as corrupt by an earlier start".into() });
            }
        }
    }
    out
}

/// The container store. Cheap to clone (all clones share one store).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.inner.root).field("containers", &self.len()).finish()
    }
}

type LifeLocks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Guard of a container's lifecycle lock (see [`Store::lock`]). Dropping it
/// releases the lock; the lock's table entry goes away with its last user.
#[derive(Debug)]
pub struct ContainerLock {
    id: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    table: Arc<LifeLocks>,
}

impl ContainerLock {
    /// The id this guard locks.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for ContainerLock {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        // Users of the entry: the table itself, our guard, and any waiter
        // (waiters clone the Arc under this table lock before waiting).
        if table.get(&self.id).is_some_and(|m| Arc::strong_count(m) <= 2) {
            table.remove(&self.id);
        }
        // Release while still holding the table lock, so nobody can create
        // a second mutex for this id in between.
        self.guard.take();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the protected
    // data half-updated (updates are single assignments), so poisoning is
    // ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mkdir_private(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

impl Store {
    /// Opens (creating if needed) the store under `root` (berth's data
    /// root): takes the store lock, cleans leftovers of interrupted
    /// operations, loads every record and builds the index. Records that
    /// cannot be loaded are moved aside and listed in the report, never
    /// dropped silently.
    pub fn open(root: impl AsRef<Path>) -> Result<(Store, OpenReport), StoreError> {
        let root = root.as_ref().to_path_buf();
        let dir = root.join(CONTAINERS_DIR);
        mkdir_private(&dir).map_err(|e| StoreError::io("cannot create the containers directory", &dir, e))?;
        let lock_file = take_flock(&dir.join(LOCK_FILE))?;

        let mut report = OpenReport::default();
        let mut records = Vec::new();
        let mut changed = false;
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("cannot list the containers directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("cannot list the containers directory", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name == LOCK_FILE {
                continue;
            }
            if name.starts_with(REMOVING_PREFIX) || name.starts_with(CREATING_PREFIX) || name.contains(TMP_MARKER) {
                let what = if name.starts_with(REMOVING_PREFIX) {
                    "an interrupted removal"
                } else if name.starts_with(CREATING_PREFIX) {
                    "a create that was interrupted before it was acknowledged"
                } else {
                    "an interrupted write"
                };
                info!(path = %path.display(), "cleaning up the leftover of {what}");
                remove_path(&path);
                report.cleaned.push(path);
                changed = true;
                continue;
            }
            if name.contains(CORRUPT_MARKER) {
                report.previously_quarantined.push(path);
                continue;
            }
            if !is_valid_id(&name) || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                warn!(path = %path.display(), "ignoring an unexpected entry in the containers directory");
                continue;
            }
            match load_record(&path, &name, &mut report.cleaned) {
                Ok(rec) => records.push(rec),
                Err(LoadError::TooNew(reason)) => {
                    error!(id = %name, %reason, "container record not loaded, left in place");
                    report.unsupported.push(SkippedRecord { id: name, reason });
                }
                Err(LoadError::Corrupt(reason)) => {
                    let moved_to = dir.join(format!("{name}{CORRUPT_MARKER}{}", compact_stamp()));
                    let moved_to = match fs::rename(&path, &moved_to) {
                        Ok(()) => {
                            changed = true;
                            error!(id = %name, %reason, moved_to = %moved_to.display(),
                                "corrupt container record moved aside; inspect it and remove it when done");
                            moved_to
                        }
                        Err(e) => {
                            error!(id = %name, %reason, error = %e,
                                "corrupt container record could not be moved aside; it stays in place and is not loaded");
                            path
                        }
                    };
                    report.corrupt.push(CorruptRecord { id: name, moved_to, reason });
                }
            }
        }
        if !report.previously_quarantined.is_empty() {
            warn!(count = report.previously_quarantined.len(),
                "corrupt container records set aside earlier are still in {}", dir.display());
        }
        if changed {
            fsync_dir(&dir).map_err(|e| StoreError::io("cannot sync the containers directory", &dir, e))?;
        }

        // Oldest first, so that if two records claim one name (only after
        // manual edits) the older keeps it.
        records.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        let mut index = Index::default();
        for rec in records {
            if let Some(holder) = index.by_name.get(&rec.name) {
                let reason = format!("name {:?} is already used by container {holder}; rename this one", rec.name);
                error!(id = %rec.id, %reason, "container loaded without its name");
                report.name_conflicts.push(SkippedRecord { id: rec.id.clone(), reason });
            } else {
                index.by_name.insert(rec.name.clone(), rec.id.clone());
            }
            index.by_id.insert(rec.id.clone(), Arc::new(rec));
        }
        report.loaded = index.by_id.len();
        info!(root = %root.display(), loaded = report.loaded, corrupt = report.corrupt.len(), "container store opened");

        let held_back = held_back(&dir, &report);
        let store = Store {
            inner: Arc::new(Inner {
                root,
                dir,
                index: ArcSwap::from_pointee(index),
                publish: Mutex::new(Reservations::default()),
                io_locks: Mutex::new(HashMap::new()),
                life_locks: Arc::new(Mutex::new(HashMap::new())),
                held_back,
                _lock_file: lock_file,
            }),
        };
        Ok((store, report))
    }

    /// Containers whose record could not be loaded at open; see
    /// [`HeldBack`].
    pub fn held_back(&self) -> &[HeldBack] {
        &self.inner.held_back
    }

    /// The data root given to [`Store::open`].
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The directory of a container (`<root>/containers/<id>`); it exists
    /// from create until remove.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.inner.dir.join(id)
    }

    /// The container's json-file log (`<root>/containers/<id>/<id>-json.log`),
    /// as Docker names it.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The current snapshot of all records; lock-free, never blocks.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.inner.index.load_full())
    }

    /// The record with exactly this full id.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.inner.index.load().by_id.get(id).cloned()
    }

    /// Finds a container by full id, name (with or without `/`) or unique
    /// id prefix; see [`Snapshot::resolve`].
    pub fn resolve(&self, key: &str) -> Result<Arc<ContainerRecord>, StoreError> {
        self.snapshot().resolve(key)
    }

    /// All records, newest first; see [`Snapshot::list`].
    pub fn list(&self) -> Vec<Arc<ContainerRecord>> {
        self.snapshot().list()
    }

    /// Number of containers.
    pub fn len(&self) -> usize {
        self.inner.index.load().by_id.len()
    }

    /// True if there are no containers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the lifecycle lock of container `id` (a full id), waiting for
    /// the current holder. Start, stop, kill, rm, rename and restart should
    /// hold it; readers never need it. The store does not check that the
    /// container exists: re-check after locking.
    pub async fn lock(&self, id: &str) -> ContainerLock {
        let m = lock(&self.inner.life_locks).entry(id.to_owned()).or_default().clone();
        let guard = m.lock_owned().await;
        ContainerLock { id: id.to_owned(), guard: Some(guard), table: self.inner.life_locks.clone() }
    }

    /// Creates a container: reserves its name atomically (a concurrent
    /// create with the same name gets [`StoreError::NameConflict`]), writes
    /// its directory and record durably, then publishes it. Blocking I/O.
    pub fn create(&self, new: NewContainer) -> Result<Arc<ContainerRecord>, StoreError> {
        let id = match new.id {
            Some(id) if !is_valid_id(&id) => return Err(StoreError::InvalidId(id)),
            Some(id) => id,
            None => generate_id(),
        };
        let wanted = new.name.as_deref().map(validate_name).transpose()?;
        let name = self.reserve(&id, wanted)?;

        let mut rec = ContainerRecord::new(id.clone(), name.clone());
        rec.created = now_rfc3339_nano();
        rec.image = new.image;
        rec.image_id = new.image_id;
        rec.image_digest = new.image_digest;
        rec.config = new.config;
        rec.host_config = new.host_config;
        rec.log_config = new.log_config;
        rec.networking = new.networking;
        rec.state = State::default();

        if let Err(e) = self.write_new(&rec) {
            self.release(&id, Some(&name));
            return Err(e);
        }
        let rec = Arc::new(rec);
        self.publish(|ix, res| {
            res.ids.remove(&id);
            res.names.remove(&name);
            ix.by_name.insert(name.clone(), id.clone());
            ix.by_id.insert(id.clone(), rec.clone());
        });
        debug!(%id, %name, "container created");
        Ok(rec)
    }

    /// Changes a record: `f` edits a copy, the copy is written to disk and
    /// then published. If the write fails (e.g. the disk is full) the old
    /// record stays in place on disk and in memory and the error says what
    /// to do. `f` cannot change the id or the name (use [`Store::rename`]).
    /// Blocking I/O.
    pub fn update<F>(&self, id: &str, f: F) -> Result<Arc<ContainerRecord>, StoreError>
    where
        F: FnOnce(&mut ContainerRecord),
    {
        let io = self.io_lock(id)?;
        let _io = lock(&io);
        let current = self.get(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let mut rec = (*current).clone();
        f(&mut rec);
        rec.id.clone_from(&current.id);
        rec.name.clone_from(&current.name);
        rec.version = RECORD_VERSION;
        self.write_record(&rec)?;
        let rec = Arc::new(rec);
        self.publish(|ix, _| {
            ix.by_id.insert(rec.id.clone(), rec.clone());
        });
        Ok(rec)
    }

    /// Renames a container (`new_name` with or without `/`), atomically
    /// with respect to other creates and renames, on disk first. Renaming to
    /// the current name is a no-op. Blocking I/O.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<Arc<ContainerRecord>, StoreError> {
        let new_name = validate_name(new_name)?;
        let io = self.io_lock(id)?;
        let _io = lock(&io);
        let current = self.get(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        if current.name == new_name {
            return Ok(current);
        }
        {
            let mut res = lock(&self.inner.publish);
            check_name_free(&self.inner.index.load(), &res, &new_name, id)?;
            res.names.insert(new_name.clone(), id.to_owned());
        }
        let mut rec = (*current).clone();
        rec.name.clone_from(&new_name);
        rec.version = RECORD_VERSION;
        if let Err(e) = self.write_record(&rec) {
            lock(&self.inner.publish).names.remove(&new_name);
            return Err(e);
        }
        let rec = Arc::new(rec);
        self.publish(|ix, res| {
            res.names.remove(&new_name);
            if ix.by_name.get(&current.name).map(String::as_str) == Some(id) {
                ix.by_name.remove(&current.name);
            }
            ix.by_name.insert(new_name.clone(), id.to_owned());
            ix.by_id.insert(id.to_owned(), rec.clone());
        });
        info!(%id, old = %current.name, new = %new_name, "container renamed");
        Ok(rec)
    }

    /// Removes a container's record and directory (its log included). The
    /// directory is first renamed to `.removing-<id>` (the durable commit
    /// point), then unpublished, then deleted; a crash mid-delete leaves
    /// only a leftover that the next open cleans. Returns the removed
    /// record. Blocking I/O.
    pub fn remove(&self, id: &str) -> Result<Arc<ContainerRecord>, StoreError> {
        let io = self.io_lock(id)?;
        let guard = lock(&io);
        let current = self.get(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let dir = self.container_dir(id);
        let doomed = self.inner.dir.join(format!("{REMOVING_PREFIX}{id}"));
        if doomed.exists() {
            remove_path(&doomed);
        }
        fs::rename(&dir, &doomed).map_err(|e| self.map_io_error(id, "cannot remove container directory", &dir, e))?;
        if let Err(e) = fsync_dir(&self.inner.dir) {
            // The rename happened; going on keeps memory and disk in step.
            // A crash before the rename reaches the disk brings the record
            // back at the next open, which is the safe direction.
            warn!(%id, error = %e, "cannot sync the containers directory after removing a container");
        }
        self.publish(|ix, _| {
            ix.by_id.remove(id);
            if ix.by_name.get(&current.name).map(String::as_str) == Some(id) {
                ix.by_name.remove(&current.name);
            }
        });
        if let Err(e) = fs::remove_dir_all(&doomed) {
            warn!(%id, path = %doomed.display(), error = %e,
                "container removed but its directory could not be deleted; the next start of berth retries");
        }
        drop(guard);
        lock(&self.inner.io_locks).remove(id);
        info!(%id, name = %current.name, "container removed");
        Ok(current)
    }

    // --- internals -------------------------------------------------------

    /// Reserves `id` and a name (the wanted one, or a generated free one).
    fn reserve(&self, id: &str, wanted: Option<String>) -> Result<String, StoreError> {
        let mut res = lock(&self.inner.publish);
        let ix = self.inner.index.load();
        if ix.by_id.contains_key(id) || res.ids.contains(id) {
            return Err(StoreError::IdConflict(id.to_owned()));
        }
        let name = match wanted {
            Some(name) => {
                check_name_free(&ix, &res, &name, id)?;
                name
            }
            None => {
                let mut retry = 0;
                loop {
                    let candidate = generate_name(retry / 3);
                    if check_name_free(&ix, &res, &candidate, id).is_ok() {
                        break candidate;
                    }
                    retry += 1;
                }
            }
        };
        res.ids.insert(id.to_owned());
        res.names.insert(name.clone(), id.to_owned());
        Ok(name)
    }

    fn release(&self, id: &str, name: Option<&str>) {
        let mut res = lock(&self.inner.publish);
        res.ids.remove(id);
        if let Some(n) = name {
            res.names.remove(n);
        }
    }

    /// Publishes a new index: copies the current one, lets `edit` change
    /// the copy (and the reservations), swaps it in. In-memory only.
    fn publish(&self, edit: impl FnOnce(&mut Index, &mut Reservations)) {
        let mut res = lock(&self.inner.publish);
        let mut ix = Index::clone(&self.inner.index.load());
        edit(&mut ix, &mut res);
        self.inner.index.store(Arc::new(ix));
    }

    /// The per-id disk-write lock of an existing container.
    fn io_lock(&self, id: &str) -> Result<Arc<Mutex<()>>, StoreError> {
        if self.get(id).is_none() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(lock(&self.inner.io_locks).entry(id.to_owned()).or_default().clone())
    }

    fn encode(rec: &ContainerRecord) -> Result<Vec<u8>, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(rec).map_err(|source| StoreError::Encode { id: rec.id.clone(), source })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Writes a new container's directory and record: staged in
    /// `.creating-<id>`, then renamed into place and the parent synced.
    fn write_new(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        let bytes = Self::encode(rec)?;
        let staging = self.inner.dir.join(format!("{CREATING_PREFIX}{}", rec.id));
        let dir = self.container_dir(&rec.id);
        if dir.exists() {
            // Only a record this build cannot load (left in place) can be
            // here; never overwrite it.
            return Err(StoreError::IdConflict(rec.id.clone()));
        }
        let mut renamed = false;
        let result = (|| {
            fs::create_dir(&staging).map_err(|e| ("cannot create container directory", staging.clone(), e))?;
            let file = staging.join(RECORD_FILE);
            write_atomic(&file, &bytes).map_err(|e| ("cannot write container record", file, e))?;
            fs::rename(&staging, &dir).map_err(|e| ("cannot create container directory", dir.clone(), e))?;
            renamed = true;
            fsync_dir(&self.inner.dir).map_err(|e| ("cannot sync the containers directory", self.inner.dir.clone(), e))
        })();
        result.map_err(|(action, path, e)| {
            remove_path(if renamed { &dir } else { &staging });
            self.map_io_error(&rec.id, action, &path, e)
        })
    }

    /// Atomically replaces an existing container's record file.
    fn write_record(&self, rec: &ContainerRecord) -> Result<(), StoreError> {
        let bytes = Self::encode(rec)?;
        let file = self.container_dir(&rec.id).join(RECORD_FILE);
        write_atomic(&file, &bytes).map_err(|e| self.map_io_error(&rec.id, "cannot write container record", &file, e))
    }

    fn map_io_error(&self, id: &str, action: &'static str, path: &Path, e: io::Error) -> StoreError {
        if is_no_space(&e) {
            error!(%id, path = %path.display(), "no space left on device while saving a container record");
            StoreError::NoSpace { id: id.to_owned(), root: self.inner.root.clone() }
        } else {
            error!(%id, path = %path.display(), error = %e, "{action}");
            StoreError::io(action, path, e)
        }
    }
}

/// Fails with [`StoreError::NameConflict`] if `name` is taken by, or
/// reserved for, a container other than `id`.
fn check_name_free(ix: &Index, res: &Reservations, name: &str, id: &str) -> Result<(), StoreError> {
    let holder = ix.by_name.get(name).or_else(|| res.names.get(name));
    match holder {
        Some(existing) if existing != id => {
            Err(StoreError::NameConflict { name: name.to_owned(), existing_id: existing.clone() })
        }
        _ => Ok(()),
    }
}

enum LoadError {
    Corrupt(String),
    TooNew(String),
}

/// Loads `<dir>/config.json`, deleting leftover temp files beside it.
fn load_record(dir: &Path, id: &str, cleaned: &mut Vec<PathBuf>) -> Result<ContainerRecord, LoadError> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(TMP_MARKER) {
                info!(path = %entry.path().display(), "cleaning up the leftover of an interrupted write");
                remove_path(&entry.path());
                cleaned.push(entry.path());
            }
        }
    }
    let file = dir.join(RECORD_FILE);
    let bytes = fs::read(&file).map_err(|e| LoadError::Corrupt(format!("cannot read {}: {e}", file.display())))?;
    let rec = record::decode(&bytes).map_err(|e| match e {
        DecodeError::TooNew { .. } => LoadError::TooNew(e.to_string()),
        DecodeError::Invalid(_) => LoadError::Corrupt(format!("{}: {e}", file.display())),
    })?;
    if rec.id != id {
        return Err(LoadError::Corrupt(format!("{} holds the record of container {:?}, not {id}", file.display(), rec.id)));
    }
    if validate_name(&rec.name).is_err() {
        return Err(LoadError::Corrupt(format!("{} has an invalid container name {:?}", file.display(), rec.name)));
    }
    Ok(rec)
}

/// Deletes a file or directory tree, logging (not failing) on error.
fn remove_path(path: &Path) {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        warn!(path = %path.display(), error = %e, "cannot delete; remove it by hand");
    }
}

/// `20261129T042132.483365888Z`: a timestamp usable in a file name.
fn compact_stamp() -> String {
    now_rfc3339_nano().replace(['-', ':'], "")
}

/// Opens and exclusively flocks the store lock file.
fn take_flock(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io("cannot open the store lock file", path, e))?;
    // A lock can be held for a moment by a child process forked (but not
    // yet exec'd) by the previous holder, so retry briefly before failing.
    for attempt in 0..100 {
        // SAFETY: flock on a valid, owned file descriptor; no memory involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(StoreError::io("cannot lock the store lock file", path, e));
        }
        if attempt == 0 {
            debug!(path = %path.display(), "store lock is busy, retrying for up to 1 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(StoreError::Locked { path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_named(name: &str) -> NewContainer {
        NewContainer { name: Some(name.into()), image: "busybox".into(), ..Default::default() }
    }

    #[test]
    fn create_get_update_remove() {
        let d = tempfile::tempdir().unwrap();
        let (s, report) = Store::open(d.path()).unwrap();
        assert_eq!(report.loaded, 0);
        let r = s.create(new_named("/web")).unwrap();
        assert_eq!(r.name, "web");
        assert!(is_valid_id(&r.id));
        assert!(s.container_dir(&r.id).join(RECORD_FILE).is_file());
        assert_eq!(s.resolve("/web").unwrap().id, r.id);

        let u = s.update(&r.id, |rec| {
            rec.state.exit_code = 3;
            rec.name = "sneaky".into();
        }).unwrap();
        assert_eq!(u.state.exit_code, 3);
        assert_eq!(u.name, "web", "update cannot rename");
        assert_eq!(s.get(&r.id).unwrap().state.exit_code, 3);

        let removed = s.remove(&r.id).unwrap();
        assert_eq!(removed.id, r.id);
        assert!(s.get(&r.id).is_none());
        assert!(!s.container_dir(&r.id).exists());
        assert!(matches!(s.remove(&r.id), Err(StoreError::NotFound(_))));
        assert!(matches!(s.update(&r.id, |_| {}), Err(StoreError::NotFound(_))));
        // The name is free again.
        s.create(new_named("web")).unwrap();
        // Only the lock file and the new container remain.
        assert_eq!(fs::read_dir(d.path().join(CONTAINERS_DIR)).unwrap().count(), 2);
    }

    #[test]
    fn names_conflict_and_generate() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(d.path()).unwrap();
        let a = s.create(new_named("db")).unwrap();
        match s.create(new_named("/db")) {
            Err(StoreError::NameConflict { name, existing_id }) => {
                assert_eq!(name, "db");
                assert_eq!(existing_id, a.id);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(s.create(new_named("x")), Err(StoreError::InvalidName(_))));
        let g = s.create(NewContainer::default()).unwrap();
        assert!(g.name.contains('_'), "{}", g.name);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn caller_supplied_ids() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(d.path()).unwrap();
        let id = generate_id();
        let r = s.create(NewContainer { id: Some(id.clone()), ..Default::default() }).unwrap();
        assert_eq!(r.id, id);
        assert!(matches!(s.create(NewContainer { id: Some(id), ..Default::default() }), Err(StoreError::IdConflict(_))));
        assert!(matches!(s.create(NewContainer { id: Some("ABC".into()), ..Default::default() }), Err(StoreError::InvalidId(_))));
    }

    #[test]
    fn rename_moves_the_name() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(d.path()).unwrap();
        let a = s.create(new_named("one")).unwrap();
        let b = s.create(new_named("two")).unwrap();
        assert!(matches!(s.rename(&a.id, "two"), Err(StoreError::NameConflict { .. })));
        assert!(matches!(s.rename(&a.id, "!"), Err(StoreError::InvalidName(_))));
        let r = s.rename(&a.id, "/three").unwrap();
        assert_eq!(r.name, "three");
        assert!(matches!(s.resolve("one"), Err(StoreError::NotFound(_))));
        assert_eq!(s.resolve("three").unwrap().id, a.id);
        assert_eq!(s.resolve("two").unwrap().id, b.id);
        assert_eq!(s.rename(&a.id, "three").unwrap().name, "three");
        // The old name is free.
        s.create(new_named("one")).unwrap();
    }

    #[test]
    fn second_open_of_same_root_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(d.path()).unwrap();
        let e = Store::open(d.path()).unwrap_err();
        assert!(matches!(e, StoreError::Locked { .. }), "{e}");
        drop(s);
        Store::open(d.path()).unwrap();
    }

    #[tokio::test]
    async fn lifecycle_lock_serializes() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(d.path()).unwrap();
        let g = s.lock("abc").await;
        assert_eq!(g.id(), "abc");
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.lock("abc").await.id().to_owned() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        // Another id is independent.
        let other = s.lock("def").await;
        drop(g);
        assert_eq!(waiter.await.unwrap(), "abc");
        drop(other);
        assert!(lock(&s.inner.life_locks).is_empty(), "entries go away with their last user");
    }
}
