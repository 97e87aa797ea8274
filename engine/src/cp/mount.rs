//! Temporary mounts of a stopped container's snapshot, for `docker cp`:
//! `<data-root>/tmp/mount-*`, unmounted and removed when dropped. A daemon
//! killed in the middle leaves them mounted; the engine's start unmounts
//! and removes them ([`crate::images::scratch::Scratch::clean`]) before
//! it serves anything.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_containerd::Mount;

/// A snapshot mounted on a scratch directory.
#[derive(Debug)]
pub struct TempMount {
    dir: Option<tempfile::TempDir>,
}

fn cstr(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a mount argument holds a NUL byte"))
}

fn sys_mount(source: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> std::io::Result<()> {
    let source = cstr(source.as_bytes())?;
    let target = cstr(target.as_os_str().as_bytes())?;
    let fstype = fstype.map(|f| cstr(f.as_bytes())).transpose()?;
    let data = data.map(|d| cstr(d.as_bytes())).transpose()?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the
    // call, or null where the kernel allows it.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Detaches whatever is mounted on `path` (`EINVAL`: nothing is).
pub fn unmount(path: &Path) -> std::io::Result<()> {
    let p = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        Ok(())
    } else {
        Err(e)
    }
}

impl TempMount {
    /// Mounts containerd's `mounts` (one overlay or bind mount) on `dir`
    /// (a new scratch directory). Blocking.
    pub fn mount(dir: tempfile::TempDir, mounts: &[Mount], read_only: bool) -> std::io::Result<TempMount> {
        let [m] = mounts else {
            return Err(std::io::Error::other(format!("the container's filesystem has {} mounts, berth mounts one", mounts.len())));
        };
        let ro = read_only || m.options.iter().any(|o| o == "ro");
        let target = dir.path().to_path_buf();
        if m.r#type == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind") {
            sys_mount(&m.source, &target, None, libc::MS_BIND | libc::MS_REC, None)?;
            if ro {
                if let Err(e) = sys_mount("", &target, None, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, None) {
                    let _ = unmount(&target);
                    return Err(e);
                }
            }
        } else if m.r#type == "overlay" {
            let data: Vec<&str> = m.options.iter().map(String::as_str).filter(|o| *o != "ro" && *o != "rw").collect();
            let flags = if ro { libc::MS_RDONLY } else { 0 };
            sys_mount("overlay", &target, Some("overlay"), flags, Some(&data.join(",")))?;
        } else {
            return Err(std::io::Error::other(format!("berth does not mount filesystems of type {:?}", m.r#type)));
        }
        Ok(TempMount { dir: Some(dir) })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default()
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        match unmount(dir.path()) {
            // Empty once unmounted: the directory goes with the handle.
            Ok(()) => drop(dir),
            Err(e) => {
                // Never remove what may still be the container's files.
                tracing::warn!(dir = %dir.path().display(), error = %e, "unmounting a docker cp mount failed; the next start retries");
                let _ = dir.keep();
            }
        }
    }
}
