//! The engine's error type. Each variant is a *kind* the API maps to one
//! HTTP status; the message says what was wrong and what to do.

use berth_config::ResolveError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400: a runtime name that does not resolve (its own kind, so that
    /// metrics and exit codes classify it without reading the message).
    #[error("{0}")]
    UnknownRuntime(String),
    /// 304: the operation had nothing to do (start of a running container).
    #[error("not modified")]
    NotModified,
    /// A container failed to start. `exit_code` is 126/127/128 by kind
    /// (not executable / not found / other); the API answers 400 for
    /// 126/127 (the CLI then exits with the same code) and 500 otherwise.
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
    /// 501: the operation does not exist for this object (e.g. `logs` of a
    /// container whose log driver keeps no log).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: containerd is not reachable.
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl From<berth_store::StoreError> for EngineError {
    fn from(e: berth_store::StoreError) -> Self {
        use berth_store::StoreError as S;
        match e {
            S::NotFound(_) => EngineError::NotFound(e.to_string()),
            S::NameConflict { .. } | S::IdConflict(_) => EngineError::Conflict(e.to_string()),
            S::InvalidName(_) | S::AmbiguousPrefix(_) | S::InvalidId(_) => EngineError::InvalidParameter(e.to_string()),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<berth_containerd::Error> for EngineError {
    fn from(e: berth_containerd::Error) -> Self {
        if e.is_not_found() {
            EngineError::NotFound(e.to_string())
        } else if e.is_already_exists() {
            EngineError::Conflict(e.to_string())
        } else if e.is_unavailable() {
            EngineError::Unavailable(format!("containerd is unavailable: {e}; berth reconnects when it is back"))
        } else if let Some(f) = e.runtime_failure() {
            EngineError::Start { message: e.to_string(), exit_code: f.exit_code() }
        } else {
            EngineError::Internal(e.to_string())
        }
    }
}

impl From<ResolveError> for EngineError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Unknown { .. } => EngineError::UnknownRuntime(e.to_string()),
            ResolveError::Unavailable { .. } => EngineError::Start { exit_code: e.exit_code(), message: e.to_string() },
        }
    }
}

impl From<crate::containers::validate::CreateError> for EngineError {
    fn from(e: crate::containers::validate::CreateError) -> Self {
        EngineError::InvalidParameter(e.to_string())
    }
}

impl From<crate::spec::SpecError> for EngineError {
    fn from(e: crate::spec::SpecError) -> Self {
        EngineError::InvalidParameter(e.to_string())
    }
}
