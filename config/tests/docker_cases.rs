//! The cases of `runtimes-in-docker.md` §7, numbered as there. Where berth
//! deliberately differs from dockerd, the test asserts berth's behaviour and
//! says why.

mod common;

use std::fs;
use std::sync::Arc;

use berth_config::{check, ConfigStore, Kind, ResolveError, RuncOptions, ShimOptions};
use common::{assert_one_error_containing, messages, Env};

fn err(env: &Env, json: &str) -> berth_config::ConfigErrors {
    env.write(json);
    check(&env.flags()).expect_err("config should be rejected")
}

fn ok(env: &Env, json: &str) -> Arc<berth_config::Snapshot> {
    env.write(json);
    ConfigStore::open(env.flags()).unwrap_or_else(|e| panic!("config should load: {e}")).snapshot()
}

// --- Validation (moby TestSetupRuntimes) -----------------------------------

#[test]
fn case_01_to_03_neither_path_nor_type() {
    let env = Env::new();
    for obj in [r#"{}"#, r#"{"runtimeArgs":["foo","bar"]}"#, r#"{"options":{"hello":"world"}}"#] {
        let e = err(&env, &format!(r#"{{"runtimes":{{"myruntime":{obj}}}}}"#));
        assert_one_error_containing(&e, "runtime myruntime: either a runtimeType or a path must be configured");
    }
}

#[test]
fn case_04_path_and_type() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"myruntime":{"path":"/bin/true","runtimeType":"io.containerd.runsc.v1"}}}"#);
    assert_one_error_containing(&e, "runtime myruntime: cannot configure both path and runtimeType for the same runtime");
}

#[test]
fn case_05_and_07_options_with_path() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"myruntime":{"path":"/bin/true","options":{"a":"b"}}}}"#);
    assert_one_error_containing(&e, "runtime myruntime: options cannot be used with a path runtime");
    let e = err(&env, r#"{"runtimes":{"myruntime":{"path":"/bin/true","runtimeArgs":["x"],"options":{"a":"b"}}}}"#);
    assert_one_error_containing(&e, "options cannot be used with a path runtime");
}

#[test]
fn case_06_args_with_type() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"myruntime":{"runtimeType":"io.containerd.runsc.v1","runtimeArgs":["--version"]}}}"#);
    assert_one_error_containing(&e, "runtime myruntime: args cannot be used with a runtimeType runtime");
}

#[test]
fn case_08_type_options_args() {
    // dockerd stops at the args error. berth reports every problem at once:
    // the args error and the unknown option key "a" (dockerd ignores unknown keys).
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"myruntime":{"runtimeType":"io.containerd.runsc.v1","runtimeArgs":["x"],"options":{"a":"b"}}}}"#);
    assert_one_error_containing(&e, "args cannot be used with a runtimeType runtime");
    assert_one_error_containing(&e, "unknown option \"a\" for shim io.containerd.runsc.v1");
}

#[test]
fn case_09_everything() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"myruntime":{"path":"/bin/true","runtimeArgs":["x"],"runtimeType":"io.containerd.runsc.v1","options":{"a":"b"}}}}"#);
    assert_one_error_containing(&e, "cannot configure both path and runtimeType");
    assert_eq!(e.problems.len(), 1, "path+type makes the other rules moot: {:?}", messages(&e));
}

#[test]
fn case_10_runc_reserved() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"runc":{}}}"#);
    assert_one_error_containing(&e, "runtime name 'runc' is reserved");
}

