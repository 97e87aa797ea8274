//! A container's resource usage, read from its cgroup files and mapped to
//! the fields dockerd reports (moby's stats collector over containerd's
//! cgroup metrics), on v1 and on the unified hierarchy alike.
//!
//! | `docker stats` field | cgroup v1 | cgroup v2 |
//! | --- | --- | --- |
//! | `cpu_usage.total_usage` (ns) | `cpuacct.usage` | `cpu.stat` `usage_usec` × 1000 |
//! | `cpu_usage.usage_in_usermode` / `_kernelmode` | `cpuacct.stat` user/system ticks × 10 ms | `user_usec`/`system_usec` × 1000 |
//! | `cpu_usage.percpu_usage` | `cpuacct.usage_percpu` | none |
//! | `throttling_data` | `cpu.stat` `nr_periods`, `nr_throttled`, `throttled_time` | `nr_periods`, `nr_throttled`, `throttled_usec` × 1000 |
//! | `memory_stats.usage` | `memory.usage_in_bytes` | `memory.current` |
//! | `memory_stats.max_usage` | `memory.max_usage_in_bytes` | none |
//! | `memory_stats.limit` | `memory.limit_in_bytes` | `memory.max` (`max` = unlimited) |
//! | `memory_stats.failcnt` | `memory.failcnt` | `memory.events` `oom` |
//! | `memory_stats.stats` | `memory.stat`: `cache`, `rss`, …, `total_inactive_file` | `memory.stat`: `anon`, `file`, …, `inactive_file` |
//! | `pids_stats` | `pids.current`, `pids.max` (`max` = 0) | `pids.current`, `pids.max` (`max` = 2^64-1) |
//! | `blkio_stats` | `blkio.*_recursive` (CFQ) else `blkio.throttle.io_serviced`/`io_service_bytes` | `io.stat` `rbytes`/`wbytes` as `read`/`write` in `io_service_bytes_recursive` only |
//!
//! The docker CLI subtracts `total_inactive_file` (v1) or `inactive_file`
//! (v2) from `usage` to show a container's memory.
//!
//! Missing files read as zero (a container may lack a controller, and one
//! that just exited has no files left); nothing here fails or panics on
//! odd content.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::mounts::{Hierarchy, Layout};

/// The `memory_stats.stats` keys dockerd reports on cgroup v1.
pub const V1_MEMORY_KEYS: [&str; 32] = [
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault", "pgmajfault",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "hierarchical_memory_limit",
    "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty",
    "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault", "total_inactive_anon",
    "total_active_anon", "total_inactive_file", "total_active_file", "total_unevictable",
];

/// The `memory_stats.stats` keys dockerd reports on cgroup v2 (keys the
/// kernel no longer writes, such as `workingset_refault`, read as 0 there too).
pub const V2_MEMORY_KEYS: [&str; 31] = [
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback", "anon_thp",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault", "workingset_activate",
    "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
];

/// CPU time of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    pub total_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    /// Per CPU (v1 only; empty on v2).
    pub percpu_ns: Vec<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

/// Memory of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub usage: u64,
    /// v1 only (0 on v2).
    pub max_usage: u64,
    /// `u64::MAX`-like values mean unlimited; see [`Usage::cap_memory_limit`].
    pub limit: u64,
    pub failcnt: u64,
    /// `memory.stat` under dockerd's keys for the hierarchy.
    pub stats: BTreeMap<String, u64>,
}

/// Processes of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    /// As dockerd: 0 for no limit on v1, `u64::MAX` on v2.
    pub limit: u64,
}

/// One block I/O counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Block I/O as Docker's `blkio_stats`: `None` is JSON `null` (what
/// dockerd gives for the lists v2 does not have), `Some` a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blkio {
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// Resource usage of a container, with the host's CPU time for percentages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// The host's CPU time in ns (`/proc/stat`), and its online CPUs.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
}

impl Usage {
    /// An unlimited container shows the host's memory as its limit, as in
    /// dockerd (`host` 0 = unknown: left alone).
    pub fn cap_memory_limit(&mut self, host: u64) {
        if host > 0 && self.memory.limit > host {
            self.memory.limit = host;
        }
    }
}

/// Files this large are not cgroup files; read no further.
const MAX_FILE: u64 = 1 << 20;

