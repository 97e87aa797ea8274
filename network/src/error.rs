//! Errors of the network subsystem. The API maps each kind once to
//! Docker's status codes (not found, conflict, invalid input, internal).

use std::path::PathBuf;

/// What went wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No network by that name or id (dockerd's message).
    #[error("network {0} not found")]
    NotFound(String),
    /// The request is wrong: HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with what exists: HTTP 409 (name taken,
    /// network in use, address in use).
    #[error("{0}")]
    Conflict(String),
    /// A host port cannot be had (dockerd's "port is already allocated").
    #[error("driver failed programming external connectivity on endpoint {endpoint} ({endpoint_id}): {reason}")]
    PortTaken { endpoint: String, endpoint_id: String, reason: String },
    /// Every address of a network is leased.
    #[error("no available IPv4 addresses on network {network} ({subnet}); remove containers from it or create a network with a larger subnet")]
    Exhausted { network: String, subnet: String },
    /// A tool berth drives failed: names the tool, what it was asked and what it said.
    #[error("{tool} {action} failed: {message}")]
    Tool { tool: &'static str, action: String, message: String },
    /// A file or system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, #[source] source: std::io::Error },
}

impl NetError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetError {
        let path = path.into();
        move |source| NetError::Io { what, path, source }
    }
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;
