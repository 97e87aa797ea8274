//! Processes and resource usage of running containers, read from the
//! host on blocking threads: `/proc` for processes, the container's cgroup
//! (v1 or v2, [`crate::cgroups`]) for usage.

use super::ContainerService;
use crate::error::{EngineError, Result};

pub use crate::cgroups::usage::{BlkioEntry, Usage};

/// One process of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub uid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub cmd: String,
}

fn process(pid: u32) -> Option<Process> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.split_whitespace().next().unwrap_or("").to_string());
    let uid = field("Uid:")?.parse().ok()?;
    let ppid = field("PPid:")?.parse().ok()?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmd = raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(" ");
    Some(Process { uid, pid, ppid, cmd })
}

impl ContainerService {
    fn running_id(&self, key: &str) -> Result<String> {
        let rec = self.get(key)?;
        if !rec.state.running {
            return Err(EngineError::Conflict(format!("Container {} is not running", rec.id)));
        }
        Ok(rec.id.clone())
    }

    /// The processes of a running container.
    pub async fn top(&self, key: &str) -> Result<Vec<Process>> {
        let id = self.running_id(key)?;
        let pids = self.ctd.tasks.pids(&id).await?;
        blocking(move || pids.into_iter().filter_map(process).collect()).await
    }

    /// Resizes the TTY of a running container.
    pub async fn resize(&self, key: &str, height: u32, width: u32) -> Result<()> {
        let id = self.running_id(key)?;
        self.ctd.tasks.resize_pty(&id, "", width, height).await?;
        Ok(())
    }

    /// Resource usage of a running container.
    pub async fn usage(&self, key: &str) -> Result<Usage> {
        let id = self.running_id(key)?;
        let (cgroups, ns) = (self.cgroups.clone(), self.ctd.client.namespace().to_string());
        blocking(move || cgroups.usage(&ns, &id)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| EngineError::Internal(format!("reading /proc or the cgroup files failed: {e}")))
}
