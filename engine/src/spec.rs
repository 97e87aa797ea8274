//! The OCI runtime spec of a container, built with `oci-spec` from the
//! container's record and its image's defaults, close to what dockerd
//! generates: Docker's default capabilities, mounts, masked paths and device
//! rules; namespaces by network mode; resources from the host config.
//!
//! No rlimits are set but the container's `Ulimits` (checked at create
//! against the daemon's own hard limits, [`crate::containers::limits`]):
//! the daemon may lack CAP_SYS_RESOURCE, so a default above its own hard
//! limit would fail every start; the container inherits the shim's limits.

use std::path::{Path, PathBuf};

use berth_store::{ContainerConfig, HostConfig, MountKind};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use crate::confine::Confinement;
use crate::user::ExecUser;
use berth_security::CapSet;

/// What the image says a container runs by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    /// `EXPOSE`d ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `HEALTHCHECK`.
    pub healthcheck: Option<berth_store::Healthcheck>,
}

/// The network setup a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// A private network namespace: a new one with loopback only, or the
    /// one berth set up ([`SpecInput::netns`]).
    Private,
}

impl Network {
    /// Maps `HostConfig.NetworkMode` (checked at create): every mode but
    /// `host` has a namespace of its own or joins one.
    pub fn from_mode(mode: &str) -> Network {
        if mode == "host" {
            Network::Host
        } else {
            Network::Private
        }
    }
}

/// Files berth generates per container and bind-mounts into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Where the init binary is mounted in a container (dockerd's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// What a container's namespaces and mounts join outside itself, found at
/// start: another container's namespaces, a host directory for `/dev/shm`,
/// the init binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joins {
    /// The PID namespace of `PidMode: container:X` (`/proc/<pid>/ns/pid`).
    pub pid_ns: Option<PathBuf>,
    /// The IPC namespace of `IpcMode: container:X`.
    pub ipc_ns: Option<PathBuf>,
    /// The host directory bind-mounted at `/dev/shm`: a shareable
    /// container's own shm, the joined container's, or the host's
    /// `/dev/shm`. `None` with a private IPC namespace: a tmpfs of its own.
    pub shm: Option<PathBuf>,
    /// The init binary to run as PID 1 (`Init`), mounted at [`INIT_PATH`].
    pub init: Option<PathBuf>,
}

impl Joins {
    /// Stand-ins for what only a start can find, so that a create can build
    /// (and so check) the spec.
    pub fn placeholder(h: &HostConfig, init: Option<PathBuf>) -> Joins {
        let joined = |mode: &str, ns: &str| mode.starts_with("container:").then(|| PathBuf::from(format!("/proc/1/ns/{ns}")));
        Joins {
            pid_ns: joined(&h.pid_mode, "pid"),
            ipc_ns: joined(&h.ipc_mode, "ipc"),
            shm: needs_shm_dir(&h.ipc_mode).then(|| PathBuf::from("/dev/shm")),
            init,
        }
    }
}

/// Whether an IPC mode's `/dev/shm` is a host directory (bind-mounted)
/// rather than a tmpfs of the container's own.
pub fn needs_shm_dir(ipc_mode: &str) -> bool {
    ipc_mode == "shareable" || ipc_mode == "host" || ipc_mode.starts_with("container:")
}

/// Everything the spec depends on.
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// `linux.cgroupsPath` (by cgroup driver: [`crate::cgroups::Cgroups::spec_path`]).
    pub cgroups_path: &'a str,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    pub image: &'a ImageDefaults,
    pub etc: Option<&'a EtcFiles>,
    /// The network namespace to join (set up by berth, or another
    /// container's); `None` = a new one (or the host's for `host`).
    pub netns: Option<&'a std::path::Path>,
    /// Capabilities, seccomp, devices, read-only root, masked paths
    /// ([`crate::confine`]).
    pub confine: &'a Confinement,
    /// Namespaces and files outside the container.
    pub joins: &'a Joins,
}

/// Errors building a spec: always the user's input, so HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("No command specified")]
    NoCommand,
    #[error("{0}")]
    Invalid(String),
}

