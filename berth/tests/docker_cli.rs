//! The acceptance tests of the Docker API: a real berth daemon with its
//! managed containerd, driven by the installed docker CLI (and a raw HTTP
//! client for malformed input).

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;

use common::{text, Daemon};

#[test]
fn run_exit_codes_stdin_and_runtimes() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");

    let o = d.docker(&["run", "--rm", "bb", "echo", "hi"]);
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()), (Some(0), "hi\n"), "{}", text(&o));
    assert_eq!(d.ok(&["ps", "-aq"]), "", "--rm removed the container");

    let o = d.docker(&["run", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");

    let o = d.docker(&["run", "--runtime", "nope", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown or invalid runtime name: nope"), "{}", text(&o));

    let o = d.docker_in(&["run", "-i", "--rm", "bb", "cat"], b"data\nmore\n");
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()), (Some(0), "data\nmore\n"), "{}", text(&o));

    assert_eq!(d.ok(&["run", "-t", "--rm", "bb", "echo", "hi"]), "hi\r\n", "TTY mode: raw stream, CRLF from the pty");

    let o = d.docker(&["run", "--rm", "bb", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));

    // A path runtime from the config, through a wrapper with args.
    d.write_config(r#"{"runtimes":{"dbg":{"path":"runc","runtimeArgs":["--debug"]}}}"#);
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.docker(&["run", "--name", "ww", "--runtime", "dbg", "bb", "echo", "wrapped"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "wrapped\n", "{}", text(&o));
    assert_eq!(d.ok(&["inspect", "--format", "{{.HostConfig.Runtime}}", "ww"]), "dbg\n");
    let pinned = d.ok(&["inspect", "--format", "{{json .BerthRuntime}}", "ww"]);
    assert!(pinned.contains("\"Args\":[\"--debug\"]") && pinned.contains("\"Wrapper\":") && pinned.contains(&format!("\"Binary\":{}", serde_json::json!(berth_test_support::runc()))), "{pinned}");
    let info = d.ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(info.contains("\"dbg\"") && info.contains("\"runtimeArgs\":[\"--debug\"]"), "{info}");
}

#[test]
fn lifecycle_commands() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let id = d.ok(&["run", "-d", "--name", "web", "bb", "sh", "-c", "trap 'exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(d.ok(&["inspect", "--format", "{{.HostConfig.Runtime}} {{.State.Status}}", "web"]), "runc running\n");
    assert!(d.ok(&["ps", "--filter", "name=web", "--format", "{{.Names}} {{.Status}}"]).starts_with("web Up"));
    assert_eq!(d.ok(&["exec", "web", "echo", "from-exec"]), "from-exec\n");
    assert_eq!(d.docker(&["exec", "web", "sh", "-c", "exit 4"]).status.code(), Some(4));
    // ExecIDs lists the execs that have not exited (as dockerd's does).
    assert_eq!(d.ok(&["inspect", "--format", "{{json .ExecIDs}}", "web"]), "null\n");
    d.ok(&["exec", "-d", "web", "sleep", "30"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{len .ExecIDs}}", "web"]), "1\n");
    let inv: serde_json::Value = serde_json::from_slice(&d.berth(&["runtimes", "--json"]).stdout).unwrap();
    let runc = inv["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == "runc").unwrap();
    assert_eq!(runc["containers_running"], 1, "{inv}");
    let top = d.ok(&["top", "web"]);
    assert!(top.contains("PID") && top.contains("sh -c"), "{top}");
    let stats = d.ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web"]);
    assert!(stats.starts_with("web "), "{stats}");
    assert_eq!(d.ok(&["exec", "-t", "web", "echo", "tty"]), "tty\r\n", "exec with a TTY");
    d.ok(&["pause", "web"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}}", "web"]), "paused\n");
    d.ok(&["unpause", "web"]);

    // logs -f follows until the container stops: once it has shown a line
    // written after it started, it is following.
    let logged = d.ok(&["logs", "web"]).lines().count();
    let mut follow = d.docker_cmd(&["logs", "-f", "web"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut out = String::new();
    while out.lines().count() <= logged + 1 {
        assert!(lines.read_line(&mut out).unwrap() > 0, "logs -f ended while the container runs: {out}");
    }
    d.ok(&["stop", "-t", "5", "web"]);
    lines.read_to_string(&mut out).unwrap();
    assert!(follow.wait().unwrap().success());
    assert!(out.starts_with("tick 0\ntick 1\n"), "{out}");
    assert_eq!(d.ok(&["wait", "web"]), "7\n", "the TERM trap's exit code");
    let tail = d.ok(&["logs", "--tail", "1", "web"]);
    assert_eq!(tail.lines().count(), 1);
    let ts = d.ok(&["logs", "-t", "--tail", "1", "web"]);
    assert!(ts.starts_with("20") && ts.contains("Z tick"), "{ts}");

    d.ok(&["rename", "web", "web2"]);
    d.ok(&["restart", "-t", "1", "web2"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Running}} {{.Name}}", "web2"]), "true /web2\n");
    d.ok(&["kill", "-s", "KILL", "web2"]);
    assert_eq!(d.ok(&["wait", "web2"]), "137\n");
    assert!(d.ok(&["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]).contains("web2"));
    assert!(!d.ok(&["ps", "--format", "{{.Names}}"]).contains("web2"));
    d.ok(&["start", "web2"]);
    d.ok(&["rm", "-f", "web2"]);
    let o = d.docker(&["inspect", "web2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such object: web2"), "{}", text(&o));
    // Removing a running container without force is refused.
    d.ok(&["run", "-d", "--name", "rr", "bb", "sleep", "100"]);
    let o = d.docker(&["rm", "rr"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("You cannot remove a running container"), "{}", text(&o));
    d.ok(&["rm", "-f", "rr"]);
    let _ = id;
}

#[test]
fn a_mebibyte_through_logs_and_attach() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 1 << 20);
    let o = d.docker(&["run", "--name", "big", "bb", "seq", "1", "200000"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stdout == expected.as_bytes(), "attach output differs ({} bytes, want {})", o.stdout.len(), expected.len());
    let logs = d.docker(&["logs", "big"]);
    assert!(logs.stdout == expected.as_bytes(), "logs output differs ({} bytes)", logs.stdout.len());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn info_events_and_metrics() {
    let port = free_port();
    let d = Daemon::start(&format!(r#"{{"runtimes":{{"crun":{{"path":"/usr/bin/crun"}}}},"metrics-addr":"{port}"}}"#));
    d.import_busybox("bb");
    let info = d.ok(&["info"]);
    assert!(info.contains("Runtimes:") && info.contains("crun") && info.contains("Default Runtime: runc"), "{info}");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
    d.ok(&["run", "--rm", "--name", "ev", "bb", "true"]);
    // The run has returned, so its events are in the history; `until` in the
    // future makes the CLI wait for it, one second from now.
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let ev = d.ok(&["events", "--since", &since.to_string(), "--until", &until.to_string(), "--filter", "container=ev"]);
    for action in ["create", "attach", "start", "die", "destroy"] {
        assert!(ev.contains(&format!("container {action}")), "missing {action}: {ev}");
    }
    assert!(ev.contains("runtime=runc"), "events carry the runtime: {ev}");

    // A refused start and a reload, then the metrics show all of it.
    let _ = d.docker(&["run", "--rm", "bb", "/nonexistent"]);
    assert!(d.berth(&["reload"]).status.success());
    let m = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    for needle in [
        "berth_container_starts_total{runtime=\"runc\"}",
        "berth_container_start_failures_total{runtime=\"runc\",reason=\"not-found\"} 1",
        "berth_container_start_seconds_bucket{le=",
        "berth_reloads_total{result=\"ok\"} 1",
        "berth_config_generation 2",
        "berth_api_requests_total{route=\"/containers/create\",status=\"201\"}",
        "berth_containerd_restarts 0",
        "berth_wrappers 0",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
}

/// A raw HTTP request over the socket; returns (status, body).
fn raw(d: &Daemon, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(d.sock()).unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn bad_input_gets_docker_shaped_errors() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create", b"{not json");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"message\":\"invalid JSON"), "{body}");
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create", br#"{"Image":"bb","Cmd":["true"],"HostConfig":{"Memory":"lots"}}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("Memory"), "names the field: {body}");
    let big = format!(r#"{{"Image":"bb","Cmd":["true"],"Labels":{{"x":"{}"}}}}"#, "a".repeat(2 << 20));
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create", big.as_bytes());
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("request body too large"), "{body}");
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create?name=a/b", br#"{"Image":"bb","Cmd":["true"]}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("Invalid container name (a/b)"), "{body}");
    let (st, body) = raw(&d, "GET", "/v1.41/containers/0123nothere/json", b"");
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such container: 0123nothere"), "{body}");
    // A field berth does not know is refused when set (it would be ignored),
    // accepted when it says "not set".
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create", br#"{"Image":"bb","Cmd":["true"],"SomeFutureField":{"x":1}}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("berth does not support SomeFutureField yet"), "{body}");
    let (st, body) = raw(&d, "POST", "/v1.41/containers/create", br#"{"Image":"bb","Cmd":["true"],"SomeFutureField":null,"HostConfig":{"Dns":[]}}"#);
    assert_eq!(st, 201, "{body}");
    let (st, body) = raw(&d, "GET", "/v1.41/swarm", b"");
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("\"message\""));
    // The daemon keeps serving.
    let (st, body) = raw(&d, "GET", "/_ping", b"");
    assert_eq!((st, body.as_str()), (200, "OK"));
    let o = d.docker(&["create", "--name", "xx", "bb", "true"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.docker(&["create", "--name", "xx", "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is already in use"), "{}", text(&o));
}

/// `-u` by name, number and group, resolved in the container's own
/// `/etc/passwd` and `/etc/group` as dockerd does; in execs too, through the
/// running container (which may have changed its files).
#[test]
fn users_resolve_in_the_container_files() {
    let d = Daemon::start("{}");
    // An image whose /etc has users and groups of its own.
    let root = d.path("uroot");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(d.path("ubase")).unwrap();
    let tar = common::busybox_tar(&d.path("ubase"));
    assert!(std::process::Command::new("tar").arg("-C").arg(&root).arg("-xf").arg(&tar).status().unwrap().success());
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1001::/home/app:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nwheel:x:10:root,app\nnogroup:x:65534:\napp:x:1001:\ndocker:x:999:app\n").unwrap();
    let utar = d.path("users.tar");
    assert!(std::process::Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&utar).arg(".").status().unwrap().success());
    d.ok(&["import", utar.to_str().unwrap(), "ub"]);

    let ids = |user: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(user);
        args.extend_from_slice(&["ub", "sh", "-c", "echo $(id -u) $(id -g) $(id -G)"]);
        d.ok(&args).trim().to_string()
    };
    assert_eq!(ids(&[]), "0 0 0 10", "root gets its supplementary groups, as under dockerd");
    assert_eq!(ids(&["-u", "app"]), "1000 1001 1001 10 999");
    assert_eq!(ids(&["-u", "1000"]), "1000 1001 1001 10 999", "a uid with an entry takes its gid");
    assert_eq!(ids(&["-u", "4242"]), "4242 0 0", "a uid without an entry gets gid 0");
    assert_eq!(ids(&["-u", "app:docker"]), "1000 999 999", "an explicit group, no supplementary ones");
    assert_eq!(ids(&["-u", "nobody:50"]), "65534 50 50");

    let o = d.docker(&["run", "--name", "ghost", "-u", "ghost", "ub", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unable to find user ghost: no matching entries in passwd file"), "{}", text(&o));
    d.ok(&["rm", "ghost"]);
    let o = d.docker(&["run", "--rm", "-u", "app:ghosts", "ub", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unable to find group ghosts: no matching entries in group file"), "{}", text(&o));
    let o = d.docker(&["create", "-u", "99999999999", "ub", "true"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("invalid user"), "{}", text(&o));

    // A second start of a stopped container resolves again (its own
    // filesystem, through containerd's mounts of it).
    d.ok(&["create", "--name", "again", "-u", "app", "ub", "id", "-u"]);
    assert_eq!(d.ok(&["start", "-a", "again"]), "1000\n");
    assert_eq!(d.ok(&["start", "-a", "again"]), "1000\n");
    d.ok(&["rm", "again"]);

    // execs: the container's user by default, or another, looked up in the
    // running container's files, including a user it added itself.
    d.ok(&["run", "-d", "--name", "svc", "-u", "app", "ub", "sleep", "60"]);
    assert_eq!(d.ok(&["exec", "svc", "id", "-u"]), "1000\n");
    assert_eq!(d.ok(&["exec", "-u", "nobody", "svc", "id", "-u"]), "65534\n");
    d.ok(&["exec", "-u", "root", "svc", "sh", "-c", "echo late:x:2000:2000::/:/bin/sh >> /etc/passwd"]);
    assert_eq!(d.ok(&["exec", "-u", "late", "svc", "id", "-u"]), "2000\n");
    // As under dockerd, a failed exec start is told in the stream, exit 126.
    let o = d.docker(&["exec", "-u", "ghost", "svc", "true"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unable to find user ghost: no matching entries in passwd file"), "{}", text(&o));
    let o = d.docker(&["exec", "svc", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/no/such/program"), "{}", text(&o));
    d.ok(&["rm", "-f", "svc"]);
}

/// `docker kill` (SIGKILL) answers once the container has exited, as
/// dockerd does: an inspect right after sees the exit (128 + 9); a paused
/// container dies too. Other signals answer at once.
#[test]
fn kill_answers_after_the_exit() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "k1", "bb", "sleep", "1000"]);
    d.ok(&["kill", "k1"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "k1"]), "exited 137 false\n");

    d.ok(&["run", "-d", "--name", "k2", "bb", "sleep", "1000"]);
    d.ok(&["pause", "k2"]);
    d.ok(&["kill", "k2"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "k2"]), "exited 137\n");

    d.ok(&["run", "-d", "--name", "k3", "bb", "sh", "-c", "trap 'echo got-hup' HUP; while true; do sleep 0.1; done"]);
    d.ok(&["kill", "-s", "HUP", "k3"]);
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Status}}", "k3"]), "running\n");
}

/// A container with a restart policy cannot be removed without -f,
/// running or between two runs (dockerd's messages).
#[test]
fn a_restarting_container_is_not_removed_without_force() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d.ok(&["run", "-d", "--name", "rs", "--restart", "always", "bb", "sh", "-c", "exit 3"]);
    for _ in 0..5 {
        let o = d.docker(&["rm", "rs"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("Stop the container before attempting removal or force remove"), "{}", text(&o));
        // Pacing only: the attempts land in different phases of the restart loop.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    d.ok(&["rm", "-f", "rs"]);
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "name=^rs$"]), "");
}
