//! The records of the network subsystem: networks, and the attachment of
//! a container to its networks (its namespace, endpoints and ports).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The driver of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A host bridge with NAT, driven through netavark.
    Bridge,
    /// The host's network namespace (the predefined `host` network).
    Host,
    /// A namespace with loopback only (the predefined `none` network).
    Null,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// One IPv4 subnet of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Where container addresses come from (`--ip-range`); the whole subnet if unset.
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
}

/// A network as berth keeps it (`<data-root>/network/networks/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: Driver,
    pub created: String,
    /// The host bridge's name (bridge networks).
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Whether the user gave the subnet (`--subnet`): only then may
    /// containers ask for a static address, as in dockerd.
    #[serde(default)]
    pub user_subnet: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    /// Name resolution between containers (user-defined bridge networks).
    #[serde(default)]
    pub dns: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`-o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// `bridge`, `host` and `none`: made by berth, never removed.
    #[serde(default)]
    pub predefined: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// A port protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port as set up: host address and port to container port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMap {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// A container's endpoint on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    /// Interface name in the container (`eth0`, `eth1`, …).
    pub interface: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// Names the network's DNS answers with this endpoint's address.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether the published ports were set up on this endpoint (those
    /// connected at start; not those connected later).
    #[serde(default)]
    pub with_ports: bool,
}

/// Everything berth set up for one running container
/// (`<data-root>/network/attachments/<container id>.json`), written before
/// netavark runs, so that a crash in between leaves something to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub container_name: String,
    /// The bind-mounted network namespace.
    pub netns: PathBuf,
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Vec<PortMap>,
    /// `--dns` servers (aardvark forwards to them).
    #[serde(default)]
    pub dns_servers: Vec<IpAddr>,
}

impl Attachment {
    pub fn endpoint(&self, network_id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.network_id == network_id)
    }
}
