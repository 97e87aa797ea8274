//! `POST /containers/create`: Docker's create body (bollard's
//! [`ContainerCreateBody`]) plus `?name=` → berth-store's
//! [`ContainerConfig`] and [`HostConfig`], validated with dockerd's error
//! texts where dockerd has one.
//!
//! What is kept: Cmd/Entrypoint (null stays `None`, `[]` stays empty),
//! Env, WorkingDir, User, Tty, OpenStdin, StdinOnce, Attach*, Labels,
//! StopSignal, StopTimeout, Hostname; HostConfig Binds, bind Mounts,
//! NetworkMode, AutoRemove, RestartPolicy, Memory, CpuShares, CpuQuota,
//! CpuPeriod (NanoCpus is converted to quota/period), PidsLimit, Runtime
//! (as given; empty stays empty and the engine applies the default).
//! Merging with the image config (and "No command specified") is the
//! engine's job. Fields berth does not implement are ignored; the ones a
//! user would miss produce a warning in the create response.

use std::collections::BTreeSet;

use berth_store::record::{ContainerConfig, HostConfig, Mount, MountKind, RestartPolicy};

use super::body::{decode_json, BodyError};
use super::models::{self, ContainerCreateBody, MountType, RestartPolicyNameEnum};
use super::params::{parse_signal, ParamError};
use crate::error::ApiError;
pub use berth_engine::binds::{parse_bind, BindError, BindSpec};

/// A validated create request, ready for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// Requested name without the leading `/`; `None` = generate one.
    pub name: Option<String>,
    /// Image reference exactly as the client gave it.
    pub image: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// For the `Warnings` of the create response.
    pub warnings: Vec<String>,
}

