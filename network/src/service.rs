//! The network service: networks, attachments, reconcile.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;

use crate::error::{NetError, Result};
use crate::ipam::{self, AddressPool};
use crate::model::{Attachment, Driver, Endpoint, Network, Pool, Proto};
use crate::netavark::{self, Netavark};
use crate::netns;
use crate::ports::{self, Held, PortRequest};

/// The default bridge network (`bridge` in daemon.json, `bip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBridge {
    /// The host bridge's name (berth's own, `berth0`, so it never meets dockerd's `docker0`).
    pub interface: String,
    /// `bip`: the bridge's address and subnet (`192.168.5.1/24`).
    pub bip: Option<Ipv4Net>,
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<data-root>/network`: networks and attachments.
    pub data_dir: PathBuf,
    /// `<exec-root>/network`: namespaces and netavark's config directory.
    pub run_dir: PathBuf,
    /// `None`: no default bridge (`"bridge": "none"`); default-network
    /// containers get loopback only, as with dockerd.
    pub default_bridge: Option<DefaultBridge>,
    /// `default-address-pools`.
    pub pools: Vec<AddressPool>,
    /// `ip`: where ports are published when a binding names no address.
    pub default_bind_ip: IpAddr,
    pub netavark: PathBuf,
    pub aardvark: PathBuf,
}

/// A network to create (`POST /networks/create`), validated here.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub ipam_driver: String,
    pub ipam_options: BTreeMap<String, String>,
    /// (subnet, gateway, ip range) as given.
    pub ipam_config: Vec<(String, String, String)>,
}

/// One network a container joins.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// Name or id.
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
}

/// What a container's start asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub networks: Vec<EndpointRequest>,
    pub ports: Vec<PortRequest>,
    pub dns_servers: Vec<IpAddr>,
}

struct Live {
    att: Attachment,
    /// The host ports' sockets: held while the container runs, closed on drop.
    _held: Vec<Held>,
}

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Network>,
    live: BTreeMap<String, Live>,
    /// Attachments found at open, for [`Networks::reconcile`].
    found: Vec<Attachment>,
}

/// The network service.
pub struct Networks {
    settings: Settings,
    driver: Netavark,
    state: Mutex<State>,
}

const BRIDGE: &str = "bridge";
/// Bridge driver options berth honours (others are refused).
const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";
const MTU_OPT: &str = "com.docker.network.driver.mtu";
const TRUE_ONLY_OPTS: &[&str] = &["com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade"];

impl Networks {
    fn networks_dir(&self) -> PathBuf {
        self.settings.data_dir.join("networks")
    }
    fn attachments_dir(&self) -> PathBuf {
        self.settings.data_dir.join("attachments")
    }
    fn netns_dir(&self) -> PathBuf {
        self.settings.run_dir.join("netns")
    }

    /// Opens the service: loads networks and attachments, makes the
    /// predefined networks (`bridge` when enabled, `host`, `none`).
    pub fn open(settings: Settings) -> Result<Networks> {
        let driver = Netavark {
            binary: settings.netavark.clone(),
            aardvark: settings.aardvark.clone(),
            config_dir: settings.run_dir.join("netavark"),
        };
        let me = Networks { settings, driver, state: Mutex::new(State::default()) };
        for d in [me.networks_dir(), me.attachments_dir(), me.driver.config_dir.clone()] {
            fs::create_dir_all(&d).map_err(NetError::io("creating", &d))?;
        }
        netns::prepare_dir(&me.netns_dir())?;
        let mut networks = BTreeMap::new();
        for (path, text) in read_dir_json(&me.networks_dir())? {
            match serde_json::from_str::<Network>(&text) {
                Ok(n) => {
                    networks.insert(n.id.clone(), n);
                }
                Err(e) => tracing::error!(file = %path.display(), error = %e, "network record cannot be read; ignoring it (left in place)"),
            }
        }
        let mut found = Vec::new();
        for (path, text) in read_dir_json(&me.attachments_dir())? {
            match serde_json::from_str::<Attachment>(&text) {
                Ok(a) => found.push(a),
                Err(e) => tracing::error!(file = %path.display(), error = %e, "attachment record cannot be read; ignoring it (left in place)"),
            }
        }
        {
            let mut st = me.state.lock().unwrap_or_else(|e| e.into_inner());
            st.networks = networks;
            st.found = found;
        }
        me.ensure_predefined()?;
        Ok(me)
    }

    fn save_network(&self, n: &Network) -> Result<()> {
        let path = self.networks_dir().join(format!("{}.json", n.id));
        let data = serde_json::to_vec_pretty(n).expect("a network serializes");
        berth_store::write_atomic(&path, &data).map_err(NetError::io("writing", &path))
    }

    fn save_attachment(&self, a: &Attachment) -> Result<()> {
        let path = self.attachments_dir().join(format!("{}.json", a.container_id));
        let data = serde_json::to_vec_pretty(a).expect("an attachment serializes");
        berth_store::write_atomic(&path, &data).map_err(NetError::io("writing", &path))
    }

    fn delete_attachment(&self, container_id: &str) {
        let path = self.attachments_dir().join(format!("{container_id}.json"));
        if let Err(e) = fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove the attachment record");
            }
        }
    }

    fn ensure_predefined(&self) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (name, driver) in [("host", Driver::Host), ("none", Driver::Null)] {
            if !st.networks.values().any(|n| n.name == name && n.predefined) {
                let n = predefined(name, driver);
                self.save_network(&n)?;
                st.networks.insert(n.id.clone(), n);
            }
        }
        let existing = st.networks.values().find(|n| n.name == BRIDGE && n.predefined).cloned();
        match (&self.settings.default_bridge, existing) {
            (None, Some(old)) => {
                // Disabled: the record goes (no container can be on it: none runs).
                let _ = fs::remove_file(self.networks_dir().join(format!("{}.json", old.id)));
                st.networks.remove(&old.id);
            }
            (None, None) => {}
            (Some(b), old) => {
                let pool = match b.bip {
                    Some(bip) => ipam::pool(bip.trunc(), Some(bip.addr()), None)?,
                    None => match old.as_ref().and_then(|o| o.pools.first().cloned()) {
                        // Keep the subnet it had, unless something else took it meanwhile.
                        Some(p) if !taken_by_others(&p.subnet, &b.interface, &st.networks, old.as_ref()) => p,
                        _ => {
                            let used = used_subnets(&st.networks, old.as_ref().map(|o| o.id.as_str()));
                            ipam::pool(ipam::pick_subnet(&self.settings.pools, &used)?, None, None)?
                        }
                    },
                };
                let mut n = old.unwrap_or_else(|| predefined(BRIDGE, Driver::Bridge));
                if n.pools != vec![pool.clone()] || n.interface != b.interface {
                    n.pools = vec![pool];
                    n.interface = b.interface.clone();
                    n.options = [
                        (BRIDGE_NAME_OPT.to_string(), b.interface.clone()),
                        ("com.docker.network.bridge.default_bridge".into(), "true".into()),
                        ("com.docker.network.bridge.enable_icc".into(), "true".into()),
                        ("com.docker.network.bridge.enable_ip_masquerade".into(), "true".into()),
                    ]
                    .into();
                    self.save_network(&n)?;
                    tracing::info!(interface = %n.interface, subnet = %n.pools[0].subnet, "default bridge network");
                }
                st.networks.insert(n.id.clone(), n);
            }
        }
        Ok(())
    }

    /// Every network, by name.
    pub fn list(&self) -> Vec<Network> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Network> = st.networks.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A network by full id, name, or unique id prefix (dockerd's order).
    pub fn get(&self, key: &str) -> Result<Network> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        find(&st.networks, key).cloned()
    }

    /// The default bridge's gateway (`host-gateway` in `--add-host`).
    pub fn default_gateway(&self) -> Option<Ipv4Addr> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.networks.values().find(|n| n.name == BRIDGE && n.predefined).and_then(|n| n.pools.first()).map(|p| p.gateway)
    }

    /// Whether the default bridge exists (else default-network containers get loopback only).
    pub fn bridge_enabled(&self) -> bool {
        self.settings.default_bridge.is_some()
    }

    /// Creates a network.
    pub fn create(&self, req: CreateRequest) -> Result<Network> {
        validate_name(&req.name)?;
        let driver = if req.driver.is_empty() { BRIDGE } else { req.driver.as_str() };
        if driver != BRIDGE {
            return Err(NetError::Invalid(format!(
                "berth networks use the bridge driver only (netavark); driver {driver:?} is not available"
            )));
        }
        if req.enable_ipv6 {
            return Err(NetError::Invalid("berth networks are IPv4 only; create the network without --ipv6".into()));
        }
        if !(req.ipam_driver.is_empty() || req.ipam_driver == "default") {
            return Err(NetError::Invalid(format!("IPAM driver {:?} is not available; berth has the default one only", req.ipam_driver)));
        }
        if let Some(k) = req.ipam_options.keys().next() {
            return Err(NetError::Invalid(format!("IPAM option {k:?} is not supported by berth's default IPAM driver")));
        }
        let mut interface = None;
        let mut mtu = None;
        for (k, v) in &req.options {
            match k.as_str() {
                BRIDGE_NAME_OPT => {
                    validate_ifname(v)?;
                    interface = Some(v.clone());
                }
                MTU_OPT => {
                    mtu = Some(v.parse::<u32>().ok().filter(|m| (68..=65535).contains(m)).ok_or_else(|| {
                        NetError::Invalid(format!("invalid MTU {v:?}: give a number between 68 and 65535"))
                    })?)
                }
                k if TRUE_ONLY_OPTS.contains(&k) && v == "true" => {}
                other => {
                    return Err(NetError::Invalid(format!(
                        "network option {other}={v} is not supported by berth; it honours {BRIDGE_NAME_OPT}, {MTU_OPT}, and {} set to true",
                        TRUE_ONLY_OPTS.join(", ")
                    )))
                }
            }
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.networks.values().any(|n| n.name == req.name) {
            return Err(NetError::Conflict(format!("network with name {} already exists", req.name)));
        }
        let id = loop {
            let id = berth_store::generate_id();
            if !st.networks.contains_key(&id) {
                break id;
            }
        };
        let interface = interface.unwrap_or_else(|| format!("br-{}", &id[..12]));
        if st.networks.values().any(|n| n.interface == interface) {
            return Err(NetError::Conflict(format!("bridge name {interface} is used by another network")));
        }
        let used = used_subnets(&st.networks, None);
        let mut pools = Vec::new();
        for (subnet, gateway, range) in &req.ipam_config {
            let parse_net = |s: &str, what: &str| -> Result<Ipv4Net> {
                s.parse::<Ipv4Net>().map_err(|_| NetError::Invalid(format!("invalid {what} {s:?}: give an IPv4 CIDR such as 10.10.0.0/24")))
            };
            if subnet.is_empty() {
                return Err(NetError::Invalid("an IPAM config without a subnet is not supported: give --subnet".into()));
            }
            let subnet = parse_net(subnet, "subnet")?;
            let gateway = if gateway.is_empty() {
                None
            } else {
                Some(gateway.parse::<Ipv4Addr>().map_err(|_| NetError::Invalid(format!("invalid gateway {gateway:?}")))?)
            };
            let range = if range.is_empty() { None } else { Some(parse_net(range, "ip-range")?) };
            let p = ipam::pool(subnet, gateway, range)?;
            if used.iter().chain(pools.iter().map(|p: &Pool| &p.subnet)).any(|u| ipam::overlaps(u, &p.subnet)) {
                return Err(NetError::Conflict(format!("Pool overlaps with other one on this address space ({})", p.subnet)));
            }
            pools.push(p);
        }
        let user_subnet = !pools.is_empty();
        if pools.is_empty() {
            pools.push(ipam::pool(ipam::pick_subnet(&self.settings.pools, &used)?, None, None)?);
        }
        let n = Network {
            id,
            name: req.name,
            driver: Driver::Bridge,
            created: berth_store::timefmt::now_rfc3339_nano(),
            interface,
            pools,
            user_subnet,
            internal: req.internal,
            attachable: req.attachable,
            dns: true,
            labels: req.labels,
            options: req.options,
            ipam_options: req.ipam_options,
            predefined: false,
            mtu,
        };
        self.save_network(&n)?;
        st.networks.insert(n.id.clone(), n.clone());
        tracing::info!(network = %n.name, id = %n.id, subnet = %n.pools[0].subnet, interface = %n.interface, "network created");
        Ok(n)
    }

    /// Removes a network that no running container is on.
    pub fn remove(&self, key: &str) -> Result<Network> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = find(&st.networks, key)?.clone();
        if n.predefined {
            return Err(NetError::Conflict(format!("{} is a pre-defined network and cannot be removed", n.name)));
        }
        let users: Vec<&str> = st.live.values().filter(|l| l.att.endpoint(&n.id).is_some()).map(|l| l.att.container_id.as_str()).collect();
        if !users.is_empty() {
            return Err(NetError::Conflict(format!("error while removing network: network {} id {} has active endpoints", n.name, n.id)));
        }
        let path = self.networks_dir().join(format!("{}.json", n.id));
        fs::remove_file(&path).map_err(NetError::io("removing", &path))?;
        if let Some(dir) = path.parent() {
            let _ = berth_store::fsync_dir(dir);
        }
        st.networks.remove(&n.id);
        tracing::info!(network = %n.name, id = %n.id, "network removed");
        Ok(n)
    }

    /// The attachment of a running container.
    pub fn attachment(&self, container_id: &str) -> Option<Attachment> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.live.get(container_id).map(|l| l.att.clone())
    }

    /// Every running container's endpoint on a network.
    pub fn endpoints_on(&self, network_id: &str) -> Vec<(String, String, Endpoint)> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.live
            .values()
            .filter_map(|l| l.att.endpoint(network_id).map(|e| (l.att.container_id.clone(), l.att.container_name.clone(), e.clone())))
            .collect()
    }

    /// Every host port berth holds, for `taken` checks.
    fn taken(st: &State) -> BTreeSet<(IpAddr, u16, Proto)> {
        st.live.values().flat_map(|l| l.att.ports.iter().map(|p| (p.host_ip, p.host_port, p.proto))).collect()
    }

    fn leased(st: &State, network_id: &str) -> BTreeSet<Ipv4Addr> {
        st.live.values().filter_map(|l| l.att.endpoint(network_id).map(|e| e.ip)).collect()
    }

    /// Makes an endpoint for `req` on a network (caller holds the state).
    fn new_endpoint(st: &State, req: &EndpointRequest, interface: String, taken_here: &BTreeSet<(String, Ipv4Addr)>) -> Result<Endpoint> {
        let n = find(&st.networks, &req.network)?;
        if n.driver != Driver::Bridge {
            return Err(NetError::Invalid(format!(
                "container cannot be connected to network {:?} with other networks: it is a {} network",
                n.name,
                n.driver.as_str()
            )));
        }
        let mut leased = Self::leased(st, &n.id);
        leased.extend(taken_here.iter().filter(|(id, _)| *id == n.id).map(|(_, ip)| *ip));
        let (ip, pool) = match req.ipv4 {
            Some(ip) => (ip, ipam::check_static(n, ip, &leased)?),
            None => ipam::allocate(n, &leased)?,
        };
        Ok(Endpoint {
            network_id: n.id.clone(),
            network_name: n.name.clone(),
            endpoint_id: berth_store::generate_id(),
            interface,
            ip,
            prefix_len: pool.subnet.prefix_len(),
            gateway: pool.gateway,
            mac: ipam::mac_for(ip),
            aliases: req.aliases.clone(),
            with_ports: true,
        })
    }

    /// Sets up a starting container's networks: namespace, addresses,
    /// host ports, netavark. On failure nothing is left.
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let netns_path = self.netns_dir().join(&req.container_id);
        let (att, nets) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.live.contains_key(&req.container_id) {
                return Err(NetError::Conflict(format!("container {} is attached already", req.container_id)));
            }
            let mut endpoints = Vec::new();
            let mut here = BTreeSet::new();
            for (i, r) in req.networks.iter().enumerate() {
                let ep = Self::new_endpoint(&st, r, format!("eth{i}"), &here)?;
                if endpoints.iter().any(|e: &Endpoint| e.network_id == ep.network_id) {
                    return Err(NetError::Invalid(format!("container is listed twice on network {}", ep.network_name)));
                }
                here.insert((ep.network_id.clone(), ep.ip));
                endpoints.push(ep);
            }
            let name = req.container_name.trim_start_matches('/');
            let eid = endpoints.first().map(|e| e.endpoint_id.clone()).unwrap_or_default();
            let held = ports::allocate(&req.ports, self.settings.default_bind_ip, &Self::taken(&st), (name, &eid))?;
            let att = Attachment {
                container_id: req.container_id.clone(),
                container_name: name.to_string(),
                netns: netns_path.clone(),
                endpoints,
                ports: held.iter().map(|h| h.map.clone()).collect(),
                dns_servers: req.dns_servers.clone(),
            };
            // Recorded before anything is set up: a crash from here on
            // leaves a record that reconcile undoes.
            self.save_attachment(&att)?;
            st.live.insert(att.container_id.clone(), Live { att: att.clone(), _held: held });
            (att, st.networks.clone())
        };
        let result = (|| {
            netns::create(&att.netns)?;
            let eps: Vec<&Endpoint> = att.endpoints.iter().collect();
            if !eps.is_empty() {
                self.driver.setup(&att.netns, &netavark::options(&att, &eps, &nets, true))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(container = %att.container_id, error = %e, "network setup failed; undoing it");
            self.undo(&att, &nets);
            self.forget(&att.container_id);
            return Err(e);
        }
        tracing::info!(container = %att.container_id, endpoints = att.endpoints.len(), ports = att.ports.len(), "networks set up");
        Ok(att)
    }

    /// Tears down what [`attach`](Self::attach) set up (an exit, a failed start).
    pub fn detach(&self, container_id: &str) {
        let (att, nets) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(l) = st.live.get(container_id) else { return };
            (l.att.clone(), st.networks.clone())
        };
        self.undo(&att, &nets);
        self.forget(container_id);
        tracing::info!(container = %container_id, "networks torn down");
    }

    fn forget(&self, container_id: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.live.remove(container_id); // drops the held ports
        self.delete_attachment(container_id);
    }

    /// netavark teardown and namespace removal; errors are logged (what
    /// cannot be undone now is undone by the next start's reconcile).
    fn undo(&self, att: &Attachment, nets: &BTreeMap<String, Network>) {
        let bound = netns::is_bound(&att.netns);
        let eps: Vec<&Endpoint> = att.endpoints.iter().filter(|e| nets.contains_key(&e.network_id)).collect();
        if !eps.is_empty() {
            // A namespace that is gone (a reboot) gets an empty one, so that
            // netavark can still remove the rules (the veth went with it).
            let scratch = (!bound).then(|| self.netns_dir().join(format!(".teardown-{}", att.container_id)));
            let ns = match &scratch {
                Some(s) => {
                    let _ = netns::remove(s);
                    netns::create(s).ok().map(|_| s.clone())
                }
                None => Some(att.netns.clone()),
            };
            if let Some(ns) = ns {
                for ep in &eps {
                    // One network at a time: ports only with the endpoints that carry them.
                    let opts = netavark::options(att, &[ep], nets, ep.with_ports);
                    if let Err(e) = self.driver.teardown(&ns, &opts) {
                        tracing::warn!(container = %att.container_id, network = %ep.network_name, error = %e, "network teardown reported an error");
                    }
                }
            }
            if let Some(s) = scratch {
                let _ = netns::remove(&s);
            }
        }
        if let Err(e) = netns::remove(&att.netns) {
            tracing::warn!(container = %att.container_id, error = %e, "cannot remove the network namespace");
        }
    }

    /// Connects a running container to one more network.
    pub fn connect(&self, container_id: &str, req: &EndpointRequest) -> Result<Endpoint> {
        let (att, ep, nets) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(l) = st.live.get(container_id) else {
                return Err(NetError::Conflict(format!("container {container_id} is not running")));
            };
            let n = find(&st.networks, &req.network)?;
            if l.att.endpoint(&n.id).is_some() {
                return Err(NetError::Conflict(format!("endpoint with name {} already exists in network {}", l.att.container_name, n.name)));
            }
            let iface = (0..).map(|i| format!("eth{i}")).find(|n| !l.att.endpoints.iter().any(|e| &e.interface == n)).expect("unbounded");
            let mut ep = Self::new_endpoint(&st, req, iface, &BTreeSet::new())?;
            ep.with_ports = false;
            let l = st.live.get_mut(container_id).expect("checked above");
            l.att.endpoints.push(ep.clone());
            let att = l.att.clone();
            self.save_attachment(&att)?;
            (att, ep, st.networks.clone())
        };
        if let Err(e) = self.driver.setup(&att.netns, &netavark::options(&att, &[&ep], &nets, false)) {
            let _ = self.driver.teardown(&att.netns, &netavark::options(&att, &[&ep], &nets, false));
            self.drop_endpoint(container_id, &ep.network_id);
            return Err(e);
        }
        tracing::info!(container = %container_id, network = %ep.network_name, ip = %ep.ip, "connected");
        Ok(ep)
    }

    /// Disconnects a running container from a network.
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let (att, ep, nets) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let n = find(&st.networks, network)?;
            let Some(l) = st.live.get(container_id) else {
                return Err(NetError::Conflict(format!("container {container_id} is not running")));
            };
            let Some(ep) = l.att.endpoint(&n.id) else {
                return Err(NetError::Conflict(format!("container {container_id} is not connected to network {}", n.name)));
            };
            (l.att.clone(), ep.clone(), st.networks.clone())
        };
        self.driver.teardown(&att.netns, &netavark::options(&att, &[&ep], &nets, ep.with_ports))?;
        self.drop_endpoint(container_id, &ep.network_id);
        tracing::info!(container = %container_id, network = %ep.network_name, "disconnected");
        Ok(())
    }

    fn drop_endpoint(&self, container_id: &str, network_id: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = st.live.get_mut(container_id) {
            l.att.endpoints.retain(|e| e.network_id != network_id);
            let att = l.att.clone();
            if let Err(e) = self.save_attachment(&att) {
                tracing::warn!(container = %container_id, error = %e, "cannot record the disconnect");
            }
        }
    }

    /// At start: keeps the attachments of containers still running (their
    /// host ports held again) and undoes every other one; removes
    /// namespaces that no attachment names.
    pub fn reconcile(&self, running: &HashSet<String>) {
        let (found, nets) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut st.found), st.networks.clone())
        };
        let mut kept = HashSet::new();
        for att in found {
            if running.contains(&att.container_id) && netns::is_bound(&att.netns) {
                let mut held = Vec::new();
                for p in &att.ports {
                    match ports::hold(p.host_ip, p.host_port, p.proto) {
                        Ok(s) => held.push(Held::from_parts(p.clone(), s)),
                        Err(e) => tracing::warn!(container = %att.container_id, port = p.host_port, error = %e,
                            "cannot hold a published port again; another process may take it"),
                    }
                }
                tracing::info!(container = %att.container_id, "kept the networks of a running container");
                kept.insert(att.container_id.clone());
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.live.insert(att.container_id.clone(), Live { att, _held: held });
            } else {
                tracing::warn!(container = %att.container_id, "networks of a container that is not running (berth stopped meanwhile); tearing them down");
                self.undo(&att, &nets);
                self.delete_attachment(&att.container_id);
            }
        }
        if let Ok(rd) = fs::read_dir(self.netns_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !kept.contains(&name) {
                    tracing::warn!(netns = %e.path().display(), "network namespace without an attachment; removing it");
                    let _ = netns::remove(&e.path());
                }
            }
        }
    }
}

fn predefined(name: &str, driver: Driver) -> Network {
    Network {
        id: berth_store::generate_id(),
        name: name.into(),
        driver,
        created: berth_store::timefmt::now_rfc3339_nano(),
        interface: String::new(),
        pools: vec![],
        user_subnet: false,
        internal: false,
        attachable: false,
        dns: false,
        labels: Default::default(),
        options: Default::default(),
        ipam_options: Default::default(),
        predefined: true,
        mtu: None,
    }
}

fn find<'a>(nets: &'a BTreeMap<String, Network>, key: &str) -> Result<&'a Network> {
    if let Some(n) = nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == key) {
        return Ok(n);
    }
    let mut by_prefix = nets.values().filter(|n| !key.is_empty() && n.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(NetError::Invalid(format!("network {key} is ambiguous: more than one network id starts with it"))),
        _ => Err(NetError::NotFound(key.to_string())),
    }
}

/// Subnets new networks must not overlap: other networks' and the host's
/// routes (except the route of `own`'s bridge, which is its own subnet).
fn used_subnets(nets: &BTreeMap<String, Network>, own: Option<&str>) -> Vec<Ipv4Net> {
    let mut used: Vec<Ipv4Net> = nets.values().filter(|n| Some(n.id.as_str()) != own).flat_map(|n| n.pools.iter().map(|p| p.subnet)).collect();
    let own_subnets: Vec<Ipv4Net> = own.and_then(|id| nets.get(id)).map(|n| n.pools.iter().map(|p| p.subnet).collect()).unwrap_or_default();
    used.extend(ipam::host_routes().into_iter().filter(|r| !own_subnets.contains(r)));
    used
}

fn taken_by_others(subnet: &Ipv4Net, _iface: &str, nets: &BTreeMap<String, Network>, own: Option<&Network>) -> bool {
    let own_id = own.map(|o| o.id.as_str());
    let others = nets.values().filter(|n| Some(n.id.as_str()) != own_id).flat_map(|n| n.pools.iter().map(|p| p.subnet));
    let routes = ipam::host_routes().into_iter().filter(|r| r != subnet);
    others.chain(routes).any(|u| ipam::overlaps(&u, subnet))
}

/// dockerd's network name rule.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(NetError::Invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (up to 128 characters)"
        )));
    }
    if matches!(name, "bridge" | "host" | "none" | "default") {
        return Err(NetError::Conflict(format!("{name} is a pre-defined network and cannot be created")));
    }
    Ok(())
}

fn validate_ifname(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', ':']) || s == "." || s == ".." {
        return Err(NetError::Invalid(format!("invalid bridge name {s:?}: at most 15 characters, no '/', ':' or spaces")));
    }
    Ok(())
}

fn read_dir_json(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(NetError::io("reading", dir))? {
        let Ok(e) = e else { continue };
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            let _ = fs::remove_file(&p); // a temporary file of an interrupted write
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        // Records are small; a huge one is not ours.
        match fs::metadata(&p) {
            Ok(m) if m.len() <= 1 << 20 => {}
            _ => {
                tracing::error!(file = %p.display(), "record too large or unreadable; ignoring it");
                continue;
            }
        }
        match fs::read_to_string(&p) {
            Ok(t) => out.push((p, t)),
            Err(e) => tracing::error!(file = %p.display(), error = %e, "record cannot be read; ignoring it"),
        }
    }
    Ok(out)
}
