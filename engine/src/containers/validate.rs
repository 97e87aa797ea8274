//! The rules a new container's settings must follow, with dockerd's
//! messages where dockerd has one. The API maps Docker's wire body into
//! berth's types; every decision about what is allowed is made here, once,
//! for every caller.
//!
//! [`normalize`] also puts settings in their canonical form (network mode
//! `""` → `default`, a non-positive pids limit → none).

use std::collections::BTreeSet;

use berth_store::{ContainerConfig, HostConfig, MountKind};

use crate::binds::{parse_bind, BindError};
use crate::confine::ConfineError;

/// A create request berth refuses. Every variant is a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("invalid restart policy '{0}'")]
    InvalidRestartPolicy(String),
    #[error("maximum retry count cannot be used with restart policy '{0}'")]
    RetryCountNotAllowed(String),
    #[error("maximum retry count cannot be negative")]
    NegativeRetryCount,
    #[error("can't create 'AutoRemove' container with restart policy")]
    AutoRemoveWithRestartPolicy,
    #[error(transparent)]
    Bind(#[from] BindError),
    /// dockerd's `errMountConfig`: `invalid mount config for type "bind": <reason>`.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    MountConfig { kind: String, reason: String },
    #[error("Duplicate mount point: {0}")]
    DuplicateMountPoint(String),
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    WorkingDir(String),
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")]
    CpuPeriod,
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuota,
    #[error("Conflicting options: Nano CPUs and CPU {0} cannot both be set")]
    NanoCpusConflict(&'static str),
    #[error("NanoCpus can not be negative")]
    NanoCpusNegative,
    #[error("Invalid signal: {0}")]
    Signal(String),
    #[error(
        "invalid hostname {0:?}: a hostname is 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit"
    )]
    Hostname(String),
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    /// Something Docker has that berth does not do yet.
    #[error("{0}")]
    Unsupported(String),
    /// Any other invalid setting, with dockerd's message.
    #[error("{0}")]
    Invalid(String),
}

/// dockerd's minimum memory limit (6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// CFS period used for `NanoCpus` (Docker's default, 100 ms).
pub const DEFAULT_CPU_PERIOD: i64 = 100_000;
/// The kernel's `HOST_NAME_MAX`.
pub const MAX_HOSTNAME: usize = 64;
/// dockerd's default `/dev/shm` size (its `default-shm-size`, 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Checks and normalises a new container's settings. Confinement options
/// (capabilities, security options, devices) are checked by
/// [`crate::confine::confinement`], which the caller runs too.
pub fn normalize(config: &mut ContainerConfig, host: &mut HostConfig) -> Result<(), CreateError> {
    check_config(config)?;
    host.network_mode = normalize_network_mode(&host.network_mode)?;
    check_restart_policy(host)?;
    check_groups(host)?;
    check_mounts(host)?;
    check_resources(host)?;
    if host.pids_limit.is_some_and(|n| n <= 0) {
        host.pids_limit = None;
    }
    check_namespaces(config, host)?;
    check_sysctls(host)?;
    Ok(())
}

fn invalid(msg: String) -> CreateError {
    CreateError::Invalid(msg)
}

