//! `berth daemon`: load the configuration, listen, serve, reload on SIGHUP,
//! stop on SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::AppState;
use berth_config::ConfigStore;
use berth_engine::runtimes::RuntimeService;
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
    // Containers are not restored yet; once they are, GC runs after restore
    // with every wrapper their records pin.
    let pinned_wrappers: Arc<dyn Fn() -> Vec<PathBuf> + Send + Sync> = Arc::new(Vec::new);
    match store.gc_wrappers(pinned_wrappers()) {
        Ok(r) if !r.removed.is_empty() => tracing::info!(removed = r.removed.len(), "removed unreferenced wrappers at start-up"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "wrapper garbage collection failed"),
    }

    let runtimes = Arc::new(RuntimeService::new(store.clone()));
    let state = AppState { runtimes: runtimes.clone(), pinned_wrappers: pinned_wrappers.clone() };
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for host in &snap.config.hosts {
        let (path, listener) = match berth_api::listen::bind(host).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("berth: {e}");
                return 1;
            }
        };
        tracing::info!(socket = %path.display(), "API listening");
        sockets.push(path);
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
                notify("RELOADING=1");
                match runtimes.reload(false, pinned_wrappers()).await {
                    Ok(report) => {
                        log.apply(&runtimes.snapshot().config);
                        tracing::info!(generation = report.generation, "reload on SIGHUP applied");
                    }
                    Err(e) => tracing::error!("reload on SIGHUP refused; the previous configuration stays live: {e}"),
                }
                notify("READY=1");
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
    tracing::info!("berth daemon stopped");
    0
}
