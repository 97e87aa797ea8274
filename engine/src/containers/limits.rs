//! What the host supports of a container's resource options, read once when
//! the daemon starts ([`HostLimits::read`]), and the checks of a container's
//! settings against it, with dockerd's messages: cpusets against the CPUs
//! and memory nodes the host has, the v1-only memory knobs, real-time CPU
//! scheduling, and ulimits against the daemon's own hard limits (a process
//! without `CAP_SYS_RESOURCE` cannot raise a hard limit, so neither can the
//! container it starts).

use std::collections::BTreeSet;
use std::path::Path;

use berth_store::{HostConfig, Ulimit};

use super::validate::CreateError;
use crate::cgroups::{Cgroups, Layout};

/// The ulimit names dockerd knows (`RLIMIT_<NAME>`), with their resource.
pub const ULIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

/// The host's resource facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// The CPUs and memory nodes of the cpuset root (`0-1`); "" = no cpuset
    /// controller.
    pub cpus: String,
    pub mems: String,
    /// The memory controller has these knobs.
    pub swap_limit: bool,
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub memory_reservation: bool,
    /// `cpu.rt_runtime_us` exists (CONFIG_RT_GROUP_SCHED, cgroup v1).
    pub cpu_realtime: bool,
    /// The cgroup layout is unified (v2): dockerd's default cgroup namespace
    /// is then `private`, else `host`.
    pub unified: bool,
    /// The daemon's own hard limits, by ulimit name (`None` = unlimited).
    pub hard: Vec<(&'static str, Option<u64>)>,
    /// The daemon holds `CAP_SYS_RESOURCE` (may raise hard limits).
    pub can_raise: bool,
}

