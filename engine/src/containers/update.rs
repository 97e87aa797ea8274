//! `docker update`: a container's CPU, memory and pids limits and its
//! restart policy, changed in its record and, when it runs, in its cgroup
//! (containerd's task Update with the new Linux resources), with dockerd's
//! rules: a field left 0 keeps its value, Nano CPUs and a CFS period or
//! quota exclude each other across updates, a memory limit above the swap
//! limit needs the swap limit too, and an `AutoRemove` container keeps no
//! restart policy.

use berth_store::{ContainerStatus, HostConfig, RestartPolicy};

use super::validate::{self, CreateError};
use super::ContainerService;
use crate::error::{EngineError, Result};

/// The fields of a `docker update` (0 / "" / `None` = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateRequest {
    pub cpu_shares: i64,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    /// `Some(n <= 0)` = unlimited.
    pub pids_limit: Option<i64>,
    /// `None` or an empty name = unchanged.
    pub restart_policy: Option<RestartPolicy>,
}

impl UpdateRequest {
    /// The request as a host config of its own, for the checks dockerd
    /// runs on it before merging.
    fn as_host_config(&self) -> HostConfig {
        HostConfig {
            cpu_shares: self.cpu_shares,
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            nano_cpus: self.nano_cpus,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            cpu_realtime_period: self.cpu_realtime_period,
            cpu_realtime_runtime: self.cpu_realtime_runtime,
            pids_limit: self.pids_limit,
            restart_policy: self.restart_policy.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// dockerd's checks of the request alone (`verifyContainerSettings` with
/// `update` set): the same as at create, except that a swap limit may come
/// without a memory limit.
pub fn check_request(req: &UpdateRequest) -> std::result::Result<(), CreateError> {
    let mut h = req.as_host_config();
    validate::check_memory_floor_and_cpu(&h)?;
    if h.cpu_shares < 0 {
        return Err(CreateError::Invalid(format!("invalid CPU shares ({}): value must be a positive integer", h.cpu_shares)));
    }
    validate::check_memory(&mut h, true)?;
    if h.cpu_realtime_period != 0 && h.cpu_realtime_runtime != 0 && h.cpu_realtime_runtime > h.cpu_realtime_period {
        return Err(CreateError::Invalid("cpu-rt-runtime cannot be higher than cpu-rt-period".into()));
    }
    if let Some(p) = &req.restart_policy {
        if !p.name.is_empty() {
            validate::check_restart_policy(&HostConfig { restart_policy: p.clone(), ..Default::default() })?;
        }
    }
    Ok(())
}

/// dockerd's `UpdateContainer`: merges the request into `h` (the
/// container's settings), or says why not (without the `Cannot update
/// container` prefix).
pub fn merge(h: &mut HostConfig, req: &UpdateRequest) -> std::result::Result<(), String> {
    if req.nano_cpus > 0 && h.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set".into());
    }
    if req.nano_cpus > 0 && h.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set".into());
    }
    if req.cpu_period > 0 && h.nano_cpus > 0 {
        return Err("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set".into());
    }
    if req.cpu_quota > 0 && h.nano_cpus > 0 {
        return Err("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set".into());
    }
    let set = |field: &mut i64, v: i64| {
        if v != 0 {
            *field = v;
        }
    };
    set(&mut h.cpu_shares, req.cpu_shares);
    set(&mut h.nano_cpus, req.nano_cpus);
    set(&mut h.cpu_period, req.cpu_period);
    set(&mut h.cpu_quota, req.cpu_quota);
    if !req.cpuset_cpus.is_empty() {
        h.cpuset_cpus = req.cpuset_cpus.clone();
    }
    if !req.cpuset_mems.is_empty() {
        h.cpuset_mems = req.cpuset_mems.clone();
    }
    if req.memory != 0 {
        // dockerd: a memory limit above the swap limit already set must
        // come with a new swap limit.
        if req.memory > h.memory_swap && req.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        h.memory = req.memory;
    }
    set(&mut h.memory_swap, req.memory_swap);
    set(&mut h.memory_reservation, req.memory_reservation);
    set(&mut h.cpu_realtime_period, req.cpu_realtime_period);
    set(&mut h.cpu_realtime_runtime, req.cpu_realtime_runtime);
    if let Some(p) = req.pids_limit {
        h.pids_limit = (p > 0).then_some(p);
    }
    if let Some(p) = req.restart_policy.as_ref().filter(|p| !p.name.is_empty()) {
        if h.auto_remove && p.name != "no" {
            return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
        }
        h.restart_policy = p.clone();
    }
    Ok(())
}

impl ContainerService {
    /// `docker update`: checks, merges, applies to the running task (if
    /// any), then records. Returns dockerd's warnings (none: berth refuses
    /// what dockerd would warn about).
    pub async fn update_container(&self, key: &str, req: UpdateRequest) -> Result<Vec<String>> {
        check_request(&req)?;
        self.limits.check(&req.as_host_config())?;
        let id = self.get(key)?.id.clone();
        let _lock = self.store.lock(&id).await;
        let rec = self.get(&id)?;
        let cannot = |why: String| EngineError::InvalidParameter(format!("Cannot update container {id}: {why}"));
        if matches!(rec.state.status, ContainerStatus::Removing | ContainerStatus::Dead) {
            return Err(cannot("container is marked for removal and cannot be \"update\"".into()));
        }
        let mut h = rec.host_config.clone();
        merge(&mut h, &req).map_err(cannot)?;
        if rec.state.running && rec.state.status != ContainerStatus::Restarting {
            let mut resources = crate::spec::resources(&h).map_err(EngineError::from)?;
            if req.pids_limit.is_some_and(|p| p <= 0) {
                // Back to unlimited ("max"): runc writes a negative limit as such.
                let pids = oci_spec::runtime::LinuxPidsBuilder::default()
                    .limit(-1)
                    .build()
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                resources.set_pids(Some(pids));
            }
            self.ctd.tasks.update(&id, &resources).await.map_err(|e| cannot(e.to_string()))?;
        }
        let updated = self.update(&id, move |r| r.host_config = h).await?;
        self.event("update", &updated, &[]);
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_dockerd() {
        let mut h = HostConfig { memory: 400 << 20, memory_swap: 800 << 20, ..Default::default() };
        merge(&mut h, &UpdateRequest { memory: 300 << 20, ..Default::default() }).unwrap();
        assert_eq!((h.memory, h.memory_swap), (300 << 20, 800 << 20));
        // No limits yet: a memory limit needs a swap limit with it (dockerd).
        let mut h = HostConfig::default();
        let e = merge(&mut h, &UpdateRequest { memory: 300 << 20, ..Default::default() }).unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller than already set memoryswap limit"), "{e}");
        merge(&mut h, &UpdateRequest { memory: 300 << 20, memory_swap: -1, ..Default::default() }).unwrap();
        assert_eq!((h.memory, h.memory_swap), (300 << 20, -1));

        let mut h = HostConfig { nano_cpus: 1_000_000_000, ..Default::default() };
        assert!(merge(&mut h, &UpdateRequest { cpu_quota: 5000, ..Default::default() }).unwrap_err().contains("CPU Quota cannot be updated as NanoCPUs"));
        let mut h = HostConfig { cpu_period: 100_000, ..Default::default() };
        assert!(merge(&mut h, &UpdateRequest { nano_cpus: 5, ..Default::default() }).unwrap_err().contains("Nano CPUs cannot be updated as CPU Period"));

        let mut h = HostConfig { auto_remove: true, ..Default::default() };
        let always = RestartPolicy { name: "always".into(), maximum_retry_count: 0 };
        let e = merge(&mut h, &UpdateRequest { restart_policy: Some(always.clone()), ..Default::default() }).unwrap_err();
        assert_eq!(e, "Restart policy cannot be updated because AutoRemove is enabled for the container");
        let mut h = HostConfig { pids_limit: Some(10), ..Default::default() };
        merge(&mut h, &UpdateRequest { restart_policy: Some(always.clone()), pids_limit: Some(-1), cpuset_cpus: "0".into(), ..Default::default() }).unwrap();
        assert_eq!((h.restart_policy, h.pids_limit, h.cpuset_cpus.as_str()), (always, None, "0"));
    }

    #[test]
    fn requests_are_checked_alone() {
        assert_eq!(check_request(&UpdateRequest { memory: 1000, ..Default::default() }).unwrap_err().to_string(), "Minimum memory limit allowed is 6MB");
        check_request(&UpdateRequest { memory_swap: 100 << 20, ..Default::default() }).unwrap();
        assert!(check_request(&UpdateRequest { memory: 100 << 20, memory_swap: 50 << 20, ..Default::default() }).is_err());
        let bad = RestartPolicy { name: "always".into(), maximum_retry_count: 3 };
        assert!(check_request(&UpdateRequest { restart_policy: Some(bad), ..Default::default() }).is_err());
        check_request(&UpdateRequest { restart_policy: Some(RestartPolicy::default()), ..Default::default() }).unwrap();
    }
}