fn read(path: &Path) -> Option<String> {
    let mut s = String::new();
    std::fs::File::open(path).ok()?.take(MAX_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

/// A one-value file; `max` reads as `max`.
fn single(path: &Path, max: u64) -> u64 {
    match read(path).as_deref().map(str::trim) {
        Some("max") => max,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, cpuacct.stat).
pub fn flat_keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

fn flat_file(path: &Path) -> BTreeMap<String, u64> {
    read(path).map(|t| flat_keyed(&t).into_iter().map(|(k, v)| (k.to_string(), v)).collect()).unwrap_or_default()
}

fn pick(stats: &BTreeMap<String, u64>, keys: &[&str]) -> BTreeMap<String, u64> {
    keys.iter().map(|k| (k.to_string(), stats.get(*k).copied().unwrap_or(0))).collect()
}

/// `MAJ:MIN key=value ...` lines of v2's `io.stat`.
pub fn io_stat(text: &str) -> Vec<(u64, u64, BTreeMap<&str, u64>)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (maj, min) = words.next()?.split_once(':')?;
            let kv = words.filter_map(|w| w.split_once('=')).filter_map(|(k, v)| Some((k, v.parse().ok()?))).collect();
            Some((maj.parse().ok()?, min.parse().ok()?, kv))
        })
        .collect()
}

/// v1 `blkio.*` lines: `MAJ:MIN Op value` or `MAJ:MIN value`; the `Total`
/// line is not an entry.
pub fn blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split([' ', ':']).filter(|s| !s.is_empty()).collect();
            let (op, value) = match f.len() {
                3 => ("", f[2]),
                4 => (f[2], f[3]),
                _ => return None,
            };
            Some(BlkioEntry { major: f[0].parse().ok()?, minor: f[1].parse().ok()?, op: op.to_string(), value: value.parse().ok()? })
        })
        .collect()
}

/// The usage in the container's cgroup directory `rel` (relative to each
/// hierarchy's mount point). The host's CPU time is not filled in here.
pub fn read_cgroup(h: &Hierarchy, rel: &Path) -> Usage {
    match (h.layout(), h.unified_mount()) {
        (Some(Layout::Unified), Some(root)) => read_v2(&root.join(rel)),
        (Some(Layout::V1 | Layout::Hybrid), _) => read_v1(h, rel),
        _ => Usage::default(),
    }
}

fn read_v2(dir: &Path) -> Usage {
    let cpu = flat_file(&dir.join("cpu.stat"));
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    let stat = flat_file(&dir.join("memory.stat"));
    let events = flat_file(&dir.join("memory.events"));
    let io = read(&dir.join("io.stat")).unwrap_or_default();
    let bytes: Vec<BlkioEntry> = io_stat(&io)
        .into_iter()
        .flat_map(|(major, minor, kv)| {
            let v = |k: &str| kv.get(k).copied().unwrap_or(0);
            [("read", v("rbytes")), ("write", v("wbytes"))].map(|(op, value)| BlkioEntry { major, minor, op: op.into(), value })
        })
        .collect();
    Usage {
        cpu: Cpu {
            total_ns: c("usage_usec").saturating_mul(1000),
            user_ns: c("user_usec").saturating_mul(1000),
            system_ns: c("system_usec").saturating_mul(1000),
            percpu_ns: Vec::new(),
            periods: c("nr_periods"),
            throttled_periods: c("nr_throttled"),
            throttled_ns: c("throttled_usec").saturating_mul(1000),
        },
        memory: Memory {
            usage: single(&dir.join("memory.current"), u64::MAX),
            max_usage: 0,
            limit: single(&dir.join("memory.max"), u64::MAX),
            failcnt: events.get("oom").copied().unwrap_or(0),
            stats: pick(&stat, &V2_MEMORY_KEYS),
        },
        pids: Pids { current: single(&dir.join("pids.current"), u64::MAX), limit: single(&dir.join("pids.max"), u64::MAX) },
        blkio: Blkio { io_service_bytes_recursive: (!bytes.is_empty()).then_some(bytes), ..Default::default() },
        system_cpu_ns: 0,
        online_cpus: 0,
    }
}

