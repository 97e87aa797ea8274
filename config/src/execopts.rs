//! `exec-opts`: options of the container execution driver, read as dockerd
//! reads them (`key=value`, the key case-insensitive, spaces around either
//! trimmed). berth knows one option, `native.cgroupdriver=cgroupfs|systemd`;
//! any other is an error naming it (dockerd ignores unknown keys silently).
//!
//! Whether the systemd driver can be used on this host, and which driver an
//! unset option means, is decided when the daemon starts (the engine's
//! `cgroups` module): this module only reads what the user wrote.

use std::fmt;

use serde::Serialize;

/// The option key, as dockerd spells it.
pub const CGROUP_DRIVER_KEY: &str = "native.cgroupdriver";

/// Who manages the containers' cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// The runtime writes the cgroup filesystem itself (`cgroupsPath`
    /// `/<namespace>/<id>`).
    Cgroupfs,
    /// The runtime asks systemd for a scope (`cgroupsPath`
    /// `system.slice:<prefix>:<id>`, runc's `SystemdCgroup`).
    Systemd,
}

impl CgroupDriver {
    /// The name `docker info` shows (`CgroupDriver`).
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

impl fmt::Display for CgroupDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings `exec-opts` gives (all optional: absent = not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExecOpts {
    pub cgroup_driver: Option<CgroupDriver>,
}

impl ExecOpts {
    /// How a reload report names these settings (`[]` when none is set).
    pub fn describe(&self) -> String {
        match self.cgroup_driver {
            Some(d) => format!("[{CGROUP_DRIVER_KEY}={d}]"),
            None => "[]".to_string(),
        }
    }
}

/// Parses the options. Every bad option gives one `(index, message)`.
pub fn parse(opts: &[String]) -> Result<ExecOpts, Vec<(usize, String)>> {
    let mut out = ExecOpts::default();
    let mut problems = Vec::new();
    for (i, raw) in opts.iter().enumerate() {
        let Some((key, value)) = raw.split_once('=') else {
            problems.push((i, format!("invalid exec-opt {raw:?}: use key=value, such as {CGROUP_DRIVER_KEY}=systemd")));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if !key.eq_ignore_ascii_case(CGROUP_DRIVER_KEY) {
            problems.push((i, format!("unknown exec-opt {key:?}: the only option berth knows is {CGROUP_DRIVER_KEY} (cgroupfs or systemd)")));
            continue;
        }
        let driver = match value {
            "cgroupfs" => CgroupDriver::Cgroupfs,
            "systemd" => CgroupDriver::Systemd,
            other => {
                problems.push((i, format!("{CGROUP_DRIVER_KEY} option {other} not supported: use cgroupfs or systemd")));
                continue;
            }
        };
        match out.cgroup_driver {
            Some(prev) if prev != driver => problems.push((
                i,
                format!("{CGROUP_DRIVER_KEY} is set twice, to {prev} and to {driver}; keep one"),
            )),
            _ => out.cgroup_driver = Some(driver),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<ExecOpts, Vec<(usize, String)>> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_cgroup_driver_as_dockerd_reads_it() {
        assert_eq!(p(&[]).unwrap().cgroup_driver, None);
        assert_eq!(p(&["native.cgroupdriver=systemd"]).unwrap().cgroup_driver, Some(CgroupDriver::Systemd));
        assert_eq!(p(&["native.cgroupdriver=cgroupfs"]).unwrap().cgroup_driver, Some(CgroupDriver::Cgroupfs));
        // The key is case-insensitive and spaces around key and value are trimmed.
        assert_eq!(p(&[" Native.CgroupDriver = systemd "]).unwrap().cgroup_driver, Some(CgroupDriver::Systemd));
        // The same value twice is harmless.
        assert_eq!(p(&["native.cgroupdriver=systemd", "native.cgroupdriver=systemd"]).unwrap().cgroup_driver, Some(CgroupDriver::Systemd));
    }

    #[test]
    fn anything_else_is_an_error_naming_it() {
        let e = p(&["native.cgroupdriver=none", "native.umask=normal", "systemd", "native.cgroupdriver=Systemd"]).unwrap_err();
        let m: Vec<_> = e.iter().map(|(i, m)| format!("{i}: {m}")).collect();
        assert_eq!(
            m,
            [
                "0: native.cgroupdriver option none not supported: use cgroupfs or systemd",
                "1: unknown exec-opt \"native.umask\": the only option berth knows is native.cgroupdriver (cgroupfs or systemd)",
                "2: invalid exec-opt \"systemd\": use key=value, such as native.cgroupdriver=systemd",
                "3: native.cgroupdriver option Systemd not supported: use cgroupfs or systemd",
            ]
        );
        let e = p(&["native.cgroupdriver=systemd", "native.cgroupdriver=cgroupfs"]).unwrap_err();
        assert_eq!(e, [(1, "native.cgroupdriver is set twice, to systemd and to cgroupfs; keep one".to_string())]);
    }

    #[test]
    fn describe_for_reload_reports() {
        assert_eq!(ExecOpts::default().describe(), "[]");
        assert_eq!(ExecOpts { cgroup_driver: Some(CgroupDriver::Systemd) }.describe(), "[native.cgroupdriver=systemd]");
    }
}
