//! Extracting a client's tar into a container directory (`PUT
//! .../archive`), as dockerd's chrooted extraction does, confined:
//!
//! - the tar is read once by the capped walker
//!   ([`crate::images::archive::walk`], [`TarLimits`]);
//! - an entry's path is cleaned; one that climbs out of the destination
//!   (`..`) is refused, as dockerd refuses it ("breakout");
//! - its parent directory is resolved inside the container's root
//!   (`RESOLVE_IN_ROOT`: a symlinked directory leads where it would in the
//!   container, never out of it); missing parents are created (0755);
//! - the entry itself is created with `O_NOFOLLOW`/`*at` calls on that
//!   parent: an existing symlink is replaced, never written through;
//! - an existing entry is replaced, unless both are directories, and with
//!   `noOverwriteDirNonDir` a directory is never replaced by a
//!   non-directory nor the other way round;
//! - owners come from the tar, or are the container user's with
//!   `copyUIDGID`; modes and mtimes from the tar (directories' mtimes set
//!   last);
//! - devices are refused (berth creates no device node from a client's
//!   archive).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::resolve::{clean, open_dir};
use super::CopyError;
use crate::images::archive::{walk, ArchiveError, TarLimits, WalkOptions};

/// How to extract.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry's owner, instead of the tar's.
    pub owner: Option<(u32, u32)>,
}

/// The deepest a tree removed to make room for an entry may be.
const MAX_REMOVE_DEPTH: usize = 200;

