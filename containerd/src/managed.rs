//! A containerd child process owned by berth: its own config, root, state and
//! socket, started, health-checked, restarted with back-off when it dies, and
//! stopped on request.
//!
//! * The child runs in its own process group, so a terminal SIGINT meant for
//!   berth does not reach it; berth decides when it stops.
//! * `NOTIFY_SOCKET` is removed from its environment so it cannot tell
//!   berth's service manager that *it* is ready.
//! * Shims are separate processes: they (and the containers) survive a
//!   containerd crash or restart.
//! * Dropping a [`ManagedContainerd`] without [`ManagedContainerd::shutdown`]
//!   kills the child (so a forgetful test does not leak it).
//! * A pid file in the state dir lets a new instance stop a containerd left
//!   behind by a crashed berth before it starts its own.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::{Error, Result};

/// Longest Unix socket path (sun_path is 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// Directories added to the child's PATH when missing, so the shim finds runc.
const STANDARD_PATH: &[&str] = &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// How to run the managed containerd.
#[derive(Debug, Clone)]
pub struct ManagedConfig {
    /// containerd's persistent root (content, snapshots, metadata).
    pub root: PathBuf,
    /// containerd's state dir (shim bundles, sockets); usually under exec-root.
    pub state: PathBuf,
    /// The gRPC socket path (the ttrpc socket is `<socket>.ttrpc`).
    pub socket: PathBuf,
    /// The containerd binary; `None` = `containerd` found on PATH.
    pub containerd_binary: Option<PathBuf>,
    /// File receiving containerd's stdout and stderr (appended).
    pub log_file: PathBuf,
    /// Where the generated config is written.
    pub config_file: PathBuf,
    /// containerd's log level (`info`, `debug`, …).
    pub log_level: String,
    /// How long to wait for the first gRPC answer.
    pub start_timeout: Duration,
    /// How long to wait after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// Fail start-up when `runc` is not on PATH (the default runtime).
    pub require_runc: bool,
    /// Longest pause between restart attempts.
    pub max_backoff: Duration,
    /// Have the kernel SIGKILL containerd when the thread that spawned it
    /// dies (`PR_SET_PDEATHSIG`), so a crashed berth or test never leaves it
    /// behind (shims and containers survive regardless). Spawn from a
    /// long-lived thread (a tokio worker or the `block_on` thread, never
    /// `spawn_blocking`): the signal fires when that *thread* exits.
    pub kill_with_parent: bool,
}

impl ManagedConfig {
    /// Defaults: socket `<state>/containerd.sock`, config
    /// `<state>/containerd.toml`, log `<root>/containerd.log`, 20 s start
    /// timeout, 10 s stop timeout, runc required.
    pub fn new(root: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let state = state.into();
        ManagedConfig {
            socket: state.join("containerd.sock"),
            config_file: state.join("containerd.toml"),
            log_file: root.join("containerd.log"),
            root,
            state,
            containerd_binary: None,
            log_level: "info".into(),
            start_timeout: Duration::from_secs(20),
            stop_timeout: Duration::from_secs(10),
            require_runc: true,
            max_backoff: Duration::from_secs(30),
            kill_with_parent: true,
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.state.join("containerd.pid")
    }
}

/// Finds an executable named `name` on `$PATH` (then in the standard dirs).
pub fn find_executable(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_var).chain(STANDARD_PATH.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Some(candidate);
            }
        }
    }
    None
}

/// Escapes a string as a TOML basic string (with quotes).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders containerd's config (version 2) for this instance. Everything that
/// would otherwise default to a system-wide location is pointed into berth's
/// dirs; CRI, the debug socket and metrics are off.
pub fn render_config(cfg: &ManagedConfig) -> String {
    let s = |p: &Path| toml_string(&p.to_string_lossy());
    let ttrpc = PathBuf::from(format!("{}.ttrpc", cfg.socket.display()));
    format!(
        "# Generated by berth; do not edit (rewritten at every start).\n\
         version = 2\n\
         root = {root}\n\
         state = {state}\n\
         oom_score = 0\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\"]\n\
         \n\
         [grpc]\n  address = {grpc}\n  uid = 0\n  gid = 0\n\
         \n\
         [ttrpc]\n  address = {ttrpc}\n  uid = 0\n  gid = 0\n\
         \n\
         [debug]\n  address = \"\"\n  level = {level}\n\
         \n\
         [metrics]\n  address = \"\"\n\
         \n\
         [plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = {opt}\n",
        root = s(&cfg.root),
        state = s(&cfg.state),
        grpc = s(&cfg.socket),
        ttrpc = s(&ttrpc),
        level = toml_string(&cfg.log_level),
        opt = s(&cfg.root.join("opt")),
    )
}

