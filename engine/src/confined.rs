//! Reading a small file of a container's filesystem from the host, confined
//! to the container: such as `/etc/passwd` to resolve `-u name`.
//!
//! The container controls these files, so:
//! - paths resolve inside the container's root: symlinks (absolute or with
//!   `..`) never leave it, as if the container had `chroot`ed there, and
//!   procfs magic links are never followed by the kernel;
//! - only regular files are read: a FIFO, a device (`/dev/zero`, or worse
//!   a watchdog the container made with mknod), a socket or a directory is
//!   an error, and is never opened for reading (it is looked at through an
//!   `O_PATH` descriptor first; the second open is non-blocking and checked
//!   to be the same file);
//! - at most [`MAX_FILE_SIZE`] bytes are read.
//!
//! Two roots are supported: a directory (a running container's
//! `/proc/<pid>/root`, a bind snapshot), resolved with `openat2`
//! (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`) where the kernel has it,
//! else with [`walk`]; and the layers of an overlay mount (top first), which
//! [`walk`] resolves as overlayfs would (whiteouts, opaque directories).
//! Everything here blocks: call it off the async threads.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// The most berth reads of one such file: 1 MiB, some 15,000 accounts in
/// `/etc/passwd`. A larger file is an error that names the limit.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Symlinks followed in one resolution before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// Why a file of the container could not be read. `path` is the path in
/// the container, such as `/etc/passwd`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} in the container is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} in the container is larger than {limit} bytes, the most berth reads")]
    TooLarge { path: String, limit: u64 },
    #[error("{path} in the container: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path} in the container changed while berth read it")]
    Changed { path: String },
    #[error("cannot read {path} in the container: {source}")]
    Io { path: String, source: std::io::Error },
}

/// A containerd mount, reduced to what [`read_rootfs_file`] needs.
pub struct RootfsMount<'a> {
    pub kind: &'a str,
    pub source: &'a str,
    pub options: &'a [String],
}

