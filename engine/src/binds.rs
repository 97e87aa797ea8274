//! `HostConfig.Binds` entries (`-v src:dst[:mode]`): one parser, with
//! dockerd's Linux rules and messages, used to validate a create request
//! and to build the container's mounts (read-only and propagation
//! included).

/// Why a bind is refused (a 400 at create).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("invalid volume specification: '{0}'")]
    InvalidVolumeSpec(String),
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// dockerd's `errMountConfig`: `invalid mount config for type "bind": <reason>`.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    MountConfig { kind: String, reason: String },
    /// Something Docker has that berth does not do yet.
    #[error("{0}")]
    Unsupported(String),
}

/// A parsed `-v src:dst[:mode]` bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Absolute host path.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// `ro` was given.
    pub read_only: bool,
    /// The mode string as given (`""`, `ro`, `rw,rshared`, `z`, …).
    pub mode: String,
}

impl BindSpec {
    /// Propagation named in the mode (`rprivate` when none, like dockerd).
    pub fn propagation(&self) -> &str {
        self.mode
            .split(',')
            .find(|m| matches!(*m, "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"))
            .unwrap_or("rprivate")
    }
}

/// Parses a `HostConfig.Binds` entry with dockerd's Linux rules and
/// messages. Only host-path binds are supported: a relative source is a
/// named volume and a single path an anonymous volume, both refused.
pub fn parse_bind(spec: &str) -> Result<BindSpec, BindError> {
    let invalid = || BindError::InvalidVolumeSpec(spec.to_owned());
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let (source, target, mode) = match parts.as_slice() {
        [_] => {
            return Err(BindError::Unsupported(format!(
                "berth does not support anonymous volumes yet: '{spec}' (use host-path binds, src:dst)"
            )))
        }
        [_, second] if valid_mode(second) => return Err(invalid()),
        [s, t] => (*s, *t, ""),
        [s, t, m] => {
            if !valid_mode(m) {
                return Err(BindError::InvalidMode((*m).to_owned()));
            }
            (*s, *t, *m)
        }
        _ => return Err(invalid()),
    };
    let mount_err = |reason: String| BindError::MountConfig { kind: "bind".into(), reason };
    if !target.starts_with('/') {
        return Err(mount_err(format!("invalid mount path: '{target}' mount path must be absolute")));
    }
    if target.trim_end_matches('/').is_empty() {
        return Err(mount_err("invalid specification: destination can't be '/'".into()));
    }
    if !source.starts_with('/') {
        return Err(BindError::Unsupported(format!(
            "berth does not support named volumes yet: '{source}' in '{spec}' (the source of a bind must be an absolute host path)"
        )));
    }
    let read_only = mode.split(',').any(|m| m == "ro");
    Ok(BindSpec { source: source.into(), target: target.into(), read_only, mode: mode.into() })
}

/// dockerd's `linuxValidMountMode`: comma-separated, at most one of each
/// group (rw/ro, label, propagation, copy, consistency).
fn valid_mode(mode: &str) -> bool {
    const GROUPS: &[&[&str]] = &[
        &["rw", "ro"],
        &["z", "Z"],
        &["shared", "rshared", "slave", "rslave", "private", "rprivate"],
        &["nocopy"],
        &["consistent", "cached", "delegated"],
    ];
    let mut seen = [0u8; 5];
    for m in mode.split(',') {
        match GROUPS.iter().position(|g| g.contains(&m)) {
            Some(i) if seen[i] == 0 => seen[i] = 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let b = parse_bind("/src:/dst").unwrap();
        assert_eq!((b.source.as_str(), b.target.as_str(), b.read_only), ("/src", "/dst", false));
        assert_eq!(b.propagation(), "rprivate");
        let b = parse_bind("/src:/dst:ro,rshared").unwrap();
        assert!(b.read_only);
        assert_eq!(b.propagation(), "rshared");
        assert!(parse_bind("/a:/b:z").is_ok());
        assert!(parse_bind("/a:/b:rw").is_ok());

        let msg = |s: &str| parse_bind(s).unwrap_err().to_string();
        assert_eq!(msg("/a:/b:c:d"), "invalid volume specification: '/a:/b:c:d'");
        assert_eq!(msg(":/b"), "invalid volume specification: ':/b'");
        assert_eq!(msg("/a:ro"), "invalid volume specification: '/a:ro'");
        assert_eq!(msg("/a:/b:xx"), "invalid mode: xx");
        assert_eq!(msg("/a:/b:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(
            msg("/a:b"),
            "invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute"
        );
        assert_eq!(
            msg("/a:/"),
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert!(msg("data:/b").contains("named volumes"));
        assert!(msg("/b").contains("anonymous volumes"));
    }
}
