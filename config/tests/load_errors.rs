//! Loading: unknown keys, wrong types, drop-ins, duplicates, every problem
//! at once in a stable order, each naming its file.

mod common;

use berth_config::{check, ConfigStore, RuntimeDef, Source};
use common::{assert_one_error_containing, messages, Env};

#[test]
fn unknown_keys_name_the_key_and_the_file() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"a":{"path":"/bin/true","runtimeargs":["x"]}},"defualt-runtime":"a","live_restore":true}"#);
    let e = check(&env.flags()).unwrap_err();
    let m = messages(&e);
    assert_eq!(m.len(), 3, "{m:#?}");
    let file = env.config_file().display().to_string();
    assert!(m.iter().all(|s| s.starts_with(&file)), "{m:#?}");
    env.write(r#"{"quux":1}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "quux: unknown key \"quux\"; valid keys are: runtimes, default-runtime");
    assert_one_error_containing(&e, "runtimes.a.runtimeargs: unknown key \"runtimeargs\"; did you mean \"runtimeArgs\"?");
    assert_one_error_containing(&e, "defualt-runtime: unknown key \"defualt-runtime\"; did you mean \"default-runtime\"?");
    assert_one_error_containing(&e, "live_restore: unknown key \"live_restore\"; did you mean \"live-restore\"?");
}

#[test]
fn wrong_types_name_the_key() {
    let env = Env::new();
    env.write(r#"{"debug":"yes","hosts":"unix:///x.sock","runtimes":{"a":{"path":"/bin/true","runtimeArgs":"x"},"b":"nope","c":{"runtimeType":"io.containerd.runc.v2","options":{"IoUid":"1"}}}}"#);
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "debug: must be true or false, got a string");
    assert_one_error_containing(&e, "hosts: must be an array of strings, got a string");
    assert_one_error_containing(&e, "runtimes.a.runtimeArgs: must be an array of strings, got a string");
    assert_one_error_containing(&e, "runtimes.b: a runtime must be an object");
    assert_one_error_containing(&e, "runtimes.c.options: option IoUid must be an integer, got a string");
    assert_eq!(e.problems.len(), 5, "{:#?}", messages(&e));
}

#[test]
fn problems_are_sorted_and_every_one_is_reported() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"zz":{},"aa":{},"mm":{"path":"/x","runtimeType":"io.a.v1"}}}"#);
    let e = check(&env.flags()).unwrap_err();
    let subjects: Vec<_> = e.problems.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(subjects, ["runtimes.aa", "runtimes.mm", "runtimes.zz"]);
    // The same input gives the same output, every time.
    for _ in 0..5 {
        assert_eq!(check(&env.flags()).unwrap_err(), e);
    }
}

#[test]
fn invalid_json_names_line_and_column() {
    let env = Env::new();
    env.write("{\n  \"debug\": true,\n}\n");
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "invalid JSON: trailing comma at line 3 column 1");
    env.write("[1]");
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "the config must be a JSON object, got an array");
}

#[test]
fn empty_file_bom_and_missing_file() {
    let env = Env::new();
    env.write("  \n");
    assert!(check(&env.flags()).is_ok());
    env.write("\u{feff}{\"debug\": true}");
    assert!(check(&env.flags()).unwrap().0.debug);
    std::fs::remove_file(env.config_file()).unwrap();
    // Given explicitly with --config-file, it must exist.
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "config file not found");
}