/// The container named by a `container:<name|id>` mode.
pub fn joined_container(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// PID, IPC, UTS and cgroup namespace modes, the isolation and the shm
/// size, with dockerd's messages; `""` IPC mode becomes dockerd's default
/// `private`, a 0 shm size its default 64 MiB.
fn check_namespaces(c: &ContainerConfig, h: &mut HostConfig) -> Result<(), CreateError> {
    match h.pid_mode.as_str() {
        "" | "host" => {}
        m if joined_container(m).is_some_and(|x| !x.is_empty()) => {}
        m => return Err(invalid(format!("invalid PID mode: {m}"))),
    }
    match h.ipc_mode.as_str() {
        "" => h.ipc_mode = "private".into(),
        "private" | "shareable" | "host" | "none" => {}
        m if joined_container(m).is_some_and(|x| !x.is_empty()) => {}
        m => return Err(invalid(format!("invalid IPC mode: {m}"))),
    }
    match h.uts_mode.as_str() {
        "" => {}
        "host" if !c.hostname.is_empty() => return Err(invalid("conflicting options: hostname and the UTS mode".into())),
        "host" => {}
        m => return Err(invalid(format!("invalid UTS mode: {m}"))),
    }
    match h.cgroupns_mode.as_str() {
        "" | "private" | "host" => {}
        m => return Err(invalid(format!("invalid cgroup namespace mode: {m}"))),
    }
    if !(h.isolation.is_empty() || h.isolation.eq_ignore_ascii_case("default")) {
        return Err(invalid(format!("Invalid isolation: {:?} - linux only supports 'default'", h.isolation)));
    }
    if h.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0".into()));
    }
    if h.shm_size == 0 {
        h.shm_size = DEFAULT_SHM_SIZE;
    }
    Ok(())
}

/// The IPC sysctls a private IPC namespace holds (runc's list).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Only sysctls of a namespace the container has its own of (runc's rules
/// and messages, checked here so every runtime refuses alike and at create).
fn check_sysctls(h: &HostConfig) -> Result<(), CreateError> {
    for (k, v) in &h.sysctls {
        if v.contains('\n') || k.contains(['/', '\n', ' ']) || k.is_empty() {
            return Err(invalid(format!("invalid sysctl {k:?}={v:?}")));
        }
        if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if h.ipc_mode == "host" {
                return Err(invalid(format!("sysctl {k:?} is not allowed in the hosts ipc namespace")));
            }
            continue;
        }
        if k.starts_with("net.") {
            if h.network_mode == "host" {
                return Err(invalid(format!("sysctl {k:?} is not allowed in the hosts network namespace")));
            }
            continue;
        }
        if h.uts_mode != "host" {
            match k.as_str() {
                "kernel.domainname" => continue,
                "kernel.hostname" => {
                    return Err(invalid(format!("sysctl {k:?} is not allowed as it conflicts with the OCI \"hostname\" field")))
                }
                _ => {}
            }
        }
        return Err(invalid(format!("sysctl {k:?} is not in a separate kernel namespace")));
    }
    Ok(())
}

/// dockerd's tmpfs mount options (`MergeTmpfsOptions`): its defaults
/// `noexec,nosuid,nodev,rprivate` and then the given ones, the later of two
/// flags that set the same thing (`exec` after `noexec`) and of two `size=`
/// winning.
pub fn tmpfs_options(data: &str) -> Result<Vec<String>, CreateError> {
    let mut options: Vec<&str> = vec!["noexec", "nosuid", "nodev", "rprivate"];
    if !data.is_empty() {
        options.extend(data.split(','));
    }
    let mut seen_flags: Vec<&str> = Vec::new();
    let mut seen_data: Vec<&str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for o in options.into_iter().rev() {
        if o == "defaults" {
            continue;
        }
        if let Some(key) = tmpfs_flag_key(o) {
            if !seen_flags.contains(&key) {
                seen_flags.push(key);
                out.push(o.to_string());
            }
            continue;
        }
        match o.split_once('=') {
            Some((k, _)) if matches!(k, "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol") => {
                if !seen_data.contains(&k) {
                    seen_data.push(k);
                    out.push(o.to_string());
                }
            }
            _ => {
                // Go's `%q` of the option split at its first `=`.
                let parts: Vec<String> = o.splitn(2, '=').map(|p| format!("{p:?}")).collect();
                return Err(invalid(format!("invalid tmpfs option [{}]", parts.join(" "))));
            }
        }
    }
    // Collected from the end (linear for any number of options).
    out.reverse();
    Ok(out)
}

/// The mount flag an option sets or clears (flags that undo each other
/// share a key; all propagation modes share one).
fn tmpfs_flag_key(o: &str) -> Option<&'static str> {
    Some(match o {
        "ro" | "rw" => "rdonly",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "bind" => "bind",
        "rbind" => "rbind",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "unbindable" | "runbindable" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => "propagation",
        _ => return None,
    })
}

