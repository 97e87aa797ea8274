//! The runtime service: reloads (serialized, off the async threads), name
//! resolution ([`resolve`]: PATH searches off the async threads too) and the
//! runtime inventory shown by `berth runtimes` and `GET /berth/v1/runtimes`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use berth_config::{ConfigErrors, ConfigStore, Kind, ReloadReport, Resolved, Snapshot, WrapperCheck};
use serde::Serialize;

/// Why a reload could not run or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is invalid; nothing changed.
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    /// The reload task died (a bug); nothing changed.
    #[error("the reload task failed: {0}; nothing was changed, see the daemon log")]
    Internal(String),
}

/// Wrapper GC runs this long after the last reload, so a storm of reloads
/// (or a configuration flipped back and forth) neither deletes nor
/// re-creates the same wrappers on every reload...
pub const GC_QUIET: Duration = Duration::from_secs(1);
/// ...and at most this long after the first reload it waits for.
pub const GC_MAX_DELAY: Duration = Duration::from_secs(10);

/// The wrappers container records pin; `None` when unknown (then nothing
/// is collected).
pub type PinnedSource = Arc<dyn Fn() -> Option<Vec<PathBuf>> + Send + Sync>;

/// Where a reload (not a dry run) is, for [`ReloadObserver`]s.
#[derive(Debug, Clone, Copy)]
pub enum ReloadPhase<'a> {
    /// The reload starts: the configuration may change.
    Started,
    /// It ended: `applied` is the report when the new configuration is
    /// live, `None` when it was refused (or the reload failed) and the
    /// previous one stays.
    Finished { applied: Option<&'a ReloadReport> },
}