/// A create request berth refuses. Every variant is a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("no image specified: Config.Image is empty")]
    NoImage,
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
    #[error(transparent)]
    Signal(#[from] ParamError),
    /// Something Docker has that berth does not do yet.
    #[error("{0}")]
    Unsupported(String),
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// dockerd's minimum memory limit (6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// CFS period used when converting `NanoCpus` (Docker's default, 100 ms).
pub const DEFAULT_CPU_PERIOD: i64 = 100_000;

/// Decodes a create body (see [`super::body::decode_json`]), giving
/// dockerd's text for an unknown restart policy name instead of the
/// model's enum error. Like dockerd, `Cmd` and `Entrypoint` may be a plain
/// string (one word: `"Cmd": "date"` is `["date"]`).
pub fn decode_create_body(bytes: &[u8]) -> Result<ContainerCreateBody, ApiError> {
    match decode_json::<ContainerCreateBody>(bytes) {
        Ok(b) => Ok(b),
        Err(e @ BodyError::Type { .. }) if matches!(&e, BodyError::Type { path, .. } if path == "Cmd" || path == "Entrypoint") => {
            // The body parsed as JSON already: only the field's type was wrong.
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Err(e.into()) };
            let mut wrapped = false;
            for key in ["Cmd", "Entrypoint"] {
                if let Some(serde_json::Value::String(word)) = v.get(key) {
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
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
            let name = v["HostConfig"]["RestartPolicy"]["Name"].as_str().unwrap_or_default().to_owned();
            Err(CreateError::InvalidRestartPolicy(name).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The whole create request from the wire: reads at most
/// [`MAX_JSON_BODY`](super::body::MAX_JSON_BODY) bytes (refusing a larger
/// announced `Content-Length` at once), decodes and converts it.
/// `name` is the raw `?name=` value.
pub async fn read_create_request(req: axum::extract::Request, name: Option<&str>) -> Result<CreateRequest, ApiError> {
    let limit = super::body::MAX_JSON_BODY;
    super::body::check_content_length(req.headers(), limit)?;
    let bytes = super::body::read_limited(req.into_body(), limit).await?;
    Ok(from_docker(decode_create_body(&bytes)?, name)?)
}

/// Converts and validates a create body and the `name` query parameter.
pub fn from_docker(body: ContainerCreateBody, name: Option<&str>) -> Result<CreateRequest, CreateError> {
    let name = match name {
        None | Some("") => None,
        Some(n) => Some(berth_store::validate_name(n).map_err(|_| CreateError::InvalidName(n.to_owned()))?),
    };
    let image = body.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(CreateError::NoImage);
    }
    let mut warnings = Vec::new();
    let config = convert_config(&body, &mut warnings)?;
    let hc = body.host_config.unwrap_or_default();
    let host_config = convert_host_config(hc, &mut warnings)?;
    Ok(CreateRequest { name, image, config, host_config, warnings })
}

fn convert_config(b: &ContainerCreateBody, warnings: &mut Vec<String>) -> Result<ContainerConfig, CreateError> {
    let working_dir = b.working_dir.clone().unwrap_or_default();
    if !working_dir.is_empty() && !working_dir.starts_with('/') {
        return Err(CreateError::WorkingDir(working_dir));
    }
    let stop_signal = b.stop_signal.clone().filter(|s| !s.is_empty());
    if let Some(s) = &stop_signal {
        parse_signal(s)?;
    }
    if b.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
        warnings.push("berth ignores Config.Volumes: anonymous volumes are not supported yet".into());
    }
    if b.healthcheck.as_ref().and_then(|h| h.test.as_ref()).is_some_and(|t| !t.is_empty() && t[0] != "NONE") {
        warnings.push("berth ignores Config.Healthcheck: health checks are not supported yet".into());
    }
    Ok(ContainerConfig {
        cmd: b.cmd.clone(),
        entrypoint: b.entrypoint.clone(),
        env: b.env.clone().unwrap_or_default(),
        working_dir,
        user: b.user.clone().unwrap_or_default(),
        tty: b.tty.unwrap_or(false),
        open_stdin: b.open_stdin.unwrap_or(false),
        stdin_once: b.stdin_once.unwrap_or(false),
        attach_stdin: b.attach_stdin.unwrap_or(false),
        attach_stdout: b.attach_stdout.unwrap_or(false),
        attach_stderr: b.attach_stderr.unwrap_or(false),
        labels: b.labels.clone().unwrap_or_default().into_iter().collect(),
        stop_signal,
        stop_timeout: b.stop_timeout,
        hostname: b.hostname.clone().unwrap_or_default(),
    })
}

fn convert_host_config(hc: models::HostConfig, warnings: &mut Vec<String>) -> Result<HostConfig, CreateError> {
    let network_mode = normalize_network_mode(hc.network_mode.as_deref().unwrap_or(""))?;
    let restart_policy = convert_restart_policy(hc.restart_policy.as_ref())?;
    let auto_remove = hc.auto_remove.unwrap_or(false);
    if auto_remove && !matches!(restart_policy.name.as_str(), "" | "no") {
        return Err(CreateError::AutoRemoveWithRestartPolicy);
    }

    let binds = hc.binds.clone().unwrap_or_default();
    let mut targets = BTreeSet::new();
    for spec in &binds {
        let b = parse_bind(spec)?;
        if !targets.insert(b.target.clone()) {
            return Err(CreateError::DuplicateMountPoint(b.target));
        }
    }
    let mut mounts = Vec::new();
    for m in hc.mounts.iter().flatten() {
        let m = convert_mount(m)?;
        if !targets.insert(m.target.clone()) {
            return Err(CreateError::DuplicateMountPoint(m.target));
        }
        mounts.push(m);
    }

    let memory = hc.memory.unwrap_or(0);
    if memory > 0 && memory < MIN_MEMORY {
        return Err(CreateError::MemoryTooLow);
    }
    let mut cpu_period = hc.cpu_period.unwrap_or(0);
    let mut cpu_quota = hc.cpu_quota.unwrap_or(0);
    if cpu_period != 0 && !(1000..=1_000_000).contains(&cpu_period) {
        return Err(CreateError::CpuPeriod);
    }
    if cpu_quota > 0 && cpu_quota < 1000 {
        return Err(CreateError::CpuQuota);
    }
    match hc.nano_cpus.unwrap_or(0) {
        0 => {}
        n if n < 0 => return Err(CreateError::NanoCpusNegative),
        n => {
            if cpu_period > 0 {
                return Err(CreateError::NanoCpusConflict("Period"));
            }
            if cpu_quota > 0 {
                return Err(CreateError::NanoCpusConflict("Quota"));
            }
            cpu_period = DEFAULT_CPU_PERIOD;
            cpu_quota = (i128::from(n) * i128::from(DEFAULT_CPU_PERIOD) / 1_000_000_000).max(1000) as i64;
        }
    }

    let ignored: [(bool, &str); 8] = [
        (
            hc.port_bindings.as_ref().is_some_and(|p| p.values().any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))),
            "PortBindings (published ports are not supported yet)",
        ),
        (hc.publish_all_ports == Some(true), "PublishAllPorts (published ports are not supported yet)"),
        (hc.privileged == Some(true), "Privileged (privileged containers are not supported yet)"),
        (hc.cap_add.as_ref().is_some_and(|c| !c.is_empty()), "CapAdd"),
        (hc.devices.as_ref().is_some_and(|d| !d.is_empty()), "Devices"),
        (hc.volumes_from.as_ref().is_some_and(|v| !v.is_empty()), "VolumesFrom"),
        (hc.tmpfs.as_ref().is_some_and(|t| !t.is_empty()), "Tmpfs"),
        (hc.readonly_rootfs == Some(true), "ReadonlyRootfs"),
    ];
    for (set, what) in ignored {
        if set {
            warnings.push(format!("berth ignores HostConfig.{what}"));
        }
    }

    Ok(HostConfig {
        runtime: hc.runtime.unwrap_or_default(),
        binds,
        mounts,
        network_mode,
        auto_remove,
        restart_policy,
        memory,
        cpu_shares: hc.cpu_shares.unwrap_or(0),
        cpu_quota,
        cpu_period,
        pids_limit: hc.pids_limit.filter(|&n| n > 0),
    })
}

/// The network modes berth implements. `""` becomes `default` (as in
/// dockerd); `container:<x>` and named networks are refused for now.
pub fn normalize_network_mode(mode: &str) -> Result<String, CreateError> {
    match mode {
        "" | "default" => Ok("default".into()),
        "bridge" | "host" | "none" => Ok(mode.into()),
        other => Err(CreateError::Unsupported(format!(
            "berth does not support network mode \"{other}\" yet (supported: default, bridge, host, none)"
        ))),
    }
}

fn convert_restart_policy(p: Option<&models::RestartPolicy>) -> Result<RestartPolicy, CreateError> {
    let Some(p) = p else { return Ok(RestartPolicy::default()) };
    let name = match p.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
        RestartPolicyNameEnum::EMPTY => "",
        RestartPolicyNameEnum::NO => "no",
        RestartPolicyNameEnum::ALWAYS => "always",
        RestartPolicyNameEnum::UNLESS_STOPPED => "unless-stopped",
        RestartPolicyNameEnum::ON_FAILURE => "on-failure",
    };
    let retries = p.maximum_retry_count.unwrap_or(0);
    match name {
        "always" | "unless-stopped" | "no" if retries != 0 => {
            return Err(CreateError::RetryCountNotAllowed(name.into()))
        }
        "on-failure" if retries < 0 => return Err(CreateError::NegativeRetryCount),
        _ => {}
    }
    Ok(RestartPolicy { name: name.into(), maximum_retry_count: retries })
}

fn convert_mount(m: &models::Mount) -> Result<Mount, CreateError> {
    let kind = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let err = |reason: String| CreateError::MountConfig { kind: kind.clone(), reason };
    match m.typ {
        Some(MountType::BIND) => {}
        None => return Err(err("mount type unknown".into())),
        Some(other) => {
            return Err(CreateError::Unsupported(format!(
                "berth does not support mounts of type \"{other}\" yet (supported: bind)"
            )))
        }
    }
    let source = m.source.clone().unwrap_or_default();
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(err("field Target must not be empty".into()));
    }
    if source.is_empty() {
        return Err(err("field Source must not be empty".into()));
    }
    if !target.starts_with('/') {
        return Err(err(format!("invalid mount path: '{target}' mount path must be absolute")));
    }
    if target.trim_end_matches('/').is_empty() {
        return Err(err("invalid specification: destination can't be '/'".into()));
    }
    if !source.starts_with('/') {
        return Err(err(format!("invalid mount path: '{source}' mount path must be absolute")));
    }
    Ok(Mount { kind: MountKind::Bind, source, target, read_only: m.read_only.unwrap_or(false) })
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

    #[test]
    fn the_cli_fixture_converts() {
        let Some(bytes) = fixture("req-containers-create.json") else { return };
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
        assert!(r.host_config.pids_limit.is_none());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn config_fields_are_kept() {
        let r = create(
            r#"{"Image":"bb","Cmd":[],"Entrypoint":["sh"],"Env":["A=1"],"WorkingDir":"/app","User":"0",
                "Tty":true,"OpenStdin":true,"StdinOnce":true,"AttachStdin":true,"Labels":{"k":"v","a":"b"},
                "StopSignal":"SIGUSR1","StopTimeout":3,"Hostname":"h1",
                "HostConfig":{"Runtime":"crun","Memory":10485760,"CpuShares":512,"CpuQuota":50000,
                "CpuPeriod":100000,"PidsLimit":100,"NetworkMode":"host",
                "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}"#,
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
        assert_eq!((h.memory, h.cpu_shares, h.cpu_quota, h.cpu_period), (10485760, 512, 50000, 100000));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.network_mode, "host");
        assert_eq!(h.restart_policy, RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 });
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
        assert_eq!(r.host_config.network_mode, "default");
        assert_eq!(r.host_config.restart_policy, RestartPolicy::default());
        let r = create(r#"{"Image":"bb","HostConfig":{"PidsLimit":-1,"NetworkMode":""}}"#).unwrap();
        assert_eq!(r.host_config.pids_limit, None);
        assert_eq!(r.host_config.network_mode, "default");
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
    fn restart_policies() {
        let rp = |name: &str, n: i64, auto: bool| {
            create(&format!(
                r#"{{"Image":"bb","HostConfig":{{"AutoRemove":{auto},"RestartPolicy":{{"Name":"{name}","MaximumRetryCount":{n}}}}}}}"#
            ))
        };
        assert!(rp("always", 0, false).is_ok());
        assert!(rp("unless-stopped", 0, false).is_ok());
        assert!(rp("no", 0, true).is_ok());
        assert!(rp("", 0, true).is_ok());
        assert_eq!(
            rp("always", 2, false).unwrap_err().to_string(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(rp("on-failure", -1, false).unwrap_err().to_string(), "maximum retry count cannot be negative");
        assert_eq!(
            rp("always", 0, true).unwrap_err().to_string(),
            "can't create 'AutoRemove' container with restart policy"
        );
        let e =
            decode_create_body(br#"{"Image":"bb","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (http::StatusCode::BAD_REQUEST, "invalid restart policy 'sometimes'")
        );
    }

    #[test]
    fn network_modes() {
        for (given, kept) in [("default", "default"), ("bridge", "bridge"), ("none", "none"), ("host", "host")] {
            let r = create(&format!(r#"{{"Image":"bb","HostConfig":{{"NetworkMode":"{given}"}}}}"#)).unwrap();
            assert_eq!(r.host_config.network_mode, kept);
        }
        for bad in ["container:abc", "mynet"] {
            let e = create(&format!(r#"{{"Image":"bb","HostConfig":{{"NetworkMode":"{bad}"}}}}"#)).unwrap_err();
            assert!(e.to_string().contains("does not support network mode") && e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn binds() {
        // The parser's own cases are in berth_engine::binds.
        assert!(create(r#"{"Image":"bb","HostConfig":{"Binds":["/a:/b:xx"]}}"#).unwrap_err().to_string() == "invalid mode: xx");
        let r = create(r#"{"Image":"bb","HostConfig":{"Binds":["/h:/c:ro"]}}"#).unwrap();
        assert_eq!(r.host_config.binds, vec!["/h:/c:ro"]);
        let e = create(r#"{"Image":"bb","HostConfig":{"Binds":["/h:/c","/i:/c"]}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Duplicate mount point: /c");
    }

    #[test]
    fn mounts() {
        let r = create(
            r#"{"Image":"bb","HostConfig":{"Mounts":[{"Type":"bind","Source":"/h","Target":"/c","ReadOnly":true}]}}"#,
        )
        .unwrap();
        assert_eq!(
            r.host_config.mounts,
            vec![Mount { kind: MountKind::Bind, source: "/h".into(), target: "/c".into(), read_only: true }]
        );
        let err =
            |m: &str| create(&format!(r#"{{"Image":"bb","HostConfig":{{"Mounts":[{m}]}}}}"#)).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"Type":"bind","Source":"/h"}"#),
            "invalid mount config for type \"bind\": field Target must not be empty"
        );
        assert_eq!(
            err(r#"{"Type":"bind","Target":"/c"}"#),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err(r#"{"Type":"bind","Source":"h","Target":"/c"}"#),
            "invalid mount config for type \"bind\": invalid mount path: 'h' mount path must be absolute"
        );
        assert!(err(r#"{"Type":"volume","Source":"v","Target":"/c"}"#).contains("mounts of type \"volume\""));
        let e = create(
            r#"{"Image":"bb","HostConfig":{"Binds":["/h:/c"],"Mounts":[{"Type":"bind","Source":"/x","Target":"/c"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e, CreateError::DuplicateMountPoint("/c".into()));
    }

    #[test]
    fn resources_and_other_checks() {
        let e = |j: &str| create(j).unwrap_err().to_string();
        assert_eq!(e(r#"{"Image":"bb","HostConfig":{"Memory":1000}}"#), "Minimum memory limit allowed is 6MB");
        assert!(e(r#"{"Image":"bb","HostConfig":{"CpuPeriod":10}}"#).starts_with("CPU cfs period"));
        assert!(e(r#"{"Image":"bb","HostConfig":{"CpuQuota":10}}"#).starts_with("CPU cfs quota"));
        assert_eq!(
            e(r#"{"Image":"bb","HostConfig":{"NanoCpus":1000000000,"CpuQuota":5000}}"#),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        );
        let r = create(r#"{"Image":"bb","HostConfig":{"NanoCpus":1500000000}}"#).unwrap();
        assert_eq!((r.host_config.cpu_quota, r.host_config.cpu_period), (150_000, 100_000));
        assert_eq!(e(r#"{"Image":"bb","StopSignal":"SIGNOPE"}"#), "Invalid signal: SIGNOPE");
        assert_eq!(
            e(r#"{"Image":"bb","WorkingDir":"rel"}"#),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        let api: ApiError = CreateError::MemoryTooLow.into();
        assert_eq!(api.status, http::StatusCode::BAD_REQUEST);
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
        let big = format!(r#"{{"Image":"bb","Env":["{}"]}}"#, "x".repeat(super::super::body::MAX_JSON_BODY));
        let e = rt.block_on(read_create_request(req(&big), None)).unwrap_err();
        assert_eq!(e.status, http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn ignored_fields_warn() {
        let r = create(
            r#"{"Image":"bb","Volumes":{"/data":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},
               "Privileged":true,"Dns":["1.1.1.1"],"ShmSize":1024}}"#,
        )
        .unwrap();
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings.iter().any(|w| w.contains("PortBindings")));
        assert!(r.warnings.iter().any(|w| w.contains("Privileged")));
        assert!(r.warnings.iter().any(|w| w.contains("Volumes")));
    }
}
