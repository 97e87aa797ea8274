//! Health checks through a real daemon (`docker run --health-*`): a
//! passing check makes the container healthy, a failing one unhealthy
//! after its retries, a probe that outlives its timeout is killed and
//! fails with dockerd's output, `--no-healthcheck` runs no probe, and the
//! settings dockerd refuses are refused with its messages; `docker commit`
//! keeps a check in the image, whose containers inherit it.

mod common;

use std::time::Duration;

use berth_test_support::eventually;
use common::{text, Daemon};

fn daemon() -> Daemon {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    d
}

/// `docker inspect -f FORMAT name`, trimmed.
fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", format, name]).trim().to_string()
}

fn health(d: &Daemon, name: &str) -> serde_json::Value {
    serde_json::from_str(&inspect(d, "{{json .State.Health}}", name)).unwrap()
}

/// `docker ps` Status of one container.
fn ps_status(d: &Daemon, name: &str) -> String {
    d.ok(&["ps", "--filter", &format!("name=^{name}$"), "--format", "{{.Status}}"]).trim().to_string()
}

/// The actions of the events so far that match `filters` (`key=value`).
fn actions(d: &Daemon, filters: &[&str]) -> Vec<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let until = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let mut a = vec!["events", "--since", "0", "--until", &until, "--format", "{{.Action}}"];
    for f in filters {
        a.extend_from_slice(&["--filter", f]);
    }
    d.ok(&a).lines().map(str::to_string).collect()
}

fn wait_status(d: &Daemon, name: &str, status: &str) {
    let mut last = serde_json::Value::Null;
    let reached = eventually(Duration::from_secs(20), || {
        last = health(d, name);
        last["Status"] == status
    });
    assert!(reached, "{name} never became {status}: {last}\n--- daemon log ---\n{}", common::tail(&d.log()));
}

#[test]
fn passing_failing_and_timed_out_checks() {
    let d = daemon();
    let run = |name: &str, opts: &[&str]| {
        let mut a = vec!["run", "-d", "--network", "none", "--name", name, "--health-interval", "200ms"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["bb", "sleep", "300"]);
        d.ok(&a);
    };
    run("ok", &["--health-cmd", "echo alive; busybox true"]);
    run("bad", &["--health-cmd", "echo dead; exit 3", "--health-retries", "2"]);
    run("slow", &["--health-cmd", "busybox sleep 30", "--health-timeout", "300ms", "--health-retries", "1"]);

    // Starting until the first probe, then healthy, with its output logged.
    wait_status(&d, "ok", "healthy");
    let h = health(&d, "ok");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "alive\n");
    assert!(ps_status(&d, "ok").ends_with("(healthy)"), "{}", ps_status(&d, "ok"));
    let hc: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .Config.Healthcheck}}", "ok")).unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "echo alive; busybox true"]));
    assert_eq!(hc["Interval"], 200_000_000);

    // Unhealthy once 2 probes in a row failed.
    wait_status(&d, "bad", "unhealthy");
    let h = health(&d, "bad");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 3);
    assert_eq!(h["Log"][0]["Output"], "dead\n");
    assert!(ps_status(&d, "bad").ends_with("(unhealthy)"), "{}", ps_status(&d, "bad"));
    let events = actions(&d, &["container=bad"]);
    assert!(events.iter().any(|a| a == "health_status: unhealthy"), "{events:?}");
    assert!(!events.iter().any(|a| a == "health_status: healthy"), "{events:?}");
    assert!(actions(&d, &["container=ok"]).iter().any(|a| a == "health_status: healthy"));

    // A probe past its timeout is killed and fails with dockerd's output.
    wait_status(&d, "slow", "unhealthy");
    let h = health(&d, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(h["Log"][0]["Output"], "Health check exceeded timeout (300ms)");
    // Killed: no probe process stays behind in the container.
    let killed = eventually(Duration::from_secs(10), || !d.ok(&["top", "slow"]).lines().any(|l| l.trim_end().ends_with("sleep 30")));
    assert!(killed, "the timed-out probe still runs:\n{}", d.ok(&["top", "slow"]));

    let execs = |d: &Daemon, name: &str| actions(d, &[&format!("container={name}"), "event=exec_create"]).len();
    // No probes while paused (three probes of `bad`, same interval, say
    // time passed); unpausing resumes them, keeping the status.
    d.ok(&["pause", "ok"]);
    let n = execs(&d, "ok");
    let b = execs(&d, "bad");
    assert!(eventually(Duration::from_secs(10), || execs(&d, "bad") >= b + 3));
    assert_eq!(execs(&d, "ok"), n, "probes ran while paused");
    d.ok(&["unpause", "ok"]);
    assert_eq!(health(&d, "ok")["Status"], "healthy");
    assert!(eventually(Duration::from_secs(10), || execs(&d, "ok") > n), "no probe after unpause");

    // The probes stop with the container; the last state stays inspectable.
    d.ok(&["kill", "ok"]);
    assert!(eventually(Duration::from_secs(10), || inspect(&d, "{{.State.Running}}", "ok") == "false"));
    let before = health(&d, "ok")["Log"].clone();
    let n = execs(&d, "ok");
    assert!(n > 0);
    let b = execs(&d, "bad");
    assert!(eventually(Duration::from_secs(10), || execs(&d, "bad") >= b + 3));
    assert_eq!(execs(&d, "ok"), n, "probes ran after the container exited");
    assert_eq!(health(&d, "ok")["Log"], before);
    // A new start begins again from `starting`.
    d.ok(&["start", "ok"]);
    assert_eq!(health(&d, "ok")["Status"], "starting");
    assert!(ps_status(&d, "ok").ends_with("(health: starting)"), "{}", ps_status(&d, "ok"));
    wait_status(&d, "ok", "healthy");
    // `docker commit` (which pauses) keeps the check in the image, and a
    // container of that image inherits what it does not set itself.
    d.ok(&["commit", "bad", "bad-img"]);
    let hc: serde_json::Value = serde_json::from_str(d.ok(&["image", "inspect", "-f", "{{json .Config.Healthcheck}}", "bad-img"]).trim()).unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "echo dead; exit 3"]));
    assert_eq!(hc["Retries"], 2);
    d.ok(&["create", "--network", "none", "--name", "child", "--health-retries", "5", "bad-img", "sleep", "300"]);
    let hc: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .Config.Healthcheck}}", "child")).unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "echo dead; exit 3"]));
    assert_eq!((hc["Retries"].as_i64(), hc["Interval"].as_i64()), (Some(5), Some(200_000_000)));
    assert!(eventually(Duration::from_secs(10), || actions(&d, &["container=bad", "event=exec_create"]).len() > b + 3), "no probe after the commit");
    d.ok(&["rm", "-f", "ok", "bad", "slow", "child"]);
}

