//! The live configuration: an immutable [`Snapshot`] behind one atomic
//! pointer, replaced whole by [`ConfigStore::reload`].
//!
//! Invariants:
//! - A published snapshot is never mutated. Readers load it once per
//!   operation ([`ConfigStore::snapshot`]) and see config and runtime table as
//!   a consistent pair.
//! - Reloads and wrapper GC are serialized by one mutex, never held across
//!   an `.await` (this crate is synchronous; the daemon calls it from a
//!   blocking task).
//! - Every wrapper referenced by the current snapshot, by any snapshot still
//!   alive somewhere (held by an operation in flight), or by a pinned
//!   container record exists on disk with exactly its content. GC deletes
//!   only wrapper-named files outside that set; it takes hold of the live
//!   snapshots before it reads the pins (see [`ConfigStore::gc_wrappers`]).
//! - A load reports every problem at once: a broken file does not hide
//!   the default runtime's problem or a changed restart-only key.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::load::{self, EffectiveConfig, Flags, RuntimeDef};
use crate::logconfig::LogConfig;
use crate::probe::ProbeCache;
use crate::source::{ConfigErrors, Problem};
use crate::table::{self, Resolved, ResolveError, RuntimeTable};
use crate::wrapper::{self, DirCheck, Materialized, Wrapper, WrapperError};

/// One generation of the configuration and the runtime table derived from it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub generation: u64,
    pub config: EffectiveConfig,
    pub runtimes: RuntimeTable,
}

impl Snapshot {
    /// Resolves a runtime name on this snapshot (empty = the default).
    pub fn get(self: &Arc<Self>, name: &str) -> Result<Resolved, ResolveError> {
        let runtime = self.runtimes.lookup(name)?;
        Ok(Resolved { snapshot: self.clone(), runtime })
    }

    /// Every wrapper path this snapshot references.
    pub fn wrappers(&self) -> impl Iterator<Item = &PathBuf> {
        self.runtimes.runtimes.values().filter_map(|r| r.wrapper.as_ref().map(|w| &w.path))
    }
}

/// The result of a successful reload (or dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The generation now live (or, for a dry run, the one it would be).
    pub generation: u64,
    pub dry_run: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
    pub default_runtime: DefaultChange,
    /// Runtimes that are configured but cannot be used now, with the reason.
    pub unavailable: Vec<UnavailableRuntime>,
    /// Every runtime name of the new generation, sorted.
    pub runtimes: Vec<String>,
    /// Wrappers whose file had been modified and was restored.
    pub repaired_wrappers: Vec<PathBuf>,
    /// The default log driver/options changed: they apply to containers
    /// created from now on (existing ones keep theirs, as in dockerd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_defaults: Option<LogDefaultsChange>,
    /// Microseconds from reading the files to the new generation being live
    /// (for a dry run: to the diff being ready). Wrapper GC comes after.
    pub apply_us: u64,
}

impl ReloadReport {
    pub fn is_noop(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.default_runtime.old == self.default_runtime.new
            && self.log_defaults.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub name: String,
    pub old: RuntimeDef,
    pub new: RuntimeDef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultChange {
    pub old: String,
    pub new: String,
}

/// Old and new daemon log defaults (`log-driver`, `log-opts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogDefaultsChange {
    pub old: LogConfig,
    pub new: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnavailableRuntime {
    pub name: String,
    pub reason: String,
}

/// What [`ConfigStore::ensure_wrapper`] found before a wrapper was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapperCheck {
    /// `Written`: the file was missing; `Repaired`: it had been changed.
    pub file: Materialized,
    pub dir: DirCheck,
}

impl WrapperCheck {
    /// Whether the file and its directory were found as berth left them.
    pub fn intact(&self) -> bool {
        self.file == Materialized::Verified && self.dir == DirCheck::Ok
    }
}

/// What a wrapper GC did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub removed: Vec<PathBuf>,
    pub kept: usize,
}

/// Keys that a reload cannot change.
const RESTART_ONLY: &str = "it cannot change while berth runs: restart berth to apply it (nothing was reloaded)";