/// Reads `rel` (such as `etc/passwd`) from the root filesystem described by
/// containerd's snapshot mounts, without mounting it. `Ok(None)`: the file
/// does not exist in that filesystem.
pub fn read_rootfs_file(mounts: &[RootfsMount<'_>], rel: &str) -> Result<Option<Vec<u8>>, ReadError> {
    let path = container_path(rel);
    let other = |msg: String| ReadError::Io { path: path.clone(), source: std::io::Error::other(msg) };
    let [m] = mounts else {
        return Err(other(format!("the root filesystem has {} mounts, expected one", mounts.len())));
    };
    if m.kind == "overlay" {
        let opt = |k: &str| m.options.iter().find_map(|o| o.strip_prefix(k));
        let mut layers: Vec<PathBuf> = opt("upperdir=").map(PathBuf::from).into_iter().collect();
        layers.extend(opt("lowerdir=").unwrap_or("").split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        walk(&layers, true, rel)
    } else if m.kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind") {
        read_in_root(Path::new(m.source), rel)
    } else {
        Err(other(format!("unsupported root filesystem mount type {:?}", m.kind)))
    }
}

/// Reads `rel` inside the directory `root` (e.g. `/proc/<pid>/root`) as if
/// `root` were `/`. `Ok(None)`: no such file.
pub fn read_in_root(root: &Path, rel: &str) -> Result<Option<Vec<u8>>, ReadError> {
    let path = container_path(rel);
    let io = |e: Errno| ReadError::Io { path: path.clone(), source: e.into() };
    let root_fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io)?;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let open = |flags: OFlags| -> Result<Option<OwnedFd>, Errno> {
        // EAGAIN: the resolution raced with a rename in the container; retry.
        for _ in 0..16 {
            match rustix::fs::openat2(&root_fd, rel, flags | OFlags::CLOEXEC, Mode::empty(), how) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
                Err(Errno::AGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Errno::AGAIN)
    };
    let found = match open(OFlags::PATH) {
        Ok(None) => return Ok(None),
        Ok(Some(fd)) => fd,
        // No openat2 (before Linux 5.6, or filtered): the same rules, by hand.
        Err(Errno::NOSYS | Errno::PERM) => return walk(&[root.to_path_buf()], false, rel),
        Err(Errno::LOOP) => return Err(ReadError::SymlinkLoop { path }),
        Err(e) => return Err(io(e)),
    };
    let seen = rustix::fs::fstat(&found).map_err(io)?;
    check_regular(&seen, &path)?;
    let file = match open(OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Err(ReadError::Changed { path }),
        Err(Errno::LOOP) => return Err(ReadError::SymlinkLoop { path }),
        Err(e) => return Err(io(e)),
    };
    read_checked(file, &seen, &path).map(Some)
}

/// Resolves `rel` over `layers` (top first) the way the container would
/// see it, following symlinks inside the union and never outside it, then
/// reads the file. With `overlay`, character devices 0/0 are whiteouts and
/// directories marked opaque hide the layers below; a single layer is an
/// ordinary directory tree. `Ok(None)`: no such file.
pub fn walk(layers: &[PathBuf], overlay: bool, rel: &str) -> Result<Option<Vec<u8>>, ReadError> {
    let path = container_path(rel);
    let io = |e: Errno| ReadError::Io { path: path.clone(), source: e.into() };
    // The layer paths are berth's own (or /proc/<pid>/root): followed.
    let mut roots = Vec::new();
    for l in layers {
        match rustix::fs::open(l, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => roots.push(fd),
            // A missing upper or lower directory holds nothing.
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io(e)),
        }
    }
    // The directories from the root to the current one; each is the union
    // of one directory per layer, top first.
    let mut stack: Vec<Vec<OwnedFd>> = vec![roots];
    let mut todo: VecDeque<String> = components(rel);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        match name.as_str() {
            "." => continue,
            ".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let last = todo.iter().all(|c| c == ".");
        let dirs = stack.last().expect("the root is never popped");
        let Some((i, st)) = lookup(dirs, &name, overlay).map_err(io)? else { return Ok(None) };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ReadError::SymlinkLoop { path });
                }
                let target = rustix::fs::readlinkat(&dirs[i], name.as_str(), Vec::new()).map_err(io)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                for c in components(&target).into_iter().rev() {
                    todo.push_front(c);
                }
            }
            FileType::Directory => {
                let merged = merge_dirs(&dirs[i..], &name, overlay).map_err(io)?;
                stack.push(merged);
            }
            _ if !last => return Ok(None), // a file where a directory should be
            _ => {
                check_regular(&st, &path)?;
                let file = match rustix::fs::openat(&dirs[i], name.as_str(), OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT | Errno::LOOP) => return Err(ReadError::Changed { path }),
                    Err(e) => return Err(io(e)),
                };
                return read_checked(file, &st, &path).map(Some);
            }
        }
    }
    // The path named a directory (or the root itself).
    Err(ReadError::NotRegular { path, kind: "a directory" })
}

/// The first layer (top first) that has `name` in this union directory,
/// and what it is there; `None` when none has it or a whiteout deletes it.
fn lookup(dirs: &[OwnedFd], name: &str, overlay: bool) -> Result<Option<(usize, Stat)>, Errno> {
    for (i, d) in dirs.iter().enumerate() {
        match rustix::fs::statat(d, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if overlay && is_whiteout(&st) => return Ok(None),
            Ok(st) => return Ok(Some((i, st))),
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The union directory `name` in `dirs` (whose first holds it as a
/// directory): that one, then the same directory in the layers below until
/// one is opaque or hides the rest with something that is not a directory.
fn merge_dirs(dirs: &[OwnedFd], name: &str, overlay: bool) -> Result<Vec<OwnedFd>, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut out = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let fd = match rustix::fs::openat(d, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if i > 0 => continue,
            Err(Errno::NOTDIR | Errno::LOOP) if i > 0 => break,
            Err(e) => return Err(e),
        };
        let opaque = overlay && is_opaque(&fd);
        out.push(fd);
        if !overlay || opaque {
            break;
        }
    }
    Ok(out)
}

/// An overlay whiteout: a character device 0/0 (also used by `changes`).
pub(crate) fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// An overlay opaque directory (`trusted.` or `user.overlay.opaque` = `y`).
pub(crate) fn is_opaque(dir: &OwnedFd) -> bool {
    let mut buf = [0u8; 2];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|attr| matches!(rustix::fs::fgetxattr(dir, *attr, &mut buf), Ok(1) if buf[0] == b'y'))
}

fn check_regular(st: &Stat, path: &str) -> Result<(), ReadError> {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            if st.st_size as u64 > MAX_FILE_SIZE {
                return Err(ReadError::TooLarge { path: path.to_string(), limit: MAX_FILE_SIZE });
            }
            return Ok(());
        }
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        FileType::Unknown => "of an unknown type",
    };
    Err(ReadError::NotRegular { path: path.to_string(), kind })
}

