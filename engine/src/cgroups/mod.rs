//! The host's cgroups, as the daemon found them at start: the layout (v1,
//! hybrid or unified, from `/proc/self/mountinfo`, [`mounts`]), the cgroup
//! driver in use, each container's cgroup path, and its resource usage
//! ([`usage`]).
//!
//! One [`Cgroups`] is built when the daemon starts and handed to the engine
//! (tests build one over fixture directories); nothing here is global and
//! nothing is re-detected per request. Its methods that read files block:
//! call them from blocking threads.
//!
//! The driver, as dockerd chooses it: `exec-opts`
//! `native.cgroupdriver=cgroupfs|systemd` when set; unset, `systemd` on a
//! unified host booted with systemd, else `cgroupfs`. The systemd driver is
//! refused when the host was not booted with systemd (`/run/systemd/system`
//! is missing), because runc would fail every start talking to it.

pub mod mounts;
pub mod usage;

use std::path::{Path, PathBuf};

use berth_config::CgroupDriver;

pub use mounts::{Hierarchy, Layout};
pub use usage::Usage;

/// Present when the host was booted with systemd (`sd_booted(3)`).
pub const SYSTEMD_RUN_DIR: &str = "/run/systemd/system";

/// The systemd slice containers go in with the systemd driver (dockerd's
/// default `cgroup-parent`).
pub const SYSTEMD_SLICE: &str = "system.slice";

/// Why the cgroups cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read the cgroup mounts from {path}: {source}; berth needs /proc mounted")]
    Mountinfo { path: PathBuf, source: std::io::Error },
    #[error("no cgroup filesystem is mounted (none in {path}): berth needs cgroups to limit and account containers; mount cgroup2 at /sys/fs/cgroup (or the v1 controllers under it)")]
    NotMounted { path: PathBuf },
    #[error(
        "the systemd cgroup driver (exec-opts: native.cgroupdriver=systemd) needs systemd as the init system, but {dir} does not exist: this host was not booted with systemd; remove the option or set native.cgroupdriver=cgroupfs"
    )]
    NoSystemd { dir: PathBuf },
}

/// The driver to use: the user's choice, else dockerd's default for the host.
pub fn choose_driver(setting: Option<CgroupDriver>, layout: Layout, systemd_dir: &Path) -> Result<CgroupDriver, CgroupError> {
    let booted = systemd_dir.is_dir();
    match setting {
        Some(CgroupDriver::Systemd) if !booted => Err(CgroupError::NoSystemd { dir: systemd_dir.to_path_buf() }),
        Some(d) => Ok(d),
        None if layout == Layout::Unified && booted => Ok(CgroupDriver::Systemd),
        None => Ok(CgroupDriver::Cgroupfs),
    }
}

/// The host's cgroups and the driver in use.
#[derive(Debug, Clone)]
pub struct Cgroups {
    hierarchy: Hierarchy,
    layout: Layout,
    driver: CgroupDriver,
}

impl Cgroups {
    /// Reads the host (`/proc/self/mountinfo`, `/run/systemd/system`) and
    /// chooses the driver. Blocks.
    pub fn detect(setting: Option<CgroupDriver>) -> Result<Cgroups, CgroupError> {
        Cgroups::detect_at(Path::new("/proc/self/mountinfo"), Path::new(SYSTEMD_RUN_DIR), setting)
    }

    /// [`Cgroups::detect`] with the files named.
    pub fn detect_at(mountinfo: &Path, systemd_dir: &Path, setting: Option<CgroupDriver>) -> Result<Cgroups, CgroupError> {
        let text = std::fs::read_to_string(mountinfo).map_err(|source| CgroupError::Mountinfo { path: mountinfo.to_path_buf(), source })?;
        let hierarchy = Hierarchy::from_mountinfo(&text);
        let layout = hierarchy.layout().ok_or_else(|| CgroupError::NotMounted { path: mountinfo.to_path_buf() })?;
        let driver = choose_driver(setting, layout, systemd_dir)?;
        Ok(Cgroups { hierarchy, layout, driver })
    }