struct State {
    /// Every snapshot published so far that may still be alive.
    published: Vec<Weak<Snapshot>>,
}

/// Owner of the live configuration.
pub struct ConfigStore {
    flags: Flags,
    current: ArcSwap<Snapshot>,
    state: Mutex<State>,
    cache: ProbeCache,
    /// Test builds: runs inside [`ConfigStore::gc_wrappers`] between its two
    /// reads, to force interleavings with container starts.
    #[cfg(test)]
    gc_hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ConfigStore {
    /// Loads, validates and derives generation 1, writing its wrappers.
    pub fn open(flags: Flags) -> Result<ConfigStore, ConfigErrors> {
        let cache = ProbeCache::new();
        let (config, runtimes) = build(&flags, &cache, None)?;
        let snapshot = Snapshot { generation: 1, config, runtimes };
        materialize(&snapshot, &mut Vec::new())?;
        let snapshot = Arc::new(snapshot);
        Ok(ConfigStore {
            flags,
            state: Mutex::new(State { published: vec![Arc::downgrade(&snapshot)] }),
            current: ArcSwap::new(snapshot),
            cache,
            #[cfg(test)]
            gc_hook: Mutex::new(None),
        })
    }

    /// The current snapshot. Load it once per operation and pass it down.
    #[inline]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The flags the daemon was started with (re-applied on every reload).
    pub fn flags(&self) -> &Flags {
        &self.flags
    }

    /// Re-reads the config file and drop-ins, validates, derives and, unless
    /// `dry_run`, publishes the result. All or nothing: on error nothing
    /// changes (wrappers written for the failed attempt are removed).
    pub fn reload(&self, dry_run: bool) -> Result<ReloadReport, ConfigErrors> {
        let _state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        let old = self.current.load_full();
        let (config, runtimes) = build(&self.flags, &self.cache, Some(&old.config))?;
        let generation = old.generation + 1;
        let new = Snapshot { generation, config, runtimes };
        let mut report = diff(&old, &new, dry_run);
        if dry_run {
            report.apply_us = started.elapsed().as_micros() as u64;
            return Ok(report);
        }
        report.repaired_wrappers = materialize(&new, &mut Vec::new())?;
        let new = Arc::new(new);
        let mut state = _state;
        state.published.retain(|w| w.strong_count() > 0);
        state.published.push(Arc::downgrade(&new));
        self.current.store(new);
        drop(state);
        report.apply_us = started.elapsed().as_micros() as u64;
        tracing::info!(
            generation,
            added = ?report.added,
            removed = ?report.removed,
            changed = ?report.changed.iter().map(|c| &c.name).collect::<Vec<_>>(),
            default_runtime = %report.default_runtime.new,
            apply_us = report.apply_us,
            "configuration reloaded"
        );
        Ok(report)
    }

    /// Checks a wrapper right before it is used (every container start):
    /// its directory must be berth's own ([`wrapper::ensure_dir`]: refused
    /// otherwise, a loose mode is fixed) and the file must still be exactly
    /// `w` (regular file, mode, owner, content by its digest). A missing or
    /// changed file is restored from `w`, under the lock the GC and reloads
    /// take, so its temp file cannot be collected halfway. Blocking I/O
    /// (one `lstat` and a read of a few hundred bytes when intact).
    pub fn ensure_wrapper(&self, w: &Wrapper) -> Result<WrapperCheck, WrapperError> {
        let dir = wrapper::ensure_dir(w.path.parent().expect("wrapper path has a parent"))?;
        if w.verify()? {
            return Ok(WrapperCheck { file: Materialized::Verified, dir });
        }
        let _state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let file = w.materialize_in_dir()?;
        Ok(WrapperCheck { file, dir })
    }

    /// Deletes wrapper files nothing references any more. Live = referenced
    /// by the current snapshot, by any snapshot still held somewhere, or by
    /// the wrappers `pinned` returns (the ones container records pin; `None`
    /// = unknown, then nothing is deleted). Only files named like wrappers
    /// (and leftover temp files) are ever deleted.
    pub fn gc_wrappers<F: FnOnce() -> Option<Vec<PathBuf>>>(&self, pinned: F) -> io::Result<GcReport> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load_full();
        let dir = current.config.wrapper_dir();
        // Order matters. First take hold of every snapshot still alive, then
        // read the pins. A start holds its `Resolved` (and so its snapshot)
        // until its pin is in the record: if it still held it when the
        // snapshots were read, that snapshot is kept; if it had dropped it,
        // its pin was written before, and the pins are read after. Read the
        // other way round, a start could pin and drop in between and lose its
        // wrapper. Reloads cannot publish meanwhile (they take `state`), and
        // a snapshot loaded later is `current`, which is kept.
        state.published.retain(|w| w.strong_count() > 0);
        let alive: Vec<Arc<Snapshot>> = state.published.iter().filter_map(Weak::upgrade).collect();
        #[cfg(test)]
        self.between_gc_reads();
        let Some(pinned) = pinned() else { return Ok(GcReport::default()) };
        let mut live: HashSet<PathBuf> = pinned.into_iter().collect();
        for snap in &alive {
            live.extend(snap.wrappers().cloned());
        }
        live.extend(current.wrappers().cloned());
        let mut report = GcReport::default();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            let ours = wrapper::is_wrapper_name(name) || name.starts_with(wrapper::TEMP_PREFIX);
            if !ours {
                tracing::warn!(file = %path.display(), "foreign file in the wrapper directory; leaving it alone");
                continue;
            }
            if live.contains(&path) {
                report.kept += 1;
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => report.removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        drop(state);
        if !report.removed.is_empty() {
            tracing::info!(removed = report.removed.len(), kept = report.kept, "garbage-collected wrappers");
        }
        Ok(report)
    }
}

#[cfg(test)]
impl ConfigStore {
    /// Runs `f` once, inside the next GC, between its two reads.
    fn set_gc_hook(&self, f: impl FnOnce() + Send + 'static) {
        *self.gc_hook.lock().unwrap() = Some(Box::new(f));
    }

