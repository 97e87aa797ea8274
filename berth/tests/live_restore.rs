//! live-restore: containers keep running across a berth restart (SIGTERM or
//! SIGKILL); the next daemon re-attaches exit watching and log copying, and
//! records exits that happened while it was down.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn containers_survive_berth_restarts() {
    let mut d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "ticker", "bb", "sh", "-c", "trap 'exit 9' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"]);
    d.ok(&["run", "-d", "--name", "short", "bb", "sh", "-c", "sleep 2; exit 6"]);
    let pid = d.ok(&["inspect", "--format", "{{.State.Pid}}", "ticker"]);

    for signal in [9, 15] {
        d.stop(signal);
        // While berth is down the container keeps running (and printing).
        // The gap is part of what is tested (output made while no daemon
        // reads it); every assertion below holds whatever happens in it, so
        // it cannot make the test flaky, only test less if it were shorter.
        std::thread::sleep(Duration::from_millis(500));
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        assert!(alive, "container died with berth (signal {signal})");
        d.spawn();
        assert_eq!(d.ok(&["inspect", "--format", "{{.State.Running}} {{.State.Pid}}", "ticker"]), format!("true {}", pid));
        // Output produced after the restart reaches the log.
        let before = d.ok(&["logs", "ticker"]).lines().count();
        wait_until("new log lines", || d.ok(&["logs", "ticker"]).lines().count() > before + 3);
    }
    // "short" exited while berth was down (or after): its code is recorded.
    wait_until("short's exit", || d.ok(&["inspect", "--format", "{{.State.Status}}", "short"]) == "exited\n");
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "short"]), "6\n");
    // The re-attached container is fully manageable.
    assert_eq!(d.ok(&["exec", "ticker", "echo", "still-here"]), "still-here\n");
    d.ok(&["stop", "ticker"]);
    assert_eq!(d.ok(&["wait", "ticker"]), "9\n");
    let logs = d.ok(&["logs", "ticker"]);
    let nums: Vec<u64> = logs.lines().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).collect();
    assert!(nums.len() > 20, "{logs}");
    // No line lost or doubled across the restarts: ticks are consecutive.
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap or duplicate in the log around tick {}", w[0]);
    }
}

#[test]
fn removed_runtime_across_a_restart_never_strands_a_container() {
    let mut d = Daemon::start(r#"{"runtimes":{"dbg":{"path":"runc","runtimeArgs":["--debug"]}}}"#);
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "pinned", "--runtime", "dbg", "bb", "sleep", "300"]);
    let wrapper = d.ok(&["inspect", "--format", "{{.BerthRuntime.Wrapper}}", "pinned"]).trim().to_string();
    assert!(std::path::Path::new(&wrapper).exists());

    // berth goes down, the runtime is removed from the config, berth comes back.
    d.stop(15);
    d.write_config("{}");
    d.spawn();
    assert!(std::path::Path::new(&wrapper).exists(), "start-up GC kept the wrapper the container pins");
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Running}}", "pinned"]), "true\n");
    assert_eq!(d.ok(&["exec", "pinned", "echo", "ok"]), "ok\n");
    d.ok(&["logs", "pinned"]);
    // New containers with the removed name are refused with the list of valid names.
    let o = d.docker(&["run", "--rm", "--runtime", "dbg", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown or invalid runtime name: dbg; valid runtimes are: io.containerd.runc.v2, runc"));
    d.ok(&["kill", "pinned"]);
    assert_eq!(d.ok(&["wait", "pinned"]), "137\n");
    d.ok(&["rm", "pinned"]);
    // Nothing pins it now: the GC after the next reload removes it.
    assert!(d.berth(&["reload"]).status.success());
    assert!(common::eventually(std::time::Duration::from_secs(10), || !std::path::Path::new(&wrapper).exists()), "{wrapper} was not collected");
}

#[test]
fn a_dead_managed_containerd_is_restarted_and_berth_reconnects() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "survivor", "bb", "sh", "-c", "sleep 2; exit 4"]);
    let pid = std::fs::read_to_string(d.path("exec/containerd/containerd.pid")).expect("managed containerd pid file");
    let pid: i32 = pid.trim().parse().unwrap();
    unsafe { common::libc_kill(pid, 9) };
    // berth keeps serving; containerd comes back; the container's exit,
    // which happens after the restart, is seen through the new event stream.
    wait_until("containerd back", || d.docker(&["exec", "survivor", "true"]).status.success() || d.ok(&["inspect", "--format", "{{.State.Status}}", "survivor"]) == "exited\n");
    wait_until("the exit", || d.ok(&["inspect", "--format", "{{.State.Status}}", "survivor"]) == "exited\n");
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "survivor"]), "4\n");
    let new_pid = std::fs::read_to_string(d.path("exec/containerd/containerd.pid")).unwrap();
    assert_ne!(new_pid.trim(), pid.to_string(), "containerd was restarted");
    assert_eq!(d.ok(&["run", "--rm", "bb", "echo", "after"]), "after\n");
}

/// How many restarts the daemon's log shows for container `id`.
fn restarts_logged(d: &Daemon, id: &str) -> usize {
    d.log().lines().filter(|l| l.contains("restarting container (restart policy)") && l.contains(id)).count()
}

