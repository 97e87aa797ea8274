//! The daemon.json keys of the network subsystem (dockerd's names), read
//! and checked here; `berth-network` gets them as its settings. All of them
//! need a restart (as the default bridge does under dockerd).

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use serde_json::Value;

/// The default bridge's interface: berth's own name, so that it never meets
/// dockerd's `docker0` on a host that runs both.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// Network settings of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetConfig {
    /// `bridge`: the default bridge's interface; `None` = `"none"` (no
    /// default bridge: default-network containers get loopback only).
    pub bridge: Option<String>,
    /// `bip`: the default bridge's address with its prefix (`10.5.0.1/24`).
    pub bip: Option<(Ipv4Addr, u8)>,
    /// `default-address-pools`: (base address, prefix, size).
    pub default_address_pools: Vec<(Ipv4Addr, u8, u8)>,
    /// `ip`: the host address of published ports that name none.
    pub ip: IpAddr,
    /// `dns`, `dns-search`, `dns-opts`: for every container's resolver.
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_opts: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: Some(DEFAULT_BRIDGE.into()),
            bip: None,
            default_address_pools: vec![],
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dns: vec![],
            dns_search: vec![],
            dns_opts: vec![],
        }
    }
}

/// The keys this module reads.
pub const KEYS: &[&str] = &["bridge", "bip", "default-address-pools", "ip", "dns", "dns-search", "dns-opts", "icc", "iptables", "ip-forward", "ip-masq"];

fn cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let p: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    Some((a.parse().ok()?, p))
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|e| e.as_str().map(str::to_owned)).collect()
}

/// Applies one key of daemon.json; the error says what is wrong.
pub fn apply(cfg: &mut NetConfig, key: &str, value: &Value) -> Result<(), String> {
    match key {
        "bridge" => match value.as_str() {
            Some("none") => cfg.bridge = None,
            Some(s) if !s.is_empty() && s.len() <= 15 && !s.contains(['/', ' ', ':']) => cfg.bridge = Some(s.into()),
            Some("") => cfg.bridge = Some(DEFAULT_BRIDGE.into()),
            _ => return Err(format!("must be an interface name (at most 15 characters) or \"none\"; berth's default is {DEFAULT_BRIDGE}")),
        },
        "bip" => match value.as_str().and_then(cidr) {
            Some((a, p)) if p <= 30 => cfg.bip = Some((a, p)),
            _ => return Err("must be the bridge's IPv4 address with its prefix, such as \"10.50.0.1/24\"".into()),
        },
        "default-address-pools" => {
            let bad = || "must be a list of {\"base\": \"CIDR\", \"size\": N} objects".to_string();
            let mut pools = vec![];
            for p in value.as_array().ok_or_else(bad)? {
                let (a, pl) = p.get("base").and_then(Value::as_str).and_then(cidr).ok_or_else(bad)?;
                let size = p.get("size").and_then(Value::as_u64).ok_or_else(bad)?;
                if size < u64::from(pl) || size > 30 {
                    return Err(format!("pool {a}/{pl}: size {size} must be between the base's prefix ({pl}) and 30"));
                }
                pools.push((a, pl, size as u8));
            }
            cfg.default_address_pools = pools;
        }
        "ip" => match value.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(a)) => cfg.ip = IpAddr::V4(a),
            _ => return Err("must be an IPv4 address such as \"127.0.0.1\" (berth publishes ports on IPv4)".into()),
        },
        "dns" => {
            let v = strings(value).ok_or("must be an array of IP addresses")?;
            cfg.dns = v.iter().map(|s| s.parse().map_err(|_| format!("{s:?} is not an IP address"))).collect::<Result<_, _>>()?;
        }
        "dns-search" => cfg.dns_search = strings(value).ok_or("must be an array of domain names")?,
        "dns-opts" => cfg.dns_opts = strings(value).ok_or("must be an array of resolver options such as \"ndots:2\"")?,
        "icc" | "iptables" | "ip-forward" | "ip-masq" => match value {
            Value::Bool(true) => {}
            Value::Bool(false) => {
                return Err(format!(
                    "berth's bridge networks (netavark) always {}; false cannot be honoured: remove the key",
                    match key {
                        "icc" => "let containers on one network talk to each other",
                        "iptables" => "program iptables rules",
                        "ip-forward" => "enable IP forwarding",
                        _ => "masquerade outbound traffic",
                    }
                ))
            }
            _ => return Err("must be true or false".into()),
        },
        _ => return Err(format!("not a network key: {key}")),
    }
    Ok(())
}

impl NetConfig {
    /// A one-line summary, for restart-only change reports.
    pub fn describe(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_as_dockerd_names_them() {
        let mut c = NetConfig::default();
        assert_eq!(c.bridge.as_deref(), Some("berth0"));
        apply(&mut c, "bridge", &json!("none")).unwrap();
        assert_eq!(c.bridge, None);
        apply(&mut c, "bip", &json!("10.50.0.1/24")).unwrap();
        assert_eq!(c.bip, Some(("10.50.0.1".parse().unwrap(), 24)));
        assert!(apply(&mut c, "bip", &json!("10.50.0.1")).is_err());
        apply(&mut c, "default-address-pools", &json!([{"base": "10.60.0.0/16", "size": 24}])).unwrap();
        assert_eq!(c.default_address_pools, vec![("10.60.0.0".parse().unwrap(), 16, 24)]);
        assert!(apply(&mut c, "default-address-pools", &json!([{"base": "10.60.0.0/16", "size": 8}])).is_err());
        apply(&mut c, "dns", &json!(["10.0.0.2"])).unwrap();
        assert!(apply(&mut c, "dns", &json!(["nope"])).is_err());
        apply(&mut c, "icc", &json!(true)).unwrap();
        assert!(apply(&mut c, "icc", &json!(false)).unwrap_err().contains("cannot be honoured"));
        assert!(apply(&mut c, "ip", &json!("::1")).is_err());
    }
}
