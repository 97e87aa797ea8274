//! The runtime service: reloads (serialized, off the async threads) and the
//! runtime inventory shown by `berth runtimes` and `GET /berth/v1/runtimes`.

use std::path::PathBuf;
use std::sync::Arc;

use berth_config::{ConfigErrors, ConfigStore, Kind, ReloadReport, Snapshot};
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

/// Owns the live configuration and applies reloads.
pub struct RuntimeService {
    store: Arc<ConfigStore>,
    /// Serializes reloads and GC at the async level too, so a queue of
    /// SIGHUPs and API calls does not pile up blocking threads.
    lock: tokio::sync::Mutex<()>,
    /// Wrappers garbage-collected so far.
    collected: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RuntimeService {
    pub fn new(store: Arc<ConfigStore>) -> Self {
        RuntimeService { store, lock: tokio::sync::Mutex::new(()), collected: Default::default() }
    }

    /// The current snapshot; load it once per operation.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.store.snapshot()
    }

    /// Wrappers garbage-collected by reloads so far.
    pub fn collected(&self) -> u64 {
        self.collected.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.store
    }

    /// Re-reads the configuration and applies it (or only validates and
    /// diffs it, with `dry_run`). All or nothing. After a successful reload,
    /// wrappers nothing references any more are garbage-collected; `pinned`
    /// gives the wrappers container records still use.
    pub async fn reload(&self, dry_run: bool, pinned: Vec<PathBuf>) -> Result<ReloadReport, ReloadError> {
        let _guard = self.lock.lock().await;
        let store = self.store.clone();
        let collected = self.collected.clone();
        let res = tokio::task::spawn_blocking(move || {
            let report = store.reload(dry_run)?;
            if !dry_run {
                match store.gc_wrappers(pinned) {
                    Ok(gc) => {
                        collected.fetch_add(gc.removed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "wrapper garbage collection failed; will retry at the next reload"),
                }
            }
            Ok::<_, ConfigErrors>(report)
        })
        .await
        .map_err(|e| ReloadError::Internal(e.to_string()))?;
        match &res {
            Ok(r) if r.dry_run => tracing::info!(generation = r.generation, "reload dry run: configuration is valid"),
            Ok(_) => {}
            Err(e) => {
                for p in &e.problems {
                    tracing::error!(source = %p.source, subject = %p.subject, "reload refused: {}", p.message);
                }
            }
        }
        Ok(res?)
    }

    /// One row per runtime, for operators.
    pub fn inventory(&self) -> Inventory {
        inventory(&self.snapshot())
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
            if configured.contains(shim.as_str()) || rows.iter().any(|r| r.name == shim) {
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

    #[tokio::test]
    async fn reload_reports_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(&cfg, "{}").unwrap();
        let flags = berth_config::Flags {
            config_file: Some(cfg.clone()),
            exec_root: Some(dir.path().join("exec")),
            data_root: Some(dir.path().join("data")),
            ..Default::default()
        };
        let svc = RuntimeService::new(Arc::new(ConfigStore::open(flags).unwrap()));
        std::fs::write(&cfg, r#"{"runtimes":{"w":{"path":"/bin/true","runtimeArgs":["a"]}}}"#).unwrap();
        let r = svc.reload(false, vec![]).await.unwrap();
        assert_eq!(r.added, vec!["w"]);
        let inv = svc.inventory();
        let w = inv.runtimes.iter().find(|r| r.name == "w").unwrap();
        assert_eq!(w.binary.as_deref(), Some(std::path::Path::new("/bin/true")));
        assert!(w.wrapper.is_some());
        std::fs::write(&cfg, r#"{"runtimes":{"w":{}}}"#).unwrap();
        assert!(matches!(svc.reload(false, vec![]).await, Err(ReloadError::Invalid(_))));
        assert_eq!(svc.snapshot().generation, 2);
    }
}
