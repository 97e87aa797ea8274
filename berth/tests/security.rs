//! Confinement through the docker CLI, as dockerd confines: the default
//! seccomp profile and capability set, `--cap-add`/`--cap-drop`,
//! `--privileged`, `--security-opt` (seccomp, no-new-privileges,
//! systempaths), `--read-only`, `--device`, masked paths, execs, and the
//! daemon's `seccomp-profile` and `no-new-privileges`.
//!
//! System calls are probed with `fixtures/sysprobe.c` (built here with
//! `gcc -static`); what dockerd 20.10 answers to the same probes with the
//! same options on Debian 12 is recorded in
//! `fixtures/sysprobe-dockerd-20.10/` (how: the header of sysprobe.c).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_test_support::Rootfs;
use common::{text, Daemon};

/// A rootfs tar: busybox with every applet, an /etc/passwd with `nobody`,
/// an /etc/group with `nogroup`, `/mnt`, and the syscall probe.
fn probe_image(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysprobe.c");
    let probe = dir.join("sysprobe");
    let o = Command::new("gcc").args(["-static", "-O1", "-o"]).arg(&probe).arg(&src).output().expect("gcc is installed");
    assert!(o.status.success(), "building sysprobe: {}", text(&o));
    Rootfs::busybox()
        .all_applets()
        .dir("mnt", 0o755)
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", 0o644)
        .file("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)
        .file("bin/sysprobe", std::fs::read(&probe).unwrap(), 0o755)
        .write_tar(&dir.join("probe.tar"))
}

fn daemon(config: &str) -> Daemon {
    let d = Daemon::start(config);
    let tar = probe_image(d.dir.path());
    d.ok(&["import", "--change", "ENV PATH=/bin", tar.to_str().unwrap(), "probe"]);
    d
}

/// `CapEff`, `CapBnd`, `NoNewPrivs`, `Seccomp` of the container's process.
fn status(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["probe", "sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | tr '\\n' ' '"]);
    d.ok(&a).trim().to_string()
}

fn recorded(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysprobe-dockerd-20.10").join(format!("{name}.txt"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn syscalls_are_allowed_and_refused_as_by_dockerd() {
    let d = daemon("{}");
    let cases: [(&str, &[&str]); 7] = [
        ("default", &[]),
        ("sysadmin", &["--cap-add", "SYS_ADMIN"]),
        ("ptrace", &["--cap-add", "SYS_PTRACE"]),
        ("dropall", &["--cap-drop", "ALL"]),
        ("unconfined", &["--security-opt", "seccomp=unconfined"]),
        ("nnp", &["--security-opt", "no-new-privileges"]),
        ("nonroot", &["-u", "65534"]),
    ];
    for (name, opts) in cases {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["probe", "sysprobe"]);
        assert_eq!(d.ok(&a), recorded(name), "probes with {opts:?} differ from dockerd 20.10's");
    }
}

