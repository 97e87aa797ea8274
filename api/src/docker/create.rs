//! `POST /containers/create`: Docker's create body (bollard's
//! [`ContainerCreateBody`]) plus `?name=` → berth-store's
//! [`ContainerConfig`] and [`HostConfig`]. Wire mapping only: what is
//! allowed is decided by the engine (`berth_engine::containers::validate`
//! and `berth_engine::confine`).
//!
//! Every field of the body is either mapped, or harmless and listed in
//! [`HARMLESS`], or refused when set ([`unsupported_fields`]): berth never
//! accepts an option it silently ignores.

use berth_engine::model::{
    ContainerConfig, DeviceMapping, EndpointConfig, Healthcheck, HostConfig, LogConfig, Mount, MountKind, Networking, PortBinding, RestartPolicy, Ulimit,
};
use serde_json::Value;

use super::body::{decode_json, BodyError};
use super::models::{self, ContainerCreateBody, MountType, RestartPolicyNameEnum};
use crate::error::ApiError;
pub use berth_engine::binds::{parse_bind, BindError, BindSpec};

/// A create request, mapped for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// Requested name without the leading `/`; `None` = generate one.
    pub name: Option<String>,
    /// Image reference exactly as the client gave it.
    pub image: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `HostConfig.LogConfig` as given (resolved against the daemon's
    /// defaults by the engine).
    pub log_config: LogConfig,
    /// Ports, DNS, extra hosts, endpoint settings.
    pub networking: Networking,
}