    /// Cgroups over a known hierarchy (tests: fixture directories). `None`
    /// when the hierarchy holds no cgroup mount.
    pub fn new(hierarchy: Hierarchy, driver: CgroupDriver) -> Option<Cgroups> {
        Some(Cgroups { layout: hierarchy.layout()?, hierarchy, driver })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn driver(&self) -> CgroupDriver {
        self.driver
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The OCI `linux.cgroupsPath` of a container: `/<namespace>/<id>` for
    /// cgroupfs, `system.slice:<namespace>:<id>` (slice:prefix:name, the
    /// scope `<namespace>-<id>.scope`) for systemd, as dockerd's
    /// `system.slice:docker:<id>`.
    pub fn spec_path(&self, namespace: &str, id: &str) -> String {
        match self.driver {
            CgroupDriver::Cgroupfs => format!("/{namespace}/{id}"),
            CgroupDriver::Systemd => format!("{SYSTEMD_SLICE}:{namespace}:{id}"),
        }
    }

    /// The container's cgroup directory relative to each hierarchy's mount point.
    pub fn relative_dir(&self, namespace: &str, id: &str) -> PathBuf {
        match self.driver {
            CgroupDriver::Cgroupfs => Path::new(namespace).join(id),
            CgroupDriver::Systemd => Path::new(SYSTEMD_SLICE).join(format!("{namespace}-{id}.scope")),
        }
    }

    /// A running container's usage, with the host's CPU time and memory
    /// (an unlimited container shows the host's memory as its limit).
    /// Blocks: it reads cgroup files and `/proc`.
    pub fn usage(&self, namespace: &str, id: &str) -> Usage {
        let mut u = usage::read_cgroup(&self.hierarchy, &self.relative_dir(namespace, id));
        (u.system_cpu_ns, u.online_cpus) = usage::host_cpu(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
        u.cap_memory_limit(host_memory());
        u
    }

    /// Removes the container's cgroup directories that a runtime left
    /// behind empty (runsc does after a failed start); `rmdir` leaves a
    /// non-empty one alone. With systemd, systemd removes the scope.
    /// Blocks.
    pub fn remove_empty(&self, namespace: &str, id: &str) {
        if self.driver == CgroupDriver::Systemd {
            return;
        }
        let rel = self.relative_dir(namespace, id);
        for m in self.hierarchy.mounts() {
            let _ = std::fs::remove_dir(m.join(&rel));
        }
    }
}

/// The host's total memory in bytes (0 if unknown). Blocks.
pub fn host_memory() -> u64 {
    usage::host_memory(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mountinfo").join(name)
    }

    #[test]
    fn the_driver_as_dockerd_chooses_it() {
        let booted = tempfile::tempdir().unwrap();
        let absent = booted.path().join("absent");
        use CgroupDriver::*;
        // Unset: systemd only on a unified host booted with systemd.
        assert_eq!(choose_driver(None, Layout::Unified, booted.path()).unwrap(), Systemd);
        assert_eq!(choose_driver(None, Layout::Unified, &absent).unwrap(), Cgroupfs);
        assert_eq!(choose_driver(None, Layout::Hybrid, booted.path()).unwrap(), Cgroupfs);
        assert_eq!(choose_driver(None, Layout::V1, booted.path()).unwrap(), Cgroupfs);
        // Set: as set, on any layout.
        assert_eq!(choose_driver(Some(Cgroupfs), Layout::Unified, booted.path()).unwrap(), Cgroupfs);
        assert_eq!(choose_driver(Some(Systemd), Layout::V1, booted.path()).unwrap(), Systemd);
    }

    #[test]
    fn the_systemd_driver_is_refused_without_systemd() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("run/systemd/system");
        let e = choose_driver(Some(CgroupDriver::Systemd), Layout::Unified, &absent).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("needs systemd as the init system") && m.contains(&absent.display().to_string()), "{m}");
        assert!(m.contains("set native.cgroupdriver=cgroupfs"), "says what to do: {m}");
        // A file is not the directory systemd creates.
        std::fs::create_dir_all(absent.parent().unwrap()).unwrap();
        std::fs::write(&absent, "").unwrap();
        assert!(choose_driver(Some(CgroupDriver::Systemd), Layout::Unified, &absent).is_err());
        // Through detection, as the daemon starts.
        let e = Cgroups::detect_at(&fixture("unified-debian12"), &dir.path().join("nope"), Some(CgroupDriver::Systemd)).unwrap_err();
        assert!(matches!(e, CgroupError::NoSystemd { .. }), "{e}");
    }

    #[test]
    fn detection_reads_the_layout_once() {
        let booted = tempfile::tempdir().unwrap();
        let c = Cgroups::detect_at(&fixture("unified-debian12"), booted.path(), None).unwrap();
        assert_eq!((c.layout(), c.driver()), (Layout::Unified, CgroupDriver::Systemd));
        let c = Cgroups::detect_at(&fixture("hybrid-debian12-firecracker"), &booted.path().join("no"), None).unwrap();
        assert_eq!((c.layout(), c.driver()), (Layout::Hybrid, CgroupDriver::Cgroupfs));
        let empty = booted.path().join("mountinfo");
        std::fs::write(&empty, "22 27 0:21 / /proc rw - proc proc rw\n").unwrap();
        assert!(matches!(Cgroups::detect_at(&empty, booted.path(), None), Err(CgroupError::NotMounted { .. })));
        assert!(matches!(Cgroups::detect_at(&booted.path().join("missing"), booted.path(), None), Err(CgroupError::Mountinfo { .. })));
        // This host: whatever it is, detection works and agrees with itself.
        let here = Cgroups::detect(Some(CgroupDriver::Cgroupfs)).unwrap();
        assert_eq!(here.layout(), Hierarchy::from_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap()).layout().unwrap());
    }