#[test]
fn dropins_add_runtimes_and_duplicates_name_both_files() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"a":{"path":"/bin/true"}}}"#);
    env.dropin("10-gvisor.json", r#"{"gvisor":{"path":"/bin/true","runtimeArgs":["--platform=ptrace"]}}"#);
    env.dropin("20-crun.json", r#"{"crun":{"path":"/bin/true"}}"#);
    env.dropin("README", "not json, ignored");
    let (cfg, table) = check(&env.flags()).unwrap();
    assert_eq!(cfg.runtimes.keys().collect::<Vec<_>>(), ["a", "crun", "gvisor"]);
    assert_eq!(cfg.runtimes["gvisor"].source, Source::File(env.path().join("runtimes.d/10-gvisor.json")));
    assert_eq!(table.runtimes["crun"].source, Source::File(env.path().join("runtimes.d/20-crun.json")));

    env.dropin("30-dup.json", r#"{"gvisor":{"path":"/bin/false"},"a":{"path":"/bin/false"}}"#);
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "runtime gvisor is defined twice: in ");
    let m = messages(&e);
    assert!(m.iter().any(|s| s.contains("10-gvisor.json") && s.contains("30-dup.json")), "{m:#?}");
    assert!(m.iter().any(|s| s.contains("daemon.json") && s.contains("30-dup.json")), "{m:#?}");
}

#[test]
fn broken_dropin_is_reported_with_its_name() {
    let env = Env::new();
    env.dropin("50-broken.json", "{ nope");
    let e = check(&env.flags()).unwrap_err();
    assert!(messages(&e)[0].contains("50-broken.json: invalid JSON"), "{:?}", messages(&e));
}

#[test]
fn dropin_added_and_removed_by_reload() {
    let env = Env::new();
    let store = ConfigStore::open(env.flags()).unwrap();
    env.dropin("nvidia.json", r#"{"nvidia":{"path":"/bin/true"}}"#);
    let r = store.reload(false).unwrap();
    assert_eq!((r.generation, r.added.clone()), (2, vec!["nvidia".to_string()]));
    std::fs::remove_file(env.path().join("runtimes.d/nvidia.json")).unwrap();
    let r = store.reload(false).unwrap();
    assert_eq!(r.removed, vec!["nvidia"]);
}

#[test]
fn names_charset() {
    let env = Env::new();
    for bad in ["-x", ".x", "a b", "a/b", "ä", &"x".repeat(129)] {
        env.write(&format!(r#"{{"runtimes":{{"{bad}":{{"path":"/bin/true"}}}}}}"#));
        assert_one_error_containing(&check(&env.flags()).unwrap_err(), "invalid runtime name");
    }
    for good in ["a", "A1", "crun-1.8+wrapper_v1.2", &"x".repeat(128)] {
        env.write(&format!(r#"{{"runtimes":{{"{good}":{{"path":"/bin/true"}}}}}}"#));
        assert!(check(&env.flags()).is_ok(), "{good}");
    }
}

#[test]
fn paths_and_hosts_and_levels() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"r":{"path":"./rel"}},"hosts":["tcp://0.0.0.0:2375"],"log-level":"loud"}"#);
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "path must be absolute or a bare command name");
    assert_one_error_containing(&e, "berth listens on unix sockets only");
    assert_one_error_containing(&e, "unknown log level \"loud\"");
    // A bare name is looked up on PATH.
    env.write(r#"{"runtimes":{"r":{"path":"true"}}}"#);
    let (_, t) = check(&env.flags()).unwrap();
    assert!(t.runtimes["r"].binary.as_ref().unwrap().is_absolute());
    assert_eq!(t.runtimes["r"].definition, Some(RuntimeDef::Path { path: "true".into(), args: vec![] }));
}

#[test]
fn restart_only_keys_fail_the_reload() {
    let env = Env::new();
    let mut f = env.flags();
    f.exec_root = None;
    f.data_root = None;
    let exec = env.path().join("exec").display().to_string();
    env.write(&format!(r#"{{"exec-root":"{exec}","data-root":"/tmp/berth-a"}}"#));
    let store = ConfigStore::open(f).unwrap();
    env.write(&format!(r#"{{"exec-root":"{exec}","data-root":"/tmp/berth-b"}}"#));
    let e = store.reload(false).unwrap_err();
    assert_one_error_containing(&e, "data-root changed from /tmp/berth-a to /tmp/berth-b; it cannot change while berth runs");
    assert_eq!(store.snapshot().generation, 1);
}

/// A broken drop-in must not hide the other problems of a reload: the JSON
/// error, the missing default runtime and the changed restart-only key come
/// in one answer.
#[test]
fn a_broken_file_does_not_hide_other_problems() {
    let env = Env::new();
    let mut f = env.flags();
    f.data_root = None;
    env.write(r#"{"data-root":"/tmp/berth-a"}"#);
    let store = ConfigStore::open(f).unwrap();
    env.dropin("10-bad.json", r#"{"x": {"path": "/bin/true",}}"#);
    env.write(r#"{"data-root":"/tmp/berth-b","default-runtime":"nope"}"#);
    let e = store.reload(false).unwrap_err();
    let m = messages(&e);
    assert_eq!(m.len(), 3, "{m:#?}");
    assert_one_error_containing(&e, "10-bad.json: invalid JSON");
    assert_one_error_containing(&e, "data-root changed from /tmp/berth-a to /tmp/berth-b");
    let default = m.iter().find(|s| s.contains("specified default runtime 'nope' does not exist")).expect("the default runtime's problem");
    assert!(default.contains("unless it is defined in") && default.contains("10-bad.json"), "{default}");
    assert_eq!(store.snapshot().generation, 1);
}

/// ...but a problem that only follows from another is not reported twice.
#[test]
fn consequences_of_a_problem_are_not_problems_of_their_own() {
    let only = |e: berth_config::ConfigErrors, needle: &str| {
        assert_eq!(messages(&e).len(), 1, "{:#?}", messages(&e));
        assert_one_error_containing(&e, needle);
    };
    let env = Env::new();
    let mut f = env.flags();
    f.data_root = None;
    env.write(r#"{"data-root":"/tmp/berth-a"}"#);
    let store = ConfigStore::open(f).unwrap();
    // The default runtime is defined, with a problem: only that problem.
    env.write(r#"{"data-root":"/tmp/berth-a","default-runtime":"r","runtimes":{"r":{"path":"/bin/true","bogus":1}}}"#);
    only(store.reload(false).unwrap_err(), "runtimes.r.bogus: unknown key");
    // The file cannot be read: its data-root is unknown, not "changed".
    env.write(r#"{"data-root":"/tmp/berth-b",}"#);
    only(store.reload(false).unwrap_err(), "invalid JSON");
    // data-root of the wrong type: one problem, not also "changed to the default".
    env.write(r#"{"data-root":42}"#);
    only(store.reload(false).unwrap_err(), "data-root: must be a string");
    assert_eq!(store.snapshot().generation, 1);
}

#[test]
fn dry_run_reports_without_applying() {
    let env = Env::new();
    let store = ConfigStore::open(env.flags()).unwrap();
    env.write(r#"{"runtimes":{"w":{"path":"/bin/true","runtimeArgs":["x"]}},"default-runtime":"w"}"#);
    let r = store.reload(true).unwrap();
    assert!(r.dry_run);
    assert_eq!((r.generation, r.added.clone()), (2, vec!["w".to_string()]));
    assert_eq!(r.default_runtime.new, "w");
    assert_eq!(store.snapshot().generation, 1);
    assert!(!env.wrapper_dir().exists() || std::fs::read_dir(env.wrapper_dir()).unwrap().count() == 0, "dry run writes nothing");
    let r = store.reload(false).unwrap();
    assert_eq!(r.generation, 2);
    assert_eq!(store.snapshot().runtimes.default, "w");
}

#[test]
fn unavailable_runtimes_are_listed_in_the_report() {
    let env = Env::new();
    let store = ConfigStore::open(env.flags()).unwrap();
    env.write(r#"{"runtimes":{"gone":{"path":"/nonexistent/rt"}}}"#);
    let r = store.reload(false).unwrap();
    assert_eq!(r.unavailable.len(), 1);
    assert_eq!(r.unavailable[0].name, "gone");
    assert!(r.unavailable[0].reason.contains("no such file or directory"));
}

#[test]
fn seccomp_profile_and_no_new_privileges() {
    use berth_config::SeccompProfileSetting;
    let env = Env::new();
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!((cfg.seccomp_profile, cfg.no_new_privileges), (SeccompProfileSetting::Builtin, false));
    env.write(r#"{"seccomp-profile":"unconfined","no-new-privileges":true}"#);
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!((cfg.seccomp_profile, cfg.no_new_privileges), (SeccompProfileSetting::Unconfined, true));
    let profile = env.path().join("p.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    env.write(&format!(r#"{{"seccomp-profile":"{}"}}"#, profile.display()));
    let (cfg, _) = check(&env.flags()).unwrap();
    assert!(matches!(&cfg.seccomp_profile, SeccompProfileSetting::File { path, json } if path == &profile && json.contains("SCMP_ACT_ALLOW")));
    // Every problem at once: a bad profile, a missing one, a relative path, a wrong type.
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap();
    env.write(&format!(r#"{{"seccomp-profile":"{}","no-new-privileges":"yes"}}"#, profile.display()));
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "seccomp-profile: ");
    assert_one_error_containing(&e, "decoding seccomp profile failed");
    assert_one_error_containing(&e, "no-new-privileges: must be true or false, got a string");
    env.write(r#"{"seccomp-profile":"/nonexistent-berth/p.json"}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "cannot read the seccomp profile /nonexistent-berth/p.json");
    env.write(r#"{"seccomp-profile":"p.json"}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "must be an absolute path");
}

#[test]
fn init_and_init_path() {
    let env = Env::new();
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!((cfg.init, cfg.init_path), (false, None));
    env.write(r#"{"init":true,"init-path":"/usr/local/bin/tini"}"#);
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!((cfg.init, cfg.init_path.as_deref()), (true, Some(std::path::Path::new("/usr/local/bin/tini"))));
    env.write(r#"{"init":"yes","init-path":"tini"}"#);
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "init: must be true or false, got a string");
    assert_one_error_containing(&e, "init-path: must be an absolute path, got \"tini\"");
}

#[test]
fn exec_opts_set_the_cgroup_driver_and_nothing_else() {
    use berth_config::CgroupDriver;
    let env = Env::new();
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!(cfg.exec_opts.cgroup_driver, None, "unset: the daemon decides at start");
    env.write(r#"{"exec-opts":["native.cgroupdriver=systemd"]}"#);
    let (cfg, _) = check(&env.flags()).unwrap();
    assert_eq!(cfg.exec_opts.cgroup_driver, Some(CgroupDriver::Systemd));
    // Every bad option is reported with its index and the file.
    env.write(r#"{"exec-opts":["native.cgroupdriver=none","native.umask=normal"]}"#);
    let e = check(&env.flags()).unwrap_err();
    assert_one_error_containing(&e, "exec-opts[0]: native.cgroupdriver option none not supported: use cgroupfs or systemd");
    assert_one_error_containing(&e, "exec-opts[1]: unknown exec-opt \"native.umask\"");
    assert!(messages(&e).iter().all(|m| m.starts_with(&env.config_file().display().to_string())), "{:#?}", messages(&e));
    env.write(r#"{"exec-opts":"native.cgroupdriver=systemd"}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "exec-opts: must be an array of strings");
}

#[test]
fn the_cgroup_driver_cannot_change_by_reload() {
    let env = Env::new();
    let store = ConfigStore::open(env.flags()).unwrap();
    env.write(r#"{"exec-opts":["native.cgroupdriver=systemd"]}"#);
    let e = store.reload(false).unwrap_err();
    assert_one_error_containing(
        &e,
        "exec-opts: exec-opts changed from [] to [native.cgroupdriver=systemd]; it cannot change while berth runs: restart berth to apply it (nothing was reloaded)",
    );
    assert_eq!(store.snapshot().generation, 1);
    assert!(store.reload(true).is_err(), "a dry run says the same");
}
