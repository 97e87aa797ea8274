//! # berth-config: configuration and the runtime layer
//!
//! Pure core of berth: it parses `daemon.json`, the `runtimes.d/*.json`
//! drop-ins and the flags into one effective config ([`load`]), validates it
//! reporting every problem at once ([`ConfigErrors`]), derives the runtime
//! table ([`table`]), writes content-addressed wrapper scripts ([`wrapper`]),
//! probes runtime binaries ([`probe`]), knows the network limits of gVisor
//! ([`network`]) and publishes immutable
//! [`Snapshot`]s that reloads replace whole ([`ConfigStore`]).
//!
//! It knows nothing of HTTP or containerd. Start reading at [`ConfigStore`].

pub mod execopts;
pub mod export;
pub mod load;
pub mod logconfig;
pub mod netconfig;
pub mod network;
pub mod options;
pub mod probe;
pub mod source;
mod store;
pub mod table;
pub mod wrapper;

pub use execopts::{CgroupDriver, ExecOpts};
pub use load::{EffectiveConfig, Flags, RuntimeConfig, RuntimeDef, SeccompProfileSetting};
pub use logconfig::{LogConfig, LogConfigError, LogDriver, LogSettings};
pub use options::{GenericOptions, RuncOptions, ShimOptions};
pub use source::{ConfigErrors, Problem, Source};
pub use store::{check, Changed, ConfigStore, DefaultChange, GcReport, LogDefaultsChange, ReloadReport, Snapshot, UnavailableRuntime, WrapperCheck};
pub use table::{Kind, Resolved, ResolveError, Runtime, RuntimeTable};
