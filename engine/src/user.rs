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

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

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
/// filesystem given by containerd's mounts. When the files cannot be read
/// (an unusual mount layout), numeric users still resolve.
pub fn resolve_in_rootfs(user: &str, mounts: &[berth_containerd::Mount]) -> Result<ExecUser, UserError> {
    let m: Vec<RootfsMount<'_>> = mounts.iter().map(|m| RootfsMount { kind: &m.r#type, source: &m.source, options: &m.options }).collect();
    let read = |rel: &str| match read_rootfs_file(&m, rel) {
        Ok(b) => b.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            tracing::debug!(error = %e, file = rel, "cannot read from the container's root filesystem");
            None
        }
    };
    resolve(user, read("etc/passwd").as_deref(), read("etc/group").as_deref())
}

/// Resolves `user` in a running container, through `/proc/<pid>/root`.
pub fn resolve_in_process(user: &str, pid: u32) -> Result<ExecUser, UserError> {
    let read = |rel: &str| fs::read(format!("/proc/{pid}/root/{rel}")).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
    resolve(user, read("etc/passwd").as_deref(), read("etc/group").as_deref())
}

/// A containerd mount, reduced to what [`read_rootfs_file`] needs.
pub struct RootfsMount<'a> {
    pub kind: &'a str,
    pub source: &'a str,
    pub options: &'a [String],
}

/// Reads `rel` (such as `etc/passwd`) from the root filesystem described by
/// containerd's snapshot mounts, without mounting it. `Ok(None)`: the file
/// does not exist (or is not a regular file) in that filesystem.
pub fn read_rootfs_file(mounts: &[RootfsMount<'_>], rel: &str) -> io::Result<Option<Vec<u8>>> {
    let [m] = mounts else {
        return Err(io::Error::other(format!("cannot read {rel}: the root filesystem has {} mounts, expected one", mounts.len())));
    };
    let layers: Vec<PathBuf> = if m.kind == "overlay" {
        let opt = |k: &str| m.options.iter().find_map(|o| o.strip_prefix(k));
        let mut v: Vec<PathBuf> = opt("upperdir=").map(PathBuf::from).into_iter().collect();
        v.extend(opt("lowerdir=").unwrap_or("").split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        v
    } else if m.kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind") {
        vec![PathBuf::from(m.source)]
    } else {
        return Err(io::Error::other(format!("cannot read {rel}: unsupported root filesystem mount type {:?}", m.kind)));
    };
    for layer in &layers {
        let path = layer.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => return fs::read(&path).map(Some),
            // A whiteout (character device 0/0) deletes the file; anything
            // else (a directory, a symlink) is not something we read.
            Ok(meta) if meta.file_type().is_char_device() && meta.rdev() == 0 => return Ok(None),
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if hidden_below(layer, rel) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Whether a directory on the way to `rel` in this layer hides the layers
/// below: an opaque directory or a whiteout of a parent.
fn hidden_below(layer: &Path, rel: &str) -> bool {
    let mut dir = layer.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_char_device() && meta.rdev() == 0 => return true,
            Ok(meta) if meta.is_dir() => {
                if is_opaque(&dir) {
                    return true;
                }
            }
            _ => return false,
        }
    }
    false
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    let mut buf = [0u8; 2];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: valid NUL-terminated strings and a buffer of the given size.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
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
    fn reads_overlay_layers_top_first() {
        let d = tempfile::tempdir().unwrap();
        let (upper, mid, low) = (d.path().join("upper"), d.path().join("mid"), d.path().join("low"));
        for l in [&upper, &mid, &low] {
            fs::create_dir_all(l.join("etc")).unwrap();
        }
        fs::write(low.join("etc/passwd"), "low").unwrap();
        fs::write(low.join("etc/group"), "low-group").unwrap();
        fs::write(mid.join("etc/passwd"), "mid").unwrap();
        let opts = vec![
            format!("upperdir={}", upper.display()),
            format!("lowerdir={}:{}", mid.display(), low.display()),
            "workdir=/x".to_string(),
        ];
        let m = [RootfsMount { kind: "overlay", source: "overlay", options: &opts }];
        assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap().as_deref(), Some(&b"mid"[..]));
        assert_eq!(read_rootfs_file(&m, "etc/group").unwrap().as_deref(), Some(&b"low-group"[..]));
        assert_eq!(read_rootfs_file(&m, "etc/shadow").unwrap(), None);
        // The container's own change (upper) wins.
        fs::write(upper.join("etc/passwd"), "upper").unwrap();
        assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap().as_deref(), Some(&b"upper"[..]));
        // A whiteout in the upper layer deletes the file.
        fs::remove_file(upper.join("etc/passwd")).unwrap();
        let c = std::ffi::CString::new(upper.join("etc/passwd").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path; creates a 0/0 character device (needs root).
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0 {
            assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap(), None);
        }
        // A plain directory (native snapshotter, a bind mount).
        let b = [RootfsMount { kind: "bind", source: low.to_str().unwrap(), options: &["rbind".to_string()] }];
        assert_eq!(read_rootfs_file(&b, "etc/passwd").unwrap().as_deref(), Some(&b"low"[..]));
    }
}
