//! berth's default seccomp profile against what dockerd 20.10 generates, for
//! the default capabilities and for each `--cap-add`/`--cap-drop` variant:
//! the `linux.seccomp` sections recorded from dockerd on Debian 12 are in
//! `fixtures/dockerd-20.10/` (how: `record.sh` there).
//!
//! Compared as sets of (syscall, action, args, errno): berth may group the
//! rules differently. berth allows a few calls dockerd 20.10 does not know,
//! listed in `NEWER_THAN_20_10` (later dockerd releases allow them too).

use std::collections::BTreeSet;
use std::path::Path;

use berth_security::caps::{self, Cap, CapSet};
use berth_security::seccomp::{Profile, Target};

/// Calls berth's profile adds over dockerd 20.10's, with the capability
/// they need: time64 and NUMA calls newer kernels added.
const NEWER_THAN_20_10: [(&str, &str); 2] = [("clock_settime64", "CAP_SYS_TIME"), ("set_mempolicy_home_node", "CAP_SYS_NICE")];

type Entry = (String, String, String, Option<u64>);

fn normalize(v: &serde_json::Value) -> BTreeSet<Entry> {
    let mut out = BTreeSet::new();
    for r in v["syscalls"].as_array().unwrap() {
        let args: Vec<String> = r["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| format!("{}:{}:{}:{}", a["index"], a["value"], a["valueTwo"].as_u64().unwrap_or(0), a["op"]))
                    .collect()
            })
            .unwrap_or_default();
        for n in r["names"].as_array().unwrap() {
            out.insert((n.as_str().unwrap().to_owned(), r["action"].to_string(), args.join(","), r["errnoRet"].as_u64()));
        }
    }
    out
}

fn caps_of(file: &str) -> CapSet {
    let c = |n: &str| Cap::from_name(n).unwrap();
    match file {
        "default.json" => caps::DEFAULT,
        "dropall.json" => CapSet::EMPTY,
        "capmix.json" => [c("CAP_NET_ADMIN"), c("CAP_SYS_PTRACE")].into_iter().collect(),
        other => {
            let name = other.strip_prefix("cap-add-").and_then(|s| s.strip_suffix(".json")).unwrap();
            let mut s = caps::DEFAULT;
            s.insert(c(&format!("CAP_{name}")));
            s
        }
    }
}

#[test]
fn default_profile_matches_dockerd_20_10_for_every_capability_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-20.10");
    let profile = Profile::default_profile();
    let mut compared = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !file.ends_with(".json") {
            continue;
        }
        let dockerd: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let set = caps_of(&file);
        let ours = serde_json::to_value(profile.to_oci(Target { arch: "amd64", caps: set, kernel: Some((6, 1)) })).unwrap();
        assert_eq!(ours["defaultAction"], dockerd["defaultAction"], "{file}");
        assert_eq!(ours["architectures"], dockerd["architectures"], "{file}");
        let (theirs, mut ours) = (normalize(&dockerd), normalize(&ours));
        ours.retain(|(name, ..)| {
            !NEWER_THAN_20_10.iter().any(|(n, cap)| n == name && set.contains(Cap::from_name(cap).unwrap()))
        });
        let missing: Vec<_> = theirs.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{file}: berth lacks {missing:?}; berth adds {extra:?}");
        compared += 1;
    }
    assert!(compared >= 25, "the recorded fixtures are missing ({compared} compared)");
}
