//! Exec: extra processes in running containers (`docker exec`). Execs live
//! in memory only, like dockerd's; their exit codes are recorded before
//! their output stream ends, so `docker exec` reads the right code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

struct Entry {
    container_id: String,
    config: ExecConfig,
    state: Mutex<(bool, u32)>,
    exit: watch::Sender<Option<i64>>,
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
    execs: Mutex<HashMap<String, Arc<Entry>>>,
}

impl ExecService {
    pub fn new(containers: Arc<ContainerService>) -> Self {
        ExecService { containers, execs: Mutex::new(HashMap::new()) }
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
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
        let entry = Entry { container_id: rec.id.clone(), config, state: Mutex::new((false, 0)), exit: watch::channel(None).0 };
        self.execs.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), Arc::new(entry));
        self.containers.event("exec_create", &rec, &[("execID", id.clone())]);
        Ok(id)
    }

    /// Starts an exec.
    pub async fn start(&self, id: &str) -> Result<ExecStreams> {
        let entry = self.entry(id)?;
        let rec = self.running_container(&entry.container_id)?;
        {
            let st = entry.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.0 || entry.exit.borrow().is_some() {
                return Err(EngineError::Conflict(format!("exec {id} has already been started")));
            }
        }
        match self.start_checked(id, &entry, &rec).await {
            Ok(streams) => Ok(streams),
            Err(e) => {
                // As under dockerd, an exec that could not start has exit
                // code 126 (what `docker exec` then exits with).
                entry.exit.send_replace(Some(126));
                tracing::warn!(container = %rec.id, exec = %id, error = %e, "exec could not start");
                Err(e)
            }
        }
    }

    async fn start_checked(&self, id: &str, entry: &Arc<Entry>, rec: &berth_store::ContainerRecord) -> Result<ExecStreams> {
        let c = &entry.config;
        // Names resolve in the running container's own /etc/passwd and /etc/group.
        let who = if c.user.is_empty() { &rec.config.user } else { &c.user };
        let user = user::resolve_in_process(who, rec.state.pid).map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        let caps = crate::confine::exec_caps(&rec.host_config, c.privileged, &self.containers.host_facts)
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        let nnp = crate::confine::exec_no_new_privileges(&rec.host_config, &self.containers.runtimes.snapshot().config);
        let privileges = spec::Privileges { caps, no_new_privileges: nnp };
        let process = spec::exec_process(&rec.config, c.cmd.clone(), &c.env, &user, &c.working_dir, c.tty, privileges)?;
        let fifos = FifoSet::create(self.containers.fifo_root.join(&rec.id).join(format!("exec-{id}")), c.attach_stdin, true, !c.tty)?;
        let mut open = fifos.open()?;
        let tasks = &self.containers.ctd.tasks;
        let res = async {
            tasks.exec(&rec.id, id, &process, &fifos.task_io(c.tty)).await?;
            tasks.start_process(&rec.id, id).await
        }
        .await;
        open.release();
        let pid = match res {
            Ok(pid) => pid,
            Err(e) => {
                let _ = tasks.delete_process(&rec.id, id).await;
                let _ = fifos.remove();
                return Err(e.into());
            }
        };
        *entry.state.lock().unwrap_or_else(|e| e.into_inner()) = (true, pid);
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
        entry.state.lock().unwrap_or_else(|e| e.into_inner()).0 = false;
        entry.exit.send_replace(Some(code as i64));
        let tasks = self.containers.ctd.tasks.clone();
        let (cid, eid) = (entry.container_id.clone(), id.to_string());
        tokio::spawn(async move {
            let _ = tasks.delete_process(&cid, &eid).await;
        });
        if let Ok(rec) = self.containers.get(&entry.container_id) {
            self.containers.event("exec_die", &rec, &[("execID", id.to_string()), ("exitCode", code.to_string())]);
        }
    }

    pub fn inspect(&self, id: &str) -> Result<ExecInfo> {
        let e = self.entry(id)?;
        let (running, pid) = *e.state.lock().unwrap_or_else(|x| x.into_inner());
        let c = &e.config;
        let exit_code = *e.exit.borrow();
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
            },
        })
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
}
