//! Containers: create, list, inspect, rename, remove here; the run-time
//! lifecycle (start, stop, kill, exits) in [`lifecycle`]; output and stdin
//! plumbing in [`io`]; waiting in [`wait`]; the filesystem as a whole
//! (diff, commit, size) in [`fs`].
//!
//! Reads (list, inspect) come from the store's lock-free index. Every
//! lifecycle operation on one container takes the store's per-container lock.

pub mod fs;
pub mod hub;
mod io;
pub mod lifecycle;
pub mod limits;
pub mod logconfig;
pub mod update;
pub mod stats;
pub mod validate;
pub mod wait;
mod wrappers;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_store::{ContainerConfig, ContainerRecord, HostConfig, LogConfig, NewContainer, Store};

use crate::ctd::Ctd;
use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus};
use crate::images::ImageService;
use crate::runtimes::RuntimeService;
use crate::spec::{self, ImageDefaults};
use hub::Hub;

/// A create request in berth's own types (the API converts Docker's body).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub image: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `HostConfig.LogConfig` as given (driver "" = the daemon default).
    pub log_config: LogConfig,
    /// Ports, DNS, extra hosts and endpoint settings.
    pub networking: berth_store::Networking,
}

/// Container operations.
pub struct ContainerService {
    pub(crate) store: Store,
    pub(crate) ctd: Ctd,
    pub(crate) images: Arc<ImageService>,
    pub(crate) runtimes: Arc<RuntimeService>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
    /// A weak handle on itself, for tasks that outlive an operation
    /// (restart-policy restarts).
    me: Mutex<std::sync::Weak<ContainerService>>,
    /// The exec service, for health probes (set once by [`crate::Engine::start`]).
    execs: std::sync::OnceLock<std::sync::Weak<crate::exec::ExecService>>,
    /// `<exec-root>/fifo`: one directory of FIFOs per run.
    pub(crate) fifo_root: PathBuf,
    /// Set when berth shuts down: stops are not the user's, and restart
    /// policies no longer restart anything.
    pub(crate) shutting_down: std::sync::atomic::AtomicBool,
    /// The daemon's capabilities, kernel and architecture (for confinement).
    pub(crate) host_facts: crate::confine::HostFacts,
    /// The host's cgroups and the driver in use (found once at start).
    pub(crate) cgroups: Arc<crate::cgroups::Cgroups>,
    /// Networks: set up at start, torn down at exit.
    pub(crate) networks: Arc<crate::networks::NetworkService>,
    /// What the host supports of the resource options (found once at start).
    pub(crate) limits: limits::HostLimits,
}

