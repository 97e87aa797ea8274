//! End-to-end tests of the `berth` binary: `config check`, and a real
//! `berth daemon` on a temp socket driven by `berth reload`, SIGHUP,
//! `berth runtimes` and the docker CLI.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{eventually, libc_kill, root_flags, text, Daemon, BERTH};

#[test]
fn config_check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"runtimes":{"crun":{"path":"/bin/true"}}}"#).unwrap();
    let o = Command::new(BERTH).args(["config", "check"]).args(root_flags(dir.path())).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("configuration is valid"));
    assert!(text(&o).contains("runc (default)"));

    std::fs::write(&cfg, r#"{"runtimes":{"a":{},"runc":{"path":"x"}},"bogus":1}"#).unwrap();
    let o = Command::new(BERTH).args(["config", "check"]).args(root_flags(dir.path())).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("configuration is invalid (3 problems)"), "{t}");
    // Sorted by subject, each naming the file.
    let (a, b, c) = (t.find("bogus").unwrap(), t.find("runtimes.a").unwrap(), t.find("runtimes.runc").unwrap());
    assert!(a < b && b < c, "{t}");
    assert_eq!(t.matches(&cfg.display().to_string()).count(), 3, "{t}");

    // --validate on the daemon does the same and starts nothing.
    let o = Command::new(BERTH).args(["daemon", "--validate"]).args(root_flags(dir.path())).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn daemon_refuses_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), r#"{"default-runtime":"nope"}"#).unwrap();
    let o = Command::new(BERTH).arg("daemon").args(root_flags(dir.path())).arg("-H").arg(format!("unix://{}/s.sock", dir.path().display())).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("specified default runtime 'nope' does not exist"), "{}", text(&o));
}

#[test]
fn reload_via_cli_api_and_sighup() {
    let d = Daemon::start(r#"{"runtimes":{"wrapped":{"path":"/bin/true","runtimeArgs":["a b"]}}}"#);

    // docker CLI sees a Docker API.
    let o = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.41", "{}", text(&o));

    let o = d.berth(&["runtimes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("wrapped") && text(&o).contains("/bin/true") && text(&o).contains("a b"), "{}", text(&o));
    let o = d.berth(&["runtimes", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["default_runtime"], "runc");
    let old_wrapper = v["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == "wrapped").unwrap()["wrapper"].as_str().unwrap().to_string();

    // Export for clusters.
    let o = d.berth(&["runtimes", "export", "--format", "containerd"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"wrapped\"]"), "{}", text(&o));
    let o = d.berth(&["runtimes", "export", "--format", "runtimeclass"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("handler: \"wrapped\""), "{}", text(&o));

    // Dry run: diff, nothing applied.
    d.write_config(r#"{"default-runtime":"wrapped","runtimes":{"wrapped":{"path":"/bin/true","runtimeArgs":["c"]},"new":{"path":"/bin/true"}}}"#);
    let o = d.berth(&["reload", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would become generation 2"), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&d.berth(&["runtimes", "--json"]).stdout).unwrap();
    assert_eq!(v["generation"], 1);

    // Real reload: the summary names every change.
    let o = d.berth(&["reload"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("generation 2 is live") && t.contains("added:    new") && t.contains("changed:  wrapped") && t.contains("default runtime: runc -> wrapped"), "{t}");
    let o = d.berth(&["reload", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["generation"], 3);
    assert_eq!(v["added"], serde_json::json!([]));
    // GC a quiet second after the reloads: nothing references the old
    // wrapper any more.
    assert!(eventually(Duration::from_secs(10), || !Path::new(&old_wrapper).exists()), "{old_wrapper} was not collected");

    // A broken config is refused with every problem; nothing changes.
    d.write_config(r#"{"runtimes":{"x":{},"y":{"path":"/bin/true","options":{"a":1}}}}"#);
    let o = d.berth(&["reload"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("reload refused") && t.contains("2 problems") && t.contains("runtimes.x") && t.contains("runtimes.y"), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&d.berth(&["runtimes", "--json"]).stdout).unwrap();
    assert_eq!((v["generation"].as_u64(), v["default_runtime"].as_str()), (Some(3), Some("wrapped")));

    // SIGHUP applies a fixed file.
    d.write_config(r#"{}"#);
    unsafe { libc_kill(d.child.as_ref().unwrap().id() as i32, 1) };
    let reloaded = eventually(Duration::from_secs(10), || {
        let v: serde_json::Value = serde_json::from_slice(&d.berth(&["runtimes", "--json"]).stdout).unwrap();
        v["generation"] == 4
    });
    assert!(reloaded, "SIGHUP reload did not happen: {}", d.log());
    let v: serde_json::Value = serde_json::from_slice(&d.berth(&["runtimes", "--json"]).stdout).unwrap();
    assert_eq!(v["default_runtime"], "runc");
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    let o = Command::new(BERTH).args(["completions", "bash"]).output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && t.contains("_berth()") && t.contains("--add-runtime") && t.contains("reload"), "{t}");
    let o = Command::new(BERTH).arg("man").output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && t.contains(".TH berth") && t.contains(".TH berth-daemon") && t.contains("default\\-runtime"), "{}", &t[..t.len().min(2000)]);
}

#[test]
fn reload_without_daemon_says_what_to_do() {
    let o = Command::new(BERTH).args(["reload", "-H", "unix:///nonexistent/berth.sock"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("is `berth daemon` running?"), "{}", text(&o));
}
