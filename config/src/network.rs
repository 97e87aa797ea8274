//! Which network modes a runtime can give a container.
//!
//! runc, crun and youki use the network namespace the OCI spec gives them,
//! so every mode berth offers works. gVisor (`runsc`) brings its own network
//! stack and obeys its own `--network` flag instead, which limits what a
//! container on it may ask for:
//!
//! | runsc flag | `--network host` | private (`none`, default) |
//! | --- | --- | --- |
//! | `--network=none` | refused: only gVisor's own loopback | works (isolated loopback) |
//! | `--network=host` | works (the host's interfaces) | refused: no usable loopback |
//! | `sandbox` (no flag) | refused: gVisor will not run in the host's namespace | works, except on runsc releases before August 2024 on kernels that show `net.core.rmem_default` in every namespace (gVisor issue 10704): refused |
//!
//! The check runs at create (and again at start, as a reload may have changed
//! the runtime in between), so a container that cannot work is refused with
//! a message saying what to do instead of failing inside runsc at start.

use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

/// How a gVisor runtime sets up networking (from its `--network` flag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum GvisorNetwork {
    /// `--network=none`: an isolated loopback only.
    None,
    /// `--network=host`: the interfaces of the namespace the sandbox runs in.
    Host,
    /// gVisor's own network stack (`--network=sandbox`, the default).
    /// `unusable` says why it cannot start on this host, if it cannot.
    Sandbox { unusable: Option<String> },
}

/// The first day of the releases with the fixed root-namespace check
/// (gVisor issue 10704 was filed on 2024-07-30 and fixed after it).
const FIXED_SINCE: u32 = 20240801;

/// What berth knows about a runtime's networking, if it is gVisor: detected
/// by its `--version` output (`runsc version …`) or a binary named `runsc`.
pub fn gvisor_network(binary: Option<&Path>, version: Option<&str>, args: &[String]) -> Option<GvisorNetwork> {
    let by_version = version.is_some_and(|v| v.starts_with("runsc "));
    let by_name = binary.and_then(|b| b.file_name()).is_some_and(|n| n == "runsc");
    if !by_version && !by_name {
        return None;
    }
    Some(match network_flag(args).as_deref() {
        Some("none") => GvisorNetwork::None,
        Some("host") => GvisorNetwork::Host,
        _ => GvisorNetwork::Sandbox {
            unusable: sandbox_unusable(version, kernel_shows_rmem_default_in_new_netns),
        },
    })
}

/// The value of the last `--network` flag (Go flag syntax: one or two
/// dashes, `=value` or a separate word).
fn network_flag(args: &[String]) -> Option<String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else { continue };
        if let Some(v) = rest.strip_prefix("network=") {
            found = Some(v.to_string());
        } else if rest == "network" {
            found = it.next().cloned();
        }
    }
    found
}

/// Whether runsc applies the containers' own seccomp filters: only with
/// `--oci-seccomp` (Go boolean flag syntax: `--oci-seccomp`,
/// `--oci-seccomp=true`; the last one wins). Without it gVisor's sandbox is
/// the containers' only confinement.
pub fn gvisor_applies_oci_seccomp(args: &[String]) -> bool {
    let mut on = false;
    for a in args {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else { continue };
        match rest {
            "oci-seccomp" | "oci-seccomp=true" | "oci-seccomp=1" | "oci-seccomp=t" => on = true,
            "oci-seccomp=false" | "oci-seccomp=0" | "oci-seccomp=f" => on = false,
            _ => {}
        }
    }
    on
}

/// Why gVisor's sandbox network cannot start here, if it cannot.
/// The kernel is only checked for runsc releases that have the bug.
fn sandbox_unusable(version: Option<&str>, kernel_shows_rmem_default: impl FnOnce() -> bool) -> Option<String> {
    let date = version.and_then(release_date)?;
    (date < FIXED_SINCE && kernel_shows_rmem_default()).then(|| {
        format!(
            "this runsc (release {date}) mistakes every network namespace for the host's on kernels that show \
             net.core.rmem_default in each namespace, as this one does (gVisor issue 10704, fixed in later releases)"
        )
    })
}