    fn between_gc_reads(&self) {
        let hook = self.gc_hook.lock().unwrap().take();
        if let Some(f) = hook {
            f();
        }
    }
}

/// Loads the effective config and derives its table (no files written).
///
/// Every problem at once: those of the files and flags, the default
/// runtime's, and (given the `live` config, on a reload) the restart-only
/// keys that changed, even when some file is broken. A problem that only
/// follows from another is not reported on its own: a key whose value could
/// not be read is not "changed", a default runtime whose definition has
/// problems is not "missing" (and one that may be in an unreadable file
/// says so).
fn build(flags: &Flags, cache: &ProbeCache, live: Option<&EffectiveConfig>) -> Result<(EffectiveConfig, RuntimeTable), ConfigErrors> {
    let load::Loaded { config, mut problems, gaps } = load::load_all(flags);
    if let Some(live) = live {
        problems.extend(restart_only_changes(live, &config, &gaps));
    }
    let runtimes = table::derive_unchecked(&config, cache);
    if !gaps.broken_runtimes.contains(&runtimes.default) {
        if let Some(mut p) = table::default_problem(&config, &runtimes) {
            if !runtimes.runtimes.contains_key(&runtimes.default) && !gaps.unreadable.is_empty() {
                let files: Vec<String> = gaps.unreadable.iter().map(|s| s.to_string()).collect();
                p.message.push_str(&format!(" (unless it is defined in {}, which could not be read)", files.join(", ")));
            }
            problems.push(p);
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors::new(problems));
    }
    Ok((config, runtimes))
}

/// The keys a reload cannot change that differ between the `live` config
/// and the `new` one (keys whose new value could not be read are skipped).
fn restart_only_changes(live: &EffectiveConfig, new: &EffectiveConfig, gaps: &load::Gaps) -> Vec<Problem> {
    let src = crate::Source::File(new.config_file.clone());
    let pairs = [
        ("data-root", live.data_root.display().to_string(), new.data_root.display().to_string()),
        ("exec-root", live.exec_root.display().to_string(), new.exec_root.display().to_string()),
        ("hosts", live.hosts.join(","), new.hosts.join(",")),
        ("exec-opts", live.exec_opts.describe(), new.exec_opts.describe()),
        ("metrics-addr", format!("{:?}", live.metrics_addr), format!("{:?}", new.metrics_addr)),
        ("containerd", format!("{:?}", live.containerd), format!("{:?}", new.containerd)),
        ("network settings (bridge, bip, default-address-pools, ip, dns, dns-search, dns-opts)", live.network.describe(), new.network.describe()),
    ];
    pairs
        .into_iter()
        .filter(|(key, old, new)| old != new && gaps.known(key))
        .map(|(key, old, new)| Problem::new(&src, key, format!("{key} changed from {old} to {new}; {RESTART_ONLY}")))
        .collect()
}

/// Checks (without writing anything) that a config is valid: what
/// `berth config check` and `berth daemon --validate` run.
pub fn check(flags: &Flags) -> Result<(EffectiveConfig, RuntimeTable), ConfigErrors> {
    build(flags, &ProbeCache::new(), None)
}

/// Writes (or verifies) every wrapper of `snap`. On failure removes the
/// wrappers this call wrote, so a failed load leaves nothing behind.
fn materialize(snap: &Snapshot, written: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>, ConfigErrors> {
    let mut repaired = Vec::new();
    let mut problems = Vec::new();
    let mut dir_ready = false;
    for rt in snap.runtimes.runtimes.values() {
        let Some(w) = &rt.wrapper else { continue };
        if !dir_ready {
            if let Err(e) = wrapper::ensure_dir(&snap.config.wrapper_dir()) {
                return Err(ConfigErrors::new(vec![Problem::new(&rt.source, format!("runtime {}", rt.name), e.to_string())]));
            }
            dir_ready = true;
        }
        match w.materialize_in_dir() {
            Ok(Materialized::Written) => written.push(w.path.clone()),
            Ok(Materialized::Verified) => {}
            Ok(Materialized::Repaired) => repaired.push(w.path.clone()),
            Err(e) => problems.push(Problem::new(&rt.source, format!("runtime {}", rt.name), e.to_string())),
        }
    }
    if !problems.is_empty() {
        for p in written.iter() {
            let _ = fs::remove_file(p);
        }
        return Err(ConfigErrors::new(problems));
    }
    Ok(repaired)
}

fn diff(old: &Snapshot, new: &Snapshot, dry_run: bool) -> ReloadReport {
    fn defs(s: &Snapshot) -> BTreeMap<&String, &RuntimeDef> {
        s.config.runtimes.iter().map(|(k, v)| (k, &v.def)).collect()
    }
    let (o, n) = (defs(old), defs(new));
    let added = n.keys().filter(|k| !o.contains_key(*k)).map(|k| (*k).clone()).collect();
    let removed = o.keys().filter(|k| !n.contains_key(*k)).map(|k| (*k).clone()).collect();
    let changed = n
        .iter()
        .filter_map(|(k, nv)| match o.get(k) {
            Some(ov) if ov != nv => Some(Changed { name: (*k).clone(), old: (*ov).clone(), new: (*nv).clone() }),
            _ => None,
        })
        .collect();
    let unavailable = new
        .runtimes
        .runtimes
        .values()
        .filter_map(|r| {
            r.status.unavailable.as_ref().map(|u| UnavailableRuntime { name: r.name.clone(), reason: u.message().to_string() })
        })
        .collect();
    ReloadReport {
        generation: new.generation,
        dry_run,
        added,
        removed,
        changed,
        default_runtime: DefaultChange { old: old.runtimes.default.clone(), new: new.runtimes.default.clone() },
        unavailable,
        runtimes: new.runtimes.runtimes.keys().cloned().collect(),
        repaired_wrappers: vec![],
        log_defaults: Some(LogDefaultsChange { old: old.config.log_defaults(), new: new.config.log_defaults() })
            .filter(|c| c.old != c.new),
        apply_us: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store over a config whose runtime `w` has wrapper args `a`.
    fn store_with_wrapper(dir: &std::path::Path) -> (PathBuf, ConfigStore) {
        let cfg = dir.join("daemon.json");
        fs::write(&cfg, with_args("a")).unwrap();
        let flags = Flags {
            config_file: Some(cfg.clone()),
            exec_root: Some(dir.join("exec")),
            data_root: Some(dir.join("data")),
            ..Default::default()
        };
        (cfg, ConfigStore::open(flags).unwrap())
    }

    fn with_args(a: &str) -> String {
        format!(r#"{{"runtimes":{{"w":{{"path":"/bin/true","runtimeArgs":["{a}"]}}}}}}"#)
    }

    /// The interleaving that used to lose a wrapper: a start resolved on a
    /// snapshot a reload has since superseded; between the GC's two reads
    /// it writes its pin into the record and drops its `Resolved`. Whichever
    /// of the two the GC reads first, the wrapper must be seen as live.
    #[test]
    fn gc_keeps_a_wrapper_pinned_between_its_two_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, store) = store_with_wrapper(dir.path());
        let resolved = store.snapshot().get("w").unwrap();
        let wrapper = resolved.wrapper.as_ref().unwrap().path.clone();
        fs::write(&cfg, with_args("b")).unwrap();
        store.reload(false).unwrap();
        assert_ne!(store.snapshot().wrappers().next(), Some(&wrapper), "superseded");

        // The container records: the pins starts have written.
        let records: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let (recs, pin) = (records.clone(), wrapper.clone());
        store.set_gc_hook(move || {
            recs.lock().unwrap().push(pin);
            drop(resolved);
        });
        let recs = records.clone();
        let report = store.gc_wrappers(move || Some(recs.lock().unwrap().clone())).unwrap();
        assert!(report.removed.is_empty(), "collected a wrapper in use: {:?}", report.removed);
        assert!(wrapper.exists());

        // Unpinned and unheld, the same wrapper is collected: the GC above
        // could have deleted it.
        let report = store.gc_wrappers(|| Some(Vec::new())).unwrap();
        assert_eq!(report.removed, vec![wrapper.clone()]);
        assert!(!wrapper.exists());
    }

    #[test]
    fn gc_deletes_nothing_when_the_pins_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, store) = store_with_wrapper(dir.path());
        let first = store.snapshot().wrappers().next().unwrap().clone();
        fs::write(&cfg, with_args("b")).unwrap();
        store.reload(false).unwrap();
        assert_eq!(store.gc_wrappers(|| None).unwrap(), GcReport::default());
        assert!(first.exists());
    }