#[test]
fn capabilities_seccomp_and_no_new_privileges() {
    let d = daemon("{}");
    // dockerd's default set, a filter, no no-new-privileges.
    assert_eq!(status(&d, &[]), "CapEff:00000000a80425fb CapBnd:00000000a80425fb NoNewPrivs:0 Seccomp:2");
    assert_eq!(status(&d, &["--cap-drop", "ALL"]), "CapEff:0000000000000000 CapBnd:0000000000000000 NoNewPrivs:0 Seccomp:2");
    assert_eq!(
        status(&d, &["--cap-drop", "all", "--cap-add", "net_admin", "--cap-add", "CAP_SYS_PTRACE"]),
        "CapEff:0000000000081000 CapBnd:0000000000081000 NoNewPrivs:0 Seccomp:2"
    );
    assert_eq!(status(&d, &["--cap-drop", "CHOWN"]), "CapEff:00000000a80425fa CapBnd:00000000a80425fa NoNewPrivs:0 Seccomp:2");
    // A non-root process keeps no capability (none inheritable or ambient).
    assert_eq!(status(&d, &["-u", "nobody"]), "CapEff:0000000000000000 CapBnd:00000000a80425fb NoNewPrivs:0 Seccomp:2");
    assert_eq!(status(&d, &["--security-opt", "no-new-privileges"]), "CapEff:00000000a80425fb CapBnd:00000000a80425fb NoNewPrivs:1 Seccomp:2");
    assert_eq!(status(&d, &["--security-opt", "seccomp=unconfined"]), "CapEff:00000000a80425fb CapBnd:00000000a80425fb NoNewPrivs:0 Seccomp:0");

    // ALL and --privileged: every capability berth itself holds.
    let held = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .unwrap();
    assert_eq!(status(&d, &["--cap-add", "ALL"]), format!("CapEff:{held} CapBnd:{held} NoNewPrivs:0 Seccomp:2"));
    assert_eq!(status(&d, &["--privileged"]), format!("CapEff:{held} CapBnd:{held} NoNewPrivs:0 Seccomp:0"));

    // Execs get the container's capabilities and no-new-privileges; an exec
    // with --privileged gets every capability.
    d.ok(&["run", "-d", "--name", "confined", "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "probe", "sleep", "600"]);
    assert_eq!(d.ok(&["exec", "confined", "grep", "-E", "^(CapEff|NoNewPrivs):", "/proc/self/status"]).replace('\t', ""), "CapEff:0000000000000000\nNoNewPrivs:1\n");
    assert_eq!(d.ok(&["exec", "--privileged", "confined", "grep", "^CapEff:", "/proc/self/status"]).replace('\t', ""), format!("CapEff:{held}\n"));
    // --group-add: gids and names from the container's /etc/group, for the
    // process and its execs; a name the image lacks fails the start.
    d.ok(&["run", "-d", "--name", "grouped", "--network", "none", "-u", "nobody", "--group-add", "1234", "--group-add", "nogroup", "probe", "sleep", "600"]);
    assert_eq!(d.ok(&["exec", "grouped", "grep", "^Groups:", "/proc/1/status"]).replace('\t', " ").trim(), "Groups: 1234 65534");
    assert_eq!(d.ok(&["exec", "grouped", "grep", "^Groups:", "/proc/self/status"]).replace('\t', " ").trim(), "Groups: 1234 65534");
    assert_eq!(d.ok(&["inspect", "--format", "{{.HostConfig.GroupAdd}}", "grouped"]).trim(), "[1234 nogroup]");
    let o = d.docker(&["run", "--rm", "--network", "none", "--group-add", "audio", "probe", "true"]);
    assert!(!o.status.success() && text(&o).contains("Unable to find group audio: no matching entries in group file"), "{}", text(&o));
    // Inspect shows the options as given.
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Privileged}}", "confined"]).trim(),
        "[ALL] [no-new-privileges] false"
    );
}

