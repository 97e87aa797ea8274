//! Exec: extra processes in running containers (`docker exec`). Execs live
//! in memory only, like dockerd's; their exit codes are recorded before
//! their output stream ends, so `docker exec` reads the right code. An
//! exited exec stays inspectable for a while, then is collected
//! ([`table`] says when), so execs do not grow the daemon's memory.

pub mod table;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use berth_containerd::FifoSet;
use bytes::Bytes;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use crate::containers::hub::Chunk;
use crate::containers::ContainerService;
use crate::user;
use crate::error::{EngineError, Result};
use crate::spec;

/// What `POST /containers/{id}/exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    /// The client's detach keys, as given (checked by the API).
    pub detach_keys: String,
}

/// An exec as `GET /exec/{id}/json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExecInfo {
    pub id: String,
    pub container_id: String,
    pub config: ExecInfoConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecInfoConfig {
    pub cmd: Vec<String>,
    pub tty: bool,
    pub user: String,
    pub privileged: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
}

struct Entry {
    container_id: String,
    /// The request, without its environment (taken at start: an exited
    /// exec keeps only what inspect shows).
    config: ExecConfig,
    env: Mutex<Vec<String>>,
    /// The process id once started.
    pid: AtomicU32,
    exit: watch::Sender<Option<i64>>,
    /// Set once containerd's start call for the process has returned. A
    /// process may exit (and its exit event arrive) before that: containerd
    /// reads the process's state after starting it, so the process must
    /// not be deleted until then.
    launched: watch::Sender<bool>,
}

/// The streams of a started exec.
pub struct ExecStreams {
    /// Output for the client; ends when the process's output ends.
    pub output: mpsc::Receiver<Chunk>,
    /// The process's stdin, if attached.
    pub stdin: Option<pipe::Sender>,
    /// Resolves to the exit code once it is recorded.
    pub exit: watch::Receiver<Option<i64>>,
}

pub struct ExecService {
    containers: Arc<ContainerService>,
    execs: Mutex<table::Table<Arc<Entry>>>,
}

impl ExecService {
    pub fn new(containers: Arc<ContainerService>) -> Self {
        ExecService { containers, execs: Mutex::new(table::Table::default()) }
    }