fn read_v1(h: &Hierarchy, rel: &Path) -> Usage {
    let dir = |ctrl: &str| h.v1_mount(ctrl).map(|m| m.join(rel));
    let mut u = Usage::default();
    if let Some(d) = dir("cpuacct") {
        u.cpu.total_ns = single(&d.join("cpuacct.usage"), 0);
        u.cpu.percpu_ns = read(&d.join("cpuacct.usage_percpu"))
            .map(|t| t.split_whitespace().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        // USER_HZ is 100 on Linux: one tick is 10 ms.
        let st = flat_file(&d.join("cpuacct.stat"));
        u.cpu.user_ns = st.get("user").copied().unwrap_or(0).saturating_mul(10_000_000);
        u.cpu.system_ns = st.get("system").copied().unwrap_or(0).saturating_mul(10_000_000);
    }
    if let Some(d) = dir("cpu") {
        let st = flat_file(&d.join("cpu.stat"));
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        (u.cpu.periods, u.cpu.throttled_periods, u.cpu.throttled_ns) = (g("nr_periods"), g("nr_throttled"), g("throttled_time"));
    }
    if let Some(d) = dir("memory") {
        u.memory = Memory {
            usage: single(&d.join("memory.usage_in_bytes"), 0),
            max_usage: single(&d.join("memory.max_usage_in_bytes"), 0),
            limit: single(&d.join("memory.limit_in_bytes"), 0),
            failcnt: single(&d.join("memory.failcnt"), 0),
            stats: pick(&flat_file(&d.join("memory.stat")), &V1_MEMORY_KEYS),
        };
    }
    if let Some(d) = dir("pids") {
        u.pids = Pids { current: single(&d.join("pids.current"), 0), limit: single(&d.join("pids.max"), 0) };
    }
    u.blkio = dir("blkio").map(|d| blkio_v1_dir(&d)).unwrap_or_else(empty_v1_blkio);
    u
}

fn empty_v1_blkio() -> Blkio {
    Blkio {
        io_service_bytes_recursive: Some(vec![]),
        io_serviced_recursive: Some(vec![]),
        io_queue_recursive: Some(vec![]),
        io_service_time_recursive: Some(vec![]),
        io_wait_time_recursive: Some(vec![]),
        io_merged_recursive: Some(vec![]),
        io_time_recursive: Some(vec![]),
        sectors_recursive: Some(vec![]),
    }
}

/// The CFQ files when the kernel has them and they count anything, else the
/// throttle files (the only ones of the modern block layer).
fn blkio_v1_dir(d: &Path) -> Blkio {
    let f = |name: &str| read(&d.join(format!("blkio.{name}"))).map(|t| blkio_v1(&t)).unwrap_or_default();
    let mut b = empty_v1_blkio();
    if d.join("blkio.io_serviced_recursive").exists() {
        b = Blkio {
            sectors_recursive: Some(f("sectors_recursive")),
            io_service_bytes_recursive: Some(f("io_service_bytes_recursive")),
            io_serviced_recursive: Some(f("io_serviced_recursive")),
            io_queue_recursive: Some(f("io_queued_recursive")),
            io_service_time_recursive: Some(f("io_service_time_recursive")),
            io_wait_time_recursive: Some(f("io_wait_time_recursive")),
            io_merged_recursive: Some(f("io_merged_recursive")),
            io_time_recursive: Some(f("time_recursive")),
        };
        let counted = [
            &b.sectors_recursive,
            &b.io_service_bytes_recursive,
            &b.io_serviced_recursive,
            &b.io_queue_recursive,
            &b.io_service_time_recursive,
            &b.io_wait_time_recursive,
            &b.io_merged_recursive,
            &b.io_time_recursive,
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
        if counted {
            return b;
        }
    }
    b.io_serviced_recursive = Some(f("throttle.io_serviced"));
    b.io_service_bytes_recursive = Some(f("throttle.io_service_bytes"));
    b
}

/// The host's CPU time in ns and its online CPUs, from `/proc/stat` as
/// dockerd reads it: the first seven fields of the `cpu` line (user, nice,
/// system, idle, iowait, irq, softirq) in USER_HZ ticks, and one CPU per
/// `cpuN` line.
pub fn host_cpu(proc_stat: &str) -> (u64, u32) {
    let mut total = 0u64;
    let mut cpus = 0u32;
    for line in proc_stat.lines().take_while(|l| l.starts_with("cpu")) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("cpu") => {
                let ticks: u64 = words.take(7).filter_map(|v| v.parse::<u64>().ok()).fold(0, u64::saturating_add);
                total = ticks.saturating_mul(10_000_000);
            }
            Some(w) if w[3..].bytes().all(|b| b.is_ascii_digit()) => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// The host's total memory in bytes from `/proc/meminfo` (0 if unknown).
pub fn host_memory(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    const V1_ID: &str = "1266ac7d540c43ea5fd968e8ceabe458e2019a89e208438ee86fb9bfd260d148";
    const V2_ID: &str = "5b0a3c1d2e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const V2_SCOPE: &str = "system.slice/berth-c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc.scope";

    fn v2() -> Hierarchy {
        Hierarchy::unified_at(fixtures().join("cgroup-v2"))
    }

    fn entry(major: u64, minor: u64, op: &str, value: u64) -> BlkioEntry {
        BlkioEntry { major, minor, op: op.into(), value }
    }

    #[test]
    fn v2_container_with_limits_maps_as_dockerd() {
        let u = read_cgroup(&v2(), &Path::new("berth").join(V2_ID));
        assert_eq!(
            u.cpu,
            Cpu { total_ns: 52_893_000, user_ns: 14_521_000, system_ns: 38_372_000, percpu_ns: vec![], periods: 31, throttled_periods: 2, throttled_ns: 6_071_000 }
        );
        assert_eq!((u.memory.usage, u.memory.max_usage, u.memory.limit, u.memory.failcnt), (11_681_792, 0, 67_108_864, 1));
        let keys: Vec<&str> = u.memory.stats.keys().map(String::as_str).collect();
        let mut want = V2_MEMORY_KEYS.to_vec();
        want.sort();
        assert_eq!(keys, want, "exactly dockerd's v2 keys");
        assert_eq!(u.memory.stats["inactive_file"], 8_519_680, "what the docker CLI subtracts from usage");
        assert_eq!((u.memory.stats["anon"], u.memory.stats["file"], u.memory.stats["slab"]), (1_118_208, 9_502_720, 667_648));
        assert_eq!(u.memory.stats["workingset_refault"], 0, "split into _anon/_file since Linux 5.9: dockerd reads 0");
        assert!(!u.memory.stats.contains_key("total_inactive_file"), "no v1 keys on v2");
        assert_eq!(u.pids, Pids { current: 2, limit: 100 });
        assert_eq!(
            u.blkio,
            Blkio {
                io_service_bytes_recursive: Some(vec![
                    entry(254, 0, "read", 1_459_200),
                    entry(254, 0, "write", 8_650_752),
                    entry(8, 16, "read", 4096),
                    entry(8, 16, "write", 0),
                ]),
                ..Default::default()
            },
            "v2: only io_service_bytes_recursive, lower-case ops; the other lists are null"
        );
    }

    #[test]
    fn v2_unlimited_container_of_the_systemd_driver() {
        let mut u = read_cgroup(&v2(), Path::new(V2_SCOPE));
        assert_eq!((u.memory.usage, u.memory.limit, u.memory.failcnt), (307_200, u64::MAX, 0));
        assert_eq!(u.pids, Pids { current: 1, limit: u64::MAX }, "dockerd reports pids.max `max` as 2^64-1 on v2");
        assert_eq!(u.blkio, Blkio::default(), "no device: every list null, as dockerd");
        assert_eq!(u.cpu.total_ns, 3_402_000);
        u.cap_memory_limit(8 << 30);
        assert_eq!(u.memory.limit, 8 << 30, "unlimited shows the host's memory");
        u.cap_memory_limit(0);
        assert_eq!(u.memory.limit, 8 << 30);
    }

    /// The recorded v1 files give exactly what dockerd 20.10 answered for them.
    #[test]
    fn v1_files_map_to_dockerds_recorded_answer() {
        let root = fixtures().join("cgroup-v1");
        let h = Hierarchy::v1_at(&root, &["memory", "cpu", "cpuacct", "pids", "blkio"]);
        let u = read_cgroup(&h, &Path::new("berth").join(V1_ID));
        let dockerd: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("dockerd-20.10-stats.json")).unwrap()).unwrap();
        let n = |v: &serde_json::Value| v.as_u64().unwrap();
        let cu = &dockerd["cpu_stats"]["cpu_usage"];
        assert_eq!((u.cpu.total_ns, u.cpu.user_ns, u.cpu.system_ns), (n(&cu["total_usage"]), n(&cu["usage_in_usermode"]), n(&cu["usage_in_kernelmode"])));
        assert_eq!(u.cpu.percpu_ns, cu["percpu_usage"].as_array().unwrap().iter().map(n).collect::<Vec<_>>());
        let th = &dockerd["cpu_stats"]["throttling_data"];
        assert_eq!((u.cpu.periods, u.cpu.throttled_periods, u.cpu.throttled_ns), (n(&th["periods"]), n(&th["throttled_periods"]), n(&th["throttled_time"])));
        let m = &dockerd["memory_stats"];
        assert_eq!((u.memory.usage, u.memory.max_usage, u.memory.limit), (n(&m["usage"]), n(&m["max_usage"]), n(&m["limit"])));
        assert_eq!(u.memory.failcnt, m.get("failcnt").map(n).unwrap_or(0));
        let want: BTreeMap<String, u64> = m["stats"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), n(v))).collect();
        assert_eq!(u.memory.stats, want, "the same keys and values as dockerd");
        assert_eq!(u.pids, Pids { current: n(&dockerd["pids_stats"]["current"]), limit: n(&dockerd["pids_stats"]["limit"]) });
        assert_eq!(u.blkio, empty_v1_blkio(), "no I/O: eight empty lists, as dockerd ({})", dockerd["blkio_stats"]);
    }

    #[test]
    fn missing_files_read_as_zero() {
        let dir = tempfile::tempdir().unwrap();
        let u = read_cgroup(&Hierarchy::unified_at(dir.path()), Path::new("berth/gone"));
        assert_eq!((u.memory.usage, u.memory.limit, u.pids.limit, u.cpu.total_ns), (0, 0, 0, 0));
        assert_eq!(u.memory.stats.len(), V2_MEMORY_KEYS.len());
        let u = read_cgroup(&Hierarchy::v1_at(dir.path(), &["memory"]), Path::new("berth/gone"));
        assert_eq!(u.memory.stats.values().sum::<u64>(), 0);
        assert_eq!(read_cgroup(&Hierarchy::default(), Path::new("x")), Usage::default(), "no cgroups mounted");
    }

    #[test]
    fn parsers_take_odd_content() {
        assert_eq!(flat_keyed("a 1\nb x\n\nc\nd 2 3\ne  4\n").into_iter().collect::<Vec<_>>(), [("a", 1), ("e", 4)]);
        assert_eq!(io_stat("8:0 rbytes=1 wbytes=2 bogus\nnope\n8:x rbytes=1\n").len(), 1);
        assert_eq!(
            blkio_v1("8:0 Read 4096\n8:0 Write 0\n8:16 7\nTotal 4096\n"),
            [entry(8, 0, "Read", 4096), entry(8, 0, "Write", 0), entry(8, 16, "", 7)]
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pids.max"), "lots\n").unwrap();
        assert_eq!(single(&dir.path().join("pids.max"), 7), 0);
        std::fs::write(dir.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(single(&dir.path().join("pids.max"), 7), 7);
    }

    #[test]
    fn v1_cfq_files_are_used_when_they_count() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("blkio.io_serviced_recursive"), "8:0 Read 3\n8:0 Write 1\nTotal 4\n").unwrap();
        std::fs::write(d.path().join("blkio.throttle.io_serviced"), "8:0 Read 99\n").unwrap();
        let b = blkio_v1_dir(d.path());
        assert_eq!(b.io_serviced_recursive, Some(vec![entry(8, 0, "Read", 3), entry(8, 0, "Write", 1)]));
        assert_eq!(b.sectors_recursive, Some(vec![]));
        // CFQ files that count nothing: the throttle files.
        std::fs::write(d.path().join("blkio.io_serviced_recursive"), "Total 0\n").unwrap();
        assert_eq!(blkio_v1_dir(d.path()).io_serviced_recursive, Some(vec![entry(8, 0, "Read", 99)]));
    }

    #[test]
    fn host_cpu_and_memory_as_dockerd_reads_them() {
        let stat = "cpu  100 1 50 1000 5 2 3 7 0 0\ncpu0 50 1 25 500 2 1 1 3 0 0\ncpu1 50 0 25 500 3 1 2 4 0 0\nintr 1\n";
        // Steal (7) is not counted.
        assert_eq!(host_cpu(stat), (1161 * 10_000_000, 2));
        assert_eq!(host_cpu(""), (0, 0));
        assert_eq!(host_memory("MemTotal:        8000000 kB\nMemFree: 1 kB\n"), 8_192_000_000);
        assert_eq!(host_memory("junk"), 0);
    }
}
