//! Where the host's cgroup hierarchies are mounted, read once from
//! `/proc/self/mountinfo`.
//!
//! Three layouts exist: **v1** (one `cgroup` mount per controller or group of
//! controllers), **hybrid** (v1 controllers plus a `cgroup2` mount, usually
//! at `/sys/fs/cgroup/unified`, that holds no controller berth reads) and
//! **unified** (one `cgroup2` mount, usually at `/sys/fs/cgroup`, holding
//! every controller). Container resource files are read from the v1
//! controllers unless the layout is unified.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use procfs_core::process::MountInfo;

/// The cgroup layout of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V1,
    Hybrid,
    Unified,
}

impl Layout {
    /// `docker info`'s `CgroupVersion`.
    pub fn version(self) -> &'static str {
        match self {
            Layout::V1 | Layout::Hybrid => "1",
            Layout::Unified => "2",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::V1 => "v1",
            Layout::Hybrid => "hybrid (v1 controllers and a cgroup2 mount)",
            Layout::Unified => "unified (cgroup v2)",
        })
    }
}

/// The mount points of the host's cgroup hierarchies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchy {
    /// The `cgroup2` mount, if any.
    unified: Option<PathBuf>,
    /// v1 controller (or `name=...` hierarchy) → its mount point. Controllers
    /// mounted together (`cpu,cpuacct`) share one.
    v1: BTreeMap<String, PathBuf>,
}

/// v1 super options that are not controller names.
const NOT_CONTROLLERS: [&str; 8] = ["rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "release_agent", "none"];

impl Hierarchy {
    /// The hierarchies in a mountinfo text. Lines that do not parse are
    /// skipped (a path with odd characters must not stop the daemon); the
    /// first mount of a hierarchy wins, and of several `cgroup2` mounts the
    /// one under `/sys/fs/cgroup`.
    pub fn from_mountinfo(text: &str) -> Hierarchy {
        let mut h = Hierarchy::default();
        for m in text.lines().filter_map(|l| MountInfo::from_line(l).ok()) {
            match m.fs_type.as_str() {
                "cgroup2" => {
                    let standard = m.mount_point.starts_with("/sys/fs/cgroup");
                    let have_standard = h.unified.as_deref().is_some_and(|p| p.starts_with("/sys/fs/cgroup"));
                    if h.unified.is_none() || (standard && !have_standard) {
                        h.unified = Some(m.mount_point.clone());
                    }
                }
                "cgroup" => {
                    for (k, v) in &m.super_options {
                        let name = match (k.as_str(), v) {
                            ("name", Some(n)) => format!("name={n}"),
                            (k, None) if !NOT_CONTROLLERS.contains(&k) => k.to_string(),
                            _ => continue,
                        };
                        h.v1.entry(name).or_insert_with(|| m.mount_point.clone());
                    }
                }
                _ => {}
            }
        }
        h
    }

    /// A unified hierarchy mounted at `root` (tests point it at a fixture).
    pub fn unified_at(root: impl Into<PathBuf>) -> Hierarchy {
        Hierarchy { unified: Some(root.into()), v1: BTreeMap::new() }
    }

    /// v1 controllers each mounted at `root/<controller>`.
    pub fn v1_at(root: &Path, controllers: &[&str]) -> Hierarchy {
        Hierarchy { unified: None, v1: controllers.iter().map(|c| (c.to_string(), root.join(c))).collect() }
    }

    /// The layout; `None` when no cgroup filesystem is mounted.
    pub fn layout(&self) -> Option<Layout> {
        let controllers = self.v1.keys().any(|k| !k.starts_with("name="));
        match (controllers, &self.unified) {
            (true, Some(_)) => Some(Layout::Hybrid),
            (true, None) => Some(Layout::V1),
            (false, Some(_)) => Some(Layout::Unified),
            (false, None) => None,
        }
    }

    /// The mount point of a v1 controller.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(PathBuf::as_path)
    }

    /// The `cgroup2` mount point.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Every mount point (each once), for cleaning up a container's directories.
    pub fn mounts(&self) -> Vec<&Path> {
        let mut all: Vec<&Path> = self.v1.values().map(PathBuf::as_path).chain(self.unified.as_deref()).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Hierarchy {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mountinfo").join(name);
        Hierarchy::from_mountinfo(&std::fs::read_to_string(&p).unwrap())
    }

    #[test]
    fn this_machines_hybrid_layout() {
        let h = fixture("hybrid-debian12-firecracker");
        assert_eq!(h.layout(), Some(Layout::Hybrid));
        assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
        for c in ["memory", "cpu", "cpuacct", "pids", "blkio"] {
            assert_eq!(h.v1_mount(c), Some(Path::new("/sys/fs/cgroup").join(c).as_path()), "{c}");
        }
        assert_eq!(h.v1_mount("name=systemd"), Some(Path::new("/sys/fs/cgroup/systemd")));
        assert_eq!(h.v1_mount("rw"), None);
        assert_eq!(h.layout().unwrap().version(), "1");
    }

    #[test]
    fn unified_v2_host() {
        let h = fixture("unified-debian12");
        assert_eq!(h.layout(), Some(Layout::Unified));
        assert_eq!(h.layout().unwrap().version(), "2");
        assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(h.v1_mount("memory"), None);
        assert_eq!(h.mounts(), [Path::new("/sys/fs/cgroup")]);
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_mount_point() {
        let h = fixture("v1-ubuntu1804");
        assert_eq!(h.layout(), Some(Layout::V1));
        assert_eq!(h.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(h.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(h.v1_mount("net_prio"), Some(Path::new("/sys/fs/cgroup/net_cls,net_prio")));
        assert_eq!(h.v1_mount("xattr"), None, "a mount option is not a controller");
        assert_eq!(h.unified_mount(), None);
        assert_eq!(fixture("hybrid-ubuntu2004").layout(), Some(Layout::Hybrid));
    }

    #[test]
    fn odd_input_is_skipped_not_fatal() {
        let text = "garbage\n\n1 2 3\n33 22 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchy::from_mountinfo(text).layout(), Some(Layout::Unified));
        assert_eq!(Hierarchy::from_mountinfo("").layout(), None);
        // Only named v1 hierarchies and no cgroup2: no controllers at all.
        let named = "29 27 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n";
        assert_eq!(Hierarchy::from_mountinfo(named).layout(), None);
        // A second cgroup2 mount elsewhere does not replace the standard one.
        let two = "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n2 0 0:1 / /mnt/cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchy::from_mountinfo(two).unified_mount(), Some(Path::new("/sys/fs/cgroup")));
        let two = "2 0 0:1 / /mnt/cg rw - cgroup2 cgroup2 rw\n1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchy::from_mountinfo(two).unified_mount(), Some(Path::new("/sys/fs/cgroup")));
    }
}