    /// What a start runs before it hands a wrapper to containerd.
    #[test]
    fn ensure_wrapper_restores_a_changed_or_missing_wrapper() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_cfg, store) = store_with_wrapper(dir.path());
        let snap = store.snapshot();
        let w = snap.runtimes.runtimes["w"].wrapper.clone().unwrap();
        let check = store.ensure_wrapper(&w).unwrap();
        assert!(check.intact(), "{check:?}");

        fs::write(&w.path, "#!/bin/sh\nexit 99\n").unwrap();
        let check = store.ensure_wrapper(&w).unwrap();
        assert_eq!(check.file, Materialized::Repaired);
        assert_eq!(fs::read_to_string(&w.path).unwrap(), w.content);

        fs::remove_file(&w.path).unwrap();
        assert_eq!(store.ensure_wrapper(&w).unwrap().file, Materialized::Written);
        assert!(w.verify().unwrap());

        let wdir = w.path.parent().unwrap();
        fs::set_permissions(wdir, fs::Permissions::from_mode(0o777)).unwrap();
        let check = store.ensure_wrapper(&w).unwrap();
        assert_eq!(check, WrapperCheck { file: Materialized::Verified, dir: DirCheck::ModeFixed { was: 0o777 } });
        assert_eq!(fs::metadata(wdir).unwrap().permissions().mode() & 0o7777, wrapper::MODE);
    }
}
