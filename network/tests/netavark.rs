//! The network service against the real netavark: addresses, published
//! ports, teardown and reconcile. Traffic stays on loopback, the test's
//! bridge and the test's own namespaces.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use berth_network::ports::{HostPort, PortRequest};
use berth_network::{AttachRequest, CreateRequest, DefaultBridge, EndpointRequest, Networks, Proto, Settings};

fn settings(dir: &Path, tag: u8) -> Settings {
    Settings {
        data_dir: dir.join("data"),
        run_dir: dir.join("run"),
        default_bridge: Some(DefaultBridge { interface: format!("bt{}x{tag}", std::process::id() % 10000), bip: Some(format!("10.251.{tag}.1/24").parse().unwrap()) }),
        pools: vec![berth_network::ipam::AddressPool { base: format!("10.252.{}.0/24", tag * 16).parse().unwrap(), size: 28 }],
        default_bind_ip: "0.0.0.0".parse().unwrap(),
        netavark: berth_network::netavark::DEFAULT_NETAVARK.into(),
        aardvark: berth_network::netavark::DEFAULT_AARDVARK.into(),
    }
}

/// A TCP listener inside the namespace at `ns` that echoes one line.
fn echo_server(ns: &Path, port: u16) -> std::thread::JoinHandle<()> {
    let ns = ns.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns).unwrap();
        // SAFETY: setns(2) on this thread only, with an open nsfs file.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for _ in 0..2 {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf).unwrap();
            c.write_all(&buf[..n]).unwrap();
        }
    });
    rx.recv().unwrap();
    h
}

fn echo(addr: (IpAddr, u16)) -> String {
    let mut c = TcpStream::connect_timeout(&addr.into(), std::time::Duration::from_secs(5)).unwrap();
    c.write_all(b"ping\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

fn rules_naming(id: &str) -> usize {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&id[..12])).count()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn published_port_reaches_the_namespace_and_teardown_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = settings(d.path(), 1);
    let bridge = s.default_bridge.clone().unwrap().interface;
    let nets = Networks::open(s).unwrap();
    let id = berth_store::generate_id();
    let att = nets
        .attach(&AttachRequest {
            container_id: id.clone(),
            container_name: "/web".into(),
            networks: vec![EndpointRequest { network: "bridge".into(), ..Default::default() }],
            ports: vec![PortRequest { container_port: 80, proto: Proto::Tcp, host_ip: None, host_port: HostPort::Any }],
            dns_servers: vec![],
        })
        .unwrap();
    assert_eq!(att.endpoints[0].ip.to_string(), "10.251.1.2");
    assert_eq!(att.endpoints[0].gateway.to_string(), "10.251.1.1");
    assert!(link_exists(&bridge));
    let port = att.ports[0].host_port;
    let server = echo_server(&att.netns, 80);
    assert_eq!(echo(("127.0.0.1".parse().unwrap(), port)), "ping\n", "through the published port on loopback");
    assert_eq!(echo((IpAddr::V4(att.endpoints[0].ip), 80)), "ping\n", "to the container's address");
    server.join().unwrap();
    // The port is held: a second container cannot have it.
    let e = nets
        .attach(&AttachRequest {
            container_id: berth_store::generate_id(),
            container_name: "/other".into(),
            networks: vec![EndpointRequest { network: "bridge".into(), ..Default::default() }],
            ports: vec![PortRequest { container_port: 80, proto: Proto::Tcp, host_ip: None, host_port: HostPort::Fixed(port) }],
            dns_servers: vec![],
        })
        .unwrap_err()
        .to_string();
    assert!(e.ends_with(&format!("Bind for 0.0.0.0:{port} failed: port is already allocated")), "{e}");
    assert!(rules_naming(&id) > 0);
    nets.detach(&id);
    assert_eq!(rules_naming(&id), 0, "no rule names the container");
    assert!(!att.netns.exists());
    assert!(!link_exists(&bridge), "the last container's teardown removes the bridge");
    assert!(TcpListener::bind(("0.0.0.0", port)).is_ok(), "the host port is free again");
}

#[test]
fn user_network_with_static_address_and_reconcile_after_a_crash() {
    let d = tempfile::tempdir().unwrap();
    let nets = Networks::open(settings(d.path(), 2)).unwrap();
    let n = nets
        .create(CreateRequest {
            name: "appnet".into(),
            ipam_config: vec![("10.253.2.0/24".into(), String::new(), String::new())],
            ..Default::default()
        })
        .unwrap();
    assert!(n.interface.starts_with("br-"));
    assert_eq!(nets.create(CreateRequest { name: "appnet".into(), ..Default::default() }).unwrap_err().to_string(), "network with name appnet already exists");
    let e = nets
        .create(CreateRequest { name: "other".into(), ipam_config: vec![("10.253.2.128/25".into(), String::new(), String::new())], ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().starts_with("Pool overlaps with other one on this address space"), "{e}");
    let id = berth_store::generate_id();
    let att = nets
        .attach(&AttachRequest {
            container_id: id.clone(),
            container_name: "/db".into(),
            networks: vec![EndpointRequest { network: "appnet".into(), aliases: vec!["db".into()], ipv4: Some("10.253.2.50".parse().unwrap()) }],
            ports: vec![PortRequest { container_port: 5432, proto: Proto::Tcp, host_ip: Some("127.0.0.1".parse().unwrap()), host_port: HostPort::Any }],
            dns_servers: vec![],
        })
        .unwrap();
    assert_eq!(att.endpoints[0].ip.to_string(), "10.253.2.50");
    assert!(nets.remove("appnet").unwrap_err().to_string().contains("has active endpoints"));
    assert!(rules_naming(&id) > 0);
    // berth dies here: a new service finds the attachment, the container
    // is not running, so everything is undone.
    drop(nets);
    let nets = Networks::open(settings(d.path(), 2)).unwrap();
    nets.reconcile(&HashSet::new());
    assert_eq!(rules_naming(&id), 0);
    assert!(!att.netns.exists());
    assert!(!link_exists(&n.interface));
    nets.remove("appnet").unwrap();
    assert!(nets.get("appnet").is_err());
}
