//! A container's confinement: what its host config and the daemon's
//! settings say about capabilities, seccomp, devices, `no-new-privileges`,
//! the read-only root and the masked paths, decided by `berth-security` and
//! gathered here for [`crate::spec`].
//!
//! Computed at create (so that bad options are refused before anything
//! exists) and again at every start (a reload may have changed the daemon's
//! profile; devices are looked up again). Stats host devices: call it off the
//! async threads.

use berth_config::{EffectiveConfig, SeccompProfileSetting};
use berth_security::caps::{self, CapSet};
use berth_security::devices::{self, DeviceError, DeviceRequest, Granted};
use berth_security::opts::{self, SeccompChoice, SecurityOptError};
use berth_security::seccomp::{self, Profile, SeccompError, Target};
use berth_security::CapError;
use berth_store::HostConfig;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxSeccomp};

/// Facts about the host that confinement depends on, read once.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    /// The daemon's own bounding set: the most a container can get.
    pub held: CapSet,
    pub kernel: Option<(u32, u32)>,
    /// Go architecture name (Docker profiles use them).
    pub arch: &'static str,
}

impl HostFacts {
    /// Reads the daemon's bounding set and the kernel version.
    pub fn read() -> HostFacts {
        HostFacts { held: caps::bounding_set_of_self(), kernel: seccomp::host_kernel(), arch: seccomp::host_arch() }
    }
}

/// How one container is confined.
#[derive(Debug, Clone)]
pub struct Confinement {
    pub privileged: bool,
    /// Bounding, effective and permitted capabilities.
    pub caps: CapSet,
    /// `None` = no filter (`seccomp=unconfined`, `--privileged`, or the
    /// daemon's `seccomp-profile: unconfined`).
    pub seccomp: Option<LinuxSeccomp>,
    /// The container chose a profile of its own.
    pub custom_seccomp: bool,
    pub no_new_privileges: bool,
    pub readonly_rootfs: bool,
    /// Mask /proc and /sys paths and make some read-only (not when
    /// privileged or `systempaths=unconfined`).
    pub mask_system_paths: bool,
    /// /sys/fs/cgroup writable (privileged or `writable-cgroups=true`).
    pub writable_cgroups: bool,
    /// /sys writable (privileged).
    pub writable_sysfs: bool,
    /// Device nodes created in the container, with their cgroup rules.
    pub devices: Vec<Granted>,
    /// Every device allowed (privileged).
    pub all_devices: bool,
    /// `--device-cgroup-rule` rules.
    pub device_rules: Vec<LinuxDeviceCgroup>,
}