/// The `YYYYMMDD` release date in a runsc version line
/// (`runsc version release-20221219.0`, Debian's `0.0~20221219.0`).
fn release_date(version: &str) -> Option<u32> {
    let b = version.as_bytes();
    (0..b.len().saturating_sub(7)).find_map(|i| {
        let w = &b[i..i + 8];
        let starts_word = i == 0 || !b[i - 1].is_ascii_digit();
        let ends_word = b.get(i + 8).is_none_or(|c| !c.is_ascii_digit());
        (starts_word && ends_word && w.iter().all(u8::is_ascii_digit) && w.starts_with(b"20"))
            .then(|| std::str::from_utf8(w).ok()?.parse().ok())
            .flatten()
    })
}

/// Whether `/proc/sys/net/core/rmem_default` shows up in a fresh network
/// namespace (it does on recent kernels; old runsc takes it as the sign of
/// the host's namespace). Checked once, on a short-lived thread that
/// unshares its own network namespace.
fn kernel_shows_rmem_default_in_new_netns() -> bool {
    static SHOWS: OnceLock<bool> = OnceLock::new();
    *SHOWS.get_or_init(|| {
        // A namespace that cannot be made (a transient ENOMEM or ENOSPC
        // under load) is retried; if it never can, the answer is "shows",
        // so old runsc is refused with a clear message rather than left to
        // fail inside the sandbox.
        for _ in 0..3 {
            let answer = std::thread::spawn(|| {
                // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's
                // network namespace; the thread ends right after.
                let ok = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
                ok.then(|| Path::new("/proc/sys/net/core/rmem_default").exists())
            })
            .join()
            .ok()
            .flatten();
            if let Some(shows) = answer {
                return shows;
            }
        }
        true
    })
}

/// A container's network mode as far as the runtime is concerned.
fn wants_host(mode: &str) -> bool {
    mode == "host"
}

