//! `seccomp`: seccomp profiles in Docker's format; `security_opts`:
//! `--security-opt` strings, capability names, device cgroup rules and
//! `--device` specifications.

use berth_security::caps::{self, Cap, CapSet};
use berth_security::devices::{self, DeviceRequest};
use berth_security::seccomp::{Profile, Target};
use berth_security::{opts, SeccompChoice};

use crate::{lines, text};

/// A profile's JSON (as `seccomp=…` or `seccomp-profile` gives it).
pub fn seccomp(data: &[u8]) {
    let profile = match Profile::parse(&text(data)) {
        Ok(p) => p,
        Err(e) => return assert!(!e.to_string().is_empty()),
    };
    to_oci(&profile);
}

/// The profile for a few containers and hosts.
fn to_oci(profile: &Profile) {
    let mut no_admin = caps::DEFAULT;
    no_admin.remove(Cap::from_name("CAP_CHOWN").expect("a known capability"));
    let targets = [
        Target { arch: "amd64", caps: caps::DEFAULT, kernel: Some((6, 1)) },
        Target { arch: "arm64", caps: CapSet::all_known(), kernel: None },
        Target { arch: "s390x", caps: no_admin, kernel: Some((3, 10)) },
        Target { arch: "", caps: CapSet::EMPTY, kernel: Some((u32::MAX, u32::MAX)) },
    ];
    for t in targets {
        let oci = profile.to_oci(t);
        let rules = oci.syscalls().as_ref().map_or(0, Vec::len);
        assert!(rules <= profile.syscalls.len(), "{rules} rules out of {}", profile.syscalls.len());
    }
}

/// One item per line, each read as every kind of option.
pub fn security_opts(data: &[u8]) {
    let lines = lines(data);
    match opts::parse(&lines) {
        Ok(o) => {
            if let SeccompChoice::Custom(p) = &o.seccomp {
                to_oci(p);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for l in &lines {
        let _ = devices::parse_cgroup_rule(l);
        let _ = caps::parse("CapAdd", l);
        let mut parts = l.splitn(3, ':').map(str::to_owned);
        let _ = devices::validate(&DeviceRequest {
            path_on_host: parts.next().unwrap_or_default(),
            path_in_container: parts.next().unwrap_or_default(),
            cgroup_permissions: parts.next().unwrap_or_default(),
        });
    }
    let held = CapSet::from_mask(0x1fffeffffff);
    let half = lines.len() / 2;
    for privileged in [false, true] {
        if let Ok(set) = caps::effective(&lines[..half], &lines[half..], privileged, held) {
            assert_eq!(set.intersect(held), set, "capabilities beyond the daemon's");
        }
    }
}