/// State shared between the handle and the supervisor task.
#[derive(Debug)]
struct Shared {
    pid: AtomicU32,
    restarts: AtomicU64,
    stopping: AtomicBool,
    ready_tx: watch::Sender<u64>,
}

/// A running, supervised containerd.
#[derive(Debug)]
pub struct ManagedContainerd {
    config: Arc<ManagedConfig>,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    supervisor: Option<JoinHandle<()>>,
}

impl ManagedContainerd {
    /// Checks prerequisites, writes the config, starts containerd, waits until
    /// it answers gRPC, and starts supervising it.
    pub async fn start(config: ManagedConfig) -> Result<Self> {
        let binary = match &config.containerd_binary {
            Some(b) if b.is_file() => b.clone(),
            Some(_) => return Err(Error::ContainerdNotInstalled),
            None => find_executable("containerd").ok_or(Error::ContainerdNotInstalled)?,
        };
        if config.require_runc && find_executable("runc").is_none() {
            return Err(Error::RuncNotInstalled);
        }
        if config.socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::InvalidArgument(format!(
                "containerd socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                config.socket.display()
            )));
        }
        for dir in [&config.root, &config.state] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        for file in [&config.socket, &config.log_file, &config.config_file] {
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
            }
        }
        std::fs::write(&config.config_file, render_config(&config))
            .map_err(|e| Error::io(format!("writing {}", config.config_file.display()), e))?;

        stop_stale_instance(&config).await;
        let _ = std::fs::remove_file(&config.socket);

        let config = Arc::new(ManagedConfig { containerd_binary: Some(binary), ..config });
        let mut child = spawn_child(&config)?;
        if let Err(e) = wait_ready(&config, &mut child).await {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(e);
        }
        let pid = child.id().unwrap_or(0);
        write_pid_file(&config, pid);
        tracing::info!(pid, socket = %config.socket.display(), "managed containerd is ready");

        let (ready_tx, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            pid: AtomicU32::new(pid),
            restarts: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            ready_tx,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(config.clone(), shared.clone(), child, stop_rx));
        Ok(ManagedContainerd { config, shared, stop_tx, supervisor: Some(supervisor) })
    }

    /// The gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.config.socket
    }

    /// The configuration in use (with the resolved binary).
    pub fn config(&self) -> &ManagedConfig {
        &self.config
    }

    /// Pid of the current containerd process (0 while restarting).
    pub fn pid(&self) -> u32 {
        self.shared.pid.load(Ordering::SeqCst)
    }

    /// How many times the supervisor restarted containerd.
    pub fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::SeqCst)
    }

    /// A receiver whose value is the restart count, updated each time a
    /// restarted containerd is ready again: await `changed()` to reconnect or
    /// re-subscribe to events.
    pub fn subscribe_restarts(&self) -> watch::Receiver<u64> {
        self.shared.ready_tx.subscribe()
    }

    /// Connects a client in `namespace` to this containerd.
    pub async fn client(&self, namespace: &str) -> Result<Client> {
        Client::connect(&self.config.socket, namespace).await
    }

    /// Stops containerd: SIGTERM, then SIGKILL after the stop timeout.
    /// Shims and their containers keep running.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        if let Some(handle) = self.supervisor.take() {
            handle.await.map_err(|e| Error::Cancelled(format!("containerd supervisor task failed: {e}")))?;
        }
        let _ = std::fs::remove_file(self.config.pid_file());
        Ok(())
    }
}

impl Drop for ManagedContainerd {
    fn drop(&mut self) {
        if let Some(handle) = self.supervisor.take() {
            self.shared.stopping.store(true, Ordering::SeqCst);
            let pid = self.shared.pid.load(Ordering::SeqCst);
            if pid != 0 {
                tracing::warn!(pid, "ManagedContainerd dropped without shutdown(); killing containerd");
                // SAFETY: plain kill(2) on a pid we spawned.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            handle.abort();
            let _ = std::fs::remove_file(self.config.pid_file());
        }
    }
}

fn spawn_child(config: &ManagedConfig) -> Result<Child> {
    let binary = config.containerd_binary.as_ref().expect("resolved in start");
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log_file)
            .map_err(|e| Error::io(format!("opening {}", config.log_file.display()), e))
    };
    let (out, err) = (open_log()?, open_log()?);
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(&config.config_file)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("PATH", child_path(binary))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .process_group(0)
        .kill_on_drop(true);
    if config.kill_with_parent {
        // SAFETY: only async-signal-safe calls (prctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn().map_err(|e| Error::io(format!("spawning {}", binary.display()), e))?;
    tracing::debug!(pid = child.id(), binary = %binary.display(), "spawned containerd");
    Ok(child)
}

