//! # berth-engine
//!
//! Operations on containers, images and execs, over containerd. Each
//! operation loads the current config [`Snapshot`](berth_config::Snapshot)
//! once at its entry and passes it down.
//!
//! - [`runtimes`]: reloads and the runtime inventory.
//! - [`containers`]: create/list/inspect/remove, the lifecycle, waiting, logs.
//! - [`exec`]: processes in running containers.
//! - [`images`]: import, list, tag, remove; references in [`reference`].
//! - [`monitor`]: containerd's event stream drives exits.
//! - [`spec`]: the OCI spec of a container.
//! - [`events`]: the Docker-style event bus.
//! - [`model`]: the record and image types of the engine's interface.
//!
//! [`Engine`] bundles the services; its only operations are the ones that
//! span services (a reload emits an event; the wrapper GC that follows
//! learns the containers' pinned wrappers from the source set in
//! [`Engine::start`]).

pub mod binds;
pub mod cgroups;
pub mod changes;
pub mod confine;
pub mod confined;
pub mod containers;
pub mod cp;
pub mod ctd;
pub mod env;
pub mod error;
pub mod events;
pub mod exec;
pub mod health;
pub mod images;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod networks;
pub mod reference;
pub mod runtimes;
pub mod signal;
pub mod spec;
pub mod usage;
pub mod user;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{EngineError, Result};

/// The services of a running daemon.
#[derive(Clone)]
pub struct Engine {
    pub runtimes: Arc<runtimes::RuntimeService>,
    pub containers: Arc<containers::ContainerService>,
    pub images: Arc<images::ImageService>,
    pub execs: Arc<exec::ExecService>,
    pub events: Arc<events::EventBus>,
    pub networks: Arc<networks::NetworkService>,
    pub metrics: Arc<metrics::Metrics>,
    /// The host's cgroups and the driver in use.
    pub cgroups: Arc<cgroups::Cgroups>,
}

impl Engine {
    /// Wires the services over a containerd namespace, the record store and
    /// the host's cgroups (found once by the daemon: [`cgroups::Cgroups::detect`]),
    /// and starts the event loop.
    pub async fn start(
        runtimes: Arc<runtimes::RuntimeService>,
        client: berth_containerd::Client,
        store: berth_store::Store,
        exec_root: PathBuf,
        cgroups: cgroups::Cgroups,
    ) -> Result<Engine> {
        let cgroups = Arc::new(cgroups);
        let ctd = ctd::Ctd::new(client).await?;
        let events = Arc::new(events::EventBus::new());
        let metrics = Arc::new(metrics::Metrics::new());
        // Uploads interrupted by a crash left their scratch directories.
        let scratch = images::scratch::Scratch::new(store.root().join("tmp"));
        let cleaner = scratch.clone();
        match tokio::task::spawn_blocking(move || cleaner.clean()).await {
            Ok((removed, error)) => {
                if removed > 0 {
                    tracing::info!(removed, dir = %scratch.base().display(), "removed scratch directories of interrupted uploads");
                }
                if let Some(e) = error {
                    tracing::warn!(error = %e, "a scratch directory of an interrupted upload could not be removed; remove it by hand");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scratch clean-up task failed"),
        }
        // Commits interrupted by a crash left their leases (their view
        // snapshot and layer go with them at containerd's next GC).
        match berth_containerd::snapshots::delete_leases(&ctd.client, images::commit::COMMIT_LEASE_PREFIX).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(leases = n, "deleted the leases of interrupted commits"),
            Err(e) => tracing::warn!(error = %e, "listing the leases of interrupted commits failed; they expire on their own"),
        }
        match berth_containerd::snapshots::delete_leases(&ctd.client, cp::CP_LEASE_PREFIX).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(leases = n, "deleted the leases of interrupted copies"),
            Err(e) => tracing::warn!(error = %e, "listing the leases of interrupted copies failed; they expire on their own"),
        }
        let images = Arc::new(images::ImageService::new(ctd.images.clone(), events.clone(), scratch));
        let networks = Arc::new(networks::NetworkService::new(open_networks(&runtimes, &exec_root).await?, events.clone(), &runtimes.snapshot().config.network));
        let containers = Arc::new(containers::ContainerService::new(store, ctd, images.clone(), runtimes.clone(), events.clone(), metrics.clone(), exec_root, cgroups.clone(), networks.clone()));
        containers.set_self();
        let pins = Arc::downgrade(&containers);
        runtimes.set_pinned_source(Arc::new(move || pins.upgrade().map(|c| c.pinned_wrappers())));
        let execs = Arc::new(exec::ExecService::new(containers.clone()));
        containers.set_execs(&execs);
        containers.restore().await;
        tokio::spawn(monitor::run(containers.clone(), execs.clone()));
        tokio::spawn(exec::collect_periodically(Arc::downgrade(&execs)));
        Ok(Engine { runtimes, containers, images, execs, events, networks, metrics, cgroups })
    }

