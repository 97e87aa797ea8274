//! Processes and resource usage of running containers, read from the
//! host: `/proc` for processes, the cgroup (v1 or v2) for usage.

use std::path::{Path, PathBuf};

use super::ContainerService;
use crate::error::{EngineError, Result};

/// One process of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub uid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub cmd: String,
}

/// Resource usage of a container, from its cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    pub memory_limit: u64,
    pub memory_cache: u64,
    pub pids: u64,
    pub pids_limit: Option<u64>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
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

/// Total CPU time of the host in nanoseconds (the first line of /proc/stat).
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse::<u64>().ok()).sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
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
        Ok(pids.into_iter().filter_map(process).collect())
    }

    /// Resizes the TTY of a running container.
    pub async fn resize(&self, key: &str, height: u32, width: u32) -> Result<()> {
        let id = self.running_id(key)?;
        self.ctd.tasks.resize_pty(&id, "", width, height).await?;
        Ok(())
    }

    fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        let rel = format!("{}/{id}", self.ctd.client.namespace());
        if controller.is_empty() {
            Path::new("/sys/fs/cgroup").join(rel)
        } else {
            Path::new("/sys/fs/cgroup").join(controller).join(rel)
        }
    }

    /// Resource usage of a running container.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let id = self.running_id(key)?;
        let mut u = Usage { system_cpu_ns: system_cpu_ns(), online_cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1), ..Default::default() };
        let v2 = self.cgroup_dir("", &id);
        if v2.join("cgroup.controllers").exists() {
            u.memory_usage = read_u64(&v2.join("memory.current")).unwrap_or(0);
            u.memory_limit = read_u64(&v2.join("memory.max")).unwrap_or(u64::MAX);
            u.pids = read_u64(&v2.join("pids.current")).unwrap_or(0);
            u.pids_limit = read_u64(&v2.join("pids.max"));
            let stat = std::fs::read_to_string(v2.join("cpu.stat")).unwrap_or_default();
            let get = |k: &str| stat.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0) * 1000;
            u.cpu_total_ns = get("usage_usec ");
            u.cpu_user_ns = get("user_usec ");
            u.cpu_system_ns = get("system_usec ");
        } else {
            let mem = self.cgroup_dir("memory", &id);
            u.memory_usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
            u.memory_max_usage = read_u64(&mem.join("memory.max_usage_in_bytes")).unwrap_or(0);
            u.memory_limit = read_u64(&mem.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
            let stat = std::fs::read_to_string(mem.join("memory.stat")).unwrap_or_default();
            u.memory_cache = stat.lines().find_map(|l| l.strip_prefix("total_cache ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            let cpu = self.cgroup_dir("cpuacct", &id);
            u.cpu_total_ns = read_u64(&cpu.join("cpuacct.usage")).unwrap_or(0);
            let stat = std::fs::read_to_string(cpu.join("cpuacct.stat")).unwrap_or_default();
            let get = |k: &str| stat.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0) * 10_000_000;
            u.cpu_user_ns = get("user ");
            u.cpu_system_ns = get("system ");
            let pids = self.cgroup_dir("pids", &id);
            u.pids = read_u64(&pids.join("pids.current")).unwrap_or(0);
            u.pids_limit = read_u64(&pids.join("pids.max"));
        }
        // "Unlimited" is a huge number in the cgroup; show the host's memory, as dockerd does.
        let host = host_memory();
        if host > 0 && u.memory_limit > host {
            u.memory_limit = host;
        }
        Ok(u)
    }
}

/// The host's total memory in bytes (0 if unknown).
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