/// Extracts the tar `input` into the directory `dest` (a cleaned absolute
/// path in the container) under `root`.
pub fn extract(root: &OwnedFd, dest: &str, input: impl Read, limits: &TarLimits, opts: ExtractOptions) -> Result<(), CopyError> {
    let dest_parts = clean(dest);
    let mut dirs: Vec<(Vec<String>, i64)> = Vec::new();
    let result = walk(input, &WalkOptions::new(*limits), |entry, body| {
        let name = String::from_utf8_lossy(&entry.path).into_owned();
        let mut parts: Vec<String> = Vec::new();
        for c in name.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(ArchiveError::Invalid(format!("{name:?} is outside of the destination {dest}")));
                    }
                }
                c => parts.push(c.to_string()),
            }
        }
        let Some((last, parents)) = parts.split_last() else { return Ok(()) };
        let mut full = dest_parts.clone();
        full.extend(parents.iter().cloned());
        let parent = ensure_dir(root, &full).map_err(|e| archive_err(&name, e))?;
        let cname = CString::new(last.as_bytes()).map_err(|_| ArchiveError::Invalid(format!("{name:?} holds a NUL byte")))?;
        let is_dir = entry.kind == tar::EntryType::Directory;
        if let Ok(st) = rustix::fs::statat(&parent, &cname, AtFlags::SYMLINK_NOFOLLOW) {
            let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            if opts.no_overwrite_dir_non_dir && existing_dir && !is_dir {
                return Err(ArchiveError::Invalid(format!("cannot overwrite directory {:?} with non-directory {name:?}", join(&full, last))));
            }
            if opts.no_overwrite_dir_non_dir && !existing_dir && is_dir {
                return Err(ArchiveError::Invalid(format!("cannot overwrite non-directory {:?} with directory {name:?}", join(&full, last))));
            }
            if !(existing_dir && is_dir) {
                remove(&parent, &cname, existing_dir, 0).map_err(|e| archive_err(&name, e))?;
            }
        }
        let mode = Mode::from_raw_mode(entry.mode & 0o7777);
        match entry.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = rustix::fs::openat(&parent, &cname, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
                    .map_err(|e| archive_err(&name, e))?;
                let mut f = std::fs::File::from(fd);
                std::io::copy(body, &mut f).map_err(|e| ArchiveError::Io(format!("writing {name}: {e}")))?;
            }
            tar::EntryType::Directory => match rustix::fs::mkdirat(&parent, &cname, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(archive_err(&name, e)),
            },
            tar::EntryType::Symlink => {
                let target = entry.link.clone().unwrap_or_default();
                let target = CString::new(target).map_err(|_| ArchiveError::Invalid(format!("the link of {name:?} holds a NUL byte")))?;
                rustix::fs::symlinkat(&target, &parent, &cname).map_err(|e| archive_err(&name, e))?;
            }
            tar::EntryType::Link => {
                // The target is a path in the archive, so in the destination.
                let target = String::from_utf8_lossy(entry.link.as_deref().unwrap_or_default()).into_owned();
                let mut t = dest_parts.clone();
                for c in target.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => {
                            if t.len() <= dest_parts.len() {
                                return Err(ArchiveError::Invalid(format!("the link {target:?} of {name:?} is outside of the destination {dest}")));
                            }
                            t.pop();
                        }
                        c => t.push(c.to_string()),
                    }
                }
                let Some((tlast, tparents)) = t.split_last() else {
                    return Err(ArchiveError::Invalid(format!("the link of {name:?} names the destination itself")));
                };
                let tparent = open_dir(root, &tparents.join("/")).map_err(|e| archive_err(&name, e))?;
                let tname = CString::new(tlast.as_bytes()).map_err(|_| ArchiveError::Invalid(format!("the link of {name:?} holds a NUL byte")))?;
                rustix::fs::linkat(&tparent, &tname, &parent, &cname, AtFlags::empty()).map_err(|e| archive_err(&name, e))?;
                return Ok(());
            }
            tar::EntryType::Fifo => {
                rustix::fs::mknodat(&parent, &cname, FileType::Fifo, Mode::from_raw_mode(0o600), 0).map_err(|e| archive_err(&name, e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(ArchiveError::Invalid(format!("{name:?} is a device; berth creates no device file from docker cp")));
            }
            other => return Err(ArchiveError::Invalid(format!("{name:?} is of a tar entry type berth does not extract ({:?})", other.as_byte() as char))),
        }
        let (uid, gid) = opts.owner.unwrap_or((entry.uid as u32, entry.gid as u32));
        let chown = rustix::fs::chownat(
            &parent,
            &cname,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        chown.map_err(|e| archive_err(&name, e))?;
        if entry.kind != tar::EntryType::Symlink {
            // After the chown, which clears setuid and setgid.
            chmod_nofollow(&parent, &cname, mode).map_err(|e| archive_err(&name, e))?;
        }
        if is_dir {
            let mut p = full.clone();
            p.push(last.clone());
            dirs.push((p, entry.mtime));
        } else {
            let t = Timespec { tv_sec: entry.mtime, tv_nsec: 0 };
            let _ = rustix::fs::utimensat(&parent, &cname, &Timestamps { last_access: t, last_modification: t }, AtFlags::SYMLINK_NOFOLLOW);
        }
        Ok(())
    });
    result.map_err(|e| match e {
        ArchiveError::Limit { .. } => CopyError::Invalid(format!("docker cp refused the archive: {e} (berth's limits on archives are in its README)")),
        e => CopyError::Invalid(format!("extracting the archive: {e}")),
    })?;
    // Directories last: what was written in them changed their mtime.
    for (p, mtime) in dirs.iter().rev() {
        if let Ok(fd) = open_dir(root, &p.join("/")) {
            let t = Timespec { tv_sec: *mtime, tv_nsec: 0 };
            let ts = Timestamps { last_access: t, last_modification: t };
            if let Ok(dir) = rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
                let _ = rustix::fs::futimens(&dir, &ts);
            }
        }
    }
    Ok(())
}

/// `chmod` of `name` in `dir` that never follows a symlink: the container
/// may have put one there meanwhile, and a symlink's target would resolve
/// on the host. The entry is pinned with an `O_PATH | O_NOFOLLOW`
/// descriptor and changed through `/proc/self/fd` (what `fchmodat` with
/// `AT_SYMLINK_NOFOLLOW` does where the kernel lacks `fchmodat2`); a
/// symlink found there is left alone.
fn chmod_nofollow(dir: &OwnedFd, name: &std::ffi::CStr, mode: Mode) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Ok(());
    }
    rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode)
}

fn join(parents: &[String], last: &str) -> String {
    let mut p: Vec<&str> = parents.iter().map(String::as_str).collect();
    p.push(last);
    format!("/{}", p.join("/"))
}

fn archive_err(name: &str, e: Errno) -> ArchiveError {
    ArchiveError::Io(format!("{name}: {}", std::io::Error::from(e)))
}

