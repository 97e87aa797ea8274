//! Seccomp profiles in Docker's format (what `--security-opt
//! seccomp=FILE` sends and `seccomp-profile` in daemon.json names), and
//! their translation into the OCI spec's `linux.seccomp` for one container:
//! rules apply or not by the container's capabilities, the host's
//! architecture and kernel, as dockerd applies them.
//!
//! berth's default profile is `default.json` beside this file (an
//! allow-list equivalent to dockerd's; see its comment).

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use serde::Deserialize;

use crate::caps::{Cap, CapSet};

/// berth's default profile, in Docker's format.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("default.json");

/// Largest profile berth reads (Docker's default is ~20 KiB).
pub const MAX_PROFILE_BYTES: usize = 1 << 20;
/// Most rules a profile may have.
pub const MAX_RULES: usize = 4096;
/// Most syscall names, over all rules.
pub const MAX_NAMES: usize = 65536;

/// A profile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    #[error("decoding seccomp profile failed: {0}")]
    Json(String),
    #[error("seccomp profile is too large ({0} bytes; at most {MAX_PROFILE_BYTES})")]
    TooLarge(usize),
    #[error("seccomp profile has too many rules ({0}; at most {MAX_RULES})")]
    TooManyRules(usize),
    #[error("seccomp profile has too many syscall names ({0}; at most {MAX_NAMES})")]
    TooManyNames(usize),
    #[error("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")]
    ArchAndArchMap,
    #[error("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")]
    NameAndNames,
    #[error("seccomp profile rule {0} names no syscall: give 'names'")]
    NoNames(usize),
    #[error("seccomp profile rule {index}: argument index {arg} is out of range (syscalls have 6 arguments: 0-5)")]
    ArgIndex { index: usize, arg: u32 },
    #[error("seccomp profile rule {index}: unknown capability {name:?} in {field}")]
    UnknownCap { index: usize, field: &'static str, name: String },
    #[error("seccomp profile rule {index}: invalid minKernel {value:?}: use MAJOR.MINOR, e.g. \"4.8\"")]
    MinKernel { index: usize, value: String },
}

/// Docker's profile format.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub comment: Option<String>,
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<Arch>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
    #[serde(default)]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
}

/// An architecture and the ones it also runs (x86_64 runs x86 and x32).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default)]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: an action for some syscalls, maybe conditional.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// A condition on an argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

/// When a rule applies (`includes`: all must hold) or not (`excludes`:
/// any one excludes it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// Go architecture names (`amd64`, `arm64`, …).
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What a rule is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Go architecture name of the host (see [`host_arch`]).
    pub arch: &'a str,
    /// The container's capabilities (its bounding set).
    pub caps: CapSet,
    /// The host kernel's (major, minor), when known.
    pub kernel: Option<(u32, u32)>,
}

impl Profile {
    /// Parses and checks a profile.
    pub fn parse(json: &str) -> Result<Profile, SeccompError> {
        if json.len() > MAX_PROFILE_BYTES {
            return Err(SeccompError::TooLarge(json.len()));
        }
        let p: Profile = serde_json::from_str(json).map_err(|e| SeccompError::Json(e.to_string()))?;
        p.check()?;
        Ok(p)
    }

    /// berth's default profile.
    pub fn default_profile() -> Profile {
        Profile::parse(DEFAULT_PROFILE_JSON).expect("the built-in seccomp profile is valid (tested)")
    }

