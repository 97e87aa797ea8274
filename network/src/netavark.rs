//! The netavark driver: berth's networks and attachments in netavark's
//! JSON interface (`netavark setup|teardown NETNS` with the options on
//! stdin), its answers and errors. netavark makes the bridge, the veth,
//! the iptables rules (NAT, published ports) and runs aardvark-dns for
//! networks with name resolution; berth chooses every address itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{NetError, Result};
use crate::model::{Attachment, Endpoint, Network};

/// Where netavark is in Debian's package.
pub const DEFAULT_NETAVARK: &str = "/usr/lib/podman/netavark";
/// Where aardvark-dns is in Debian's package.
pub const DEFAULT_AARDVARK: &str = "/usr/lib/podman/aardvark-dns";
/// How long one netavark call may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How to run netavark.
#[derive(Debug, Clone)]
pub struct Netavark {
    pub binary: PathBuf,
    pub aardvark: PathBuf,
    /// netavark's `--config` directory (aardvark-dns keeps its files under it).
    pub config_dir: PathBuf,
}

/// What netavark reports for one network after setup.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusBlock {
    #[serde(default)]
    pub dns_server_ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub dns_search_domains: Option<Vec<String>>,
    #[serde(default)]
    pub interfaces: Option<BTreeMap<String, Interface>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Interface {
    pub mac_address: String,
}

#[derive(Serialize)]
struct PortMapping {
    container_port: u16,
    host_ip: String,
    host_port: u16,
    protocol: &'static str,
    range: u16,
}

/// The setup/teardown options of one attachment, limited to `endpoints`
/// (all of them at start; one for a connect or disconnect).
pub fn options(att: &Attachment, endpoints: &[&Endpoint], networks: &BTreeMap<String, Network>, with_ports: bool) -> Value {
    let mut nets = serde_json::Map::new();
    let mut info = serde_json::Map::new();
    for ep in endpoints {
        let Some(n) = networks.get(&ep.network_id) else { continue };
        // netavark names its firewall chains and DNS files after the network
        // name, host-wide: berth gives it the id, unique across daemons.
        nets.insert(
            n.id.clone(),
            json!({
                "interface_name": ep.interface,
                "static_ips": [ep.ip.to_string()],
                "static_mac": ep.mac,
                "aliases": if n.dns { ep.aliases.clone() } else { vec![] },
            }),
        );
        info.insert(n.id.clone(), network_info(n));
    }
    let ports: Vec<PortMapping> = if with_ports {
        att.ports
            .iter()
            .map(|p| PortMapping {
                container_port: p.container_port,
                host_ip: if p.host_ip.is_unspecified() { String::new() } else { p.host_ip.to_string() },
                host_port: p.host_port,
                protocol: p.proto.as_str(),
                range: 1,
            })
            .collect()
    } else {
        vec![]
    };
    json!({
        "container_id": att.container_id,
        "container_name": att.container_name,
        "networks": nets,
        "network_info": info,
        "port_mappings": if ports.is_empty() { Value::Null } else { serde_json::to_value(ports).unwrap_or(Value::Null) },
        "dns_servers": if att.dns_servers.is_empty() { Value::Null } else { json!(att.dns_servers) },
    })
}

/// One network in netavark's terms.
fn network_info(n: &Network) -> Value {
    let mut options = serde_json::Map::new();
    if let Some(mtu) = n.mtu {
        options.insert("mtu".into(), json!(mtu.to_string()));
    }
    json!({
        "name": n.id,
        "id": n.id,
        "driver": "bridge",
        "network_interface": n.interface,
        "subnets": n.pools.iter().map(|p| json!({"subnet": p.subnet.to_string(), "gateway": p.gateway.to_string()})).collect::<Vec<_>>(),
        "ipv6_enabled": false,
        "internal": n.internal,
        "dns_enabled": n.dns,
        "ipam_options": {"driver": "host-local"},
        "options": options,
    })
}

impl Netavark {
    /// Sets up `opts` in the namespace at `netns`; netavark's report per network id.
    pub fn setup(&self, netns: &Path, opts: &Value) -> Result<BTreeMap<String, StatusBlock>> {
        let out = self.run("setup", netns, opts)?;
        serde_json::from_str(&out).map_err(|e| NetError::Tool {
            tool: "netavark",
            action: "setup".into(),
            message: format!("its answer is not the JSON berth expects ({e}): {}", out.chars().take(500).collect::<String>()),
        })
    }

    /// Undoes `opts` in the namespace at `netns`.
    pub fn teardown(&self, netns: &Path, opts: &Value) -> Result<()> {
        self.run("teardown", netns, opts).map(|_| ())
    }

