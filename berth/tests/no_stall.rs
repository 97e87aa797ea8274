//! No request can stall or kill the daemon (issue #12): a long stop does
//! not block kill or rm -f; hostile /etc/passwd files in a container; an
//! attached client that never reads; attach requests that go away.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
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

/// A raw `GET /_ping` over the socket, with a deadline: the daemon answers.
fn ping(d: &Daemon) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200") && resp.ends_with("OK"), "/_ping: {resp:?}");
}

/// `docker exec` with a deadline; returns its output.
fn exec(d: &Daemon, args: &[&str]) -> std::process::Output {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    let mut child = d.docker_cmd(&full).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    exits_within(&mut child, Duration::from_secs(30), &format!("docker {full:?}"), d)
}

/// A container makes its /etc/passwd hostile, then `docker exec -u NAME`
/// must fail at once with the reason, and the daemon keeps answering. (The
/// host's /etc/passwd and /etc/shadow have a `daemon` entry; the
/// container's files do not.) Numeric users still work where the runtime
/// itself can cope: runc reads the file too, inside the container, and
/// hangs on a FIFO or fails on /dev/zero, whatever berth does.
#[test]
fn hostile_passwd_files_in_a_running_container() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let cases: [(&str, &str, &str, bool); 4] = [
        ("a FIFO", "busybox mkfifo /etc/passwd", "unable to find user daemon: /etc/passwd in the container is a FIFO, not a regular file", false),
        ("a link to /dev/zero", "busybox ln -s /dev/zero /etc/passwd", "/etc/passwd in the container is a character device, not a regular file", false),
        (
            "a link out to the host's passwd",
            "busybox ln -s ../../../../../../../../../../../../etc/passwd /etc/passwd",
            "/etc/passwd in the container: too many levels of symbolic links",
            true,
        ),
        (
            "a link out to the host's shadow",
            "busybox ln -s ../../../../../../../../../../../../etc/shadow /etc/passwd",
            "unable to find user daemon: no matching entries in passwd file",
            true,
        ),
    ];
    for (i, (what, make, message, numeric)) in cases.into_iter().enumerate() {
        let name = format!("pw{i}");
        d.ok(&["run", "-d", "--name", &name, "bb", "sh", "-c", &format!("busybox rm /etc/passwd && {make} && echo ready && exec sleep 1000")]);
        wait_for_log_line(&d, &name, "ready");

        let o = exec(&d, &["-u", "daemon", &name, "true"]);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success() && all.contains(message), "{what}: want {message:?}\n{}", text(&o));
        ping(&d);
        if numeric {
            // (Not `id`: it would read the hostile file itself.)
            let o = exec(&d, &["-u", "1234", &name, "cat", "/proc/self/status"]);
            assert!(String::from_utf8_lossy(&o.stdout).contains("\nUid:\t1234\t"), "{what}: numeric users still work: {}", text(&o));
        }
    }
}

/// At start, users resolve in the image's layers: an image whose /etc is a
/// link out of its root (resolved inside it: a loop) reads nothing of the
/// host's.
#[test]
fn an_image_linking_etc_out_of_its_root() {
    let d = Daemon::start("{}");
    let root = d.path("eroot");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(d.path("ebase")).unwrap();
    let tar = common::busybox_tar(&d.path("ebase"));
    assert!(Command::new("tar").arg("-C").arg(&root).arg("-xf").arg(&tar).status().unwrap().success());
    std::fs::remove_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../../../../etc", root.join("etc")).unwrap();
    let etar = d.path("etc-out.tar");
    assert!(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&etar).arg(".").status().unwrap().success());
    d.ok(&["import", etar.to_str().unwrap(), "eo"]);

    // (Such a container cannot run at all, its /etc being a loop; what
    // matters is that the user lookup fails on the loop rather than reading
    // the host's /etc/passwd.)
    let o = d.docker(&["run", "--rm", "-u", "daemon", "eo", "id", "-u"]);
    assert!(!o.status.success(), "{}", text(&o));
    let want = "unable to find user daemon: /etc/passwd in the container: too many levels of symbolic links";
    assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{}", text(&o));
}

