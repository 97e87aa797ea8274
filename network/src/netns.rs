//! Named network namespaces: a namespace kept alive by a bind mount of
//! `/proc/thread-self/ns/net` on a file under berth's exec root, as
//! `ip netns add` does. The OCI spec points the container at the file;
//! netavark configures it by path. The exec root survives a berth
//! SIGKILL (it is on a tmpfs: only a reboot clears it, and that clears the
//! interfaces and rules with it).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{NetError, Result};

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// Makes the directory namespaces are bound in. (Not a shared mount of
/// its own, as iproute2 makes /run/netns: the mount namespaces that copy a
/// binding meanwhile are containers', which drop the host's mounts when
/// they pivot into their root.)
pub fn prepare_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(NetError::io("creating the namespace directory", dir))
}

/// Creates a new network namespace bound at `path` (which must not exist).
pub fn create(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(NetError::io("creating the namespace file", path))?;
    let target = cstr(path).map_err(NetError::io("namespace file", path))?;
    // unshare(2) changes the calling thread only: do it on a thread of its
    // own that ends right after the bind mount keeps the namespace alive.
    let made = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: CLONE_NEWNET affects this short-lived thread only; the
        // mount arguments are valid NUL-terminated strings.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            let src = c"/proc/thread-self/ns/net";
            if libc::mount(src.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if let Err(e) = made {
        let _ = fs::remove_file(path);
        return Err(NetError::io("creating a network namespace at", path)(e));
    }
    Ok(())
}

/// Unmounts and removes a namespace file; a missing one is not an error.
pub fn remove(path: &Path) -> Result<()> {
    let c = cstr(path).map_err(NetError::io("namespace file", path))?;
    // SAFETY: umount2(2) with a valid path.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        let e = io::Error::last_os_error();
        // EINVAL: not a mount point (a file left by a crash before the bind).
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(NetError::io("unmounting the namespace", path)(e));
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("removing the namespace file", path)(e)),
    }
}

/// Whether `path` is a bound network namespace (not a leftover plain file).
pub fn is_bound(path: &Path) -> bool {
    // A bound nsfs file reports the nsfs magic as its filesystem.
    let Ok(c) = cstr(path) else { return false };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs(2) into a zeroed struct with a valid path.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    r == 0 && st.f_type as i64 == NSFS_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn create_is_a_namespace_and_remove_leaves_nothing() {
        assert!(root(), "the network tests run as root (they make namespaces)");
        let d = tempfile::tempdir().unwrap();
        prepare_dir(d.path()).unwrap();
        let p = d.path().join("ns1");
        create(&p).unwrap();
        assert!(is_bound(&p));
        assert!(create(&p).is_err(), "an existing name is refused");
        remove(&p).unwrap();
        assert!(!p.exists());
        remove(&p).unwrap();
        // A plain file (a crash between create and bind) is removed too.
        fs::write(&p, "").unwrap();
        assert!(!is_bound(&p));
        remove(&p).unwrap();
        assert!(!p.exists());
    }
}
