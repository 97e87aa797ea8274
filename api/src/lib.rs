#![recursion_limit = "256"]
//! # berth-api
//!
//! Translates HTTP to engine calls and engine errors to Docker's status codes
//! and `{"message": ...}` bodies. Holds no state of its own and makes no
//! decisions. Docker wire types live here and nowhere else.
//!
//! - [`router`]: every route; [`version`] strips `/v1.xx` prefixes first.
//! - [`error`]: the one place engine errors become HTTP statuses.
//! - [`listen`]: unix sockets (mode 0660, group `docker` when it exists).
//! - [`serve`]: HTTP/1.1 on a listener with header/idle timeouts and a connection cap.

pub mod docker;
pub mod error;
pub mod listen;
mod routes;
pub mod serve;
pub mod version;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

pub use routes::router;

/// Everything the handlers can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: berth_engine::Engine,
    pub daemon: Arc<DaemonInfo>,
}

/// Facts about the daemon shown by `/info` and `/version`.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    /// A stable id for this daemon's data root.
    pub id: String,
    /// Host name.
    pub name: String,
    pub data_root: PathBuf,
    pub started: SystemTime,
    /// containerd's version, and whether berth manages it.
    pub containerd_version: String,
    pub containerd_managed: bool,
    pub snapshotter: String,
}

/// The API version berth speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";