fn check_config(c: &ContainerConfig) -> Result<(), CreateError> {
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(CreateError::WorkingDir(c.working_dir.clone()));
    }
    if let Some(s) = &c.stop_signal {
        crate::signal::parse(s).ok_or_else(|| CreateError::Signal(s.clone()))?;
    }
    if !c.hostname.is_empty() && !valid_hostname(&c.hostname) {
        return Err(CreateError::Hostname(c.hostname.clone()));
    }
    crate::user::validate(&c.user).map_err(|e| CreateError::User(e.to_string()))?;
    Ok(())
}

fn check_groups(h: &HostConfig) -> Result<(), CreateError> {
    crate::user::validate_groups(&h.group_add).map_err(|e| CreateError::User(e.to_string()))
}

/// A hostname berth writes into `/etc/hostname` and `/etc/hosts`: no
/// whitespace, newline or other byte that could add a line or a field.
pub fn valid_hostname(h: &str) -> bool {
    let b = h.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_HOSTNAME
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A network mode in canonical form: `""` becomes `default` (as in
/// dockerd); `container:<x>` needs a container; any other is a network's
/// name, checked against the networks at create.
pub fn normalize_network_mode(mode: &str) -> Result<String, CreateError> {
    match mode {
        "" | "default" => Ok("default".into()),
        "container:" => Err(CreateError::Unsupported("invalid network mode \"container:\": name the container (container:NAME or container:ID)".into())),
        m if m.contains(char::is_whitespace) => Err(CreateError::Unsupported(format!("invalid network mode {m:?}"))),
        m => Ok(m.into()),
    }
}

pub fn check_restart_policy(h: &HostConfig) -> Result<(), CreateError> {
    let p = &h.restart_policy;
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => return Err(CreateError::InvalidRestartPolicy(other.to_owned())),
    }
    match p.name.as_str() {
        "always" | "unless-stopped" | "no" if p.maximum_retry_count != 0 => {
            return Err(CreateError::RetryCountNotAllowed(p.name.clone()))
        }
        "on-failure" if p.maximum_retry_count < 0 => return Err(CreateError::NegativeRetryCount),
        _ => {}
    }
    if h.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(CreateError::AutoRemoveWithRestartPolicy);
    }
    Ok(())
}

/// A container path in canonical form: `.` and `..` resolved lexically,
/// no repeated or trailing `/` (so `/x/` and `/a/../x` are both `/x`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn check_mounts(h: &HostConfig) -> Result<(), CreateError> {
    let mut targets = BTreeSet::new();
    for spec in &h.binds {
        let b = parse_bind(spec)?;
        if !targets.insert(clean_path(&b.target)) {
            return Err(CreateError::DuplicateMountPoint(b.target));
        }
    }
    for m in &h.mounts {
        let kind = match m.kind {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        };
        let err = |reason: String| CreateError::MountConfig { kind: kind.into(), reason };
        if m.kind != MountKind::Bind {
            return Err(CreateError::Unsupported(format!(
                "berth does not support mounts of type \"{kind}\" yet (supported: bind)"
            )));
        }
        if m.target.is_empty() {
            return Err(err("field Target must not be empty".into()));
        }
        if m.source.is_empty() {
            return Err(err("field Source must not be empty".into()));
        }
        if !m.target.starts_with('/') {
            return Err(err(format!("invalid mount path: '{}' mount path must be absolute", m.target)));
        }
        if clean_path(&m.target) == "/" {
            return Err(err("invalid specification: destination can't be '/'".into()));
        }
        if !m.source.starts_with('/') {
            return Err(err(format!("invalid mount path: '{}' mount path must be absolute", m.source)));
        }
        if !targets.insert(clean_path(&m.target)) {
            return Err(CreateError::DuplicateMountPoint(m.target.clone()));
        }
    }
    for (dest, data) in &h.tmpfs {
        if clean_path(dest) == "/" {
            return Err(invalid("invalid specification: destination can't be '/'".into()));
        }
        if !dest.starts_with('/') {
            return Err(invalid(format!("invalid mount path: '{dest}' mount path must be absolute")));
        }
        if !targets.insert(clean_path(dest)) {
            return Err(CreateError::DuplicateMountPoint(dest.clone()));
        }
        tmpfs_options(data)?;
    }
    Ok(())
}

