//! Tasks (a container's running process) and exec'd processes.
//!
//! Order for a run: `create` → spawn `wait` → `start` → (kill …) → await the
//! wait → `delete`. Waiting is registered before start like the Go client
//! does; containerd keeps an exited process until `delete`, so a wait that
//! arrives late still gets the status.

use std::future::Future;
use std::time::SystemTime;

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CloseIoRequest, CreateTaskRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, GetRequest,
    KillRequest, ListPidsRequest, ListTasksRequest, PauseTaskRequest, ResizePtyRequest, ResumeTaskRequest,
    StartRequest, UpdateTaskRequest, WaitRequest,
};
use containerd_client::types::Mount;
use prost_types::Any;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::util::to_system_time;

/// Type URL of an OCI process spec packed as JSON in an `Any`.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Type URL of OCI Linux resources packed as JSON in an `Any` (what the
/// runc shim's Update reads).
pub const RESOURCES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Stdio of a task or exec: FIFO paths, plain file paths, or URIs
/// (`file:///abs`, `binary://…`); "" means /dev/null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIo {
    /// stdin.
    pub stdin: String,
    /// stdout (the pty output when `terminal`).
    pub stdout: String,
    /// stderr (unused when `terminal`).
    pub stderr: String,
    /// Allocate a pty.
    pub terminal: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code; 128 + signal when killed by a signal (137 = SIGKILL).
    pub code: u32,
    /// When it exited.
    pub exited_at: Option<SystemTime>,
}

/// Task state as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Unknown.
    Unknown,
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited (not yet deleted).
    Stopped,
    /// Paused.
    Paused,
    /// Being paused.
    Pausing,
}

impl TaskStatus {
    fn from_i32(v: i32) -> Self {
        match v {
            1 => TaskStatus::Created,
            2 => TaskStatus::Running,
            3 => TaskStatus::Stopped,
            4 => TaskStatus::Paused,
            5 => TaskStatus::Pausing,
            _ => TaskStatus::Unknown,
        }
    }
}

/// A task or process as `Get`/`List` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Container id (or exec id for a process).
    pub id: String,
    /// Pid on the host (0 before create).
    pub pid: u32,
    /// Status.
    pub status: TaskStatus,
    /// Exit status (meaningful when `Stopped`).
    pub exit_status: u32,
    /// When it exited.
    pub exited_at: Option<SystemTime>,
}

/// Task operations of one namespace.
#[derive(Debug, Clone)]
pub struct Tasks {
    client: Client,
}

fn process_any(process: &oci_spec::runtime::Process) -> Result<Any> {
    Ok(Any {
        type_url: PROCESS_TYPE_URL.into(),
        value: serde_json::to_vec(process).map_err(|e| Error::json("encoding OCI process", e))?,
    })
}