    /// Runs one command; its stdout on success. Output goes to files, not
    /// pipes: aardvark-dns, which netavark starts, inherits them and lives on.
    fn run(&self, action: &str, netns: &Path, opts: &Value) -> Result<String> {
        let tool_err = |message: String| NetError::Tool { tool: "netavark", action: action.to_string(), message };
        // netavark checks and then creates its host-wide chains without a
        // lock of its own: one call at a time on this host.
        let _lock = HostLock::take().map_err(|e| tool_err(format!("cannot take the lock {LOCK_FILE}: {e}")))?;
        let mut input = tempfile_in_tmp().map_err(|e| tool_err(format!("cannot make a temporary file: {e}")))?;
        input.write_all(opts.to_string().as_bytes()).and_then(|_| input.rewind()).map_err(|e| tool_err(e.to_string()))?;
        let mut stdout = tempfile_in_tmp().map_err(|e| tool_err(format!("cannot make a temporary file: {e}")))?;
        let mut stderr = tempfile_in_tmp().map_err(|e| tool_err(format!("cannot make a temporary file: {e}")))?;
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config_dir)
            .args(["--rootless", "false", "--aardvark-binary"])
            .arg(&self.aardvark)
            .arg(action)
            .arg(netns)
            .stdin(Stdio::from(input))
            .stdout(Stdio::from(stdout.try_clone().map_err(|e| tool_err(e.to_string()))?))
            .stderr(Stdio::from(stderr.try_clone().map_err(|e| tool_err(e.to_string()))?))
            .spawn()
            .map_err(|e| tool_err(format!("cannot run {}: {e}; install Debian's netavark package", self.binary.display())))?;
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(tool_err(format!("no answer after {} s", TIMEOUT.as_secs())));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(tool_err(e.to_string())),
            }
        };
        let read = |f: &mut File| {
            let mut s = String::new();
            let _ = f.rewind();
            let _ = f.take(1 << 20).read_to_string(&mut s);
            s
        };
        let (out, err) = (read(&mut stdout), read(&mut stderr));
        if status.success() {
            return Ok(out);
        }
        // netavark prints {"error": "..."} on stdout when it fails.
        let message = serde_json::from_str::<Value>(out.trim())
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("{} {}", out.trim(), err.trim()).trim().to_string());
        Err(tool_err(format!("{message} ({status})")))
    }
}

/// The host-wide lock around netavark calls (every berth on the host).
const LOCK_FILE: &str = "/run/berth-netavark.lock";

/// Holds the lock until dropped (closing the file releases it).
struct HostLock(#[allow(dead_code)] File);

impl HostLock {
    fn take() -> std::io::Result<HostLock> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(LOCK_FILE)?;
        // SAFETY: flock(2) on an open file; released when the file closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(HostLock(f))
    }
}

fn tempfile_in_tmp() -> std::io::Result<File> {
    tempfile::tempfile()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Driver, Pool, PortMap, Proto};

    #[test]
    fn options_carry_addresses_ports_and_dns() {
        let n = Network {
            id: "a".repeat(64),
            name: "app".into(),
            driver: Driver::Bridge,
            created: String::new(),
            interface: "br-aaaaaaaaaaaa".into(),
            pools: vec![Pool { subnet: "10.9.0.0/24".parse().unwrap(), gateway: "10.9.0.1".parse().unwrap(), ip_range: None }],
            user_subnet: false,
            internal: false,
            attachable: false,
            dns: true,
            labels: Default::default(),
            options: Default::default(),
            ipam_options: Default::default(),
            predefined: false,
            mtu: Some(1400),
        };
        let ep = Endpoint {
            network_id: n.id.clone(),
            network_name: "app".into(),
            endpoint_id: "e".into(),
            interface: "eth0".into(),
            ip: "10.9.0.2".parse().unwrap(),
            prefix_len: 24,
            gateway: "10.9.0.1".parse().unwrap(),
            mac: "02:42:0a:09:00:02".into(),
            aliases: vec!["web".into()],
            with_ports: true,
        };
        let att = Attachment {
            container_id: "c".repeat(64),
            container_name: "web".into(),
            netns: "/run/x".into(),
            endpoints: vec![ep.clone()],
            ports: vec![PortMap { host_ip: "0.0.0.0".parse().unwrap(), host_port: 8080, container_port: 80, proto: Proto::Tcp }],
            dns_servers: vec![],
        };
        let nets: BTreeMap<_, _> = [(n.id.clone(), n)].into();
        let v = options(&att, &[&ep], &nets, true);
        let id = "a".repeat(64);
        assert_eq!(v["networks"][&id]["static_ips"][0], "10.9.0.2");
        assert_eq!(v["networks"][&id]["aliases"][0], "web");
        assert_eq!(v["network_info"][&id]["name"], id, "host-unique: netavark names chains after it");
        assert_eq!(v["network_info"][&id]["subnets"][0]["gateway"], "10.9.0.1");
        assert_eq!(v["network_info"][&id]["options"]["mtu"], "1400");
        assert_eq!(v["port_mappings"][0]["host_port"], 8080);
        assert_eq!(v["port_mappings"][0]["host_ip"], "");
        assert!(options(&att, &[&ep], &nets, false)["port_mappings"].is_null());
    }
}