/// Told about every reload that may change the configuration, whoever asked
/// for it (SIGHUP, the API, `berth reload`): `Started`, then exactly one
/// `Finished`, serialized with other reloads, on a blocking thread. The
/// daemon uses it for sd_notify (`RELOADING=1` … `READY=1`) and the log level.
pub type ReloadObserver = Arc<dyn Fn(ReloadPhase<'_>) + Send + Sync>;

#[derive(Default)]
struct GcState {
    /// When the first reload not yet followed by a GC happened.
    pending_since: Option<Instant>,
    last_reload: Option<Instant>,
    /// Whether the delayed GC task is alive.
    scheduled: bool,
}

/// Owns the live configuration and applies reloads.
pub struct RuntimeService {
    store: Arc<ConfigStore>,
    /// Serializes reloads and GC at the async level too, so a queue of
    /// SIGHUPs and API calls does not pile up blocking threads.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Wrappers garbage-collected so far.
    collected: Arc<AtomicU64>,
    gc: Arc<Mutex<GcState>>,
    pinned: Arc<OnceLock<PinnedSource>>,
    observer: OnceLock<ReloadObserver>,
}

impl RuntimeService {
    pub fn new(store: Arc<ConfigStore>) -> Self {
        RuntimeService {
            store,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            collected: Default::default(),
            gc: Default::default(),
            pinned: Arc::new(OnceLock::new()),
            observer: OnceLock::new(),
        }
    }

    /// Sets the [`ReloadObserver`] (once; later calls are ignored).
    pub fn set_reload_observer(&self, observer: ReloadObserver) {
        let _ = self.observer.set(observer);
    }

    /// Where the wrapper GC learns which wrappers container records pin.
    /// Until it is set, no wrapper is ever collected.
    pub fn set_pinned_source(&self, source: PinnedSource) {
        let _ = self.pinned.set(source);
    }

    /// The current snapshot; load it once per operation.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.store.snapshot()
    }

    /// Wrappers garbage-collected so far.
    pub fn collected(&self) -> u64 {
        self.collected.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.store
    }

    /// Re-reads the configuration and applies it (or only validates and
    /// diffs it, with `dry_run`). All or nothing. Wrappers nothing references
    /// any more are collected [`GC_QUIET`] after the last reload (at most
    /// [`GC_MAX_DELAY`] after the first one waiting), off the reply's path.
    pub async fn reload(&self, dry_run: bool) -> Result<ReloadReport, ReloadError> {
        let res = {
            let _guard = self.lock.lock().await;
            let store = self.store.clone();
            let observer = if dry_run { None } else { self.observer.get().cloned() };
            tokio::task::spawn_blocking(move || {
                let Some(observer) = observer else { return store.reload(dry_run) };
                // `Finished` is told even if the reload panics.
                struct Finish(Option<ReloadObserver>);
                impl Drop for Finish {
                    fn drop(&mut self) {
                        if let Some(o) = self.0.take() {
                            o(ReloadPhase::Finished { applied: None });
                        }
                    }
                }
                observer(ReloadPhase::Started);
                let mut finish = Finish(Some(observer));
                let res = store.reload(dry_run);
                if let Some(o) = finish.0.take() {
                    o(ReloadPhase::Finished { applied: res.as_ref().ok() });
                }
                res
            })
            .await
            .map_err(|e| ReloadError::Internal(e.to_string()))?
        };
        match &res {
            Ok(r) if r.dry_run => tracing::info!(generation = r.generation, "reload dry run: configuration is valid"),
            Ok(_) => self.schedule_gc(),
            Err(e) => {
                for p in &e.problems {
                    tracing::error!(source = %p.source, subject = %p.subject, "reload refused: {}", p.message);
                }
            }
        }
        Ok(res?)
    }

    /// Checks `resolved`'s wrapper (if it has one) right before it is used,
    /// restoring it from the snapshot when it was changed or removed (see
    /// [`ConfigStore::ensure_wrapper`]). Off the async threads.
    pub async fn ensure_wrapper(&self, resolved: &Resolved) -> Result<Option<WrapperCheck>, String> {
        let Some(w) = resolved.wrapper.clone() else { return Ok(None) };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.ensure_wrapper(&w)).await {
            Ok(Ok(check)) => Ok(Some(check)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("the wrapper check failed: {e}")),
        }
    }

    /// Collects unreferenced wrappers now (what the delayed GC runs).
    /// Returns how many were removed; nothing when the pinned wrappers are
    /// unknown.
    pub async fn collect_now(&self) -> usize {
        collect(&self.store, &self.lock, &self.collected, self.pinned.get().cloned()).await
    }

    fn schedule_gc(&self) {
        let now = Instant::now();
        let mut st = self.gc.lock().unwrap_or_else(|e| e.into_inner());
        st.last_reload = Some(now);
        st.pending_since.get_or_insert(now);
        if st.scheduled {
            return;
        }
        st.scheduled = true;
        drop(st);
        let (store, lock, collected, gc, pinned) =
            (self.store.clone(), self.lock.clone(), self.collected.clone(), self.gc.clone(), self.pinned.clone());
        tokio::spawn(async move {
            loop {
                // Wait for a quiet second (or the maximum delay).
                loop {
                    let due = {
                        let st = gc.lock().unwrap_or_else(|e| e.into_inner());
                        match (st.last_reload, st.pending_since) {
                            (Some(last), Some(first)) => (last + GC_QUIET).min(first + GC_MAX_DELAY),
                            _ => Instant::now(),
                        }
                    };
                    if Instant::now() >= due {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                gc.lock().unwrap_or_else(|e| e.into_inner()).pending_since = None;
                collect(&store, &lock, &collected, pinned.get().cloned()).await;
                // A reload during the GC asks for another round.
                let mut st = gc.lock().unwrap_or_else(|e| e.into_inner());
                if st.pending_since.is_none() {
                    st.scheduled = false;
                    return;
                }
            }
        });
    }

    /// One row per runtime, for operators.
    pub fn inventory(&self) -> Inventory {
        inventory(&self.snapshot())
    }
}

/// Resolves a runtime name on `snap` (empty = the default). Configured names
/// resolve in memory; an implicit shim name searches PATH, which is blocking
/// file-system work, so it runs on a blocking thread.
pub async fn resolve(snap: &Arc<Snapshot>, name: &str) -> crate::error::Result<Resolved> {
    if !snap.runtimes.searches_path(name) {
        return Ok(snap.get(name)?);
    }
    let (snap, name) = (snap.clone(), name.to_string());
    match tokio::task::spawn_blocking(move || snap.get(&name)).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(crate::error::EngineError::Internal(format!("the runtime lookup failed: {e}"))),
    }
}

/// One GC of the wrapper directory, serialized with reloads.
async fn collect(store: &Arc<ConfigStore>, lock: &tokio::sync::Mutex<()>, collected: &Arc<AtomicU64>, pinned: Option<PinnedSource>) -> usize {
    let Some(pinned) = pinned else { return 0 };
    let _guard = lock.lock().await;
    let store = store.clone();
    // The pins are read inside the GC, after it has taken hold of every live
    // snapshot (see `ConfigStore::gc_wrappers`), never before.
    match tokio::task::spawn_blocking(move || store.gc_wrappers(|| pinned())).await {
        Ok(Ok(gc)) => {
            collected.fetch_add(gc.removed.len() as u64, Ordering::Relaxed);
            gc.removed.len()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "wrapper garbage collection failed; will retry after the next reload");
            0
        }
        Err(e) => {
            tracing::warn!(error = %e, "wrapper garbage collection task failed");
            0
        }
    }
}

