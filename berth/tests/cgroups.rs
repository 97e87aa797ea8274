//! The host's cgroups through a real daemon: `docker info` reports the
//! layout and driver berth found, `docker stats` has dockerd's fields for
//! that layout, and the systemd driver is refused on a host not booted with
//! systemd (and used on one that is).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use berth_config::CgroupDriver;
use berth_engine::cgroups::usage::{V1_MEMORY_KEYS, V2_MEMORY_KEYS};
use berth_engine::cgroups::{Cgroups, Layout, SYSTEMD_RUN_DIR};
use common::{text, Daemon, BERTH};
use serde_json::Value;

/// `GET path` over the daemon's socket; the body as JSON.
fn get_json(d: &Daemon, path: &str) -> Value {
    let mut s = UnixStream::connect(d.sock()).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{resp}");
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// dockerd 20.10's answer for a container with the same limits on this
/// test machine's (v1) cgroups, recorded with its files.
fn dockerd_v1() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/cgroup-v1/dockerd-20.10-stats.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn stats_and_info_follow_the_hosts_cgroups() {
    let here = Cgroups::detect(None).expect("this host has cgroups");
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    let info: Value = serde_json::from_str(&d.ok(&["info", "--format", "{{json .}}"])).unwrap();
    assert_eq!(info["CgroupVersion"], here.layout().version(), "{}", info["CgroupVersion"]);
    assert_eq!(info["CgroupDriver"], here.driver().as_str());

    d.ok(&["run", "-d", "--name", "st1", "--network", "none", "--memory", "64m", "--pids-limit", "100", "bb", "sh", "-c", "while :; do sleep 1; done"]);
    let st = get_json(&d, "/v1.41/containers/st1/stats?stream=0&one-shot=1");
    let m = &st["memory_stats"];
    assert_eq!(m["limit"], 64 << 20, "{m}");
    assert!(m["usage"].as_u64().unwrap() > 0, "{m}");
    assert!(st["pids_stats"]["current"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["pids_stats"]["limit"], 100, "{st}");
    let cpu = &st["cpu_stats"];
    assert!(cpu["cpu_usage"]["total_usage"].as_u64().unwrap() > 0, "{cpu}");
    assert!(cpu["system_cpu_usage"].as_u64().unwrap() > 0 && cpu["online_cpus"].as_u64().unwrap() > 0, "{cpu}");
    assert_eq!(keys(&cpu["throttling_data"]), ["periods", "throttled_periods", "throttled_time"]);
    let mut want: Vec<&str> = match here.layout() {
        Layout::V1 | Layout::Hybrid => {
            // Field for field the shape dockerd gives on this layout.
            let dd = dockerd_v1();
            for k in ["pids_stats", "blkio_stats", "memory_stats"] {
                assert_eq!(keys(&st[k]), keys(&dd[k]), "{k}: {}", st[k]);
            }
            assert_eq!(keys(&st["cpu_stats"]["cpu_usage"]), keys(&dd["cpu_stats"]["cpu_usage"]), "percpu_usage on v1");
            assert_eq!(keys(&st["precpu_stats"]), keys(&dd["precpu_stats"]), "one-shot: an empty precpu, as dockerd");
            assert!(st["blkio_stats"].as_object().unwrap().values().all(Value::is_array), "v1: lists: {}", st["blkio_stats"]);
            assert_eq!(keys(&m["stats"]), keys(&dd["memory_stats"]["stats"]));
            V1_MEMORY_KEYS.to_vec()
        }
        Layout::Unified => {
            assert!(m.get("max_usage").is_none(), "v2 has no max_usage: {m}");
            assert!(st["blkio_stats"]["io_serviced_recursive"].is_null(), "{}", st["blkio_stats"]);
            V2_MEMORY_KEYS.to_vec()
        }
    };
    want.sort();
    assert_eq!(keys(&m["stats"]), want, "dockerd's memory.stat keys for this layout");

    // The docker CLI reads these fields: memory as usage less inactive file
    // pages, out of the limit.
    let mem = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "st1"]);
    assert!(mem.trim_end().ends_with(" / 64MiB"), "{mem}");
}

#[test]
fn the_systemd_cgroup_driver_needs_systemd() {
    let config = r#"{"exec-opts":["native.cgroupdriver=systemd"]}"#;
    if Path::new(SYSTEMD_RUN_DIR).is_dir() {
        // A host booted with systemd: the driver is used.
        let d = Daemon::start(config);
        assert_eq!(d.ok(&["info", "--format", "{{.CgroupDriver}}"]), "systemd\n");
        d.import_busybox("bb");
        let id = d.ok(&["run", "-d", "--network", "none", "--memory", "64m", "bb", "sleep", "60"]).trim().to_string();
        let cg = Cgroups::detect(Some(CgroupDriver::Systemd)).unwrap();
        let rel = cg.relative_dir("berth", &id);
        let dir = match cg.layout() {
            Layout::Unified => cg.hierarchy().unified_mount().unwrap().join(rel),
            _ => cg.hierarchy().v1_mount("memory").unwrap().join(rel),
        };
        assert!(dir.is_dir(), "the container runs in its systemd scope {}", dir.display());
        return;
    }
    // This test machine: no systemd as init, so berth refuses to start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), config).unwrap();
    let o = Command::new(BERTH)
        .arg("daemon")
        .arg("--config-file")
        .arg(dir.path().join("daemon.json"))
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(dir.path().join("exec"))
        .arg("-H")
        .arg(format!("unix://{}/s.sock", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the systemd cgroup driver (exec-opts: native.cgroupdriver=systemd) needs systemd as the init system, but /run/systemd/system does not exist"),
        "{err}"
    );
    assert!(err.contains("set native.cgroupdriver=cgroupfs"), "says what to do: {err}");
    assert!(!dir.path().join("data/containerd").exists(), "refused before starting anything");
}
