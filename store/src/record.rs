//! The container record: berth's own, versioned, on-disk description of a
//! container. Plain data only; no Docker wire types (the API layer maps
//! these to `ContainerInspect`) and no behaviour beyond small helpers.
//!
//! Compatibility rule: every field that may be missing in an older record
//! has `#[serde(default)]`, and unknown fields are ignored, so records from
//! older and newer berths of the same [`RECORD_VERSION`] load. A change that
//! cannot be expressed that way bumps [`RECORD_VERSION`] and adds a step to
//! [`migrate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::timefmt::ZERO_TIME;

/// Version of the record format this build writes.
pub const RECORD_VERSION: u32 = 1;

/// One container, as persisted in `<root>/containers/<id>/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Format version ([`RECORD_VERSION`] when written by this build).
    #[serde(default)]
    pub version: u32,
    /// 64 lowercase hex characters.
    pub id: String,
    /// Unique name, without the leading `/`.
    pub name: String,
    /// Creation time, RFC 3339 with nanoseconds, UTC.
    #[serde(default)]
    pub created: String,
    /// The image reference as the client gave it (e.g. `busybox`).
    #[serde(default)]
    pub image: String,
    /// The resolved image id (`sha256:…`).
    #[serde(default)]
    pub image_id: String,
    /// The resolved manifest digest, if known.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Process and identity settings.
    #[serde(default)]
    pub config: ContainerConfig,
    /// Resource and runtime settings.
    #[serde(default)]
    pub host_config: HostConfig,
    /// Run state.
    #[serde(default)]
    pub state: State,
    /// The runtime resolution used at the last start (design §5).
    #[serde(default)]
    pub pinned_runtime: Option<PinnedRuntime>,
    /// The log driver and options, resolved against the daemon defaults at
    /// create (Docker's `HostConfig.LogConfig`). Records written before
    /// berth had log drivers load with an empty driver: json-file, no
    /// options, which is how they were logged.
    #[serde(default)]
    pub log_config: LogConfig,
    /// Network settings as created (ports to publish, DNS, extra hosts,
    /// the networks' endpoint settings).
    #[serde(default)]
    pub networking: Networking,
}

/// A container's network settings (Docker's `PortBindings`,
/// `PublishAllPorts`, `ExposedPorts`, `Dns*`, `ExtraHosts`, `Domainname`,
/// `NetworkingConfig.EndpointsConfig`), kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Networking {
    /// `80/tcp` → host bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: publish every exposed port on a free host port.
    pub publish_all_ports: bool,
    /// The container's and the image's `EXPOSE`d ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host name:ip` (`host-gateway` allowed).
    pub extra_hosts: Vec<String>,
    pub domainname: String,
    /// Network name → settings of the container's endpoint on it.
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// One host binding of a published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// A container's settings on one network (`--network-alias`, `--ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointConfig {
    pub aliases: Vec<String>,
    pub ipv4_address: String,
}

/// A container's log driver and its options (Docker's `LogConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `json-file`, `local` or `none`; "" = json-file (older records).
    pub driver: String,
    /// Driver options (`max-size`, `max-file`, `compress`).
    pub opts: BTreeMap<String, String>,
}

/// Process and identity settings of a container (Docker's `Config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// Command; `None` keeps Docker's distinction between null and `[]`.
    pub cmd: Option<Vec<String>>,
    /// Entrypoint; `None` = not set.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container ("" = image default).
    pub working_dir: String,
    /// User (name, uid, `uid:gid`); "" = image default.
    pub user: String,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches.
    pub stdin_once: bool,
    /// Attach stdin when started attached.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Labels (sorted, so records are deterministic).
    pub labels: BTreeMap<String, String>,
    /// Signal for `docker stop` (e.g. `SIGTERM`); `None` = default.
    pub stop_signal: Option<String>,
    /// Seconds `docker stop` waits before SIGKILL; `None` = default.
    pub stop_timeout: Option<i64>,
    /// Host name; "" = the 12-character short id.
    pub hostname: String,
    /// The health check (Docker's `Config.Healthcheck`), merged with the
    /// image's at create; `None` = none configured.
    pub healthcheck: Option<Healthcheck>,
}

/// A container's health check, as Docker's `HealthConfig`: durations in
/// nanoseconds, 0 = the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `[]` (inherit), `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    /// Consecutive failures that make the container unhealthy; 0 = 3.
    pub retries: i64,
}

