//! Real runtimes side by side: runc, youki, gVisor (runsc) and crun through
//! one berth daemon, driven by the docker CLI, and a reload while containers
//! of every runtime run.
//!
//! Install the runtimes first (as root): `scripts/install-runtimes`. A
//! runtime that is not installed fails the tests (saying so); to test
//! without one on purpose, name it in `BERTH_TEST_SKIP_RUNTIMES`
//! (comma-separated, e.g. `youki,gvisor`): each test then prints a note
//! that it left it out. runc (found on PATH, as berth finds it) is always
//! tested. Tests need root (real containers, cgroups).
//!
//! How each runtime is registered (the README's "Choosing a runtime" says
//! why):
//! - `gvisor`: `/usr/bin/runsc` with `--platform=ptrace --network=none
//!   --oci-seccomp` (berth writes a wrapper; without `--oci-seccomp` runsc
//!   ignores the containers' seccomp filters). Debian's runsc 2022-12-19 cannot set up its
//!   own network from a network namespace, and KVM is not usable in these VMs.
//! - `crun`: `/usr/local/lib/berth/crun-hybrid`, a wrapper that hides the
//!   cgroup2 controller list from crun 1.8.1, which otherwise refuses this
//!   cgroup v1 "hybrid" host.
//! - `youki`: `/usr/local/bin/youki` (0.7.0 built with v1,v2,systemd,seccomp).
//!
//! gVisor caveat: the Sentry, the gofer and the ptrace stubs all live in the
//! container's host cgroup, so they count against `--pids-limit`; the limit
//! has to leave room for them (see `GVISOR_PIDS_LIMIT`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use berth_config::CgroupDriver;
use berth_engine::cgroups::{Cgroups, Layout};
use common::{text, Daemon};
use serde_json::{json, Value};

const RUNSC: &str = "/usr/bin/runsc";
const CRUN: &str = "/usr/bin/crun";
const CRUN_WRAPPER: &str = "/usr/local/lib/berth/crun-hybrid";
/// `--oci-seccomp`: without it runsc ignores the container's seccomp filter.
const GVISOR_ARGS: [&str; 3] = ["--platform=ptrace", "--network=none", "--oci-seccomp"];
/// The pids limit the other runtimes are tested with.
const PIDS_LIMIT: u32 = 20;
/// gVisor's sandbox processes (Sentry, gofer, ptrace stubs) share the
/// container's pids cgroup: a shell looping on `sleep` shows 60-75 in
/// `pids.current` (2 under the other runtimes), and with a limit of 20 the
/// sandbox does not boot (see `gvisor_pids_limit_counts_the_sandbox`).
const GVISOR_PIDS_LIMIT: u32 = 200;

#[derive(Clone, Debug)]
struct Rt {
    name: &'static str,
    /// `path` in daemon.json (for runc: none, it is built in).
    path: Option<String>,
    args: Vec<String>,
    /// What `BerthRuntime.Binary` must show.
    binary: String,
    /// The start of the first line of `--version`.
    version: &'static str,
    /// Whether the binary has a `features` command.
    features: bool,
    /// Whether cgroup files are visible inside the container.
    cgroups_inside: bool,
    pids_limit: u32,
}

