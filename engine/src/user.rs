//! `Config.User` (and an exec's `User`) the way Docker resolves it:
//! `user`, `user:group`, `uid`, `uid:gid`, any part a name or a number,
//! names looked up in the container's own `/etc/passwd` and `/etc/group`.
//!
//! - A numeric uid need not exist in `/etc/passwd`; when it does and no
//!   group is given, the entry's primary gid is used (else gid 0).
//! - A name must exist, else "unable to find user NAME: no matching entries
//!   in passwd file" (dockerd's text).
//! - Without an explicit group, the supplementary groups are those of
//!   `/etc/group` that list the user's name as a member.
//!
//! The files are read from the container's root filesystem without mounting
//! it ([`read_rootfs_file`]: the layers of an overlay mount, top first, with
//! whiteouts and opaque directories honoured), or, for a running container,
//! through `/proc/<pid>/root`.

use std::path::PathBuf;

use crate::confined::{self, ReadError, RootfsMount};

/// The resolved identity of a container's process (default: root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Why a user could not be resolved (shown to the user as is).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user {0:?}: a uid or gid must be a number below 2^32, or a name")]
    Invalid(String),
    /// A `--group-add` name that is not in the container's /etc/group
    /// (dockerd's capitalised text).
    #[error("Unable to find group {0}: no matching entries in group file")]
    NoGroupToAdd(String),
    /// A name could not be looked up because the file could not be read.
    #[error("unable to find {what}: {reason}")]
    Unreadable { what: String, reason: String },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?.trim().parse().ok()?;
        let gid = f.next()?.trim().parse().ok()?;
        Some(PasswdEntry { name, uid, gid })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let gid = f.next()?.trim().parse().ok()?;
        let members = f.next().unwrap_or("").split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
        Some(GroupEntry { name, gid, members })
    })
}

/// Resolves `user` against the text of `/etc/passwd` and `/etc/group`
/// (`None`: the file does not exist).
pub fn resolve(user: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser, UserError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = passwd.unwrap_or("");
    let group_text = group.unwrap_or("");
    let numeric = |s: &str| -> Result<Option<u32>, UserError> {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            s.parse().map(Some).map_err(|_| UserError::Invalid(user.to_string()))
        } else {
            Ok(None)
        }
    };
    // The user: by number (an entry is optional) or by name (required;
    // "root" stands for 0 even without a passwd file).
    let (uid, mut gid, name) = match (u, numeric(u)?) {
        ("", _) => (0, 0, passwd_entries(passwd).find(|e| e.uid == 0).map(|e| e.name)),
        (_, Some(uid)) => match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name)),
            None => (uid, 0, None),
        },
        (name, None) => match passwd_entries(passwd).find(|e| e.name == name) {
            Some(e) => (e.uid, e.gid, Some(e.name)),
            None if name == "root" => (0, 0, Some("root")),
            None => return Err(UserError::NoUser(name.to_string())),
        },
    };
    let mut additional = Vec::new();
    match g {
        Some(g) => {
            gid = match numeric(g)? {
                Some(n) => n,
                None => match group_entries(group_text).find(|e| e.name == g) {
                    Some(e) => e.gid,
                    None => return Err(UserError::NoGroup(g.to_string())),
                },
            };
        }
        None => {
            if let Some(name) = name {
                for e in group_entries(group_text).filter(|e| e.members.contains(&name)) {
                    if e.gid != gid && !additional.contains(&e.gid) {
                        additional.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(ExecUser { uid, gid, additional_gids: additional })
}

/// Adds the `--group-add` groups (gids, or names looked up in the
/// container's `/etc/group`) to a resolved user's supplementary groups, as
/// dockerd does for the container's process and its execs.
pub fn add_groups(user: &mut ExecUser, groups: &[String], group: Option<&str>) -> Result<(), UserError> {
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match group_entries(group.unwrap_or("")).find(|e| e.name == g) {
                Some(e) => e.gid,
                None => return Err(UserError::NoGroupToAdd(g.clone())),
            },
        };
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(())
}

/// Checks the `--group-add` entries at create: a gid below 2^32 or a name.
pub fn validate_groups(groups: &[String]) -> Result<(), UserError> {
    for g in groups {
        let numeric = !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
        if g.is_empty() || g.contains(':') || g.contains('\n') || (numeric && g.parse::<u32>().is_err()) {
            return Err(UserError::Invalid(g.clone()));
        }
    }
    Ok(())
}

/// Checks the syntax of a user spec at create (names are looked up at
/// start, in the container's own files).
pub fn validate(user: &str) -> Result<(), UserError> {
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    for part in [u, g] {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u32>().is_err() {
            return Err(UserError::Invalid(user.to_string()));
        }
    }
    if user.matches(':').count() > 1 {
        return Err(UserError::Invalid(user.to_string()));
    }
    Ok(())
}

/// Resolves `user` against the `/etc/passwd` and `/etc/group` of the root
/// filesystem given by containerd's mounts, read confined to that root
/// ([`crate::confined`]: regular files only, size-capped, symlinks resolved
/// inside it). Numeric users resolve even when the files cannot be read.
pub fn resolve_in_rootfs(user: &str, group_add: &[String], mounts: &[berth_containerd::Mount]) -> Result<ExecUser, UserError> {
    let m: Vec<RootfsMount<'_>> = mounts.iter().map(|m| RootfsMount { kind: &m.r#type, source: &m.source, options: &m.options }).collect();
    let read = |rel: &str| confined::read_rootfs_file(&m, rel).map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()));
    resolve_read(user, group_add, read("etc/passwd"), read("etc/group"))
}

/// Resolves `user` in a running container, through `/proc/<pid>/root`,
/// confined to it. Blocking: call it off the async threads.
pub fn resolve_in_process(user: &str, group_add: &[String], pid: u32) -> Result<ExecUser, UserError> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let read = |rel: &str| confined::read_in_root(&root, rel).map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()));
    resolve_read(user, group_add, read("etc/passwd"), read("etc/group"))
}

