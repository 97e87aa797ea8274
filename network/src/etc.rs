//! The `/etc/hosts` and `/etc/resolv.conf` berth writes for a container
//! (dockerd's contents).

use std::net::IpAddr;

/// `/etc/hosts`: loopback names, then the container's own addresses with
/// its host name, then `--add-host` entries.
pub fn hosts(hostname: &str, domainname: &str, own: &[IpAddr], extra: &[(String, IpAddr)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    let names = if domainname.is_empty() { hostname.to_string() } else { format!("{hostname}.{domainname} {hostname}") };
    for ip in own {
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    s
}

/// What a container's resolver points at.
pub enum Resolver<'a> {
    /// The host's resolvers as they are (`--network host`).
    Host,
    /// The host's resolvers without loopback ones (unreachable from a
    /// private namespace), or `dns` if given.
    Copied { dns: &'a [IpAddr] },
    /// A network's DNS server (aardvark-dns at the gateway), which answers
    /// container names and forwards the rest.
    Network { server: IpAddr },
    /// No network: nothing to ask.
    None,
}

/// `/etc/resolv.conf` from the host's file, the resolver, and `--dns-search`/`--dns-option`.
pub fn resolv_conf(host: &str, resolver: Resolver, search: &[String], options: &[String]) -> String {
    if matches!(resolver, Resolver::Host) && search.is_empty() && options.is_empty() {
        return host.to_string();
    }
    let mut nameservers = Vec::new();
    let (mut host_search, mut host_options) = (Vec::new(), Vec::new());
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ip) = f.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                    nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => host_search = f.map(str::to_owned).collect(),
            Some("options") => host_options.extend(f.map(str::to_owned)),
            _ => {}
        }
    }
    let servers: Vec<IpAddr> = match resolver {
        Resolver::Host => nameservers,
        Resolver::Copied { dns } if !dns.is_empty() => dns.to_vec(),
        Resolver::Copied { .. } => {
            let outside: Vec<IpAddr> = nameservers.into_iter().filter(|ip| !ip.is_loopback()).collect();
            if outside.is_empty() {
                // dockerd's fallback when the host has only local resolvers.
                vec!["8.8.8.8".parse().expect("literal"), "8.8.4.4".parse().expect("literal")]
            } else {
                outside
            }
        }
        Resolver::Network { server } => vec![server],
        Resolver::None => vec![],
    };
    let search = if search.is_empty() { host_search } else { search.to_vec() };
    let options = if options.is_empty() { host_options } else { options.to_vec() };
    let mut s = String::new();
    for ip in servers {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    if !search.is_empty() && search != ["."] {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_dockerd() {
        let h = hosts("abc", "", &["172.17.0.2".parse().unwrap()], &[("db".into(), "10.0.0.5".parse().unwrap())]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.contains("10.0.0.5\tdb\n") && h.ends_with("172.17.0.2\tabc\n"), "{h}");
        assert!(hosts("web", "example.org", &["10.1.0.2".parse().unwrap()], &[]).ends_with("10.1.0.2\tweb.example.org web\n"));
    }

    #[test]
    fn resolv_conf_as_dockerd() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0\n";
        assert_eq!(resolv_conf(host, Resolver::Host, &[], &[]), host);
        assert_eq!(resolv_conf(host, Resolver::Copied { dns: &[] }, &[], &[]), "nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n");
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", Resolver::Copied { dns: &[] }, &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let dns = ["1.1.1.1".parse().unwrap()];
        assert_eq!(
            resolv_conf(host, Resolver::Copied { dns: &dns }, &["a.example".into()], &["ndots:2".into()]),
            "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(host, Resolver::Network { server: "10.9.0.1".parse().unwrap() }, &[], &[]),
            "nameserver 10.9.0.1\nsearch corp.example\noptions edns0\n"
        );
    }
}