/// The runtime inventory of one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub generation: u64,
    pub default_runtime: String,
    pub runtimes: Vec<RuntimeRow>,
}

/// One runtime as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeRow {
    pub name: String,
    pub kind: Kind,
    pub shim: String,
    /// The real binary (never only the wrapper).
    pub binary: Option<PathBuf>,
    pub args: Vec<String>,
    pub wrapper: Option<PathBuf>,
    pub version: Option<String>,
    /// A one-line summary of the features JSON, or "features unknown".
    pub features: String,
    pub available: bool,
    /// Why the runtime is unavailable, if it is.
    pub reason: Option<String>,
    /// Where it was defined: a file, a flag, or "built-in".
    pub source: String,
    pub default: bool,
    /// Running containers started with it (filled in by the engine).
    pub containers_running: usize,
}

/// Builds the inventory of a snapshot.
pub fn inventory(snap: &Snapshot) -> Inventory {
    let runtimes = snap
        .runtimes
        .runtimes
        .values()
        .map(|rt| RuntimeRow {
            name: rt.name.clone(),
            kind: rt.kind,
            shim: rt.shim.clone(),
            binary: rt.binary.clone(),
            args: rt.args.clone(),
            wrapper: rt.wrapper.as_ref().map(|w| w.path.clone()),
            version: rt.status.version.clone(),
            features: features_summary(rt.status.features.as_deref(), rt.kind),
            available: rt.available(),
            reason: rt.status.unavailable.as_ref().map(|u| u.message().to_string()),
            source: rt.source.to_string(),
            default: rt.name == snap.runtimes.default,
            containers_running: 0,
        })
        .chain(implicit_shims(snap))
        .collect();
    Inventory { generation: snap.generation, default_runtime: snap.runtimes.default.clone(), runtimes }
}