impl ContainerService {
    /// Wiring of the services it uses (called once, by [`crate::Engine::start`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        ctd: Ctd,
        images: Arc<ImageService>,
        runtimes: Arc<RuntimeService>,
        events: Arc<EventBus>,
        metrics: Arc<crate::metrics::Metrics>,
        exec_root: PathBuf,
        cgroups: Arc<crate::cgroups::Cgroups>,
        networks: Arc<crate::networks::NetworkService>,
    ) -> Self {
        ContainerService { store, ctd, images, runtimes, events, metrics, hubs: Mutex::new(HashMap::new()), me: Mutex::new(std::sync::Weak::new()), execs: std::sync::OnceLock::new(), fifo_root: exec_root.join("fifo"), shutting_down: Default::default(), host_facts: crate::confine::HostFacts::read(), limits: limits::HostLimits::read(&cgroups), cgroups, networks }
    }

    /// Registers the `Arc` this service lives in (done by [`crate::Engine::start`]).
    pub fn set_self(self: &Arc<Self>) {
        *self.me.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(self);
    }

    /// Registers the exec service (done by [`crate::Engine::start`]).
    pub fn set_execs(&self, execs: &Arc<crate::exec::ExecService>) {
        let _ = self.execs.set(Arc::downgrade(execs));
    }

    /// Starts the health monitor of a running container (see [`crate::health::start`]).
    pub(crate) fn start_health(&self, rec: &ContainerRecord, reset: bool) {
        let execs = self.execs.get().cloned().unwrap_or_default();
        let started = berth_store::timefmt::parse_rfc3339(&rec.state.started_at).unwrap_or_else(std::time::SystemTime::now);
        crate::health::start(execs, &self.hub(&rec.id), &rec.id, rec.config.healthcheck.as_ref(), started, reset);
    }

    /// `State.Health` of a container (`None`: no health check).
    pub fn health(&self, id: &str) -> Option<crate::health::Health> {
        let hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.get(id).and_then(|h| h.health.get())
    }

    pub(crate) fn me(&self) -> Option<Arc<ContainerService>> {
        self.me.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hub of a container (created on first use).
    pub fn hub(&self, id: &str) -> Arc<Hub> {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_string()).or_default().clone()
    }

    pub(crate) fn drop_hub(&self, id: &str) {
        self.hubs.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Finds a container by id, name or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Arc<ContainerRecord>> {
        Ok(self.store.resolve(key)?)
    }

    /// All containers, newest first.
    pub fn list(&self) -> Vec<Arc<ContainerRecord>> {
        self.store.list()
    }

    /// Every wrapper pinned by a container record (for wrapper GC).
    pub fn pinned_wrappers(&self) -> Vec<PathBuf> {
        self.store.list().iter().filter_map(|r| r.pinned_runtime.as_ref()?.wrapper.as_ref().map(PathBuf::from)).collect()
    }

    pub fn event(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("image".to_string(), rec.image.clone());
        attrs.insert("name".to_string(), rec.name.clone());
        if !rec.host_config.runtime.is_empty() {
            attrs.insert("runtime".to_string(), rec.host_config.runtime.clone());
        }
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        crate::events::add_labels(&mut attrs, &rec.config.labels);
        self.events.publish(Event::new("container", action, &rec.id, attrs));
    }

    /// Creates a container. Its settings are checked ([`validate`], and
    /// its confinement computed once); the runtime name is defaulted (and
    /// persisted) from the current snapshot and must resolve; nothing is
    /// created when any input is wrong.
    pub async fn create(&self, mut req: CreateRequest) -> Result<Arc<ContainerRecord>> {
        validate::normalize(&mut req.config, &mut req.host_config)?;
        self.limits.apply_defaults(&mut req.host_config);
        self.limits.check(&req.host_config)?;
        let image = self.images.resolve(&req.image).await?;
        crate::health::check(req.config.healthcheck.as_ref())?;
        merge_image_defaults(&mut req.config, &image.defaults);
        for p in &image.defaults.exposed_ports {
            if !req.networking.exposed_ports.contains(p) {
                req.networking.exposed_ports.push(p.clone());
            }
        }
        // The CLI names the mode's network `default` (or by its name) in
        // EndpointsConfig: kept under the network's own name.
        let primary = crate::networks::mode_network(&req.host_config.network_mode).to_string();
        if let Some(e) = req.networking.endpoints.remove("default") {
            req.networking.endpoints.entry(primary.clone()).or_insert(e);
        }
        if crate::networks::is_network_mode(&req.host_config.network_mode) {
            // The endpoints are the networks it joins at start; connect and
            // disconnect change them (compose reconnects the primary one).
            req.networking.endpoints.entry(primary).or_default();
        } else {
            req.networking.endpoints.retain(|k, e| !(k == &req.host_config.network_mode && e == &Default::default()));
        }
        self.networks.check_create(&req.host_config, &req.networking)?;

        let snap = self.runtimes.snapshot();
        if req.host_config.runtime.is_empty() {
            req.host_config.runtime = snap.runtimes.default.clone();
        }
        let resolved = crate::runtimes::resolve(&snap, &req.host_config.runtime).await?;
        let mode = self.networks.runtime_mode(&req.host_config.network_mode, &req.networking.endpoints);
        resolved.check_network_mode(&mode).map_err(EngineError::InvalidParameter)?;
        let h = &req.host_config;
        resolved.check_namespace_modes(&h.pid_mode, &h.ipc_mode, &h.uts_mode).map_err(EngineError::InvalidParameter)?;
        let confine = self.confinement(&req.host_config, &snap).await?;
        if confine.custom_seccomp {
            resolved.check_custom_seccomp().map_err(EngineError::InvalidParameter)?;
        }
        drop(resolved);
        let log_config = logconfig::resolve(&req.log_config, &snap)?;
        let init = init_binary(&req.host_config, &snap).await?;
        // Build the spec once now so bad input fails here, not at start.
        spec::build(&spec::SpecInput {
            id: "0",
            cgroups_path: "/check/0",
            config: &req.config,
            host: &req.host_config,
            image: &ImageDefaults::default(),
            etc: None,
            netns: None,
            confine: &confine,
            joins: &spec::Joins::placeholder(&req.host_config, init),
        })?;

        let new = NewContainer {
            id: None,
            name: req.name.clone(),
            image: req.image.clone(),
            image_id: image.id.clone(),
            image_digest: Some(image.manifest_digest.clone()),
            config: req.config,
            host_config: req.host_config,
            log_config,
            networking: req.networking,
        };
        let store = self.store.clone();
        let rec = tokio::task::spawn_blocking(move || store.create(new))
            .await
            .map_err(|e| EngineError::Internal(format!("create task failed: {e}")))??;
        self.hub(&rec.id);
        tracing::info!(container = %rec.id, name = %rec.name, runtime = %rec.host_config.runtime, image = %rec.image, "container created");
        self.event("create", &rec, &[]);
        Ok(rec)
    }

    /// The confinement of a container with host config `h` under the
    /// config of `snap` (computed off the async threads: it stats devices).
    pub(crate) async fn confinement(&self, h: &HostConfig, snap: &Arc<berth_config::Snapshot>) -> Result<crate::confine::Confinement> {
        let (h, snap, facts) = (h.clone(), snap.clone(), self.host_facts);
        tokio::task::spawn_blocking(move || crate::confine::confinement(&h, &snap.config, &facts))
            .await
            .map_err(|e| EngineError::Internal(format!("confinement task failed: {e}")))?
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))
    }

    /// Renames a container.
    pub async fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let rec = self.get(key)?;
        let _lock = self.store.lock(&rec.id).await;
        let store = self.store.clone();
        let (id, name) = (rec.id.clone(), new_name.to_string());
        let updated = tokio::task::spawn_blocking(move || store.rename(&id, &name))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        self.event("rename", &updated, &[("oldName", format!("/{}", rec.name))]);
        Ok(())
    }

    /// Connects a container to a network (`docker network connect`): kept
    /// in its settings, and set up at once when it runs.
    pub async fn connect_network(&self, key: &str, network: &str, cfg: berth_store::EndpointConfig) -> Result<()> {
        let rec = self.get(key)?;
        let _lock = self.store.lock(&rec.id).await;
        let n = self.networks.get(network)?;
        let mode = rec.host_config.network_mode.as_str();
        if !crate::networks::is_network_mode(mode) || n.driver != berth_network::Driver::Bridge {
            return Err(EngineError::InvalidParameter(format!(
                "container cannot be disconnected from host network or connected to host network (network mode {mode}, network {})",
                n.name
            )));
        }
        if rec.networking.endpoints.contains_key(&n.name) {
            return Err(EngineError::Conflict(format!("endpoint with name {} already exists in network {}", rec.name, n.name)));
        }
        if rec.state.running {
            let mut aliases = vec![rec.name.clone(), rec.id[..12].to_string()];
            aliases.extend(cfg.aliases.iter().cloned());
            let ipv4 = if cfg.ipv4_address.is_empty() {
                None
            } else {
                Some(cfg.ipv4_address.parse().map_err(|_| EngineError::InvalidParameter(format!("invalid IPv4 address: {}", cfg.ipv4_address)))?)
            };
            self.networks.connect(&rec.id, berth_network::EndpointRequest { network: n.id.clone(), aliases, ipv4 }).await?;
        }
        let name = n.name.clone();
        self.update(&rec.id, move |r| {
            r.networking.endpoints.insert(name, cfg);
        })
        .await?;
        Ok(())
    }

    /// Disconnects a container from a network.
    pub async fn disconnect_network(&self, key: &str, network: &str) -> Result<()> {
        let rec = self.get(key)?;
        let _lock = self.store.lock(&rec.id).await;
        let n = self.networks.get(network)?;
        if !rec.networking.endpoints.contains_key(&n.name) {
            return Err(EngineError::Conflict(format!("container {} is not connected to network {}", rec.id, n.name)));
        }
        if rec.state.running {
            self.networks.disconnect(&rec.id, &n.id).await?;
        }
        let name = n.name.clone();
        self.update(&rec.id, move |r| {
            r.networking.endpoints.remove(&name);
        })
        .await?;
        Ok(())
    }

    /// Runs a blocking store update off the async threads.
    pub(crate) async fn update<F>(&self, id: &str, f: F) -> Result<Arc<ContainerRecord>>
    where
        F: FnOnce(&mut ContainerRecord) + Send + 'static,
    {
        let store = self.store.clone();
        let id = id.to_string();
        Ok(tokio::task::spawn_blocking(move || store.update(&id, f))
            .await
            .map_err(|e| EngineError::Internal(format!("record update task failed: {e}")))??)
    }
}

