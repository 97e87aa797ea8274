//! Typed errors of the containerd layer.
//!
//! containerd answers with gRPC status codes. NotFound, AlreadyExists,
//! FailedPrecondition and Unavailable are reliable; most failures of the shim,
//! of runc and of task IO come back as `Unknown` with a free-text message.
//! Those become [`Error::Runtime`], whose message is kept **verbatim** so callers
//! can show it (and the docker CLI can find "executable file not found" in it).
//! [`Error::runtime_failure`] classifies such a message once, here, so that
//! upper layers can pick an exit code by kind instead of matching text.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to (or running) containerd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object (image, container, task, snapshot, content, lease) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The object is in the wrong state for the request (e.g. a task that is
    /// not running, a container that still has a task).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// containerd cannot be reached (down, restarting, socket missing).
    #[error("containerd unavailable: {0}")]
    Unavailable(String),
    /// The request was rejected as malformed by containerd.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The shim or the OCI runtime failed (create/start/exec/kill …).
    /// `message` is containerd's text, unchanged.
    #[error("{message}")]
    Runtime {
        /// containerd's message, verbatim.
        message: String,
    },
    /// Any other gRPC status.
    #[error("containerd error ({code:?}): {message}")]
    Grpc {
        /// The gRPC code.
        code: tonic::Code,
        /// containerd's message.
        message: String,
    },
    /// Connecting to the socket failed.
    #[error("cannot connect to containerd at {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The `containerd` binary is missing.
    #[error("containerd not found on PATH: install it with `apt-get install containerd` (or set the containerd binary path explicitly)")]
    ContainerdNotInstalled,
    /// The `runc` binary is missing (the default runtime cannot work).
    #[error("runc not found on PATH: install it with `apt-get install runc`")]
    RuncNotInstalled,
    /// The managed containerd did not answer within the start timeout.
    #[error("containerd did not become ready within {timeout_secs}s; last lines of its log ({log}):\n{log_tail}")]
    StartTimeout {
        /// Timeout that elapsed.
        timeout_secs: u64,
        /// Log file path.
        log: PathBuf,
        /// Last lines of the log.
        log_tail: String,
    },
    /// The managed containerd exited while starting.
    #[error("containerd exited during start-up ({status}); last lines of its log ({log}):\n{log_tail}")]
    StartExited {
        /// Exit status description.
        status: String,
        /// Log file path.
        log: PathBuf,
        /// Last lines of the log.
        log_tail: String,
    },
    /// A local I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// JSON (de)serialization failed.
    #[error("{context}: {source}")]
    Json {
        /// What was being (de)serialized.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Input or stored data is not what it should be (bad digest, bad image
    /// config, unsupported media type …).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// The operation was cancelled (stream closed, supervisor stopped …).
    #[error("cancelled: {0}")]
    Cancelled(String),
}

/// Kind of an OCI runtime start failure, derived from containerd's message.
///
/// Maps to Docker's exit codes: `NotFound` → 127, `PermissionDenied` → 126,
/// `Other` → 128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFailure {
    /// "executable file not found" / "no such file or directory".
    NotFound,
    /// "permission denied" / not executable.
    PermissionDenied,
    /// Any other runtime failure.
    Other,
}

impl RuntimeFailure {
    /// Docker's exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            RuntimeFailure::NotFound => 127,
            RuntimeFailure::PermissionDenied => 126,
            RuntimeFailure::Other => 128,
        }
    }
}

impl Error {
    /// Builds an [`Error::Io`] with context.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// Builds an [`Error::Json`] with context.
    pub(crate) fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json { context: context.into(), source }
    }

    /// Maps a gRPC status, prefixing nothing: containerd's message stays intact.
    pub fn from_status(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::NotFound => Error::NotFound(message),
            tonic::Code::AlreadyExists => Error::AlreadyExists(message),
            tonic::Code::FailedPrecondition => Error::FailedPrecondition(message),
            tonic::Code::Unavailable => Error::Unavailable(message),
            tonic::Code::InvalidArgument => Error::InvalidArgument(message),
            // Shim, runc and IO failures arrive as Unknown (containerd 1.6).
            tonic::Code::Unknown => Error::Runtime { message },
            code => Error::Grpc { code, message },
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// True for [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists(_))
    }

    /// True when containerd could not be reached.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Connect { .. })
    }

    /// For runtime failures, the kind of failure (see [`RuntimeFailure`]);
    /// `None` for every other error.
    pub fn runtime_failure(&self) -> Option<RuntimeFailure> {
        let Error::Runtime { message } = self else { return None };
        Some(classify_runtime_message(message))
    }
}

/// Classifies a runtime error message by the phrases runc, crun and the shim
/// use. Kept in one place so nobody else matches error text.
pub fn classify_runtime_message(message: &str) -> RuntimeFailure {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        RuntimeFailure::NotFound
    } else if m.contains("permission denied") || m.contains("not executable") {
        RuntimeFailure::PermissionDenied
    } else {
        RuntimeFailure::Other
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::from_status(status)
    }
}
