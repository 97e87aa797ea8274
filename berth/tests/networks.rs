//! Networks end to end: published ports on the default bridge for runc,
//! crun and youki, user networks with name resolution, connect and
//! disconnect, conflicts, and nothing left behind. Traffic goes only to
//! loopback, the test daemon's bridges and its containers. crun runs
//! through its hybrid-cgroup wrapper, as in the runtime matrix.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A daemon with a default bridge of its own (name and subnet unique to
/// this test process).
fn daemon(octet: u8, extra: serde_json::Value) -> Daemon {
    let k = std::process::id() % 200 + 20;
    let mut cfg = serde_json::json!({
        "bridge": format!("bn{octet}x{k}"),
        "bip": format!("10.{octet}.{k}.1/24"),
        "default-address-pools": [{"base": format!("10.{}.0.0/16", octet + 1), "size": 24}],
    });
    for (key, v) in extra.as_object().unwrap() {
        cfg[key] = v.clone();
    }
    let d = Daemon::start(&cfg.to_string());
    d.import_busybox("bb");
    d
}

fn http_get(port: u16) -> String {
    let mut c = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s
}

fn rules_naming(id: &str) -> usize {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&id[..12])).count()
}

fn serve(name: &str) -> String {
    format!("mkdir -p /www && echo hello-{name} > /www/index.html && exec busybox httpd -f -p 80 -h /www")
}

fn other_runtimes() -> Vec<(&'static str, String)> {
    let skip = std::env::var("BERTH_TEST_SKIP_RUNTIMES").unwrap_or_default();
    let mut v = vec![];
    for (name, candidates) in [("crun", vec!["/usr/local/lib/berth/crun-hybrid".to_string()]), ("youki", vec![std::env::var("BERTH_TEST_YOUKI").unwrap_or_default(), "/usr/local/bin/youki".into()])] {
        if skip.split(',').any(|s| s.trim() == name) {
            eprintln!("note: {name} skipped: named in BERTH_TEST_SKIP_RUNTIMES");
            continue;
        }
        let p = candidates.into_iter().find(|p| !p.is_empty() && Path::new(p).exists());
        let p = p.unwrap_or_else(|| panic!("{name} is not installed: run scripts/install-runtimes, or name it in BERTH_TEST_SKIP_RUNTIMES"));
        v.push((name, p));
    }
    v
}

#[test]
fn published_ports_reach_httpd_on_every_runtime_and_leave_nothing() {
    let rts = other_runtimes();
    let runtimes: serde_json::Map<String, serde_json::Value> = rts.iter().map(|(n, p)| (n.to_string(), serde_json::json!({"path": p}))).collect();
    let d = daemon(231, serde_json::json!({"runtimes": runtimes}));
    let mut names = vec!["runc"];
    names.extend(rts.iter().map(|(n, _)| *n));
    let mut ids = vec![];
    for rt in &names {
        let c = format!("web-{rt}");
        let id = d.ok(&["run", "-d", "--name", &c, "--runtime", rt, "-p", "127.0.0.1::80", "bb", "sh", "-c", &serve(rt)]).trim().to_string();
        let port_line = d.ok(&["port", &c, "80"]);
        let port: u16 = port_line.trim().rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("docker port: {port_line}"));
        let answered = eventually(Duration::from_secs(10), || {
            std::panic::catch_unwind(|| http_get(port)).unwrap_or_default().contains(&format!("hello-{rt}"))
        });
        assert!(answered, "{rt}: no answer on 127.0.0.1:{port}\n{}", tail(&d.log()));
        let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Networks.bridge.Gateway}}", &c]);
        assert!(ip.starts_with("10.231."), "{rt}: {ip}");
        assert!(d.ok(&["ps", "--format", "{{.Ports}}", "-f", &format!("name={c}")]).contains(&format!("127.0.0.1:{port}->80/tcp")));
        ids.push((id, port, c));
    }
    // The port of a running container cannot be had twice; nothing of the
    // refused start is left (its container stays created, as in dockerd).
    let (_, port, _) = &ids[0];
    let o = d.docker(&["run", "-d", "--name", "clash", "-p", &format!("127.0.0.1:{port}:80"), "bb", "sleep", "100"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("port is already allocated"), "{}", text(&o));
    let clash = d.ok(&["inspect", "-f", "{{.Id}}", "clash"]).trim().to_string();
    assert_eq!(rules_naming(&clash), 0);
    assert!(!d.path(&format!("exec/network/netns/{clash}")).exists());
    // A restart keeps a fixed host port.
    let fixed = d.ok(&["run", "-d", "--name", "fixed", "-p", "127.0.0.1:0:80", "bb", "sh", "-c", &serve("fixed")]);
    let p1 = d.ok(&["port", "fixed", "80"]);
    d.ok(&["restart", "-t", "1", "fixed"]);
    assert!(!d.ok(&["port", "fixed", "80"]).trim().is_empty(), "published again after a restart");
    d.ok(&["rm", "-f", "fixed", "clash"]);
    for (id, _, c) in &ids {
        d.ok(&["rm", "-f", c]);
        assert_eq!(rules_naming(id), 0, "no firewall rule names {c}");
        assert!(!d.path(&format!("exec/network/netns/{id}")).exists());
    }
    assert_eq!(rules_naming(fixed.trim()), 0);
    drop(p1);
    let bridge = format!("bn231x{}", std::process::id() % 200 + 20);
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "the bridge goes with its last container");
}