/// Opens the directory `parts` inside the root, creating what is missing
/// (0755, owned by root).
fn ensure_dir(root: &OwnedFd, parts: &[String]) -> Result<OwnedFd, Errno> {
    match open_dir(root, &parts.join("/")) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    let mut cur = open_dir(root, "")?;
    for (i, c) in parts.iter().enumerate() {
        match open_dir(root, &parts[..=i].join("/")) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => {
                let name = CString::new(c.as_bytes()).map_err(|_| Errno::INVAL)?;
                match rustix::fs::mkdirat(&cur, &name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                cur = open_dir(root, &parts[..=i].join("/"))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Removes `name` in `dir`, a whole tree if it is a directory, without
/// following any symlink.
fn remove(dir: &OwnedFd, name: &std::ffi::CStr, is_dir: bool, depth: usize) -> Result<(), Errno> {
    if !is_dir {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        };
    }
    if depth > MAX_REMOVE_DEPTH {
        return Err(Errno::NAMETOOLONG);
    }
    let sub = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let mut names = Vec::new();
    for e in rustix::fs::Dir::read_from(&sub)? {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            let is_dir = match e.file_type() {
                FileType::Unknown => rustix::fs::statat(&sub, n, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                t => t == FileType::Directory,
            };
            names.push((n.to_owned(), is_dir));
        }
    }
    for (n, d) in names {
        remove(&sub, &n, d, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o4750);
            h.set_mtime(1_000_000);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn root_fd(p: &std::path::Path) -> OwnedFd {
        rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn extracts_inside_the_root_only() {
        let d = tempfile::tempdir().unwrap();
        let (root, host) = (d.path().join("root"), d.path().join("host"));
        fs::create_dir_all(root.join("dst")).unwrap();
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("f"), "host").unwrap();
        fs::set_permissions(host.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
        // A symlink in the container to a host path: followed inside the root.
        std::os::unix::fs::symlink(&host, root.join("dst/out")).unwrap();
        let fd = root_fd(&root);
        let tar = tar_of(&[
            ("a/b/file", tar::EntryType::Regular, b"data", None),
            ("a/link", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            ("a/hard", tar::EntryType::Link, b"", Some("a/b/file")),
        ]);
        extract(&fd, "/dst", &tar[..], &TarLimits::DEFAULT, ExtractOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(root.join("dst/a/b/file")).unwrap(), "data");
        let m = fs::metadata(root.join("dst/a/b/file")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime(), m.nlink()), (0o4750, 1_000_000, 2));
        assert_eq!(fs::read_link(root.join("dst/a/link")).unwrap().to_str(), Some("/etc/passwd"));
        // Through the container's symlink: the host directory is not there
        // in the container, so nothing is written on the host.
        let tar = tar_of(&[("out/f", tar::EntryType::Regular, b"evil", None)]);
        assert!(extract(&fd, "/dst", &tar[..], &TarLimits::DEFAULT, ExtractOptions::default()).is_err());
        assert_eq!(fs::read_to_string(host.join("f")).unwrap(), "host");
        assert_eq!(fs::metadata(host.join("f")).unwrap().mode() & 0o777, 0o600);
        // `..` out of the destination is refused; a symlink entry replaces
        // an existing file without writing through it.
        let tar = tar_of(&[("../x", tar::EntryType::Regular, b"x", None)]);
        let e = extract(&fd, "/dst", &tar[..], &TarLimits::DEFAULT, ExtractOptions::default()).unwrap_err();
        assert!(e.to_string().contains("outside of the destination"), "{e}");
        let tar = tar_of(&[("a/link", tar::EntryType::Regular, b"replaced", None)]);
        extract(&fd, "/dst", &tar[..], &TarLimits::DEFAULT, ExtractOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(root.join("dst/a/link")).unwrap(), "replaced");
        // noOverwriteDirNonDir.
        let tar = tar_of(&[("a/b", tar::EntryType::Regular, b"x", None)]);
        let opts = ExtractOptions { no_overwrite_dir_non_dir: true, owner: None };
        let e = extract(&fd, "/dst", &tar[..], &TarLimits::DEFAULT, opts).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        // Limits of the walker apply.
        let small = TarLimits { path: 8, ..TarLimits::DEFAULT };
        let tar = tar_of(&[("a/very-long-name", tar::EntryType::Regular, b"x", None)]);
        assert!(extract(&fd, "/dst", &tar[..], &small, ExtractOptions::default()).unwrap_err().to_string().contains("limit"));
    }

    #[test]
    fn chmod_never_follows_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, "x").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("link")).unwrap();
        let fd = root_fd(d.path());
        chmod_nofollow(&fd, c"link", Mode::from_raw_mode(0o777)).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
        chmod_nofollow(&fd, c"target", Mode::from_raw_mode(0o640)).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o640);
    }
}
