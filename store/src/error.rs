//! Typed errors of the store. Every message says what went wrong and, where
//! the caller or operator can act, what to do about it. Messages that the
//! docker CLI shows verbatim keep Docker's wording.

use std::io;
use std::path::PathBuf;

/// Errors from [`crate::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No container has this id, name or id prefix.
    #[error("No such container: {0}")]
    NotFound(String),

    /// An id prefix matches more than one container.
    #[error("multiple containers match prefix {0}: give more characters of the id, or the container name")]
    AmbiguousPrefix(String),

    /// A container name that Docker would refuse too.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),

    /// The name is already used by (or reserved for) another container.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{existing_id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict {
        /// The requested name, without the leading `/`.
        name: String,
        /// Full id of the container that holds the name.
        existing_id: String,
    },

    /// A caller-supplied id that is not 64 lowercase hex characters.
    #[error("invalid container id {0:?}: an id is 64 lowercase hex characters; use berth_store::generate_id()")]
    InvalidId(String),

    /// A caller-supplied id that is already taken.
    #[error("container id {0} is already in use: generate a new id and retry")]
    IdConflict(String),

    /// The disk (or quota) is full. Nothing was changed: the old record is
    /// still in place on disk and in memory.
    #[error("no space left on device while saving container {id}: free space under {} and retry", root.display())]
    NoSpace {
        /// The container whose record could not be written.
        id: String,
        /// The store's data root.
        root: PathBuf,
    },

    /// Another process (another berth) holds the store's lock file.
    #[error("the container store at {} is in use by another process: stop the other berth daemon or use a different --data-root", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// Any other I/O failure. `action` says what the store was doing.
    #[error("{action} {}: {source}; check that the data root is writable and its file system healthy", path.display())]
    Io {
        /// What the store tried, e.g. "cannot write container record".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A record could not be encoded as JSON (should not happen with the
    /// plain data types of [`crate::record`]).
    #[error("cannot encode the record of container {id}: {source}; this is a bug in berth, please report it")]
    Encode {
        /// The container.
        id: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io { action, path: path.into(), source }
    }

    /// True for [`StoreError::NotFound`] (Docker answers 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }
}

/// Errors from the json-file log writer and reader ([`crate::logfile`]).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("cannot open container log {}: {source}; the container may have been removed, or the data root is not readable", path.display())]
    Open {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The disk is full: log lines written now are lost.
    #[error("no space left on device while writing container log {}: free space on its file system; output is dropped until then", path.display())]
    NoSpace {
        /// The log file.
        path: PathBuf,
    },

    /// Another I/O failure while reading or writing the log.
    #[error("I/O error on container log {}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The log writer was closed (the container stopped).
    #[error("container log {} is closed: the container has stopped; start it again to log more", path.display())]
    Closed {
        /// The log file.
        path: PathBuf,
    },
}

impl LogError {
    pub(crate) fn from_io(path: &std::path::Path, source: io::Error) -> Self {
        if crate::fsutil::is_no_space(&source) {
            LogError::NoSpace { path: path.to_path_buf() }
        } else {
            LogError::Io { path: path.to_path_buf(), source }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_wording_is_kept() {
        let e = StoreError::NameConflict { name: "sa1".into(), existing_id: "abc".into() };
        assert_eq!(
            e.to_string(),
            "Conflict. The container name \"/sa1\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
        );
        assert_eq!(
            StoreError::InvalidName("x".into()).to_string(),
            "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert_eq!(StoreError::NotFound("nope".into()).to_string(), "No such container: nope");
        let e = StoreError::NoSpace { id: "abc".into(), root: "/var/lib/berth".into() };
        assert_eq!(
            e.to_string(),
            "no space left on device while saving container abc: free space under /var/lib/berth and retry"
        );
    }
}
