//! The tar `docker cp` reads out of a container (`GET .../archive`),
//! written as it walks, straight into the response.
//!
//! The files belong to the container, so the walk is confined like the
//! resolution: every name is opened relative to its directory with
//! `O_NOFOLLOW` (symlinks are archived as symlinks, never followed), only
//! regular files are read (non-blocking, checked to be the file that was
//! listed, exactly as many bytes as its header says: a file that shrinks
//! meanwhile is padded with zeros), FIFOs and devices are archived as
//! headers, sockets are left out (as Go's tar leaves them out), procfs and
//! sysfs are not walked into, and the depth is bounded ([`MAX_DEPTH`]),
//! as are the names read of one directory ([`MAX_DIR_ENTRIES`]). A file
//! with several links in the tree is archived once, its other names as
//! hard links to the first (as Go's archive does; after [`MAX_LINKED`]
//! such files, as copies).

use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::resolve::Target;
use super::CopyError;

/// The deepest directory `docker cp` walks into.
pub const MAX_DEPTH: usize = 200;
/// The most names berth reads of one directory.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// The most multiply-linked files remembered for hard link entries.
pub const MAX_LINKED: usize = 1 << 20;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Whether `fd` is on procfs or sysfs (whose files the host must not
/// archive for a container).
pub fn is_kernel_fs(fd: impl AsFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|s| {
        #[allow(clippy::unnecessary_cast)] // f_type's type differs between architectures
        let t = s.f_type as i64;
        t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC
    })
}

/// Reads exactly `left` bytes: the file's, then zeros if it shrank.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes the tar of `t`, its entries named under `base` (the requested
/// path's last component, or `.`).
pub fn write_tar<W: Write>(t: &Target, base: &str, out: W) -> Result<(), CopyError> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut w = TarWalk { b: &mut b, path: t.path.clone(), linked: std::collections::HashMap::new() };
    w.entry(&t.parent, &t.name, &t.stat, base, 0)?;
    b.finish().map_err(|e| CopyError::Io { path: t.path.clone(), source: e })?;
    Ok(())
}

struct TarWalk<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    /// The requested path, for messages.
    path: String,
    /// Files with several links already archived: (dev, ino) → name.
    linked: std::collections::HashMap<(u64, u64), String>,
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

impl<W: Write> TarWalk<'_, W> {
    fn io(&self, e: impl Into<std::io::Error>) -> CopyError {
        CopyError::Io { path: self.path.clone(), source: e.into() }
    }

    fn entry(&mut self, dir: &OwnedFd, name: &CStr, st: &Stat, tar_name: &str, depth: usize) -> Result<(), CopyError> {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.linked.get(&key) {
                        let first = first.clone();
                        let mut h = header(st, tar::EntryType::Link);
                        return self.b.append_link(&mut h, tar_name, first).map_err(|e| self.io(e));
                    }
                    if self.linked.len() < MAX_LINKED {
                        self.linked.insert(key, tar_name.to_string());
                    }
                }
                let file = match rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(f) => f,
                    // Gone or replaced meanwhile: left out.
                    Err(Errno::NOENT | Errno::LOOP) => return Ok(()),
                    Err(e) => return Err(self.io(e)),
                };
                let now = rustix::fs::fstat(&file).map_err(|e| self.io(e))?;
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Ok(());
                }
                let size = st.st_size.max(0) as u64;
                let mut h = header(st, tar::EntryType::Regular);
                h.set_size(size);
                let reader = Exact { inner: std::fs::File::from(file).take(size), left: size };
                self.b.append_data(&mut h, tar_name, reader).map_err(|e| self.io(e))
            }
            FileType::Symlink => {
                let target = match rustix::fs::readlinkat(dir, name, Vec::new()) {
                    Ok(t) => t,
                    Err(Errno::NOENT | Errno::INVAL) => return Ok(()),
                    Err(e) => return Err(self.io(e)),
                };
                let mut h = header(st, tar::EntryType::Symlink);
                let target = std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target.as_bytes()));
                self.b.append_link(&mut h, tar_name, target).map_err(|e| self.io(e))
            }
            FileType::Fifo => self.b.append_data(&mut header(st, tar::EntryType::Fifo), tar_name, std::io::empty()).map_err(|e| self.io(e)),
            t @ (FileType::CharacterDevice | FileType::BlockDevice) => {
                let kind = if t == FileType::CharacterDevice { tar::EntryType::Char } else { tar::EntryType::Block };
                let mut h = header(st, kind);
                h.set_device_major(rustix::fs::major(st.st_rdev)).map_err(|e| self.io(e))?;
                h.set_device_minor(rustix::fs::minor(st.st_rdev)).map_err(|e| self.io(e))?;
                self.b.append_data(&mut h, tar_name, std::io::empty()).map_err(|e| self.io(e))
            }
            FileType::Directory => {
                if depth > MAX_DEPTH {
                    return Err(CopyError::Invalid(format!("{} is more than {MAX_DEPTH} directories deep, the most docker cp walks", self.path)));
                }
                let sub = match rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(f) => f,
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
                    Err(e) => return Err(self.io(e)),
                };
                let dir_name = if tar_name.ends_with('/') { tar_name.to_string() } else { format!("{tar_name}/") };
                self.b.append_data(&mut header(st, tar::EntryType::Directory), &dir_name, std::io::empty()).map_err(|e| self.io(e))?;
                if is_kernel_fs(&sub) {
                    return Ok(());
                }
                for child in self.names(&sub)? {
                    let cst = match rustix::fs::statat(&sub, &child, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(s) => s,
                        Err(Errno::NOENT) => continue,
                        Err(e) => return Err(self.io(e)),
                    };
                    let child_name = format!("{dir_name}{}", String::from_utf8_lossy(child.to_bytes()));
                    self.entry(&sub, &child, &cst, &child_name, depth + 1)?;
                }
                Ok(())
            }
            // Sockets (and anything else) are not archived.
            _ => Ok(()),
        }
    }

    fn names(&self, dir: &OwnedFd) -> Result<Vec<CString>, CopyError> {
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(dir).map_err(|e| self.io(e))? {
            let entry = entry.map_err(|e| self.io(e))?;
            let n = entry.file_name();
            if n.to_bytes() == b"." || n.to_bytes() == b".." {
                continue;
            }
            if out.len() >= MAX_DIR_ENTRIES {
                return Err(CopyError::Invalid(format!("a directory under {} has more than {MAX_DIR_ENTRIES} entries, the most docker cp reads", self.path)));
            }
            out.push(n.to_owned());
        }
        out.sort();
        Ok(out)
    }
}