#[test]
fn options_berth_cannot_honour_are_refused() {
    let d = daemon("{}");
    let refused = |args: &[&str], msg: &str| {
        let mut a = vec!["create"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["probe", "true"]);
        let o = d.docker(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(msg), "{args:?}: want {msg:?}: {}", text(&o));
    };
    refused(&["--cap-add", "NOPE"], "invalid CapAdd: unknown capability: \"CAP_NOPE\"");
    refused(&["--cap-drop", "bogus"], "invalid CapDrop: unknown capability: \"CAP_BOGUS\"");
    refused(&["--security-opt", "apparmor=docker-default"], "berth applies no AppArmor profiles");
    refused(&["--security-opt", "label=level:s0"], "berth applies no SELinux labels");
    refused(&["--security-opt", "bogus=1"], "invalid --security-opt 2: \"bogus=1\"");
    refused(&["--device", "/dev/nonexistent-berth"], "error gathering device information while adding custom device \"/dev/nonexistent-berth\": no such file or directory");
    refused(&["--link", "other:alias"], "berth does not support HostConfig.Links yet");
    refused(&["--hostname", "a b"], "invalid hostname \"a b\"");
    let bad = d.path("bad-profile.json");
    std::fs::write(&bad, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOPE"}]}"#).unwrap();
    refused(&["--security-opt", &format!("seccomp={}", bad.display())], "decoding seccomp profile failed");
    // Nothing was created.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    // What berth accepts without doing anything, because it changes nothing here.
    d.ok(&["create", "--security-opt", "apparmor=unconfined", "--security-opt", "label=disable", "probe", "true"]);
}

#[test]
fn custom_profiles_from_the_container_and_the_daemon() {
    // A profile that refuses mkdir (and allows everything else).
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let d = daemon("{}");
    let mkdir = |d: &Daemon, args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["probe", "mkdir", "/tmp/x"]);
        d.docker(&a)
    };
    assert!(mkdir(&d, &[]).status.success());
    let o = mkdir(&d, &["--security-opt", &format!("seccomp={}", profile.display())]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Operation not permitted"), "{}", text(&o));

    // The daemon's profile applies to containers that choose none; a reload
    // changes it for the next start; seccomp=builtin overrides it.
    d.write_config(&format!(r#"{{"seccomp-profile": "{}", "no-new-privileges": true}}"#, profile.display()));
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mkdir(&d, &[]).status.code(), Some(1));
    assert!(mkdir(&d, &["--security-opt", "seccomp=builtin"]).status.success());
    assert_eq!(status(&d, &[]).split(' ').nth(2), Some("NoNewPrivs:1"));
    assert_eq!(status(&d, &["--security-opt", "no-new-privileges=false"]).split(' ').nth(2), Some("NoNewPrivs:0"));
    // A profile file that does not parse fails the reload and changes nothing.
    std::fs::write(&profile, "{").unwrap();
    let o = d.berth(&["reload"]);
    assert!(!o.status.success() && text(&o).contains("seccomp-profile"), "{}", text(&o));
    assert_eq!(mkdir(&d, &[]).status.code(), Some(1), "the last good profile still applies");
}

#[test]
fn read_only_root_masked_paths_devices_and_privileged() {
    let d = daemon("{}");
    let run = |args: &[&str], cmd: &str| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["probe", "sh", "-c", cmd]);
        d.docker(&a)
    };
    // --read-only: the root is read-only, /dev/shm and the /etc files stay writable.
    let o = run(&["--read-only"], "touch /x");
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"), "{}", text(&o));
    assert!(run(&["--read-only"], "touch /dev/shm/x && echo ok > /etc/hostname").status.success());
    assert!(run(&[], "touch /x").status.success());

    // Masked and read-only paths, /sys read-only; none of it when privileged
    // or with systempaths=unconfined.
    let masked = "test ! -s /proc/kcore && ! echo 1 > /proc/sys/kernel/ns_last_pid && grep -q ' /sys sysfs ro,' /proc/mounts";
    let o = run(&[], masked);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["--security-opt", "systempaths=unconfined"], "grep -q '^/proc/kcore' /proc/mounts");
    assert_eq!(o.status.code(), Some(1), "nothing is mounted over /proc/kcore: {}", text(&o));
    let o = run(&["--privileged"], "grep -q ' /sys sysfs rw,' /proc/mounts && ! grep -q '^[^ ]* /proc/kcore ' /proc/mounts");
    assert!(o.status.success(), "{}", text(&o));

    // The device cgroup allows only the default devices.
    let o = run(&[], "cat /sys/fs/cgroup/devices/devices.list");
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success() && list.contains("c 1:3 rwm") && !list.contains("a *:*"), "{}", text(&o));
    // --device: the node, with the permissions asked for in the device cgroup.
    let o = run(&["--device", "/dev/null:/dev/hostnull:rw"], "ls -l /dev/hostnull && grep 'c 1:3 rw' /sys/fs/cgroup/devices/devices.list");
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("crw"), "{}", text(&o));
    // --device-cgroup-rule allows a device without creating it.
    let o = run(&["--device-cgroup-rule", "c 10:229 rm"], "grep 'c 10:229 rm' /sys/fs/cgroup/devices/devices.list");
    assert!(o.status.success(), "{}", text(&o));
    // Privileged: the host's devices, all allowed.
    let o = run(&["--privileged"], "test -c /dev/tty && grep -x 'a \\*:\\* rwm' /sys/fs/cgroup/devices/devices.list");
    assert!(o.status.success(), "{}", text(&o));
}