fn check_resources(h: &mut HostConfig) -> Result<(), CreateError> {
    check_memory_floor_and_cpu(h)?;
    check_memory(h, false)?;
    if h.cpu_realtime_period != 0 && h.cpu_realtime_runtime != 0 && h.cpu_realtime_runtime > h.cpu_realtime_period {
        return Err(invalid("cpu-rt-runtime cannot be higher than cpu-rt-period".into()));
    }
    if h.cpu_realtime_period < 0 || h.cpu_realtime_runtime < 0 {
        return Err(invalid("CPU real-time period and runtime cannot be negative".into()));
    }
    Ok(())
}

/// dockerd's rules for the memory floor and the CPU period, quota and
/// `--cpus` (shared by create and `docker update`).
pub fn check_memory_floor_and_cpu(h: &HostConfig) -> Result<(), CreateError> {
    if h.memory > 0 && h.memory < MIN_MEMORY {
        return Err(CreateError::MemoryTooLow);
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(CreateError::CpuPeriod);
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return Err(CreateError::CpuQuota);
    }
    match h.nano_cpus {
        0 => {}
        n if n < 0 => return Err(CreateError::NanoCpusNegative),
        _ if h.cpu_period > 0 => return Err(CreateError::NanoCpusConflict("Period")),
        _ if h.cpu_quota > 0 => return Err(CreateError::NanoCpusConflict("Quota")),
        _ => {}
    }
    Ok(())
}

/// dockerd's memory rules (`update`: checking a `docker update`, where a
/// swap limit may come without a memory limit).
pub fn check_memory(h: &mut HostConfig, update: bool) -> Result<(), CreateError> {
    if h.memory > 0 && h.memory_swap > 0 && h.memory_swap < h.memory {
        return Err(invalid("Minimum memoryswap limit should be larger than memory limit, see usage".into()));
    }
    if h.memory == 0 && h.memory_swap > 0 && !update {
        return Err(invalid("You should always set the Memory limit when using Memoryswap limit, see usage".into()));
    }
    if h.memory_swap < -1 {
        return Err(invalid(format!("invalid memory swap limit {}: -1 (unlimited), 0 (unset) or a size in bytes", h.memory_swap)));
    }
    match h.memory_swappiness {
        Some(-1) => h.memory_swappiness = None,
        Some(s) if !(0..=100).contains(&s) => {
            return Err(invalid(format!("Invalid value: {s}, valid memory swappiness range is 0-100")))
        }
        _ => {}
    }
    if h.memory_reservation > 0 && h.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB".into()));
    }
    if h.memory > 0 && h.memory_reservation > 0 && h.memory < h.memory_reservation {
        return Err(invalid("Minimum memory limit can not be less than memory reservation limit, see usage".into()));
    }
    Ok(())
}