/// A confinement option that cannot be honoured (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    #[error(transparent)]
    Cap(#[from] CapError),
    #[error(transparent)]
    SecurityOpt(#[from] SecurityOptError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("the daemon's seccomp-profile cannot be used: {0}")]
    DaemonProfile(SeccompError),
}

/// The confinement of a container with host config `h` under daemon config
/// `cfg`. Blocking (stats host devices).
pub fn confinement(h: &HostConfig, cfg: &EffectiveConfig, host: &HostFacts) -> Result<Confinement, ConfineError> {
    let opts = opts::parse(&h.security_opt)?;
    let caps = caps::effective(&h.cap_add, &h.cap_drop, h.privileged, host.held)?;
    let target = Target { arch: host.arch, caps, kernel: host.kernel };
    let profile: Option<Profile> = match (&opts.seccomp, h.privileged) {
        (_, true) | (SeccompChoice::Unconfined, _) => None,
        (SeccompChoice::Builtin, _) => Some(Profile::default_profile()),
        (SeccompChoice::Custom(p), _) => Some((**p).clone()),
        (SeccompChoice::Daemon, _) => match &cfg.seccomp_profile {
            SeccompProfileSetting::Builtin => Some(Profile::default_profile()),
            SeccompProfileSetting::Unconfined => None,
            SeccompProfileSetting::File { json, .. } => Some(Profile::parse(json).map_err(ConfineError::DaemonProfile)?),
        },
    };
    let mut granted = Vec::new();
    for d in &h.devices {
        granted.extend(devices::resolve(&DeviceRequest {
            path_on_host: d.path_on_host.clone(),
            path_in_container: d.path_in_container.clone(),
            cgroup_permissions: d.cgroup_permissions.clone(),
        })?);
    }
    if h.privileged {
        let explicit: Vec<_> = granted.iter().map(|g| g.device.path().clone()).collect();
        granted.extend(devices::host_devices()?.into_iter().filter(|g| !explicit.contains(g.device.path())));
    }
    let device_rules = h.device_cgroup_rules.iter().map(|r| devices::parse_cgroup_rule(r)).collect::<Result<Vec<_>, _>>()?;
    Ok(Confinement {
        privileged: h.privileged,
        caps,
        seccomp: profile.map(|p| p.to_oci(target)),
        custom_seccomp: matches!(opts.seccomp, SeccompChoice::Custom(_)) && !h.privileged,
        no_new_privileges: opts.no_new_privileges.unwrap_or(cfg.no_new_privileges),
        readonly_rootfs: h.readonly_rootfs,
        mask_system_paths: !h.privileged && !opts.unmask_system_paths,
        writable_cgroups: h.privileged || opts.writable_cgroups,
        writable_sysfs: h.privileged,
        devices: granted,
        all_devices: h.privileged,
        device_rules,
    })
}

/// The capabilities of an exec in a container with host config `h`:
/// the container's, or every one the daemon holds for `docker exec
/// --privileged`.
pub fn exec_caps(h: &HostConfig, privileged: bool, host: &HostFacts) -> Result<CapSet, ConfineError> {
    Ok(caps::effective(&h.cap_add, &h.cap_drop, h.privileged || privileged, host.held)?)
}

/// Whether execs in a container with host config `h` get
/// `NoNewPrivileges`.
pub fn exec_no_new_privileges(h: &HostConfig, cfg: &EffectiveConfig) -> bool {
    opts::parse(&h.security_opt).ok().and_then(|o| o.no_new_privileges).unwrap_or(cfg.no_new_privileges)
}

/// Inputs for unit tests elsewhere in the engine.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The config of an empty daemon.json.
    pub fn cfg() -> EffectiveConfig {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, "{}").unwrap();
        berth_config::load::load(&berth_config::Flags { config_file: Some(file), ..Default::default() }).unwrap()
    }

    pub fn facts() -> HostFacts {
        HostFacts { held: CapSet::all_known(), kernel: Some((6, 1)), arch: "amd64" }
    }

    /// The confinement of a container with default settings.
    pub fn default_confinement() -> Confinement {
        confinement(&HostConfig::default(), &cfg(), &facts()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{cfg, facts};
    use super::*;
    use berth_store::DeviceMapping;

    fn names(s: &Option<LinuxSeccomp>, name: &str) -> usize {
        s.as_ref().unwrap().syscalls().as_ref().unwrap().iter().filter(|r| r.names().iter().any(|n| n == name)).count()
    }

    #[test]
    fn defaults_are_dockerds() {
        let c = confinement(&HostConfig::default(), &cfg(), &facts()).unwrap();
        assert_eq!(c.caps, caps::DEFAULT);
        assert!(c.seccomp.is_some() && names(&c.seccomp, "mount") == 0);
        assert!(!c.no_new_privileges && !c.readonly_rootfs && c.mask_system_paths && !c.writable_sysfs);
        assert!(c.devices.is_empty() && !c.all_devices);
    }

    #[test]
    fn options_change_it() {
        let h = HostConfig {
            cap_add: vec!["SYS_ADMIN".into()],
            security_opt: vec!["no-new-privileges".into(), "systempaths=unconfined".into()],
            readonly_rootfs: true,
            devices: vec![DeviceMapping { path_on_host: "/dev/null".into(), path_in_container: "/dev/n".into(), cgroup_permissions: "r".into() }],
            device_cgroup_rules: vec!["c 1:3 r".into()],
            ..Default::default()
        };
        let c = confinement(&h, &cfg(), &facts()).unwrap();
        assert_eq!(names(&c.seccomp, "mount"), 1, "SYS_ADMIN unlocks mount()");
        assert!(c.no_new_privileges && c.readonly_rootfs && !c.mask_system_paths);
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.device_rules.len(), 1);
        let c = confinement(&HostConfig { security_opt: vec!["seccomp=unconfined".into()], ..Default::default() }, &cfg(), &facts()).unwrap();
        assert!(c.seccomp.is_none());
    }

    #[test]
    fn privileged_gets_everything_the_daemon_holds() {
        let held = CapSet::from_mask(0x1fffeffffff);
        let c = confinement(&HostConfig { privileged: true, ..Default::default() }, &cfg(), &HostFacts { held, ..facts() }).unwrap();
        assert_eq!(c.caps, held);
        assert!(c.seccomp.is_none() && c.all_devices && c.writable_sysfs && c.writable_cgroups && !c.mask_system_paths);
        assert!(c.devices.iter().any(|g| g.device.path() == std::path::Path::new("/dev/null")));
    }

    #[test]
    fn the_daemon_setting_applies_unless_the_container_chooses() {
        let mut daemon = cfg();
        daemon.seccomp_profile = SeccompProfileSetting::Unconfined;
        daemon.no_new_privileges = true;
        let c = confinement(&HostConfig::default(), &daemon, &facts()).unwrap();
        assert!(c.seccomp.is_none() && c.no_new_privileges);
        let h = HostConfig { security_opt: vec!["seccomp=builtin".into(), "no-new-privileges=false".into()], ..Default::default() };
        let c = confinement(&h, &daemon, &facts()).unwrap();
        assert!(c.seccomp.is_some() && !c.no_new_privileges);
    }

    #[test]
    fn refusals() {
        let e = |h: HostConfig| confinement(&h, &cfg(), &facts()).unwrap_err().to_string();
        assert_eq!(e(HostConfig { cap_add: vec!["NOPE".into()], ..Default::default() }), "invalid CapAdd: unknown capability: \"CAP_NOPE\"");
        assert!(e(HostConfig { security_opt: vec!["apparmor=docker-default".into()], ..Default::default() }).contains("AppArmor"));
        assert!(e(HostConfig {
            devices: vec![DeviceMapping { path_on_host: "/dev/nope-berth".into(), ..Default::default() }],
            ..Default::default()
        })
        .contains("no such file or directory"));
        assert!(e(HostConfig { device_cgroup_rules: vec!["z 1:1 r".into()], ..Default::default() }).contains("invalid device cgroup format"));
    }
}