    #[test]
    fn paths_by_driver() {
        let h = Hierarchy::unified_at("/sys/fs/cgroup");
        let fs = Cgroups::new(h.clone(), CgroupDriver::Cgroupfs).unwrap();
        assert_eq!(fs.spec_path("berth", "abc"), "/berth/abc");
        assert_eq!(fs.relative_dir("berth", "abc"), Path::new("berth/abc"));
        let sd = Cgroups::new(h, CgroupDriver::Systemd).unwrap();
        assert_eq!(sd.spec_path("berth", "abc"), "system.slice:berth:abc");
        assert_eq!(sd.relative_dir("berth", "abc"), Path::new("system.slice/berth-abc.scope"));
        assert!(Cgroups::new(Hierarchy::default(), CgroupDriver::Cgroupfs).is_none());
    }

    #[test]
    fn usage_of_a_systemd_scope_on_v2() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup-v2");
        let c = Cgroups::new(Hierarchy::unified_at(root), CgroupDriver::Systemd).unwrap();
        let u = c.usage("berth", "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc");
        assert_eq!((u.memory.usage, u.pids.current), (307_200, 1));
        let host = host_memory();
        assert!(host > 0 && u.memory.limit == host, "unlimited shows the host's memory");
        assert!(u.system_cpu_ns > 0 && u.online_cpus > 0, "the host's CPU time is filled in");
    }

    #[test]
    fn empty_leftover_directories_are_removed_and_busy_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let h = Hierarchy::v1_at(root.path(), &["memory", "pids"]);
        for c in ["memory", "pids"] {
            std::fs::create_dir_all(root.path().join(c).join("berth/x")).unwrap();
        }
        std::fs::write(root.path().join("pids/berth/x/cgroup.procs"), "1\n").unwrap();
        Cgroups::new(h, CgroupDriver::Cgroupfs).unwrap().remove_empty("berth", "x");
        assert!(!root.path().join("memory/berth/x").exists());
        assert!(root.path().join("pids/berth/x").exists());
    }
}
