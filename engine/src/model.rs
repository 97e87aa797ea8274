//! The types of the engine's interface that come from the crates below it:
//! container records as the store keeps them, image facts as containerd
//! gives them, and the time format records use. Layers above the engine
//! (the API) name them from here and depend on the engine alone.

pub use berth_containerd::{oci, ImageConfig, ImageInfo, ImageRecord};
pub use berth_store::logfile::LogStream;
pub use berth_store::record::{
    ContainerConfig, ContainerRecord, ContainerStatus, DeviceMapping, EndpointConfig, Healthcheck, HostConfig, LogConfig, Mount, MountKind, Networking,
    PinnedRuntime, PortBinding, RestartPolicy, Ulimit,
};
/// Networks, as the network subsystem keeps them.
pub use berth_network::{Attachment, CreateRequest as NetworkCreate, Driver as NetworkDriver, Endpoint, EndpointRequest, Network, PortMap, Proto};
pub use berth_store::timefmt;
pub use berth_store::validate_name;