/// PATH for the child: ours, plus containerd's own dir and the standard dirs.
fn child_path(binary: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    let extra = binary.parent().map(Path::to_path_buf).into_iter().chain(STANDARD_PATH.iter().map(PathBuf::from));
    for dir in extra {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Polls `Version` until it answers, the child exits, or the timeout passes.
async fn wait_ready(config: &ManagedConfig, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + config.start_timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io("waiting for containerd", e))? {
            return Err(Error::StartExited {
                status: status.to_string(),
                log: config.log_file.clone(),
                log_tail: log_tail(&config.log_file, 20),
            });
        }
        if config.socket.exists() {
            let probe = async {
                let client = Client::connect(&config.socket, "default").await?;
                client.version().await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::StartTimeout {
                timeout_secs: config.start_timeout.as_secs(),
                log: config.log_file.clone(),
                log_tail: log_tail(&config.log_file, 20),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else { return String::from("(no log)") };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = file.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn write_pid_file(config: &ManagedConfig, pid: u32) {
    if let Err(e) = std::fs::write(config.pid_file(), format!("{pid}\n")) {
        tracing::warn!(error = %e, "cannot write containerd pid file");
    }
}

/// True when `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

/// Stops a containerd left behind by a previous berth (same config file).
async fn stop_stale_instance(config: &ManagedConfig) {
    let Ok(text) = std::fs::read_to_string(config.pid_file()) else { return };
    let Ok(pid) = text.trim().parse::<u32>() else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let needle = config.config_file.as_os_str().as_encoded_bytes();
    if pid == 0 || !process_alive(pid) || !cmdline.windows(needle.len()).any(|w| w == needle) {
        return;
    }
    tracing::warn!(pid, "stopping a containerd left behind by a previous run");
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + config.stop_timeout;
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if process_alive(pid) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        while process_alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// SIGTERM, wait up to `timeout`, then SIGKILL; reaps the child.
async fn stop_child(child: &mut Child, timeout: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => tracing::info!(pid, ?status, "containerd stopped"),
            Err(_) => {
                tracing::warn!(pid, "containerd ignored SIGTERM; sending SIGKILL");
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// The supervisor: waits for the child, restarts it with exponential
/// back-off, stops it when asked.
async fn supervise(config: Arc<ManagedConfig>, shared: Arc<Shared>, mut child: Child, mut stop_rx: watch::Receiver<bool>) {
    let mut attempt: u32 = 0;
    let mut started = Instant::now();
    loop {
        tokio::select! {
            status = child.wait() => {
                shared.pid.store(0, Ordering::SeqCst);
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    attempt = 0;
                }
                tracing::warn!(?status, log_tail = %log_tail(&config.log_file, 5), "managed containerd exited unexpectedly");
                // Restart loop with back-off.
                loop {
                    let delay = backoff(attempt, config.max_backoff);
                    attempt = attempt.saturating_add(1);
                    tracing::info!(attempt, delay_ms = delay.as_millis() as u64, "restarting containerd");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop_rx.changed() => return,
                    }
                    let _ = std::fs::remove_file(&config.socket);
                    let mut next = match spawn_child(&config) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot respawn containerd");
                            continue;
                        }
                    };
                    match wait_ready(&config, &mut next).await {
                        Ok(()) => {
                            let pid = next.id().unwrap_or(0);
                            shared.pid.store(pid, Ordering::SeqCst);
                            write_pid_file(&config, pid);
                            let n = shared.restarts.fetch_add(1, Ordering::SeqCst) + 1;
                            tracing::warn!(pid, restarts = n, "containerd restarted and ready");
                            shared.ready_tx.send_replace(n);
                            child = next;
                            started = Instant::now();
                            break;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "restarted containerd did not become ready");
                            let _ = next.start_kill();
                            let _ = next.wait().await;
                        }
                    }
                    if shared.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
            _ = stop_rx.changed() => {
                stop_child(&mut child, config.stop_timeout).await;
                shared.pid.store(0, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// 250 ms × 2^attempt, capped.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_points_everything_into_our_dirs() {
        let cfg = ManagedConfig::new("/var/lib/berth/containerd", "/run/berth/containerd");
        let toml = render_config(&cfg);
        assert!(toml.contains("version = 2"));
        assert!(toml.contains("root = \"/var/lib/berth/containerd\""));
        assert!(toml.contains("address = \"/run/berth/containerd/containerd.sock\""));
        assert!(toml.contains("address = \"/run/berth/containerd/containerd.sock.ttrpc\""));
        assert!(toml.contains("\"io.containerd.grpc.v1.cri\""));
        assert!(toml.contains("path = \"/var/lib/berth/containerd/opt\""));
        assert!(!toml.contains("/run/containerd/"));
    }

    #[test]
    fn toml_escaping() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("a\nb"), "\"a\\u000Ab\"");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(0, max), Duration::from_millis(250));
        assert_eq!(backoff(2, max), Duration::from_secs(1));
        assert_eq!(backoff(40, max), max);
    }
}
