//! Start, stop, kill, pause, restart, remove, and what happens when a
//! container's process exits.
//!
//! Every operation here holds the container's lifecycle lock (a stop
//! releases it for its grace period, see [`ContainerService::stop`]). Exits
//! arrive from containerd's event stream ([`ContainerService::on_exit`]):
//! the raw exit is published to the hub at once (what a waiting `stop`
//! watches), then recorded under the lock by [`finalize`](ContainerService::finalize),
//! which is idempotent: whoever holds the lock first records the exit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_containerd::{FifoSet, NewContainer, Rootfs};
use berth_store::{ContainerRecord, ContainerStatus, PinnedRuntime};

use super::hub::{Hub, RawExit, Run};
use super::{io, validate, ContainerService};
use crate::user;
use crate::ctd::shim_runtime;
use crate::error::{EngineError, Result};
use crate::spec::{self, EtcFiles, ImageDefaults};

/// How long `stop` waits for the exit after SIGKILL before asking containerd.
const KILL_GRACE: Duration = Duration::from_secs(10);

fn now() -> String {
    berth_store::timefmt::now_rfc3339_nano()
}

/// Parses a signal: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(s: &str) -> Result<u32> {
    crate::signal::parse(s).map(|n| n as u32).ok_or_else(|| EngineError::InvalidParameter(format!("Invalid signal: {s}")))
}

fn not_running(id: &str) -> EngineError {
    EngineError::Conflict(format!("Container {id} is not running"))
}

/// How long `kill` with SIGKILL waits for the exit (dockerd: 10 s).
pub const KILL_WAIT: Duration = Duration::from_secs(10);