impl Tasks {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Tasks { client }
    }

    fn svc(&self) -> TasksClient<tonic::transport::Channel> {
        TasksClient::new(self.client.channel())
    }

    /// Creates the task (starts the shim, runs `runc create`); returns the
    /// init pid. Runtime failures come back as [`Error::Runtime`] with
    /// containerd's message.
    pub async fn create(&self, container_id: &str, io: &TaskIo, rootfs: Vec<Mount>) -> Result<u32> {
        let resp = self
            .svc()
            .create(self.client.request(CreateTaskRequest {
                container_id: container_id.into(),
                rootfs,
                stdin: io.stdin.clone(),
                stdout: io.stdout.clone(),
                stderr: io.stderr.clone(),
                terminal: io.terminal,
                ..Default::default()
            }))
            .await?;
        Ok(resp.into_inner().pid)
    }

    /// Starts the task's init process; returns its pid.
    pub async fn start(&self, container_id: &str) -> Result<u32> {
        self.start_process(container_id, "").await
    }

    /// A future resolving when the init process exits. Spawn it before
    /// [`Tasks::start`]; it owns its own client handle.
    pub fn wait(&self, container_id: &str) -> impl Future<Output = Result<ExitStatus>> + Send + 'static {
        self.wait_process(container_id, "")
    }

    /// Like [`Tasks::wait`] for an exec'd process.
    pub fn wait_process(&self, container_id: &str, exec_id: &str) -> impl Future<Output = Result<ExitStatus>> + Send + 'static {
        let client = self.client.clone();
        let req = WaitRequest { container_id: container_id.into(), exec_id: exec_id.into() };
        async move {
            let resp = TasksClient::new(client.channel()).wait(client.request(req)).await?.into_inner();
            Ok(ExitStatus { code: resp.exit_status, exited_at: to_system_time(resp.exited_at.as_ref()) })
        }
    }

    /// Sends `signal` to the init process (`all`: to every process of the
    /// container).
    pub async fn kill(&self, container_id: &str, signal: u32, all: bool) -> Result<()> {
        self.kill_process(container_id, "", signal, all).await
    }

    /// Sends `signal` to an exec'd process.
    pub async fn kill_process(&self, container_id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.svc()
            .kill(self.client.request(KillRequest { container_id: container_id.into(), exec_id: exec_id.into(), signal, all }))
            .await?;
        Ok(())
    }

    /// Freezes the container.
    pub async fn pause(&self, container_id: &str) -> Result<()> {
        self.svc().pause(self.client.request(PauseTaskRequest { container_id: container_id.into() })).await?;
        Ok(())
    }

    /// Thaws the container.
    pub async fn resume(&self, container_id: &str) -> Result<()> {
        self.svc().resume(self.client.request(ResumeTaskRequest { container_id: container_id.into() })).await?;
        Ok(())
    }

    /// Adds a process to a running container (not started yet: call
    /// [`Tasks::start_process`], after spawning [`Tasks::wait_process`]).
    pub async fn exec(&self, container_id: &str, exec_id: &str, process: &oci_spec::runtime::Process, io: &TaskIo) -> Result<()> {
        self.svc()
            .exec(self.client.request(ExecProcessRequest {
                container_id: container_id.into(),
                stdin: io.stdin.clone(),
                stdout: io.stdout.clone(),
                stderr: io.stderr.clone(),
                terminal: io.terminal,
                spec: Some(process_any(process)?),
                exec_id: exec_id.into(),
            }))
            .await?;
        Ok(())
    }

    /// Starts an exec'd process (`exec_id` "" = the init process).
    pub async fn start_process(&self, container_id: &str, exec_id: &str) -> Result<u32> {
        let resp = self
            .svc()
            .start(self.client.request(StartRequest { container_id: container_id.into(), exec_id: exec_id.into() }))
            .await?;
        Ok(resp.into_inner().pid)
    }

    /// Removes an exited exec'd process; returns its exit status.
    pub async fn delete_process(&self, container_id: &str, exec_id: &str) -> Result<ExitStatus> {
        let resp = self
            .svc()
            .delete_process(self.client.request(DeleteProcessRequest { container_id: container_id.into(), exec_id: exec_id.into() }))
            .await?
            .into_inner();
        Ok(ExitStatus { code: resp.exit_status, exited_at: to_system_time(resp.exited_at.as_ref()) })
    }

    /// Resizes the pty of the init process (`exec_id` "") or of an exec.
    pub async fn resize_pty(&self, container_id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.svc()
            .resize_pty(self.client.request(ResizePtyRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
                width,
                height,
            }))
            .await?;
        Ok(())
    }

    /// Closes the stdin of the init process (`exec_id` "") or of an exec.
    pub async fn close_stdin(&self, container_id: &str, exec_id: &str) -> Result<()> {
        self.svc()
            .close_io(self.client.request(CloseIoRequest { container_id: container_id.into(), exec_id: exec_id.into(), stdin: true }))
            .await?;
        Ok(())
    }

    /// Changes the cgroup resources of a running task (`runc update`).
    pub async fn update(&self, container_id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let value = serde_json::to_vec(resources).map_err(|e| Error::json("encoding OCI resources", e))?;
        self.svc()
            .update(self.client.request(UpdateTaskRequest {
                container_id: container_id.into(),
                resources: Some(Any { type_url: RESOURCES_TYPE_URL.into(), value }),
                annotations: Default::default(),
            }))
            .await?;
        Ok(())
    }

    /// Host pids of the container's processes.
    pub async fn pids(&self, container_id: &str) -> Result<Vec<u32>> {
        let resp = self.svc().list_pids(self.client.request(ListPidsRequest { container_id: container_id.into() })).await?;
        Ok(resp.into_inner().processes.into_iter().map(|p| p.pid).collect())
    }

    /// State of a task (`exec_id` "") or exec'd process.
    pub async fn get(&self, container_id: &str, exec_id: &str) -> Result<TaskState> {
        let resp = self
            .svc()
            .get(self.client.request(GetRequest { container_id: container_id.into(), exec_id: exec_id.into() }))
            .await?
            .into_inner();
        let p = resp.process.ok_or_else(|| Error::NotFound(format!("task {container_id}")))?;
        Ok(TaskState {
            id: p.id,
            pid: p.pid,
            status: TaskStatus::from_i32(p.status),
            exit_status: p.exit_status,
            exited_at: to_system_time(p.exited_at.as_ref()),
        })
    }

    /// All tasks of the namespace (`id` = container id).
    pub async fn list(&self) -> Result<Vec<TaskState>> {
        let resp = self.svc().list(self.client.request(ListTasksRequest { filter: String::new() })).await?.into_inner();
        Ok(resp
            .tasks
            .into_iter()
            .map(|p| TaskState {
                id: p.id,
                pid: p.pid,
                status: TaskStatus::from_i32(p.status),
                exit_status: p.exit_status,
                exited_at: to_system_time(p.exited_at.as_ref()),
            })
            .collect())
    }

    /// Deletes an exited task (the shim exits); returns the exit status.
    pub async fn delete(&self, container_id: &str) -> Result<ExitStatus> {
        let resp = self
            .svc()
            .delete(self.client.request(DeleteTaskRequest { container_id: container_id.into() }))
            .await?
            .into_inner();
        Ok(ExitStatus { code: resp.exit_status, exited_at: to_system_time(resp.exited_at.as_ref()) })
    }
}