/// The command a container runs: entrypoint + cmd, with Docker's rules (a
/// container's entrypoint replaces the image's and drops the image's cmd).
pub fn command(config: &ContainerConfig, image: &ImageDefaults) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd) = match &config.entrypoint {
        Some(ep) => (ep.clone(), config.cmd.clone().unwrap_or_default()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            config.cmd.clone().or_else(|| image.cmd.clone()).unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The process environment: Docker's merge of the image env into the
/// container's (see [`crate::env`]), then its defaults (`PATH`, `HOSTNAME`,
/// `TERM` with a TTY). Linear in the number of entries.
pub fn environment(config: &ContainerConfig, image: &ImageDefaults, hostname: &str) -> Vec<String> {
    crate::env::process_env(&crate::env::merge_image_env(&config.env, &image.env), hostname, config.tty)
}

/// The container's hostname: as configured, else the short id.
pub fn hostname(config: &ContainerConfig, id: &str) -> String {
    if !config.hostname.is_empty() {
        config.hostname.clone()
    } else {
        id.chars().take(12).collect()
    }
}

/// A capability set as the bounding, effective and permitted sets, and no
/// inheritable or ambient ones, as dockerd since 20.10.14 (so a non-root
/// process keeps none). Unset sets must be set to `None` explicitly: the
/// builder would fill them with oci-spec's default (which grants
/// AUDIT_WRITE, KILL and NET_BIND_SERVICE as ambient capabilities).
fn capabilities(set: CapSet) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let caps: std::collections::HashSet<Capability> = set.iter().map(|c| c.to_oci()).collect();
    let mut c = oci_spec::runtime::LinuxCapabilities::default();
    let some = (!caps.is_empty()).then_some(caps);
    c.set_bounding(some.clone());
    c.set_effective(some.clone());
    c.set_permitted(some);
    c.set_inheritable(None);
    c.set_ambient(None);
    Ok(c)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| SpecError::Invalid(e.to_string()))
}

/// The mounts every container gets, `/dev/shm` by IPC mode: a tmpfs of
/// `ShmSize` (private, the default), the host directory of [`Joins::shm`]
/// (shareable, `container:X`, host), none (`none`).
fn default_mounts(c: &Confinement, h: &HostConfig, joins: &Joins) -> Result<Vec<Mount>, SpecError> {
    let sys = if c.writable_sysfs { "rw" } else { "ro" };
    let cgroup = if c.writable_cgroups { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", cgroup])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
    ];
    let shm_size = if h.shm_size > 0 { h.shm_size } else { crate::containers::validate::DEFAULT_SHM_SIZE };
    match h.ipc_mode.as_str() {
        "none" => {}
        m if needs_shm_dir(m) => {
            let dir = joins.shm.as_ref().ok_or_else(|| SpecError::Invalid(format!("no /dev/shm found for IPC mode {m}")))?;
            mounts.push(mount("/dev/shm", "bind", &dir.display().to_string(), &["rbind", "rprivate"])?);
        }
        _ => mounts.push(mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &format!("size={shm_size}")])?),
    }
    Ok(mounts)
}

/// The container's `--tmpfs` mounts, with dockerd's default options.
pub fn tmpfs_mounts(h: &HostConfig) -> Result<Vec<Mount>, SpecError> {
    let mut out = Vec::new();
    for (dest, data) in &h.tmpfs {
        let opts = crate::containers::validate::tmpfs_options(data).map_err(|e| SpecError::Invalid(e.to_string()))?;
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        out.push(mount(dest, "tmpfs", "tmpfs", &opts)?);
    }
    Ok(out)
}

