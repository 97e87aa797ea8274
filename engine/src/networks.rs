//! Networks at the engine's level: the network API's operations (with
//! their events) over [`berth_network::Networks`], and what a container's
//! create, start and exit need of it (checks, attach, `/etc` files,
//! detach). The network crate's calls block (files, netavark): they run
//! off the async threads.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use berth_network::ports::{self, PortRequest};
use berth_network::{AttachRequest, Attachment, CreateRequest, EndpointRequest, NetError, Network, Networks};
use berth_store::{ContainerRecord, HostConfig, Networking};

use crate::error::{EngineError, Result};
use crate::events::{Event, EventBus};

pub use berth_network::{Driver, Endpoint, PortMap, Proto};

/// Network operations.
pub struct NetworkService {
    pub(crate) nets: Arc<Networks>,
    events: Arc<EventBus>,
    /// daemon.json `dns`, `dns-search`, `dns-opts`: defaults for containers.
    dns: (Vec<IpAddr>, Vec<String>, Vec<String>),
}

impl From<NetError> for EngineError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::NotFound(_) => EngineError::NotFound(e.to_string()),
            NetError::Invalid(m) => EngineError::InvalidParameter(m),
            NetError::Conflict(m) => EngineError::Conflict(m),
            e @ (NetError::PortTaken { .. } | NetError::Exhausted { .. }) => EngineError::Internal(e.to_string()),
            e => EngineError::Internal(e.to_string()),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::result::Result<T, NetError> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| EngineError::Internal(format!("network task failed: {e}")))?.map_err(EngineError::from)
}

/// How a container's start gets its network namespace.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The host's namespace.
    Host,
    /// A namespace of its own with loopback only (`none`, or no default bridge).
    Loopback,
    /// A namespace berth made and netavark set up.
    Attached(Attachment),
    /// Another container's namespace (`container:ID`), and its `/etc` files' directory.
    Joined { netns: PathBuf, etc_dir: PathBuf },
}

impl Plan {
    /// The namespace path of the OCI spec, if not a new or the host's one.
    pub fn netns(&self) -> Option<PathBuf> {
        match self {
            Plan::Attached(a) => Some(a.netns.clone()),
            Plan::Joined { netns, .. } => Some(netns.clone()),
            _ => None,
        }
    }
}

/// The network a network mode names (`default` is the default bridge).
pub fn mode_network(mode: &str) -> &str {
    match mode {
        "" | "default" => "bridge",
        m => m,
    }
}

