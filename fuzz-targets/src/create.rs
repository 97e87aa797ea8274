//! `create`: `POST /containers/create` bodies, through the API's mapping
//! and on into the engine's checks and the container's confinement; the
//! body and its `HostConfig` also as `POST /containers/{id}/update` bodies
//! (the same resource fields), through that mapping and dockerd's merge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use berth_api::docker::create::{decode_create_body, from_docker, parse_create_request, unsupported_fields};
use berth_config::logconfig::{self, LogConfig};
use berth_config::{EffectiveConfig, SeccompProfileSetting, Source};
use berth_engine::confine::{confinement, HostFacts};
use berth_api::docker::update::parse_update_request;
use berth_engine::containers::limits::HostLimits;
use berth_engine::containers::update::{check_request, merge};
use berth_engine::containers::validate::normalize;
use berth_security::caps::{self, CapSet};
use berth_security::devices::{self, DeviceRequest};
use berth_store::HostConfig;

use crate::{split_nul, text};

/// `NAME\0BODY` or `BODY`.
pub fn create(data: &[u8]) {
    let (name, body) = split_nul(data);
    let name = name.map(text);
    let name = name.as_deref();

    // The whole request as the route reads it.
    if let Err(e) = parse_create_request(body, name) {
        assert!(!e.message.is_empty(), "an empty error message");
    }
    if let Ok(raw) = serde_json::from_slice::<serde_json::Value>(body) {
        let fields = unsupported_fields(&raw);
        assert!(fields.windows(2).all(|w| w[0] < w[1]), "unsupported fields not sorted and distinct: {fields:?}");
        if let Some(hc) = raw.get("HostConfig").and_then(|h| serde_json::to_vec(h).ok()) {
            update(&hc);
        }
    }
    update(body);
    // The mapping alone takes bodies the request refuses for unsupported
    // fields, so more of them reach the engine.
    let Ok(b) = decode_create_body(body) else { return };
    let Ok(req) = from_docker(b, name) else { return };
    assert!(!req.image.is_empty(), "a request without an image was mapped");
    engine(req.config, req.host_config, req.log_config);
}

/// An update body through the API's mapping, the engine's checks of it
/// and dockerd's merge into a container's settings.
fn update(body: &[u8]) {
    let Ok(req) = parse_update_request(body) else { return };
    if check_request(&req).is_err() || HostLimits::permissive().check(&HostConfig { cpuset_cpus: req.cpuset_cpus.clone(), cpuset_mems: req.cpuset_mems.clone(), ..Default::default() }).is_err() {
        return;
    }
    let mut h = HostConfig { memory: 64 << 20, memory_swap: 128 << 20, ..Default::default() };
    if merge(&mut h, &req).is_ok() {
        assert!(h.pids_limit.is_none_or(|n| n > 0), "{:?}", h.pids_limit);
        assert!(!(h.nano_cpus > 0 && (h.cpu_period > 0 || h.cpu_quota > 0)), "Nano CPUs and a CFS period or quota both set");
        let _ = berth_engine::spec::resources(&h);
    }
}

/// What the engine does with a create request before it touches anything:
/// [`normalize`], the log configuration, the confinement. Devices are
/// checked without the host (the confinement stats them: it gets none).
fn engine(mut config: berth_store::ContainerConfig, mut host: HostConfig, log: berth_store::LogConfig) {
    let normalized = normalize(&mut config, &mut host);
    if normalized.is_ok() {
        // The host checks (cpuset lists, ulimits) on a host with everything.
        let _ = HostLimits::permissive().check(&host);
        assert!(host.shm_size > 0 && !host.ipc_mode.is_empty(), "dockerd's defaults not filled in");
        assert!(host.pids_limit.is_none_or(|n| n > 0));
        assert!(matches!(host.network_mode.as_str(), "default" | "bridge" | "host" | "none"), "{}", host.network_mode);
    }
    for defaults in [LogConfig::builtin(), local_defaults()] {
        if let Ok((merged, settings)) = logconfig::resolve(&log.driver, &log.opts, &defaults) {
            assert!(!merged.driver.is_empty());
            assert!((1..=logconfig::MAX_FILE_LIMIT).contains(&settings.max_file));
        }
    }
    for d in &host.devices {
        let _ = devices::validate(&DeviceRequest {
            path_on_host: d.path_on_host.clone(),
            path_in_container: d.path_in_container.clone(),
            cgroup_permissions: d.cgroup_permissions.clone(),
        });
    }
    let facts = facts();
    if let Ok(set) = caps::effective(&host.cap_add, &host.cap_drop, host.privileged, facts.held) {
        assert_eq!(set.intersect(facts.held), set, "capabilities beyond the daemon's");
    }
    // `--privileged` adds every device of the host's /dev: not input.
    let h = HostConfig { devices: Vec::new(), privileged: false, ..host };
    match confinement(&h, daemon_config(), &facts) {
        Ok(c) => assert!(c.devices.is_empty() && !c.all_devices),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn local_defaults() -> LogConfig {
    LogConfig { driver: logconfig::LOCAL.into(), opts: BTreeMap::from([("max-size".into(), "10m".into())]) }
}

/// An x86-64 host on Linux 6.1 whose daemon holds every capability but
/// `SYS_MODULE`.
fn facts() -> HostFacts {
    let mut held = CapSet::all_known();
    held.remove(berth_security::Cap::from_name("CAP_SYS_MODULE").expect("a known capability"));
    HostFacts { held, kernel: Some((6, 1)), arch: "amd64" }
}

/// The configuration of a daemon with an empty daemon.json.
fn daemon_config() -> &'static EffectiveConfig {
    static CONFIG: OnceLock<EffectiveConfig> = OnceLock::new();
    CONFIG.get_or_init(|| EffectiveConfig {
        config_file: PathBuf::from("/etc/berth/daemon.json"),
        data_root: PathBuf::from("/var/lib/berth"),
        exec_root: PathBuf::from("/run/berth"),
        hosts: vec!["unix:///run/berth.sock".into()],
        containerd: None,
        debug: false,
        log_level: "info".into(),
        live_restore: false,
        allow_implicit_shims: false,
        default_runtime: "runc".into(),
        default_runtime_source: Source::Builtin,
        metrics_addr: None,
        log_driver: logconfig::JSON_FILE.into(),
        log_opts: BTreeMap::new(),
        runtimes: BTreeMap::new(),
        seccomp_profile: SeccompProfileSetting::Builtin,
        no_new_privileges: false,
        exec_opts: Default::default(),
        network: Default::default(),
        init: false,
        init_path: None,
    })
}
