//! No request can stall or kill the daemon (issue #12): a long stop does
//! not block kill or rm -f; hostile /etc/passwd files in a container; an
//! attached client that never reads; attach requests that go away.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{text, Daemon};

/// Waits up to `within` for `child` to exit; kills it (and fails) if not.
fn exits_within(child: &mut Child, within: Duration, what: &str, d: &Daemon) -> std::process::Output {
    let done = common::eventually(within, || child.try_wait().unwrap().is_some());
    if !done {
        let _ = child.kill();
    }
    let out = std::process::Output { status: child.wait().unwrap(), stdout: read_all(child.stdout.take()), stderr: read_all(child.stderr.take()) };
    assert!(done, "{what} did not return within {within:?}\n--- daemon log ---\n{}", common::tail(&d.log()));
    out
}

fn read_all(r: Option<impl std::io::Read>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut v);
    }
    v
}

/// Follows the container's log until a line equals `line`.
fn wait_for_log_line(d: &Daemon, name: &str, line: &str) {
    let mut logs = d.docker_cmd(&["logs", "-f", name]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let found = BufReader::new(logs.stdout.take().unwrap()).lines().map_while(Result::ok).any(|l| l == line);
    let _ = logs.kill();
    let _ = logs.wait();
    assert!(found, "the container never logged {line:?}");
}

/// `docker stop -t 600` of a container that ignores SIGTERM, in the
/// background; returns once the container got the SIGTERM.
fn stop_in_background(d: &Daemon, name: &str) -> Child {
    // The trap runs (and prints) but does not exit: SIGTERM is ignored.
    d.ok(&["run", "-d", "--name", name, "bb", "sh", "-c", "trap 'echo got-term' TERM; echo ready; while true; do sleep 1; done"]);
    wait_for_log_line(d, name, "ready");
    let stop = d.docker_cmd(&["stop", "-t", "600", name]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_log_line(d, name, "got-term");
    stop
}

/// As under dockerd: a kill or rm -f during a stop's grace period acts at
/// once, and the stop returns (successfully) when the container exits.
#[test]
fn a_long_stop_does_not_block_kill_or_rm() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");

    let mut stop = stop_in_background(&d, "kk");
    let mut kill = d.docker_cmd(&["kill", "kk"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let o = exits_within(&mut kill, Duration::from_secs(30), "docker kill during docker stop -t 600", &d);
    assert!(o.status.success(), "{}", text(&o));
    let o = exits_within(&mut stop, Duration::from_secs(30), "docker stop after docker kill", &d);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kk"]), "exited 137\n");

    let mut stop = stop_in_background(&d, "rr");
    let mut rm = d.docker_cmd(&["rm", "-f", "rr"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let o = exits_within(&mut rm, Duration::from_secs(30), "docker rm -f during docker stop -t 600", &d);
    assert!(o.status.success(), "{}", text(&o));
    let o = exits_within(&mut stop, Duration::from_secs(30), "docker stop after docker rm -f", &d);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "name=^rr$"]), "");

    // A stop that is not interrupted still ends with SIGKILL after its timeout.
    d.ok(&["run", "-d", "--name", "ss", "bb", "sh", "-c", "trap '' TERM; while true; do sleep 1; done"]);
    d.ok(&["stop", "-t", "1", "ss"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "ss"]), "exited 137\n");
}