impl HostLimits {
    /// Reads the facts of this host (blocking: small files under cgroupfs
    /// and `/proc`).
    pub fn read(cgroups: &Cgroups) -> HostLimits {
        let h = cgroups.hierarchy();
        let read = |p: &Path| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
        let unified = cgroups.layout() == Layout::Unified;
        let (cpus, mems, swap_limit, swappiness, oom_kill_disable, reservation, rt) = if unified {
            let root = h.unified_mount().unwrap_or(Path::new("/sys/fs/cgroup"));
            let online = read(Path::new("/sys/devices/system/cpu/online"));
            let cpus = Some(read(&root.join("cpuset.cpus.effective"))).filter(|s| !s.is_empty()).unwrap_or(online);
            let mems = Some(read(&root.join("cpuset.mems.effective"))).filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into());
            (cpus, mems, true, false, false, true, false)
        } else {
            let cpuset = h.v1_mount("cpuset");
            let memory = h.v1_mount("memory");
            let has = |m: Option<&Path>, f: &str| m.is_some_and(|m| m.join(f).exists());
            (
                cpuset.map(|m| read(&m.join("cpuset.cpus"))).unwrap_or_default(),
                cpuset.map(|m| read(&m.join("cpuset.mems"))).unwrap_or_default(),
                has(memory, "memory.memsw.limit_in_bytes"),
                has(memory, "memory.swappiness"),
                has(memory, "memory.oom_control"),
                has(memory, "memory.soft_limit_in_bytes"),
                has(h.v1_mount("cpu"), "cpu.rt_runtime_us"),
            )
        };
        let hard = ULIMITS
            .iter()
            .map(|&(name, res)| {
                let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: getrlimit writes the struct it is given.
                let ok = unsafe { libc::getrlimit(res, &mut r) } == 0;
                (name, if !ok || r.rlim_max == libc::RLIM_INFINITY { None } else { Some(r.rlim_max) })
            })
            .collect();
        HostLimits {
            cpus,
            mems,
            swap_limit,
            swappiness,
            oom_kill_disable,
            memory_reservation: reservation,
            cpu_realtime: rt,
            unified,
            hard,
            can_raise: has_sys_resource(),
        }
    }

    /// A host with everything (unit tests).
    pub fn permissive() -> HostLimits {
        HostLimits {
            cpus: "0-1".into(),
            mems: "0".into(),
            swap_limit: true,
            swappiness: true,
            oom_kill_disable: true,
            memory_reservation: true,
            cpu_realtime: true,
            unified: false,
            hard: ULIMITS.iter().map(|&(n, _)| (n, None)).collect(),
            can_raise: true,
        }
    }

    /// Fills in dockerd's defaults that depend on the host: the cgroup
    /// namespace (`host` on v1, `private` on v2), and a swap limit of twice
    /// the memory limit when swap can be limited.
    pub fn apply_defaults(&self, h: &mut HostConfig) {
        if h.cgroupns_mode.is_empty() {
            h.cgroupns_mode = if self.unified { "private" } else { "host" }.into();
        }
        if h.memory > 0 && h.memory_swap == 0 && self.swap_limit {
            h.memory_swap = h.memory.saturating_mul(2);
        }
    }

    /// Checks the resource settings against the host (dockerd's
    /// `verifyPlatformContainerResources`, refusing where dockerd would
    /// warn and discard: berth never drops an option silently).
    pub fn check(&self, h: &HostConfig) -> Result<(), CreateError> {
        let unsupported = |what: &str| CreateError::Unsupported(format!("{what}; remove it from the request"));
        if h.memory_swap > 0 && !self.swap_limit {
            return Err(unsupported("Your kernel does not support swap limit capabilities or the cgroup is not mounted: MemorySwap cannot be honoured"));
        }
        if h.memory_swappiness.is_some() && !self.swappiness {
            return Err(unsupported("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted: MemorySwappiness cannot be honoured"));
        }
        if h.memory_reservation > 0 && !self.memory_reservation {
            return Err(unsupported("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted: MemoryReservation cannot be honoured"));
        }
        if h.oom_kill_disable == Some(true) && !self.oom_kill_disable {
            return Err(unsupported("Your kernel does not support OomKillDisable: it cannot be honoured"));
        }
        if h.cpu_realtime_period > 0 && !self.cpu_realtime {
            return Err(CreateError::Invalid("Your kernel does not support cgroup cpu real-time period".into()));
        }
        if h.cpu_realtime_runtime > 0 && !self.cpu_realtime {
            return Err(CreateError::Invalid("Your kernel does not support cgroup cpu real-time runtime".into()));
        }
        if (!h.cpuset_cpus.is_empty() || !h.cpuset_mems.is_empty()) && self.cpus.is_empty() {
            return Err(unsupported("Your kernel does not support cpuset or the cgroup is not mounted: CpusetCpus and CpusetMems cannot be honoured"));
        }
        check_cpuset(&h.cpuset_cpus, &self.cpus, "cpus", "CPUs")?;
        check_cpuset(&h.cpuset_mems, &self.mems, "mems", "memory nodes")?;
        self.check_ulimits(&h.ulimits)
    }

    fn check_ulimits(&self, ulimits: &[Ulimit]) -> Result<(), CreateError> {
        for u in ulimits {
            let Some(&(_, own)) = self.hard.iter().find(|(n, _)| *n == u.name) else {
                return Err(CreateError::Invalid(format!("invalid ulimit type: {}", u.name)));
            };
            if u.soft < 0 || u.hard < 0 {
                return Err(CreateError::Invalid(format!("invalid ulimit {}: limits cannot be negative ({}:{})", u.name, u.soft, u.hard)));
            }
            if u.soft > u.hard {
                return Err(CreateError::Invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            if let Some(own) = own.filter(|own| u.hard as u64 > *own && !self.can_raise) {
                return Err(CreateError::Invalid(format!(
                    "ulimit {}: hard limit {} is above the daemon's own hard limit {own}, and berth lacks CAP_SYS_RESOURCE to raise it; ask for at most {own}",
                    u.name, u.hard
                )));
            }
        }
        Ok(())
    }
}

/// The capability number of `CAP_SYS_RESOURCE` (linux/capability.h).
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process has `CAP_SYS_RESOURCE` in its effective set.
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << CAP_SYS_RESOURCE) != 0)
}