impl ContainerService {
    /// Starts a container. 304 (`NotModified`) if it is running.
    pub async fn start(&self, key: &str) -> Result<()> {
        let id = self.get(key)?.id.clone();
        let _lock = self.store.lock(&id).await;
        let rec = self.get(&id)?;
        if rec.state.running {
            return Err(EngineError::NotModified);
        }
        let began = std::time::Instant::now();
        // One snapshot for the whole operation: the runtime resolved, the
        // metrics label and the binary named in errors all come from it.
        let snap = self.runtimes.snapshot();
        let runtime_label = if rec.host_config.runtime.is_empty() { snap.runtimes.default.clone() } else { rec.host_config.runtime.clone() };
        match self.start_locked(&rec, &snap).await {
            Ok(()) => {
                self.metrics.start_ok(&runtime_label, began.elapsed().as_secs_f64());
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    EngineError::UnknownRuntime(_) => "unknown-runtime",
                    EngineError::Start { exit_code: 127, .. } => "not-found",
                    EngineError::Start { exit_code: 126, .. } => "not-executable",
                    EngineError::Start { .. } => "runtime-error",
                    EngineError::InvalidParameter(_) => "invalid",
                    _ => "other",
                };
                self.metrics.start_failed(&runtime_label, reason);
                // Name the real binary, never only a wrapper path.
                let e = match e {
                    EngineError::Start { message, exit_code } => {
                        let binary = snap
                            .runtimes
                            .runtimes
                            .get(&runtime_label)
                            .and_then(|r| r.binary.as_ref().map(|b| b.display().to_string()));
                        let message = match binary {
                            Some(b) if !message.contains(&b) => format!("{message} (runtime {runtime_label}, binary {b})"),
                            _ => message,
                        };
                        EngineError::Start { message, exit_code }
                    }
                    other => other,
                };
                let code = match &e {
                    EngineError::Start { exit_code, .. } => *exit_code as i64,
                    _ => 128,
                };
                let msg = e.to_string();
                tracing::warn!(container = %rec.id, runtime = %rec.host_config.runtime, error = %msg, "container start failed");
                // A shareable /dev/shm mounted for this start.
                self.release_shm(&rec.id).await;
                let _ = self
                    .update(&rec.id, move |r| {
                        r.state.exit_code = code;
                        r.state.error = msg;
                    })
                    .await;
                if rec.host_config.auto_remove {
                    let _ = self.remove_locked(&rec.id).await;
                }
                Err(e)
            }
        }
    }

    async fn start_locked(&self, rec: &ContainerRecord, snap: &std::sync::Arc<berth_config::Snapshot>) -> Result<()> {
        let id = rec.id.as_str();
        // The Resolved holds the operation's snapshot (and so keeps its
        // wrapper alive) until the resolution is pinned below.
        let runtime_name = if rec.host_config.runtime.is_empty() { snap.runtimes.default.clone() } else { rec.host_config.runtime.clone() };
        let resolved = crate::runtimes::resolve(snap, &runtime_name).await?;
        self.ensure_wrapper(id, &resolved).await?;
        // A reload since create may have changed what the runtime can do.
        let mode = self.networks.runtime_mode(&rec.host_config.network_mode, &rec.networking.endpoints);
        resolved.check_network_mode(&mode).map_err(EngineError::InvalidParameter)?;
        let h = &rec.host_config;
        resolved.check_namespace_modes(&h.pid_mode, &h.ipc_mode, &h.uts_mode).map_err(EngineError::InvalidParameter)?;
        if let Some(prev) = &rec.pinned_runtime {
            let now_binary = resolved.binary.as_ref().map(|b| b.display().to_string());
            if prev.binary != now_binary || prev.args != resolved.args || prev.shim != resolved.shim {
                tracing::info!(container = %id, runtime = %runtime_name, old_generation = prev.generation, new_generation = resolved.generation(),
                    "runtime definition changed since the last start; using the new one");
            }
        }

        let confine = self.confinement(&rec.host_config, snap).await?;
        if confine.custom_seccomp {
            resolved.check_custom_seccomp().map_err(EngineError::InvalidParameter)?;
        }
        let image = self.images.resolve(&rec.image_id).await?;
        // The network first (a namespace set up by netavark, or another
        // container's); a start that fails after this undoes it.
        let joined = self.joined_network(rec)?;
        let plan = self.networks.plan(rec, joined).await?;
        let started = self.start_with_network(rec, snap, resolved, runtime_name, confine, image, &plan).await;
        if started.is_err() {
            self.networks.detach(id).await;
        }
        started
    }

    /// For `--network container:X`: X's init pid and its `/etc` files' directory.
    fn joined_network(&self, rec: &ContainerRecord) -> Result<Option<(u32, std::path::PathBuf)>> {
        let Some(other) = rec.host_config.network_mode.strip_prefix("container:") else { return Ok(None) };
        let o = self.store.resolve(other).map_err(|_| EngineError::NotFound(format!("No such container: {other}")))?;
        if o.id == rec.id {
            return Err(EngineError::InvalidParameter("cannot join own network".into()));
        }
        if !o.state.running || o.state.pid == 0 {
            return Err(EngineError::Conflict(format!("cannot join network of a non running container: {}", o.id)));
        }
        Ok(Some((o.state.pid, self.store.container_dir(&o.id))))
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_with_network(
        &self,
        rec: &ContainerRecord,
        snap: &std::sync::Arc<berth_config::Snapshot>,
        resolved: berth_config::Resolved,
        runtime_name: String,
        confine: crate::confine::Confinement,
        image: crate::images::ResolvedImage,
        plan: &crate::networks::Plan,
    ) -> Result<()> {
        let id = rec.id.as_str();
        let etc = self
            .write_etc_files(rec, plan)
            .await
            .map_err(|e| EngineError::Internal(format!("writing /etc files for container {id}: {e}")))?;
        let netns = plan.netns();
        // The user is resolved against the container's own /etc/passwd and
        // /etc/group once its filesystem's mounts are known (below); the
        // spec is built first so that bad input fails before anything runs.
        let cgroups_path = self.cgroups.spec_path(self.ctd.client.namespace(), id);
        self.check_realtime(rec).await?;
        let joins = self.joins(rec, snap).await?;
        let spec = spec::build(&spec::SpecInput {
            id,
            cgroups_path: &cgroups_path,
            config: &rec.config,
            host: &rec.host_config,
            image: &ImageDefaults::default(),
            etc: Some(&etc),
            netns: netns.as_deref(),
            confine: &confine,
            joins: &joins,
        });
        let spec = match spec {
            Ok(s) => s,
            Err(e) => {
                self.release_shm(id).await;
                return Err(e.into());
            }
        };
        let runtime = shim_runtime(&resolved, self.cgroups.driver());
        // Reading the container's /etc files blocks: off the async threads.
        let set_user = |mounts: Vec<berth_containerd::Mount>, mut spec: oci_spec::runtime::Spec| {
            let (user, groups) = (rec.config.user.clone(), rec.host_config.group_add.clone());
            async move {
                let u = tokio::task::spawn_blocking(move || user::resolve_in_rootfs(&user, &groups, &mounts))
                    .await
                    .map_err(|e| EngineError::Internal(format!("resolving the container's user: {e}")))?
                    .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
                spec::set_user(&mut spec, &u).map_err(EngineError::from)?;
                Ok::<_, EngineError>(spec)
            }
        };

        // containerd container: reuse the one of an earlier run (it holds the
        // container's filesystem) with this run's spec and runtime.
        let mounts = match self.ctd.containers.get(id).await {
            Ok(_) => {
                let _ = self.ctd.tasks.delete(id).await;
                let mounts = self.ctd.containers.rootfs_mounts(id).await?;
                let spec = set_user(mounts.clone(), spec).await?;
                self.ctd.containers.update(id, &spec, &runtime).await?;
                mounts
            }
            Err(e) if e.is_not_found() => {
                let new = NewContainer {
                    id: id.to_string(),
                    image: image.name.clone(),
                    spec,
                    runtime,
                    labels: Default::default(),
                    rootfs: Rootfs::Snapshot { snapshotter: self.ctd.images.snapshotter().to_string(), parent: image.chain_id.clone().unwrap_or_default() },
                };
                self.ctd.containers.create_with(new, set_user).await?
            }
            Err(e) => return Err(e.into()),
        };

        let tty = rec.config.tty;
        let fifo_dir = self.fifo_root.join(id);
        let fifos = FifoSet::create(&fifo_dir, rec.config.open_stdin, true, !tty)?;
        let mut open = fifos.open()?;
        let hub = self.hub(id);
        hub.set_exited(None);
        let created = self.ctd.tasks.create(id, &fifos.task_io(tty), mounts).await;
        open.release();
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                let _ = fifos.remove();
                self.release_shm(id).await;
                return Err(e.into());
            }
        };
        let log = self.open_log(&hub, rec)?;
        let io = io::spawn_output(id, hub.clone(), log, open.stdout.take(), open.stderr.take());
        if let Some(tx) = open.stdin.take() {
            io::spawn_stdin(id, hub.take_stdin(), tx, rec.config.stdin_once, self.ctd.tasks.clone());
        }
        if let Err(e) = self.ctd.tasks.start(id).await {
            let _ = self.ctd.tasks.delete(id).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), io).await;
            let _ = fifos.remove();
            hub.reset_stdin();
            self.release_shm(id).await;
            return Err(e.into());
        }
        hub.set_run(Run { pid, io: Some(io), fifos });
        {
            let mut r = hub.restart.lock().unwrap_or_else(|e| e.into_inner());
            r.manually_stopped = false;
            r.started = Some(std::time::Instant::now());
        }

        let pinned = PinnedRuntime {
            name: runtime_name.clone(),
            generation: resolved.generation(),
            shim: resolved.shim.clone(),
            binary: resolved.binary.as_ref().map(|b| b.display().to_string()),
            args: resolved.args.clone(),
            wrapper: resolved.wrapper.as_ref().map(|w| w.path.display().to_string()),
            wrapper_digest: resolved.wrapper.as_ref().map(|w| w.digest.clone()),
            options: serde_json::to_value(&resolved.options).unwrap_or_default(),
        };
        let name = runtime_name.clone();
        let updated = self
            .update(id, move |r| {
                r.host_config.runtime = name;
                r.state.status = ContainerStatus::Running;
                r.state.running = true;
                r.state.paused = false;
                r.state.pid = pid;
                r.state.exit_code = 0;
                r.state.error = String::new();
                r.state.started_at = now();
                r.state.manually_stopped = false;
                r.pinned_runtime = Some(pinned);
            })
            .await?;
        drop(resolved); // pinned in the record now
        tracing::info!(container = %id, runtime = %runtime_name, pid, generation = snap.generation, "container started");
        self.event("start", &updated, &[]);
        self.start_health(&updated, true);
        Ok(())
    }

    /// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for a
    /// container into its directory (off the async threads), or names
    /// those of the container whose network it joins.
    async fn write_etc_files(&self, rec: &ContainerRecord, plan: &crate::networks::Plan) -> std::io::Result<EtcFiles> {
        if let crate::networks::Plan::Joined { etc_dir, .. } = plan {
            return Ok(EtcFiles { hostname: etc_dir.join("hostname"), hosts: etc_dir.join("hosts"), resolv_conf: etc_dir.join("resolv.conf") });
        }
        let dir = self.store.container_dir(&rec.id);
        let host = spec::hostname(&rec.config, &rec.id);
        let (hosts, resolv) = self.networks.etc_contents(rec, plan, &host).map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || {
            let files = EtcFiles { hostname: dir.join("hostname"), hosts: dir.join("hosts"), resolv_conf: dir.join("resolv.conf") };
            std::fs::write(&files.hostname, format!("{host}\n"))?;
            std::fs::write(&files.hosts, hosts)?;
            std::fs::write(&files.resolv_conf, resolv)?;
            Ok(files)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Re-attaches to containers that kept running while berth was down
    /// (live-restore): output copying resumes from the same FIFOs (the
    /// shim kept them open, so nothing beyond what the pipe buffered is
    /// lost) and exits are picked up by the event loop's reconciliation.
    pub async fn restore(&self) {
        self.reconcile_orphans().await;
        for rec in self.list().into_iter().filter(|r| r.state.running) {
            let id = rec.id.as_str();
            match self.ctd.tasks.get(id, "").await {
                Ok(st) if matches!(st.status, berth_containerd::TaskStatus::Running | berth_containerd::TaskStatus::Paused) => {
                    if let Err(e) = self.reattach(&rec, st.pid) {
                        tracing::warn!(container = %id, error = %e, "cannot re-attach to the container's output; its log stops here");
                    } else {
                        tracing::info!(container = %id, pid = st.pid, runtime = %rec.host_config.runtime, "re-attached to running container");
                    }
                }
                Ok(_) => {} // exited while we were away: the event loop records it
                Err(e) if e.is_not_found() => tracing::warn!(container = %id, "record says running but containerd has no task; recording its exit"),
                Err(e) => tracing::warn!(container = %id, error = %e, "cannot check the task"),
            }
        }
        // Networks: those of running containers are kept (their exits tear
        // them down as usual); every other one is undone.
        let running: std::collections::HashSet<String> = self.list().iter().filter(|r| r.state.running).map(|r| r.id.clone()).collect();
        let nets = self.networks.nets.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || nets.reconcile(&running)).await {
            tracing::error!(error = %e, "reconciling networks failed");
        }
        // As dockerd does at start: containers that are not running are
        // started again when their restart policy says so (`always`;
        // `unless-stopped` unless a user stopped it; `on-failure` after a
        // failure, within its retry count).
        let Some(me) = self.me() else { return };
        for rec in self.list().into_iter().filter(|r| !r.state.running && restart_at_start(r)) {
            let (svc, id) = (me.clone(), rec.id.clone());
            tracing::info!(container = %id, policy = %rec.host_config.restart_policy.name, runtime = %rec.host_config.runtime,
                "starting container at berth start (restart policy)");
            tokio::spawn(async move {
                if let Err(e) = svc.start(&id).await {
                    tracing::error!(container = %id, error = %e, "starting the container at berth start failed");
                    let msg = e.to_string();
                    let _ = svc.update(&id, move |r| r.state.error = msg).await;
                }
            });
        }
    }

    /// Signals berth is shutting down: stops from now on are not the user's,
    /// and restart policies restart nothing.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reconciles containerd with the records after a crash: containerd
    /// containers without a record are deleted; a task left running for a
    /// record that is not running (berth died between starting it and
    /// recording it) is killed; FIFO dirs of stopped containers are removed.
    /// Each is logged.
    async fn reconcile_orphans(&self) {
        let known: std::collections::HashSet<String> = self.list().iter().map(|r| r.id.clone()).collect();
        match self.ctd.containers.list(vec![]).await {
            Ok(all) => {
                for c in all.into_iter().filter(|c| !known.contains(&c.id)) {
                    if let Some(h) = self.store.held_back().iter().find(|h| h.id == c.id) {
                        // Its record exists but could not be read: the
                        // container and its writable layer are the data an
                        // operator recovers it with. Keep them.
                        tracing::error!(container = %c.id, record = %h.record.display(), reason = %h.reason,
                            "the record of this containerd container could not be loaded; keeping the container and its filesystem (running or not) for an operator");
                        continue;
                    }
                    tracing::warn!(container = %c.id, "containerd container without a record (berth stopped mid-operation); deleting it");
                    let _ = self.ctd.tasks.kill(&c.id, 9, true).await;
                    for _ in 0..50 {
                        match self.ctd.tasks.delete(&c.id).await {
                            Ok(_) => break,
                            Err(e) if e.is_not_found() => break,
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                    if let Err(e) = self.ctd.containers.delete(&c.id).await {
                        tracing::warn!(container = %c.id, error = %e, "deleting the orphan failed");
                    }
                    let _ = std::fs::remove_dir_all(self.fifo_root.join(&c.id));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list containerd containers to reconcile orphans"),
        }
        for rec in self.list().into_iter().filter(|r| !r.state.running) {
            if let Ok(st) = self.ctd.tasks.get(&rec.id, "").await {
                tracing::warn!(container = %rec.id, status = ?st.status, "task of a container recorded as not running (berth stopped mid-start); killing it");
                let _ = self.ctd.tasks.kill(&rec.id, 9, true).await;
                for _ in 0..50 {
                    match self.ctd.tasks.delete(&rec.id).await {
                        Ok(_) => break,
                        Err(e) if e.is_not_found() => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            let dir = self.fifo_root.join(&rec.id);
            if dir.exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }

    fn reattach(&self, rec: &ContainerRecord, pid: u32) -> Result<()> {
        let dir = self.fifo_root.join(&rec.id);
        let existing = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        let fifos = FifoSet { stdin: existing("stdin"), stdout: existing("stdout"), stderr: existing("stderr"), dir: dir.clone() };
        let mut open = fifos.open()?;
        open.release();
        let hub = self.hub(&rec.id);
        let log = self.open_log(&hub, rec)?;
        let io = io::spawn_output(&rec.id, hub.clone(), log, open.stdout.take(), open.stderr.take());
        if let Some(tx) = open.stdin.take() {
            io::spawn_stdin(&rec.id, hub.take_stdin(), tx, rec.config.stdin_once, self.ctd.tasks.clone());
        }
        hub.set_run(Run { pid, io: Some(io), fifos });
        if !rec.state.paused {
            self.start_health(rec, true);
        }
        Ok(())
    }

    /// The container's log writer (shared by its runs), or `None` when its
    /// log driver keeps no log.
    fn open_log(&self, hub: &Hub, rec: &ContainerRecord) -> Result<Option<Arc<berth_store::logfile::LogWriter>>> {
        let Some(rotation) = super::logconfig::rotation(&super::logconfig::settings(rec)) else { return Ok(None) };
        let id = &rec.id;
        hub.log(&self.store.log_path(id), rotation).map(Some).map_err(|e| EngineError::Internal(format!("opening the log of {id}: {e}")))
    }

    /// Called by the event loop when a container's init process exits.
    pub fn on_exit(self: &Arc<Self>, id: &str, pid: u32, code: u32) {
        self.hub(id).set_exited(Some(RawExit { pid, code }));
        let svc = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let _lock = svc.store.lock(&id).await;
            if let Err(e) = svc.finalize(&id, pid, code).await {
                tracing::error!(container = %id, error = %e, "recording the exit failed");
            }
        });
    }

    /// Records an exit (caller holds the lock). Idempotent: a second call
    /// for the same run does nothing.
    pub(crate) async fn finalize(&self, id: &str, pid: u32, code: u32) -> Result<()> {
        let Some(rec) = self.store.get(id) else { return Ok(()) };
        if !rec.state.running || (pid != 0 && rec.state.pid != pid) {
            return Ok(());
        }
        let hub = self.hub(id);
        hub.health.stop();
        match self.ctd.tasks.delete(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "deleting the task failed"),
        }
        self.networks.detach(id).await;
        if let Some(mut run) = hub.take_run() {
            if let Some(io) = run.io.take() {
                if tokio::time::timeout(Duration::from_secs(10), io).await.is_err() {
                    tracing::warn!(container = %id, "output still open 10 s after exit; closing the attached streams");
                    hub.end_output();
                }
            }
            let _ = run.fifos.remove();
        }
        hub.reset_stdin();
        self.release_shm(id).await;
        let code = code as i64;
        let manual = hub.restart.lock().unwrap_or_else(|e| e.into_inner()).manually_stopped;
        let updated = self
            .update(id, move |r| {
                r.state.manually_stopped = manual;
                r.state.status = ContainerStatus::Exited;
                r.state.running = false;
                r.state.paused = false;
                r.state.pid = 0;
                r.state.exit_code = code;
                r.state.finished_at = now();
            })
            .await?;
        hub.record_exit(code);
        tracing::info!(container = %id, runtime = %updated.host_config.runtime, exit_code = code, "container exited");
        self.event("die", &updated, &[("exitCode", code.to_string())]);
        if updated.host_config.auto_remove {
            self.remove_locked(id).await?;
        } else if let Some(delay) = self.restart_delay(&updated, &hub) {
            // Restarting from the moment the exit is recorded (still under
            // the caller's lock): a `docker rm` that waited for the lock
            // must see it, as under dockerd.
            self.update(id, |r| r.state.status = ContainerStatus::Restarting).await?;
            self.schedule_restart(id, delay);
        }
        Ok(())
    }

    /// Whether the restart policy restarts this exit, and after what delay
    /// (Docker's back-off: 100 ms doubling up to 1 min, reset after a run
    /// of 10 s or more).
    fn restart_delay(&self, rec: &ContainerRecord, hub: &super::hub::Hub) -> Option<Duration> {
        if self.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let mut r = hub.restart.lock().unwrap_or_else(|e| e.into_inner());
        if !policy_restarts(rec, r.manually_stopped, false) {
            r.delay = Duration::ZERO;
            return None;
        }
        let ran_long = r.started.is_some_and(|s| s.elapsed() >= Duration::from_secs(10));
        r.delay = if ran_long || r.delay.is_zero() { Duration::from_millis(100) } else { (r.delay * 2).min(Duration::from_secs(60)) };
        Some(r.delay)
    }

    fn schedule_restart(&self, id: &str, delay: Duration) {
        let Some(svc) = self.me() else { return };
        let id = id.to_string();
        tracing::info!(container = %id, delay_ms = delay.as_millis() as u64, "restarting container (restart policy)");
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _lock = svc.store.lock(&id).await;
            let Some(rec) = svc.store.get(&id) else { return };
            let stopped = svc.hub(&id).restart.lock().unwrap_or_else(|e| e.into_inner()).manually_stopped;
            if rec.state.running || rec.state.status != ContainerStatus::Restarting || stopped {
                return; // started, stopped or removed by someone meanwhile
            }
            let _ = svc.update(&id, |r| r.state.restart_count += 1).await;
            let rec = match svc.store.get(&id) {
                Some(r) => r,
                None => return,
            };
            let snap = svc.runtimes.snapshot();
            if let Err(e) = svc.start_locked(&rec, &snap).await {
                let msg = e.to_string();
                tracing::error!(container = %id, runtime = %rec.host_config.runtime, error = %msg,
                    "restart failed; not retrying until the container is started again");
                let code = match &e {
                    EngineError::Start { exit_code, .. } => *exit_code as i64,
                    _ => 128,
                };
                let _ = svc
                    .update(&id, move |r| {
                        r.state.status = ContainerStatus::Exited;
                        r.state.exit_code = code;
                        r.state.error = msg;
                    })
                    .await;
            }
        });
    }

    /// Waits (up to `timeout`) for the raw exit of run `pid`.
    async fn wait_exited(&self, id: &str, pid: u32, timeout: Duration) -> Option<u32> {
        let mut rx = self.hub(id).watch_exited();
        let res = tokio::time::timeout(timeout, rx.wait_for(|e| matches!(e, Some(x) if x.pid == pid || pid == 0))).await;
        match res {
            Ok(Ok(v)) => v.map(|x| x.code),
            _ => None,
        }
    }

    /// Kills a running container's process and records its exit; the caller
    /// holds the lock. Used by stop (after the grace period) and forced rm.
    async fn kill_and_finalize(&self, rec: &ContainerRecord) -> Result<()> {
        let id = rec.id.as_str();
        let pid = rec.state.pid;
        if let Err(e) = self.ctd.tasks.kill(id, 9, true).await {
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
        self.event("kill", rec, &[("signal", "9".to_string())]);
        let code = match self.wait_exited(id, pid, KILL_GRACE).await {
            Some(c) => c,
            None => match self.ctd.tasks.get(id, "").await {
                Ok(st) => st.exit_status,
                Err(_) => 137,
            },
        };
        self.finalize(id, pid, code).await
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds (default: the container's stop timeout, else 10). The lock
    /// is held to send the signal and to record the exit, not during the
    /// grace period: a `kill` or `rm -f` meanwhile acts at once, and the
    /// stop then returns as the container exits (as under dockerd).
    pub async fn stop(&self, key: &str, timeout: Option<i64>) -> Result<()> {
        let id = self.get(key)?.id.clone();
        let (pid, grace) = {
            let _lock = self.store.lock(&id).await;
            let rec = self.get(&id)?;
            if !rec.state.running {
                if rec.state.status == ContainerStatus::Restarting {
                    // Stopping a container waiting for its restart cancels it.
                    self.hub(&id).restart.lock().unwrap_or_else(|e| e.into_inner()).manually_stopped = true;
                    self.update(&id, |r| r.state.status = ContainerStatus::Exited).await?;
                    return Ok(());
                }
                return Err(EngineError::NotModified);
            }
            let signal = match rec.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s).unwrap_or(15),
                None => 15,
            };
            let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
            if rec.state.paused {
                let _ = self.ctd.tasks.resume(&id).await;
            }
            // A stop by berth's own shutdown is not the user's: restart policies
            // apply again when berth starts.
            if !self.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                self.hub(&id).restart.lock().unwrap_or_else(|e| e.into_inner()).manually_stopped = true;
            }
            tracing::info!(container = %id, signal, timeout = secs, "stopping container");
            match self.ctd.tasks.kill(&id, signal, false).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            self.event("kill", &rec, &[("signal", signal.to_string())]);
            (rec.state.pid, Duration::from_secs(secs.max(0) as u64))
        };
        let exited = self.wait_exited(&id, pid, grace).await;
        let _lock = self.store.lock(&id).await;
        let Some(rec) = self.store.get(&id) else {
            return Ok(()); // removed meanwhile (rm -f)
        };
        if rec.state.running && rec.state.pid == pid {
            match exited {
                Some(code) => self.finalize(&id, pid, code).await?,
                None => {
                    tracing::info!(container = %id, "container did not stop in time; sending SIGKILL");
                    self.kill_and_finalize(&rec).await?
                }
            }
        }
        if let Some(r) = self.store.get(&id) {
            self.event("stop", &r, &[]);
        }
        Ok(())
    }

    /// Sends a signal to a running container; with SIGKILL, returns once
    /// it has exited (or [`KILL_WAIT`] passed).
    pub async fn kill(&self, key: &str, signal: &str) -> Result<()> {
        let sig = if signal.is_empty() { 9 } else { parse_signal(signal)? };
        let id = self.get(key)?.id.clone();
        let pid = {
            let _lock = self.store.lock(&id).await;
            let rec = self.get(&id)?;
            if !rec.state.running {
                return Err(EngineError::Conflict(format!("Cannot kill container: {key}: Container {id} is not running")));
            }
            if matches!(sig, 9 | 15) {
                self.hub(&id).restart.lock().unwrap_or_else(|e| e.into_inner()).manually_stopped = true;
            }
            self.ctd.tasks.kill(&id, sig, false).await?;
            if sig == 9 && rec.state.paused {
                // A frozen process dies only once thawed (dockerd does this too).
                let _ = self.ctd.tasks.resume(&id).await;
            }
            self.event("kill", &rec, &[("signal", sig.to_string())]);
            rec.state.pid
        };
        if sig != 9 {
            return Ok(());
        }
        // As dockerd: a SIGKILL is answered once the container has exited
        // and its exit is recorded, so an inspect right after sees it.
        let Some(code) = self.wait_exited(&id, pid, KILL_WAIT).await else {
            tracing::warn!(container = %id, "container still running {} s after SIGKILL", KILL_WAIT.as_secs());
            return Ok(());
        };
        let _lock = self.store.lock(&id).await;
        if let Some(rec) = self.store.get(&id) {
            if rec.state.running && rec.state.pid == pid {
                self.finalize(&id, pid, code).await?;
            }
        }
        Ok(())
    }

    /// Restarts: stop (if running), then start.
    pub async fn restart(&self, key: &str, timeout: Option<i64>) -> Result<()> {
        match self.stop(key, timeout).await {
            Ok(()) | Err(EngineError::NotModified) => {}
            Err(e) => return Err(e),
        }
        self.start(key).await?;
        if let Ok(r) = self.get(key) {
            self.event("restart", &r, &[]);
        }
        Ok(())
    }

    /// Pauses or resumes a running container.
    pub async fn set_paused(&self, key: &str, pause: bool) -> Result<()> {
        let id = self.get(key)?.id.clone();
        let _lock = self.store.lock(&id).await;
        let rec = self.get(&id)?;
        if !rec.state.running {
            return Err(not_running(&id));
        }
        match (pause, rec.state.paused) {
            (true, true) => return Err(EngineError::Conflict(format!("Container {id} is already paused"))),
            (false, false) => return Err(EngineError::Conflict(format!("Container {id} is not paused"))),
            _ => {}
        }
        if pause {
            // As dockerd: no probes while paused. Stopped before freezing,
            // so no new probe exec races the freeze; restarted if the
            // pause fails.
            let hub = self.hub(&id);
            hub.health.stop();
            hub.health.idle(crate::health::probe_deadline(rec.config.healthcheck.as_ref())).await;
            if let Err(e) = self.ctd.tasks.pause(&id).await {
                self.start_health(&rec, false);
                return Err(e.into());
            }
        } else {
            self.ctd.tasks.resume(&id).await?;
        }
        let updated = self
            .update(&id, move |r| {
                r.state.paused = pause;
                r.state.status = if pause { ContainerStatus::Paused } else { ContainerStatus::Running };
            })
            .await?;
        self.event(if pause { "pause" } else { "unpause" }, &updated, &[]);
        // Unpause starts a new monitor (the status is kept).
        if !pause {
            self.start_health(&updated, false);
        }
        Ok(())
    }

    /// Removes a container; a running one only with `force` (it is killed).
    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        let id = self.get(key)?.id.clone();
        let _lock = self.store.lock(&id).await;
        let rec = self.get(&id)?;
        if rec.state.running {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                )));
            }
            self.kill_and_finalize(&rec).await?;
        } else if rec.state.status == ContainerStatus::Restarting && !force {
            // Between two runs of its restart policy (dockerd's message).
            return Err(EngineError::Conflict(format!(
                "You cannot remove a restarting container {id}. Stop the container before attempting removal or force remove"
            )));
        }
        if self.store.get(&id).is_some() {
            self.remove_locked(&id).await?;
        }
        Ok(())
    }

    /// Deletes everything of a stopped container; the caller holds the lock.
    pub(crate) async fn remove_locked(&self, id: &str) -> Result<()> {
        let Some(rec) = self.store.get(id) else { return Ok(()) };
        match self.ctd.tasks.delete(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "deleting the task failed"),
        }
        self.ctd.containers.delete(id).await?;
        self.release_shm(id).await;
        // A snapshot made for `docker cp` before a first start that never came.
        if let Err(e) = self.ctd.containers.remove_prestart(id, self.ctd.images.snapshotter()).await {
            tracing::warn!(container = %id, error = %e, "removing the snapshot prepared before the first start failed");
        }
        let hub = self.hub(id);
        hub.close_log();
        let _ = std::fs::remove_dir_all(self.fifo_root.join(id));
        let store = self.store.clone();
        let rid = id.to_string();
        tokio::task::spawn_blocking(move || store.remove(&rid))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        hub.mark_removed();
        self.drop_hub(id);
        let (cgroups, ns, cid) = (self.cgroups.clone(), self.ctd.client.namespace().to_string(), id.to_string());
        let _ = tokio::task::spawn_blocking(move || cgroups.remove_empty(&ns, &cid)).await;
        tracing::info!(container = %id, "container removed");
        self.event("destroy", &rec, &[]);
        Ok(())
    }
}

