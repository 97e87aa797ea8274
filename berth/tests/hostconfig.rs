//! HostConfig options through a real daemon, each checked from inside the
//! container: `--tmpfs`, `--shm-size`, `--pid`, `--ipc`, `--uts`,
//! `--cgroupns`, `--sysctl`, `--ulimit`, the memory and cpuset limits,
//! real-time CPU limits, `--isolation`, `--init` (and daemon.json `init`,
//! `init-path`), and `docker update` on a running container's cgroup.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_engine::cgroups::{Cgroups, Layout};
use berth_test_support::Rootfs;
use common::{text, Daemon};

/// A daemon with a busybox image (every applet) as `bb`.
fn daemon(config: &str) -> Daemon {
    let d = Daemon::start(config);
    let tar = Rootfs::busybox().all_applets().write_tar(&d.path("bb.tar"));
    d.ok(&["import", "--change", "CMD [\"sh\"]", tar.to_str().unwrap(), "bb"]);
    d
}

/// `docker run --rm --network none ARGS…` (options, then `bb`, then the
/// command); its trimmed output.
fn run(d: &Daemon, opts: &[&str], cmd: &str) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(opts);
    a.extend_from_slice(&["bb", "sh", "-c", cmd]);
    d.ok(&a).trim().to_string()
}

/// `docker create ARGS… bb true` must fail with `msg` in its error.
fn refused(d: &Daemon, opts: &[&str], msg: &str) {
    let mut a = vec!["create", "--network", "none"];
    a.extend_from_slice(opts);
    a.extend_from_slice(&["bb", "true"]);
    let o = d.docker(&a);
    assert!(!o.status.success(), "{opts:?} was accepted");
    assert!(String::from_utf8_lossy(&o.stderr).contains(msg), "{opts:?}: want {msg:?}: {}", text(&o));
}

/// `POST /v1.41/containers/create` with `host_config` as the body's
/// HostConfig (what the CLI would check itself before sending); the
/// daemon's status and message.
fn create_api(d: &Daemon, host_config: &str) -> (u16, String) {
    let (status, v) = create_api_at(d, "1.41", host_config);
    (status, v["message"].as_str().unwrap_or_default().to_owned())
}

