//! # berth-security
//!
//! How a container is confined, decided from its settings as dockerd
//! decides it: which capabilities it gets ([`caps`]), which system calls its
//! seccomp filter allows ([`seccomp`], Docker's profile format and berth's
//! default profile), which host devices it sees ([`devices`]) and what its
//! `--security-opt` strings mean ([`opts`]).
//!
//! Pure decisions over plain inputs, apart from [`devices`], which stats the
//! host's device nodes and [`caps::bounding_set_of_self`], which reads the
//! daemon's own bounding set. The engine builds the OCI spec from what this
//! crate returns; nothing here knows HTTP, containerd or the record store.

pub mod caps;
pub mod devices;
pub mod opts;
pub mod seccomp;

pub use caps::{Cap, CapError, CapSet};
pub use opts::{SecurityOptError, SecurityOpts, SeccompChoice};
pub use seccomp::{Profile, SeccompError};
