//! `HostConfig.SecurityOpt` strings (`--security-opt`), as dockerd reads
//! them: `KEY=VALUE` (or the old `KEY:VALUE`), and the bare
//! `no-new-privileges`.
//!
//! What berth does with each:
//! - `seccomp=unconfined` / `seccomp=builtin` / `seccomp=<profile JSON>`
//!   (the docker CLI reads `seccomp=FILE` and sends the file's content);
//! - `no-new-privileges[=true|false]`;
//! - `systempaths=unconfined` (no masked or read-only paths in /proc, /sys);
//! - `writable-cgroups=true|false`;
//! - `apparmor=unconfined` and `label=disable` are accepted: they ask for
//!   what berth does anyway on a host without AppArmor or SELinux. Any other
//!   `apparmor=`/`label=` value is refused: berth applies no AppArmor
//!   profile nor SELinux label (see [`SecurityOptError::AppArmor`]).

use crate::seccomp::{Profile, SeccompError};

/// The seccomp filter a container asked for.
#[derive(Debug, Clone, Default)]
pub enum SeccompChoice {
    /// The daemon's profile (`seccomp-profile` in daemon.json, else berth's).
    #[default]
    Daemon,
    /// No filter.
    Unconfined,
    /// berth's built-in profile, whatever the daemon's is.
    Builtin,
    /// A profile given with the container.
    Custom(Box<Profile>),
}

/// The parsed `SecurityOpt` of a container.
#[derive(Debug, Clone, Default)]
pub struct SecurityOpts {
    pub seccomp: SeccompChoice,
    /// `Some` when given; `None` = the daemon's default.
    pub no_new_privileges: Option<bool>,
    /// `systempaths=unconfined`.
    pub unmask_system_paths: bool,
    /// `writable-cgroups=true`.
    pub writable_cgroups: bool,
}

/// A security option berth cannot honour. Messages are dockerd's where
/// dockerd has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityOptError {
    #[error("invalid --security-opt 1: {0:?}")]
    Format(String),
    #[error("invalid --security-opt 2: {0:?}")]
    UnknownKey(String),
    #[error("invalid --security-opt 2: {opt:?}: {key} takes true or false")]
    NotBool { opt: String, key: &'static str },
    #[error("invalid --security-opt 2: {0:?}: systempaths takes only unconfined")]
    SystemPaths(String),
    #[error(
        "security option {0:?} cannot be honoured: berth applies no AppArmor profiles (AppArmor is not enabled on this \
         host, or berth does not support it); remove the option or use apparmor=unconfined"
    )]
    AppArmor(String),
    #[error(
        "security option {0:?} cannot be honoured: berth applies no SELinux labels; remove the option or use label=disable"
    )]
    Label(String),
    #[error("security option \"seccomp\": {0}")]
    Seccomp(#[from] SeccompError),
}

fn parse_bool(opt: &str, key: &'static str, v: &str) -> Result<bool, SecurityOptError> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(SecurityOptError::NotBool { opt: opt.to_owned(), key }),
    }
}

/// Parses a container's `SecurityOpt` list.
pub fn parse(opts: &[String]) -> Result<SecurityOpts, SecurityOptError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = Some(true);
            continue;
        }
        // `=` first (a profile's JSON holds `:`), then the old `:` form.
        let (key, value) = match opt.split_once('=') {
            Some(kv) => kv,
            None => opt.split_once(':').ok_or_else(|| SecurityOptError::Format(opt.clone()))?,
        };
        match key {
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => SeccompChoice::Unconfined,
                    "builtin" => SeccompChoice::Builtin,
                    json => SeccompChoice::Custom(Box::new(Profile::parse(json)?)),
                }
            }
            "no-new-privileges" => out.no_new_privileges = Some(parse_bool(opt, "no-new-privileges", value)?),
            "systempaths" if value == "unconfined" => out.unmask_system_paths = true,
            "systempaths" => return Err(SecurityOptError::SystemPaths(opt.clone())),
            "writable-cgroups" => out.writable_cgroups = parse_bool(opt, "writable-cgroups", value)?,
            "apparmor" if value == "unconfined" => {}
            "apparmor" => return Err(SecurityOptError::AppArmor(opt.clone())),
            "label" if value == "disable" => {}
            "label" => return Err(SecurityOptError::Label(opt.clone())),
            _ => return Err(SecurityOptError::UnknownKey(opt.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<SecurityOpts, SecurityOptError> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn accepted_forms() {
        let o = p(&["no-new-privileges", "seccomp=unconfined", "systempaths=unconfined", "apparmor=unconfined", "label=disable"]).unwrap();
        assert_eq!(o.no_new_privileges, Some(true));
        assert!(matches!(o.seccomp, SeccompChoice::Unconfined));
        assert!(o.unmask_system_paths && !o.writable_cgroups);
        assert_eq!(p(&["no-new-privileges=false"]).unwrap().no_new_privileges, Some(false));
        assert_eq!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges, Some(true));
        assert!(p(&["writable-cgroups=true"]).unwrap().writable_cgroups);
        assert!(matches!(p(&["seccomp=builtin"]).unwrap().seccomp, SeccompChoice::Builtin));
        let o = p(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#]).unwrap();
        assert!(matches!(o.seccomp, SeccompChoice::Custom(_)));
        assert!(matches!(p(&[]).unwrap().seccomp, SeccompChoice::Daemon));
    }

    #[test]
    fn refused_forms() {
        let e = |v: &str| p(&[v]).unwrap_err().to_string();
        assert_eq!(e("bogus"), "invalid --security-opt 1: \"bogus\"");
        assert_eq!(e("bogus=1"), "invalid --security-opt 2: \"bogus=1\"");
        assert!(e("no-new-privileges=maybe").contains("takes true or false"));
        assert!(e("apparmor=docker-default").contains("berth applies no AppArmor profiles"));
        assert!(e("label=type:svirt_t").contains("no SELinux labels"));
        assert!(e("seccomp={").starts_with("security option \"seccomp\": decoding seccomp profile failed"));
        assert!(e("systempaths=confined").contains("only unconfined"));
    }
}