/// A create body that cannot be mapped. Every variant is a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("no image specified: Config.Image is empty")]
    NoImage,
    #[error("invalid restart policy '{0}'")]
    InvalidRestartPolicy(String),
    /// dockerd's `errMountConfig`.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    MountConfig { kind: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    /// A value dockerd refuses, with its message.
    #[error("{0}")]
    Invalid(String),
    /// Options berth does not implement, all of them at once.
    #[error("berth does not support {} yet; remove {} from the request", .0.join(", "), if .0.len() == 1 { "it" } else { "them" })]
    Unsupported(Vec<String>),
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Decodes a create body (see [`super::body::decode_json`]), giving
/// dockerd's text for an unknown restart policy name instead of the
/// model's enum error. Like dockerd, `Cmd` and `Entrypoint` may be a plain
/// string (one word: `"Cmd": "date"` is `["date"]`).
pub fn decode_create_body(bytes: &[u8]) -> Result<ContainerCreateBody, ApiError> {
    match decode_json::<ContainerCreateBody>(bytes) {
        Ok(b) => Ok(b),
        Err(e @ BodyError::Type { .. }) if matches!(&e, BodyError::Type { path, .. } if path == "Cmd" || path == "Entrypoint") => {
            // The body parsed as JSON already: only the field's type was wrong.
            let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else { return Err(e.into()) };
            let mut wrapped = false;
            for key in ["Cmd", "Entrypoint"] {
                if let Some(Value::String(word)) = v.get(key) {
                    v[key] = serde_json::json!([word]);
                    wrapped = true;
                }
            }
            if !wrapped {
                // Wrong for another reason (a number, an object): report it.
                return Err(e.into());
            }
            match serde_json::to_vec(&v) {
                Ok(bytes) => decode_create_body(&bytes),
                Err(_) => Err(e.into()),
            }
        }
        Err(BodyError::Type { path, .. }) if path == "HostConfig.RestartPolicy.Name" => {
            let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
            let name = v["HostConfig"]["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned();
            Err(CreateError::InvalidRestartPolicy(name).into())
        }
        // The model's enums list fewer values than clients send: dockerd's
        // messages instead of the decoder's.
        Err(e @ BodyError::Type { .. }) if matches!(&e, BodyError::Type { path, .. } if path == "HostConfig.Isolation" || path == "HostConfig.CgroupnsMode") => {
            let v: Value = serde_json::from_slice(bytes).unwrap_or_default();
            let field = |k: &str| match &v["HostConfig"][k] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if matches!(&e, BodyError::Type { path, .. } if path == "HostConfig.Isolation") {
                let iso = field("Isolation");
                if iso.eq_ignore_ascii_case("default") {
                    // `Default` is the same isolation; dockerd compares lower-cased.
                    let mut v = v.clone();
                    v["HostConfig"]["Isolation"] = Value::String("default".into());
                    return serde_json::to_vec(&v).map_err(|_| e.into()).and_then(|b| decode_create_body(&b));
                }
                Err(CreateError::Invalid(format!("Invalid isolation: {iso:?} - linux only supports 'default'")).into())
            } else {
                Err(CreateError::Invalid(format!("invalid cgroup namespace mode: {}", field("CgroupnsMode"))).into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The whole create request from the wire: reads at most
/// [`MAX_JSON_BODY`](super::body::MAX_JSON_BODY) bytes (refusing a larger
/// announced `Content-Length` at once), decodes and maps it.
/// `name` is the raw `?name=` value.
pub async fn read_create_request(req: axum::extract::Request, name: Option<&str>) -> Result<CreateRequest, ApiError> {
    let limit = super::body::MAX_JSON_BODY;
    super::body::check_content_length(req.headers(), limit)?;
    let bytes = super::body::read_limited(req.into_body(), limit).await?;
    parse_create_request(&bytes, name)
}

/// The create request in `bytes` (the whole body) with the `?name=` value
/// `name`: decoded, checked for unsupported fields and mapped. Pure; the
/// fuzz target `create` calls it.
pub fn parse_create_request(bytes: &[u8], name: Option<&str>) -> Result<CreateRequest, ApiError> {
    // dockerd's decoder matches field names in any case (docker-py sends
    // `CPURealtimePeriod`): the fields berth maps are renamed to the
    // model's spelling first.
    let renamed = serde_json::from_slice::<Value>(bytes).ok().and_then(|mut v| {
        let hc = v.get_mut("HostConfig")?;
        canonical_keys(hc, MAPPED_HOST_CONFIG).then(|| serde_json::to_vec(&v).ok()).flatten()
    });
    let bytes = renamed.as_deref().unwrap_or(bytes);
    let mut body = decode_create_body(bytes)?;
    // The body decoded, so it is JSON.
    let raw: Value = serde_json::from_slice(bytes).unwrap_or_default();
    top_level_runtime(&raw, &mut body)?;
    let mut unsupported = unsupported_fields(&raw);
    // API 1.44's StartInterval: dockerd 20.10 has no such setting.
    if body.healthcheck.as_ref().and_then(|h| h.start_interval).is_some_and(|v| v != 0) {
        unsupported.push("Healthcheck.StartInterval".into());
    }
    if !unsupported.is_empty() {
        return Err(CreateError::Unsupported(unsupported).into());
    }
    Ok(from_docker(body, name)?)
}

/// dockerd's defaults for older clients (its router's): API < 1.40 gets a
/// `shareable` IPC namespace, API < 1.41 the host's cgroup namespace,
/// unless the body says otherwise. Newer clients get the daemon's defaults
/// (the engine's).
pub fn version_defaults(h: &mut HostConfig, v: crate::version::RequestedVersion) {
    if v.older_than(1, 40) && h.ipc_mode.is_empty() {
        h.ipc_mode = "shareable".into();
    }
    if v.older_than(1, 41) && h.cgroupns_mode.is_empty() {
        h.cgroupns_mode = "host".into();
    }
}

/// Renames the keys of object `v` that spell one of `known` in another
/// case (unless that spelling is there too) to `known`'s spelling, as Go's
/// decoder reads them; whether any was renamed.
pub fn canonical_keys(v: &mut Value, known: &[&str]) -> bool {
    let Some(o) = v.as_object_mut() else { return false };
    let renames: Vec<(String, &str)> = o
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .filter_map(|k| known.iter().find(|n| n.eq_ignore_ascii_case(k)).map(|n| (k.clone(), *n)))
        .filter(|(_, n)| !o.contains_key(*n))
        .collect();
    for (from, to) in &renames {
        if let Some(x) = o.remove(from) {
            o.insert(to.to_string(), x);
        }
    }
    !renames.is_empty()
}

/// docker-py (`create_container(runtime=…)`) sends the runtime at the top
/// level of the body, where dockerd's decoder drops it; berth honours it
/// when `HostConfig.Runtime` does not say otherwise.
fn top_level_runtime(raw: &Value, body: &mut ContainerCreateBody) -> Result<(), CreateError> {
    let Some(rt) = raw.get("Runtime").and_then(Value::as_str).filter(|s| !s.is_empty()) else { return Ok(()) };
    let hc = body.host_config.get_or_insert_with(Default::default);
    match hc.runtime.as_deref() {
        None | Some("") => hc.runtime = Some(rt.to_owned()),
        Some(other) if other == rt => {}
        Some(other) => {
            return Err(CreateError::Conflict(format!(
                "Runtime {rt:?} and HostConfig.Runtime {other:?} disagree; give the runtime once"
            )))
        }
    }
    Ok(())
}

/// `Config` fields berth maps.
const MAPPED_CONFIG: &[&str] = &[
    "Runtime", "Hostname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd",
    "Image", "WorkingDir", "Entrypoint", "Labels", "StopSignal", "StopTimeout", "HostConfig", "NetworkingConfig",
    "Domainname", "ExposedPorts", "Healthcheck",
];

/// `HostConfig` fields berth maps.
const MAPPED_HOST_CONFIG: &[&str] = &[
    "Binds", "Mounts", "NetworkMode", "AutoRemove", "RestartPolicy", "Memory", "CpuShares", "CpuQuota", "CpuPeriod",
    "NanoCpus", "PidsLimit", "Runtime", "Privileged", "CapAdd", "CapDrop", "SecurityOpt", "ReadonlyRootfs", "Devices",
    "DeviceCgroupRules", "LogConfig", "GroupAdd", "Tmpfs", "PidMode", "IpcMode", "UTSMode", "CgroupnsMode", "ShmSize",
    "Sysctls", "Ulimits", "OomKillDisable", "MemorySwap", "MemorySwappiness", "MemoryReservation", "CpusetCpus",
    "CpusetMems", "CpuRealtimePeriod", "CpuRealtimeRuntime", "Isolation", "Init", "PortBindings", "PublishAllPorts", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts",
];

/// Fields berth accepts and does not keep, because they change nothing a
/// container does (each one's reason is in the README):
/// - `ContainerIDFile`: written by the docker CLI itself;
/// - `ConsoleSize`: the initial TTY size; clients resize the TTY on attach;
/// - `OnBuild`, `Shell`, `ArgsEscaped`: used only when an image is built;
/// - `UsernsMode` `host` (berth never remaps users).
pub const HARMLESS: &[&str] = &["ContainerIDFile", "ConsoleSize", "OnBuild", "Shell", "ArgsEscaped"];

/// Fields that are maps keyed by data (a port, a path, a sysctl): any key
/// sets them, whatever its value (`-p 80` is `{"80/tcp":[{"HostPort":""}]}`).
const MAP_FIELDS: &[&str] = &["Volumes", "PortBindings", "Tmpfs", "Sysctls", "StorageOpt", "Annotations", "ExposedPorts"];

fn is_unset_field(key: &str, v: &Value) -> bool {
    if MAP_FIELDS.contains(&key) {
        return v.as_object().is_none_or(|o| o.is_empty());
    }
    is_unset(v)
}

/// A value a client sends for "not set": null, false, 0, "", and arrays or
/// objects of such values.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_unset),
        Value::Object(o) => o.values().all(is_unset),
    }
}

/// The fields of a create body that berth would have to ignore: set to
/// something other than "not set", and neither mapped nor harmless.
pub fn unsupported_fields(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(top) = body.as_object() else { return out };
    for (k, v) in top {
        if !MAPPED_CONFIG.contains(&k.as_str()) && !HARMLESS.contains(&k.as_str()) && !is_unset_field(k, v) {
            out.push(k.clone());
        }
    }
    if let Some(hc) = top.get("HostConfig").and_then(Value::as_object) {
        for (k, v) in hc {
            let unset = match k.as_str() {
                // berth never remaps users: "host" asks for what it does.
                "UsernsMode" => is_unset(v) || v == "host",
                _ => is_unset_field(k, v),
            };
            if !unset && !MAPPED_HOST_CONFIG.contains(&k.as_str()) && !HARMLESS.contains(&k.as_str()) {
                out.push(format!("HostConfig.{k}"));
            }
        }
    }
    for (i, m) in top.get("HostConfig").and_then(|h| h.get("Mounts")).and_then(Value::as_array).into_iter().flatten().enumerate() {
        for (k, v) in m.as_object().into_iter().flatten() {
            if !matches!(k.as_str(), "Type" | "Source" | "Target" | "ReadOnly" | "Consistency") && !is_unset(v) {
                out.push(format!("HostConfig.Mounts[{i}].{k}"));
            }
        }
    }
    if let Some(eps) = top.get("NetworkingConfig").and_then(|n| n.get("EndpointsConfig")).and_then(Value::as_object) {
        for (net, cfg) in eps {
            for (k, v) in cfg.as_object().into_iter().flatten() {
                let mapped = match k.as_str() {
                    "Aliases" => true,
                    // Output fields of inspect that clients echo back.
                    "NetworkID" | "EndpointID" | "Gateway" | "IPAddress" | "IPPrefixLen" | "IPv6Gateway" | "GlobalIPv6Address"
                    | "GlobalIPv6PrefixLen" | "MacAddress" | "DNSNames" => k != "MacAddress",
                    "IPAMConfig" => v.as_object().into_iter().flatten().all(|(ik, iv)| ik == "IPv4Address" || is_unset(iv)),
                    _ => false,
                };
                if !mapped && !is_unset(v) {
                    out.push(format!("NetworkingConfig.EndpointsConfig.{net}.{k}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// Maps a create body and the `name` query parameter.
pub fn from_docker(body: ContainerCreateBody, name: Option<&str>) -> Result<CreateRequest, CreateError> {
    let name = match name {
        None | Some("") => None,
        Some(n) => Some(berth_engine::model::validate_name(n).map_err(|_| CreateError::InvalidName(n.to_owned()))?),
    };
    let image = body.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(CreateError::NoImage);
    }
    let config = convert_config(&body);
    let hc = body.host_config.clone().unwrap_or_default();
    let log_config = hc
        .log_config
        .clone()
        .map(|l| LogConfig { driver: l.typ.unwrap_or_default(), opts: l.config.unwrap_or_default().into_iter().collect() })
        .unwrap_or_default();
    let networking = convert_networking(&body, &hc);
    let host_config = convert_host_config(hc)?;
    Ok(CreateRequest { name, image, config, host_config, log_config, networking })
}

fn convert_networking(b: &ContainerCreateBody, hc: &models::HostConfig) -> Networking {
    let port_bindings = hc
        .port_bindings
        .iter()
        .flatten()
        .map(|(k, v)| {
            let binds = v
                .iter()
                .flatten()
                .map(|p| PortBinding { host_ip: p.host_ip.clone().unwrap_or_default(), host_port: p.host_port.clone().unwrap_or_default() })
                .collect();
            (k.clone(), binds)
        })
        .collect();
    let endpoints = b
        .networking_config
        .iter()
        .flat_map(|n| n.endpoints_config.iter().flatten())
        .map(|(name, e)| {
            (
                name.clone(),
                EndpointConfig {
                    aliases: e.aliases.clone().unwrap_or_default(),
                    ipv4_address: e.ipam_config.as_ref().and_then(|i| i.ipv4_address.clone()).unwrap_or_default(),
                },
            )
        })
        .collect();
    let mut exposed: Vec<String> = b.exposed_ports.clone().unwrap_or_default();
    exposed.sort();
    Networking {
        port_bindings,
        publish_all_ports: hc.publish_all_ports.unwrap_or(false),
        exposed_ports: exposed,
        dns: hc.dns.clone().unwrap_or_default(),
        dns_search: hc.dns_search.clone().unwrap_or_default(),
        dns_options: hc.dns_options.clone().unwrap_or_default(),
        extra_hosts: hc.extra_hosts.clone().unwrap_or_default(),
        domainname: b.domainname.clone().unwrap_or_default(),
        endpoints,
    }
}

fn convert_config(b: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        cmd: b.cmd.clone(),
        entrypoint: b.entrypoint.clone(),
        env: b.env.clone().unwrap_or_default(),
        working_dir: b.working_dir.clone().unwrap_or_default(),
        user: b.user.clone().unwrap_or_default(),
        tty: b.tty.unwrap_or(false),
        open_stdin: b.open_stdin.unwrap_or(false),
        stdin_once: b.stdin_once.unwrap_or(false),
        attach_stdin: b.attach_stdin.unwrap_or(false),
        attach_stdout: b.attach_stdout.unwrap_or(false),
        attach_stderr: b.attach_stderr.unwrap_or(false),
        labels: b.labels.clone().unwrap_or_default().into_iter().collect(),
        stop_signal: b.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_timeout: b.stop_timeout,
        hostname: b.hostname.clone().unwrap_or_default(),
        healthcheck: b.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone().unwrap_or_default(),
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            retries: h.retries.unwrap_or(0),
        }),
    }
}

fn convert_host_config(hc: models::HostConfig) -> Result<HostConfig, CreateError> {
    let restart_policy = hc.restart_policy.as_ref().map(convert_restart_policy).unwrap_or_default();
    let mounts = hc.mounts.iter().flatten().map(convert_mount).collect::<Result<Vec<_>, _>>()?;
    Ok(HostConfig {
        runtime: hc.runtime.unwrap_or_default(),
        binds: hc.binds.unwrap_or_default(),
        mounts,
        network_mode: hc.network_mode.unwrap_or_default(),
        auto_remove: hc.auto_remove.unwrap_or(false),
        restart_policy,
        memory: hc.memory.unwrap_or(0),
        cpu_shares: hc.cpu_shares.unwrap_or(0),
        cpu_quota: hc.cpu_quota.unwrap_or(0),
        cpu_period: hc.cpu_period.unwrap_or(0),
        nano_cpus: hc.nano_cpus.unwrap_or(0),
        pids_limit: hc.pids_limit,
        privileged: hc.privileged.unwrap_or(false),
        cap_add: hc.cap_add.unwrap_or_default(),
        cap_drop: hc.cap_drop.unwrap_or_default(),
        security_opt: hc.security_opt.unwrap_or_default(),
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        devices: hc
            .devices
            .unwrap_or_default()
            .into_iter()
            .map(|d| DeviceMapping {
                path_on_host: d.path_on_host.unwrap_or_default(),
                path_in_container: d.path_in_container.unwrap_or_default(),
                cgroup_permissions: d.cgroup_permissions.unwrap_or_default(),
            })
            .collect(),
        device_cgroup_rules: hc.device_cgroup_rules.unwrap_or_default(),
        group_add: hc.group_add.unwrap_or_default(),
        tmpfs: hc.tmpfs.unwrap_or_default().into_iter().collect(),
        pid_mode: hc.pid_mode.unwrap_or_default(),
        ipc_mode: hc.ipc_mode.unwrap_or_default(),
        uts_mode: hc.uts_mode.unwrap_or_default(),
        cgroupns_mode: hc.cgroupns_mode.map(|m| m.to_string()).unwrap_or_default(),
        shm_size: hc.shm_size.unwrap_or(0),
        sysctls: hc.sysctls.unwrap_or_default().into_iter().collect(),
        ulimits: hc
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit { name: u.name.unwrap_or_default(), soft: u.soft.unwrap_or(0), hard: u.hard.unwrap_or(0) })
            .collect(),
        oom_kill_disable: hc.oom_kill_disable,
        memory_swap: hc.memory_swap.unwrap_or(0),
        memory_swappiness: hc.memory_swappiness,
        memory_reservation: hc.memory_reservation.unwrap_or(0),
        cpuset_cpus: hc.cpuset_cpus.unwrap_or_default(),
        cpuset_mems: hc.cpuset_mems.unwrap_or_default(),
        cpu_realtime_period: hc.cpu_realtime_period.unwrap_or(0),
        cpu_realtime_runtime: hc.cpu_realtime_runtime.unwrap_or(0),
        isolation: hc.isolation.map(|i| i.to_string()).unwrap_or_default(),
        init: hc.init,
    })
}

fn convert_restart_policy(p: &models::RestartPolicy) -> RestartPolicy {
    let name = match p.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
        RestartPolicyNameEnum::EMPTY => "",
        RestartPolicyNameEnum::NO => "no",
        RestartPolicyNameEnum::ALWAYS => "always",
        RestartPolicyNameEnum::UNLESS_STOPPED => "unless-stopped",
        RestartPolicyNameEnum::ON_FAILURE => "on-failure",
    };
    RestartPolicy { name: name.into(), maximum_retry_count: p.maximum_retry_count.unwrap_or(0) }
}

fn convert_mount(m: &models::Mount) -> Result<Mount, CreateError> {
    let kind = match m.typ {
        Some(MountType::BIND) => MountKind::Bind,
        Some(MountType::VOLUME) => MountKind::Volume,
        Some(MountType::TMPFS) => MountKind::Tmpfs,
        None => return Err(CreateError::MountConfig { kind: String::new(), reason: "mount type unknown".into() }),
        Some(other) => return Err(CreateError::Unsupported(vec![format!("mounts of type \"{other}\"")])),
    };
    Ok(Mount {
        kind,
        source: m.source.clone().unwrap_or_default(),
        target: m.target.clone().unwrap_or_default(),
        read_only: m.read_only.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::super::models::tests::fixture;
    use super::*;

    fn body(json: &str) -> ContainerCreateBody {
        decode_create_body(json.as_bytes()).unwrap()
    }

    fn create(json: &str) -> Result<CreateRequest, CreateError> {
        from_docker(body(json), None)
    }

    fn unsupported(json: &str) -> Vec<String> {
        unsupported_fields(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn the_cli_fixture_converts() {
        let bytes = fixture("req-containers-create.json");
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(unsupported_fields(&raw).is_empty(), "{:?}", unsupported_fields(&raw));
        let b = decode_create_body(&bytes).unwrap();
        let r = from_docker(b, Some("xx")).unwrap();
        assert_eq!(r.name.as_deref(), Some("xx"));
        assert_eq!(r.image, "bb:latest");
        assert_eq!(r.config.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));
        assert_eq!(r.config.entrypoint, None);
        assert!(r.config.env.is_empty());
        assert!(r.config.attach_stdout && r.config.attach_stderr && !r.config.attach_stdin);
        assert!(r.host_config.auto_remove);
        assert_eq!(r.host_config.network_mode, "default");
        assert_eq!(r.host_config.restart_policy.name, "no");
        assert_eq!(r.host_config.runtime, "");
    }

    #[test]
    fn config_fields_are_kept() {
        let r = create(
            r#"{"Image":"bb","Cmd":[],"Entrypoint":["sh"],"Env":["A=1"],"WorkingDir":"/app","User":"0",
                "Tty":true,"OpenStdin":true,"StdinOnce":true,"AttachStdin":true,"Labels":{"k":"v","a":"b"},
                "StopSignal":"SIGUSR1","StopTimeout":3,"Hostname":"h1",
                "HostConfig":{"Runtime":"crun","Memory":10485760,"CpuShares":512,"CpuQuota":50000,
                "CpuPeriod":100000,"NanoCpus":7,"PidsLimit":100,"NetworkMode":"host",
                "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},
                "Privileged":true,"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],"SecurityOpt":["no-new-privileges"],
                "ReadonlyRootfs":true,"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/f","CgroupPermissions":"rw"}],
                "DeviceCgroupRules":["c 1:3 r"]}}"#,
        )
        .unwrap();
        let c = &r.config;
        assert_eq!(c.cmd, Some(vec![]));
        assert_eq!(c.entrypoint, Some(vec!["sh".to_string()]));
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str(), c.hostname.as_str()), ("/app", "0", "h1"));
        assert!(c.tty && c.open_stdin && c.stdin_once && c.attach_stdin);
        assert_eq!(c.labels.keys().collect::<Vec<_>>(), vec!["a", "k"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
        assert_eq!(c.stop_timeout, Some(3));
        let h = &r.host_config;
        assert_eq!(h.runtime, "crun");
        assert_eq!((h.memory, h.cpu_shares, h.cpu_quota, h.cpu_period, h.nano_cpus), (10485760, 512, 50000, 100000, 7));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.network_mode, "host");
        assert_eq!(h.restart_policy, RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 });
        assert!(h.privileged && h.readonly_rootfs);
        assert_eq!((h.cap_add.as_slice(), h.cap_drop.as_slice()), (&["NET_ADMIN".to_string()][..], &["ALL".to_string()][..]));
        assert_eq!(h.security_opt, vec!["no-new-privileges"]);
        assert_eq!(h.devices, vec![DeviceMapping { path_on_host: "/dev/fuse".into(), path_in_container: "/dev/f".into(), cgroup_permissions: "rw".into() }]);
        assert_eq!(h.device_cgroup_rules, vec!["c 1:3 r"]);
    }

    #[test]
    fn namespace_and_resource_fields_are_kept() {
        let r = create(
            r#"{"Image":"bb","HostConfig":{"Tmpfs":{"/t":"size=3M"},"PidMode":"host","IpcMode":"shareable","UTSMode":"host",
                "CgroupnsMode":"private","ShmSize":1048576,"Sysctls":{"net.ipv4.ip_forward":"1"},
                "Ulimits":[{"Name":"nofile","Soft":100,"Hard":200}],"OomKillDisable":true,"MemorySwap":-1,
                "MemorySwappiness":40,"MemoryReservation":7340032,"CpusetCpus":"0","CpusetMems":"0",
                "CpuRealtimePeriod":1000,"CpuRealtimeRuntime":500,"Isolation":"default","Init":true}}"#,
        )
        .unwrap();
        let h = &r.host_config;
        assert_eq!(h.tmpfs.get("/t").map(String::as_str), Some("size=3M"));
        assert_eq!((h.pid_mode.as_str(), h.ipc_mode.as_str(), h.uts_mode.as_str(), h.cgroupns_mode.as_str()), ("host", "shareable", "host", "private"));
        assert_eq!((h.shm_size, h.memory_swap, h.memory_swappiness, h.memory_reservation), (1048576, -1, Some(40), 7340032));
        assert_eq!(h.ulimits, vec![Ulimit { name: "nofile".into(), soft: 100, hard: 200 }]);
        assert_eq!((h.oom_kill_disable, h.init, h.isolation.as_str()), (Some(true), Some(true), "default"));
        assert_eq!((h.cpuset_cpus.as_str(), h.cpu_realtime_period, h.cpu_realtime_runtime), ("0", 1000, 500));
        assert_eq!(h.sysctls.len(), 1);
        // The enums' other values get dockerd's messages.
        let e = decode_create_body(br#"{"Image":"bb","HostConfig":{"Isolation":"bogus"}}"#).unwrap_err();
        assert_eq!(e.message, "Invalid isolation: \"bogus\" - linux only supports 'default'");
        let e = decode_create_body(br#"{"Image":"bb","HostConfig":{"CgroupnsMode":"shared"}}"#).unwrap_err();
        assert_eq!(e.message, "invalid cgroup namespace mode: shared");
        let b = decode_create_body(br#"{"Image":"bb","HostConfig":{"Isolation":"Default"}}"#).unwrap();
        assert_eq!(from_docker(b, None).unwrap().host_config.isolation, "default");
        // Any case, as Go decodes (docker-py's spelling).
        let r = parse_create_request(br#"{"Image":"bb","HostConfig":{"CPURealtimePeriod":1000,"cpurealtimeruntime":500}}"#, None).unwrap();
        assert_eq!((r.host_config.cpu_realtime_period, r.host_config.cpu_realtime_runtime), (1000, 500));
    }

    #[test]
    fn healthcheck_converts_and_start_interval_is_refused() {
        let r = parse_create_request(br#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":2}}"#, None).unwrap();
        let want = Healthcheck { test: vec!["CMD".into(), "true".into()], interval: 1_000_000_000, retries: 2, ..Default::default() };
        assert_eq!(r.config.healthcheck, Some(want));
        let r = parse_create_request(br#"{"Image":"bb","Healthcheck":{"Test":["NONE"],"StartInterval":0}}"#, None).unwrap();
        assert_eq!(r.config.healthcheck.unwrap().test, ["NONE"]);
        let e = parse_create_request(br#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"StartInterval":5}}"#, None).unwrap_err();
        assert!(e.message.contains("Healthcheck.StartInterval"), "{}", e.message);
    }

    #[test]
    fn older_clients_get_dockerds_defaults_of_their_version() {
        use crate::version::RequestedVersion;
        let mut h = HostConfig::default();
        version_defaults(&mut h, RequestedVersion(1, 41));
        assert_eq!(h, HostConfig::default(), "the daemon's defaults (the engine's)");
        version_defaults(&mut h, RequestedVersion(1, 40));
        assert_eq!((h.ipc_mode.as_str(), h.cgroupns_mode.as_str()), ("", "host"));
        let mut h = HostConfig::default();
        version_defaults(&mut h, RequestedVersion(1, 39));
        assert_eq!((h.ipc_mode.as_str(), h.cgroupns_mode.as_str()), ("shareable", "host"));
        let mut h = HostConfig { ipc_mode: "none".into(), cgroupns_mode: "private".into(), ..Default::default() };
        version_defaults(&mut h, RequestedVersion(1, 24));
        assert_eq!((h.ipc_mode.as_str(), h.cgroupns_mode.as_str()), ("none", "private"));
    }

    #[test]
    fn cmd_and_entrypoint_may_be_a_string() {
        let b = decode_create_body(br#"{"Image":"bb","Cmd":"date","Entrypoint":"/bin/sh"}"#).unwrap();
        assert_eq!((b.cmd, b.entrypoint), (Some(vec!["date".to_string()]), Some(vec!["/bin/sh".to_string()])));
        let b = decode_create_body(br#"{"Image":"bb","Cmd":["echo","hi"],"Entrypoint":"env"}"#).unwrap();
        assert_eq!((b.cmd, b.entrypoint), (Some(vec!["echo".to_string(), "hi".to_string()]), Some(vec!["env".to_string()])));
        // Other wrong types are still errors naming the field.
        let e = decode_create_body(br#"{"Image":"bb","Cmd":7}"#).unwrap_err();
        assert!(e.message.contains("Cmd"), "{}", e.message);
    }

    #[test]
    fn minimal_body_defaults() {
        let r = create(r#"{"Image":"bb"}"#).unwrap();
        assert_eq!(r.config, ContainerConfig::default());
        assert_eq!(r.host_config, HostConfig::default());
        assert_eq!(create("{}").unwrap_err(), CreateError::NoImage);
    }

    #[test]
    fn names_are_validated() {
        let b = body(r#"{"Image":"bb"}"#);
        assert_eq!(from_docker(b.clone(), Some("/web")).unwrap().name.as_deref(), Some("web"));
        assert_eq!(from_docker(b.clone(), Some("")).unwrap().name, None);
        let e = from_docker(b.clone(), Some("x")).unwrap_err();
        assert_eq!(e.to_string(), "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        assert!(from_docker(b, Some("a/b")).is_err());
    }

    #[test]
    fn restart_policy_names_decode_with_dockerds_message() {
        let r = create(r#"{"Image":"bb","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}}"#).unwrap();
        assert_eq!(r.host_config.restart_policy, RestartPolicy { name: "always".into(), maximum_retry_count: 2 });
        let e =
            decode_create_body(br#"{"Image":"bb","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (http::StatusCode::BAD_REQUEST, "invalid restart policy 'sometimes'")
        );
    }

    #[test]
    fn mounts_map_their_type() {
        let r = create(r#"{"Image":"bb","HostConfig":{"Mounts":[{"Type":"bind","Source":"/h","Target":"/c","ReadOnly":true},{"Type":"volume","Source":"v","Target":"/d"}]}}"#).unwrap();
        assert_eq!(r.host_config.mounts[0], Mount { kind: MountKind::Bind, source: "/h".into(), target: "/c".into(), read_only: true });
        assert_eq!(r.host_config.mounts[1].kind, MountKind::Volume);
        assert!(create(r#"{"Image":"bb","HostConfig":{"Mounts":[{"Type":"npipe","Source":"a","Target":"/c"}]}}"#)
            .unwrap_err()
            .to_string()
            .contains("mounts of type \"npipe\""));
    }

    #[test]
    fn options_berth_would_ignore_are_refused() {
        let u = unsupported(
            r#"{"Image":"bb","Volumes":{"/data":{}},"Domainname":"x","Healthcheck":{"Test":["CMD","true"]},
               "HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},"Dns":["1.1.1.1"],"OomScoreAdj":10,
               "BlkioWeight":10,"GroupAdd":["audio"],"StorageOpt":{"size":"1G"},
               "Mounts":[{"Type":"bind","Source":"/a","Target":"/b","BindOptions":{"Propagation":"rshared"}}]},
               "NetworkingConfig":{"EndpointsConfig":{"other":{"Links":["a:b"],"MacAddress":"02:42:00:00:00:01","Aliases":["x"]}}}}"#,
        );
        assert_eq!(
            u,
            [
                "HostConfig.BlkioWeight", "HostConfig.Mounts[0].BindOptions", "HostConfig.OomScoreAdj",
                "HostConfig.StorageOpt", "NetworkingConfig.EndpointsConfig.other.Links", "NetworkingConfig.EndpointsConfig.other.MacAddress", "Volumes"
            ]
        );
        // What clients send for "not set", and the harmless fields, pass.
        assert!(unsupported(
            r#"{"Image":"bb","Volumes":{},"ExposedPorts":{"80/tcp":{}},"Healthcheck":null,"OnBuild":null,
                "HostConfig":{"ContainerIDFile":"/tmp/id","ConsoleSize":[24,80],"MemorySwappiness":-1,"Isolation":"default","UsernsMode":"host",
                "LogConfig":{"Type":"json-file","Config":{}},"PortBindings":{},"Dns":[],"BlkioWeightDevice":[]},
                "NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Aliases":null}}}}"#
        )
        .is_empty());
        let e = CreateError::Unsupported(vec!["HostConfig.Dns".into()]).to_string();
        assert_eq!(e, "berth does not support HostConfig.Dns yet; remove it from the request");
    }

    #[test]
    fn network_settings_are_kept() {
        let r = create(
            r#"{"Image":"bb","Domainname":"example.org","ExposedPorts":{"53/udp":{},"80/tcp":{}},
                "HostConfig":{"NetworkMode":"app","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],"443/tcp":null},
                  "PublishAllPorts":true,"Dns":["10.0.0.2"],"DnsSearch":["a.example"],"DnsOptions":["ndots:2"],"ExtraHosts":["db:10.0.0.5"]},
                "NetworkingConfig":{"EndpointsConfig":{"app":{"Aliases":["web"],"IPAMConfig":{"IPv4Address":"10.1.0.9"}}}}}"#,
        )
        .unwrap();
        let n = &r.networking;
        assert_eq!(n.port_bindings["80/tcp"], vec![PortBinding { host_ip: "127.0.0.1".into(), host_port: "8080".into() }]);
        assert!(n.port_bindings["443/tcp"].is_empty(), "a key without bindings publishes on a free port");
        assert!(n.publish_all_ports);
        assert_eq!(n.exposed_ports, ["53/udp", "80/tcp"]);
        assert_eq!((n.dns.as_slice(), n.dns_search.as_slice(), n.dns_options.as_slice()), (&["10.0.0.2".to_string()][..], &["a.example".to_string()][..], &["ndots:2".to_string()][..]));
        assert_eq!(n.extra_hosts, ["db:10.0.0.5"]);
        assert_eq!(n.domainname, "example.org");
        assert_eq!(n.endpoints["app"], EndpointConfig { aliases: vec!["web".into()], ipv4_address: "10.1.0.9".into() });
        assert_eq!(r.host_config.network_mode, "app");
    }

    #[test]
    fn a_top_level_runtime_is_honoured() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let req = |body: &str| http::Request::builder().body(axum::body::Body::from(body.to_owned())).unwrap();
        let r = rt.block_on(read_create_request(req(r#"{"Image":"bb","Runtime":"crun"}"#), None)).unwrap();
        assert_eq!(r.host_config.runtime, "crun");
        let r = rt.block_on(read_create_request(req(r#"{"Image":"bb","Runtime":"crun","HostConfig":{"Runtime":"crun"}}"#), None)).unwrap();
        assert_eq!(r.host_config.runtime, "crun");
        let e = rt.block_on(read_create_request(req(r#"{"Image":"bb","Runtime":"crun","HostConfig":{"Runtime":"runc"}}"#), None)).unwrap_err();
        assert!(e.message.contains("disagree"), "{}", e.message);
    }

    #[test]
    fn whole_request() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let req = |body: &str| http::Request::builder().body(axum::body::Body::from(body.to_owned())).unwrap();
        let r = rt.block_on(read_create_request(req(r#"{"Image":"bb","Cmd":["true"]}"#), Some("web"))).unwrap();
        assert_eq!((r.name.as_deref(), r.image.as_str()), (Some("web"), "bb"));
        let e = rt.block_on(read_create_request(req(r#"{"Image":"bb"}"#), Some("-x"))).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        let e = rt.block_on(read_create_request(req("{"), None)).unwrap_err();
        assert!(e.message.starts_with("invalid JSON in request body"), "{}", e.message);
        let e = rt.block_on(read_create_request(req(r#"{"Image":"bb","HostConfig":{"OomScoreAdj":1}}"#), None)).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (http::StatusCode::BAD_REQUEST, "berth does not support HostConfig.OomScoreAdj yet; remove it from the request"));
        let big = format!(r#"{{"Image":"bb","Env":["{}"]}}"#, "x".repeat(super::super::body::MAX_JSON_BODY));
        let e = rt.block_on(read_create_request(req(&big), None)).unwrap_err();
        assert_eq!(e.status, http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
