//! berth's networks (design §8): Docker's network model over netavark.
//!
//! [`Networks`] keeps the networks and the attachments of running
//! containers, both persisted crash-safely under
//! `<data-root>/network/`; it chooses every address and host port itself
//! and asks netavark to make the bridge, veth, firewall rules and DNS.
//! Its operations block (files, netavark): callers run them off the async
//! threads. Reconcile at start ([`Networks::reconcile`]) undoes what
//! belongs to no running container.

pub mod error;
pub mod etc;
pub mod ipam;
pub mod model;
pub mod netavark;
pub mod netns;
pub mod ports;
mod service;

pub use error::{NetError, Result};
pub use model::{Attachment, Driver, Endpoint, Network, Pool, PortMap, Proto};
pub use service::{AttachRequest, CreateRequest, DefaultBridge, EndpointRequest, Networks, Settings};