fn executable(p: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn youki_path() -> Option<String> {
    let candidates = [std::env::var("BERTH_TEST_YOUKI").unwrap_or_default(), "/usr/local/bin/youki".into(), "/root/.cargo/bin/youki".into()];
    candidates.into_iter().find(|p| !p.is_empty() && executable(p))
}

/// The runtimes named in `BERTH_TEST_SKIP_RUNTIMES` (comma-separated, e.g.
/// `youki,gvisor`): left out on purpose, with a printed note.
fn skipped() -> Vec<String> {
    std::env::var("BERTH_TEST_SKIP_RUNTIMES").unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Whether `name` is to be tested; prints a note when it is skipped on purpose.
fn wanted(name: &str) -> bool {
    let skip = skipped().iter().any(|s| s == name);
    if skip {
        eprintln!("note: {name} skipped: named in BERTH_TEST_SKIP_RUNTIMES");
    }
    !skip
}

fn not_installed(what: &str) -> ! {
    panic!("{what} is not installed: run scripts/install-runtimes (as root), or name the runtime in BERTH_TEST_SKIP_RUNTIMES to test without it")
}

/// The runtimes to test: runc (on PATH, as berth finds it) always, the
/// others unless named in `BERTH_TEST_SKIP_RUNTIMES`. A runtime that is
/// wanted but not installed fails the test.
fn runtimes() -> Vec<Rt> {
    let runc = berth_test_support::runc().display().to_string();
    let mut v = vec![Rt {
        name: "runc",
        path: None,
        args: vec![],
        binary: runc,
        version: "runc version ",
        features: true,
        cgroups_inside: true,
        pids_limit: PIDS_LIMIT,
    }];
    if wanted("youki") {
        let p = youki_path().unwrap_or_else(|| not_installed("youki (/usr/local/bin/youki, or BERTH_TEST_YOUKI)"));
        v.push(Rt {
            name: "youki",
            path: Some(p.clone()),
            args: vec![],
            binary: p,
            version: "youki version: ",
            features: true,
            cgroups_inside: true,
            pids_limit: PIDS_LIMIT,
        });
    }
    if wanted("gvisor") {
        if !executable(RUNSC) {
            not_installed(&format!("gvisor ({RUNSC})"));
        }
        v.push(Rt {
            name: "gvisor",
            path: Some(RUNSC.into()),
            args: GVISOR_ARGS.iter().map(|s| s.to_string()).collect(),
            binary: RUNSC.into(),
            version: "runsc version ",
            features: false,
            cgroups_inside: false,
            pids_limit: GVISOR_PIDS_LIMIT,
        });
    }
    if wanted("crun") {
        if !executable(CRUN) || !executable(CRUN_WRAPPER) {
            not_installed(&format!("crun ({CRUN} and its wrapper {CRUN_WRAPPER})"));
        }
        v.push(Rt {
            name: "crun",
            path: Some(CRUN_WRAPPER.into()),
            args: vec![],
            binary: CRUN_WRAPPER.into(),
            version: "crun version ",
            features: false,
            cgroups_inside: true,
            pids_limit: PIDS_LIMIT,
        });
    }
    v
}

fn config(rts: &[Rt], default: Option<&str>) -> String {
    let mut runtimes = serde_json::Map::new();
    for rt in rts.iter().filter(|r| r.path.is_some()) {
        let mut def = json!({"path": rt.path});
        if !rt.args.is_empty() {
            def["runtimeArgs"] = json!(rt.args);
        }
        runtimes.insert(rt.name.into(), def);
    }
    let mut c = json!({"runtimes": runtimes});
    if let Some(d) = default {
        c["default-runtime"] = json!(d);
    }
    c.to_string()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    d.ok(&["inspect", "--format", format, name]).trim().to_string()
}

/// The host's cgroups as berth finds them (layout from /proc/self/mountinfo).
fn host_cgroups() -> Cgroups {
    Cgroups::detect(Some(CgroupDriver::Cgroupfs)).expect("cgroups are mounted")
}

/// A file of the container's cgroup on the host (berth's cgroupsPath is
/// /berth/<id>): `v1` = (controller, file) on v1 and hybrid hosts, `v2` the
/// file's name in the unified hierarchy.
fn host_cgroup(id: &str, v1: (&str, &str), v2: &str) -> String {
    let cg = host_cgroups();
    let rel = cg.relative_dir("berth", id);
    let h = cg.hierarchy();
    let p = match cg.layout() {
        Layout::Unified => h.unified_mount().unwrap().join(rel).join(v2),
        Layout::V1 | Layout::Hybrid => h.v1_mount(v1.0).unwrap_or_else(|| panic!("no v1 {} controller", v1.0)).join(rel).join(v1.1),
    };
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
}

/// The memory and pids limit files as seen inside a container.
fn inside_limit_files() -> [&'static str; 2] {
    match host_cgroups().layout() {
        Layout::Unified => ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"],
        Layout::V1 | Layout::Hybrid => ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"],
    }
}

fn sha256_hex(path: &str) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    out(&o).split_whitespace().next().unwrap_or_default().to_string()
}

fn runtime_rows(d: &Daemon) -> Value {
    let o = d.berth(&["runtimes", "--json"]);
    assert!(o.status.success(), "berth runtimes --json: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("berth runtimes --json: {e}: {}", text(&o)))
}

fn row<'a>(inv: &'a Value, name: &str) -> &'a Value {
    inv["runtimes"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no runtime {name} in {inv}"))
}

/// A detached container that ends at once on TERM (even under gVisor's
/// ptrace platform, where a signal to a shell waiting in `sleep` is seen only
/// once the sleep returns, so the sleeps are short).
const LOOP: &str = "trap 'exit 0' TERM; echo started; while :; do sleep 0.1; done";

/// Everything one runtime must do before the reload; returns the id of a
/// detached container left running for the reload phase.
fn phase_one(d: &Daemon, rt: &Rt) -> String {
    let t = Instant::now();
    let r = rt.name;

    // A short-lived container: output and exit code.
    let o = d.docker(&["run", "--rm", "--runtime", r, "--network", "none", "bb", "sh", "-c", &format!("echo out-{r}; exit 7")]);
    assert_eq!((o.status.code(), out(&o)), (Some(7), format!("out-{r}\n")), "{r}: run --rm: {}\n{}", text(&o), common::tail(&d.log()));

    // A detached one with limits: exec, logs, pause/unpause.
    let name = format!("{r}-d");
    let mem = "64m";
    let pids = rt.pids_limit.to_string();
    let id = d
        .ok(&["run", "-d", "--name", &name, "--runtime", r, "--network", "none", "--memory", mem, "--pids-limit", &pids, "bb", "sh", "-c", LOOP])
        .trim()
        .to_string();
    assert_eq!(d.ok(&["exec", &name, "echo", &format!("exec-{r}")]), format!("exec-{r}\n"), "{r}: exec");
    let logs = wait_for(|| {
        let l = out(&d.docker(&["logs", &name]));
        l.contains("started").then_some(l)
    });
    assert!(logs.is_some(), "{r}: logs never showed the container's output");
    assert_eq!(inspect(d, "{{.HostConfig.Runtime}} {{.State.Status}}", &name), format!("{r} running"));

    // Pause and unpause: every runtime here supports them (runsc too, also
    // with the ptrace platform).
    let o = d.docker(&["pause", &name]);
    assert!(o.status.success(), "{r}: pause: {}", text(&o));
    assert_eq!(inspect(d, "{{.State.Status}}", &name), "paused", "{r}");
    let o = d.docker(&["unpause", &name]);
    assert!(o.status.success(), "{r}: unpause: {}", text(&o));
    assert_eq!(inspect(d, "{{.State.Status}}", &name), "running", "{r}");
    assert_eq!(d.ok(&["exec", &name, "echo", "after-unpause"]), "after-unpause\n", "{r}: exec after unpause");

    // Limits, from the host's cgroup files (v1 or v2, by the host's layout).
    assert_eq!(host_cgroup(&id, ("memory", "memory.limit_in_bytes"), "memory.max"), "67108864", "{r}: memory limit on the host");
    assert_eq!(host_cgroup(&id, ("pids", "pids.max"), "pids.max"), pids, "{r}: pids limit on the host");
    eprintln!("{r}: pids.current of a shell looping on sleep: {}", host_cgroup(&id, ("pids", "pids.current"), "pids.current"));
    let [inside_memory, inside_pids] = inside_limit_files();
    if rt.cgroups_inside {
        let inside = d.ok(&["exec", &name, "cat", inside_memory, inside_pids]);
        assert_eq!(inside, format!("67108864\n{pids}\n"), "{r}: limits seen from inside");
    } else {
        // gVisor: the sandbox has no host cgroupfs (the file is missing), but
        // the Sentry sizes its memory by the limit.
        let o = d.docker(&["exec", &name, "cat", inside_memory]);
        assert_ne!(o.status.code(), Some(0), "{r}: {}", text(&o));
        let meminfo = d.ok(&["exec", &name, "cat", "/proc/meminfo"]);
        let total = meminfo.lines().next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(total, "MemTotal: 65536 kB", "{r}: the memory limit seen from inside");
    }

    // The pinned resolution.
    let pinned: Value = serde_json::from_str(&inspect(d, "{{json .BerthRuntime}}", &name)).unwrap();
    assert_eq!(pinned["Name"], r, "{pinned}");
    assert_eq!(pinned["Shim"], "io.containerd.runc.v2", "{pinned}");
    assert_eq!(pinned["Binary"], rt.binary.as_str(), "{r}: the real binary: {pinned}");
    assert_eq!(pinned["Args"], json!(rt.args), "{pinned}");
    if rt.args.is_empty() {
        assert!(pinned["Wrapper"].is_null() && pinned["WrapperDigest"].is_null(), "{r}: no wrapper without args: {pinned}");
    } else {
        check_wrapper(d, rt, &pinned);
    }
    check_confinement(d, rt);
    eprintln!("{r}: run/exit code, run -d/exec/logs, pause/unpause, memory+pids limits, pinned runtime, confinement: ok ({:.1?})", t.elapsed());
    id
}

/// Every runtime gets the same confinement: capabilities, no-new-privileges
/// and the seccomp filter, read from `/proc/self/status` inside.
fn check_confinement(d: &Daemon, rt: &Rt) {
    let r = rt.name;
    let status = |opts: &[&str]| {
        let mut a = vec!["run", "--rm", "--runtime", r, "--network", "none"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&["bb", "cat", "/proc/self/status"]);
        let st = d.ok(&a);
        let field = |k: &str| st.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix(':')).map(|v| v.trim().to_string());
        (field("CapEff"), field("NoNewPrivs"), field("Seccomp"))
    };
    // gVisor drops CAP_NET_RAW unless runsc has --net-raw, and shows no
    // NoNewPrivs line (it keeps the bit all the same).
    let (default_caps, nnp) = if r == "gvisor" { ("00000000a80405fb", None) } else { ("00000000a80425fb", Some("0")) };
    assert_eq!(status(&[]), (Some(default_caps.into()), nnp.map(Into::into), Some("2".into())), "{r}: default confinement");
    let nnp_on = if r == "gvisor" { None } else { Some("1".into()) };
    assert_eq!(
        status(&["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]),
        (Some("0000000000000000".into()), nnp_on, Some("2".into())),
        "{r}: --cap-drop ALL --security-opt no-new-privileges"
    );
    assert_eq!(status(&["--security-opt", "seccomp=unconfined"]).2.as_deref(), Some("0"), "{r}: seccomp=unconfined");
}

/// `Wrapper` is `<exec-root>/runtimes/<name>.<sha256>`, its content hashes to
/// `WrapperDigest` and execs the real binary with the args.
fn check_wrapper(d: &Daemon, rt: &Rt, pinned: &Value) -> String {
    let w = pinned["Wrapper"].as_str().unwrap_or_else(|| panic!("{}: no wrapper: {pinned}", rt.name));
    let digest = pinned["WrapperDigest"].as_str().unwrap_or_else(|| panic!("{}: no digest: {pinned}", rt.name));
    assert_eq!(w, d.path("exec/runtimes").join(format!("{}.{digest}", rt.name)).to_str().unwrap(), "{pinned}");
    assert_eq!(sha256_hex(w), digest, "wrapper content matches its digest");
    let content = std::fs::read_to_string(w).unwrap();
    assert!(content.contains(&rt.binary) && rt.args.iter().all(|a| content.contains(a.as_str())), "{w}: {content}");
    w.to_string()
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn assert_root() {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    assert!(unsafe { geteuid() } == 0, "the runtime tests need root (real containers, cgroups)");
}

#[test]
fn runtimes_side_by_side_and_reload() {
    assert_root();
    let start = Instant::now();
    let rts = runtimes();
    eprintln!("testing runtimes: {}", rts.iter().map(|r| r.name).collect::<Vec<_>>().join(", "));
    let d = Daemon::start(&config(&rts, None));
    d.import_busybox("bb");

    // ---- inventory: version for each, "features unknown" where `features` is missing.
    let inv = runtime_rows(&d);
    let info: Value = serde_json::from_str(&d.ok(&["info", "--format", "{{json .Runtimes}}"])).unwrap();
    for rt in &rts {
        let row = row(&inv, rt.name);
        assert_eq!(row["available"], true, "{row}");
        let version = row["version"].as_str().unwrap_or_default();
        assert!(version.starts_with(rt.version), "{}: version {version:?}: {row}", rt.name);
        let features = row["features"].as_str().unwrap_or_default();
        if rt.features {
            assert!(features.starts_with("oci ") && features.contains("cgroup v1"), "{}: features {features:?}", rt.name);
        } else {
            assert_eq!(features, "features unknown", "{}: {row}", rt.name);
        }
        assert_eq!(row["binary"], rt.binary.as_str(), "{row}");
        let status = &info[rt.name]["status"];
        assert_eq!(status["berth.version"], version, "docker info {}: {info}", rt.name);
        if rt.features {
            assert!(status["org.opencontainers.runtime-spec.features"].is_string(), "docker info {}: {status}", rt.name);
        } else {
            assert_eq!(status["berth.features"], "features unknown", "docker info {}: {status}", rt.name);
        }
        eprintln!("{}: {version} | {features}", rt.name);
    }
    assert_eq!(row(&inv, "runc")["default"], true);
    assert_eq!(inv["default_runtime"], "runc");

    // ---- each runtime on its own.
    let mut running: Vec<(Rt, String)> = Vec::new();
    for rt in &rts {
        let id = phase_one(&d, rt);
        running.push((rt.clone(), id));
    }

    // gVisor in berth's default network mode (a private netns with loopback
    // only): runsc's own `--network=none` makes it ignore that namespace.
    let gvisor = rts.iter().find(|r| r.name == "gvisor").cloned();
    let old_gvisor_wrapper = gvisor.as_ref().map(|_| {
        let o = d.docker(&["run", "--rm", "--runtime", "gvisor", "bb", "sh", "-c", "echo default-net; cat /proc/net/dev"]);
        assert_eq!(o.status.code(), Some(0), "gvisor in the default network: {}", text(&o));
        let s = out(&o);
        assert!(s.starts_with("default-net\n"), "{s}");
        eprintln!("gvisor in the default network mode: ok; interfaces:\n{s}");
        // Unlike under runc, a PID 1 with no TERM handler ends on TERM.
        d.ok(&["run", "-d", "--name", "gv-sleep", "--runtime", "gvisor", "--network", "none", "bb", "sleep", "60"]);
        let t = Instant::now();
        d.ok(&["stop", "-t", "10", "gv-sleep"]);
        assert_eq!(inspect(&d, "{{.State.ExitCode}}", "gv-sleep"), "143", "gvisor: sleep as PID 1 ends on TERM");
        assert!(t.elapsed().as_secs() < 5, "gvisor: stop did not need the KILL after the timeout");
        d.ok(&["rm", "gv-sleep"]);
        inspect(&d, "{{.BerthRuntime.Wrapper}}", "gvisor-d")
    });

    // ---- reload while a container of every runtime runs: gvisor gets one
    // more flag, youki goes away, crun becomes the default (if installed).
    let logdir = d.path("runsc-logs");
    let mut new_rts: Vec<Rt> = rts.iter().filter(|r| r.name != "youki").cloned().collect();
    for rt in new_rts.iter_mut().filter(|r| r.name == "gvisor") {
        rt.args.push(format!("--debug-log={}/", logdir.display()));
    }
    let new_default = if rts.iter().any(|r| r.name == "crun") { "crun" } else { "runc" };
    d.write_config(&config(&new_rts, Some(new_default)));
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "berth reload: {}", text(&o));
    let summary = out(&o);
    eprintln!("berth reload:\n{summary}");
    assert!(summary.starts_with("reloaded: generation 2 is live"), "{summary}");
    if rts.iter().any(|r| r.name == "youki") {
        assert!(summary.contains("  removed:  youki\n"), "{summary}");
    }
    if let Some(g) = &gvisor {
        let want = format!("  changed:  gvisor: path {RUNSC} {:?} -> path {RUNSC} {:?}\n", g.args, new_rts.iter().find(|r| r.name == "gvisor").unwrap().args);
        assert!(summary.contains(&want), "want {want:?} in {summary}");
    }
    if new_default != "runc" {
        assert!(summary.contains("  default runtime: runc -> crun\n"), "{summary}");
    }

    // The running containers of every runtime, youki's included, keep working.
    for (rt, _id) in &running {
        let name = format!("{}-d", rt.name);
        assert_eq!(d.ok(&["exec", &name, "echo", "still-here"]), "still-here\n", "{}: exec after the reload", rt.name);
        assert_eq!(inspect(&d, "{{.BerthRuntime.Generation}}", &name), "1", "{}: still pinned to generation 1", rt.name);
    }
    if let Some(old) = &old_gvisor_wrapper {
        assert!(Path::new(old).exists(), "the pinned gvisor wrapper survives the reload: {old}");
    }

    // youki is gone for new containers.
    if rts.iter().any(|r| r.name == "youki") {
        let o = d.docker(&["run", "--rm", "--runtime", "youki", "bb", "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("unknown or invalid runtime name: youki"), "{}", text(&o));
        assert!(!inv_has(&runtime_rows(&d), "youki"), "youki is no longer listed");
    }
    let inv = runtime_rows(&d);
    assert_eq!((inv["generation"].as_u64(), inv["default_runtime"].as_str()), (Some(2), Some(new_default)), "{inv}");
    assert_eq!(row(&inv, new_default)["default"], true, "{inv}");

    // The new default serves containers without --runtime.
    let o = d.docker(&["run", "--name", "dflt", "--network", "none", "bb", "echo", "on-default"]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), "on-default\n".to_string()), "{}", text(&o));
    assert_eq!(inspect(&d, "{{.HostConfig.Runtime}} {{.BerthRuntime.Name}} {{.BerthRuntime.Generation}}", "dflt"), format!("{new_default} {new_default} 2"));
    d.ok(&["rm", "dflt"]);

    // New gvisor containers get the new args (a new wrapper); runsc now
    // writes its logs where the new flag says.
    if let (Some(g), Some(old)) = (new_rts.iter().find(|r| r.name == "gvisor"), &old_gvisor_wrapper) {
        let o = d.docker(&["run", "--name", "gv2", "--network", "none", "--runtime", "gvisor", "bb", "echo", "new-args"]);
        assert_eq!((o.status.code(), out(&o)), (Some(0), "new-args\n".to_string()), "{}", text(&o));
        let pinned: Value = serde_json::from_str(&inspect(&d, "{{json .BerthRuntime}}", "gv2")).unwrap();
        assert_eq!(pinned["Args"], json!(g.args), "{pinned}");
        let w = check_wrapper(&d, g, &pinned);
        assert_ne!(&w, old, "a changed runtime gets a new wrapper");
        let logs = std::fs::read_dir(&logdir).map(|r| r.count()).unwrap_or(0);
        assert!(logs > 0, "runsc wrote no logs to {}", logdir.display());
        d.ok(&["rm", "gv2"]);
    }

    // Stop and remove the containers of every runtime.
    for (rt, id) in &running {
        let name = format!("{}-d", rt.name);
        let t = Instant::now();
        d.ok(&["stop", "-t", "5", &name]);
        assert_eq!(inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", &name), "exited 0", "{}: TERM ends the loop", rt.name);
        d.ok(&["rm", &name]);
        assert_eq!(leftover_cgroups(id, false), Vec::<String>::new(), "{}: cgroups removed with the container", rt.name);
        eprintln!("{}: stop + rm after the reload: ok ({:.1?})", rt.name, t.elapsed());
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    eprintln!("runtimes_side_by_side_and_reload: {} runtimes in {:.1?}", rts.len(), start.elapsed());
}

/// The cgroup hierarchies (v1, and the cgroup2 mount of a hybrid or unified
/// host) that still hold `/berth/<id>`; empty ones are removed when `remove` is set.
fn leftover_cgroups(id: &str, remove: bool) -> Vec<String> {
    let mut left = Vec::new();
    for mount in host_cgroups().hierarchy().mounts() {
        let dir = mount.join("berth").join(id);
        if dir.is_dir() {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().count();
            left.push(format!("{}{}", mount.display(), if procs > 0 { format!(" ({procs} procs!)") } else { String::new() }));
            if remove {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
    left.sort();
    left
}

/// After a failed start, runsc leaves the container's (empty) cgroup
/// directories `/berth/<id>` in every v1 hierarchy, and berth does not remove
/// them today. Reports them, then removes them so the test leaves nothing.
fn report_leftover_cgroups(what: &str, id: &str) {
    let left = leftover_cgroups(id, true);
    if !left.is_empty() {
        eprintln!("note: {what} left /berth/{id} behind in the cgroup hierarchies {} (removed by the test)", left.join(", "));
    }
}

fn inv_has(inv: &Value, name: &str) -> bool {
    inv["runtimes"].as_array().unwrap().iter().any(|r| r["name"] == name)
}

/// gVisor's helper processes count against the pids limit: with the limit of
/// 20 the other runtimes are tested with, the sandbox does not even boot.
/// That must be a prompt, clear error, and leave nothing behind.
#[test]
fn gvisor_pids_limit_counts_the_sandbox() {
    assert_root();
    if !runtimes().iter().any(|r| r.name == "gvisor") {
        eprintln!("note: gvisor_pids_limit_counts_the_sandbox not run: gvisor is named in BERTH_TEST_SKIP_RUNTIMES");
        return;
    }
    let rts: Vec<Rt> = runtimes().into_iter().filter(|r| r.name == "gvisor").collect();
    let d = Daemon::start(&config(&rts, None));
    d.import_busybox("bb");
    let script = "echo a | cat; sleep 0.2; echo done";
    let t = Instant::now();
    let o = d.docker(&["run", "--name", "gv20", "--runtime", "gvisor", "--network", "none", "--pids-limit", "20", "bb", "sh", "-c", script]);
    eprintln!("gvisor with --pids-limit 20: exit {:?} after {:.1?}: {}", o.status.code(), t.elapsed(), String::from_utf8_lossy(&o.stderr).trim());
    assert!(t.elapsed().as_secs() < 30, "no hang");
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("(runtime gvisor, binary {RUNSC})")), "{}", text(&o));
    let id = inspect(&d, "{{.Id}}", "gv20");
    d.ok(&["rm", "gv20"]);
    report_leftover_cgroups("the failed gvisor start (pids limit)", &id);

    let o = d.docker(&["run", "--rm", "--runtime", "gvisor", "--network", "none", "--pids-limit", &GVISOR_PIDS_LIMIT.to_string(), "bb", "sh", "-c", script]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), "a\ndone\n".to_string()), "{}", text(&o));
}

/// gVisor obeys its own `--network` flag, so some container network modes
/// cannot work on a given gVisor runtime: berth refuses them at create with
/// what to do instead (and again at start, after a reload changed the flag),
/// rather than letting runsc fail at start.
#[test]
fn gvisor_network_modes_checked_at_create() {
    assert_root();
    if !runtimes().iter().any(|r| r.name == "gvisor") {
        eprintln!("note: gvisor_network_modes_checked_at_create not run: gvisor is named in BERTH_TEST_SKIP_RUNTIMES");
        return;
    }
    let cfg = |none_flag: &str| {
        json!({"runtimes": {
            "gv-none": {"path": RUNSC, "runtimeArgs": ["--platform=ptrace", none_flag]},
            "gv-host": {"path": RUNSC, "runtimeArgs": ["--platform=ptrace", "--network=host"]},
            "gv-sandbox": {"path": RUNSC, "runtimeArgs": ["--platform=ptrace"]},
        }})
        .to_string()
    };
    let d = Daemon::start(&cfg("--network=none"));
    d.import_busybox("bb");
    let refused = |args: &[&str], want: &str| {
        let o = d.docker(args);
        // `docker run` exits 125 when the daemon refuses, `docker create` 1.
        let code = if args[0] == "run" { 125 } else { 1 };
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        eprintln!("{args:?} refused: {}", err.trim());
    };

    // --network=none: isolated containers run, host networking is refused.
    let o = d.docker(&["run", "--rm", "--runtime", "gv-none", "bb", "echo", "isolated"]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), "isolated\n".to_string()), "{}", text(&o));
    refused(&["run", "--rm", "--runtime", "gv-none", "--network", "host", "bb", "true"], "runtime gv-none runs gVisor with --network=none");

    // --network=host: only host networking.
    let o = d.docker(&["run", "--rm", "--runtime", "gv-host", "--network", "host", "bb", "echo", "on-host"]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), "on-host\n".to_string()), "{}", text(&o));
    refused(&["run", "--rm", "--runtime", "gv-host", "bb", "true"], "run the container with --network host");

    // gVisor's own network stack: never in the host's namespace; in a
    // private one only where this runsc can set it up.
    refused(&["create", "--runtime", "gv-sandbox", "--network", "host", "bb", "true"], "refuses to run in the host's network namespace");
    let kernel_shows = Command::new("unshare").args(["-n", "test", "-e", "/proc/sys/net/core/rmem_default"]).status().map(|s| s.success()).unwrap_or(false);
    let version = String::from_utf8_lossy(&Command::new(RUNSC).arg("--version").output().unwrap().stdout).into_owned();
    let old_runsc = version.contains("~2022") || version.contains("~2023") || version.contains("-2022") || version.contains("-2023");
    if kernel_shows && old_runsc {
        refused(&["run", "--rm", "--runtime", "gv-sandbox", "bb", "true"], "gVisor issue 10704");
    } else {
        let o = d.docker(&["run", "--rm", "--runtime", "gv-sandbox", "bb", "echo", "sandbox"]);
        assert_eq!((o.status.code(), out(&o)), (Some(0), "sandbox\n".to_string()), "{}", text(&o));
    }
    // The sandbox cannot join the host's or another container's PID, IPC
    // or UTS namespace (runsc would quietly give it private ones).
    for (flag, mode) in [("--pid", "host"), ("--ipc", "host"), ("--uts", "host"), ("--pid", "container:x"), ("--ipc", "container:x")] {
        refused(&["create", "--runtime", "gv-none", flag, mode, "bb", "true"], "whose sandbox cannot share the");
    }
    // Nothing was created by the refusals.
    assert_eq!(d.ok(&["ps", "-aq"]), "");

    // Created while gv-none had --network=none; a reload gives it
    // --network=host; start refuses, and the container is left as created.
    d.ok(&["create", "--name", "later", "--runtime", "gv-none", "bb", "true"]);
    d.write_config(&cfg("--network=host"));
    let o = d.berth(&["reload"]);
    assert!(o.status.success(), "berth reload: {}", text(&o));
    let o = d.docker(&["start", "later"]);
    assert!(!o.status.success(), "start after the reload must be refused: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("runtime gv-none runs gVisor with --network=host"), "{}", text(&o));
    assert_eq!(inspect(&d, "{{.State.Status}}", "later"), "created");
    d.ok(&["rm", "later"]);
}