impl ContainerService {
    /// What a starting container joins: the namespaces of the containers its
    /// PID and IPC modes name (running, with dockerd's messages), its
    /// `/dev/shm` (a tmpfs berth mounts for a shareable container, the
    /// donor's for `container:X`, the host's for `host`), and the init.
    async fn joins(&self, rec: &ContainerRecord, snap: &berth_config::Snapshot) -> Result<spec::Joins> {
        let h = &rec.host_config;
        let mut joins = spec::Joins { init: super::init_binary(h, snap).await?, ..Default::default() };
        if let Some(other) = validate::joined_container(&h.pid_mode) {
            let donor = self
                .get(other)
                .map_err(|e| EngineError::InvalidParameter(format!("cannot join PID of a non running container: {other}: {e}")))?;
            let pid = self.running_pid(&donor, "")?;
            joins.pid_ns = Some(PathBuf::from(format!("/proc/{pid}/ns/pid")));
        }
        if let Some(other) = validate::joined_container(&h.ipc_mode) {
            let donor = self.get(other).map_err(|e| EngineError::InvalidParameter(format!("can't join IPC of container {other}: {e}")))?;
            let msg = format!("can't join IPC of container {}", donor.id);
            let pid = self.running_pid(&donor, &msg)?;
            let shm = self.store.container_dir(&donor.id).join("shm");
            let mounted = tokio::fs::metadata(&shm).await.is_ok_and(|m| m.is_dir());
            if donor.host_config.ipc_mode != "shareable" || !mounted {
                return Err(EngineError::InvalidParameter(format!(
                    "{msg}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                )));
            }
            joins.ipc_ns = Some(PathBuf::from(format!("/proc/{pid}/ns/ipc")));
            joins.shm = Some(shm);
        }
        let user_shm = h.tmpfs.keys().chain(h.binds.iter()).any(|m| m == "/dev/shm" || m.split(':').nth(1) == Some("/dev/shm"))
            || h.mounts.iter().any(|m| validate::clean_path(&m.target) == "/dev/shm");
        match h.ipc_mode.as_str() {
            "host" => joins.shm = Some(PathBuf::from("/dev/shm")),
            "shareable" if !user_shm => {
                let dir = self.store.container_dir(&rec.id).join("shm");
                let size = h.shm_size;
                tokio::task::spawn_blocking({
                    let dir = dir.clone();
                    move || mount_shm(&dir, size)
                })
                .await
                .map_err(|e| EngineError::Internal(format!("shm mount task failed: {e}")))?
                .map_err(|e| EngineError::Internal(format!("mounting the shareable /dev/shm of container {}: {e}", rec.id)))?;
                joins.shm = Some(dir);
            }
            // The container's own /dev/shm mount replaces the default one
            // (so this is never mounted); it has nothing to share.
            "shareable" => joins.shm = Some(PathBuf::from("/dev/shm")),
            _ => {}
        }
        Ok(joins)
    }

    /// A real-time CPU runtime needs the parent cgroup to have that much to
    /// hand out (v1 `cpu.rt_runtime_us`); berth, like dockerd without its
    /// `cpu-rt-runtime` option, gives its cgroup none, so the runtime would
    /// fail with a bare "invalid argument". Says why instead.
    async fn check_realtime(&self, rec: &ContainerRecord) -> Result<()> {
        let want = rec.host_config.cpu_realtime_runtime;
        if want <= 0 {
            return Ok(());
        }
        let Some(cpu) = self.cgroups.hierarchy().v1_mount("cpu").map(|m| m.to_path_buf()) else { return Ok(()) };
        let rel = self.cgroups.relative_dir(self.ctd.client.namespace(), &rec.id);
        let parent = cpu.join(rel.parent().unwrap_or(std::path::Path::new("")));
        let file = parent.join("cpu.rt_runtime_us");
        let have = tokio::task::spawn_blocking({
            let file = file.clone();
            move || std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0)
        })
        .await
        .unwrap_or(0);
        if have < want {
            return Err(EngineError::InvalidParameter(format!(
                "CpuRealtimeRuntime {want}: the daemon's cgroup has {have} µs of real-time CPU time to hand out ({}); berth has no cpu-rt-runtime option to give it some yet",
                file.display()
            )));
        }
        Ok(())
    }

    /// The pid of a running (not restarting) container, for joining its
    /// namespaces; `context` prefixes the error (dockerd's wording).
    fn running_pid(&self, rec: &ContainerRecord, context: &str) -> Result<u32> {
        let prefix = if context.is_empty() { String::new() } else { format!("{context}: ") };
        if !rec.state.running || rec.state.pid == 0 {
            return Err(EngineError::Conflict(format!("{prefix}container {} is not running", rec.id)));
        }
        if rec.state.status == ContainerStatus::Restarting {
            return Err(EngineError::Conflict(format!("{prefix}container {} is restarting, wait until the container is running", rec.id)));
        }
        Ok(rec.state.pid)
    }

    /// Unmounts a shareable container's `/dev/shm` (after it exited, or on
    /// remove); nothing when it has none.
    pub(crate) async fn release_shm(&self, id: &str) {
        let dir = self.store.container_dir(id).join("shm");
        let _ = tokio::task::spawn_blocking(move || unmount_shm(&dir)).await;
    }
}

/// Mounts a tmpfs of `size` bytes for a shareable container's `/dev/shm`
/// at `dir` (as dockerd: `nosuid,nodev,noexec`, mode 1777), replacing one
/// left from a run berth did not see end.
fn mount_shm(dir: &std::path::Path, size: i64) -> std::io::Result<()> {
    unmount_shm(dir);
    std::fs::create_dir_all(dir)?;
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
    let (src, target, fstype) = (c("shm")?, c(&dir.display().to_string())?, c("tmpfs")?);
    let data = c(&format!("mode=1777,size={size}"))?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches and removes a shm directory made by [`mount_shm`] (no error
/// when there is none: most containers have none).
fn unmount_shm(dir: &std::path::Path) {
    if !dir.exists() {
        return;
    }
    if let Ok(target) = std::ffi::CString::new(dir.display().to_string()) {
        // SAFETY: a NUL-terminated path; EINVAL (not a mount) is fine.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_dir(dir);
}

/// Whether a container's restart policy restarts it after its last exit
/// (dockerd's restart manager). `always` ignores a user's stop only when
/// berth starts.
fn policy_restarts(r: &ContainerRecord, manually_stopped: bool, at_berth_start: bool) -> bool {
    let p = &r.host_config.restart_policy;
    match p.name.as_str() {
        "always" => at_berth_start || !manually_stopped,
        "unless-stopped" => !manually_stopped,
        "on-failure" => {
            !manually_stopped
                && r.state.exit_code != 0
                && (p.maximum_retry_count <= 0 || (r.state.restart_count as i64) < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// Whether a stopped container is started when berth starts.
fn restart_at_start(r: &ContainerRecord) -> bool {
    let never_ran = r.state.started_at == berth_store::timefmt::ZERO_TIME;
    !never_ran && !r.host_config.auto_remove && policy_restarts(r, r.state.manually_stopped, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGHUP").unwrap(), 1);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("INT").unwrap(), 2);
        assert_eq!(parse_signal("nope").unwrap_err().to_string(), "Invalid signal: nope");
        assert!(parse_signal("0").is_err());
    }
}

