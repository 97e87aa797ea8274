//! Listening on unix sockets: `unix:///run/berth/berth.sock` by default,
//! several `-H` allowed. Sockets get mode 0660 and group `docker` when that
//! group exists, as dockerd does. A stale socket file is replaced; a socket
//! another daemon still answers on is an error.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Errors binding a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("unsupported host {0:?}: berth listens on unix sockets only (unix:///path/to.sock)")]
    Unsupported(String),
    #[error("another daemon is already listening on {0}; stop it or choose another socket with -H")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The listening sockets systemd passed (`LISTEN_FDS`), for `fd://`.
pub fn systemd_listeners() -> Result<Vec<(PathBuf, UnixListener)>, ListenError> {
    let pid_ok = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let n: i32 = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    if !pid_ok || n < 1 {
        return Err(ListenError::Unsupported("fd:// (no sockets passed by systemd: LISTEN_FDS is not set for this process)".into()));
    }
    let mut out = Vec::new();
    for fd in 3..3 + n {
        use std::os::fd::FromRawFd;
        // SAFETY: systemd passes these descriptors to us and nobody else uses them.
        let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true).map_err(|e| ListenError::Io { path: format!("fd {fd}").into(), source: e })?;
        let path = std_listener.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.to_path_buf())).unwrap_or_else(|| format!("fd {fd}").into());
        let l = UnixListener::from_std(std_listener).map_err(|e| ListenError::Io { path: path.clone(), source: e })?;
        out.push((path, l));
    }
    Ok(out)
}

/// Binds one `unix://` host.
pub async fn bind(host: &str) -> Result<(PathBuf, UnixListener), ListenError> {
    let path = PathBuf::from(host.strip_prefix("unix://").ok_or_else(|| ListenError::Unsupported(host.into()))?);
    let io_err = |source| ListenError::Io { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(&path).await.is_ok() {
            return Err(ListenError::InUse(path));
        }
        std::fs::remove_file(&path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(&path).map_err(io_err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    if let Some(gid) = group_id("docker") {
        chown_group(&path, gid).map_err(io_err)?;
    }
    Ok((path, listener))
}

fn group_id(name: &str) -> Option<libc::gid_t> {
    let c = CString::new(name).ok()?;
    // SAFETY: getgrnam returns a pointer to static storage or NULL; read at once.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
}

fn chown_group(path: &Path, gid: libc::gid_t) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: valid C string; uid -1 leaves the owner unchanged.
    if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
