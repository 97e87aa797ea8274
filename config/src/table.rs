//! The runtime table: every runtime name resolved to what containerd needs.
//!
//! [`derive`] turns an [`EffectiveConfig`] into a [`RuntimeTable`] without
//! touching the disk except to probe binaries (through the cache); the
//! wrappers it plans are written by the caller ([`crate::ConfigStore`]) only
//! when the table is published. [`RuntimeTable::get`] is the one lookup every
//! container start goes through.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::network::GvisorNetwork;
use crate::load::{permissible_shim_name, valid_runtime_name, EffectiveConfig, RuntimeDef, DEFAULT_RUNTIME, STOCK_RUNTIMES};
use crate::options::{RuncOptions, ShimOptions, RUNC_SHIM};
use crate::probe::{self, ProbeCache, ProbeKey, ProbeResult, Unavailable};
use crate::source::{Problem, Source};
use crate::wrapper::Wrapper;

/// How a runtime came to be in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Built in (`runc`, `io.containerd.runc.v2`).
    Stock,
    /// A `path` runtime: a runc-compatible binary under the runc shim.
    Path,
    /// A `runtimeType` runtime: a containerd shim.
    Shim,
    /// Not configured: a containerd shim name found on PATH.
    Implicit,
}

/// One resolved runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    pub name: String,
    pub kind: Kind,
    /// The containerd shim (`io.containerd.runc.v2`, `io.containerd.runsc.v1`, or a shim path).
    pub shim: String,
    /// Typed options for the shim. For runc-type runtimes: `BinaryName`
    /// (the binary or its wrapper) and `Root` (a state dir of its own).
    pub options: ShimOptions,
    /// The real binary that runs containers (the OCI runtime for runc-type
    /// runtimes, the shim binary otherwise); absolute once found.
    pub binary: Option<PathBuf>,
    /// Arguments put before the shim's (path runtimes only).
    pub args: Vec<String>,
    /// The wrapper script, for path runtimes with args.
    pub wrapper: Option<Wrapper>,
    /// What the user configured (None for stock and implicit runtimes).
    pub definition: Option<RuntimeDef>,
    pub source: Source,
    /// Probe results: availability, version, features.
    pub status: Status,
    /// Set when the runtime is gVisor: its `--network` flag limits the
    /// network modes its containers may ask for (see [`crate::network`]).
    pub gvisor_network: Option<GvisorNetwork>,
    /// Set when the runtime is gVisor without `--oci-seccomp`: runsc then
    /// ignores the containers' seccomp filters (its sandbox confines them).
    pub ignores_seccomp: bool,
}

/// What berth knows about a runtime's binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `None` when available; otherwise why not.
    pub unavailable: Option<Unavailable>,
    pub version: Option<String>,
    /// Shared with the probe cache: 100 runtimes on one binary hold one copy.
    pub features: Option<Arc<serde_json::Value>>,
    pub notes: Vec<String>,
}

impl From<&ProbeResult> for Status {
    fn from(r: &ProbeResult) -> Self {
        Status {
            unavailable: r.availability.clone().err(),
            version: r.version.clone(),
            features: r.features.clone(),
            notes: r.notes.clone(),
        }
    }
}

impl Runtime {
    pub fn available(&self) -> bool {
        self.status.unavailable.is_none()
    }

    /// Whether a container with `HostConfig.NetworkMode` = `mode` can run on
    /// this runtime; the error says what to do instead.
    pub fn check_network_mode(&self, mode: &str) -> Result<(), String> {
        match &self.gvisor_network {
            Some(g) => g.check(&self.name, mode),
            None => Ok(()),
        }
    }

