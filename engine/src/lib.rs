//! # berth-engine
//!
//! The engine runs operations: each loads the current config
//! [`Snapshot`](berth_config::Snapshot) once at its entry and passes it down.
//! So far it holds the runtime service ([`runtimes`]): reloads and the
//! runtime inventory. Containers, images, exec and events come next (see
//! ARCHITECTURE.md).

pub mod reference;
pub mod runtimes;
pub mod spec;
