//! Linux capabilities: names as the Docker API takes them (`NET_ADMIN`,
//! `CAP_NET_ADMIN`, any case, `ALL`), sets as bit masks (the layout of
//! `/proc/PID/status`), and dockerd's rules for `--cap-add`, `--cap-drop`
//! and `--privileged`.
//!
//! One difference from dockerd, on purpose: `ALL` (and `--privileged`)
//! means every capability *the daemon itself holds* (its bounding set), not
//! every capability the kernel knows. dockerd asks for the kernel's full list,
//! and on a host whose daemon lacks one (this project's CI machine lacks
//! `CAP_SYS_RESOURCE`) every privileged container fails to start with
//! "unable to apply caps: operation not permitted". Naming a capability the
//! daemon lacks explicitly is refused at create, with that reason.

use std::fmt;

/// The capabilities Linux knows, by number (`include/uapi/linux/capability.h`).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// One capability, by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(u8);

impl Cap {
    /// `CAP_…` name.
    pub fn name(self) -> &'static str {
        NAMES[self.0 as usize]
    }

    /// The bit number (as in `/proc/PID/status` masks).
    pub fn number(self) -> u8 {
        self.0
    }

    /// A capability by its exact `CAP_…` name.
    pub fn from_name(name: &str) -> Option<Cap> {
        NAMES.iter().position(|n| *n == name).map(|i| Cap(i as u8))
    }

    /// This capability as oci-spec's type.
    pub fn to_oci(self) -> oci_spec::runtime::Capability {
        // Every name above is one of oci-spec's variants (checked by a test).
        serde_json::from_value(serde_json::Value::String(self.name().to_owned()))
            .expect("every Linux capability name is an oci-spec Capability")
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities (bit `n` = capability number `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapSet(u64);

impl CapSet {
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability Linux knows.
    pub const fn all_known() -> CapSet {
        CapSet((1u64 << NAMES.len()) - 1)
    }

    /// From a `/proc/PID/status` style mask; bits beyond the known
    /// capabilities are dropped.
    pub fn from_mask(mask: u64) -> CapSet {
        CapSet(mask & CapSet::all_known().0)
    }

    pub fn mask(self) -> u64 {
        self.0
    }

    pub fn contains(self, c: Cap) -> bool {
        self.0 & (1 << c.0) != 0
    }

    pub fn insert(&mut self, c: Cap) {
        self.0 |= 1 << c.0;
    }

    pub fn remove(&mut self, c: Cap) {
        self.0 &= !(1 << c.0);
    }

    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set, by number.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        (0..NAMES.len() as u8).map(Cap).filter(move |c| self.contains(*c))
    }

    /// `CAP_…` names, by number.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Cap::name).collect()
    }
}

impl FromIterator<Cap> for CapSet {
    fn from_iter<I: IntoIterator<Item = Cap>>(iter: I) -> Self {
        let mut s = CapSet::EMPTY;
        for c in iter {
            s.insert(c);
        }
        s
    }
}

/// Docker's default capability set (`00000000a80425fb`).
pub const DEFAULT: CapSet = CapSet(
    1 << 0 // CHOWN
        | 1 << 1 // DAC_OVERRIDE
        | 1 << 3 // FOWNER
        | 1 << 4 // FSETID
        | 1 << 5 // KILL
        | 1 << 6 // SETGID
        | 1 << 7 // SETUID
        | 1 << 8 // SETPCAP
        | 1 << 10 // NET_BIND_SERVICE
        | 1 << 13 // NET_RAW
        | 1 << 18 // SYS_CHROOT
        | 1 << 27 // MKNOD
        | 1 << 29 // AUDIT_WRITE
        | 1 << 31, // SETFCAP
);

/// A capability option that cannot be honoured. Messages are dockerd's
/// where dockerd has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("invalid {field}: unknown capability: {name:?}")]
    Unknown { field: &'static str, name: String },
    #[error(
        "invalid CapAdd: {cap} cannot be granted: berth itself does not hold it (it is not in the daemon's bounding set); \
         run berth with that capability or do not ask for it"
    )]
    NotHeld { cap: Cap },
}

/// One entry of `CapAdd`/`CapDrop`, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapName {
    All,
    One(Cap),
}

/// Normalises a name as dockerd does: any case, with or without `CAP_`;
/// `ALL` stands for every capability.
pub fn parse(field: &'static str, name: &str) -> Result<CapName, CapError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapName::All);
    }
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    Cap::from_name(&full).map(CapName::One).ok_or(CapError::Unknown { field, name: full })
}

/// The capabilities a container gets, by dockerd's rules:
/// - `privileged`: every capability (here: every one the daemon holds);
/// - `ALL` in `add`: every capability but the ones in `drop`;
/// - `ALL` in `drop`: only the ones in `add`;
/// - otherwise: the defaults, minus `drop`, plus `add`.
///
/// `held` is the daemon's own bounding set: capabilities outside it are
/// never granted (`ALL`), or refused when named.
pub fn effective(add: &[String], drop: &[String], privileged: bool, held: CapSet) -> Result<CapSet, CapError> {
    let add = add.iter().map(|n| parse("CapAdd", n)).collect::<Result<Vec<_>, _>>()?;
    let drop = drop.iter().map(|n| parse("CapDrop", n)).collect::<Result<Vec<_>, _>>()?;
    if privileged {
        return Ok(held);
    }
    let named = |list: &[CapName]| list.iter().filter_map(|c| if let CapName::One(c) = c { Some(*c) } else { None }).collect::<CapSet>();
    let (adds, drops) = (named(&add), named(&drop));
    if let Some(c) = adds.iter().find(|c| !held.contains(*c)) {
        return Err(CapError::NotHeld { cap: c });
    }
    let set = if add.contains(&CapName::All) {
        CapSet(held.0 & !drops.0)
    } else if drop.contains(&CapName::All) {
        adds
    } else {
        CapSet((DEFAULT.0 & !drops.0) | adds.0)
    };
    Ok(set.intersect(held))
}

/// Checks `CapAdd`/`CapDrop` names (at create, before anything exists).
pub fn validate(add: &[String], drop: &[String], held: CapSet) -> Result<(), CapError> {
    effective(add, drop, false, held).map(|_| ())
}

/// The daemon's own bounding set, from `/proc/self/status` (`CapBnd`).
/// Every known capability when it cannot be read.
pub fn bounding_set_of_self() -> CapSet {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status_mask(&s, "CapBnd"))
        .unwrap_or(CapSet::all_known())
}

/// A capability mask line (`CapEff:\t00000000a80425fb`) of a
/// `/proc/PID/status` text.
pub fn parse_status_mask(status: &str, field: &str) -> Option<CapSet> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        u64::from_str_radix(v.trim(), 16).ok().map(CapSet::from_mask)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_is_dockers_mask() {
        assert_eq!(DEFAULT.mask(), 0xa80425fb);
        assert_eq!(DEFAULT.iter().count(), 14);
    }

    #[test]
    fn every_name_is_an_oci_capability() {
        for c in CapSet::all_known().iter() {
            assert_eq!(serde_json::to_value(c.to_oci()).unwrap(), c.name());
        }
    }

    #[test]
    fn names_normalise_like_dockerd() {
        let net_admin = Cap::from_name("CAP_NET_ADMIN").unwrap();
        for n in ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_net_admin", " Net_Admin "] {
            assert_eq!(parse("CapAdd", n), Ok(CapName::One(net_admin)), "{n}");
        }
        assert_eq!(parse("CapDrop", "all"), Ok(CapName::All));
        assert_eq!(
            parse("CapAdd", "bogus").unwrap_err().to_string(),
            "invalid CapAdd: unknown capability: \"CAP_BOGUS\""
        );
    }

    #[test]
    fn dockerd_rules() {
        let all = CapSet::all_known();
        assert_eq!(effective(&[], &[], false, all).unwrap(), DEFAULT);
        assert_eq!(effective(&[], &s(&["ALL"]), false, all).unwrap(), CapSet::EMPTY);
        let mix = effective(&s(&["NET_ADMIN", "CAP_SYS_PTRACE"]), &s(&["ALL"]), false, all).unwrap();
        assert_eq!(mix.names(), ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]);
        let no_chown = effective(&[], &s(&["chown"]), false, all).unwrap();
        assert_eq!(no_chown.mask(), 0xa80425fb & !1);
        let everything_but = effective(&s(&["ALL"]), &s(&["MKNOD"]), false, all).unwrap();
        assert_eq!(everything_but.mask(), all.mask() & !(1 << 27));
        // Adding what is dropped: add wins (defaults minus drop, then add).
        assert!(effective(&s(&["CHOWN"]), &s(&["CHOWN"]), false, all).unwrap().contains(Cap(0)));
        assert_eq!(effective(&[], &[], true, all).unwrap(), all);
    }

    #[test]
    fn capabilities_the_daemon_lacks() {
        let held = CapSet::from_mask(0x1fffeffffff); // this CI kind: no CAP_SYS_RESOURCE
        let priv_set = effective(&[], &[], true, held).unwrap();
        assert!(!priv_set.contains(Cap::from_name("CAP_SYS_RESOURCE").unwrap()));
        assert_eq!(effective(&s(&["ALL"]), &[], false, held).unwrap(), held);
        let e = effective(&s(&["SYS_RESOURCE"]), &[], false, held).unwrap_err();
        assert!(e.to_string().contains("CAP_SYS_RESOURCE cannot be granted"), "{e}");
    }

    #[test]
    fn status_masks() {
        let st = "Name:\tsh\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(parse_status_mask(st, "CapEff"), Some(DEFAULT));
        assert_eq!(parse_status_mask(st, "CapBnd").unwrap().mask(), 0x1fffeffffff);
        assert_eq!(parse_status_mask(st, "CapAmb"), None);
    }
}