#[test]
fn user_networks_resolve_names_connect_disconnect_and_refuse_what_they_must() {
    let d = daemon(233, serde_json::json!({}));
    let k = std::process::id() % 200 + 20;
    let subnet = format!("10.235.{k}.0/24");
    let id = d.ok(&["network", "create", "--subnet", &subnet, "--label", "t=1", "appnet"]).trim().to_string();
    assert_eq!(id.len(), 64);
    let o = d.docker(&["network", "create", "appnet"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("network with name appnet already exists"), "{}", text(&o));
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["appnet bridge", "bridge bridge", "host host", "none null"] {
        assert!(ls.contains(want), "{ls}");
    }
    d.ok(&["run", "-d", "--name", "db", "--network", "appnet", "--network-alias", "database", "--ip", &format!("10.235.{k}.50"), "bb", "sh", "-c", &serve("db")]);
    for host in ["db", "database"] {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(10), || {
            let o = d.docker(&["run", "--rm", "--network", "appnet", "bb", "busybox", "wget", "-qO-", &format!("http://{host}/")]);
            last = text(&o);
            String::from_utf8_lossy(&o.stdout) == "hello-db\n"
        });
        assert!(ok, "{host} by name: {last}\n{}", tail(&d.log()));
    }
    let inspect = d.ok(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "appnet"]);
    assert_eq!(inspect.trim(), format!("db 10.235.{k}.50/24"));
    assert!(d.docker(&["network", "rm", "appnet"]).status.code() != Some(0), "in use");
    // Connect and disconnect while running.
    d.ok(&["network", "create", "--internal", "side"]);
    d.ok(&["network", "connect", "side", "db"]);
    let addrs = d.ok(&["exec", "db", "busybox", "ip", "-o", "-4", "addr"]);
    assert!(addrs.contains("eth1"), "{addrs}");
    d.ok(&["network", "disconnect", "side", "db"]);
    assert!(!d.ok(&["exec", "db", "busybox", "ip", "-o", "-4", "addr"]).contains("eth1"));
    // An internal network has no route out.
    let routes = d.ok(&["run", "--rm", "--network", "side", "bb", "busybox", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    // Bad input is refused with dockerd's messages and creates nothing.
    let o = d.docker(&["run", "--rm", "--network", "nosuch", "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("network nosuch not found"), "{}", text(&o));
    let o = d.docker(&["run", "--rm", "--ip", "10.9.9.9", "bb", "true"]);
    assert!(!o.status.success());
    d.ok(&["rm", "-f", "db"]);
    d.ok(&["network", "rm", "appnet", "side"]);
    assert_eq!(d.ok(&["network", "ls", "-q", "-f", "type=custom"]).trim(), "");
}

#[test]
fn live_restore_keeps_a_published_port_and_a_container_gone_meanwhile_leaves_nothing() {
    let mut d = daemon(237, serde_json::json!({"live-restore": true}));
    let id = d.ok(&["run", "-d", "--name", "web", "-p", "127.0.0.1::80", "bb", "sh", "-c", &serve("web")]).trim().to_string();
    let port: u16 = d.ok(&["port", "web", "80"]).trim().rsplit(':').next().unwrap().parse().unwrap();
    let answers = || eventually(Duration::from_secs(10), || std::panic::catch_unwind(|| http_get(port)).unwrap_or_default().contains("hello-web"));
    assert!(answers());
    d.stop(9);
    assert!(answers(), "the port answers while berth is down");
    d.spawn();
    assert!(answers(), "and after berth restarted");
    assert_eq!(d.ok(&["port", "web", "80"]).trim(), format!("127.0.0.1:{port}"));
    // The port is still held: another container cannot take it.
    let o = d.docker(&["run", "--rm", "-p", &format!("127.0.0.1:{port}:80"), "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("port is already allocated"), "{}", text(&o));
    // berth dies again and the container ends while it is down: the next
    // start records the exit and undoes its network.
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]).trim().to_string();
    d.stop(9);
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    d.spawn();
    let gone = eventually(Duration::from_secs(20), || rules_naming(&id) == 0 && !d.path(&format!("exec/network/netns/{id}")).exists());
    assert!(gone, "rules or namespace left: {}\n{}", rules_naming(&id), tail(&d.log()));
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the host port is free");
}

#[test]
fn fifty_containers_with_published_ports_at_once_leave_no_rule_behind() {
    let d = std::sync::Arc::new(daemon(239, serde_json::json!({})));
    let ids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..5 {
            let (d, ids) = (d.clone(), &ids);
            s.spawn(move || {
                for i in 0..10 {
                    let id = d.ok(&["run", "-d", "--name", &format!("c{w}-{i}"), "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp", "bb", "sleep", "300"]);
                    ids.lock().unwrap().push(id.trim().to_string());
                }
            });
        }
    });
    let ids = ids.into_inner().unwrap();
    assert_eq!(ids.len(), 50);
    let ports: std::collections::BTreeSet<String> = ids.iter().map(|id| d.ok(&["port", id, "80"]).trim().to_string()).collect();
    assert_eq!(ports.len(), 50, "fifty distinct host ports");
    std::thread::scope(|s| {
        for chunk in ids.chunks(10) {
            let d = d.clone();
            s.spawn(move || {
                let mut args = vec!["rm", "-f"];
                args.extend(chunk.iter().map(String::as_str));
                d.ok(&args);
            });
        }
    });
    for id in &ids {
        assert_eq!(rules_naming(id), 0, "a rule names {id}");
    }
    assert_eq!(std::fs::read_dir(d.path("exec/network/netns")).unwrap().count(), 0, "no namespace left");
}

/// Debian's docker-compose 1.29 (docker-py 5.0.3 inside) brings up a
/// two-service app: `web` fetches from `db` by service name and publishes
/// a port; `down` removes the containers and the project network.
#[test]
fn docker_compose_brings_up_a_two_service_app_and_takes_it_down() {
    let d = daemon(241, serde_json::json!({}));
    let proj = d.path("app");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("docker-compose.yml"),
        r#"version: "2.4"
services:
  db:
    image: bb
    command: ["sh", "-c", "mkdir -p /www && echo db-ok > /www/index.html && exec busybox httpd -f -p 80 -h /www"]
  web:
    image: bb
    depends_on: [db]
    ports: ["127.0.0.1::80"]
    command: ["sh", "-c", "mkdir -p /www && until busybox wget -qO /www/index.html http://db/; do sleep 0.2; done && exec busybox httpd -f -p 80 -h /www"]
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let o = Command::new("docker-compose")
            .args(["-p", "app"])
            .args(args)
            .current_dir(&proj)
            .env("DOCKER_HOST", d.host())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .output()
            .expect("docker-compose (Debian's docker-compose package; scripts/setup installs it)");
        assert!(o.status.success(), "docker-compose {args:?}: {}\n{}", text(&o), tail(&d.log()));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    compose(&["up", "-d"]);
    let port_line = compose(&["port", "web", "80"]);
    let port: u16 = port_line.trim().rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("compose port: {port_line}"));
    let ok = eventually(Duration::from_secs(20), || std::panic::catch_unwind(|| http_get(port)).unwrap_or_default().contains("db-ok"));
    assert!(ok, "web did not serve what it fetched from db by name\n{}", tail(&d.log()));
    assert!(d.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "app_default"));
    let ids: Vec<String> = d.ok(&["ps", "-q", "--no-trunc"]).split_whitespace().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2);
    compose(&["down", "-t", "1"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(!d.ok(&["network", "ls", "--format", "{{.Name}}"]).contains("app_default"));
    for id in &ids {
        assert_eq!(rules_naming(id), 0);
    }
}

/// gVisor brings its own network stack, so berth's bridge networks reach
/// its containers only through that stack; the runtimes registered with
/// `--network=none` or `--network=host` are refused on a bridge network at
/// create, with what to do, and keep working with `none` and `host`.
#[test]
fn gvisor_runtimes_say_which_networks_they_can_join() {
    if std::env::var("BERTH_TEST_SKIP_RUNTIMES").unwrap_or_default().split(',').any(|s| s.trim() == "gvisor") {
        eprintln!("note: gvisor skipped: named in BERTH_TEST_SKIP_RUNTIMES");
        return;
    }
    let runsc = "/usr/bin/runsc";
    assert!(Path::new(runsc).exists(), "gvisor ({runsc}) is not installed: run scripts/install-runtimes, or name it in BERTH_TEST_SKIP_RUNTIMES");
    let d = daemon(243, serde_json::json!({"runtimes": {
        "gvn": {"path": runsc, "runtimeArgs": ["--platform=ptrace", "--network=none"]},
        "gvh": {"path": runsc, "runtimeArgs": ["--platform=ptrace", "--network=host"]},
    }}));
    for (rt, want) in [("gvn", "never the interface berth sets up on network bridge"), ("gvh", "does not put gVisor's host-network mode in a bridge network")] {
        let o = d.docker(&["create", "--runtime", rt, "bb", "true"]);
        assert_eq!(o.status.code(), Some(1), "{rt}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{rt}: {}", text(&o));
    }
    assert_eq!(d.ok(&["run", "--rm", "--runtime", "gvn", "--network", "none", "bb", "echo", "isolated"]), "isolated\n");
    assert_eq!(d.ok(&["ps", "-aq"]), "", "the refusals created nothing");
}

/// `--network container:ID` shares the other container's namespace and
/// files; `--add-host` (with `host-gateway`), `--dns`, `--dns-search`,
/// `--hostname` and `--domainname` end up in the files dockerd writes.
#[test]
fn etc_files_and_a_shared_namespace() {
    let d = daemon(245, serde_json::json!({}));
    let k = std::process::id() % 200 + 20;
    d.ok(&["run", "-d", "--name", "aa", "--hostname", "web", "--domainname", "example.org", "--add-host", "db:10.1.2.3",
        "--add-host", "gw:host-gateway", "--dns", "10.9.9.9", "--dns-search", "corp.example", "bb", "sleep", "300"]);
    let hosts = d.ok(&["exec", "aa", "busybox", "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    assert!(hosts.contains(&format!("10.245.{k}.1\tgw\n")), "host-gateway is the bridge's address: {hosts}");
    assert!(hosts.contains(&format!("10.245.{k}.2\tweb.example.org web\n")), "{hosts}");
    assert_eq!(d.ok(&["exec", "aa", "busybox", "cat", "/etc/resolv.conf"]), "nameserver 10.9.9.9\nsearch corp.example\n");
    assert_eq!(d.ok(&["exec", "aa", "busybox", "hostname"]).trim(), "web");
    // b joins a's namespace: same address, same files.
    let b_addr = d.ok(&["run", "--rm", "--network", "container:aa", "bb", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(b_addr.contains(&format!("10.245.{k}.2/24")), "{b_addr}");
    assert_eq!(d.ok(&["run", "--rm", "--network", "container:aa", "bb", "busybox", "cat", "/etc/hosts"]), hosts);
    let o = d.docker(&["run", "--rm", "--network", "container:aa", "-p", "80", "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("conflicting options: port publishing and the container type network mode"), "{}", text(&o));
    d.ok(&["stop", "-t", "0", "aa"]);
    let o = d.docker(&["run", "--rm", "--network", "container:aa", "bb", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot join network of a non running container"), "{}", text(&o));
}

/// berth SIGKILLed at random moments while containers with published
/// ports start and stop on a user network: after the last restart and the
/// removal of every container, nothing of theirs is left (rules, namespaces,
/// attachment records, DNS entries, the bridges).
#[test]
fn kill_9_during_network_setups_leaves_nothing_behind() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut d = daemon(247, serde_json::json!({}));
    let k = std::process::id() % 200 + 20;
    d.ok(&["network", "create", "--subnet", &format!("10.249.{k}.0/24"), "crashnet"]);
    for round in 0..8 {
        let stop = AtomicBool::new(false);
        let pid = d.child.as_ref().unwrap().id() as i32;
        std::thread::scope(|s| {
            for w in 0..2 {
                let (d, stop) = (&d, &stop);
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let net = if w == 0 { "crashnet" } else { "bridge" };
                        let o = d.docker(&["run", "-d", "--network", net, "-p", "127.0.0.1::80", "bb", "sleep", "0.5"]);
                        if i % 2 == 0 && o.status.success() {
                            d.docker(&["rm", "-f", String::from_utf8_lossy(&o.stdout).trim()]);
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(300 + 150 * (round % 7)));
            // SAFETY: kill(2) on the daemon this test started.
            unsafe { libc_kill(pid, 9) };
            stop.store(true, Ordering::Relaxed);
        });
        d.stop(9); // reaps it
        d.spawn();
    }
    // Everything exits and goes.
    let ids: Vec<String> = d.ok(&["ps", "-aq"]).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        d.ok(&args);
    }
    let subnets = [format!("10.247.{k}."), format!("10.249.{k}.")];
    let clean = eventually(Duration::from_secs(20), || {
        let rules = String::from_utf8_lossy(&Command::new("iptables-save").output().unwrap().stdout).into_owned();
        let netns = std::fs::read_dir(d.path("exec/network/netns")).map(|r| r.count()).unwrap_or(0);
        let records = std::fs::read_dir(d.path("data/network/attachments")).map(|r| r.count()).unwrap_or(0);
        !subnets.iter().any(|s| rules.contains(s.as_str())) && netns == 0 && records == 0
    });
    assert!(clean, "left behind: rules {:?}, namespaces {:?}, attachments {:?}\n{}",
        String::from_utf8_lossy(&Command::new("iptables-save").output().unwrap().stdout).lines().filter(|l| subnets.iter().any(|s| l.contains(s.as_str()))).collect::<Vec<_>>(),
        std::fs::read_dir(d.path("exec/network/netns")).map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        std::fs::read_dir(d.path("data/network/attachments")).map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        tail(&d.log()));
    // aardvark-dns keeps no entry of a removed container.
    let dns_dir = d.path("exec/network/netavark/aardvark-dns");
    for e in std::fs::read_dir(&dns_dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        assert!(text.lines().count() <= 1, "DNS entries left in {}: {text}", e.path().display());
    }
    let bridge = format!("bn247x{k}");
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "bridge {bridge} left");
}