    fn check(&self) -> Result<(), SeccompError> {
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(SeccompError::ArchAndArchMap);
        }
        if self.syscalls.len() > MAX_RULES {
            return Err(SeccompError::TooManyRules(self.syscalls.len()));
        }
        let names: usize = self.syscalls.iter().map(|r| r.names.len()).sum();
        if names > MAX_NAMES {
            return Err(SeccompError::TooManyNames(names));
        }
        for (i, r) in self.syscalls.iter().enumerate() {
            if r.name.is_some() && !r.names.is_empty() {
                return Err(SeccompError::NameAndNames);
            }
            if r.name.as_deref().unwrap_or("").is_empty() && r.names.is_empty() {
                return Err(SeccompError::NoNames(i));
            }
            if let Some(a) = r.args.iter().find(|a| a.index > 5) {
                return Err(SeccompError::ArgIndex { index: i, arg: a.index });
            }
            for (field, f) in [("includes", &r.includes), ("excludes", &r.excludes)] {
                if let Some(c) = f.caps.iter().find(|c| Cap::from_name(c).is_none()) {
                    return Err(SeccompError::UnknownCap { index: i, field, name: c.clone() });
                }
                if let Some(k) = &f.min_kernel {
                    parse_kernel(k).ok_or_else(|| SeccompError::MinKernel { index: i, value: k.clone() })?;
                }
            }
        }
        Ok(())
    }

    /// The OCI `linux.seccomp` of one container.
    pub fn to_oci(&self, t: Target<'_>) -> LinuxSeccomp {
        let native = scmp_arch(t.arch);
        let mut architectures = self.architectures.clone();
        for m in &self.arch_map {
            if Some(m.architecture) == native {
                architectures.push(m.architecture);
                architectures.extend(m.sub_architectures.iter().copied());
            }
        }
        let mut syscalls = Vec::new();
        for r in self.syscalls.iter().filter(|r| r.applies(t)) {
            let names = match &r.name {
                Some(n) if !n.is_empty() => vec![n.clone()],
                _ => r.names.clone(),
            };
            let mut s = oci_spec::runtime::LinuxSyscall::default();
            s.set_names(names);
            s.set_action(r.action);
            s.set_errno_ret(r.errno_ret);
            if !r.args.is_empty() {
                s.set_args(Some(
                    r.args
                        .iter()
                        .map(|a| {
                            oci_spec::runtime::LinuxSeccompArgBuilder::default()
                                .index(a.index as usize)
                                .value(a.value)
                                .value_two(a.value_two)
                                .op(a.op)
                                .build()
                                .expect("every field of a seccomp argument is set")
                        })
                        .collect(),
                ));
            }
            syscalls.push(s);
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(self.default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        out.set_architectures((!architectures.is_empty()).then_some(architectures));
        out.set_flags((!self.flags.is_empty()).then(|| self.flags.clone()));
        out.set_listener_path(self.listener_path.clone().map(Into::into));
        out.set_listener_metadata(self.listener_metadata.clone());
        out.set_syscalls(Some(syscalls));
        out
    }
}

impl Rule {
    fn applies(&self, t: Target<'_>) -> bool {
        let has = |c: &String| Cap::from_name(c).is_some_and(|c| t.caps.contains(c));
        let kernel_at_least = |k: &Option<String>| match (k.as_deref().and_then(parse_kernel), t.kernel) {
            (Some(min), Some(have)) => have >= min,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let inc = &self.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == t.arch) {
            return false;
        }
        if !inc.caps.iter().all(has) || !kernel_at_least(&inc.min_kernel) {
            return false;
        }
        let exc = &self.excludes;
        if exc.arches.iter().any(|a| a == t.arch) || exc.caps.iter().any(has) {
            return false;
        }
        if exc.min_kernel.is_some() && kernel_at_least(&exc.min_kernel) {
            return false;
        }
        true
    }
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
    Some((major, minor))
}

/// The host's kernel version from `uname`.
pub fn host_kernel() -> Option<(u32, u32)> {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let release: String = u.release.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
    let numeric: String = release.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    parse_kernel(&numeric)
}

/// The Go architecture name (Docker profiles use them) of the host berth
/// was built for.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The native seccomp architecture of a Go architecture name.
fn scmp_arch(go: &str) -> Option<Arch> {
    Some(match go {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "s390x" => Arch::ScmpArchS390x,
        "s390" => Arch::ScmpArchS390,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "ppc64" => Arch::ScmpArchPpc64,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        "mips64le" => Arch::ScmpArchMipsel64,
        "mips64" => Arch::ScmpArchMips64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::DEFAULT;

    fn target(caps: CapSet) -> Target<'static> {
        Target { arch: "amd64", caps, kernel: Some((6, 1)) }
    }

    fn allowed(s: &LinuxSeccomp, name: &str) -> Vec<String> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .map(|r| format!("{:?} {:?} {:?}", r.action(), r.errno_ret(), r.args().as_ref().map(|a| a.len())))
            .collect()
    }

    #[test]
    fn default_profile_parses_and_depends_on_caps() {
        let p = Profile::default_profile();
        let s = p.to_oci(target(DEFAULT));
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert!(allowed(&s, "mount").is_empty());
        assert!(allowed(&s, "unshare").is_empty());
        assert!(allowed(&s, "keyctl").is_empty());
        assert_eq!(allowed(&s, "clone3"), ["ScmpActErrno Some(38) None"]);
        assert_eq!(allowed(&s, "clone"), ["ScmpActAllow None Some(1)"]);
        assert_eq!(allowed(&s, "arch_prctl").len(), 1);
        assert!(allowed(&s, "set_tls").is_empty(), "ARM-only rules stay out on amd64");
        let mut admin = DEFAULT;
        admin.insert(Cap::from_name("CAP_SYS_ADMIN").unwrap());
        let s = p.to_oci(target(admin));
        assert_eq!(allowed(&s, "mount"), ["ScmpActAllow None None"]);
        assert_eq!(allowed(&s, "clone"), ["ScmpActAllow None None"]);
        assert_eq!(allowed(&s, "clone3"), ["ScmpActAllow None None"]);
        let s = p.to_oci(Target { arch: "arm64", caps: DEFAULT, kernel: None });
        assert_eq!(s.architectures().as_ref().unwrap(), &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]);
        assert_eq!(allowed(&s, "set_tls").len(), 1);
        assert!(allowed(&s, "arch_prctl").is_empty());
    }

    #[test]
    fn profile_checks() {
        let e = |j: &str| Profile::parse(j).unwrap_err().to_string();
        assert!(e("{").starts_with("decoding seccomp profile failed"));
        assert!(e(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).starts_with("decoding seccomp profile failed"));
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ERRNO","bogus":1}"#).contains("bogus"));
        assert_eq!(
            e(r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#),
            SeccompError::ArchAndArchMap.to_string()
        );
        assert_eq!(
            e(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#),
            SeccompError::NameAndNames.to_string()
        );
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#).contains("names no syscall"));
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_NOPE"]}}]}"#)
            .contains("unknown capability"));
        assert!(e(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#)
            .contains("out of range"));
        let big = format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","comment":"{}"}}"#, "x".repeat(MAX_PROFILE_BYTES));
        assert!(e(&big).contains("too large"));
        // The deprecated single `name` still works.
        let p = Profile::parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"chmod","action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        let s = p.to_oci(target(DEFAULT));
        assert_eq!(s.syscalls().as_ref().unwrap()[0].names(), &["chmod".to_string()]);
    }

    #[test]
    fn min_kernel() {
        let p = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}]}"#,
        )
        .unwrap();
        let n = |k| p.to_oci(Target { arch: "amd64", caps: DEFAULT, kernel: k }).syscalls().as_ref().unwrap().len();
        assert_eq!(n(Some((4, 8))), 1);
        assert_eq!(n(Some((5, 10))), 1);
        assert_eq!(n(Some((4, 4))), 0);
        assert_eq!(n(None), 0);
        assert!(host_kernel().is_some());
    }
}