/// Debian's static tini, which dockerd's own `docker-init` is: it runs in
/// any image, with or without a libc.
pub const DEFAULT_INIT: &str = "/usr/bin/tini-static";

/// The init binary a container runs as PID 1 (`Init`, else daemon.json
/// `init`), from `init-path` or [`DEFAULT_INIT`]; `None` without one. A
/// missing binary is refused, saying what to install.
pub(crate) async fn init_binary(h: &HostConfig, snap: &berth_config::Snapshot) -> Result<Option<PathBuf>> {
    if !h.init.unwrap_or(snap.config.init) {
        return Ok(None);
    }
    let path = snap.config.init_path.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_INIT));
    if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
        let hint = if snap.config.init_path.is_some() {
            "fix init-path in daemon.json".to_string()
        } else {
            "install Debian's tini package (apt-get install tini) or set init-path in daemon.json".to_string()
        };
        return Err(EngineError::InvalidParameter(format!(
            "Init: the init binary {} is missing: {hint}",
            path.display()
        )));
    }
    Ok(Some(path))
}

/// Docker's merge of image defaults into a container's config: a container
/// entrypoint drops the image's cmd; env is the container's, then the
/// image's entries for other keys ([`crate::env`]); working dir and user
/// fall back to the image's.
pub fn merge_image_defaults(cfg: &mut ContainerConfig, image: &ImageDefaults) {
    if cfg.entrypoint.is_none() {
        cfg.entrypoint = image.entrypoint.clone();
        if cfg.cmd.is_none() || cfg.cmd.as_ref().is_some_and(|c| c.is_empty()) {
            cfg.cmd = image.cmd.clone();
        }
    }
    cfg.env = crate::env::merge_image_env(&cfg.env, &image.env);
    if cfg.working_dir.is_empty() {
        cfg.working_dir = image.working_dir.clone();
    }
    if cfg.user.is_empty() {
        cfg.user = image.user.clone();
    }
    crate::health::merge(&mut cfg.healthcheck, image.healthcheck.as_ref());
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_docker() {
        let img = ImageDefaults { env: vec!["PATH=/bin".into(), "A=1".into()], cmd: Some(vec!["sh".into()]), working_dir: "/w".into(), ..Default::default() };
        let mut c = ContainerConfig { env: vec!["A=2".into()], ..Default::default() };
        merge_image_defaults(&mut c, &img);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.env, vec!["A=2".to_string(), "PATH=/bin".to_string()], "dockerd: the container's entries, then the image's others");
        assert_eq!(c.working_dir, "/w");
        let mut c = ContainerConfig { entrypoint: Some(vec!["/x".into()]), ..Default::default() };
        merge_image_defaults(&mut c, &img);
        assert_eq!(c.cmd, None);
    }

    #[test]
    fn env_merges_like_dockerd() {
        // Checked against dockerd 20.10: Config.Env keeps the container's
        // entries as given, then the image's others; the process sees the
        // defaults first and one entry per key.
        let img = ImageDefaults { env: vec!["PATH=/bin".into(), "X=img".into(), "Y=img2".into()], ..Default::default() };
        let mut c = ContainerConfig { env: vec!["A=1".into(), "Y=u".into(), "A=3".into(), "X".into()], ..Default::default() };
        merge_image_defaults(&mut c, &img);
        assert_eq!(c.env, ["A=1", "Y=u", "A=3", "X", "PATH=/bin"]);
        assert_eq!(spec::environment(&c, &ImageDefaults::default(), "h"), ["PATH=/bin", "HOSTNAME=h", "A=3", "Y=u"]);
    }

    #[test]
    fn a_huge_env_merges_in_linear_time() {
        // 120k entries (half of them set twice): minutes with a quadratic
        // merge, milliseconds with a linear one.
        const N: usize = 120_000;
        let img = ImageDefaults { env: (0..N).map(|i| format!("I{i}=img")).collect(), ..Default::default() };
        let mut env: Vec<String> = (0..N).map(|i| format!("K{i}=a")).collect();
        env.extend((0..N).step_by(2).map(|i| format!("K{i}=b")));
        let mut c = ContainerConfig { env, ..Default::default() };
        merge_image_defaults(&mut c, &img);
        let got = spec::environment(&c, &ImageDefaults::default(), "h");
        let mut want = vec![crate::env::DEFAULT_PATH.to_string(), "HOSTNAME=h".to_string()];
        want.extend((0..N).map(|i| format!("K{i}={}", if i % 2 == 0 { "b" } else { "a" })));
        want.extend((0..N).map(|i| format!("I{i}=img")));
        assert_eq!(got, want);
    }
}