#[test]
fn case_11_12_16_stock_defaults() {
    let env = Env::new();
    assert_eq!(ok(&env, r#"{"default-runtime":"runc"}"#).runtimes.default, "runc");
    assert_eq!(ok(&env, r#"{"default-runtime":"io.containerd.runc.v2"}"#).runtimes.default, "io.containerd.runc.v2");
    assert_eq!(ok(&env, r#"{"default-runtime":""}"#).runtimes.default, "runc");
    assert_eq!(ok(&env, r#"{}"#).runtimes.default, "runc");
}

#[test]
fn case_13_default_must_exist() {
    let env = Env::new();
    let e = err(&env, r#"{"default-runtime":"notdefined"}"#);
    assert_one_error_containing(&e, "specified default runtime 'notdefined' does not exist");
    // berth also lists what exists.
    assert_one_error_containing(&e, "io.containerd.runc.v2, runc");
}

#[test]
fn case_14_default_with_missing_binary() {
    // dockerd accepts this and fails every container later. berth refuses a
    // default runtime it cannot run (design §3: a missing default fails the load).
    let env = Env::new();
    let e = err(&env, r#"{"default-runtime":"some-runtime","runtimes":{"some-runtime":{"path":"/usr/local/bin/file-not-found"}}}"#);
    assert_one_error_containing(&e, "the default runtime 'some-runtime' is unavailable: /usr/local/bin/file-not-found: no such file or directory");
}

#[test]
fn case_15_implicit_default_needs_its_shim() {
    // dockerd hands any dotted name to containerd. berth accepts an implicit
    // shim name only when its binary is on PATH (see implicit_shims.rs for the
    // positive case), so a typo fails at load, not at the first container.
    let env = Env::new();
    let e = err(&env, r#"{"default-runtime":"io.containerd.realfake.v42"}"#);
    assert_one_error_containing(&e, "specified default runtime 'io.containerd.realfake.v42' does not exist");
    for bad in ["/usr/bin/x.v1", "my/x.v1", "nodots"] {
        let e = err(&env, &format!(r#"{{"default-runtime":"{bad}"}}"#));
        assert_one_error_containing(&e, "does not exist");
    }
}

#[test]
fn case_17_empty_collections_are_absent() {
    let env = Env::new();
    let s = ok(&env, r#"{"runtimes":{"r":{"path":"/bin/true","options":{}},"s":{"runtimeType":"io.x.v1","runtimeArgs":[]}}}"#);
    assert!(s.runtimes.runtimes["r"].wrapper.is_none());
    assert_eq!(s.runtimes.runtimes["s"].options, ShimOptions::None);
    assert!(!env.wrapper_dir().exists() || fs::read_dir(env.wrapper_dir()).unwrap().count() == 0);
}

#[test]
fn case_18_runc_v2_reserved_too() {
    // dockerd lets a user runtime silently replace the stock
    // io.containerd.runc.v2 entry (W9). berth reserves that name as well.
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"io.containerd.runc.v2":{"path":"/usr/bin/crun"}}}"#);
    assert_one_error_containing(&e, "runtime name 'io.containerd.runc.v2' is reserved");
}

// --- Lookup (moby TestGetRuntime) ------------------------------------------

const LOOKUP_CONFIG: &str = r#"{"runtimes":{
    "withargs":{"path":"/bin/false","runtimeArgs":["--version"]},
    "shimwithopts":{"runtimeType":"io.containerd.runc.v2","options":{"IoUid":42}},
    "wasmedge":{"runtimeType":"io.containerd.wasmedge.v1"},
    "shimwithpath":{"runtimeType":"/path/to/my/shim"},
    "gvisor":{"runtimeType":"io.containerd.runsc.v1","options":{"TypeUrl":"io.containerd.runsc.v1.options","ConfigPath":"/path/to/runsc.toml"}}
}}"#;

#[test]
fn case_19_20_runc_and_default() {
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    for name in ["runc", ""] {
        let r = s.get(name).unwrap();
        assert_eq!(r.shim, "io.containerd.runc.v2");
        assert_eq!(r.kind, Kind::Stock);
        let ShimOptions::Runc(o) = &r.options else { panic!("runc options expected") };
        // berth gives BinaryName the resolved absolute path and each runtime
        // a state root of its own (dockerd shares one for all, W14).
        assert!(o.binary_name.ends_with("/runc") && o.binary_name.starts_with('/'), "{}", o.binary_name);
        assert_eq!(o.root, env.path().join("exec/runtime-state/runc").display().to_string());
        assert!(!o.systemd_cgroup);
    }
    assert_eq!(s.get("").unwrap().name, "runc");
}

#[test]
fn case_21_22_implicit_shim_without_binary() {
    // dockerd passes these names to containerd unchecked. berth needs the
    // shim binary on PATH, so an uninstalled shim fails at create with the list.
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    for name in ["io.containerd.my-shim.v42", "io.containerd.my-shim"] {
        let e = s.get(name).unwrap_err();
        assert!(matches!(e, ResolveError::Unknown { .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("unknown or invalid runtime name: {name}; valid runtimes are: ")));
    }
}

#[test]
fn case_23_24_invalid_names() {
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    for name in ["myshim", "/path/to/runc", "/path/to/io.containerd.runc.v2", "my/io.containerd.runc.v2", "RUNC", ".a", "a.b/c"] {
        let e = s.get(name).unwrap_err();
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains(&format!("unknown or invalid runtime name: {name}")), "{e}");
        assert!(e.to_string().contains("gvisor, io.containerd.runc.v2, runc, shimwithopts"), "{e}");
    }
}

#[test]
fn case_25_slash_in_configured_name() {
    // dockerd allows "/" in configured names and then uses the name in the
    // wrapper path (W6). berth's names never contain "/".
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"my/custom.runtime.v1":{"path":"/bin/true"}}}"#);
    assert_one_error_containing(&e, "invalid runtime name \"my/custom.runtime.v1\"");
}

#[test]
fn case_26_typed_runc_options() {
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    let r = s.get("shimwithopts").unwrap();
    assert_eq!(r.shim, "io.containerd.runc.v2");
    assert_eq!(
        r.options,
        ShimOptions::Runc(RuncOptions {
            io_uid: 42,
            root: env.path().join("exec/runtime-state/shimwithopts").display().to_string(),
            ..Default::default()
        })
    );
}

#[test]
fn case_27_28_shims_not_installed_are_unavailable() {
    // dockerd resolves these and fails at task create. berth checks the shim
    // binary and says so at create (127-class error).
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    let e = s.get("wasmedge").unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert!(e.to_string().contains("containerd-shim-wasmedge-v1"), "{e}");
    let e = s.get("shimwithpath").unwrap_err();
    assert!(e.to_string().contains("/path/to/my/shim: no such file or directory"), "{e}");
}

#[test]
fn case_29_generic_options() {
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    let rt = &s.runtimes.runtimes["gvisor"];
    assert_eq!(rt.shim, "io.containerd.runsc.v1");
    let ShimOptions::Generic(g) = &rt.options else { panic!() };
    assert_eq!((g.type_url.as_str(), g.config_path.as_str()), ("io.containerd.runsc.v1.options", "/path/to/runsc.toml"));
}

#[test]
fn case_30_withargs_gets_a_wrapper() {
    let env = Env::new();
    let s = ok(&env, LOOKUP_CONFIG);
    let r = s.get("withargs").unwrap();
    let w = r.wrapper.as_ref().unwrap();
    assert_eq!(fs::read_to_string(&w.path).unwrap(), "#!/bin/sh\nexec '/bin/false' '--version' \"$@\"\n");
    let ShimOptions::Runc(o) = &r.options else { panic!() };
    assert_eq!(o.binary_name, w.path.display().to_string());
    assert_eq!(r.binary.as_deref(), Some(std::path::Path::new("/bin/false")));
    assert_eq!(r.args, vec!["--version".to_string()]);
}

#[test]
fn case_31_permissible_names() {
    use berth_config::load::permissible_shim_name as p;
    assert!(p("a.") && p("a..") && p("io.containerd.my-shim") && p("a b.c"));
    assert!(!p(".a") && !p("a") && !p("a.b/c") && !p("") && !p("/x.v1"));
}

// --- Preflight ---------------------------------------------------------------

#[test]
fn case_32_33_missing_binaries_fail_at_lookup() {
    // dockerd only pre-checks path+args runtimes (W10); berth checks every
    // path runtime, so a missing binary is a clear error before any container.
    let env = Env::new();
    let s = ok(&env, r#"{"runtimes":{"path-only":{"path":"/usr/local/bin/file-not-found"},"with-args":{"path":"/usr/local/bin/file-not-found","runtimeArgs":["--arg"]}}}"#);
    for name in ["path-only", "with-args"] {
        let e = s.get(name).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert!(e.to_string().contains("/usr/local/bin/file-not-found: no such file or directory"), "{e}");
    }
    let e = s.get("path-only").unwrap_err();
    assert!(matches!(e, ResolveError::Unavailable { .. }));
}

// --- Wrappers ------------------------------------------------------------------

#[test]
fn case_34_36_wrappers_survive_reloads() {
    let env = Env::new();
    env.write(r#"{"runtimes":{
        "change-args":{"path":"/bin/true","runtimeArgs":["foo","bar"]},
        "dupe":{"path":"/bin/true","runtimeArgs":["foo","bar"]},
        "change-path":{"path":"/bin/true","runtimeArgs":["baz"]},
        "drop-args":{"path":"/bin/true","runtimeArgs":["some","arguments"]},
        "goes-away":{"path":"/bin/true","runtimeArgs":["bye"]}}}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    let before: Vec<(std::path::PathBuf, String)> =
        store.snapshot().wrappers().map(|p| (p.clone(), fs::read_to_string(p).unwrap())).collect();
    assert_eq!(before.len(), 5);
    // case 36: same content under two names: two files, same digest suffix.
    let s = store.snapshot();
    let (a, b) = (&s.runtimes.runtimes["dupe"], &s.runtimes.runtimes["change-args"]);
    assert_eq!(a.wrapper.as_ref().unwrap().digest, b.wrapper.as_ref().unwrap().digest);
    assert_ne!(a.wrapper.as_ref().unwrap().path, b.wrapper.as_ref().unwrap().path);
    drop(s);
    env.write(r#"{"runtimes":{
        "change-args":{"path":"/bin/true","runtimeArgs":["baz","quux"]},
        "dupe":{"path":"/bin/true","runtimeArgs":["foo","bar"]},
        "change-path":{"path":"/bin/false","runtimeArgs":["baz"]},
        "drop-args":{"path":"/bin/true"}}}"#);
    let report = store.reload(false).unwrap();
    assert_eq!(report.removed, vec!["goes-away"]);
    assert_eq!(report.changed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["change-args", "change-path", "drop-args"]);
    for (path, content) in &before {
        assert_eq!(&fs::read_to_string(path).unwrap(), content, "{} changed", path.display());
    }
}

#[test]
fn case_35_wrapper_name_and_content() {
    // dockerd: unquoted `path args $@` under data-root, base32 name (W2, W3).
    // berth: quoted `exec` script under exec-root, sha256 hex name, mode 0700.
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let s = ok(&env, r#"{"runtimes":{"vm":{"path":"/bin/true","runtimeArgs":["--debug"]}}}"#);
    let w = s.runtimes.runtimes["vm"].wrapper.clone().unwrap();
    let content = "#!/bin/sh\nexec '/bin/true' '--debug' \"$@\"\n";
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(content))
    };
    assert_eq!(w.path, env.wrapper_dir().join(format!("vm.{digest}")));
    assert_eq!(fs::read_to_string(&w.path).unwrap(), content);
    assert_eq!(fs::metadata(&w.path).unwrap().permissions().mode() & 0o7777, 0o700);
    assert_eq!(fs::metadata(env.wrapper_dir()).unwrap().permissions().mode() & 0o7777, 0o700);
}

#[test]
fn case_35_wrapper_execs_the_probed_binary_not_the_bare_name() {
    // A bare `path` is looked up on berth's PATH when probed; the wrapper
    // execs what was found, so the shim's own PATH cannot pick another binary.
    let env = Env::new();
    let s = ok(&env, r#"{"runtimes":{"vm":{"path":"true","runtimeArgs":["--debug"]}}}"#);
    let rt = &s.runtimes.runtimes["vm"];
    let found = berth_config::probe::lookup("true").unwrap();
    assert!(found.is_absolute());
    assert_eq!(rt.binary.as_deref(), Some(found.as_path()));
    let w = rt.wrapper.clone().unwrap();
    let content = format!("#!/bin/sh\nexec '{}' '--debug' \"$@\"\n", found.display());
    assert_eq!(w.content, content);
    assert_eq!(fs::read_to_string(&w.path).unwrap(), content);
}

#[test]
fn case_37_no_blind_wipe() {
    // dockerd wipes the wrapper directory at start (W1). berth never does:
    // GC removes only wrapper-named files nothing references, and leaves
    // foreign files alone.
    let env = Env::new();
    fs::create_dir_all(env.wrapper_dir()).unwrap();
    let foreign = env.wrapper_dir().join("stale");
    fs::write(&foreign, "x").unwrap();
    let old = env.wrapper_dir().join(format!("old.{}", "0".repeat(64)));
    fs::write(&old, "x").unwrap();
    let pinned = env.wrapper_dir().join(format!("pinned.{}", "1".repeat(64)));
    fs::write(&pinned, "x").unwrap();
    let store = ConfigStore::open(env.flags()).unwrap();
    assert!(old.exists() && foreign.exists(), "opening the store deletes nothing");
    let report = store.gc_wrappers(|| Some(vec![pinned.clone()])).unwrap();
    assert_eq!(report.removed, vec![old.clone()]);
    assert!(foreign.exists() && pinned.exists() && !old.exists());
}

// --- CLI flags / merging ---------------------------------------------------------

fn flags_err(env: &Env, add: &[&str]) -> berth_config::ConfigErrors {
    let mut f = env.flags();
    f.add_runtime = add.iter().map(|s| s.to_string()).collect();
    check(&f).expect_err("flags should be rejected")
}

#[test]
fn case_39_40_reserved_via_flag_and_case() {
    let env = Env::new();
    assert_one_error_containing(&flags_err(&env, &["runc=my-runc"]), "runtime name 'runc' is reserved");
    // dockerd folds flag names to lower case, so RUNC=x is "runc" and MyRT is
    // "myrt". berth keeps names as given everywhere: a name means the same in
    // a flag and in a file.
    let mut f = env.flags();
    f.add_runtime = vec!["RUNC=/bin/true".into(), "MyRT=/bin/true".into()];
    let (cfg, _) = check(&f).unwrap();
    assert!(cfg.runtimes.contains_key("RUNC") && cfg.runtimes.contains_key("MyRT"));
}

#[test]
fn case_41_43_flag_syntax() {
    let env = Env::new();
    for bad in ["foo", "=x", "x= "] {
        assert_one_error_containing(&flags_err(&env, &[bad]), &format!("invalid runtime argument: {bad}"));
    }
    assert_one_error_containing(&flags_err(&env, &["a=/x", "a=/y"]), "runtime a is defined twice: in flag --add-runtime and in flag --add-runtime");
    let mut f = env.flags();
    f.add_runtime = vec![" vm = /usr/bin/vm ".into()];
    let (cfg, _) = check(&f).unwrap();
    assert_eq!(cfg.runtimes["vm"].def, berth_config::RuntimeDef::Path { path: "/usr/bin/vm".into(), args: vec![] });
}

#[test]
fn case_44_flag_and_file_define_the_same_runtime() {
    // dockerd silently lets the file win. berth refuses and names both places.
    let env = Env::new();
    env.write(r#"{"runtimes":{"a":{"path":"/f"}}}"#);
    let e = flags_err(&env, &["a=/c", "b=/b"]);
    assert_one_error_containing(&e, "runtime a is defined twice: in flag --add-runtime and in");
    assert_one_error_containing(&e, "daemon.json");
}

#[test]
fn case_45_default_runtime_in_flag_and_file() {
    let env = Env::new();
    env.write(r#"{"default-runtime":"runc"}"#);
    let mut f = env.flags();
    f.default_runtime = Some("runc".into());
    let e = check(&f).unwrap_err();
    assert_one_error_containing(&e, "default-runtime is set both by flag --default-runtime and in the config file");
}

#[test]
fn case_46_reserved_in_file() {
    let env = Env::new();
    let e = err(&env, r#"{"runtimes":{"runc":{"path":"my-runc"}}}"#);
    assert_one_error_containing(&e, "runtime name 'runc' is reserved");
    assert!(messages(&e)[0].contains("daemon.json"), "names the file: {:?}", messages(&e));
}

// --- Reload semantics ------------------------------------------------------------

#[test]
fn case_54_replace_semantics() {
    // dockerd keeps an old default-runtime when the key disappears from the
    // file (W8). berth computes the config from scratch: absent = default.
    let env = Env::new();
    env.write(r#"{"default-runtime":"vm","runtimes":{"vm":{"path":"/bin/true"}}}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    assert_eq!(store.snapshot().runtimes.default, "vm");
    env.write(r#"{"runtimes":{"vm":{"path":"/bin/true"}}}"#);
    let r = store.reload(false).unwrap();
    assert_eq!((r.default_runtime.old.as_str(), r.default_runtime.new.as_str()), ("vm", "runc"));
    // A missing file (not given explicitly) is the built-in defaults.
    let mut f = env.flags();
    f.config_file = None;
    f.add_runtime = vec!["vm=/bin/true".into()];
    f.default_runtime = Some("vm".into());
    let (cfg, _) = check(&f).unwrap();
    assert_eq!(cfg.default_runtime, "vm");
}

#[test]
fn case_55_flags_survive_reload() {
    // dockerd drops --add-runtime runtimes once the file has a "runtimes" key
    // (W7). berth re-applies the flags on every reload.
    let env = Env::new();
    let mut f = env.flags();
    f.add_runtime = vec!["x=/bin/true".into()];
    let store = ConfigStore::open(f).unwrap();
    env.write(r#"{"runtimes":{"y":{"path":"/bin/true"}}}"#);
    let r = store.reload(false).unwrap();
    assert_eq!(r.added, vec!["y"]);
    let s = store.snapshot();
    assert!(s.runtimes.runtimes.contains_key("x") && s.runtimes.runtimes.contains_key("y"));
}

#[test]
fn case_56_failed_reload_changes_nothing() {
    let env = Env::new();
    env.write(r#"{"default-runtime":"vm","runtimes":{"vm":{"path":"/bin/true","runtimeArgs":["a"]}}}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    let before = store.snapshot();
    env.write(r#"{"default-runtime":"vm","runtimes":{"other":{"path":"/bin/true","runtimeArgs":["new"]}}}"#);
    let e = store.reload(false).unwrap_err();
    assert_one_error_containing(&e, "specified default runtime 'vm' does not exist");
    let after = store.snapshot();
    assert!(Arc::ptr_eq(&before, &after), "nothing published");
    assert_eq!(after.generation, 1);
    // Nothing written for the failed attempt.
    let files: Vec<_> = fs::read_dir(env.wrapper_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
}

#[test]
fn case_49_reserved_on_reload_keeps_old_config() {
    let env = Env::new();
    env.write(r#"{"runtimes":{"oci":{"path":"/bin/true"}}}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    env.write(r#"{"runtimes":{"runc":{"path":"my-runc"}}}"#);
    assert_one_error_containing(&store.reload(false).unwrap_err(), "runtime name 'runc' is reserved");
    assert!(store.snapshot().get("oci").is_ok());
}
