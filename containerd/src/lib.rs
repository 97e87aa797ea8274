//! berth-containerd: berth's containerd layer.
//!
//! * [`managed`]: a containerd child process of berth's own (config, start,
//!   health check, supervised restarts, stop).
//! * [`client`]: the namespaced connection, version, leases.
//! * [`images`] (+ [`content`], [`layers`], [`oci`], [`snapshotter`]):
//!   import from layer tarballs, unpack, list/inspect/tag/delete.
//! * [`containers`], [`tasks`], [`fifo`]: container records with snapshot
//!   rootfs, tasks and execs with FIFO stdio.
//! * [`snapshots`]: snapshot usage, and layers from a container's changes
//!   (containerd's diff service).
//! * [`runtime`]: shim selection and hand-declared shim option messages.
//! * [`events`]: the typed event stream.
//! * [`error`]: one typed error for all of it.
//!
//! This crate knows nothing about Docker's API or berth's config; the engine
//! combines them.

pub mod client;
pub mod containers;
pub mod content;
pub mod error;
pub mod events;
pub mod fifo;
pub mod images;
pub mod layers;
pub mod managed;
pub mod oci;
pub mod runtime;
pub mod snapshots;
pub mod snapshotter;
pub mod tasks;
mod util;

pub use client::{Client, Lease, Version};
pub use containers::{ContainerInfo, Containers, NewContainer, Rootfs};
pub use error::{Error, Result, RuntimeFailure};
pub use events::{Envelope, Event, EventStream};
pub use fifo::{FifoSet, OpenFifos};
pub use images::{ConfigSource, ImageInfo, ImageRecord, ImageStore, ImportRequest, ImportedImage};
pub use managed::{ManagedConfig, ManagedContainerd};
pub use oci::ImageConfig;
pub use runtime::{RuncOptions, RuntimeOptions, ShimRuntime};
pub use tasks::{ExitStatus, TaskIo, TaskState, TaskStatus, Tasks};

/// Re-exported so callers use the same versions.
pub use containerd_client::types::Mount;
pub use oci_spec;
pub use prost_types;