/// containerd shims found on PATH that no runtime names, listed as
/// implicit runtimes (usable by their shim name when implicit shims are allowed).
fn implicit_shims(snap: &Snapshot) -> Vec<RuntimeRow> {
    if !snap.runtimes.allow_implicit_shims {
        return Vec::new();
    }
    let configured: std::collections::HashSet<&str> = snap.runtimes.runtimes.values().map(|r| r.shim.as_str()).collect();
    let mut rows: Vec<RuntimeRow> = Vec::new();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            // containerd-shim-<name>-<version> → io.containerd.<name>.<version>
            let Some(rest) = file.strip_prefix("containerd-shim-") else { continue };
            let Some((name, version)) = rest.rsplit_once('-') else { continue };
            let shim = format!("io.containerd.{name}.{version}");
            if !berth_config::load::valid_runtime_name(&shim) || configured.contains(shim.as_str()) || rows.iter().any(|r| r.name == shim) {
                continue;
            }
            rows.push(RuntimeRow {
                name: shim.clone(),
                kind: Kind::Implicit,
                shim,
                binary: Some(e.path()),
                args: vec![],
                wrapper: None,
                version: None,
                features: "n/a (shim)".into(),
                available: true,
                reason: None,
                source: format!("implicit ({} on PATH)", dir.display()),
                default: false,
                containers_running: 0,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// `oci 1.0.0-1.0.2-dev, cgroup v1+v2, seccomp` — or why it is unknown.
pub fn features_summary(features: Option<&serde_json::Value>, kind: Kind) -> String {
    let Some(f) = features else {
        return if kind == Kind::Shim || kind == Kind::Implicit {
            "n/a (shim)".into()
        } else {
            "features unknown".into()
        };
    };
    let mut parts = Vec::new();
    let min = f.get("ociVersionMin").and_then(|v| v.as_str()).unwrap_or("?");
    let max = f.get("ociVersionMax").and_then(|v| v.as_str()).unwrap_or("?");
    parts.push(format!("oci {min}..{max}"));
    if let Some(cg) = f.pointer("/linux/cgroup") {
        let on: Vec<&str> = ["v1", "v2", "systemd"]
            .into_iter()
            .filter(|k| cg.get(*k).and_then(|v| v.as_bool()) == Some(true))
            .collect();
        if !on.is_empty() {
            parts.push(format!("cgroup {}", on.join("+")));
        }
    }
    if f.pointer("/linux/seccomp/enabled").and_then(|v| v.as_bool()) == Some(true) {
        parts.push("seccomp".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn features_summary_reads_runc_style_json() {
        let f = json!({"ociVersionMin":"1.0.0","ociVersionMax":"1.0.2-dev","linux":{"cgroup":{"v1":true,"v2":true,"systemd":false},"seccomp":{"enabled":true}}});
        assert_eq!(features_summary(Some(&f), Kind::Path), "oci 1.0.0..1.0.2-dev, cgroup v1+v2, seccomp");
        assert_eq!(features_summary(None, Kind::Path), "features unknown");
    }

    /// A service over a config file holding `config` in a temp dir; returns
    /// the dir (keep it alive), the config file and the service.
    fn service(config: &str) -> (tempfile::TempDir, PathBuf, RuntimeService) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(&cfg, config).unwrap();
        let flags = berth_config::Flags {
            config_file: Some(cfg.clone()),
            exec_root: Some(dir.path().join("exec")),
            data_root: Some(dir.path().join("data")),
            ..Default::default()
        };
        let svc = RuntimeService::new(Arc::new(ConfigStore::open(flags).unwrap()));
        (dir, cfg, svc)
    }

    #[tokio::test]
    async fn reload_reports_and_refuses() {
        let (_dir, cfg, svc) = service("{}");
        std::fs::write(&cfg, r#"{"runtimes":{"w":{"path":"/bin/true","runtimeArgs":["a"]}}}"#).unwrap();
        let r = svc.reload(false).await.unwrap();
        assert_eq!(r.added, vec!["w"]);
        let inv = svc.inventory();
        let w = inv.runtimes.iter().find(|r| r.name == "w").unwrap();
        assert_eq!(w.binary.as_deref(), Some(std::path::Path::new("/bin/true")));
        assert!(w.wrapper.is_some());
        std::fs::write(&cfg, r#"{"runtimes":{"w":{}}}"#).unwrap();
        assert!(matches!(svc.reload(false).await, Err(ReloadError::Invalid(_))));
        assert_eq!(svc.snapshot().generation, 2);
    }

    /// Every reload that may change the configuration is told to the
    /// observer, started then finished, whether applied or refused; dry
    /// runs are not.
    #[tokio::test]
    async fn the_observer_sees_every_reload_but_dry_runs() {
        let (_dir, cfg, svc) = service("{}");
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        svc.set_reload_observer(Arc::new(move |phase| {
            let entry = match phase {
                ReloadPhase::Started => "started".to_string(),
                ReloadPhase::Finished { applied: Some(r) } => format!("applied {}", r.generation),
                ReloadPhase::Finished { applied: None } => "refused".to_string(),
            };
            log.lock().unwrap().push(entry);
        }));
        svc.reload(false).await.unwrap();
        svc.reload(true).await.unwrap();
        std::fs::write(&cfg, "{,").unwrap();
        assert!(svc.reload(false).await.is_err());
        assert_eq!(*seen.lock().unwrap(), ["started", "applied 2", "started", "refused"]);
    }

    #[tokio::test]
    async fn wrappers_are_collected_after_a_quiet_second() {
        let with_args = |a: &str| format!(r#"{{"runtimes":{{"w":{{"path":"/bin/true","runtimeArgs":["{a}"]}}}}}}"#);
        let (_dir, cfg, svc) = service(&with_args("a"));
        let wrapper = |s: &RuntimeService| s.snapshot().runtimes.runtimes["w"].wrapper.as_ref().unwrap().path.clone();
        let first = wrapper(&svc);
        // Without a pinned source nothing is ever collected.
        std::fs::write(&cfg, with_args("b")).unwrap();
        svc.reload(false).await.unwrap();
        assert_eq!(svc.collect_now().await, 0);
        assert!(first.exists());
        svc.set_pinned_source(Arc::new(|| Some(Vec::new())));
        // A storm of reloads flipping between two configs: both wrappers
        // stay until the reloads stop, then the unused one goes.
        for a in ["a", "b", "a", "b", "a"] {
            std::fs::write(&cfg, with_args(a)).unwrap();
            svc.reload(false).await.unwrap();
        }
        std::fs::write(&cfg, with_args("b")).unwrap();
        svc.reload(false).await.unwrap();
        let second = wrapper(&svc);
        assert_ne!(first, second);
        assert!(first.exists() && second.exists(), "nothing collected right after a reload");
        tokio::time::sleep(GC_QUIET + Duration::from_millis(700)).await;
        assert!(!first.exists(), "collected a quiet second later");
        assert!(wrapper(&svc).exists());
        assert!(svc.collected() >= 1);
    }
}