#[test]
fn no_healthcheck_and_refused_settings() {
    let d = daemon();
    d.ok(&["run", "-d", "--network", "none", "--name", "none", "--no-healthcheck", "bb", "sleep", "300"]);
    let hc: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .Config.Healthcheck}}", "none")).unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["NONE"]));
    // A container without any health check has no State.Health.
    d.ok(&["run", "-d", "--network", "none", "--name", "plain", "bb", "sleep", "300"]);
    assert_eq!(inspect(&d, "{{json .State.Health}}", "plain"), "null");
    assert_eq!(inspect(&d, "{{json .Config.Healthcheck}}", "plain"), "null");
    // Three probes of a checked container later, the others have had none.
    d.ok(&["run", "-d", "--network", "none", "--name", "ticker", "--health-cmd", "busybox true", "--health-interval", "100ms", "bb", "sleep", "300"]);
    assert!(eventually(Duration::from_secs(10), || actions(&d, &["container=ticker", "event=exec_create"]).len() >= 3));
    for name in ["none", "plain"] {
        assert_eq!(actions(&d, &[&format!("container={name}"), "event=exec_create"]), Vec::<String>::new(), "a probe ran in {name}");
    }
    // As under dockerd, a `NONE` check has no health state.
    assert_eq!(inspect(&d, "{{json .State.Health}}", "none"), "null");

    for (opts, msg) in [
        (&["--health-cmd", "true", "--health-interval", "500us"][..], "Interval in Healthcheck cannot be less than 1ms"),
        (&["--health-cmd", "true", "--health-timeout", "10ns"][..], "Timeout in Healthcheck cannot be less than 1ms"),
        (&["--health-cmd", "true", "--health-start-period", "1us"][..], "StartPeriod in Healthcheck cannot be less than 1ms"),
    ] {
        let mut a = vec!["create", "--network", "none"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["bb", "true"]);
        let o = d.docker(&a);
        assert!(!o.status.success(), "{opts:?} was accepted");
        assert!(text(&o).contains(msg), "{opts:?}: {}", text(&o));
    }
    d.ok(&["rm", "-f", "none", "plain", "ticker"]);
}
