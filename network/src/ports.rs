//! Published ports: Docker's port keys (`80/tcp`) and host port strings
//! (``, `8080`, `8000-8010`), the choice of free host ports, and their
//! reservation. A host port is held by a bound (not listening) socket for
//! as long as the container runs, as dockerd's proxy holds it: no other
//! process can take it, and a taken one is found before anything is set up.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Socket, Type};

use crate::error::{NetError, Result};
use crate::model::{PortMap, Proto};

/// A port key: `80`, `80/tcp`, `53/udp`.
pub fn parse_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = parse_proto(proto)?;
    let port = parse_port(port).ok_or_else(|| NetError::Invalid(format!("invalid port specification: \"{key}\"")))?;
    Ok((port, proto))
}

fn parse_proto(p: &str) -> Result<Proto> {
    match p.to_ascii_lowercase().as_str() {
        "" | "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "sctp" => Err(NetError::Invalid("berth does not publish sctp ports (netavark's sctp rules are not set up here); publish tcp or udp".into())),
        other => Err(NetError::Invalid(format!("invalid proto: {other}"))),
    }
}

fn parse_port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

/// A requested host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Any free port.
    Any,
    /// Exactly this one.
    Fixed(u16),
    /// A free one in this range (inclusive).
    Range(u16, u16),
}

/// A `HostPort` string.
pub fn parse_host_port(s: &str) -> Result<HostPort> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(HostPort::Any);
    }
    let bad = || NetError::Invalid(format!("invalid hostPort: {s}"));
    match s.split_once('-') {
        None => parse_port(s).map(HostPort::Fixed).ok_or_else(bad),
        Some((a, b)) => {
            let (a, b) = (parse_port(a).ok_or_else(bad)?, parse_port(b).ok_or_else(bad)?);
            if b < a {
                return Err(NetError::Invalid(format!("invalid port range: {s}")));
            }
            Ok(if a == b { HostPort::Fixed(a) } else { HostPort::Range(a, b) })
        }
    }
}

/// A `HostIp` string: "" = every address.
pub fn parse_host_ip(s: &str) -> Result<Option<IpAddr>> {
    if s.is_empty() {
        return Ok(None);
    }
    let ip: IpAddr = s.parse().map_err(|_| NetError::Invalid(format!("invalid IP address: {s}")))?;
    if ip.is_ipv6() && !ip.is_unspecified() {
        return Err(NetError::Invalid(format!("berth publishes ports on IPv4 addresses only; use an IPv4 address instead of {s}")));
    }
    Ok(Some(ip))
}

/// One port to publish, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: HostPort,
}

/// Parses Docker's `PortBindings` (key, then its `(HostIp, HostPort)` pairs).
pub fn parse_bindings<'a>(bindings: impl IntoIterator<Item = (&'a str, Vec<(&'a str, &'a str)>)>) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for (key, hosts) in bindings {
        let (container_port, proto) = parse_key(key)?;
        for (ip, port) in hosts {
            out.push(PortRequest { container_port, proto, host_ip: parse_host_ip(ip)?, host_port: parse_host_port(port)? });
        }
    }
    Ok(out)
}

/// A held host port.
#[derive(Debug)]
pub struct Held {
    pub map: PortMap,
    _socket: Socket,
}

impl Held {
    /// A port held again (at start, for a container that kept running).
    pub fn from_parts(map: PortMap, socket: Socket) -> Held {
        Held { map, _socket: socket }
    }
}

/// The local port range for ports chosen by berth.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(a, b)| a <= b && *a > 0)
        .unwrap_or((32768, 60999))
}

/// Binds `ip:port` for `proto` without listening.
pub fn hold(ip: IpAddr, port: u16, proto: Proto) -> std::io::Result<Socket> {
    let domain = if ip.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let ty = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    let s = Socket::new(domain, ty, None)?;
    s.bind(&SocketAddr::new(ip, port).into())?;
    Ok(s)
}