/// Whether a mode is a network (not host, none or container:).
pub fn is_network_mode(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

impl NetworkService {
    pub fn new(nets: Arc<Networks>, events: Arc<EventBus>, cfg: &berth_config::netconfig::NetConfig) -> Self {
        NetworkService { nets, events, dns: (cfg.dns.clone(), cfg.dns_search.clone(), cfg.dns_opts.clone()) }
    }

    fn event(&self, action: &str, n: &Network, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), n.name.clone());
        attrs.insert("type".to_string(), n.driver.as_str().to_string());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.publish(Event::new("network", action, &n.id, attrs));
    }

    pub fn list(&self) -> Vec<Network> {
        self.nets.list()
    }

    pub fn get(&self, key: &str) -> Result<Network> {
        Ok(self.nets.get(key)?)
    }

    /// Running containers' endpoints on a network: (id, name, endpoint).
    pub fn endpoints_on(&self, network_id: &str) -> Vec<(String, String, Endpoint)> {
        self.nets.endpoints_on(network_id)
    }

    /// The attachment of a running container (inspect, ps, port).
    pub fn attachment(&self, container_id: &str) -> Option<Attachment> {
        self.nets.attachment(container_id)
    }

    pub async fn create(&self, req: CreateRequest) -> Result<Network> {
        let nets = self.nets.clone();
        let n = blocking(move || nets.create(req)).await?;
        self.event("create", &n, &[]);
        Ok(n)
    }

    /// Removes a network; `used_by` lists containers (stopped ones too) whose
    /// settings name it, which dockerd refuses as well.
    pub async fn remove(&self, key: &str) -> Result<Network> {
        let nets = self.nets.clone();
        let key = key.to_string();
        let n = blocking(move || nets.remove(&key)).await?;
        self.event("destroy", &n, &[]);
        Ok(n)
    }

    /// The network mode as a runtime's network checks see it: `network:NAME`
    /// when berth sets up a bridge network for it, else the mode itself.
    pub fn runtime_mode(&self, mode: &str, endpoints: &BTreeMap<String, berth_store::EndpointConfig>) -> String {
        if !is_network_mode(mode) || endpoints.is_empty() {
            return mode.to_string();
        }
        let primary = mode_network(mode);
        if primary == "bridge" && !self.nets.bridge_enabled() && endpoints.len() == 1 && endpoints.contains_key("bridge") {
            return mode.to_string(); // loopback only
        }
        format!("network:{}", endpoints.keys().find(|k| k.as_str() == primary).unwrap_or_else(|| endpoints.keys().next().expect("not empty")))
    }

    /// Checks a new container's network settings (dockerd's rules and
    /// messages) before anything is created.
    pub fn check_create(&self, host: &HostConfig, net: &Networking) -> Result<()> {
        let mode = host.network_mode.as_str();
        let inval = |m: String| Err(EngineError::InvalidParameter(m));
        let publishes = !net.port_bindings.is_empty() || net.publish_all_ports;
        if mode.starts_with("container:") {
            if publishes {
                return inval("conflicting options: port publishing and the container type network mode".into());
            }
            if !net.dns.is_empty() || !net.dns_search.is_empty() || !net.dns_options.is_empty() {
                return inval("conflicting options: dns and the network mode".into());
            }
            if !net.extra_hosts.is_empty() {
                return inval("conflicting options: custom host-to-IP mapping and the network mode".into());
            }
        }
        if net.endpoints.len() > 1 {
            let special: Vec<&String> = net.endpoints.keys().filter(|k| matches!(k.as_str(), "host" | "none") || self.nets.get(k).is_ok_and(|n| n.driver != Driver::Bridge)).collect();
            if !special.is_empty() {
                let all: Vec<&str> = net.endpoints.keys().map(String::as_str).collect();
                return inval(format!("Container cannot be connected to network endpoints: {}", all.join(", ")));
            }
        }
        for key in net.port_bindings.keys().chain(net.exposed_ports.iter()) {
            ports::parse_key(key)?;
        }
        port_requests(net)?;
        for d in &net.dns {
            d.parse::<IpAddr>().map_err(|_| EngineError::InvalidParameter(format!("{d} is not an ip address")))?;
        }
        for h in &net.extra_hosts {
            parse_extra_host(h, None).map_err(EngineError::InvalidParameter)?;
        }
        if is_network_mode(mode) {
            let name = mode_network(mode);
            if name == "bridge" && !self.nets.bridge_enabled() {
                if publishes {
                    return inval("publishing ports needs the default bridge, which is disabled (\"bridge\": \"none\" in daemon.json); remove -p/-P or enable the bridge".into());
                }
                return Ok(());
            }
            // A network that does not exist fails the start (dockerd's
            // "network X not found", a 404 the CLI prints), not the create:
            // the CLI takes a 404 at create for a missing image.
            for (key, ep) in &net.endpoints {
                let Ok(n) = self.nets.get(key) else { continue };
                if !ep.ipv4_address.is_empty() {
                    let ip: Ipv4Addr = ep.ipv4_address.parse().map_err(|_| EngineError::InvalidParameter(format!("invalid IPv4 address: {}", ep.ipv4_address)))?;
                    if !n.user_subnet {
                        return inval("user specified IP address is supported only when connecting to networks with user configured subnets".into());
                    }
                    if !n.pools.iter().any(|p| p.subnet.contains(&ip)) {
                        return inval(format!("no configured subnet or ip-range contain the IP address {ip}"));
                    }
                }
                if n.name == "bridge" && !ep.aliases.is_empty() {
                    return inval("network-scoped alias is supported only for containers in user defined networks".into());
                }
            }
        } else if !net.endpoints.is_empty() && mode != "host" && mode != "none" {
            return inval("container sharing network namespace with another container cannot be connected to a network".into());
        }
        Ok(())
    }

    /// Sets up a starting container's network; the caller undoes it with
    /// [`detach`](Self::detach) if the start fails later.
    pub async fn plan(&self, rec: &ContainerRecord, joined: Option<(u32, PathBuf)>) -> Result<Plan> {
        let mode = rec.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok(Plan::Host);
        }
        if mode == "none" {
            return Ok(Plan::Loopback);
        }
        if let Some((pid, etc_dir)) = joined {
            return Ok(Plan::Joined { netns: PathBuf::from(format!("/proc/{pid}/ns/net")), etc_dir });
        }
        let primary = mode_network(mode).to_string();
        if primary == "bridge" && !self.nets.bridge_enabled() {
            return Ok(Plan::Loopback);
        }
        let short = &rec.id[..12.min(rec.id.len())];
        // The networks it is on (the primary first), as connect and
        // disconnect left them; none left: loopback only, as in dockerd.
        let mut names: Vec<String> = rec.networking.endpoints.keys().filter(|k| **k == primary).cloned().collect();
        names.extend(rec.networking.endpoints.keys().filter(|k| **k != primary).cloned());
        if names.is_empty() {
            return Ok(Plan::Loopback);
        }
        let mut networks = Vec::new();
        for name in names {
            if let Err(NetError::NotFound(_)) = self.nets.get(&name) {
                return Err(EngineError::NotFound(format!("network {name} not found")));
            }
            let cfg = rec.networking.endpoints.get(&name).cloned().unwrap_or_default();
            let mut aliases = vec![rec.name.clone(), short.to_string()];
            if !rec.config.hostname.is_empty() && rec.config.hostname != rec.name {
                aliases.push(rec.config.hostname.clone());
            }
            aliases.extend(cfg.aliases.iter().cloned());
            aliases.dedup();
            let ipv4 = if cfg.ipv4_address.is_empty() {
                None
            } else {
                Some(cfg.ipv4_address.parse().map_err(|_| EngineError::InvalidParameter(format!("invalid IPv4 address: {}", cfg.ipv4_address)))?)
            };
            networks.push(EndpointRequest { network: name, aliases, ipv4 });
        }
        let dns = if rec.networking.dns.is_empty() { self.dns.0.clone() } else { rec.networking.dns.iter().filter_map(|d| d.parse().ok()).collect() };
        let req = AttachRequest {
            container_id: rec.id.clone(),
            container_name: rec.name.clone(),
            networks,
            ports: port_requests(&rec.networking)?,
            dns_servers: dns,
        };
        let nets = self.nets.clone();
        let att = blocking(move || nets.attach(&req)).await?;
        for ep in &att.endpoints {
            if let Ok(n) = self.nets.get(&ep.network_id) {
                self.event("connect", &n, &[("container", rec.id.clone())]);
            }
        }
        Ok(Plan::Attached(att))
    }

    /// Undoes a container's network (its exit, a failed start).
    pub async fn detach(&self, container_id: &str) {
        let Some(att) = self.nets.attachment(container_id) else { return };
        let nets = self.nets.clone();
        let id = container_id.to_string();
        let _ = tokio::task::spawn_blocking(move || nets.detach(&id)).await;
        for ep in &att.endpoints {
            if let Ok(n) = self.nets.get(&ep.network_id) {
                self.event("disconnect", &n, &[("container", container_id.to_string())]);
            }
        }
    }

    pub async fn connect(&self, container_id: &str, req: EndpointRequest) -> Result<Endpoint> {
        let nets = self.nets.clone();
        let id = container_id.to_string();
        let ep = blocking(move || nets.connect(&id, &req)).await?;
        if let Ok(n) = self.nets.get(&ep.network_id) {
            self.event("connect", &n, &[("container", container_id.to_string())]);
        }
        Ok(ep)
    }

    pub async fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let n = self.nets.get(network)?;
        let nets = self.nets.clone();
        let (id, key) = (container_id.to_string(), n.id.clone());
        blocking(move || nets.disconnect(&id, &key)).await?;
        self.event("disconnect", &n, &[("container", container_id.to_string())]);
        Ok(())
    }

    /// The `/etc/hosts` and `/etc/resolv.conf` of a container under `plan`.
    pub fn etc_contents(&self, rec: &ContainerRecord, plan: &Plan, hostname: &str) -> std::result::Result<(String, String), String> {
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let net = &rec.networking;
        let search = if net.dns_search.is_empty() { self.dns.1.clone() } else { net.dns_search.clone() };
        let opts = if net.dns_options.is_empty() { self.dns.2.clone() } else { net.dns_options.clone() };
        let gw = self.nets.default_gateway();
        let extra: Vec<(String, IpAddr)> = net.extra_hosts.iter().map(|h| parse_extra_host(h, Some(gw))).collect::<std::result::Result<_, _>>()?;
        let dns: Vec<IpAddr> = if net.dns.is_empty() { self.dns.0.clone() } else { net.dns.iter().filter_map(|d| d.parse().ok()).collect() };
        use berth_network::etc::{hosts, resolv_conf, Resolver};
        Ok(match plan {
            Plan::Host => {
                let mut h = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                for (name, ip) in &extra {
                    h.push_str(&format!("{ip}\t{name}\n"));
                }
                (h, resolv_conf(&host_resolv, Resolver::Host, &search, &opts))
            }
            Plan::Loopback | Plan::Joined { .. } => (hosts(hostname, &net.domainname, &[], &extra), resolv_conf(&host_resolv, Resolver::Copied { dns: &dns }, &search, &opts)),
            Plan::Attached(att) => {
                let own: Vec<IpAddr> = att.endpoints.iter().map(|e| IpAddr::V4(e.ip)).collect();
                let dns_server = att.endpoints.iter().find(|e| self.nets.get(&e.network_id).is_ok_and(|n| n.dns)).map(|e| IpAddr::V4(e.gateway));
                let resolver = match dns_server {
                    Some(server) => Resolver::Network { server },
                    None => Resolver::Copied { dns: &dns },
                };
                (hosts(hostname, &net.domainname, &own, &extra), resolv_conf(&host_resolv, resolver, &search, &opts))
            }
        })
    }
}

