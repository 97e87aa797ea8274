//! Limits on what clients reach in a real `berth daemon`: systemd socket
//! activation (`fd://`) takes only listening unix stream sockets (anything
//! else is refused at start, naming the descriptor) and no child process
//! inherits the socket; metrics labels stay bounded.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::BERTH;

/// `berth daemon -H fd://` with `fd` as descriptor 3 and `LISTEN_FDS=1`,
/// `LISTEN_PID` = the daemon's own pid (set by the shell it execs from).
fn activated_daemon(dir: &std::path::Path, fd: RawFd) -> Child {
    std::fs::write(dir.join("daemon.json"), "{}").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"export LISTEN_PID=$$; exec "$0" "$@""#)
        .arg(BERTH)
        .args(["daemon", "-H", "fd://", "--config-file"])
        .arg(dir.join("daemon.json"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .env("LISTEN_FDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap());
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // Already descriptor 3: only let it survive exec.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// Waits up to 30 s for the daemon to exit; kills it if it does not.
fn exit_code(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn fd_activation_refuses_sockets_that_are_not_unix_stream() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for (fd, what) in [(udp.as_raw_fd(), "an IPv4 UDP socket"), (tcp.as_raw_fd(), "an IPv4 TCP socket")] {
        let dir = tempfile::Builder::new().prefix("bfd").tempdir().unwrap();
        let mut child = activated_daemon(dir.path(), fd);
        let code = exit_code(&mut child);
        let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
        assert_eq!(code, Some(1), "berth must refuse {what} at start; log:\n{log}");
        assert!(log.contains(&format!("file descriptor 3 passed by systemd is {what}")), "names the fd and what it is: {log}");
        assert!(!dir.path().join("data/containerd").exists(), "refused before starting containerd");
    }
}

#[test]
fn fd_activation_serves_a_unix_socket_that_no_child_inherits() {
    let dir = tempfile::Builder::new().prefix("bfd").tempdir().unwrap();
    let sock = dir.path().join("act.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut child = activated_daemon(dir.path(), listener.as_raw_fd());
    let host = format!("unix://{}", sock.display());
    let served = common::eventually(Duration::from_secs(30), || {
        Command::new("docker").args(["-H", &host, "version"]).output().map(|o| o.status.success()).unwrap_or(false)
    });
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    // The socket's inode, as /proc/<pid>/fd links name it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(listener.as_raw_fd(), &mut st) }, 0);
    let link = format!("socket:[{}]", st.st_ino);
    let holders = holders_below(child.id(), &link);
    unsafe { common::libc_kill(child.id() as i32, 15) };
    let code = exit_code(&mut child);
    assert!(served, "berth did not serve on the activated socket; log:\n{log}");
    assert_eq!(holders, vec![child.id()], "only berth holds the activated socket (not containerd)");
    assert_eq!(code, Some(0));
    assert!(sock.exists(), "berth leaves systemd's socket file alone");
}

/// The processes in the tree under `pid` (itself included) holding an fd that links to `link`.
fn holders_below(pid: u32, link: &str) -> Vec<u32> {
    let mut todo = vec![pid];
    let mut found = Vec::new();
    while let Some(p) = todo.pop() {
        let holds = std::fs::read_dir(format!("/proc/{p}/fd"))
            .map(|d| d.flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == link)))
            .unwrap_or(false);
        if holds {
            found.push(p);
        }
        for task in std::fs::read_dir(format!("/proc/{p}/task")).into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    found
}

/// One request over the API socket (`Connection: close`); returns the status.
fn request(d: &common::Daemon, method: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn distinct_paths_do_not_make_metric_series() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = common::Daemon::start(&format!(r#"{{"metrics-addr":"{port}"}}"#));
    for i in 0..300 {
        assert_eq!(request(&d, "GET", &format!("/v1.41/containers/nothere{i}/json"), ""), 404);
        assert_eq!(request(&d, "GET", &format!("/probe/{i}/x"), ""), 404);
    }
    let m = scrape(port);
    let series: Vec<&str> = m.lines().filter(|l| l.starts_with("berth_api_requests_total{")).collect();
    assert!(series.contains(&"berth_api_requests_total{route=\"/containers/{id}/json\",status=\"404\"} 300"), "{series:#?}");
    assert!(series.contains(&"berth_api_requests_total{route=\"unmatched\",status=\"404\"} 300"), "{series:#?}");
    assert!(series.len() < 10, "one series per route and status, not per path: {series:#?}");
}

/// One request over the API socket; returns the status and the body.
fn request_body(d: &common::Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.sock()).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, resp.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default())
}

#[test]
fn runtime_names_from_the_api_keep_the_configured_charset() {
    let d = common::Daemon::start("{}");
    d.import_busybox("bb");
    // containerd-shim-runc-v2 is on PATH, and only the last two parts of an
    // implicit shim name pick the binary.
    for runtime in ["x\\ninjected log line.io.containerd.runc.v2".to_string(), format!("{}.io.containerd.runc.v2", "a".repeat(5000))] {
        let body = format!(r#"{{"Image":"bb","Cmd":["true"],"HostConfig":{{"Runtime":"{runtime}"}}}}"#);
        let (status, msg) = request_body(&d, "POST", "/v1.41/containers/create", &body);
        assert_eq!(status, 400, "{msg}");
        assert!(msg.contains("unknown or invalid runtime name"), "{msg}");
        assert!(msg.len() < 400, "the message does not echo a huge name: {} bytes", msg.len());
    }
    assert!(!d.log().contains("injected log line"), "{}", d.log());
    assert_eq!(d.ok(&["ps", "-aq"]), "", "nothing was created");
    // An implicit shim name in the charset still works (resolved off the
    // async threads).
    let id = d.ok(&["create", "--runtime", "io.containerd.runc.v1", "bb", "true"]);
    assert!(!id.trim().is_empty());
}