#[test]
fn restart_policies() {
    let d = Daemon::start(r#"{"runtimes":{"gone":{"path":"runc","runtimeArgs":["--debug"]}}}"#);
    d.import_busybox("bb");
    // on-failure:2 → two restarts, then it stays exited.
    d.ok(&["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "bb", "sh", "-c", "exit 3"]);
    wait_until("two restarts", || d.ok(&["inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "flaky"]) == "2 exited\n");
    // The exit is recorded and the policy decided under the container's
    // lock; a rename takes that lock, so once it returns the decision is
    // made, and a restart would have been logged.
    let flaky = d.ok(&["inspect", "--format", "{{.Id}}", "flaky"]).trim().to_string();
    d.ok(&["rename", "flaky", "flaky-done"]);
    assert_eq!(restarts_logged(&d, &flaky), 2, "{}", common::tail(&d.log()));
    assert_eq!(d.ok(&["inspect", "--format", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "flaky-done"]), "2 exited 3\n");
    // always → restarts after a clean exit; docker stop ends it.
    d.ok(&["run", "-d", "--name", "forever", "--restart", "always", "bb", "sh", "-c", "sleep 0.2"]);
    wait_until("a restart", || d.ok(&["inspect", "--format", "{{.RestartCount}}", "forever"]).trim().parse::<u32>().unwrap() >= 1);
    d.ok(&["stop", "-t", "1", "forever"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Running}}", "forever"]), "false\n");
    // A restart pending at the stop fires after its back-off delay (100 ms,
    // doubling with each restart): it must find the container stopped and
    // give up. Watch for longer than that delay.
    let count: u32 = d.ok(&["inspect", "--format", "{{.RestartCount}}", "forever"]).trim().parse().unwrap();
    let backoff = Duration::from_millis(100 << count.min(9));
    let restarted = common::eventually(backoff + Duration::from_millis(500), || d.ok(&["inspect", "--format", "{{.State.Running}}", "forever"]) != "false\n");
    assert!(!restarted, "a pending restart ran after docker stop");
    // A restart whose runtime vanished records the error and stops retrying.
    d.ok(&["run", "-d", "--name", "orphaned", "--runtime", "gone", "--restart", "always", "bb", "sh", "-c", "sleep 1"]);
    d.write_config("{}");
    assert!(d.berth(&["reload"]).status.success());
    wait_until("the failed restart", || d.ok(&["inspect", "--format", "{{.State.Error}}", "orphaned"]).contains("unknown or invalid runtime name: gone"));
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.Running}}", "orphaned"]), "exited false\n");
    assert!(d.log().contains("restart failed; not retrying"), "a clear log line");
}

#[test]
fn without_live_restore_shutdown_stops_containers() {
    let mut d = Daemon::start(r#"{"live-restore":false}"#);
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "svc", "bb", "sh", "-c", "trap 'exit 5' TERM; while true; do sleep 0.1; done"]);
    // Restart policies at berth start, as dockerd applies them: a stop by
    // berth's shutdown is not a user's stop.
    let looping = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"];
    let run = |name: &str, policy: &str| {
        let mut a = vec!["run", "-d", "--name", name, "--restart", policy, "bb"];
        a.extend_from_slice(&looping);
        d.ok(&a);
    };
    run("keep", "unless-stopped");
    run("user-stopped", "unless-stopped");
    run("always-stopped", "always");
    d.ok(&["stop", "user-stopped", "always-stopped"]);
    let pid = d.ok(&["inspect", "--format", "{{.State.Pid}}", "svc"]);
    d.stop(15);
    assert!(!std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(), "stopped with berth");
    d.spawn();
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "svc"]), "exited 5\n");
    let state = |name: &str| d.ok(&["inspect", "--format", "{{.State.Status}}", name]).trim().to_string();
    wait_until("unless-stopped and always containers started again", || state("keep") == "running" && state("always-stopped") == "running");
    assert_eq!(state("user-stopped"), "exited", "an unless-stopped container a user stopped stays stopped");
    assert!(d.log().contains("starting container at berth start (restart policy)"), "a log line per container");
    d.ok(&["rm", "-f", "keep", "always-stopped", "user-stopped", "svc"]);
}

/// A record that cannot be read (corrupt) is set aside, and the container it
/// describes is not taken for an orphan: its process keeps running and its
/// filesystem (with what it wrote) stays, and `docker info` says so.
#[test]
fn a_corrupt_record_keeps_its_container_and_data() {
    let mut d = Daemon::start("{}");
    d.import_busybox("bb");
    let id = d.ok(&["run", "-d", "--name", "precious", "bb", "sh", "-c", "echo kept > /data.txt; while true; do sleep 1; done"]).trim().to_string();
    wait_until("the container's file", || d.docker(&["exec", "precious", "cat", "/data.txt"]).stdout == b"kept\n");
    let pid = d.ok(&["inspect", "--format", "{{.State.Pid}}", "precious"]).trim().to_string();
    d.stop(15);
    std::fs::write(d.path("data/containers").join(&id).join("config.json"), b"{ not json").unwrap();
    d.spawn();

    // The process still runs, and the file it wrote is in its root.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container was killed as an orphan");
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/root/data.txt")).unwrap(), "kept\n");
    let info = d.ok(&["info", "--format", "{{json .Warnings}}"]);
    assert!(info.contains(&format!("container {id}: its record could not be loaded")), "{info}");
    assert!(d.log().contains("keeping the container and its filesystem"), "{}", common::tail(&d.log()));
    // A second start keeps it too (the record is still set aside).
    d.stop(15);
    d.spawn();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container was killed on the second start");
    // Clean up what the test made (berth no longer knows the container).
    unsafe { common::libc_kill(pid.parse().unwrap(), 9) };
}
