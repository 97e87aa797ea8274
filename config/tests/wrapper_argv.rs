//! Property test: a wrapper passes exactly the configured argv bytes, then
//! the caller's, to the binary, whatever the bytes (spaces, quotes, `$`, `*`,
//! `;`, newlines, unicode).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_config::wrapper::Wrapper;
use proptest::prelude::*;

/// A binary that prints each of its args followed by a NUL byte.
fn recorder(dir: &Path) -> PathBuf {
    // A directory name a naive wrapper would mangle.
    let d = dir.join("bin dir's $HOME;*");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("record args");
    std::fs::write(&p, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        // Shell-hostile ASCII, heavily weighted.
        "[ -~\t\n]{0,12}",
        r#"[ '"$`*;&|<>(){}\\!#~\n]{1,8}"#,
        // Any unicode without NUL (argv cannot hold NUL).
        any::<String>().prop_map(|s| s.replace('\0', "")),
        Just(String::new()),
        Just("-".to_string()),
        Just("$@".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn wrapper_passes_exact_argv(configured in prop::collection::vec(arg(), 0..6), caller in prop::collection::vec(arg(), 0..4)) {
        let tmp = tempfile::tempdir().unwrap();
        let bin = recorder(tmp.path());
        let w = Wrapper::plan(&tmp.path().join("runtimes"), "rt", bin.to_str().unwrap(), &configured);
        w.materialize().unwrap();
        let out = Command::new(&w.path).args(&caller).output().unwrap();
        prop_assert!(out.status.success(), "wrapper failed: {:?}", String::from_utf8_lossy(&out.stderr));
        let mut expected = Vec::new();
        for a in configured.iter().chain(caller.iter()) {
            expected.extend_from_slice(a.as_bytes());
            expected.push(0);
        }
        prop_assert_eq!(out.stdout, expected);
    }
}

#[test]
fn wrapper_execs_instead_of_forking() {
    // `exec` means the runtime replaces the shell: the pid the shim sees is
    // the runtime's, and no shell lingers as its parent.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("showpid");
    std::fs::write(&p, "#!/bin/sh\necho $$\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = Wrapper::plan(&tmp.path().join("runtimes"), "rt", p.to_str().unwrap(), &["x".into()]);
    w.materialize().unwrap();
    let child = Command::new(&w.path).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}