/// Reads an opened file that must be the regular file `seen` (not swapped
/// since), at most [`MAX_FILE_SIZE`] bytes.
fn read_checked(file: OwnedFd, seen: &Stat, path: &str) -> Result<Vec<u8>, ReadError> {
    let io = |e: std::io::Error| ReadError::Io { path: path.to_string(), source: e };
    let now = rustix::fs::fstat(file.as_fd()).map_err(|e| io(e.into()))?;
    check_regular(&now, path)?;
    if (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err(ReadError::Changed { path: path.to_string() });
    }
    let mut buf = Vec::new();
    std::fs::File::from(file).take(MAX_FILE_SIZE + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge { path: path.to_string(), limit: MAX_FILE_SIZE });
    }
    Ok(buf)
}

fn components(p: &str) -> VecDeque<String> {
    p.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
}

fn container_path(rel: &str) -> String {
    format!("/{}", rel.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    use super::*;

    fn mknod(path: &Path, kind: libc::mode_t, dev: libc::dev_t) -> bool {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; creates a node (needs root for devices).
        unsafe { libc::mknod(c.as_ptr(), kind | 0o600, dev) == 0 }
    }

    fn overlay(opts: &[String]) -> [RootfsMount<'_>; 1] {
        [RootfsMount { kind: "overlay", source: "overlay", options: opts }]
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
        let m = overlay(&opts);
        assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap().as_deref(), Some(&b"mid"[..]));
        assert_eq!(read_rootfs_file(&m, "etc/group").unwrap().as_deref(), Some(&b"low-group"[..]));
        assert_eq!(read_rootfs_file(&m, "etc/shadow").unwrap(), None);
        // The container's own change (upper) wins.
        fs::write(upper.join("etc/passwd"), "upper").unwrap();
        assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap().as_deref(), Some(&b"upper"[..]));
        // A whiteout in the upper layer deletes the file (needs root).
        fs::remove_file(upper.join("etc/passwd")).unwrap();
        if mknod(&upper.join("etc/passwd"), libc::S_IFCHR, 0) {
            assert_eq!(read_rootfs_file(&m, "etc/passwd").unwrap(), None);
        }
        // An opaque directory hides the layers below (trusted.* needs root).
        fs::create_dir_all(d.path().join("top/etc")).unwrap();
        let top = d.path().join("top");
        let c = std::ffi::CString::new(top.join("etc").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path, name and value.
        if unsafe { libc::setxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) } == 0 {
            let opts = vec![format!("lowerdir={}:{}", top.display(), low.display())];
            assert_eq!(read_rootfs_file(&overlay(&opts), "etc/group").unwrap(), None);
        }
        // A plain directory (native snapshotter, a bind mount).
        let b = [RootfsMount { kind: "bind", source: low.to_str().unwrap(), options: &["rbind".to_string()] }];
        assert_eq!(read_rootfs_file(&b, "etc/passwd").unwrap().as_deref(), Some(&b"low"[..]));
    }

    /// Every hostile shape of /etc/passwd, through each way of reading.
    type Reader<'a> = &'a dyn Fn(&Path, &str) -> Result<Option<Vec<u8>>, ReadError>;

    fn hostile_cases(read: Reader<'_>) {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        let root = d.path().join("host/deep/root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(host.join("secret"), "host secret").unwrap();
        fs::write(root.join("data/real"), "root:x:0:0::/:/bin/sh\n").unwrap();
        let passwd = root.join("etc/passwd");
        let set_link = |target: &str| {
            let _ = fs::remove_file(&passwd);
            symlink(target, &passwd).unwrap();
        };
        let err = |what: &str| match read(&root, "etc/passwd") {
            Err(e) => e.to_string(),
            Ok(v) => panic!("{what}: read {:?}", v.map(|b| String::from_utf8_lossy(&b).into_owned())),
        };

        // Symlinks resolve inside the root, never on the host.
        set_link("../../../secret");
        assert_eq!(read(&root, "etc/passwd").unwrap(), None, "`..` stops at the container's root");
        set_link("/../../../../data/real");
        assert_eq!(read(&root, "etc/passwd").unwrap().as_deref(), Some(&b"root:x:0:0::/:/bin/sh\n"[..]));
        set_link("../../../../../../etc/passwd");
        assert_eq!(err("a loop"), "/etc/passwd in the container: too many levels of symbolic links");
        // A symlinked directory on the way resolves inside the root too.
        fs::remove_file(&passwd).unwrap();
        fs::remove_dir(root.join("etc")).unwrap();
        symlink("../../..", root.join("etc")).unwrap();
        assert_eq!(read(&root, "etc/secret").unwrap(), None, "etc -> ../../.. is the root itself");
        assert_eq!(read(&root, "etc/data/real").unwrap().as_deref(), Some(&b"root:x:0:0::/:/bin/sh\n"[..]));
        fs::remove_file(root.join("etc")).unwrap();
        fs::create_dir(root.join("etc")).unwrap();

        // Not regular files: errors, and never a hang (a FIFO without a writer).
        assert!(mknod(&passwd, libc::S_IFIFO, 0));
        assert_eq!(err("a FIFO"), "/etc/passwd in the container is a FIFO, not a regular file");
        fs::remove_file(&passwd).unwrap();
        set_link("/dev/zero");
        assert_eq!(read(&root, "etc/passwd").unwrap(), None, "the root has no /dev/zero");
        fs::create_dir_all(root.join("dev")).unwrap();
        if mknod(&root.join("dev/zero"), libc::S_IFCHR, libc::makedev(1, 5)) {
            assert_eq!(err("/dev/zero"), "/etc/passwd in the container is a character device, not a regular file");
        }
        fs::remove_file(&passwd).unwrap();
        fs::create_dir(&passwd).unwrap();
        assert_eq!(err("a directory"), "/etc/passwd in the container is a directory, not a regular file");
        fs::remove_dir(&passwd).unwrap();

        // Bounded.
        fs::write(&passwd, vec![b'x'; MAX_FILE_SIZE as usize + 1]).unwrap();
        assert_eq!(err("too large"), format!("/etc/passwd in the container is larger than {MAX_FILE_SIZE} bytes, the most berth reads"));
        fs::write(&passwd, vec![b'x'; MAX_FILE_SIZE as usize]).unwrap();
        assert_eq!(read(&root, "etc/passwd").unwrap().map(|v| v.len()), Some(MAX_FILE_SIZE as usize));
    }

    #[test]
    fn hostile_files_in_a_root_directory() {
        hostile_cases(&|root, rel| read_in_root(root, rel));
    }

    #[test]
    fn hostile_files_through_the_walk() {
        hostile_cases(&|root, rel| walk(&[root.to_path_buf()], false, rel));
    }

    #[test]
    fn hostile_files_in_overlay_layers() {
        // The same files as the top layer of an overlay, over a lower layer.
        hostile_cases(&|root, rel| {
            let low = root.parent().unwrap().join("low");
            fs::create_dir_all(low.join("etc")).unwrap();
            let opts = vec![format!("upperdir={}", root.display()), format!("lowerdir={}", low.display())];
            read_rootfs_file(&overlay(&opts), rel)
        });
    }

    #[test]
    fn symlinks_resolve_across_layers() {
        // etc/passwd in the upper layer links to a file that only a lower
        // layer has, through a directory link in another layer.
        let d = tempfile::tempdir().unwrap();
        let (upper, low) = (d.path().join("upper"), d.path().join("low"));
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(low.join("usr/share/base")).unwrap();
        fs::write(low.join("usr/share/base/passwd"), "base").unwrap();
        symlink("usr/share", low.join("share")).unwrap();
        symlink("../share/base/passwd", upper.join("etc/passwd")).unwrap();
        let opts = vec![format!("upperdir={}", upper.display()), format!("lowerdir={}", low.display())];
        assert_eq!(read_rootfs_file(&overlay(&opts), "etc/passwd").unwrap().as_deref(), Some(&b"base"[..]));
    }
}