impl GvisorNetwork {
    /// Checks that a container with `HostConfig.NetworkMode` = `mode` can run
    /// on runtime `name`; the error says what to do instead. A mode
    /// `network:NAME` is a bridge network berth sets up in the container's
    /// namespace (a veth and its address).
    pub fn check(&self, name: &str, mode: &str) -> Result<(), String> {
        let host = wants_host(mode);
        if let Some(net) = mode.strip_prefix("network:") {
            match self {
                GvisorNetwork::None => {
                    return Err(format!(
                        "runtime {name} runs gVisor with --network=none: its containers get gVisor's own loopback only, \
                         never the interface berth sets up on network {net}; run the container with --network none, or \
                         on a runtime with gVisor's own network stack (no --network flag) where this runsc supports it"
                    ))
                }
                GvisorNetwork::Host => {
                    return Err(format!(
                        "runtime {name} runs gVisor with --network=host: it is meant for --network host, and berth \
                         does not put gVisor's host-network mode in a bridge network's namespace (network {net}); run \
                         the container with --network host, or on a runtime with gVisor's own network stack"
                    ))
                }
                GvisorNetwork::Sandbox { .. } => {} // gVisor's stack takes the namespace's interfaces: checked below
            }
        }
        match self {
            GvisorNetwork::None if host => Err(format!(
                "runtime {name} runs gVisor with --network=none: its containers get gVisor's own loopback only and \
                 cannot use the host's network; run the container without --network host, or on a runtime registered \
                 with \"--network=host\" in its runtimeArgs"
            )),
            GvisorNetwork::Host if !host => Err(format!(
                "runtime {name} runs gVisor with --network=host: it gives a container the interfaces of the namespace \
                 it runs in, and only --network host makes that a working network (a private namespace has no usable \
                 loopback); run the container with --network host, or on a runtime registered with \"--network=none\""
            )),
            GvisorNetwork::Sandbox { .. } if host => Err(format!(
                "runtime {name} runs gVisor with its own network stack (--network=sandbox), which refuses to run in the \
                 host's network namespace; run the container without --network host, or on a runtime registered with \
                 \"--network=host\" in its runtimeArgs"
            )),
            GvisorNetwork::Sandbox { unusable: Some(why) } => Err(format!(
                "runtime {name} runs gVisor with its own network stack (--network=sandbox), which cannot start on this \
                 host: {why}; add \"--network=none\" (or \"--network=host\") to the runtime's runtimeArgs"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bridge_networks_need_gvisors_own_stack() {
        let none = GvisorNetwork::None;
        assert!(none.check("gv", "network:bridge").unwrap_err().contains("never the interface berth sets up on network bridge"));
        assert!(GvisorNetwork::Host.check("gv", "network:app").unwrap_err().contains("--network=host"));
        assert!(GvisorNetwork::Sandbox { unusable: None }.check("gv", "network:app").is_ok());
        assert!(GvisorNetwork::Sandbox { unusable: Some("old".into()) }.check("gv", "network:app").is_err());
    }

    #[test]
    fn reads_the_network_flag_like_go() {
        assert_eq!(network_flag(&args(&["--platform=ptrace", "--network=none"])).as_deref(), Some("none"));
        assert_eq!(network_flag(&args(&["-network", "host"])).as_deref(), Some("host"));
        assert_eq!(network_flag(&args(&["--network=host", "--network", "none"])).as_deref(), Some("none"));
        assert_eq!(network_flag(&args(&["--platform=ptrace", "--networkx=none"])), None);
        assert_eq!(network_flag(&args(&["--network"])), None);
    }

    #[test]
    fn reads_the_oci_seccomp_flag() {
        assert!(gvisor_applies_oci_seccomp(&args(&["--platform=ptrace", "--oci-seccomp"])));
        assert!(gvisor_applies_oci_seccomp(&args(&["-oci-seccomp=true"])));
        assert!(!gvisor_applies_oci_seccomp(&args(&["--oci-seccomp", "--oci-seccomp=false"])));
        assert!(!gvisor_applies_oci_seccomp(&args(&["--network=none"])));
    }

    #[test]
    fn release_dates() {
        assert_eq!(release_date("runsc version 0.0~20221219.0"), Some(20221219));
        assert_eq!(release_date("runsc version release-20240807.0"), Some(20240807));
        assert_eq!(release_date("runsc version 1a2b3c4d"), None);
        assert_eq!(release_date("runsc version 120221219"), None);
    }

    #[test]
    fn detects_gvisor_by_version_or_name() {
        let v = Some("runsc version 0.0~20221219.0");
        assert_eq!(gvisor_network(None, v, &args(&["--network=none"])), Some(GvisorNetwork::None));
        assert_eq!(gvisor_network(Some(Path::new("/usr/bin/runsc")), None, &args(&["--network=host"])), Some(GvisorNetwork::Host));
        assert_eq!(gvisor_network(Some(Path::new("/usr/sbin/runc")), Some("runc version 1.1.5"), &[]), None);
    }

    #[test]
    fn sandbox_is_unusable_only_for_old_runsc_on_such_kernels() {
        let old = Some("runsc version 0.0~20221219.0");
        let new = Some("runsc version release-20250101.0");
        assert!(sandbox_unusable(old, || true).unwrap().contains("gVisor issue 10704"));
        assert_eq!(sandbox_unusable(old, || false), None);
        assert_eq!(sandbox_unusable(new, || panic!("no kernel check for a fixed release")), None);
        assert_eq!(sandbox_unusable(Some("runsc version abcdef"), || panic!("no kernel check without a date")), None);
    }

    #[test]
    fn checks_each_mode() {
        let none = GvisorNetwork::None;
        assert!(none.check("gv", "none").is_ok() && none.check("gv", "").is_ok() && none.check("gv", "bridge").is_ok());
        let e = none.check("gv", "host").unwrap_err();
        assert!(e.starts_with("runtime gv runs gVisor with --network=none") && e.contains("--network=host"), "{e}");

        let host = GvisorNetwork::Host;
        assert!(host.check("gvh", "host").is_ok());
        assert!(host.check("gvh", "none").unwrap_err().contains("run the container with --network host"));
        assert!(host.check("gvh", "").is_err());

        let sandbox = GvisorNetwork::Sandbox { unusable: None };
        assert!(sandbox.check("gvs", "").is_ok() && sandbox.check("gvs", "none").is_ok());
        assert!(sandbox.check("gvs", "host").unwrap_err().contains("refuses to run in the host's network namespace"));
        let broken = GvisorNetwork::Sandbox { unusable: Some("old runsc".into()) };
        let e = broken.check("gvs", "").unwrap_err();
        assert!(e.contains("cannot start on this host: old runsc") && e.contains("add \"--network=none\""), "{e}");
    }

    #[test]
    fn kernel_probe_answers() {
        // Whatever this kernel does, the probe answers (and caches) without
        // touching the calling thread's namespace.
        let before = std::fs::read_link("/proc/thread-self/ns/net").ok();
        let _ = kernel_shows_rmem_default_in_new_netns();
        assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").ok(), before);
    }
}