    fn table(&self) -> MutexGuard<'_, table::Table<Arc<Entry>>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        self.lookup(id).map(|(e, _)| e)
    }

    fn lookup(&self, id: &str) -> Result<(Arc<Entry>, table::Phase)> {
        self.table().get(id).ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// The ids of a container's execs that have not exited (`ExecIDs`).
    pub fn ids_of(&self, container_id: &str) -> Vec<String> {
        self.table().live_of(container_id)
    }

    /// How many execs the daemon holds (created, running and exited).
    pub fn count(&self) -> usize {
        self.table().len()
    }

    fn running_container(&self, key: &str) -> Result<Arc<berth_store::ContainerRecord>> {
        let rec = self.containers.get(key)?;
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        if rec.state.paused {
            return Err(EngineError::Conflict(format!("Container {} is paused, unpause the container before exec", rec.id)));
        }
        Ok(rec)
    }

    /// Registers an exec; returns its id.
    pub fn create(&self, container: &str, config: ExecConfig) -> Result<String> {
        let rec = self.running_container(container)?;
        if config.cmd.is_empty() {
            return Err(EngineError::InvalidParameter("No exec command specified".into()));
        }
        user::validate(&config.user).map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        let id = berth_store::generate_id();
        let mut config = config;
        let env = Mutex::new(std::mem::take(&mut config.env));
        let entry = Entry { container_id: rec.id.clone(), config, env, pid: AtomicU32::new(0), exit: watch::channel(None).0, launched: watch::channel(false).0 };
        self.table().insert(id.clone(), &rec.id, Arc::new(entry));
        self.containers.event("exec_create", &rec, &[("execID", id.clone())]);
        Ok(id)
    }

    /// The errors [`start`](Self::start) would answer before doing
    /// anything (no such exec, container not running or paused, already
    /// started), without changing anything: a client that asked for the
    /// stream gets these as HTTP errors, then the process starts once its
    /// connection is upgraded.
    pub fn check_startable(&self, id: &str) -> Result<()> {
        let (entry, phase) = self.lookup(id)?;
        self.running_container(&entry.container_id)?;
        if phase != table::Phase::Created {
            return Err(EngineError::Conflict(format!("exec {id} has already been started")));
        }
        Ok(())
    }

    /// Starts an exec.
    pub async fn start(&self, id: &str) -> Result<ExecStreams> {
        let entry = self.entry(id)?;
        let rec = self.running_container(&entry.container_id)?;
        if !self.table().start(id) {
            return Err(EngineError::Conflict(format!("exec {id} has already been started")));
        }
        match self.start_checked(id, &entry, &rec).await {
            Ok(streams) => Ok(streams),
            Err(e) => {
                // As under dockerd, an exec that could not start has exit
                // code 126 (what `docker exec` then exits with). A failure
                // can only follow a real exit in a race containerd loses;
                // that exit code stands.
                entry.launched.send_replace(true);
                if entry.exit.borrow().is_some() {
                    tracing::warn!(container = %rec.id, exec = %id, error = %e, "exec start failed after its process had exited");
                    return Err(e);
                }
                self.record_exit(id, &entry, 126);
                tracing::warn!(container = %rec.id, exec = %id, error = %e, "exec could not start");
                Err(e)
            }
        }
    }

    async fn start_checked(&self, id: &str, entry: &Arc<Entry>, rec: &berth_store::ContainerRecord) -> Result<ExecStreams> {
        let c = &entry.config;
        // Names resolve in the running container's own /etc/passwd and /etc/group.
        let who = if c.user.is_empty() { &rec.config.user } else { &c.user };
        let (who, pid, groups) = (who.clone(), rec.state.pid, rec.host_config.group_add.clone());
        let user = tokio::task::spawn_blocking(move || user::resolve_in_process(&who, &groups, pid))
            .await
            .map_err(|e| EngineError::Internal(format!("user lookup task failed: {e}")))?
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        let env = std::mem::take(&mut *entry.env.lock().unwrap_or_else(|e| e.into_inner()));
        let caps = crate::confine::exec_caps(&rec.host_config, c.privileged, &self.containers.host_facts)
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        let nnp = crate::confine::exec_no_new_privileges(&rec.host_config, &self.containers.runtimes.snapshot().config);
        let privileges = spec::Privileges { caps, no_new_privileges: nnp };
        let process = spec::exec_process(&rec.config, c.cmd.clone(), &env, &user, &c.working_dir, c.tty, privileges)?;
        let fifos = FifoSet::create(self.containers.fifo_root.join(&rec.id).join(format!("exec-{id}")), c.attach_stdin, true, !c.tty)?;
        let mut open = fifos.open()?;
        let tasks = &self.containers.ctd.tasks;
        let res = async {
            tasks.exec(&rec.id, id, &process, &fifos.task_io(c.tty)).await?;
            tasks.start_process(&rec.id, id).await
        }
        .await;
        entry.launched.send_replace(true);
        open.release();
        let pid = match res {
            Ok(pid) => pid,
            Err(e) => {
                let _ = tasks.delete_process(&rec.id, id).await;
                let _ = fifos.remove();
                return Err(e.into());
            }
        };
        entry.pid.store(pid, Ordering::Relaxed);
        self.containers.event("exec_start", rec, &[("execID", id.to_string())]);

        let (tx, rx) = mpsc::channel(64);
        for (pipe, is_err) in [(open.stdout.take(), false), (open.stderr.take(), true)] {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let d = Bytes::copy_from_slice(&buf[..n]);
                    let chunk = if is_err { Chunk::Stderr(d) } else { Chunk::Stdout(d) };
                    if tx.send(chunk).await.is_err() {
                        // Client gone: keep draining so the process never blocks.
                        continue;
                    }
                }
            });
        }
        drop(tx);
        // Remove the FIFOs once the exit is recorded.
        let mut exit = entry.exit.subscribe();
        tokio::spawn(async move {
            let _ = exit.wait_for(|e| e.is_some()).await;
            let _ = fifos.remove();
        });
        Ok(ExecStreams { output: rx, stdin: open.stdin.take(), exit: entry.exit.subscribe() })
    }

    /// Called by the event loop when an exec's process exits.
    pub fn on_exit(&self, id: &str, code: u32) {
        let Ok(entry) = self.entry(id) else { return };
        self.record_exit(id, &entry, code as i64);
        let tasks = self.containers.ctd.tasks.clone();
        let (cid, eid) = (entry.container_id.clone(), id.to_string());
        let mut launched = entry.launched.subscribe();
        tokio::spawn(async move {
            // Not while containerd is still answering the start (a fast
            // process exits first): deleting it then fails that start.
            let _ = tokio::time::timeout(Duration::from_secs(60), launched.wait_for(|l| *l)).await;
            let _ = tasks.delete_process(&cid, &eid).await;
        });
        if let Ok(rec) = self.containers.get(&entry.container_id) {
            self.containers.event("exec_die", &rec, &[("execID", id.to_string()), ("exitCode", code.to_string())]);
        }
    }

    /// Records an exit code; under the table's lock, so inspect sees the
    /// phase and the code change together.
    fn record_exit(&self, id: &str, entry: &Entry, code: i64) {
        let mut table = self.table();
        entry.exit.send_replace(Some(code));
        table.exited(id, Instant::now());
    }

    pub fn inspect(&self, id: &str) -> Result<ExecInfo> {
        let (e, phase, exit_code) = {
            let table = self.table();
            let (e, phase) = table.get(id).ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
            let code = *e.exit.borrow();
            (e, phase, code)
        };
        let pid = e.pid.load(Ordering::Relaxed);
        let running = phase == table::Phase::Started && pid != 0;
        let c = &e.config;
        Ok(ExecInfo {
            id: id.to_string(),
            container_id: e.container_id.clone(),
            running,
            exit_code,
            pid,
            config: ExecInfoConfig {
                cmd: c.cmd.clone(),
                tty: c.tty,
                user: c.user.clone(),
                privileged: c.privileged,
                attach_stdin: c.attach_stdin,
                attach_stdout: c.attach_stdout,
                attach_stderr: c.attach_stderr,
                detach_keys: c.detach_keys.clone(),
            },
        })
    }

    /// The container service the execs run in.
    pub(crate) fn containers(&self) -> &ContainerService {
        &self.containers
    }

    /// Kills an exec's process (SIGKILL).
    pub async fn kill(&self, id: &str) -> Result<()> {
        let e = self.entry(id)?;
        self.containers.ctd.tasks.kill_process(&e.container_id, id, 9, false).await?;
        Ok(())
    }

    /// Closes an exec's stdin (its client reached EOF).
    pub async fn close_stdin(&self, id: &str) -> Result<()> {
        let e = self.entry(id)?;
        self.containers.ctd.tasks.close_stdin(&e.container_id, id).await?;
        Ok(())
    }

    pub async fn resize(&self, id: &str, height: u32, width: u32) -> Result<()> {
        let e = self.entry(id)?;
        self.containers.ctd.tasks.resize_pty(&e.container_id, id, width, height).await?;
        Ok(())
    }

    /// Collects what [`table::Table::sweep`] says may go: old exits, the
    /// execs of removed containers, and never-started ones of stopped
    /// containers. The container states are read before taking the table's
    /// lock.
    pub fn collect(&self, now: Instant) {
        let containers = self.table().containers();
        let states: HashMap<String, Option<bool>> = containers
            .into_iter()
            .map(|c| {
                let running = self.containers.get(&c).ok().map(|r| r.state.running);
                (c, running)
            })
            .collect();
        self.table().sweep(now, &states);
    }
}

/// How often [`collect_periodically`] runs.
pub const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Collects execs every [`COLLECT_EVERY`] while the service lives.
pub async fn collect_periodically(execs: Weak<ExecService>) {
    let mut tick = tokio::time::interval(COLLECT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(execs) = execs.upgrade() else { return };
        execs.collect(Instant::now());
    }
}
