//! The types of the engine's interface that come from the crates below it:
//! container records as the store keeps them, image facts as containerd
//! gives them, and the time format records use. Layers above the engine
//! (the API) name them from here and depend on the engine alone.

pub use berth_containerd::{oci, ImageConfig, ImageInfo, ImageRecord};
pub use berth_store::logfile::LogStream;
pub use berth_store::record::{
    ContainerConfig, ContainerRecord, ContainerStatus, DeviceMapping, HostConfig, LogConfig, Mount, MountKind, PinnedRuntime, RestartPolicy, Ulimit,
};
pub use berth_store::timefmt;
pub use berth_store::validate_name;
