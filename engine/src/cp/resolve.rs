//! Paths of `docker cp`, resolved inside a container's root as if the
//! daemon had `chroot`ed there: `openat2` with `RESOLVE_IN_ROOT` (symlinks,
//! absolute or with `..`, never leave the root) and
//! `RESOLVE_NO_MAGICLINKS` (no procfs magic links). Like dockerd's
//! `ResolvePath`, the last component is not followed unless the path ends
//! in `/` or `/.`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::CopyError;

/// What `X-Docker-Container-Path-Stat` says of a path (moby's
/// `ContainerPathStat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: SystemTime,
    /// For a symlink: where it points, as an absolute path in the container.
    pub link_target: String,
}

/// A resolved path: the directory holding it and its name there (`.` when
/// the path named a directory that was followed, or the root).
pub struct Target {
    pub parent: OwnedFd,
    pub name: CString,
    pub stat: Stat,
    /// The cleaned absolute path in the container.
    pub path: String,
}

/// Go's `os.FileMode` of a `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// Lexically cleaned components of an absolute path (`..` stops at `/`).
pub fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

fn open_in_root(root: &OwnedFd, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = if rel.is_empty() { "." } else { rel };
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: the resolution raced with a rename in the container; retry.
    for _ in 0..16 {
        match rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), how) {
            Err(Errno::AGAIN) => continue,
            r => return r,
        }
    }
    Err(Errno::AGAIN)
}

/// Opens the directory `rel` (relative to the root, already cleaned) as an
/// `O_PATH` descriptor, inside the root.
pub fn open_dir(root: &OwnedFd, rel: &str) -> Result<OwnedFd, Errno> {
    open_in_root(root, rel, OFlags::PATH | OFlags::DIRECTORY)
}

/// Resolves `path` (absolute in the container) under `root`. `NotFound`
/// names `path` as given.
pub fn resolve(root: &OwnedFd, given: &str) -> Result<Target, CopyError> {
    let parts = clean(given);
    let follow_last = parts.is_empty() || given.ends_with('/') || given.ends_with("/.");
    let path = format!("/{}", parts.join("/"));
    let errno = |e: Errno| errno(e, given);
    if follow_last {
        let t = resolve_follow(root, given)?;
        if FileType::from_raw_mode(t.stat.st_mode) != FileType::Directory {
            // `/file/` names a directory that is not there.
            return Err(CopyError::NotFound { path: given.to_string() });
        }
        return Ok(t);
    }
    let (last, dirs) = parts.split_last().expect("not empty");
    let parent = open_dir(root, &dirs.join("/")).map_err(errno)?;
    let name = CString::new(last.as_bytes()).map_err(|_| CopyError::Invalid(format!("{given}: a path holds no NUL byte")))?;
    let stat = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
    Ok(Target { parent, name, stat, path })
}

/// Resolves `given` entirely, its last component too.
pub fn resolve_follow(root: &OwnedFd, given: &str) -> Result<Target, CopyError> {
    let parts = clean(given);
    let fd = open_in_root(root, &parts.join("/"), OFlags::PATH).map_err(|e| errno(e, given))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| errno(e, given))?;
    Ok(Target { parent: fd, name: CString::from(c"."), stat, path: format!("/{}", parts.join("/")) })
}

fn errno(e: Errno, given: &str) -> CopyError {
    match e {
        Errno::NOENT | Errno::NOTDIR => CopyError::NotFound { path: given.to_string() },
        Errno::NOSYS => CopyError::NoOpenat2,
        Errno::LOOP => CopyError::Invalid(format!("{given}: too many levels of symbolic links")),
        e => CopyError::Io { path: given.to_string(), source: e.into() },
    }
}

fn mtime(st: &Stat) -> SystemTime {
    let d = Duration::new(st.st_mtime.unsigned_abs(), st.st_mtime_nsec as u32);
    if st.st_mtime >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// The stat of a resolved target (dockerd's `StatPath`).
pub fn stat(t: &Target) -> Result<PathStat, CopyError> {
    let parts = clean(&t.path);
    let name = parts.last().cloned().unwrap_or_else(|| "/".into());
    let mut link_target = String::new();
    if FileType::from_raw_mode(t.stat.st_mode) == FileType::Symlink {
        let link = rustix::fs::readlinkat(&t.parent, t.name.as_c_str(), Vec::new())
            .map_err(|e| CopyError::Io { path: t.path.clone(), source: e.into() })?;
        let link = link.to_string_lossy().into_owned();
        let joined = if link.starts_with('/') { link } else { format!("/{}/{link}", parts[..parts.len().saturating_sub(1)].join("/")) };
        link_target = format!("/{}", clean(&joined).join("/"));
    }
    Ok(PathStat { name, size: t.stat.st_size, mode: go_mode(t.stat.st_mode), mtime: mtime(&t.stat), link_target })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_modes() {
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_mode(0o041777), (1 << 31) | (1 << 20) | 0o777);
    }

    #[test]
    fn paths_clean_lexically_and_stop_at_the_root() {
        assert_eq!(clean("/a/./b/../c/"), ["a", "c"]);
        assert_eq!(clean("/../../etc"), ["etc"]);
        assert!(clean("/").is_empty());
    }

    #[test]
    fn resolution_stays_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(d.path().join("secret"), "host").unwrap();
        std::fs::write(root.join("etc/passwd"), "container").unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let fd = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        // `up` is the root itself: the host's file is not there.
        assert!(matches!(resolve(&fd, "/up/secret"), Err(CopyError::NotFound { .. })));
        let t = resolve(&fd, "/up/etc/passwd").unwrap();
        assert_eq!((t.path.as_str(), t.stat.st_size), ("/up/etc/passwd", 9));
        // The last component is not followed, unless asked with `/.`.
        let t = resolve(&fd, "/link").unwrap();
        let s = stat(&t).unwrap();
        assert_eq!((s.name.as_str(), s.link_target.as_str(), s.mode & (1 << 27) != 0), ("link", "/etc/passwd", true));
        let t = resolve(&fd, "/up/.").unwrap();
        assert_eq!(stat(&t).unwrap().mode >> 31, 1, "a directory");
        assert!(matches!(resolve(&fd, "/etc/passwd/"), Err(CopyError::NotFound { .. })));
        assert_eq!(stat(&resolve(&fd, "/").unwrap()).unwrap().name, "/");
    }
}
