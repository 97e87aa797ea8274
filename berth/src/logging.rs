//! Logging: `tracing` to stderr, one line per event; the level follows the
//! config (`debug`, `log-level`) and changes on reload.

use berth_config::EffectiveConfig;
use tracing_subscriber::{fmt, prelude::*, reload, EnvFilter, Registry};

/// Lets the daemon change the log level after a reload.
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
}

/// Installs the subscriber. `RUST_LOG`, when set, overrides the config.
pub fn init() -> LogHandle {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry().with(layer).with(fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))).init();
    LogHandle { handle }
}

impl LogHandle {
    /// Applies the level of `cfg` (unless `RUST_LOG` is set).
    pub fn apply(&self, cfg: &EffectiveConfig) {
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        let level = if cfg.debug {
            "debug"
        } else {
            match cfg.log_level.as_str() {
                "fatal" => "error",
                other => other,
            }
        };
        let _ = self.handle.modify(|f| *f = EnvFilter::new(level));
    }
}