/// Resource and runtime settings (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    /// Runtime name, as chosen at create (the default's name if none given).
    pub runtime: String,
    /// `-v src:dst[:opts]` strings as given.
    pub binds: Vec<String>,
    /// Structured mounts (`--mount`).
    pub mounts: Vec<Mount>,
    /// Network mode (`default`, `bridge`, `host`, `none`, `container:<id>`).
    pub network_mode: String,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Memory limit in bytes (0 = unlimited).
    pub memory: i64,
    /// Relative CPU weight (0 = default).
    pub cpu_shares: i64,
    /// CFS quota in µs per period (0 = unlimited).
    pub cpu_quota: i64,
    /// CFS period in µs (0 = default).
    pub cpu_period: i64,
    /// Maximum number of pids; `None` = unlimited/unset.
    pub pids_limit: Option<i64>,
    /// CPU quota in units of 1e-9 CPUs (`--cpus`); 0 = unset. Kept as
    /// given (inspect shows it); the spec turns it into quota and period.
    pub nano_cpus: i64,
    /// `--privileged`: every capability, every host device, no seccomp
    /// filter, no masked paths, writable /sys.
    pub privileged: bool,
    /// `--cap-add` names as given (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` names as given.
    pub cap_drop: Vec<String>,
    /// `--security-opt` strings as given (a seccomp profile inline as JSON).
    pub security_opt: Vec<String>,
    /// `--read-only`: the container's root filesystem is mounted read-only.
    pub readonly_rootfs: bool,
    /// `--device` mappings.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule` strings (`c 1:3 rwm`).
    pub device_cgroup_rules: Vec<String>,
    /// `--group-add`: extra groups (names or gids) of the container's process.
    pub group_add: Vec<String>,
    /// `--tmpfs PATH:OPTS`: a tmpfs at each path, with its mount options
    /// as given ("" = dockerd's defaults).
    pub tmpfs: BTreeMap<String, String>,
    /// PID namespace: "" (private), `host` or `container:<name|id>`.
    pub pid_mode: String,
    /// IPC namespace: `private`, `shareable`, `host`, `none` or
    /// `container:<name|id>` ("" in records from before berth had it:
    /// `private`).
    pub ipc_mode: String,
    /// UTS namespace: "" (private) or `host`.
    pub uts_mode: String,
    /// cgroup namespace: `private` or `host` ("" in older records: `host`).
    pub cgroupns_mode: String,
    /// Size of `/dev/shm` in bytes (0 in older records: 64 MiB).
    pub shm_size: i64,
    /// Namespaced sysctls set in the container.
    pub sysctls: BTreeMap<String, String>,
    /// `--ulimit` resource limits of the container's processes.
    pub ulimits: Vec<Ulimit>,
    /// Disable the OOM killer for the container (`None` = not set).
    pub oom_kill_disable: Option<bool>,
    /// Memory + swap limit in bytes (0 = unset, -1 = unlimited swap).
    pub memory_swap: i64,
    /// Swappiness 0..=100 (`None` = the host's).
    pub memory_swappiness: Option<i64>,
    /// Memory soft limit in bytes (0 = unset).
    pub memory_reservation: i64,
    /// CPUs the container may run on (`0-1`, `0,1`; "" = all).
    pub cpuset_cpus: String,
    /// Memory nodes the container may use ("" = all).
    pub cpuset_mems: String,
    /// Real-time scheduling period in µs (0 = unset).
    pub cpu_realtime_period: i64,
    /// Real-time scheduling runtime in µs (0 = unset).
    pub cpu_realtime_runtime: i64,
    /// `Isolation` as given: "" or `default` (the only one on Linux).
    pub isolation: String,
    /// `--init`: run an init (tini) as PID 1 (`None` = the daemon's default).
    pub init: Option<bool>,
}

/// A resource limit (`--ulimit name=soft:hard`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (the `RLIMIT_` name in lower case, without it).
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A host device made available in the container (`--device`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    /// "" = the same path as on the host.
    pub path_in_container: String,
    /// `r`, `w`, `m` in any combination; "" = `rwm`.
    pub cgroup_permissions: String,
}

/// Kind of a structured mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path bind-mounted into the container.
    #[default]
    Bind,
    /// A named volume.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

/// A structured mount (`--mount type=bind,source=…,target=…,readonly`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    /// Mount kind.
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Host path or volume name.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// Restart policy (Docker's `RestartPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// "", `no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// Retries for `on-failure` (0 = unlimited).
    pub maximum_retry_count: i64,
}

/// Lifecycle status (Docker's `State.Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, never started (or reset).
    #[default]
    Created,
    /// Its task runs.
    Running,
    /// Its task is frozen.
    Paused,
    /// Being restarted by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its task exited.
    Exited,
    /// Failed to stop or be removed; needs an operator.
    Dead,
}

impl ContainerStatus {
    /// Docker's lowercase name (`running`, `exited`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
        }
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Run state (Docker's `State`). Times are RFC 3339 strings;
/// [`ZERO_TIME`] means "never".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Lifecycle status.
    pub status: ContainerStatus,
    /// The task runs (also true while paused, as in Docker).
    pub running: bool,
    /// The task is frozen.
    pub paused: bool,
    /// Pid of the task's init process (0 when not running).
    pub pid: u32,
    /// Exit code of the last run (128+n for signal n).
    pub exit_code: i64,
    /// Last start or run error ("" = none).
    pub error: String,
    /// Last start time.
    pub started_at: String,
    /// Last exit time.
    pub finished_at: String,
    /// The last run was killed by the OOM killer.
    pub oom_killed: bool,
    /// Restarts done by the restart policy.
    pub restart_count: u64,
    /// The last run was ended by a user (stop, kill), not by itself or by
    /// berth shutting down: `unless-stopped` then stays stopped when berth
    /// starts again (dockerd's `HasBeenManuallyStopped`).
    pub manually_stopped: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: ContainerStatus::Created,
            running: false,
            paused: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.to_owned(),
            finished_at: ZERO_TIME.to_owned(),
            oom_killed: false,
            restart_count: 0,
            manually_stopped: false,
        }
    }
}

