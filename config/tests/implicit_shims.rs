//! Implicit containerd shim names. Alone in its test binary because it
//! changes PATH for the process.

mod common;

use berth_config::{check, ConfigStore, Kind};
use common::{assert_one_error_containing, Env};

#[test]
fn implicit_shim_found_on_path() {
    let env = Env::new();
    let shim = env.script("containerd-shim-realfake-v42", "exit 0");
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: this test binary has a single test; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("PATH", format!("{}:{path}", shim.parent().unwrap().display())) };

    // Case 52: an installed shim works as default and by name, with no config.
    env.write(r#"{"default-runtime":"io.containerd.realfake.v42"}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    let s = store.snapshot();
    let r = s.get("").unwrap();
    assert_eq!((r.kind, r.shim.as_str()), (Kind::Implicit, "io.containerd.realfake.v42"));
    assert_eq!(r.binary.as_deref(), Some(shim.as_path()));
    assert!(s.get("io.containerd.realfake.v42").is_ok());
    // Versionless names map to the last two parts, as containerd does.
    assert!(s.get("io.containerd.nosuch").is_err());
    assert!(s.runtimes.searches_path("io.containerd.realfake.v42"));
    assert!(!s.runtimes.searches_path("runc") && !s.runtimes.searches_path(""));

    // Only the last two parts pick the binary, so any prefix would find it:
    // names from the API keep the charset and length of configured names,
    // and the error shows a bad one escaped and cut short.
    for bad in [
        "line\nbreak.io.containerd.realfake.v42".to_string(),
        format!("{}.io.containerd.realfake.v42", "a".repeat(200)),
        "tab\there.realfake.v42".to_string(),
        "ünïcode.realfake.v42".to_string(),
    ] {
        assert!(!s.runtimes.searches_path(&bad), "{bad:?}");
        let e = s.get(&bad).expect_err("refused");
        assert!(matches!(e, berth_config::ResolveError::Unknown { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("unknown or invalid runtime name: "), "{msg}");
        assert!(!msg.chars().any(char::is_control) && msg.len() < 300, "{msg:?}");
    }

    // Operators can turn implicit shims off.
    env.write(r#"{"default-runtime":"io.containerd.realfake.v42","allow-implicit-shims":false}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "specified default runtime 'io.containerd.realfake.v42' does not exist");
    env.write(r#"{"allow-implicit-shims":false}"#);
    store.reload(false).unwrap();
    assert!(store.snapshot().get("io.containerd.realfake.v42").is_err());
}
