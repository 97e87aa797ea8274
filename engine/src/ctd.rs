//! Handles on one containerd namespace, and the translation of a resolved
//! runtime into what containerd takes.

use berth_config::{Resolved, ShimOptions};
use berth_containerd::{Client, Containers, ImageStore, RuncOptions, RuntimeOptions, ShimRuntime, Tasks};

/// The containerd services the engine uses (cheap to clone).
#[derive(Debug, Clone)]
pub struct Ctd {
    pub client: Client,
    pub containers: Containers,
    pub tasks: Tasks,
    pub images: ImageStore,
}

impl Ctd {
    /// Connects the services; picks the snapshotter (overlayfs, else native).
    pub async fn new(client: Client) -> Result<Ctd, berth_containerd::Error> {
        let images = ImageStore::with_default_snapshotter(client.clone()).await?;
        Ok(Ctd { containers: Containers::new(client.clone()), tasks: Tasks::new(client.clone()), images, client })
    }
}

/// The shim and options containerd gets for a resolved runtime.
pub fn shim_runtime(r: &Resolved) -> ShimRuntime {
    match &r.options {
        // Runc options only exist for the runc shim (config guarantees it).
        ShimOptions::Runc(o) => ShimRuntime::runc(&RuncOptions {
                no_pivot_root: o.no_pivot_root,
                no_new_keyring: o.no_new_keyring,
                shim_cgroup: o.shim_cgroup.clone(),
                io_uid: o.io_uid,
                io_gid: o.io_gid,
                binary_name: o.binary_name.clone(),
                root: o.root.clone(),
                systemd_cgroup: o.systemd_cgroup,
                criu_image_path: o.criu_image_path.clone(),
                criu_work_path: o.criu_work_path.clone(),
            }),
        ShimOptions::Generic(g) => ShimRuntime::generic(
            r.shim.clone(),
            &RuntimeOptions { type_url: g.type_url.clone(), config_path: g.config_path.clone(), config_body: g.config_body.clone().into_bytes() },
        ),
        ShimOptions::None => ShimRuntime::bare(r.shim.clone()),
    }
}
