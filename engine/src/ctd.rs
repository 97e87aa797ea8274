//! Handles on one containerd namespace, and the translation of a resolved
//! runtime into what containerd takes.

use berth_config::{CgroupDriver, Kind, Resolved, ShimOptions};
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

/// The shim and options containerd gets for a resolved runtime. With the
/// systemd cgroup driver, the runtimes berth builds runc options for (the
/// stock ones and `path` runtimes) get `SystemdCgroup`, as in dockerd; a
/// `runtimeType` runtime keeps the options its definition gives.
pub fn shim_runtime(r: &Resolved, driver: CgroupDriver) -> ShimRuntime {
    let systemd = driver == CgroupDriver::Systemd && matches!(r.kind, Kind::Stock | Kind::Path);
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
                systemd_cgroup: o.systemd_cgroup || systemd,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A snapshot of a daemon.json with a path runtime, a runc-type shim
    /// runtime with options of its own, and a shim of another kind.
    fn snapshot() -> Arc<berth_config::Snapshot> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(
            &file,
            r#"{"runtimes":{
                "crun":{"path":"/bin/true"},
                "runc-own":{"runtimeType":"io.containerd.runc.v2","options":{"BinaryName":"runc"}},
                "other":{"runtimeType":"/bin/true","options":{"ConfigPath":"/etc/other.toml"}}}}"#,
        )
        .unwrap();
        let flags = berth_config::Flags { config_file: Some(file), exec_root: Some(dir.path().join("exec")), ..Default::default() };
        let config = berth_config::load::load(&flags).unwrap();
        let runtimes = berth_config::table::derive(&config, &berth_config::probe::ProbeCache::new()).unwrap();
        Arc::new(berth_config::Snapshot { generation: 1, config, runtimes })
    }

    fn systemd_cgroup(snap: &Arc<berth_config::Snapshot>, name: &str, driver: CgroupDriver) -> Option<bool> {
        shim_runtime(&snap.get(name).unwrap(), driver).runc_options().map(|o| o.systemd_cgroup)
    }

    #[test]
    fn the_systemd_driver_sets_systemd_cgroup_on_the_runc_options_berth_builds() {
        let snap = snapshot();
        for name in ["runc", "io.containerd.runc.v2", "crun"] {
            assert_eq!(systemd_cgroup(&snap, name, CgroupDriver::Systemd), Some(true), "{name}");
            assert_eq!(systemd_cgroup(&snap, name, CgroupDriver::Cgroupfs), Some(false), "{name}");
        }
        // A runtimeType runtime keeps its own options (dockerd does the same).
        assert_eq!(systemd_cgroup(&snap, "runc-own", CgroupDriver::Systemd), Some(false));
        // Other shims get no runc options at all.
        let other = shim_runtime(&snap.get("other").unwrap(), CgroupDriver::Systemd);
        assert_eq!((other.name.as_str(), other.runc_options()), ("/bin/true", None));
        // The rest of the options are untouched.
        let o = shim_runtime(&snap.get("crun").unwrap(), CgroupDriver::Systemd).runc_options().unwrap();
        assert_eq!(o.binary_name, "/bin/true");
        assert!(o.root.ends_with("runtime-state/crun"), "{}", o.root);
    }
}