    /// Whether a container with these PID, IPC and UTS namespace modes can
    /// run on this runtime: gVisor's sandbox has namespaces of its own and
    /// cannot join the host's or another container's (runsc would run it
    /// in private ones without a word), so those are refused.
    pub fn check_namespace_modes(&self, pid: &str, ipc: &str, uts: &str) -> Result<(), String> {
        if self.gvisor_network.is_none() {
            return Ok(());
        }
        let joins = |m: &str| m == "host" || m.starts_with("container:");
        for (what, mode) in [("PID", pid), ("IPC", ipc), ("UTS", uts)] {
            if joins(mode) {
                return Err(format!(
                    "runtime {} runs gVisor, whose sandbox cannot share the {what} namespace of the host or of another container ({what} mode {mode}); use another runtime for this container",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Whether a container that asked for a seccomp profile of its own
    /// (`--security-opt seccomp=FILE`) can have it on this runtime.
    pub fn check_custom_seccomp(&self) -> Result<(), String> {
        if self.ignores_seccomp {
            return Err(format!(
                "runtime {} runs gVisor without --oci-seccomp, which ignores the container's seccomp profile; add \
                 \"--oci-seccomp\" to the runtime's runtimeArgs, or run the container without --security-opt seccomp=...",
                self.name
            ));
        }
        Ok(())
    }
}

/// The derived, immutable runtime table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeTable {
    /// The effective default runtime name.
    pub default: String,
    pub runtimes: BTreeMap<String, Arc<Runtime>>,
    pub allow_implicit_shims: bool,
}

/// A successful lookup. It holds the snapshot it came from, so everything the
/// runtime references (its wrapper above all) stays live while it is held:
/// keep it until the resolution is pinned in the container record.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub snapshot: Arc<crate::Snapshot>,
    pub runtime: Arc<Runtime>,
}

impl Resolved {
    /// The generation of the snapshot this resolution came from.
    pub fn generation(&self) -> u64 {
        self.snapshot.generation
    }
}

impl std::ops::Deref for Resolved {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

/// Why a runtime name cannot be used to start a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not configured and not an installed shim. (HTTP 400 at create/start.)
    #[error("unknown or invalid runtime name: {name}; valid runtimes are: {}", valid.join(", "))]
    Unknown { name: String, valid: Vec<String> },
    /// Configured, but its binary is missing or not executable. The message
    /// keeps the phrases (`no such file or directory`, `executable file not
    /// found`, `permission denied`) that the docker CLI maps to exit 127/126.
    #[error("runtime {name} is unavailable: {}", reason.message())]
    Unavailable { name: String, binary: String, reason: Unavailable },
}

impl ResolveError {
    /// The container exit code class of this error (design §5).
    pub fn exit_code(&self) -> i32 {
        match self {
            ResolveError::Unknown { .. } => 125,
            ResolveError::Unavailable { reason: Unavailable::NotFound(_), .. } => 127,
            ResolveError::Unavailable { reason: Unavailable::NotExecutable(_), .. } => 126,
        }
    }
}

impl RuntimeTable {
    /// Resolves a runtime name: empty = the default; then an exact match;
    /// then an implicit containerd shim name, only if implicit shims are
    /// allowed and its `containerd-shim-*` binary is on PATH.
    ///
    /// Names outside `[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}` (the rule for
    /// configured names) are unknown, so no control character or huge string
    /// from a client reaches a log line, an event or a metric label; the
    /// error shows such a name escaped and cut short unless it is short
    /// printable ASCII.
    ///
    /// An implicit shim name searches PATH: callers on async threads check
    /// [`searches_path`](Self::searches_path) and run those lookups on a
    /// blocking thread.
    pub fn lookup(&self, name: &str) -> Result<Arc<Runtime>, ResolveError> {
        let name = if name.is_empty() { self.default.as_str() } else { name };
        if !valid_runtime_name(name) {
            return Err(ResolveError::Unknown { name: shown(name), valid: self.runtimes.keys().cloned().collect() });
        }
        if let Some(rt) = self.runtimes.get(name) {
            if let Some(reason) = &rt.status.unavailable {
                return Err(ResolveError::Unavailable {
                    name: name.to_string(),
                    binary: rt.binary.as_ref().map(|b| b.display().to_string()).unwrap_or_default(),
                    reason: reason.clone(),
                });
            }
            return Ok(rt.clone());
        }
        if self.searches_path(name) {
            if let Ok(binary) = probe::lookup(&shim_binary_name(name)) {
                return Ok(Arc::new(implicit(name, binary)));
            }
        }
        Err(ResolveError::Unknown { name: name.to_string(), valid: self.runtimes.keys().cloned().collect() })
    }

    /// Whether [`lookup`](Self::lookup) of `name` would search PATH for an
    /// implicit shim (blocking file-system work); false for the default and
    /// configured names, which resolve in memory.
    pub fn searches_path(&self, name: &str) -> bool {
        !name.is_empty()
            && self.allow_implicit_shims
            && !self.runtimes.contains_key(name)
            && valid_runtime_name(name)
            && permissible_shim_name(name)
    }
}

/// A refused runtime name as an error shows it: as is when it is short
/// printable ASCII (as dockerd shows it), otherwise cut to 64 characters
/// with control and non-ASCII characters escaped (`\n`, `\u{..}`).
fn shown(name: &str) -> String {
    if name.len() <= 128 && name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return name.to_string();
    }
    let cut: String = name.chars().take(64).collect();
    let more = if cut.len() < name.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_default())
}

/// containerd's shim binary for a shim name: the last two dot-separated
/// parts, `io.containerd.runsc.v1` → `containerd-shim-runsc-v1`.
pub fn shim_binary_name(shim: &str) -> String {
    let mut parts = shim.rsplit('.');
    let version = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    format!("containerd-shim-{name}-{version}")
}

fn implicit(name: &str, binary: PathBuf) -> Runtime {
    Runtime {
        name: name.to_string(),
        kind: Kind::Implicit,
        shim: name.to_string(),
        options: ShimOptions::None,
        binary: Some(binary),
        args: vec![],
        wrapper: None,
        definition: None,
        source: Source::Builtin,
        status: Status { unavailable: None, version: None, features: None, notes: vec![] },
        gvisor_network: None,
        ignores_seccomp: false,
    }
}

/// A planned runtime before probing.
struct Plan {
    name: String,
    kind: Kind,
    shim: String,
    options: ShimOptions,
    /// What to probe, if anything.
    probe: Option<ProbeKey>,
    args: Vec<String>,
    wrapper: Option<Wrapper>,
    definition: Option<RuntimeDef>,
    source: Source,
}

/// Derives the runtime table from a config. Probes binaries through `cache`.
/// Fails (with every problem) if the default runtime does not exist or is
/// unavailable; other unavailable runtimes are kept and marked.
pub fn derive(cfg: &EffectiveConfig, cache: &ProbeCache) -> Result<RuntimeTable, Vec<Problem>> {
    let table = derive_unchecked(cfg, cache);
    match default_problem(cfg, &table) {
        None => Ok(table),
        Some(p) => Err(vec![p]),
    }
}

/// [`derive`] without the check of the default runtime (see
/// [`default_problem`]): for a config that has problems of its own, whose
/// table is only derived to find the rest.
pub fn derive_unchecked(cfg: &EffectiveConfig, cache: &ProbeCache) -> RuntimeTable {
    let wrapper_dir = cfg.wrapper_dir();
    let runc_options = |name: &str, binary_name: String| {
        ShimOptions::Runc(RuncOptions {
            binary_name,
            root: cfg.runtime_state_root(name).display().to_string(),
            ..Default::default()
        })
    };
    // Many runtimes often share one binary: look each path up once.
    let mut looked_up: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut lookup = |path: &str| -> String {
        looked_up
            .entry(path.to_string())
            .or_insert_with(|| probe::lookup(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string()))
            .clone()
    };
    let mut plans = Vec::new();
    for name in STOCK_RUNTIMES {
        let binary = lookup("runc");
        plans.push(Plan {
            name: name.into(),
            kind: Kind::Stock,
            shim: RUNC_SHIM.into(),
            options: runc_options(name, binary.clone()),
            probe: Some(ProbeKey { binary, run: true }),
            args: vec![],
            wrapper: None,
            definition: None,
            source: Source::Builtin,
        });
    }
    for (name, rc) in &cfg.runtimes {
        let plan = match &rc.def {
            RuntimeDef::Path { path, args } => {
                let resolved = lookup(path);
                // The wrapper execs the binary the probe checked (absolute
                // once found), not the configured name: a bare name would be
                // looked up again in the shim's PATH, maybe finding another.
                let wrapper = (!args.is_empty()).then(|| Wrapper::plan(&wrapper_dir, name, &resolved, args));
                let binary_name = wrapper.as_ref().map(|w| w.path.display().to_string()).unwrap_or_else(|| resolved.clone());
                Plan {
                    name: name.clone(),
                    kind: Kind::Path,
                    shim: RUNC_SHIM.into(),
                    options: runc_options(name, binary_name),
                    probe: Some(ProbeKey { binary: resolved, run: true }),
                    args: args.clone(),
                    wrapper,
                    definition: Some(rc.def.clone()),
                    source: rc.source.clone(),
                }
            }
            RuntimeDef::Shim { runtime_type, options } => {
                let (options, probe) = match options {
                    // A runc-type shim: give it a state root of its own unless
                    // the user chose one; probe the OCI runtime it will run.
                    _ if runtime_type == RUNC_SHIM => {
                        let mut o = match options {
                            ShimOptions::Runc(o) => o.clone(),
                            _ => RuncOptions::default(),
                        };
                        if o.root.is_empty() {
                            o.root = cfg.runtime_state_root(name).display().to_string();
                        }
                        let bin = if o.binary_name.is_empty() { "runc".to_string() } else { o.binary_name.clone() };
                        (ShimOptions::Runc(o), ProbeKey { binary: bin, run: true })
                    }
                    other => {
                        let bin = if runtime_type.starts_with('/') { runtime_type.clone() } else { shim_binary_name(runtime_type) };
                        (other.clone(), ProbeKey { binary: bin, run: false })
                    }
                };
                Plan {
                    name: name.clone(),
                    kind: Kind::Shim,
                    shim: runtime_type.clone(),
                    options,
                    probe: Some(probe),
                    args: vec![],
                    wrapper: None,
                    definition: Some(rc.def.clone()),
                    source: rc.source.clone(),
                }
            }
        };
        plans.push(plan);
    }

    let keys: Vec<ProbeKey> = plans.iter().filter_map(|p| p.probe.clone()).collect();
    let mut results = cache.probe_all(&keys).into_iter();
    let mut runtimes = BTreeMap::new();
    for plan in plans {
        let status = plan.probe.as_ref().map(|_| results.next().expect("one result per key"));
        let (binary, status) = match status {
            Some(r) => (Some(r.binary.clone()), Status::from(&r)),
            None => (None, Status { unavailable: None, version: None, features: None, notes: vec![] }),
        };
        // Only runc-type runtimes run an OCI binary berth knows flags of.
        let gvisor_network = (plan.shim == RUNC_SHIM)
            .then(|| crate::network::gvisor_network(binary.as_deref(), status.version.as_deref(), &plan.args))
            .flatten();
        let ignores_seccomp = gvisor_network.is_some() && !crate::network::gvisor_applies_oci_seccomp(&plan.args);
        let rt = Runtime {
            name: plan.name.clone(),
            kind: plan.kind,
            shim: plan.shim,
            options: plan.options,
            binary,
            args: plan.args,
            wrapper: plan.wrapper,
            definition: plan.definition,
            source: plan.source,
            status,
            gvisor_network,
            ignores_seccomp,
        };
        runtimes.insert(plan.name, Arc::new(rt));
    }

    RuntimeTable {
        default: if cfg.default_runtime.is_empty() { DEFAULT_RUNTIME.into() } else { cfg.default_runtime.clone() },
        runtimes,
        allow_implicit_shims: cfg.allow_implicit_shims,
    }
}

/// Why `table`'s default runtime cannot be used, if it cannot: it does not
/// exist, or its binary is unavailable.
pub fn default_problem(cfg: &EffectiveConfig, table: &RuntimeTable) -> Option<Problem> {
    let src = &cfg.default_runtime_source;
    match table.lookup("") {
        Ok(_) => None,
        Err(ResolveError::Unknown { name, valid }) => Some(Problem::new(
            src,
            "default-runtime",
            format!(
                "specified default runtime '{name}' does not exist; configure it under \"runtimes\" or choose one of: {}",
                valid.join(", ")
            ),
        )),
        Err(ResolveError::Unavailable { name, reason, .. }) => {
            let src = table.runtimes.get(&name).map(|r| r.source.clone()).unwrap_or_else(|| src.clone());
            Some(Problem::new(
                &src,
                "default-runtime",
                format!(
                    "the default runtime '{name}' is unavailable: {}; install it or choose another default-runtime",
                    reason.message()
                ),
            ))
        }
    }
}