/// [`create_api`] at API version `version`; the status and the JSON answer.
fn create_api_at(d: &Daemon, version: &str, host_config: &str) -> (u16, serde_json::Value) {
    let body = format!(r#"{{"Image":"bb","Cmd":["true"],"HostConfig":{host_config}}}"#);
    let mut s = UnixStream::connect(d.sock()).unwrap();
    let req = format!(
        "POST /v{version}/containers/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body.trim()).unwrap_or_default())
}

/// The API refuses `host_config` with a 400 saying `msg`.
fn refused_api(d: &Daemon, host_config: &str, msg: &str) {
    let (status, got) = create_api(d, host_config);
    assert_eq!((status, got.as_str()), (400, msg), "{host_config}");
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.ok(&["inspect", "--format", format, name]).trim().to_string()
}

/// The `/proc/mounts` line of `path` inside a container with `opts`.
fn mount_line(d: &Daemon, opts: &[&str], path: &str) -> String {
    run(d, opts, &format!("grep ' {path} ' /proc/mounts || echo none"))
}

#[test]
fn tmpfs_and_shm() {
    let d = daemon("{}");
    // dockerd's defaults: noexec,nosuid,nodev; the size as given.
    let line = mount_line(&d, &["--tmpfs", "/t1:size=3m"], "/t1");
    assert!(line.starts_with("tmpfs /t1 tmpfs rw,nosuid,nodev,noexec,"), "{line}");
    assert!(line.contains("size=3072k"), "{line}");
    // An option undoes a default; mode is applied.
    let line = mount_line(&d, &["--tmpfs", "/t2:exec,mode=1770"], "/t2");
    assert!(line.contains("nosuid,nodev,") && !line.contains("noexec") && line.contains("mode=1770"), "{line}");
    assert_eq!(run(&d, &["--tmpfs", "/t3"], "echo x > /t3/f && cat /t3/f"), "x");
    // /dev/shm: 64 MiB by default, --shm-size otherwise; a --tmpfs there replaces it.
    assert!(mount_line(&d, &[], "/dev/shm").contains("size=65536k"), "{}", mount_line(&d, &[], "/dev/shm"));
    assert!(mount_line(&d, &["--shm-size", "16m"], "/dev/shm").contains("size=16384k"));
    let line = mount_line(&d, &["--tmpfs", "/dev/shm:size=1m"], "/dev/shm");
    assert!(line.contains("size=1024k"), "{line}");

    d.ok(&["create", "--name", "tmp1", "--tmpfs", "/t1:size=3m", "--shm-size", "8m", "bb", "true"]);
    assert_eq!(inspect(&d, "tmp1", "{{json .HostConfig.Tmpfs}} {{.HostConfig.ShmSize}}"), r#"{"/t1":"size=3m"} 8388608"#);
    d.ok(&["create", "--name", "tmp0", "bb", "true"]);
    assert_eq!(inspect(&d, "tmp0", "{{.HostConfig.ShmSize}}"), "67108864");

    refused(&d, &["--tmpfs", "/t:bogus"], "invalid tmpfs option [\"bogus\"]");
    refused(&d, &["--tmpfs", "/:size=1m"], "invalid specification: destination can't be '/'");
    refused(&d, &["--tmpfs", "/x", "-v", "/tmp:/x"], "Duplicate mount point: /x");
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().display().to_string()
}

#[test]
fn pid_ipc_uts_and_cgroup_namespaces() {
    let d = daemon("{}");
    // PID: private (the command is PID 1), the host's, another container's.
    assert_eq!(run(&d, &[], "echo $$"), "1");
    assert_eq!(run(&d, &["--pid", "host"], "readlink /proc/self/ns/pid"), host_ns("pid"));
    d.ok(&["run", "-d", "--name", "donor", "--network", "none", "--ipc", "shareable", "bb", "sh", "-c", "echo shared > /dev/shm/f; exec sleep 600"]);
    assert_eq!(run(&d, &["--pid", "container:donor"], "cat /proc/1/cmdline | tr '\\0' ' '"), "sleep 600");
    assert_eq!(inspect(&d, "donor", "{{.HostConfig.IpcMode}}/{{.HostConfig.PidMode}}"), "shareable/");

    // IPC: a container joining a shareable one shares its namespace and /dev/shm.
    let donor_ipc = d.ok(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]).trim().to_string();
    assert!(berth_test_support::eventually(std::time::Duration::from_secs(5), || d
        .ok(&["exec", "donor", "cat", "/dev/shm/f"])
        .trim()
        == "shared"));
    assert_eq!(run(&d, &["--ipc", "container:donor"], "readlink /proc/self/ns/ipc; cat /dev/shm/f"), format!("{donor_ipc}\nshared"));
    assert_ne!(run(&d, &[], "readlink /proc/self/ns/ipc"), donor_ipc);
    assert_eq!(run(&d, &["--ipc", "host"], "readlink /proc/self/ns/ipc"), host_ns("ipc"));
    assert_eq!(mount_line(&d, &["--ipc", "none"], "/dev/shm"), "none");
    d.ok(&["run", "-d", "--name", "private", "--network", "none", "bb", "sleep", "600"]);
    let o = d.docker(&["run", "--rm", "--network", "none", "--ipc", "container:private", "bb", "true"]);
    assert!(!o.status.success() && text(&o).contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"), "{}", text(&o));
    d.ok(&["create", "--name", "stopped", "--network", "none", "bb", "true"]);
    let o = d.docker(&["run", "--rm", "--network", "none", "--pid", "container:stopped", "bb", "true"]);
    assert!(!o.status.success() && text(&o).contains("container ") && text(&o).contains(" is not running"), "{}", text(&o));
    d.ok(&["create", "--name", "defaults", "bb", "true"]);
    assert_eq!(inspect(&d, "defaults", "{{.HostConfig.IpcMode}}"), "private");
    // Older clients get dockerd's defaults of their version.
    let (status, v) = create_api_at(&d, "1.39", "{}");
    assert_eq!(status, 201, "{v}");
    assert_eq!(inspect(&d, v["Id"].as_str().unwrap(), "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}}"), "shareable host");
    // The donor's /dev/shm is berth's tmpfs until it stops.
    let donor_id = inspect(&d, "donor", "{{.Id}}");
    let shm = |mounts: &str| mounts.lines().any(|l| l.contains(&donor_id) && l.contains("/shm ") && l.contains(" - tmpfs shm "));
    assert!(shm(&std::fs::read_to_string("/proc/self/mountinfo").unwrap()), "no shm mount for the shareable donor");
    d.ok(&["rm", "-f", "donor"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!shm(&mounts), "a shm mount left behind:\n{mounts}");

    // UTS: the host's name.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    assert_eq!(run(&d, &["--uts", "host"], "hostname"), host);
    assert_ne!(run(&d, &[], "hostname"), host);
    refused(&d, &["--uts", "host", "--hostname", "x"], "conflicting options: hostname and the UTS mode");

    // cgroup namespace: dockerd's default is the host's on v1, private on v2.
    let layout = Cgroups::detect(None).unwrap().layout();
    assert_ne!(run(&d, &["--cgroupns", "private"], "readlink /proc/self/ns/cgroup"), host_ns("cgroup"));
    assert_eq!(run(&d, &["--cgroupns", "host"], "readlink /proc/self/ns/cgroup"), host_ns("cgroup"));
    let default_private = run(&d, &[], "readlink /proc/self/ns/cgroup") != host_ns("cgroup");
    assert_eq!(default_private, layout == Layout::Unified, "{layout:?}");
    assert_eq!(inspect(&d, "defaults", "{{.HostConfig.CgroupnsMode}}"), if layout == Layout::Unified { "private" } else { "host" });

    refused_api(&d, r#"{"PidMode":"bogus"}"#, "invalid PID mode: bogus");
    refused_api(&d, r#"{"PidMode":"container:"}"#, "invalid PID mode: container:");
    refused_api(&d, r#"{"IpcMode":"bogus"}"#, "invalid IPC mode: bogus");
}

#[test]
fn sysctls_and_ulimits() {
    let d = daemon("{}");
    assert_eq!(run(&d, &["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1000"], "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni"), "1\n1000");
    refused_api(&d, r#"{"Sysctls":{"vm.swappiness":"1"}}"#, "sysctl \"vm.swappiness\" is not in a separate kernel namespace");
    refused_api(&d, r#"{"Sysctls":{"kernel.hostname":"x"}}"#, "sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field");
    let o = d.docker(&["create", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "bb", "true"]);
    assert!(!o.status.success() && text(&o).contains("is not allowed in the hosts network namespace"), "{}", text(&o));
    refused(&d, &["--ipc", "host", "--sysctl", "kernel.shmmni=1000"], "is not allowed in the hosts ipc namespace");

    assert_eq!(run(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn"), "100\n200");
    // Above the daemon's own hard limit: refused unless it can raise it.
    let mut own = libc_rlimit();
    own.1 += 1;
    let want = format!("nofile=100:{}", own.1);
    let o = d.docker(&["run", "--rm", "--network", "none", "--ulimit", &want, "bb", "sh", "-c", "ulimit -Hn"]);
    if has_cap_sys_resource() {
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), own.1.to_string(), "{}", text(&o));
    } else {
        let e = text(&o);
        assert!(!o.status.success() && e.contains(&format!("above the daemon's own hard limit {}", own.1 - 1)) && e.contains("CAP_SYS_RESOURCE"), "{e}");
    }
    refused(&d, &["--ulimit", "nofile=300:200"], "ulimit soft limit must be less than or equal to hard limit");
}

/// The hard `RLIMIT_NOFILE` of this process (the daemon inherits it).
fn libc_rlimit() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/limits").unwrap();
    let l = s.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let f: Vec<&str> = l.split_whitespace().collect();
    (f[3].parse().unwrap(), f[4].parse().unwrap())
}

fn has_cap_sys_resource() -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = s.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim().to_string();
    u64::from_str_radix(&eff, 16).unwrap() & (1 << 24) != 0
}

/// A cgroup file as the container sees it (v1: its controller's directory).
fn cg(d: &Daemon, opts: &[&str], files: &[&str]) -> String {
    run(d, opts, &format!("cat {}", files.join(" ")))
}

#[test]
fn memory_cpuset_and_realtime_limits() {
    let d = daemon("{}");
    let layout = Cgroups::detect(None).unwrap().layout();
    let opts = ["--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m"];
    if layout == Layout::Unified {
        assert_eq!(cg(&d, &opts, &["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.swap.max", "/sys/fs/cgroup/memory.low"]), "67108864\n67108864\n33554432");
        refused(&d, &["--memory-swappiness", "40"], "MemorySwappiness");
    } else {
        let m = "/sys/fs/cgroup/memory/memory.";
        let files = [format!("{m}limit_in_bytes"), format!("{m}memsw.limit_in_bytes"), format!("{m}soft_limit_in_bytes"), format!("{m}swappiness")];
        let mut o = opts.to_vec();
        o.extend_from_slice(&["--memory-swappiness", "40", "--oom-kill-disable"]);
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        assert_eq!(cg(&d, &o, &files), "67108864\n134217728\n33554432\n40");
        assert!(run(&d, &o, &format!("cat {m}oom_control")).contains("oom_kill_disable 1"));
        // dockerd's default swap limit: twice the memory limit.
        assert_eq!(cg(&d, &["--memory", "64m"], &[&format!("{m}memsw.limit_in_bytes")]), "134217728");
        let cpus = std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus").unwrap().trim().to_string();
        assert_eq!(cg(&d, &["--cpuset-cpus", "0", "--cpuset-mems", "0"], &["/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset/cpuset.mems"]), "0\n0");
        refused(&d, &["--cpuset-cpus", "0-100"], &format!("Requested CPUs are not available - requested 0-100, available: {cpus}"));
    }
    d.ok(&["create", "--name", "mem", "--memory", "64m", "--memory-swap", "128m", "--memory-swappiness", "40", "--cpuset-cpus", "0", "bb", "true"]);
    assert_eq!(
        inspect(&d, "mem", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.CpusetCpus}}"),
        "67108864 134217728 40 0"
    );
    refused(&d, &["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit, see usage");
    refused_api(&d, r#"{"MemorySwappiness":101}"#, "Invalid value: 101, valid memory swappiness range is 0-100");
    refused_api(&d, r#"{"MemorySwap":104857600}"#, "You should always set the Memory limit when using Memoryswap limit, see usage");
    refused_api(&d, r#"{"ShmSize":-1}"#, "SHM size can not be less than 0");
    refused_api(&d, r#"{"UTSMode":"bogus"}"#, "invalid UTS mode: bogus");
    refused_api(&d, r#"{"CgroupnsMode":"bogus"}"#, "invalid cgroup namespace mode: bogus");
    refused_api(&d, r#"{"Ulimits":[{"Name":"bogus","Soft":1,"Hard":1}]}"#, "invalid ulimit type: bogus");
    refused(&d, &["--memory-reservation", "1m"], "Minimum memory reservation allowed is 6MB");
    refused(&d, &["--cpuset-cpus", "0-x"], "Invalid value 0-x for cpuset cpus");

    // Real-time CPU: accepted where the kernel has it (as dockerd), and
    // given to the runtime, which needs the daemon's cgroup to have
    // real-time time to hand out.
    refused(&d, &["--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"], "cpu-rt-runtime cannot be higher than cpu-rt-period");
    let rt = Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists();
    let o = d.docker(&["create", "--name", "rtc", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "500", "bb", "true"]);
    if rt {
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(inspect(&d, "rtc", "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}"), "1000 500");
        // berth's cgroup has no real-time time (as dockerd's without its
        // cpu-rt-runtime option): the start says so.
        let parent = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/{}/cpu.rt_runtime_us", "berth")).unwrap_or_default();
        let o = d.docker(&["start", "-a", "rtc"]);
        if parent.trim().parse::<i64>().unwrap_or(0) < 500 {
            assert!(!o.status.success() && text(&o).contains("CpuRealtimeRuntime 500: the daemon's cgroup has"), "{}", text(&o));
        } else {
            assert!(o.status.success(), "{}", text(&o));
        }
    } else {
        assert!(text(&o).contains("Your kernel does not support cgroup cpu real-time"), "{}", text(&o));
    }

    // Isolation: "default" only.
    d.ok(&["create", "--name", "iso", "--isolation", "default", "bb", "true"]);
    assert_eq!(inspect(&d, "iso", "{{.HostConfig.Isolation}}"), "default");
    refused(&d, &["--isolation", "hyperv"], "Invalid isolation: \"hyperv\" - linux only supports 'default'");
}

#[test]
fn init_runs_tini_as_pid_1() {
    let d = daemon("{}");
    assert!(Path::new("/usr/bin/tini-static").exists(), "install Debian's tini package (scripts/setup does)");
    assert_eq!(run(&d, &["--init"], "cat /proc/1/cmdline | tr '\\0' ' '"), "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '");
    // The command is not PID 1 and reaps nothing itself: tini does.
    assert_ne!(run(&d, &["--init"], "echo $$"), "1");
    d.ok(&["create", "--name", "withinit", "--init", "bb", "true"]);
    assert_eq!(inspect(&d, "withinit", "{{.HostConfig.Init}}"), "true");
    // The binary is read-only in the container.
    let o = d.docker(&["run", "--rm", "--network", "none", "--init", "bb", "sh", "-c", "echo x > /sbin/docker-init"]);
    assert!(!o.status.success(), "{}", text(&o));
    drop(d);

    // daemon.json: init for every container unless it says otherwise.
    let d = daemon(r#"{"init": true}"#);
    assert!(run(&d, &[], "cat /proc/1/cmdline").starts_with("/sbin/docker-init"));
    assert_eq!(run(&d, &["--init=false"], "echo $$"), "1");
    drop(d);
    // A missing init binary is refused, saying what to do.
    let d = daemon(r#"{"init-path": "/nonexistent/tini"}"#);
    refused(&d, &["--init"], "Init: the init binary /nonexistent/tini is missing: fix init-path in daemon.json");
}

#[test]
fn update_changes_a_running_containers_cgroup() {
    let d = daemon("{}");
    let layout = Cgroups::detect(None).unwrap().layout();
    d.ok(&["run", "-d", "--name", "upd", "--network", "none", "--memory", "400m", "--pids-limit", "100", "bb", "sleep", "600"]);
    d.ok(&["update", "--memory", "300m", "--pids-limit", "50", "--cpu-shares", "512", "--restart", "on-failure:3", "upd"]);
    let (mem, pids, shares) = if layout == Layout::Unified {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.weight")
    } else {
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares")
    };
    let got = d.ok(&["exec", "upd", "cat", mem, pids, shares]);
    let want_shares = if layout == Layout::Unified { "20" } else { "512" };
    assert_eq!(got.trim(), format!("314572800\n50\n{want_shares}"));
    assert_eq!(
        inspect(&d, "upd", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"),
        "314572800 50 512 on-failure:3"
    );
    // Back to unlimited pids.
    d.ok(&["update", "--pids-limit", "-1", "upd"]);
    assert_eq!(d.ok(&["exec", "upd", "cat", pids]).trim(), "max");

    // dockerd's rules.
    d.ok(&["run", "-d", "--name", "nolimit", "--network", "none", "bb", "sleep", "600"]);
    let o = d.docker(&["update", "--memory", "300m", "nolimit"]);
    assert!(text(&o).contains("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"), "{}", text(&o));
    d.ok(&["update", "--memory", "300m", "--memory-swap", "-1", "nolimit"]);
    assert_eq!(d.ok(&["exec", "nolimit", "cat", mem]).trim(), "314572800");
    d.ok(&["create", "--name", "auto", "--rm", "bb", "true"]);
    let o = d.docker(&["update", "--restart", "always", "auto"]);
    assert!(text(&o).contains("Restart policy cannot be updated because AutoRemove is enabled for the container"), "{}", text(&o));
    let o = d.docker(&["update", "--blkio-weight", "300", "upd"]);
    assert!(text(&o).contains("berth does not support updating BlkioWeight yet"), "{}", text(&o));
    // A stopped container: the record changes, the next start applies it.
    d.ok(&["create", "--name", "later", "--network", "none", "--memory", "100m", "bb", "sh", "-c", &format!("cat {mem}")]);
    d.ok(&["update", "--memory", "64m", "later"]);
    assert_eq!(d.ok(&["start", "-a", "later"]).trim(), "67108864");
}
