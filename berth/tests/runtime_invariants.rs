//! The runtime layer's promises, end to end through a real daemon: a
//! changed wrapper is restored before a container starts with it, and
//! every reload (API, `berth reload`, SIGHUP) tells the supervisor.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{text, Daemon};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The one wrapper of runtime `name` in the daemon's exec root.
fn wrapper_of(d: &Daemon, name: &str) -> PathBuf {
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(d.path("exec/runtimes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// The daemon events (type daemon) between `since` and now, one per line:
/// `action path found`.
fn daemon_events(d: &Daemon, since: u64) -> String {
    let until = (now_secs() + 1).to_string();
    d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until,
        "--filter",
        "type=daemon",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"path\"}} {{index .Actor.Attributes \"found\"}}",
    ])
}

#[test]
fn a_changed_or_removed_wrapper_is_restored_before_the_next_start() {
    let d = Daemon::start(r#"{"runtimes":{"dbg":{"path":"runc","runtimeArgs":["--debug"]}}}"#);
    d.import_busybox("bb");
    let wrapper = wrapper_of(&d, "dbg");
    let original = std::fs::read_to_string(&wrapper).unwrap();
    assert!(original.starts_with("#!/bin/sh\nexec '/") && original.contains("/runc' '--debug'"), "the probed absolute binary: {original}");
    let since = now_secs() - 1;

    // Rewritten in place (the mode stays 0700): without the check, the
    // next run failed with the script's exit status.
    std::fs::write(&wrapper, "#!/bin/sh\nexit 99\n").unwrap();
    let out = d.docker(&["run", "--rm", "--runtime", "dbg", "--network", "none", "bb", "echo", "fine"]);
    assert!(out.status.success(), "{}\n--- daemon log ---\n{}", text(&out), common::tail(&d.log()));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fine\n");
    assert_eq!(std::fs::read_to_string(&wrapper).unwrap(), original, "restored from the configuration");

    // Removed: written again.
    std::fs::remove_file(&wrapper).unwrap();
    d.ok(&["run", "--rm", "--runtime", "dbg", "--network", "none", "bb", "true"]);
    assert_eq!(std::fs::read_to_string(&wrapper).unwrap(), original);

    let ev = daemon_events(&d, since);
    let w = wrapper.display().to_string();
    assert!(ev.contains(&format!("wrapper-restored {w} modified")), "{ev}");
    assert!(ev.contains(&format!("wrapper-restored {w} missing")), "{ev}");
    assert!(!ev.contains("wrapper-dir-fixed"), "{ev}");

    // A reload that finds a changed wrapper restores it, with the same event.
    std::fs::write(&wrapper, "#!/bin/sh\nexit 98\n").unwrap();
    let since = now_secs() - 1;
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&wrapper).unwrap(), original);
    let ev = daemon_events(&d, since);
    assert!(ev.lines().any(|l| l.starts_with("reload ")), "{ev}");
    assert!(ev.contains(&format!("wrapper-restored {w} modified")), "{ev}");
    let log = d.log();
    assert!(log.lines().any(|l| l.contains("did not match its digest") && l.contains(&w)), "the log names the file:\n{}", common::tail(&log));
}

#[test]
fn every_reload_tells_the_supervisor() {
    let sock_dir = tempfile::tempdir().unwrap();
    let path = sock_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    // A bound on the wait only: every receive below is answered at once.
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let recv = || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let reloading = |m: String| {
        let usec: u64 = m
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("RELOADING=1 with MONOTONIC_USEC, got {m:?}"))
            .parse()
            .unwrap();
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid timespec for clock_gettime to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        assert!(usec <= ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000, "CLOCK_MONOTONIC, in the past");
    };
    let d = Daemon::start_with_env("{}", &[("NOTIFY_SOCKET", path.as_os_str())]);
    assert_eq!(recv(), "READY=1");

    // `berth reload` (POST /berth/v1/reload).
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "{}", text(&o));
    reloading(recv());
    assert_eq!(recv(), "READY=1\nSTATUS=configuration generation 2");

    // A refused reload ends with READY=1 too (the previous config stays).
    d.write_config("{,");
    assert!(!d.berth(&["reload"]).status.success());
    reloading(recv());
    assert_eq!(recv(), "READY=1\nSTATUS=configuration generation 2");

    // A dry run changes nothing and says nothing; SIGHUP still notifies.
    d.write_config("{}");
    assert!(d.berth(&["reload", "--dry-run"]).status.success());
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    reloading(recv());
    assert_eq!(recv(), "READY=1\nSTATUS=configuration generation 3");
}

/// One reload answer lists every problem: a drop-in with a JSON error does
/// not hide the missing default runtime or a changed restart-only key.
#[test]
fn a_refused_reload_lists_every_problem_at_once() {
    let d = Daemon::start("{}");
    std::fs::create_dir_all(d.path("runtimes.d")).unwrap();
    std::fs::write(d.path("runtimes.d/10-bad.json"), r#"{"x": {"path": "/bin/true",}}"#).unwrap();
    d.write_config(r#"{"default-runtime":"nope","containerd":"/run/elsewhere/containerd.sock"}"#);
    let o = d.berth(&["reload"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("3 problems"), "{err}");
    for needle in ["10-bad.json: invalid JSON", "specified default runtime 'nope' does not exist", "containerd changed from None to Some"] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