/// A cpuset list (`0-2,4`) as a set, as dockerd's `ParseUintList` reads it.
pub fn parse_list(s: &str) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    if s.is_empty() {
        return Ok(out);
    }
    let bad = || format!("invalid format: {s}");
    for part in s.split(',') {
        match part.split_once('-') {
            None => {
                out.insert(part.parse::<u32>().map_err(|_| bad())?);
            }
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().map_err(|_| bad())?, b.parse::<u32>().map_err(|_| bad())?);
                if b < a || b - a > 65_536 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

fn check_cpuset(requested: &str, available: &str, key: &str, what: &str) -> Result<(), CreateError> {
    if requested.is_empty() {
        return Ok(());
    }
    let want = parse_list(requested).map_err(|e| CreateError::Invalid(format!("Invalid value {requested} for cpuset {key}: {e}")))?;
    let have = parse_list(available).unwrap_or_default();
    if !want.is_subset(&have) {
        return Err(CreateError::Invalid(format!("Requested {what} are not available - requested {requested}, available: {available}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_are_checked_against_the_host() {
        let l = HostLimits::permissive();
        let h = |cpus: &str, mems: &str| HostConfig { cpuset_cpus: cpus.into(), cpuset_mems: mems.into(), ..Default::default() };
        l.check(&h("0,1", "0")).unwrap();
        l.check(&h("0-1", "")).unwrap();
        assert_eq!(l.check(&h("0-100", "")).unwrap_err().to_string(), "Requested CPUs are not available - requested 0-100, available: 0-1");
        assert_eq!(l.check(&h("", "1")).unwrap_err().to_string(), "Requested memory nodes are not available - requested 1, available: 0");
        assert_eq!(l.check(&h("0-x", "")).unwrap_err().to_string(), "Invalid value 0-x for cpuset cpus: invalid format: 0-x");
        assert_eq!(parse_list("0-2,5").unwrap().into_iter().collect::<Vec<_>>(), [0, 1, 2, 5]);
        assert!(parse_list("2-1").is_err() && parse_list(",").is_err() && parse_list("1,").is_err());
        let none = HostLimits { cpus: String::new(), ..l };
        assert!(none.check(&h("0", "")).unwrap_err().to_string().contains("does not support cpuset"));
    }

    #[test]
    fn ulimits_stay_under_the_daemons_hard_limits() {
        let u = |name: &str, soft: i64, hard: i64| HostConfig { ulimits: vec![Ulimit { name: name.into(), soft, hard }], ..Default::default() };
        let l = HostLimits { hard: vec![("nofile", Some(20000)), ("nproc", None)], can_raise: false, ..HostLimits::permissive() };
        l.check(&u("nofile", 100, 20000)).unwrap();
        l.check(&u("nproc", 100, 1 << 40)).unwrap();
        let e = l.check(&u("nofile", 100, 30000)).unwrap_err().to_string();
        assert!(e.contains("hard limit 30000 is above the daemon's own hard limit 20000") && e.contains("CAP_SYS_RESOURCE"), "{e}");
        assert_eq!(l.check(&u("nofile", 20, 10)).unwrap_err().to_string(), "ulimit soft limit must be less than or equal to hard limit: 20 > 10");
        assert_eq!(l.check(&u("bogus", 1, 1)).unwrap_err().to_string(), "invalid ulimit type: bogus");
        let root = HostLimits { can_raise: true, ..l };
        root.check(&u("nofile", 100, 30000)).unwrap();
    }

    #[test]
    fn host_dependent_options() {
        let v2 = HostLimits { swappiness: false, oom_kill_disable: false, cpu_realtime: false, unified: true, ..HostLimits::permissive() };
        let e = v2.check(&HostConfig { memory_swappiness: Some(10), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("MemorySwappiness"), "{e}");
        assert!(v2.check(&HostConfig { oom_kill_disable: Some(true), ..Default::default() }).is_err());
        v2.check(&HostConfig { oom_kill_disable: Some(false), ..Default::default() }).unwrap();
        assert_eq!(
            v2.check(&HostConfig { cpu_realtime_runtime: 500, ..Default::default() }).unwrap_err().to_string(),
            "Your kernel does not support cgroup cpu real-time runtime"
        );
        let mut h = HostConfig { memory: 100 << 20, ..Default::default() };
        v2.apply_defaults(&mut h);
        assert_eq!((h.cgroupns_mode.as_str(), h.memory_swap), ("private", 200 << 20));
        let mut h = HostConfig::default();
        HostLimits::permissive().apply_defaults(&mut h);
        assert_eq!((h.cgroupns_mode.as_str(), h.memory_swap), ("host", 0));
    }
}
