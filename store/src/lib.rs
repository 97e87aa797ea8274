//! berth-store: berth's container records and container logs.
//!
//! - [`Store`]: one crash-safe JSON record per container under
//!   `<data-root>/containers/<id>/`, an in-memory index that serves lists
//!   and lookups without locks, atomic name reservation, and per-container
//!   lifecycle locks. Start at [`store`].
//! - [`record`]: the plain, versioned record types.
//! - [`logfile`]: Docker's json-file log format: a writer for two streams
//!   and a reader with tail / since / until / follow.
//!
//! This crate knows nothing about HTTP, Docker wire types or containerd.

pub mod error;
mod fsutil;
pub mod id;
mod index;
pub mod logfile;
pub mod names;
pub mod record;
pub mod store;
pub mod timefmt;

pub use error::{LogError, StoreError};
pub use fsutil::{fsync_dir, write_atomic};
pub use id::{generate_id, is_valid_id, short_id};
pub use index::Snapshot;
pub use names::{generate_name, validate_name};
pub use record::{
    ContainerConfig, ContainerRecord, ContainerStatus, DeviceMapping, EndpointConfig, Healthcheck, HostConfig, LogConfig, Mount, MountKind, Networking,
    PinnedRuntime, PortBinding, RestartPolicy, Ulimit,
    State, RECORD_VERSION,
};
pub use store::{ContainerLock, CorruptRecord, HeldBack, NewContainer, OpenReport, SkippedRecord, Store};