/// The runtime resolution a container was last started with (design §5):
/// enough to reach its shim again even after the runtime was removed or
/// changed by a reload, and to tell whether the definition changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PinnedRuntime {
    /// Runtime name (as in `HostConfig.runtime`, resolved).
    pub name: String,
    /// Generation of the config snapshot used.
    pub generation: u64,
    /// containerd shim (`io.containerd.runc.v2`, …).
    pub shim: String,
    /// Resolved runtime binary, if the shim runs one.
    pub binary: Option<String>,
    /// Runtime arguments.
    pub args: Vec<String>,
    /// Path of the wrapper script used as the binary, if any.
    pub wrapper: Option<String>,
    /// sha256 hex of the wrapper's content.
    pub wrapper_digest: Option<String>,
    /// Shim options as passed to containerd.
    pub options: serde_json::Value,
}

impl ContainerRecord {
    /// A record with the given id and name and defaults everywhere else
    /// (status `created`, never started). `created` is left empty; the
    /// store fills it in when the record is created.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        ContainerRecord {
            version: RECORD_VERSION,
            id: id.into(),
            name: name.into(),
            created: String::new(),
            image: String::new(),
            image_id: String::new(),
            image_digest: None,
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            state: State::default(),
            pinned_runtime: None,
            log_config: LogConfig::default(),
            networking: Networking::default(),
        }
    }

    /// The name as Docker shows it, with the leading `/`.
    pub fn docker_name(&self) -> String {
        format!("/{}", self.name)
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON that does not fit the record.
    #[error("not a valid container record: {0}")]
    Invalid(#[from] serde_json::Error),
    /// Written by a newer berth with a format this build does not know.
    #[error("record format version {found} is newer than this berth supports ({supported}): upgrade berth")]
    TooNew {
        /// Version found in the file.
        found: u32,
        /// [`RECORD_VERSION`].
        supported: u32,
    },
}

/// Decodes a record file's bytes, migrating older formats to the current
/// one.
pub fn decode(bytes: &[u8]) -> Result<ContainerRecord, DecodeError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let value = migrate(value)?;
    Ok(serde_json::from_value(value)?)
}

/// Brings a decoded JSON record up to [`RECORD_VERSION`]. Version 0 (no
/// `version` field) is the first format and needs no changes.
pub fn migrate(mut value: serde_json::Value) -> Result<serde_json::Value, DecodeError> {
    let found = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let found = u32::try_from(found).unwrap_or(u32::MAX);
    if found > RECORD_VERSION {
        return Err(DecodeError::TooNew { found, supported: RECORD_VERSION });
    }
    // Future steps go here: `if found < 2 { …rewrite value… }`.
    if let Some(obj) = value.as_object_mut() {
        obj.insert("version".into(), RECORD_VERSION.into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_old_record_loads_with_defaults() {
        let r = decode(br#"{"id":"abc","name":"web"}"#).unwrap();
        assert_eq!(r.version, RECORD_VERSION);
        assert_eq!(r.state.status, ContainerStatus::Created);
        assert_eq!(r.state.started_at, ZERO_TIME);
        assert!(r.config.cmd.is_none());
        assert!(r.pinned_runtime.is_none());
        assert_eq!(r.log_config, LogConfig::default());
    }

    #[test]
    fn log_config_round_trips() {
        let mut r = ContainerRecord::new("a", "b");
        r.log_config = LogConfig { driver: "local".into(), opts: [("max-file".to_owned(), "3".to_owned())].into() };
        let back = decode(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.log_config, r.log_config);
    }

    #[test]
    fn unknown_fields_are_ignored_and_newer_versions_refused() {
        let r = decode(br#"{"version":1,"id":"a","name":"bb","future":{"x":1}}"#).unwrap();
        assert_eq!(r.name, "bb");
        let e = decode(br#"{"version":99,"id":"a","name":"bb"}"#).unwrap_err();
        assert!(matches!(e, DecodeError::TooNew { found: 99, .. }), "{e}");
        assert!(decode(b"{\"id\":").is_err());
        assert!(decode(br#"{"name":"x"}"#).is_err(), "id is required");
    }

    #[test]
    fn status_serializes_lowercase() {
        let s = serde_json::to_string(&ContainerStatus::Restarting).unwrap();
        assert_eq!(s, "\"restarting\"");
        assert_eq!(ContainerStatus::Dead.to_string(), "dead");
        let m: Mount = serde_json::from_str(r#"{"type":"bind","source":"/a","target":"/b","read_only":true}"#).unwrap();
        assert_eq!(m.kind, MountKind::Bind);
    }
}
