//! `berth daemon`: load the configuration, listen, serve, reload on SIGHUP,
//! stop on SIGTERM/SIGINT.

use std::sync::Arc;

use berth_api::{AppState, DaemonInfo};
use berth_config::ConfigStore;
use berth_containerd::{Client, ManagedConfig, ManagedContainerd};
use berth_engine::runtimes::{ReloadPhase, RuntimeService};
use berth_engine::Engine;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::DaemonArgs;
use crate::logging::LogHandle;
use crate::notify::notify;

/// Runs the daemon until SIGTERM/SIGINT. Returns the process exit code.
pub async fn run(args: DaemonArgs, log: LogHandle) -> i32 {
    let flags = args.config.to_flags();
    let store = match tokio::task::spawn_blocking(move || ConfigStore::open(flags)).await {
        Ok(Ok(s)) => Arc::new(s),
        Ok(Err(e)) => {
            eprintln!("berth: the configuration is invalid, not starting:\n{}", crate::render_problems(&e));
            return 1;
        }
        Err(e) => {
            eprintln!("berth: loading the configuration failed: {e}");
            return 1;
        }
    };
    let snap = store.snapshot();
    log.apply(&snap.config);
    for dir in [&snap.config.data_root, &snap.config.exec_root] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("berth: cannot create {}: {e}", dir.display());
            return 1;
        }
    }
    for rt in snap.runtimes.runtimes.values().filter(|r| !r.available()) {
        tracing::warn!(runtime = %rt.name, reason = rt.status.unavailable.as_ref().map(|u| u.message()).unwrap_or(""), "runtime unavailable");
    }
    let cfg = snap.config.clone();
    let (records, report) = match berth_store::Store::open(&cfg.data_root) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("berth: cannot open the container store under {}: {e}", cfg.data_root.display());
            return 1;
        }
    };
    for c in &report.corrupt {
        tracing::error!(record = ?c, "a container record was corrupt and was moved aside");
    }
    tracing::info!(containers = report.loaded, "container records loaded");

    // containerd: berth's own, unless --containerd names one.
    let (managed, socket) = match &cfg.containerd {
        Some(sock) => (None, sock.clone()),
        None => {
            let mut mc = ManagedConfig::new(cfg.data_root.join("containerd"), cfg.exec_root.join("containerd"));
            mc.log_level = if cfg.debug { "debug".into() } else { "info".into() };
            match ManagedContainerd::start(mc).await {
                Ok(m) => {
                    let sock = m.socket().to_path_buf();
                    (Some(m), sock)
                }
                Err(e) => {
                    eprintln!("berth: cannot start containerd: {e}");
                    return 1;
                }
            }
        }
    };
    let client = match Client::connect(&socket, "berth").await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: cannot connect to containerd at {}: {e}", socket.display());
            return 1;
        }
    };
    let containerd_version = client.version().await.map(|v| v.version).unwrap_or_default();
    let runtimes = Arc::new(RuntimeService::new(store.clone()));
    // Every reload, whoever asks for it (SIGHUP, the API, `berth reload`),
    // tells the supervisor and re-applies the log level.
    let log = Arc::new(log);
    let (obs_log, obs_store) = (log.clone(), store.clone());
    runtimes.set_reload_observer(Arc::new(move |phase| match phase {
        ReloadPhase::Started => notify(&crate::notify::reloading_message()),
        ReloadPhase::Finished { applied } => {
            let snap = obs_store.snapshot();
            if applied.is_some() {
                obs_log.apply(&snap.config);
            }
            notify(&format!("READY=1\nSTATUS=configuration generation {}", snap.generation));
        }
    }));
    let engine = match Engine::start(runtimes.clone(), client, records, cfg.exec_root.clone()).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("berth: cannot start the engine: {e}");
            return 1;
        }
    };
    // Wrapper GC runs once the records are loaded, keeping every wrapper a
    // container pins, even if the configuration changed while berth was down.
    let removed = runtimes.collect_now().await;
    if removed > 0 {
        tracing::info!(removed, "removed unreferenced wrappers at start-up");
    }
    let daemon = Arc::new(DaemonInfo {
        id: daemon_id(&cfg.data_root),
        name: hostname(),
        data_root: cfg.data_root.clone(),
        started: std::time::SystemTime::now(),
        containerd_version,
        containerd_managed: managed.is_some(),
        snapshotter: engine.images.store().snapshotter().to_string(),
    });
    let state = AppState { engine: engine.clone(), daemon };
    if let Some(m) = &managed {
        let mut rx = m.subscribe_restarts();
        let metrics = engine.metrics.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let n = *rx.borrow();
                metrics.containerd_restart_count.store(n, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(restarts = n, "managed containerd was restarted; reconnected");
            }
        });
    }
    if let Some(addr) = cfg.metrics_addr {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("berth: cannot serve metrics on {addr}: {e}; change metrics-addr or free the port");
                return 1;
            }
        };
        let eng = engine.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let eng = eng.clone();
                async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], eng.render_metrics()) }
            }),
        );
        tracing::info!(%addr, "metrics listening");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    let mut listeners = Vec::new();
    for host in &snap.config.hosts {
        let bound = if host == "fd://" { berth_api::listen::systemd_listeners() } else { berth_api::listen::bind(host).await.map(|x| vec![x]) };
        match bound {
            Ok(v) => listeners.extend(v.into_iter().map(|x| (host == "fd://", x))),
            Err(e) => {
                eprintln!("berth: {e}");
                return 1;
            }
        }
    }
    for (activated, (path, listener)) in listeners {
        tracing::info!(socket = %path.display(), "API listening");
        if !activated {
            sockets.push(path);
        }
        let svc = berth_api::router(state.clone());
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, tower::make::Shared::new(svc)).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "API server failed");
            }
        }));
    }

    let (mut hup, mut term, mut int) = match (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => {
            eprintln!("berth: cannot install signal handlers");
            return 1;
        }
    };
    notify("READY=1");
    tracing::info!(generation = snap.generation, default_runtime = %snap.runtimes.default, runtimes = snap.runtimes.runtimes.len(), "berth daemon ready");
    drop(snap);

    loop {
        tokio::select! {
            _ = hup.recv() => {
                match engine.reload(false).await {
                    Ok(report) => tracing::info!(generation = report.generation, "reload on SIGHUP applied"),
                    Err(e) => tracing::error!("reload on SIGHUP refused; the previous configuration stays live: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    notify("STOPPING=1");
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s).await;
    }
    for path in sockets {
        let _ = std::fs::remove_file(&path);
    }
    engine.containers.begin_shutdown();
    if !cfg.live_restore {
        for rec in engine.containers.list().into_iter().filter(|r| r.state.running) {
            if let Err(e) = engine.containers.stop(&rec.id, None).await {
                tracing::warn!(container = %rec.id, error = %e, "stopping container at shutdown failed");
            }
        }
    }
    if let Some(m) = managed {
        if let Err(e) = m.shutdown().await {
            tracing::warn!(error = %e, "stopping containerd failed");
        }
    }
    tracing::info!("berth daemon stopped");
    0
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A stable id for this data root, kept in `<data-root>/engine-id`.
fn daemon_id(data_root: &std::path::Path) -> String {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return id.trim().to_string();
    }
    let id = berth_store::generate_id();
    let _ = std::fs::write(&path, &id);
    id
}
