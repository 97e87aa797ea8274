//! Host devices in a container: `--device HOST[:CONTAINER[:PERMS]]` (a
//! device node, or a directory of them), `--device-cgroup-rule`, and the
//! whole of the host's `/dev` for `--privileged`, as dockerd gives them.
//!
//! These functions stat the host's device nodes: call them off the async
//! threads.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// One `HostConfig.Devices` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRequest {
    pub path_on_host: String,
    /// "" = the same path as on the host.
    pub path_in_container: String,
    /// "" = `rwm`.
    pub cgroup_permissions: String,
}

/// A device the container cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("invalid device mode: {0}")]
    Mode(String),
    #[error("invalid device path {0:?}: the path must be absolute")]
    NotAbsolute(String),
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Gather { path: String, reason: String },
    #[error("invalid device cgroup format '{0}'")]
    CgroupRule(String),
    #[error("too many devices under {0:?} (more than {MAX_DEVICES})")]
    TooMany(String),
}

/// Most device nodes berth adds for one `--device` directory or for
/// `--privileged`.
pub const MAX_DEVICES: usize = 4096;

/// Checks what can be checked without touching the host (at create).
pub fn validate(d: &DeviceRequest) -> Result<(), DeviceError> {
    permissions(&d.cgroup_permissions)?;
    if !d.path_on_host.starts_with('/') {
        return Err(DeviceError::NotAbsolute(d.path_on_host.clone()));
    }
    if !d.path_in_container.is_empty() && !d.path_in_container.starts_with('/') {
        return Err(DeviceError::NotAbsolute(d.path_in_container.clone()));
    }
    Ok(())
}

fn permissions(p: &str) -> Result<String, DeviceError> {
    if p.is_empty() {
        return Ok("rwm".into());
    }
    let mut seen = [false; 3];
    for c in p.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return Err(DeviceError::Mode(p.to_owned())),
        };
        if seen[i] {
            return Err(DeviceError::Mode(p.to_owned()));
        }
        seen[i] = true;
    }
    Ok(p.to_owned())
}

/// A device node as the OCI spec lists it, plus the cgroup rule allowing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub device: LinuxDevice,
    pub rule: LinuxDeviceCgroup,
}

fn node(path_in_container: &Path, meta: &std::fs::Metadata, access: &str) -> Option<Granted> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
    let mut device = LinuxDevice::default();
    device.set_path(path_in_container.to_path_buf());
    device.set_typ(typ);
    device.set_major(major);
    device.set_minor(minor);
    device.set_file_mode(Some(meta.mode() & 0o777));
    device.set_uid(Some(meta.uid()));
    device.set_gid(Some(meta.gid()));
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true);
    rule.set_typ(Some(typ));
    rule.set_major(Some(major));
    rule.set_minor(Some(minor));
    rule.set_access(Some(access.to_owned()));
    Some(Granted { device, rule })
}

