//! `docker diff`: the changes of a container's writable layer against its
//! image, read from the upper directory of its overlay snapshot, as
//! dockerd's overlay2 driver reads them (moby's `archive.OverlayChanges`):
//!
//! - an entry of the upper directory that no lower layer has is added
//!   (kind 1), one that a lower layer has is modified (kind 0), except a
//!   directory whose size, mode and mtime are those of the lower one;
//! - a whiteout (character device 0/0) is a deletion (kind 2), and so is
//!   an opaque directory that a lower layer has (its new content follows
//!   as additions);
//! - the parent directory of an addition or deletion is listed as
//!   modified (once) before it;
//! - the empty mount points the OCI runtime creates for the container's
//!   fixed mounts ([`RUNTIME_MOUNTPOINTS`]) are not changes: dockerd has
//!   them in the image's init layer, below the container's, so its diff
//!   never shows them either.
//!
//! The upper directory belongs to the container, so every name is looked
//! up relative to its directory's descriptor without following symlinks
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`): nothing outside the layers is
//! ever touched. Nothing is opened but directories, and the walk is
//! bounded in depth ([`MAX_DEPTH`]) and in the number of changes it keeps
//! ([`MAX_CHANGES`]). Entries that vanish while a running container
//! changes its files are skipped. Blocking: call it off the async threads.

use crate::confined::{is_opaque, is_whiteout};
use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// The most changes berth lists for one container.
pub const MAX_CHANGES: usize = 1_000_000;
/// The deepest directory berth walks into (each level holds a descriptor
/// per layer that has the directory).
pub const MAX_DEPTH: usize = 200;

/// Where every container gets a mount of its own (`spec.rs`): the
/// runtime creates these in the writable layer when the image lacks them.
pub const RUNTIME_MOUNTPOINTS: [&str; 6] = ["/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys"];

/// What happened to a path: Docker's `Kind` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// One change, `path` absolute in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("the container has more than {limit} changed paths, the most berth lists")]
    TooMany { limit: usize },
    #[error("the container's changes are more than {limit} directories deep, the most berth walks")]
    TooDeep { limit: usize },
    #[error("reading the container's changes at {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The changes in `upper` over `lowers` (top first).
pub fn overlay_changes(upper: &Path, lowers: &[&Path]) -> Result<Vec<Change>, ChangesError> {
    let open_root = |p: &Path| rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
    let io = |path: &str, e: Errno| ChangesError::Io { path: path.to_string(), source: e.into() };
    let root = open_root(upper).map_err(|e| io("/", e))?;
    let mut lower_fds = Vec::new();
    for l in lowers {
        match open_root(l) {
            Ok(fd) => lower_fds.push(Some(fd)),
            Err(Errno::NOENT) => lower_fds.push(None),
            Err(e) => return Err(io("/", e)),
        }
    }
    let mut w = Walker { changes: Vec::new(), changed_dirs: HashSet::new() };
    w.dir(&root, &lower_fds, "", 0)?;
    Ok(w.changes)
}

struct Walker {
    changes: Vec<Change>,
    changed_dirs: HashSet<String>,
}

fn same_dir(a: &Stat, b: &Stat) -> bool {
    let same_time = (a.st_mtime, a.st_mtime_nsec) == (b.st_mtime, b.st_mtime_nsec)
        || (a.st_mtime == b.st_mtime && (a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0));
    a.st_size == b.st_size && a.st_mode == b.st_mode && same_time
}


/// An empty regular file, or an empty directory.
fn is_empty(st: &Stat, dir: Option<&OwnedFd>) -> bool {
    match (FileType::from_raw_mode(st.st_mode), dir) {
        (FileType::RegularFile, _) => st.st_size == 0,
        (FileType::Directory, Some(d)) => names(d).is_ok_and(|n| n.is_empty()),
        _ => false,
    }
}

/// Whether the directory `path` holds nothing but empty runtime mount
/// points (and holds some).
fn only_mountpoints(path: &str, dir: &OwnedFd) -> bool {
    let prefix = format!("{path}/");
    if !RUNTIME_MOUNTPOINTS.iter().any(|m| m.starts_with(&prefix)) {
        return false;
    }
    let Ok(list) = names(dir) else { return false };
    list.iter().all(|n| {
        let p = format!("{prefix}{}", String::from_utf8_lossy(n.to_bytes()));
        RUNTIME_MOUNTPOINTS.contains(&p.as_str())
            && rustix::fs::statat(dir, n, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_size == 0)
    })
}

fn open_dir(parent: &OwnedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(parent, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

/// The names in a directory, sorted as Go's `filepath.Walk` sorts them.
fn names(dir: &OwnedFd) -> Result<Vec<std::ffi::CString>, Errno> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            out.push(n.to_owned());
        }
    }
    out.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(out)
}

impl Walker {
    fn push(&mut self, path: String, kind: ChangeKind) -> Result<(), ChangesError> {
        if self.changes.len() >= MAX_CHANGES {
            return Err(ChangesError::TooMany { limit: MAX_CHANGES });
        }
        self.changes.push(Change { path, kind });
        Ok(())
    }

    /// Walks the upper directory `dir` (container path `path`, "" for the
    /// root) over the same directory in each lower layer (`None` where a
    /// layer does not have it).
    fn dir(&mut self, dir: &OwnedFd, lowers: &[Option<OwnedFd>], path: &str, depth: usize) -> Result<(), ChangesError> {
        if depth > MAX_DEPTH {
            return Err(ChangesError::TooDeep { limit: MAX_DEPTH });
        }
        let io = |p: &str, e: Errno| ChangesError::Io { path: if p.is_empty() { "/".into() } else { p.to_string() }, source: e.into() };
        let list = match names(dir) {
            Ok(l) => l,
            // Removed while the container runs.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io(path, e)),
        };
        for name in list {
            let child = format!("{path}/{}", String::from_utf8_lossy(name.to_bytes()));
            let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(&child, e)),
            };
            let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            let mut lower = None;
            for l in lowers.iter().flatten() {
                match rustix::fs::statat(l, &name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(ls) => {
                        lower = Some(ls);
                        break;
                    }
                    Err(Errno::NOENT | Errno::NOTDIR) => {}
                    Err(e) => return Err(io(&child, e)),
                }
            }
            let sub = if is_dir {
                match open_dir(dir, &name) {
                    Ok(fd) => Some(fd),
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                    Err(e) => return Err(io(&child, e)),
                }
            } else {
                None
            };
            let deleted = is_whiteout(&st) || (sub.as_ref().is_some_and(is_opaque) && lower.is_some());
            let kind = match lower {
                _ if deleted => Some(ChangeKind::Deleted),
                None if RUNTIME_MOUNTPOINTS.contains(&child.as_str()) && is_empty(&st, sub.as_ref()) => None,
                None => Some(ChangeKind::Added),
                Some(ls) if is_dir && FileType::from_raw_mode(ls.st_mode) == FileType::Directory && same_dir(&st, &ls) => None,
                // Copied up only for the runtime's mount points in it.
                Some(_) if sub.as_ref().is_some_and(|d| only_mountpoints(&child, d)) => None,
                Some(_) => Some(ChangeKind::Modified),
            };
            if let Some(kind) = kind {
                if is_dir {
                    self.changed_dirs.insert(child.clone());
                }
                if matches!(kind, ChangeKind::Added | ChangeKind::Deleted) && !path.is_empty() && !self.changed_dirs.contains(path) {
                    self.changed_dirs.insert(path.to_string());
                    self.push(path.to_string(), ChangeKind::Modified)?;
                }
                self.push(child.clone(), kind)?;
            }
            if let Some(sub) = sub {
                let sub_lowers: Vec<Option<OwnedFd>> =
                    lowers.iter().map(|l| l.as_ref().and_then(|l| open_dir(l, &name).ok())).collect();
                self.dir(&sub, &sub_lowers, &child, depth + 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    use super::*;

    fn mknod_whiteout(path: &Path) -> bool {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; creates a 0/0 character device (needs root).
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) == 0 }
    }

    fn set_opaque(path: &Path) -> bool {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path, name and value.
        unsafe { libc::setxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) == 0 }
    }

    fn show(c: &[Change]) -> Vec<(String, u8)> {
        c.iter().map(|c| (c.path.clone(), c.kind as u8)).collect()
    }

    #[test]
    fn kinds_as_dockerd_lists_them() {
        let d = tempfile::tempdir().unwrap();
        let (upper, lower) = (d.path().join("upper"), d.path().join("lower"));
        for p in ["etc", "usr/bin", "var/cache/x", "same"] {
            fs::create_dir_all(lower.join(p)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "x").unwrap();
        fs::write(lower.join("etc/group"), "x").unwrap();
        fs::write(lower.join("var/cache/x/old"), "x").unwrap();
        // The container: adds /test and /new/dir/f, modifies /etc/passwd,
        // deletes /etc/group and replaces /var/cache/x.
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("test"), "").unwrap();
        fs::create_dir_all(upper.join("new/dir")).unwrap();
        fs::write(upper.join("new/dir/f"), "").unwrap();
        fs::write(upper.join("etc/passwd"), "y").unwrap();
        // A copied-up directory equal to the lower one is no change.
        fs::create_dir_all(upper.join("same")).unwrap();
        let lst = fs::metadata(lower.join("same")).unwrap();
        fs::set_permissions(upper.join("same"), lst.permissions()).unwrap();
        let t = filetime(lower.join("same").as_path());
        set_mtime(&upper.join("same"), t);
        let root = is_root();
        if root {
            assert!(mknod_whiteout(&upper.join("etc/group")));
            fs::create_dir_all(upper.join("var/cache/x")).unwrap();
            assert!(set_opaque(&upper.join("var/cache/x")));
            fs::write(upper.join("var/cache/x/new"), "").unwrap();
        }
        // Copied-up directories whose mtime changed are modified.
        for p in ["etc", "var", "var/cache"] {
            if upper.join(p).exists() {
                set_mtime(&upper.join(p), (1000, 0));
            }
        }
        let got = show(&overlay_changes(&upper, &[&lower]).unwrap());
        let mut want = vec![("/etc".to_string(), 0u8)];
        if root {
            want.push(("/etc/group".into(), 2));
        }
        want.push(("/etc/passwd".into(), 0));
        want.extend([("/new".into(), 1), ("/new/dir".into(), 1), ("/new/dir/f".into(), 1), ("/test".into(), 1)]);
        if root {
            want.extend([("/var".into(), 0), ("/var/cache".into(), 0), ("/var/cache/x".into(), 2), ("/var/cache/x/new".into(), 1)]);
        }
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{got:?}");
        assert_eq!(got.iter().position(|c| c.0 == "/new"), Some(got.iter().position(|c| c.0 == "/new/dir").unwrap() - 1), "parents first");
    }

    fn filetime(p: &Path) -> (i64, i64) {
        let st = rustix::fs::stat(p).unwrap();
        (st.st_mtime as i64, st.st_mtime_nsec as i64)
    }

    fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ },
            last_modification: rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ },
        };
        rustix::fs::utimensat(rustix::fs::CWD, p, &ts, AtFlags::empty()).unwrap();
    }

    /// Whiteouts (mknod) and `trusted.*` xattrs need root.
    fn is_root() -> bool {
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() == 0 }
    }

    #[test]
    fn symlinks_in_the_upper_layer_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let (upper, lower, host) = (d.path().join("upper"), d.path().join("lower"), d.path().join("host"));
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&lower).unwrap();
        fs::create_dir_all(host.join("secret-dir")).unwrap();
        fs::write(host.join("secret-dir/file"), "s").unwrap();
        symlink(&host, upper.join("escape")).unwrap();
        symlink("/", upper.join("root")).unwrap();
        // The runtime's empty mount points are not changes; filled, they are.
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("sys/x")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        let got = show(&overlay_changes(&upper, &[&lower]).unwrap());
        assert_eq!(got, vec![("/escape".to_string(), 1), ("/etc".to_string(), 1), ("/root".to_string(), 1), ("/sys".to_string(), 1), ("/sys/x".to_string(), 1)]);
        fs::remove_dir_all(upper.join("sys")).unwrap();
        fs::remove_dir_all(upper.join("etc")).unwrap();
        fs::remove_dir_all(upper.join("proc")).unwrap();
        let got = show(&overlay_changes(&upper, &[&lower]).unwrap());
        assert_eq!(got, vec![("/escape".to_string(), 1), ("/root".to_string(), 1)]);
    }

    #[test]
    fn depth_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        let mut p = upper.clone();
        for _ in 0..=MAX_DEPTH + 1 {
            p.push("d");
        }
        fs::create_dir_all(&p).unwrap();
        let e = overlay_changes(&upper, &[]).unwrap_err();
        assert_eq!(e.to_string(), format!("the container's changes are more than {MAX_DEPTH} directories deep, the most berth walks"));
    }
}