/// Opens `POST /containers/NAME/attach` on a raw connection, upgraded as the
/// docker CLI does, and returns the stream once the 101 answer is read
/// (byte by byte: nothing of the output is consumed).
fn raw_attach(d: &Daemon, name: &str) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /v1.41/containers/{name}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "attach answer ended early: {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "attach: {:?}", String::from_utf8_lossy(&head));
    s
}

/// The highest `tick N` in `text`.
fn last_tick(text: &str) -> u64 {
    text.lines().filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok()).max().unwrap_or(0)
}

/// An attached client that stops reading holds the container's output (its
/// log, other attached clients) at most a few seconds: then it is
/// disconnected, and what it missed stays in `docker logs`. A client that
/// goes away is released.
#[test]
fn an_attached_client_that_never_reads_does_not_block_the_output() {
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    // About 5 MB/s in lines; the log is capped so the test's disk use is too.
    let script = "i=0; while :; do i=$((i+1)); echo tick $i; seq 1 20000; usleep 20000; done";
    d.ok(&["run", "-d", "--name", "noisy", "--log-opt", "max-size=4m", "--log-opt", "max-file=2", "bb", "sh", "-c", script]);
    // Not a follower waiting for the line "tick 2": at 5 MB/s with
    // max-size=4m a slow follower can have it rotated away and wait forever.
    assert!(
        common::eventually(Duration::from_secs(30), || last_tick(&d.ok(&["logs", "--tail", "3000", "noisy"])) >= 2),
        "the container never logged tick 2"
    );

    // A client that reads everything, counting ticks.
    let mut reader = d.docker_cmd(&["attach", "--no-stdin", "noisy"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let out = reader.stdout.take().unwrap();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = l.strip_prefix("tick ").and_then(|n| n.trim().parse::<u64>().ok()) {
                seen2.fetch_max(n, Ordering::Relaxed);
            }
        }
    });
    assert!(common::eventually(Duration::from_secs(20), || seen.load(Ordering::Relaxed) > 0), "the reading client got nothing");

    // A client that never reads, and one that goes away at once.
    let mut stalled = raw_attach(&d, "noisy");
    drop(raw_attach(&d, "noisy"));

    // Once its buffers are full the output stops (the reading client sees
    // nothing new for a second); without the fix, for good. It must go on:
    // in the log and for the reading client.
    let mut last = (seen.load(Ordering::Relaxed), std::time::Instant::now());
    let stopped = common::eventually(Duration::from_secs(30), || {
        let now = seen.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        last.1.elapsed() >= Duration::from_secs(1)
    });
    assert!(stopped, "the output never waited for the client that does not read");
    let (log_before, seen_before) = (last_tick(&d.ok(&["logs", "--tail", "3000", "noisy"])), seen.load(Ordering::Relaxed));
    let moved_on = common::eventually(Duration::from_secs(30), || {
        last_tick(&d.ok(&["logs", "--tail", "3000", "noisy"])) > log_before + 50 && seen.load(Ordering::Relaxed) > seen_before + 50
    });
    assert!(
        moved_on,
        "the output stopped behind a client that does not read: log at tick {log_before} -> {}, reader {seen_before} -> {}\n{}",
        last_tick(&d.ok(&["logs", "--tail", "3000", "noisy"])),
        seen.load(Ordering::Relaxed),
        common::tail(&d.log())
    );
    ping(&d);

    // The stalled client was disconnected: it reads what was buffered for
    // it, then the end of the stream.
    stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut sink = Vec::new();
    let end = stalled.read_to_end(&mut sink);
    assert!(end.is_ok(), "the stalled client is still connected after reading {} bytes: {end:?}", sink.len());
    assert!(d.log().contains("disconnected"), "the daemon log says why:\n{}", common::tail(&d.log()));

    d.ok(&["rm", "-f", "noisy"]);
    let _ = reader.wait();

    // A client attached to a container that is not running waits for its
    // next run; removing the container releases it.
    d.ok(&["create", "--name", "idle", "bb", "true"]);
    let mut waiting = raw_attach(&d, "idle");
    d.ok(&["rm", "idle"]);
    waiting.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    assert!(waiting.read_to_end(&mut rest).is_ok(), "an attach to a removed container is released");
}