/// The devices one `--device` gives: the node itself, or every node under a
/// directory (symlinks on the host path are followed, as dockerd does).
pub fn resolve(d: &DeviceRequest) -> Result<Vec<Granted>, DeviceError> {
    validate(d)?;
    let access = permissions(&d.cgroup_permissions)?;
    let gather = |reason: String| DeviceError::Gather { path: d.path_on_host.clone(), reason };
    let host = std::fs::canonicalize(&d.path_on_host).map_err(|e| gather(io_reason(&e)))?;
    let meta = std::fs::metadata(&host).map_err(|e| gather(io_reason(&e)))?;
    let in_container = PathBuf::from(if d.path_in_container.is_empty() { &d.path_on_host } else { &d.path_in_container });
    if let Some(g) = node(&in_container, &meta, &access) {
        return Ok(vec![g]);
    }
    if !meta.is_dir() {
        return Err(gather("not a device node".into()));
    }
    let mut out = Vec::new();
    walk(&host, &mut |p, m| {
        let rel = p.strip_prefix(&host).unwrap_or(p);
        if let Some(g) = node(&in_container.join(rel), m, &access) {
            if out.len() >= MAX_DEVICES {
                return Err(DeviceError::TooMany(d.path_on_host.clone()));
            }
            out.push(g);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Every device node of the host's `/dev` (for `--privileged`), skipping
/// what the container gets anyway (`pts`, `shm`, `mqueue`, `fd`) and the
/// host's console.
pub fn host_devices() -> Result<Vec<Granted>, DeviceError> {
    host_devices_under(Path::new("/dev"))
}

fn host_devices_under(dev: &Path) -> Result<Vec<Granted>, DeviceError> {
    let mut out = Vec::new();
    walk(dev, &mut |p, m| {
        let rel = p.strip_prefix(dev).unwrap_or(p);
        let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        if matches!(first.as_str(), "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev" | "console") {
            return Ok(());
        }
        if let Some(g) = node(p, m, "rwm") {
            if out.len() >= MAX_DEVICES {
                return Err(DeviceError::TooMany(dev.display().to_string()));
            }
            out.push(g);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Visits every entry under `dir` (not following symlinks), depth first.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata) -> Result<(), DeviceError>) -> Result<(), DeviceError> {
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            visited += 1;
            if visited > MAX_DEVICES * 4 {
                return Err(DeviceError::TooMany(dir.display().to_string()));
            }
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if m.is_dir() {
                stack.push(p.clone());
            }
            f(&p, &m)?;
        }
    }
    Ok(())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Parses a `--device-cgroup-rule` (`c 1:3 mr`, `a *:* rwm`, `b 7:* rmw`).
pub fn parse_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, DeviceError> {
    let bad = || DeviceError::CgroupRule(rule.to_owned());
    let parts: Vec<&str> = rule.split(' ').collect();
    let [typ, numbers, access] = parts[..] else { return Err(bad()) };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "c" => LinuxDeviceType::C,
        "b" => LinuxDeviceType::B,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |s: &str| -> Result<Option<i64>, DeviceError> {
        if s == "*" {
            Ok(None)
        } else if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map(Some).map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (major, minor) = (number(major)?, number(minor)?);
    if access.is_empty() || access.len() > 3 || permissions(access).is_err() {
        return Err(bad());
    }
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, c: &str, p: &str) -> DeviceRequest {
        DeviceRequest { path_on_host: host.into(), path_in_container: c.into(), cgroup_permissions: p.into() }
    }

    #[test]
    fn a_device_node() {
        let g = resolve(&req("/dev/null", "/dev/mynull", "rw")).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].device.path(), Path::new("/dev/mynull"));
        assert_eq!((g[0].device.major(), g[0].device.minor()), (1, 3));
        assert_eq!(g[0].rule.access().as_deref(), Some("rw"));
        let g = resolve(&req("/dev/zero", "", "")).unwrap();
        assert_eq!(g[0].device.path(), Path::new("/dev/zero"));
        assert_eq!(g[0].rule.access().as_deref(), Some("rwm"));
    }

    #[test]
    fn refusals() {
        let e = |r: DeviceRequest| resolve(&r).unwrap_err().to_string();
        assert_eq!(
            e(req("/dev/nonexistent-berth", "", "")),
            "error gathering device information while adding custom device \"/dev/nonexistent-berth\": no such file or directory"
        );
        assert!(e(req("/etc/hostname", "", "")).ends_with("not a device node"));
        assert_eq!(e(req("/dev/null", "", "rwx")), "invalid device mode: rwx");
        assert_eq!(e(req("/dev/null", "", "rr")), "invalid device mode: rr");
        assert!(e(req("dev/null", "", "")).contains("must be absolute"));
    }

    #[test]
    fn a_directory_of_devices() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("ignored-symlink")).unwrap();
        // No device nodes can be made without mknod; /dev itself is a directory of them.
        let g = resolve(&req("/dev", "/hostdev", "r")).unwrap();
        assert!(g.iter().any(|g| g.device.path() == Path::new("/hostdev/null")));
        assert!(g.iter().all(|g| g.rule.access().as_deref() == Some("r")));
        assert!(resolve(&req(dir.path().to_str().unwrap(), "", "")).unwrap().is_empty());
    }

    #[test]
    fn privileged_gets_the_hosts_dev() {
        let g = host_devices().unwrap();
        assert!(g.iter().any(|g| g.device.path() == Path::new("/dev/null")));
        assert!(!g.iter().any(|g| g.device.path().starts_with("/dev/pts")));
    }

    #[test]
    fn cgroup_rules() {
        let r = parse_cgroup_rule("c 1:3 mr").unwrap();
        assert_eq!((r.typ(), r.major(), r.minor(), r.access().as_deref()), (Some(LinuxDeviceType::C), Some(1), Some(3), Some("mr")));
        let r = parse_cgroup_rule("a *:* rwm").unwrap();
        assert_eq!((r.major(), r.minor()), (None, None));
        assert!(parse_cgroup_rule("b 7:* rmw").is_ok());
        for bad in ["", "c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rwx", "c 1:3 rwmr", "c a:3 r", "c 99999999999:1 r", "c  1:3 r"] {
            assert_eq!(parse_cgroup_rule(bad).unwrap_err().to_string(), format!("invalid device cgroup format '{bad}'"));
        }
    }
}
