//! # berth-api
//!
//! Translates HTTP to engine calls and engine errors to Docker's status codes
//! and `{"message": ...}` bodies. Holds no state of its own and makes no
//! decisions. Docker wire types live here and nowhere else.
//!
//! - [`router`]: every route; [`version`] strips `/v1.xx` prefixes first.
//! - [`error`]: the one place engine errors become HTTP statuses.
//! - [`listen`]: unix sockets (mode 0660, group `docker` when it exists).

pub mod docker;
pub mod error;
pub mod listen;
mod routes;
pub mod version;

use std::sync::Arc;

pub use routes::router;

/// Everything the handlers can reach.
#[derive(Clone)]
pub struct AppState {
    pub runtimes: Arc<berth_engine::runtimes::RuntimeService>,
    /// Wrapper paths pinned by container records, for GC after a reload.
    /// (Empty until containers land; the engine will provide them.)
    pub pinned_wrappers: Arc<dyn Fn() -> Vec<std::path::PathBuf> + Send + Sync>,
}

/// The API version berth speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";