/// [`resolve`] over files that may have failed to read: a name that is not
/// found in an unreadable file gets the reason (a FIFO, a device, too large,
/// a symlink loop) instead of "no matching entries".
fn resolve_read(
    user: &str,
    group_add: &[String],
    passwd: Result<Option<String>, ReadError>,
    group: Result<Option<String>, ReadError>,
) -> Result<ExecUser, UserError> {
    let text = |r: &Result<Option<String>, ReadError>| r.as_ref().ok().and_then(|o| o.clone());
    let resolved = resolve(user, text(&passwd).as_deref(), text(&group).as_deref()).and_then(|mut u| {
        add_groups(&mut u, group_add, text(&group).as_deref())?;
        Ok(u)
    });
    match resolved {
        Err(UserError::NoUser(u)) => match passwd {
            Err(e) => Err(UserError::Unreadable { what: format!("user {u}"), reason: e.to_string() }),
            Ok(_) => Err(UserError::NoUser(u)),
        },
        Err(UserError::NoGroup(g)) => match group {
            Err(e) => Err(UserError::Unreadable { what: format!("group {g}"), reason: e.to_string() }),
            Ok(_) => Err(UserError::NoGroup(g)),
        },
        Err(UserError::NoGroupToAdd(g)) => match group {
            Err(e) => Err(UserError::Unreadable { what: format!("group {g}"), reason: e.to_string() }),
            Ok(_) => Err(UserError::NoGroupToAdd(g)),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\nnogroup:x:65534:\napp:x:1001:\ndocker:x:999:app\n";

    fn r(u: &str) -> Result<ExecUser, UserError> {
        resolve(u, Some(PASSWD), Some(GROUP))
    }

    fn eu(uid: u32, gid: u32, add: &[u32]) -> ExecUser {
        ExecUser { uid, gid, additional_gids: add.to_vec() }
    }

    #[test]
    fn resolves_like_docker() {
        assert_eq!(r(""), Ok(eu(0, 0, &[10])));
        assert_eq!(r("root"), Ok(eu(0, 0, &[10])));
        assert_eq!(r("nobody"), Ok(eu(65534, 65534, &[])));
        assert_eq!(r("app"), Ok(eu(1000, 1001, &[10, 999])));
        assert_eq!(r("1000"), Ok(eu(1000, 1001, &[10, 999])));
        assert_eq!(r("4242"), Ok(eu(4242, 0, &[])));
        assert_eq!(r("app:docker"), Ok(eu(1000, 999, &[])));
        assert_eq!(r("app:50"), Ok(eu(1000, 50, &[])));
        assert_eq!(r("4242:4343"), Ok(eu(4242, 4343, &[])));
        assert_eq!(r("ghost"), Err(UserError::NoUser("ghost".into())));
        assert_eq!(r("app:ghosts"), Err(UserError::NoGroup("ghosts".into())));
        assert_eq!(r("99999999999"), Err(UserError::Invalid("99999999999".into())));
        assert_eq!(r("ghost").unwrap_err().to_string(), "unable to find user ghost: no matching entries in passwd file");
    }

    #[test]
    fn without_files() {
        assert_eq!(resolve("root", None, None), Ok(eu(0, 0, &[])));
        assert_eq!(resolve("1000:1000", None, None), Ok(eu(1000, 1000, &[])));
        assert_eq!(resolve("1000", None, None), Ok(eu(1000, 0, &[])));
        assert!(resolve("app", None, None).is_err());
        assert!(validate("app:grp").is_ok() && validate("1000:1000").is_ok() && validate("").is_ok());
        assert!(validate("99999999999").is_err() && validate("a:b:c").is_err());
    }

    #[test]
    fn an_unreadable_file_gives_its_reason_for_names_only() {
        let fifo = || Err(ReadError::NotRegular { path: "/etc/passwd".into(), kind: "a FIFO" });
        assert_eq!(
            resolve_read("daemon", &[], fifo(), Ok(None)).unwrap_err().to_string(),
            "unable to find user daemon: /etc/passwd in the container is a FIFO, not a regular file"
        );
        assert_eq!(resolve_read("1234", &[], fifo(), Ok(None)), Ok(eu(1234, 0, &[])), "numeric users need no file");
        assert_eq!(resolve_read("nobody", &[], Ok(Some(PASSWD.into())), Ok(None)), Ok(eu(65534, 65534, &[])));
        assert_eq!(resolve_read("ghost", &[], Ok(Some(PASSWD.into())), Ok(None)), Err(UserError::NoUser("ghost".into())));
    }

    #[test]
    fn group_add_by_gid_and_name() {
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = |user: &str, add: &[&str]| resolve_read(user, &g(add), Ok(Some(PASSWD.into())), Ok(Some(GROUP.into())));
        assert_eq!(ok("nobody", &["1234", "docker", "wheel"]), Ok(eu(65534, 65534, &[1234, 999, 10])));
        assert_eq!(ok("app", &["docker", "999"]), Ok(eu(1000, 1001, &[10, 999])), "no duplicates");
        assert_eq!(ok("root", &["audio"]).unwrap_err().to_string(), "Unable to find group audio: no matching entries in group file");
        assert!(validate_groups(&g(&["audio", "29"])).is_ok());
        assert!(validate_groups(&g(&[""])).is_err() && validate_groups(&g(&["99999999999"])).is_err() && validate_groups(&g(&["a:b"])).is_err());
    }
}