/// The OCI rlimits of `--ulimit`.
fn rlimits(h: &HostConfig) -> Result<Option<Vec<oci_spec::runtime::PosixRlimit>>, SpecError> {
    if h.ulimits.is_empty() {
        return Ok(None);
    }
    h.ulimits
        .iter()
        .map(|u| {
            serde_json::from_value(serde_json::json!({
                "type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                "soft": u.soft.max(0),
                "hard": u.hard.max(0),
            }))
            .map_err(|e| SpecError::Invalid(format!("invalid ulimit type: {}: {e}", u.name)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn namespace(t: LinuxNamespaceType, path: Option<&PathBuf>) -> Result<LinuxNamespace, SpecError> {
    let mut b = LinuxNamespaceBuilder::default().typ(t);
    if let Some(p) = path {
        b = b.path(p.clone());
    }
    b.build().map_err(|e| SpecError::Invalid(e.to_string()))
}

/// The bind mounts of a container (Binds and Mounts of type bind). Host
/// paths must exist.
pub fn bind_mounts(host: &HostConfig) -> Result<Vec<Mount>, SpecError> {
    let mut binds: Vec<(String, String, bool, String)> = Vec::new();
    for b in &host.binds {
        let b = crate::binds::parse_bind(b).map_err(|e| SpecError::Invalid(e.to_string()))?;
        let propagation = b.propagation().to_string();
        binds.push((b.source, b.target, b.read_only, propagation));
    }
    for m in &host.mounts {
        match m.kind {
            MountKind::Bind => binds.push((m.source.clone(), m.target.clone(), m.read_only, "rprivate".into())),
            _ => return Err(SpecError::Invalid(format!("mount type {:?} is not supported by berth yet; use type bind", m.kind))),
        }
    }
    let mut out = Vec::new();
    for (src, dst, ro, propagation) in binds {
        if !Path::new(&src).exists() {
            return Err(SpecError::Invalid(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            )));
        }
        let mode = if ro { "ro" } else { "rw" };
        out.push(mount(&dst, "bind", &src, &["rbind", &propagation, mode])?);
    }
    Ok(out)
}

/// Builds the spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let inv = |e: oci_spec::OciSpecError| SpecError::Invalid(e.to_string());
    let cfg = input.config;
    let mut args = command(cfg, input.image)?;
    if input.joins.init.is_some() {
        // As dockerd: the init, then `--` and the command.
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let cwd = if !cfg.working_dir.is_empty() {
        cfg.working_dir.clone()
    } else if !input.image.working_dir.is_empty() {
        input.image.working_dir.clone()
    } else {
        "/".into()
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::Invalid(format!("the working directory '{cwd}' is invalid, it needs to be an absolute path")));
    }
    let host_name = hostname(cfg, input.id);
    let env = environment(cfg, input.image, &host_name);
    // root until [`set_user`] gives the user resolved in the container's
    // own files (known once its snapshot is prepared).
    let c = input.confine;
    let mut process = process(cfg.tty, &ExecUser::default(), args, env, cwd, Privileges { caps: c.caps, no_new_privileges: c.no_new_privileges })?;
    process.set_rlimits(rlimits(input.host)?);

    let network = Network::from_mode(&input.host.network_mode);
    let (h, joins) = (input.host, input.joins);
    let joined = |mode: &str, path: &Option<PathBuf>, what: &str| -> Result<(), SpecError> {
        if mode.starts_with("container:") && path.is_none() {
            return Err(SpecError::Invalid(format!("no namespace found for {what} mode {mode}")));
        }
        Ok(())
    };
    joined(&h.pid_mode, &joins.pid_ns, "PID")?;
    joined(&h.ipc_mode, &joins.ipc_ns, "IPC")?;
    let mut namespaces: Vec<LinuxNamespace> = Vec::new();
    if h.pid_mode != "host" {
        namespaces.push(namespace(LinuxNamespaceType::Pid, joins.pid_ns.as_ref())?);
    }
    if h.ipc_mode != "host" {
        namespaces.push(namespace(LinuxNamespaceType::Ipc, joins.ipc_ns.as_ref())?);
    }
    if h.uts_mode != "host" {
        namespaces.push(namespace(LinuxNamespaceType::Uts, None)?);
    }
    namespaces.push(namespace(LinuxNamespaceType::Mount, None)?);
    if network == Network::Private {
        namespaces.push(namespace(LinuxNamespaceType::Network, input.netns.map(std::path::Path::to_path_buf).as_ref())?);
    }
    if h.cgroupns_mode == "private" {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }

    let mut device_rules = vec![LinuxDeviceCgroupBuilder::default().allow(c.all_devices).access("rwm").build().map_err(inv)?];
    device_rules.extend(c.devices.iter().map(|g| g.rule.clone()));
    device_rules.extend(c.device_rules.iter().cloned());
    let mut resources = resources(h)?;
    resources.set_devices(Some(device_rules));
    let (masked, readonly) = if c.mask_system_paths {
        (oci_spec::runtime::get_default_maskedpaths(), oci_spec::runtime::get_default_readonly_paths())
    } else {
        (vec![], vec![])
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(input.cgroups_path))
        .masked_paths(masked)
        .readonly_paths(readonly)
        .devices(c.devices.iter().map(|g| g.device.clone()).collect::<Vec<_>>())
        .build()
        .map_err(inv)?;
    linux.set_seccomp(c.seccomp.clone());
    let mut sysctls = std::collections::HashMap::new();
    if network == Network::Private {
        // As dockerd: any port and ping for every user inside a private
        // network namespace (it is the container's own).
        sysctls.insert("net.ipv4.ip_unprivileged_port_start".to_string(), "0".to_string());
        sysctls.insert("net.ipv4.ping_group_range".to_string(), "0 2147483647".to_string());
    }
    // The container's own (checked at create) win.
    sysctls.extend(h.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !sysctls.is_empty() {
        linux.set_sysctl(Some(sysctls));
    }

    // The user's mounts replace the default ones at the same place (a
    // mount at /dev replaces every default under it), as dockerd does.
    let mut user = bind_mounts(input.host)?;
    user.extend(tmpfs_mounts(input.host)?);
    if let Some(init) = &joins.init {
        user.push(mount(INIT_PATH, "bind", &init.display().to_string(), &["bind", "ro"])?);
    }
    let taken: std::collections::BTreeSet<String> =
        user.iter().map(|m| crate::containers::validate::clean_path(&m.destination().display().to_string())).collect();
    let mut mounts: Vec<Mount> = default_mounts(c, h, joins)?
        .into_iter()
        .filter(|m| {
            let d = m.destination().display().to_string();
            !(taken.contains(&d) || taken.contains("/dev") && d.starts_with("/dev/"))
        })
        .collect();
    if let Some(etc) = input.etc {
        for (dest, src) in [("/etc/hostname", &etc.hostname), ("/etc/hosts", &etc.hosts), ("/etc/resolv.conf", &etc.resolv_conf)] {
            if !taken.contains(dest) {
                mounts.push(mount(dest, "bind", &src.display().to_string(), &["rbind", "rprivate", "rw"])?);
            }
        }
    }
    mounts.extend(user);

    let mut spec = Spec::default();
    // A container in the host's UTS namespace has the host's name.
    spec.set_hostname((h.uts_mode != "host").then_some(host_name));
    spec.set_process(Some(process));
    spec.set_root(Some(RootBuilder::default().path("rootfs").readonly(c.readonly_rootfs).build().map_err(inv)?));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The cgroup resources of a host config (no device rules: those are
/// the confinement's). Also what `docker update` sends a running task.
pub fn resources(h: &HostConfig) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    let inv = |e: oci_spec::OciSpecError| SpecError::Invalid(e.to_string());
    let mut resources = LinuxResourcesBuilder::default();
    if h.memory > 0 || h.memory_swap != 0 || h.memory_reservation > 0 || h.memory_swappiness.is_some() || h.oom_kill_disable.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if h.memory > 0 {
            m = m.limit(h.memory);
        }
        if h.memory_swap != 0 {
            m = m.swap(h.memory_swap);
        }
        if h.memory_reservation > 0 {
            m = m.reservation(h.memory_reservation);
        }
        if let Some(s) = h.memory_swappiness.filter(|s| *s >= 0) {
            m = m.swappiness(s as u64);
        }
        if let Some(d) = h.oom_kill_disable {
            m = m.disable_oom_killer(d);
        }
        resources = resources.memory(m.build().map_err(inv)?);
    }
    let (quota, period) =
        if h.nano_cpus > 0 { crate::containers::validate::nano_cpus_quota(h.nano_cpus) } else { (h.cpu_quota, h.cpu_period) };
    let cpuset = !h.cpuset_cpus.is_empty() || !h.cpuset_mems.is_empty();
    let rt = h.cpu_realtime_period > 0 || h.cpu_realtime_runtime > 0;
    if h.cpu_shares > 0 || quota > 0 || period > 0 || cpuset || rt {
        let mut cpu = LinuxCpuBuilder::default();
        if h.cpu_shares > 0 {
            cpu = cpu.shares(h.cpu_shares as u64);
        }
        if quota > 0 {
            cpu = cpu.quota(quota);
        }
        if period > 0 {
            cpu = cpu.period(period as u64);
        }
        if !h.cpuset_cpus.is_empty() {
            cpu = cpu.cpus(h.cpuset_cpus.clone());
        }
        if !h.cpuset_mems.is_empty() {
            cpu = cpu.mems(h.cpuset_mems.clone());
        }
        if h.cpu_realtime_period > 0 {
            cpu = cpu.realtime_period(h.cpu_realtime_period as u64);
        }
        if h.cpu_realtime_runtime > 0 {
            cpu = cpu.realtime_runtime(h.cpu_realtime_runtime);
        }
        resources = resources.cpu(cpu.build().map_err(inv)?);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(inv)?);
    }
    resources.build().map_err(inv)
}

/// Sets the process user of a built spec (resolved once the container's
/// filesystem is known).
pub fn set_user(spec: &mut Spec, user: &ExecUser) -> Result<(), SpecError> {
    let u = oci_user(user)?;
    if let Some(p) = spec.process_mut() {
        p.set_user(u);
    }
    Ok(())
}

fn oci_user(user: &ExecUser) -> Result<oci_spec::runtime::User, SpecError> {
    UserBuilder::default()
        .uid(user.uid)
        .gid(user.gid)
        .additional_gids(user.additional_gids.clone())
        .build()
        .map_err(|e| SpecError::Invalid(e.to_string()))
}

/// The process of an exec in a running container: the container's env,
/// user and working dir unless the exec gives its own.
pub fn exec_process(
    container: &ContainerConfig,
    args: Vec<String>,
    env: &[String],
    user: &ExecUser,
    working_dir: &str,
    tty: bool,
    privileges: Privileges,
) -> Result<oci_spec::runtime::Process, SpecError> {
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::Invalid("No exec command specified".into()));
    }
    let merged = ContainerConfig { env: container.env.iter().chain(env.iter()).cloned().collect(), tty, ..Default::default() };
    let env = environment(&merged, &ImageDefaults::default(), &hostname(container, ""))
        .into_iter()
        .filter(|e| e != "HOSTNAME=")
        .collect::<Vec<_>>();
    let cwd = [working_dir, container.working_dir.as_str()].into_iter().find(|d| !d.is_empty()).unwrap_or("/").to_string();
    process(tty, user, args, env, cwd, privileges)
}

/// What a process may do beyond its user's rights.
#[derive(Debug, Clone, Copy)]
pub struct Privileges {
    pub caps: CapSet,
    pub no_new_privileges: bool,
}

/// An OCI process with the given capabilities and no rlimits (the daemon
/// may lack CAP_SYS_RESOURCE; the process inherits the shim's limits).
fn process(
    tty: bool,
    user: &ExecUser,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    privileges: Privileges,
) -> Result<oci_spec::runtime::Process, SpecError> {
    let inv = |e: oci_spec::OciSpecError| SpecError::Invalid(e.to_string());
    let user = oci_user(user)?;
    let mut p = ProcessBuilder::default()
        .terminal(tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities(privileges.caps)?)
        .build()
        .map_err(inv)?;
    // Absent unless true, as dockerd writes it: youki 0.7 loads the seccomp
    // filter only after dropping capabilities when the field is present at
    // all (even `false`), and that fails without CAP_SYS_ADMIN.
    p.set_no_new_privileges(privileges.no_new_privileges.then_some(true));
    p.set_rlimits(None);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(cmd: &[&str]) -> ContainerConfig {
        ContainerConfig { cmd: Some(cmd.iter().map(|s| s.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn command_rules() {
        let img = ImageDefaults { cmd: Some(vec!["sh".into()]), entrypoint: Some(vec!["/init".into()]), ..Default::default() };
        assert_eq!(command(&cfg(&["echo", "hi"]), &img).unwrap(), ["/init", "echo", "hi"]);
        let mut c = ContainerConfig::default();
        assert_eq!(command(&c, &img).unwrap(), ["/init", "sh"]);
        c.entrypoint = Some(vec!["/bin/env".into()]);
        assert_eq!(command(&c, &img).unwrap(), ["/bin/env"], "a container entrypoint drops the image cmd");
        assert_eq!(command(&ContainerConfig::default(), &ImageDefaults::default()), Err(SpecError::NoCommand));
    }

    #[test]
    fn env_merges_and_defaults_path() {
        let img = ImageDefaults { env: vec!["A=1".into(), "B=2".into()], ..Default::default() };
        let c = ContainerConfig { env: vec!["B=3".into()], tty: true, ..Default::default() };
        let env = environment(&c, &img, "h");
        assert!(env.contains(&"HOSTNAME=h".to_string()));
        assert!(env[0].starts_with("PATH="));
        assert!(env.contains(&"A=1".to_string()) && env.contains(&"B=3".to_string()) && !env.contains(&"B=2".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
    }

    #[test]
    fn binds_parse_and_check() {
        let h = HostConfig { binds: vec!["/nonexistent-berth-src:/x".into()], ..Default::default() };
        assert!(bind_mounts(&h).unwrap_err().to_string().contains("bind source path does not exist"));
        let h = HostConfig { binds: vec!["/tmp:/x:ro,rshared".into(), "/tmp:/y".into()], ..Default::default() };
        let m = bind_mounts(&h).unwrap();
        let opts = |i: usize| m[i].options().clone().unwrap_or_default();
        assert_eq!(opts(0), ["rbind", "rshared", "ro"]);
        assert_eq!(opts(1), ["rbind", "rprivate", "rw"]);
        assert!(bind_mounts(&HostConfig { binds: vec!["/tmp:/x:bogus".into()], ..Default::default() }).unwrap_err().to_string().contains("invalid mode: bogus"));
    }

    #[test]
    fn spec_has_docker_defaults_and_resources() {
        let c = cfg(&["true"]);
        let h = HostConfig { memory: 64 << 20, cpu_shares: 512, pids_limit: Some(20), network_mode: "none".into(), binds: vec!["/tmp:/host-tmp:ro".into()], ..Default::default() };
        let img = ImageDefaults::default();
        let conf = crate::confine::test_support::default_confinement();
        let spec = build(&SpecInput { id: "abc", cgroups_path: "/berth/abc", config: &c, host: &h, image: &img, etc: None, netns: None, confine: &conf, joins: &Joins::default() }).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.cgroups_path().as_deref(), Some(Path::new("/berth/abc")));
        let r = linux.resources().as_ref().unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert!(linux.namespaces().as_ref().unwrap().iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let p = spec.process().as_ref().unwrap();
        assert!(p.rlimits().is_none(), "no rlimits: the daemon may lack CAP_SYS_RESOURCE");
        assert_eq!(p.no_new_privileges(), None, "absent unless set (youki 0.7 reads false as set)");
        let rules = r.devices().as_ref().unwrap();
        assert!(!rules[0].allow() && rules[0].access().as_deref() == Some("rwm") && rules[0].typ().is_none(), "every device denied first: {rules:?}");
        assert!(spec.linux().as_ref().unwrap().seccomp().is_some(), "the default seccomp profile");
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(caps.inheritable().is_none() && caps.ambient().is_none(), "no inheritable or ambient capabilities: {caps:?}");
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["root"]["path"], "rootfs");
        assert!(json["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/host-tmp" && m["options"][2] == "ro"));

        let h = HostConfig { network_mode: "host".into(), ..Default::default() };
        let spec = build(&SpecInput { id: "abc", cgroups_path: "/berth/abc", config: &c, host: &h, image: &img, etc: None, netns: None, confine: &conf, joins: &Joins::default() }).unwrap();
        assert!(!spec.linux().as_ref().unwrap().namespaces().as_ref().unwrap().iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let h = HostConfig { network_mode: "container:x".into(), ..Default::default() };
        let ns = std::path::Path::new("/proc/7/ns/net");
        let spec = build(&SpecInput { id: "abc", cgroups_path: "/berth/abc", config: &c, host: &h, image: &img, etc: None, netns: Some(ns), confine: &conf, joins: &Joins::default() }).unwrap();
        let net = spec.linux().as_ref().unwrap().namespaces().as_ref().unwrap().iter().find(|n| n.typ() == LinuxNamespaceType::Network).cloned();
        assert_eq!(net.unwrap().path().as_deref(), Some(ns), "joins the given namespace");
    }

    fn spec_json(h: &HostConfig, joins: &Joins) -> serde_json::Value {
        let (c, img, conf) = (cfg(&["sleep", "1"]), ImageDefaults::default(), crate::confine::test_support::default_confinement());
        let spec = build(&SpecInput { id: "abcdef0123456789", cgroups_path: "/berth/abc", config: &c, host: h, image: &img, etc: None, netns: None, confine: &conf, joins }).unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    fn namespaces(j: &serde_json::Value) -> Vec<String> {
        j["linux"]["namespaces"].as_array().unwrap().iter().map(|n| format!("{}{}", n["type"].as_str().unwrap(), n["path"].as_str().map(|p| format!("={p}")).unwrap_or_default())).collect()
    }

    fn mount_of<'a>(j: &'a serde_json::Value, dest: &str) -> Option<&'a serde_json::Value> {
        j["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == dest)
    }

    #[test]
    fn namespaces_follow_the_modes() {
        let j = spec_json(&HostConfig::default(), &Joins::default());
        assert_eq!(namespaces(&j), ["pid", "ipc", "uts", "mount", "network"]);
        assert_eq!(j["hostname"], "abcdef012345");
        let h = HostConfig { pid_mode: "host".into(), ipc_mode: "host".into(), uts_mode: "host".into(), cgroupns_mode: "private".into(), ..Default::default() };
        let j = spec_json(&h, &Joins { shm: Some("/dev/shm".into()), ..Default::default() });
        assert_eq!(namespaces(&j), ["mount", "network", "cgroup"]);
        assert!(j.get("hostname").is_none_or(|v| v.is_null()), "the host's UTS namespace keeps the host's name: {}", j["hostname"]);
        assert_eq!(mount_of(&j, "/dev/shm").unwrap()["source"], "/dev/shm");
        let h = HostConfig { pid_mode: "container:a".into(), ipc_mode: "container:b".into(), ..Default::default() };
        let joins = Joins { pid_ns: Some("/proc/7/ns/pid".into()), ipc_ns: Some("/proc/8/ns/ipc".into()), shm: Some("/data/b/shm".into()), init: None };
        let j = spec_json(&h, &joins);
        assert_eq!(namespaces(&j), ["pid=/proc/7/ns/pid", "ipc=/proc/8/ns/ipc", "uts", "mount", "network"]);
        assert_eq!(mount_of(&j, "/dev/shm").unwrap()["type"], "bind");
        assert_eq!(mount_of(&j, "/dev/shm").unwrap()["source"], "/data/b/shm");
        // A join the start did not resolve is an error, never a fresh namespace.
        let (c, img, conf) = (cfg(&["true"]), ImageDefaults::default(), crate::confine::test_support::default_confinement());
        let e = build(&SpecInput { id: "abc", cgroups_path: "/b", config: &c, host: &h, image: &img, etc: None, netns: None, confine: &conf, joins: &Joins::default() });
        assert!(e.unwrap_err().to_string().contains("no namespace found for PID mode container:a"));
        // IPC none: no /dev/shm at all.
        let j = spec_json(&HostConfig { ipc_mode: "none".into(), ..Default::default() }, &Joins::default());
        assert!(mount_of(&j, "/dev/shm").is_none());
    }

    #[test]
    fn mounts_limits_sysctls_and_init() {
        let h = HostConfig {
            shm_size: 1 << 20,
            tmpfs: [("/t".to_string(), "size=3m,exec".to_string()), ("/dev/mqueue".to_string(), String::new())].into_iter().collect(),
            sysctls: [("net.ipv4.ip_unprivileged_port_start".to_string(), "1024".to_string()), ("kernel.shmmni".to_string(), "100".to_string())].into_iter().collect(),
            ulimits: vec![berth_store::Ulimit { name: "nofile".into(), soft: 10, hard: 20 }],
            memory: 64 << 20,
            memory_swap: 128 << 20,
            memory_swappiness: Some(40),
            memory_reservation: 32 << 20,
            oom_kill_disable: Some(true),
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            cpu_realtime_period: 1000,
            cpu_realtime_runtime: 500,
            ..Default::default()
        };
        let j = spec_json(&h, &Joins { init: Some("/usr/bin/tini-static".into()), ..Default::default() });
        assert_eq!(mount_of(&j, "/dev/shm").unwrap()["options"], serde_json::json!(["nosuid", "noexec", "nodev", "mode=1777", "size=1048576"]));
        assert_eq!(mount_of(&j, "/t").unwrap()["options"], serde_json::json!(["nosuid", "nodev", "rprivate", "size=3m", "exec"]));
        // The user's /dev/mqueue replaces the default one.
        let mq: Vec<_> = j["mounts"].as_array().unwrap().iter().filter(|m| m["destination"] == "/dev/mqueue").collect();
        assert_eq!((mq.len(), mq[0]["type"].as_str()), (1, Some("tmpfs")));
        assert_eq!(j["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "1024", "the container's own win");
        assert_eq!(j["linux"]["sysctl"]["kernel.shmmni"], "100");
        assert_eq!(j["process"]["rlimits"], serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10}]));
        let r = &j["linux"]["resources"];
        assert_eq!(r["memory"], serde_json::json!({"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20, "swappiness": 40, "disableOOMKiller": true}));
        assert_eq!((&r["cpu"]["cpus"], &r["cpu"]["mems"], &r["cpu"]["realtimePeriod"], &r["cpu"]["realtimeRuntime"]), (&serde_json::json!("0-1"), &serde_json::json!("0"), &serde_json::json!(1000), &serde_json::json!(500)));
        // Init: tini as PID 1, read-only, then `--` and the command.
        assert_eq!(j["process"]["args"], serde_json::json!(["/sbin/docker-init", "--", "sleep", "1"]));
        let init = mount_of(&j, "/sbin/docker-init").unwrap();
        assert_eq!((init["source"].as_str(), init["options"].clone()), (Some("/usr/bin/tini-static"), serde_json::json!(["bind", "ro"])));
    }

    #[test]
    fn the_cgroups_path_follows_the_driver() {
        use crate::cgroups::{Cgroups, Hierarchy};
        let (c, h, img, conf) = (cfg(&["true"]), HostConfig::default(), ImageDefaults::default(), crate::confine::test_support::default_confinement());
        for (driver, want) in [(berth_config::CgroupDriver::Cgroupfs, "/berth/abc"), (berth_config::CgroupDriver::Systemd, "system.slice:berth:abc")] {
            let cg = Cgroups::new(Hierarchy::unified_at("/sys/fs/cgroup"), driver).unwrap();
            let path = cg.spec_path("berth", "abc");
            let spec = build(&SpecInput { id: "abc", cgroups_path: &path, config: &c, host: &h, image: &img, etc: None, netns: None, confine: &conf, joins: &Joins::default() }).unwrap();
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["linux"]["cgroupsPath"], want, "{driver}");
        }
    }
}
