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
//!
//! [`Engine`] bundles the services; its only operations are the ones that
//! span services (a reload emits an event; the wrapper GC that follows
//! learns the containers' pinned wrappers from the source set in
//! [`Engine::start`]).

pub mod binds;
pub mod containers;
pub mod ctd;
pub mod env;
pub mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod metrics;
pub mod monitor;
pub mod reference;
pub mod runtimes;
pub mod signal;
pub mod spec;
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
    pub metrics: Arc<metrics::Metrics>,
}

impl Engine {
    /// Wires the services over a containerd namespace and the record store,
    /// and starts the event loop.
    pub async fn start(
        runtimes: Arc<runtimes::RuntimeService>,
        client: berth_containerd::Client,
        store: berth_store::Store,
        exec_root: PathBuf,
    ) -> Result<Engine> {
        let ctd = ctd::Ctd::new(client).await?;
        let events = Arc::new(events::EventBus::new());
        let metrics = Arc::new(metrics::Metrics::new());
        let images = Arc::new(images::ImageService::new(ctd.images.clone(), events.clone()));
        let containers = Arc::new(containers::ContainerService::new(store, ctd, images.clone(), runtimes.clone(), events.clone(), metrics.clone(), exec_root));
        containers.set_self();
        let pins = Arc::downgrade(&containers);
        runtimes.set_pinned_source(Arc::new(move || pins.upgrade().map(|c| c.pinned_wrappers())));
        let execs = Arc::new(exec::ExecService::new(containers.clone()));
        containers.restore().await;
        tokio::spawn(monitor::run(containers.clone(), execs.clone()));
        Ok(Engine { runtimes, containers, images, execs, events, metrics })
    }

    /// The metrics in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let snap = self.runtimes.snapshot();
        let wrappers = std::fs::read_dir(snap.config.wrapper_dir())
            .map(|d| d.flatten().filter(|e| berth_config::wrapper::is_wrapper_name(&e.file_name().to_string_lossy())).count())
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

    /// The runtime inventory with the number of running containers per runtime.
    pub fn inventory(&self) -> runtimes::Inventory {
        let mut inv = self.runtimes.inventory();
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
            let snap = self.runtimes.snapshot();
            let mut attrs = std::collections::BTreeMap::new();
            attrs.insert("generation".to_string(), report.generation.to_string());
            attrs.insert("default-runtime".to_string(), report.default_runtime.new.clone());
            attrs.insert("runtimes".to_string(), snap.runtimes.runtimes.keys().cloned().collect::<Vec<_>>().join(" "));
            for (k, v) in [("added", &report.added), ("removed", &report.removed)] {
                attrs.insert(k.to_string(), v.join(" "));
            }
            attrs.insert("changed".to_string(), report.changed.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(" "));
            self.events.publish(events::Event::new("daemon", "reload", "berth", attrs));
        }
        Ok(report)
    }
}