/// The ports a container publishes: its bindings, and with `-P` every
/// exposed port without one on a free host port.
pub fn port_requests(net: &Networking) -> Result<Vec<PortRequest>> {
    let mut reqs = ports::parse_bindings(
        net.port_bindings.iter().map(|(k, v)| (k.as_str(), v.iter().map(|b| (b.host_ip.as_str(), b.host_port.as_str())).collect())),
    )?;
    // A key with no bindings (`"80/tcp": []` or null) publishes on a free port.
    for (k, v) in &net.port_bindings {
        if v.is_empty() {
            let (container_port, proto) = ports::parse_key(k)?;
            reqs.push(PortRequest { container_port, proto, host_ip: None, host_port: ports::HostPort::Any });
        }
    }
    if net.publish_all_ports {
        for k in &net.exposed_ports {
            if !net.port_bindings.contains_key(k) {
                let (container_port, proto) = ports::parse_key(k)?;
                reqs.push(PortRequest { container_port, proto, host_ip: None, host_port: ports::HostPort::Any });
            }
        }
    }
    Ok(reqs)
}

/// `name:ip` of `--add-host` (`host-gateway` = the default bridge's
/// gateway; `None` checks the format only).
fn parse_extra_host(s: &str, gateway: Option<Option<Ipv4Addr>>) -> std::result::Result<(String, IpAddr), String> {
    let (name, ip) = s.split_once(':').ok_or_else(|| format!("bad format for add-host: {s:?}"))?;
    if name.is_empty() {
        return Err(format!("bad format for add-host: {s:?}"));
    }
    let ip = if ip == "host-gateway" {
        match gateway {
            Some(Some(g)) => IpAddr::V4(g),
            Some(None) => {
                return Err("host-gateway in --add-host needs berth's default bridge, which is disabled (\"bridge\": \"none\" in daemon.json)".into())
            }
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    } else {
        ip.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| format!("invalid IP address in add-host: {ip:?}"))?
    };
    Ok((name.to_string(), ip))
}