    /// The metrics in Prometheus text format. The wrapper directory is
    /// counted on a blocking thread.
    pub async fn render_metrics(&self) -> String {
        let snap = self.runtimes.snapshot();
        let dir = snap.config.wrapper_dir();
        let wrappers = tokio::task::spawn_blocking(move || {
            std::fs::read_dir(dir)
                .map(|d| d.flatten().filter(|e| berth_config::wrapper::is_wrapper_name(&e.file_name().to_string_lossy())).count())
                .unwrap_or(0)
        })
        .await
        .unwrap_or(0);
        let containers = self.containers.list();
        self.metrics.set_wrappers_collected(self.runtimes.collected());
        self.metrics.render(
            snap.generation,
            wrappers,
            containers.iter().map(|r| {
                let rt = r.pinned_runtime.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| r.host_config.runtime.clone());
                (r.state.status.as_str().to_string(), rt)
            }),
        )
    }

    /// The runtime inventory with the number of running containers per
    /// runtime. It lists the shims on PATH, so it is built on a blocking thread.
    pub async fn inventory(&self) -> runtimes::Inventory {
        let snap = self.runtimes.snapshot();
        let for_task = snap.clone();
        let mut inv = tokio::task::spawn_blocking(move || runtimes::inventory(&for_task)).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "building the runtime inventory failed");
            runtimes::Inventory { generation: snap.generation, default_runtime: snap.runtimes.default.clone(), runtimes: Vec::new() }
        });
        for rec in self.containers.list().iter().filter(|r| r.state.running) {
            let name = rec.pinned_runtime.as_ref().map(|p| p.name.as_str()).unwrap_or(rec.host_config.runtime.as_str());
            if let Some(row) = inv.runtimes.iter_mut().find(|r| r.name == name) {
                row.containers_running += 1;
            }
        }
        inv
    }

    /// Reloads the configuration (see [`runtimes::RuntimeService::reload`]):
    /// wrappers pinned by containers survive the delayed GC that follows,
    /// and a successful reload emits a `daemon`/`reload` event with the diff.
    pub async fn reload(&self, dry_run: bool) -> std::result::Result<berth_config::ReloadReport, runtimes::ReloadError> {
        let result = self.runtimes.reload(dry_run).await;
        if !dry_run {
            self.metrics.reload(result.is_ok(), result.as_ref().ok().map(|r| r.apply_us as f64 / 1e6));
        }
        let report = result?;
        if !report.dry_run {
            // From the report, not a fresh snapshot: a reload right after
            // this one must not make this event describe its generation.
            let mut attrs = std::collections::BTreeMap::new();
            attrs.insert("generation".to_string(), report.generation.to_string());
            attrs.insert("default-runtime".to_string(), report.default_runtime.new.clone());
            attrs.insert("runtimes".to_string(), report.runtimes.join(" "));
            for (k, v) in [("added", &report.added), ("removed", &report.removed)] {
                attrs.insert(k.to_string(), v.join(" "));
            }
            attrs.insert("changed".to_string(), report.changed.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(" "));
            self.events.publish(events::Event::new("daemon", "reload", "berth", attrs));
            // Wrappers the reload found changed on disk and restored (the
            // same event a start emits when it restores one).
            for path in &report.repaired_wrappers {
                let attrs = [("path", path.display().to_string()), ("found", "modified".to_string())];
                let attrs = attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                self.events.publish(events::Event::new("daemon", "wrapper-restored", "berth", attrs));
            }
        }
        Ok(report)
    }
}

/// Opens the network subsystem with the daemon's settings (its records
/// under `<data-root>/network`, namespaces under `<exec-root>/network`).
async fn open_networks(runtimes: &runtimes::RuntimeService, exec_root: &std::path::Path) -> Result<Arc<berth_network::Networks>> {
    let snap = runtimes.snapshot();
    let c = &snap.config.network;
    let default_bridge = c.bridge.as_ref().map(|name| berth_network::DefaultBridge {
        interface: name.clone(),
        bip: c.bip.and_then(|(a, p)| ipnet_v4(a, p)),
    });
    let pools = if c.default_address_pools.is_empty() {
        berth_network::ipam::default_pools()
    } else {
        c.default_address_pools
            .iter()
            .filter_map(|(a, p, size)| ipnet_v4(*a, *p).map(|base| berth_network::ipam::AddressPool { base: base.trunc(), size: *size }))
            .collect()
    };
    let settings = berth_network::Settings {
        data_dir: snap.config.data_root.join("network"),
        run_dir: exec_root.join("network"),
        default_bridge,
        pools,
        default_bind_ip: c.ip,
        netavark: berth_network::netavark::DEFAULT_NETAVARK.into(),
        aardvark: berth_network::netavark::DEFAULT_AARDVARK.into(),
    };
    let nets = tokio::task::spawn_blocking(move || berth_network::Networks::open(settings))
        .await
        .map_err(|e| EngineError::Internal(format!("network start-up task failed: {e}")))?
        .map_err(|e| EngineError::Internal(format!("starting the network subsystem: {e}")))?;
    Ok(Arc::new(nets))
}

fn ipnet_v4(a: std::net::Ipv4Addr, prefix: u8) -> Option<berth_network::ipam::Ipv4Net> {
    berth_network::ipam::Ipv4Net::new(a, prefix).ok()
}
