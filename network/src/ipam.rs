//! Addresses: subnets for new networks from the address pools (skipping
//! those that overlap a berth network or a route of the host, as dockerd
//! does), and container addresses within a network.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub use ipnet::Ipv4Net;

use crate::error::{NetError, Result};
use crate::model::{Network, Pool};

/// A pool new networks take subnets of (`default-address-pools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

/// dockerd's defaults: 172.17–31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    vec![
        AddressPool { base: "172.17.0.0/16".parse().expect("literal"), size: 16 },
        AddressPool { base: "172.18.0.0/15".parse().expect("literal"), size: 16 },
        AddressPool { base: "172.20.0.0/14".parse().expect("literal"), size: 16 },
        AddressPool { base: "172.24.0.0/14".parse().expect("literal"), size: 16 },
        AddressPool { base: "172.28.0.0/14".parse().expect("literal"), size: 16 },
        AddressPool { base: "192.168.0.0/16".parse().expect("literal"), size: 20 },
    ]
}

/// The IPv4 routes of the host (destination networks from /proc/net/route).
pub fn host_routes() -> Vec<Ipv4Net> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None; // the default route overlaps everything
            }
            let prefix = u32::from_be(mask).leading_ones() as u8;
            Ipv4Net::new(Ipv4Addr::from(u32::from_be(dest)), prefix).ok()
        })
        .collect()
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of `pools` that overlaps none of `used`.
pub fn pick_subnet(pools: &[AddressPool], used: &[Ipv4Net]) -> Result<Ipv4Net> {
    for p in pools {
        let Ok(mut subnets) = p.base.subnets(p.size) else { continue };
        if let Some(s) = subnets.find(|s| !used.iter().any(|u| overlaps(s, u))) {
            return Ok(s);
        }
    }
    Err(NetError::Invalid(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network; \
         give one with --subnet or add pools with default-address-pools in daemon.json"
            .into(),
    ))
}

/// A pool for `subnet` with the first address as gateway unless given.
pub fn pool(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, ip_range: Option<Ipv4Net>) -> Result<Pool> {
    let subnet = subnet.trunc();
    if subnet.prefix_len() > 30 {
        return Err(NetError::Invalid(format!("subnet {subnet} is too small: use a /30 or larger")));
    }
    let gateway = gateway.unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.network()) + 1));
    if !subnet.contains(&gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
        return Err(NetError::Invalid(format!("gateway {gateway} is not a host address of subnet {subnet}")));
    }
    if let Some(r) = ip_range {
        if !subnet.contains(&r.network()) || r.prefix_len() < subnet.prefix_len() {
            return Err(NetError::Invalid(format!("ip-range {r} is not within subnet {subnet}")));
        }
    }
    Ok(Pool { subnet, gateway, ip_range: ip_range.map(|r| r.trunc()) })
}

/// A free address of `net` (first pool with one), not in `leased`.
pub fn allocate<'a>(net: &'a Network, leased: &BTreeSet<Ipv4Addr>) -> Result<(Ipv4Addr, &'a Pool)> {
    for p in &net.pools {
        let range = p.ip_range.unwrap_or(p.subnet);
        let (first, last) = (u32::from(range.network()), u32::from(range.broadcast()));
        for a in first..=last {
            let ip = Ipv4Addr::from(a);
            if ip == p.subnet.network() || ip == p.subnet.broadcast() || ip == p.gateway || leased.contains(&ip) {
                continue;
            }
            return Ok((ip, p));
        }
    }
    Err(NetError::Exhausted {
        network: net.name.clone(),
        subnet: net.pools.iter().map(|p| p.subnet.to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// Checks a requested static address (`--ip`) against `net`.
pub fn check_static<'a>(net: &'a Network, ip: Ipv4Addr, leased: &BTreeSet<Ipv4Addr>) -> Result<&'a Pool> {
    if !net.user_subnet {
        return Err(NetError::Invalid("user specified IP address is supported only when connecting to networks with user configured subnets".into()));
    }
    let p = net
        .pools
        .iter()
        .find(|p| p.subnet.contains(&ip))
        .ok_or_else(|| NetError::Invalid(format!("no configured subnet or ip-range contain the IP address {ip}")))?;
    if ip == p.gateway || ip == p.subnet.network() || ip == p.subnet.broadcast() || leased.contains(&ip) {
        return Err(NetError::Conflict("Address already in use".into()));
    }
    Ok(p)
}

/// dockerd's MAC for an address: 02:42 and the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Driver;

    fn net(subnet: &str, user: bool) -> Network {
        Network {
            id: "i".into(),
            name: "n".into(),
            driver: Driver::Bridge,
            created: String::new(),
            interface: "b".into(),
            pools: vec![pool(subnet.parse().unwrap(), None, None).unwrap()],
            user_subnet: user,
            internal: false,
            attachable: false,
            dns: false,
            labels: Default::default(),
            options: Default::default(),
            ipam_options: Default::default(),
            predefined: false,
            mtu: None,
        }
    }

    #[test]
    fn subnets_skip_what_is_used() {
        let used: Vec<Ipv4Net> = vec!["172.17.0.0/16".parse().unwrap(), "172.18.5.0/24".parse().unwrap()];
        assert_eq!(pick_subnet(&default_pools(), &used).unwrap().to_string(), "172.19.0.0/16");
        let small = [AddressPool { base: "10.1.0.0/23".parse().unwrap(), size: 24 }];
        assert_eq!(pick_subnet(&small, &["10.1.0.0/24".parse().unwrap()]).unwrap().to_string(), "10.1.1.0/24");
        assert!(pick_subnet(&small, &["10.0.0.0/8".parse().unwrap()]).is_err());
    }

    #[test]
    fn addresses_skip_gateway_and_leases_and_run_out() {
        let n = net("10.0.0.0/30", false);
        assert_eq!(n.pools[0].gateway.to_string(), "10.0.0.1");
        let (ip, _) = allocate(&n, &BTreeSet::new()).unwrap();
        assert_eq!(ip.to_string(), "10.0.0.2");
        let e = allocate(&n, &[ip].into()).unwrap_err().to_string();
        assert!(e.contains("no available IPv4 addresses on network n (10.0.0.0/30)"), "{e}");
        assert!(pool("10.0.0.0/24".parse().unwrap(), Some("10.0.1.1".parse().unwrap()), None).is_err());
        assert!(pool("10.0.0.0/24".parse().unwrap(), None, Some("10.1.0.0/28".parse().unwrap())).is_err());
    }

    #[test]
    fn static_addresses_as_dockerd() {
        let leased: BTreeSet<Ipv4Addr> = ["10.5.0.9".parse().unwrap()].into();
        assert!(check_static(&net("10.5.0.0/24", false), "10.5.0.3".parse().unwrap(), &leased).unwrap_err().to_string().contains("user configured subnets"));
        let n = net("10.5.0.0/24", true);
        assert!(check_static(&n, "10.5.0.3".parse().unwrap(), &leased).is_ok());
        assert_eq!(check_static(&n, "10.5.0.9".parse().unwrap(), &leased).unwrap_err().to_string(), "Address already in use");
        assert!(check_static(&n, "10.6.0.3".parse().unwrap(), &leased).is_err());
        assert_eq!(mac_for("172.17.0.2".parse().unwrap()), "02:42:ac:11:00:02");
    }

    #[test]
    fn routes_parse() {
        // Whatever the host has, nothing panics and nothing is the default route.
        assert!(host_routes().iter().all(|r| r.prefix_len() > 0));
    }
}
