//! `berth daemon`: load the configuration, listen, serve, reload on SIGHUP,
//! stop on SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::listen::ListenError;
use berth_api::{AppState, DaemonInfo};
use berth_config::ConfigStore;
use berth_containerd::{Client, ManagedConfig, ManagedContainerd};
use berth_engine::cgroups::Cgroups;
use berth_engine::runtimes::{ReloadPhase, RuntimeService};
use berth_engine::Engine;
use tokio::net::UnixListener;
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
    // Listeners first (as dockerd does): a socket in use or a wrong fd://
    // descriptor stops berth before it starts containerd, and systemd's
    // descriptors are close-on-exec before any child process is spawned.
    // Clients that connect now wait in the backlog until the API serves.
    // The socket files are removed when berth stops serving, or if it fails to start.
    let (listeners, socket_files) = match open_listeners(&snap.config.hosts).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    let metrics_listener = match snap.config.metrics_addr {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some((addr, l)),
            Err(e) => {
                eprintln!("berth: cannot serve metrics on {addr}: {e}; change metrics-addr or free the port");
                return 1;
            }
        },
        None => None,
    };
    for rt in snap.runtimes.runtimes.values().filter(|r| !r.available()) {
        tracing::warn!(runtime = %rt.name, reason = rt.status.unavailable.as_ref().map(|u| u.message()).unwrap_or(""), "runtime unavailable");
    }
    let cfg = snap.config.clone();
    // The cgroup layout and driver, found once (the systemd driver needs systemd).
    let setting = cfg.exec_opts.cgroup_driver;
    let cgroups = match tokio::task::spawn_blocking(move || Cgroups::detect(setting)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("berth: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!("berth: detecting the cgroups failed: {e}");
            return 1;
        }
    };
    tracing::info!(layout = %cgroups.layout(), driver = %cgroups.driver(), "cgroups");
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
    let engine = match Engine::start(runtimes.clone(), client, records, cfg.exec_root.clone(), cgroups).await {
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut servers = Vec::new();
    if let Some((addr, listener)) = metrics_listener {
        let eng = engine.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let eng = eng.clone();
                async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], eng.render_metrics().await) }
            }),
        );
        tracing::info!(%addr, "metrics listening");
        servers.push(tokio::spawn(berth_api::serve::serve(listener, app, berth_api::serve::Limits::metrics(), stopped(stop_rx.clone()))));
    }

    // One connection cap for all API sockets together.
    let limits = berth_api::serve::Limits::api();
    tracing::debug!(max_connections = limits.max_connections(), "API connection cap");
    for (path, listener) in listeners {
        tracing::info!(socket = %path.display(), "API listening");
        let svc = berth_api::router(state.clone());
        servers.push(tokio::spawn(berth_api::serve::serve(listener, svc, limits.clone(), stopped(stop_rx.clone()))));
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
    drop(socket_files);
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

/// Binds every `-H` host (each once); `fd://` takes systemd's sockets.
/// Also returns the socket files berth created (not systemd's), so that a
/// failure here or later removes them.
async fn open_listeners(hosts: &[String]) -> Result<(Vec<(PathBuf, UnixListener)>, SocketFiles), ListenError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut files = SocketFiles(Vec::new());
    for host in hosts.iter().filter(|h| seen.insert(h.as_str())) {
        if host == "fd://" {
            out.extend(berth_api::listen::systemd_listeners()?);
        } else {
            let (path, listener) = berth_api::listen::bind(host).await?;
            files.0.push(path.clone());
            out.push((path, listener));
        }
    }
    Ok((out, files))
}

/// The unix socket files berth created; removed on drop.
struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