/// The CFS (quota, period) of `NanoCpus`: Docker's 100 ms period, at least
/// a 1 ms quota.
pub fn nano_cpus_quota(nano: i64) -> (i64, i64) {
    let quota = (i128::from(nano) * i128::from(DEFAULT_CPU_PERIOD) / 1_000_000_000).clamp(1000, i128::from(i64::MAX)) as i64;
    (quota, DEFAULT_CPU_PERIOD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::{Mount, RestartPolicy};

    fn ok(host: HostConfig) -> HostConfig {
        let mut h = host;
        normalize(&mut ContainerConfig::default(), &mut h).unwrap();
        h
    }

    fn err(host: HostConfig) -> String {
        let mut h = host;
        normalize(&mut ContainerConfig::default(), &mut h).unwrap_err().to_string()
    }

    fn err_config(c: ContainerConfig) -> String {
        normalize(&mut c.clone(), &mut HostConfig::default()).unwrap_err().to_string()
    }

    fn rp(name: &str, n: i64, auto_remove: bool) -> HostConfig {
        HostConfig { auto_remove, restart_policy: RestartPolicy { name: name.into(), maximum_retry_count: n }, ..Default::default() }
    }

    #[test]
    fn restart_policies() {
        for good in [rp("always", 0, false), rp("unless-stopped", 0, false), rp("no", 0, true), rp("", 0, true), rp("on-failure", 3, false)] {
            ok(good);
        }
        assert_eq!(err(rp("always", 2, false)), "maximum retry count cannot be used with restart policy 'always'");
        assert_eq!(err(rp("on-failure", -1, false)), "maximum retry count cannot be negative");
        assert_eq!(err(rp("always", 0, true)), "can't create 'AutoRemove' container with restart policy");
        assert_eq!(err(rp("sometimes", 0, false)), "invalid restart policy 'sometimes'");
    }

    #[test]
    fn network_modes() {
        assert_eq!(ok(HostConfig::default()).network_mode, "default");
        for m in ["default", "bridge", "none", "host", "container:abc", "mynet"] {
            assert_eq!(ok(HostConfig { network_mode: m.into(), ..Default::default() }).network_mode, m);
        }
        for bad in ["container:", "my net"] {
            let e = err(HostConfig { network_mode: bad.into(), ..Default::default() });
            assert!(e.contains("invalid network mode"), "{e}");
        }
    }

    #[test]
    fn mount_targets_are_compared_cleaned() {
        let binds = |b: &[&str]| HostConfig { binds: b.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        ok(binds(&["/h:/c:ro", "/i:/d"]));
        assert_eq!(err(binds(&["/h:/c", "/i:/c"])), "Duplicate mount point: /c");
        assert_eq!(err(binds(&["/h:/x", "/i:/x/"])), "Duplicate mount point: /x/");
        assert_eq!(err(binds(&["/h:/a/../b", "/i:/b"])), "Duplicate mount point: /b");
        assert_eq!(err(binds(&["/a:/b:xx"])), "invalid mode: xx");
        let m = |source: &str, target: &str| Mount { kind: MountKind::Bind, source: source.into(), target: target.into(), read_only: false };
        let mounts = |v: Vec<Mount>| HostConfig { mounts: v, ..Default::default() };
        ok(mounts(vec![m("/h", "/c")]));
        assert_eq!(err(mounts(vec![m("/h", "")])), "invalid mount config for type \"bind\": field Target must not be empty");
        assert_eq!(err(mounts(vec![m("", "/c")])), "invalid mount config for type \"bind\": field Source must not be empty");
        assert_eq!(err(mounts(vec![m("h", "/c")])), "invalid mount config for type \"bind\": invalid mount path: 'h' mount path must be absolute");
        assert!(err(mounts(vec![m("/h", "/x/..")])).contains("destination can't be '/'"));
        assert!(err(mounts(vec![m("/h", "//")])).contains("destination can't be '/'"));
        let e = err(HostConfig { binds: vec!["/h:/c".into()], mounts: vec![m("/x", "/c/")], ..Default::default() });
        assert_eq!(e, "Duplicate mount point: /c/");
        let vol = Mount { kind: MountKind::Volume, ..m("v", "/c") };
        assert!(err(mounts(vec![vol])).contains("mounts of type \"volume\""));
        assert_eq!(clean_path("/a//b/./c/../"), "/a/b");
    }

    #[test]
    fn resources() {
        assert_eq!(err(HostConfig { memory: 1000, ..Default::default() }), "Minimum memory limit allowed is 6MB");
        assert!(err(HostConfig { cpu_period: 10, ..Default::default() }).starts_with("CPU cfs period"));
        assert!(err(HostConfig { cpu_quota: 10, ..Default::default() }).starts_with("CPU cfs quota"));
        assert_eq!(
            err(HostConfig { nano_cpus: 1_000_000_000, cpu_quota: 5000, ..Default::default() }),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        assert_eq!(err(HostConfig { nano_cpus: -1, ..Default::default() }), "NanoCpus can not be negative");
        assert_eq!(nano_cpus_quota(1_500_000_000), (150_000, 100_000));
        assert_eq!(nano_cpus_quota(1), (1000, 100_000));
        assert_eq!(ok(HostConfig { pids_limit: Some(-1), ..Default::default() }).pids_limit, None);
    }

    #[test]
    fn namespace_modes_isolation_and_shm() {
        let h = ok(HostConfig::default());
        assert_eq!((h.ipc_mode.as_str(), h.shm_size), ("private", DEFAULT_SHM_SIZE), "dockerd's defaults");
        for (field, good, bad, msg) in [
            ("pid", &["host", "container:x"][..], &["bogus", "container:"][..], "invalid PID mode: "),
            ("ipc", &["private", "shareable", "host", "none", "container:x"][..], &["bogus", "container:"][..], "invalid IPC mode: "),
            ("uts", &["host"][..], &["bogus", "private"][..], "invalid UTS mode: "),
            ("cgroupns", &["host", "private"][..], &["bogus"][..], "invalid cgroup namespace mode: "),
        ] {
            let with = |v: &str| {
                let mut h = HostConfig::default();
                *match field {
                    "pid" => &mut h.pid_mode,
                    "ipc" => &mut h.ipc_mode,
                    "uts" => &mut h.uts_mode,
                    _ => &mut h.cgroupns_mode,
                } = v.to_string();
                h
            };
            for g in good {
                ok(with(g));
            }
            for b in bad {
                assert_eq!(err(with(b)), format!("{msg}{b}"));
            }
        }
        let e = normalize(&mut ContainerConfig { hostname: "x".into(), ..Default::default() }, &mut HostConfig { uts_mode: "host".into(), ..Default::default() });
        assert_eq!(e.unwrap_err().to_string(), "conflicting options: hostname and the UTS mode");
        ok(HostConfig { isolation: "Default".into(), ..Default::default() });
        assert_eq!(err(HostConfig { isolation: "hyperv".into(), ..Default::default() }), "Invalid isolation: \"hyperv\" - linux only supports 'default'");
        assert_eq!(err(HostConfig { shm_size: -1, ..Default::default() }), "SHM size can not be less than 0");
        assert_eq!(ok(HostConfig { shm_size: 1, ..Default::default() }).shm_size, 1);
    }

    #[test]
    fn sysctls_need_a_namespace_of_their_own() {
        let s = |k: &str, net: &str, ipc: &str, uts: &str| {
            let h = HostConfig {
                sysctls: [(k.to_string(), "1".to_string())].into_iter().collect(),
                network_mode: net.into(),
                ipc_mode: ipc.into(),
                uts_mode: uts.into(),
                ..Default::default()
            };
            normalize(&mut ContainerConfig::default(), &mut h.clone()).err().map(|e| e.to_string())
        };
        assert_eq!(s("net.ipv4.ip_forward", "none", "", ""), None);
        assert_eq!(s("net.ipv4.ip_forward", "host", "", "").unwrap(), "sysctl \"net.ipv4.ip_forward\" is not allowed in the hosts network namespace");
        assert_eq!(s("kernel.shmmax", "none", "", ""), None);
        assert_eq!(s("fs.mqueue.msg_max", "none", "shareable", ""), None);
        assert_eq!(s("kernel.shmmax", "none", "host", "").unwrap(), "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace");
        assert_eq!(s("kernel.domainname", "none", "", ""), None);
        assert!(s("kernel.domainname", "none", "", "host").unwrap().contains("is not in a separate kernel namespace"));
        assert!(s("kernel.hostname", "none", "", "").unwrap().contains("conflicts with the OCI \"hostname\" field"));
        assert_eq!(s("vm.swappiness", "none", "", "").unwrap(), "sysctl \"vm.swappiness\" is not in a separate kernel namespace");
        assert!(s("net.a\nb", "none", "", "").unwrap().starts_with("invalid sysctl"));
    }

    #[test]
    fn tmpfs_options_merge_as_dockerd() {
        assert_eq!(tmpfs_options("").unwrap(), ["noexec", "nosuid", "nodev", "rprivate"]);
        assert_eq!(tmpfs_options("size=3m").unwrap(), ["noexec", "nosuid", "nodev", "rprivate", "size=3m"]);
        // The later of two options for the same flag or key wins.
        assert_eq!(tmpfs_options("exec,size=1m,size=2m,rshared").unwrap(), ["nosuid", "nodev", "exec", "size=2m", "rshared"]);
        assert_eq!(tmpfs_options("defaults,ro").unwrap(), ["noexec", "nosuid", "nodev", "rprivate", "ro"]);
        assert_eq!(tmpfs_options("bogus").unwrap_err().to_string(), "invalid tmpfs option [\"bogus\"]");
        assert_eq!(tmpfs_options("size").unwrap_err().to_string(), "invalid tmpfs option [\"size\"]");
        assert_eq!(tmpfs_options("foo=1").unwrap_err().to_string(), "invalid tmpfs option [\"foo\" \"1\"]");
        let t = |d: &str| HostConfig { tmpfs: [(d.to_string(), String::new())].into_iter().collect(), ..Default::default() };
        assert_eq!(err(t("/")), "invalid specification: destination can't be '/'");
        assert_eq!(err(t("rel")), "invalid mount path: 'rel' mount path must be absolute");
        assert_eq!(err(HostConfig { binds: vec!["/h:/x".into()], ..t("/x/") }), "Duplicate mount point: /x/");
    }

    #[test]
    fn memory_rules() {
        let m = |memory: i64, swap: i64, res: i64| HostConfig { memory: memory << 20, memory_swap: swap << 20, memory_reservation: res << 20, ..Default::default() };
        ok(m(64, 128, 32));
        ok(HostConfig { memory: 64 << 20, memory_swap: -1, ..Default::default() });
        assert_eq!(err(m(64, 32, 0)), "Minimum memoryswap limit should be larger than memory limit, see usage");
        assert_eq!(err(m(0, 32, 0)), "You should always set the Memory limit when using Memoryswap limit, see usage");
        assert_eq!(err(m(0, 0, 1)), "Minimum memory reservation allowed is 6MB");
        assert_eq!(err(m(64, 0, 128)), "Minimum memory limit can not be less than memory reservation limit, see usage");
        assert_eq!(ok(HostConfig { memory_swappiness: Some(-1), ..Default::default() }).memory_swappiness, None);
        assert_eq!(err(HostConfig { memory_swappiness: Some(101), ..Default::default() }), "Invalid value: 101, valid memory swappiness range is 0-100");
        assert_eq!(
            err(HostConfig { cpu_realtime_period: 1000, cpu_realtime_runtime: 2000, ..Default::default() }),
            "cpu-rt-runtime cannot be higher than cpu-rt-period"
        );
    }

    #[test]
    fn config_checks() {
        assert_eq!(
            err_config(ContainerConfig { working_dir: "rel".into(), ..Default::default() }),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        assert_eq!(err_config(ContainerConfig { stop_signal: Some("SIGNOPE".into()), ..Default::default() }), "Invalid signal: SIGNOPE");
        for bad in ["a\nb", "a b", "-x", "", &"a".repeat(65), "a\tb", "ä"] {
            if bad.is_empty() {
                continue; // empty = the short id
            }
            let e = err_config(ContainerConfig { hostname: bad.into(), ..Default::default() });
            assert!(e.starts_with("invalid hostname"), "{bad:?}: {e}");
        }
        for good in ["web", "a_b.c", "web-1.example.org", &"a".repeat(64)] {
            normalize(&mut ContainerConfig { hostname: good.into(), ..Default::default() }, &mut HostConfig::default()).unwrap();
        }
        assert!(err_config(ContainerConfig { user: "1:2:3".into(), ..Default::default() }).contains("1:2:3"));
    }
}
