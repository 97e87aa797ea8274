//! sd_notify: tell systemd (or any supervisor that sets `NOTIFY_SOCKET`)
//! about readiness, reloads and shutdown. A no-op without `NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET`, if set. Failures are logged, never fatal.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let res = (|| {
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), &path)?;
        }
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = res {
        tracing::warn!(error = %e, state, "sd_notify failed");
    }
}

/// `RELOADING=1` with the `MONOTONIC_USEC` systemd's `Type=notify-reload`
/// requires (CLOCK_MONOTONIC, microseconds); `READY=1` ends the reload.
pub fn reloading_message() -> String {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reloading_carries_a_monotonic_timestamp() {
        let m = super::reloading_message();
        let usec: u64 = m.strip_prefix("RELOADING=1\nMONOTONIC_USEC=").expect(&m).parse().unwrap();
        assert!(usec > 0);
    }
}
