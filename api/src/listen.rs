//! Listening on unix sockets: `unix:///run/berth/berth.sock` by default,
//! several `-H` allowed. Sockets get mode 0660 and group `docker` when that
//! group exists, as dockerd does. A stale socket file is replaced; a socket
//! another daemon still answers on is an error.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockRef, Type};
use tokio::net::UnixListener;

/// Errors binding a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("unsupported host {0:?}: berth listens on unix sockets only (unix:///path/to.sock)")]
    Unsupported(String),
    #[error("another daemon is already listening on {0}; stop it or choose another socket with -H")]
    InUse(PathBuf),
    #[error("fd://: file descriptor {fd} passed by systemd is {what}; berth serves only listening unix stream sockets (ListenStream=/path/to.sock in the .socket unit)")]
    NotUnixStream { fd: RawFd, what: String },
    #[error("cannot listen on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The listening sockets systemd passed (`LISTEN_FDS`), for `fd://`. Each
/// must be a listening unix stream socket (`ListenStream=/path` in the
/// `.socket` unit); any other descriptor is refused, naming it and what it
/// is. They are marked close-on-exec so no child process inherits them.
pub fn systemd_listeners() -> Result<Vec<(PathBuf, UnixListener)>, ListenError> {
    let pid_ok = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let n: RawFd = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    if !pid_ok || n < 1 {
        return Err(ListenError::Unsupported("fd:// (no sockets passed by systemd: LISTEN_FDS is not set for this process)".into()));
    }
    let fds = SD_LISTEN_FDS_START..SD_LISTEN_FDS_START.saturating_add(n);
    // Check them all before taking any: nothing is closed on a refusal.
    for fd in fds.clone() {
        check_activated_fd(fd)?;
    }
    let mut out = Vec::new();
    for fd in fds {
        // SAFETY: systemd passed this descriptor to this process, it is an
        // open unix socket (checked above), and nothing else owns it.
        let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        let io_err = |source| ListenError::Io { path: format!("fd {fd}").into(), source };
        set_cloexec(std_listener.as_raw_fd()).map_err(io_err)?;
        std_listener.set_nonblocking(true).map_err(io_err)?;
        let path = std_listener.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.to_path_buf())).unwrap_or_else(|| format!("fd {fd}").into());
        let l = UnixListener::from_std(std_listener).map_err(|e| ListenError::Io { path: path.clone(), source: e })?;
        out.push((path, l));
    }
    Ok(out)
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const SD_LISTEN_FDS_START: RawFd = 3;

/// Checks that `fd` is an open, listening unix stream socket; the error
/// says what it is instead.
pub fn check_activated_fd(fd: RawFd) -> Result<(), ListenError> {
    let refuse = |what: String| Err(ListenError::NotUnixStream { fd, what });
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return refuse("not open".into());
    }
    // SAFETY: the descriptor is open (checked above) and is only borrowed for
    // the getsockopt calls below, while this process keeps it open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = SockRef::from(&borrowed);
    let (domain, kind) = match (sock.domain(), sock.r#type()) {
        (Ok(d), Ok(t)) => (d, t),
        (Err(e), _) | (_, Err(e)) if e.raw_os_error() == Some(libc::ENOTSOCK) => return refuse("not a socket".into()),
        (Err(e), _) | (_, Err(e)) => return Err(ListenError::Io { path: format!("fd {fd}").into(), source: e }),
    };
    let ip = |v| if domain == Domain::IPV4 { format!("IPv4 {v}") } else { format!("IPv6 {v}") };
    match (domain, kind) {
        (Domain::UNIX, Type::STREAM) => match sock.is_listener() {
            Ok(true) => Ok(()),
            Ok(false) => refuse("a unix stream socket that is not listening".into()),
            Err(e) => Err(ListenError::Io { path: format!("fd {fd}").into(), source: e }),
        },
        (Domain::UNIX, Type::DGRAM) => refuse("a unix datagram socket (ListenDatagram=)".into()),
        (Domain::UNIX, Type::SEQPACKET) => refuse("a unix seqpacket socket (ListenSequentialPacket=)".into()),
        (Domain::IPV4 | Domain::IPV6, Type::STREAM) => refuse(format!("an {} socket", ip("TCP"))),
        (Domain::IPV4 | Domain::IPV6, Type::DGRAM) => refuse(format!("an {} socket", ip("UDP"))),
        (d, t) => refuse(format!("a socket of domain {d:?} and type {t:?}")),
    }
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns; only FD_CLOEXEC changes.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn refusal(fd: RawFd) -> String {
        check_activated_fd(fd).expect_err("refused").to_string()
    }

    #[test]
    fn fd_activation_takes_only_listening_unix_stream_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::os::unix::net::UnixListener::bind(dir.path().join("ok.sock")).unwrap();
        check_activated_fd(ok.as_raw_fd()).expect("a listening unix stream socket is taken");

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let (stream, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        for (fd, what) in [
            (udp.as_raw_fd(), "an IPv4 UDP socket"),
            (tcp.as_raw_fd(), "an IPv4 TCP socket"),
            (dgram.as_raw_fd(), "a unix datagram socket"),
            (stream.as_raw_fd(), "a unix stream socket that is not listening"),
            (file.as_raw_fd(), "not a socket"),
            // Far above RLIMIT_NOFILE: never open.
            (999_999, "not open"),
        ] {
            let msg = refusal(fd);
            assert!(msg.contains(&format!("file descriptor {fd} passed by systemd is {what}")), "{msg}");
            assert!(msg.contains("ListenStream="), "says what to do: {msg}");
        }
    }
}