/// Chooses and holds host ports for `reqs`. `taken` holds the
/// (ip, port, proto) of every port berth holds already; `endpoint` names
/// the container in errors. Nothing is held if any request fails.
pub fn allocate(
    reqs: &[PortRequest],
    default_ip: IpAddr,
    taken: &BTreeSet<(IpAddr, u16, Proto)>,
    endpoint: (&str, &str),
) -> Result<Vec<Held>> {
    let mut held: Vec<Held> = Vec::new();
    let (lo, hi) = ephemeral_range();
    let busy = |held: &Vec<Held>, ip: IpAddr, port: u16, proto: Proto| {
        let clash = |oip: IpAddr| oip == ip || oip.is_unspecified() || ip.is_unspecified();
        taken.iter().any(|(oip, op, opr)| *op == port && *opr == proto && clash(*oip))
            || held.iter().any(|h| h.map.host_port == port && h.map.proto == proto && clash(h.map.host_ip))
    };
    let taken_err = |ip: IpAddr, port: u16, reason: String| NetError::PortTaken {
        endpoint: endpoint.0.to_string(),
        endpoint_id: endpoint.1.to_string(),
        reason: if reason.is_empty() { format!("Bind for {ip}:{port} failed: port is already allocated") } else { reason },
    };
    for r in reqs {
        let ip = r.host_ip.unwrap_or(default_ip);
        let ip = if ip.is_ipv6() && ip.is_unspecified() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { ip };
        let candidates: Box<dyn Iterator<Item = u16>> = match r.host_port {
            HostPort::Fixed(p) => Box::new(std::iter::once(p)),
            HostPort::Range(a, b) => Box::new(a..=b),
            HostPort::Any => {
                let span = u32::from(hi - lo) + 1;
                let start = (std::process::id().wrapping_mul(2_654_435_761) ^ now_nanos()) % span;
                Box::new((0..span).map(move |i| lo + ((start + i) % span) as u16))
            }
        };
        let mut got = None;
        let mut last_err = String::new();
        let mut last_port = 0;
        for port in candidates {
            last_port = port;
            if busy(&held, ip, port, r.proto) {
                last_err.clear();
                continue;
            }
            match hold(ip, port, r.proto) {
                Ok(sock) => {
                    got = Some(Held { map: PortMap { host_ip: ip, host_port: port, container_port: r.container_port, proto: r.proto }, _socket: sock });
                    break;
                }
                Err(e) => {
                    let family = if ip.is_ipv4() { "4" } else { "6" };
                    last_err =
                        format!("Error starting userland proxy: listen {}{family} {ip}:{port}: bind: {}", r.proto.as_str(), os_text(&e));
                }
            }
        }
        match got {
            Some(h) => held.push(h),
            None => {
                return Err(match r.host_port {
                    HostPort::Any => NetError::PortTaken {
                        endpoint: endpoint.0.into(),
                        endpoint_id: endpoint.1.into(),
                        reason: format!("no free host port in {lo}-{hi} for {}/{}", r.container_port, r.proto.as_str()),
                    },
                    _ => taken_err(ip, last_port, last_err),
                })
            }
        }
    }
    Ok(held)
}

fn now_nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}

/// Go's text for the common errors (`address already in use`).
fn os_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        Some(libc::EACCES) => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_host_ports() {
        assert_eq!(parse_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_key("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_key("8080").unwrap(), (8080, Proto::Tcp));
        assert!(parse_key("0/tcp").is_err() && parse_key("x/tcp").is_err() && parse_key("80/icmp").is_err());
        assert!(parse_key("80/sctp").unwrap_err().to_string().contains("sctp"));
        assert_eq!(parse_host_port("").unwrap(), HostPort::Any);
        assert_eq!(parse_host_port("8080").unwrap(), HostPort::Fixed(8080));
        assert_eq!(parse_host_port("8000-8010").unwrap(), HostPort::Range(8000, 8010));
        assert!(parse_host_port("9-1").is_err() && parse_host_port("70000").is_err() && parse_host_port("a").is_err());
        assert_eq!(parse_host_ip("").unwrap(), None);
        assert!(parse_host_ip("::1").is_err() && parse_host_ip("nope").is_err());
    }

    #[test]
    fn allocation_holds_ports_and_reports_conflicts() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any = PortRequest { container_port: 80, proto: Proto::Tcp, host_ip: Some(lo), host_port: HostPort::Any };
        let held = allocate(&[any.clone(), any.clone()], lo, &BTreeSet::new(), ("c", "e")).unwrap();
        assert_ne!(held[0].map.host_port, held[1].map.host_port);
        // A port held by a socket is refused with dockerd's proxy message.
        let fixed = PortRequest { host_port: HostPort::Fixed(held[0].map.host_port), ..any.clone() };
        let e = allocate(std::slice::from_ref(&fixed), lo, &BTreeSet::new(), ("web", "abc")).unwrap_err().to_string();
        assert!(e.starts_with("driver failed programming external connectivity on endpoint web (abc): Error starting userland proxy: listen tcp4 127.0.0.1:"), "{e}");
        assert!(e.ends_with("bind: address already in use"), "{e}");
        // One berth holds already: "port is already allocated".
        let taken: BTreeSet<_> = [(IpAddr::V4(Ipv4Addr::UNSPECIFIED), held[0].map.host_port, Proto::Tcp)].into();
        let e = allocate(&[fixed], lo, &taken, ("web", "abc")).unwrap_err().to_string();
        assert!(e.ends_with(&format!("Bind for 127.0.0.1:{} failed: port is already allocated", held[0].map.host_port)), "{e}");
        // The same port over udp is another port.
        let udp = PortRequest { proto: Proto::Udp, host_port: HostPort::Fixed(held[0].map.host_port), ..any };
        assert_eq!(allocate(&[udp], lo, &BTreeSet::new(), ("c", "e")).unwrap().len(), 1);
    }
}
