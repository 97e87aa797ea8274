//! Reload storm: 200 `docker run --rm --runtime R` from 4 parallel clients
//! while the config is reloaded every 10 ms, each reload changing R's args.
//! Zero failed runs; every runtime call of every container used args from
//! one single generation (never a mix), and the wrappers GC'd meanwhile
//! never broke a running container.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{text, Daemon};

fn config(gen: u64, rt: &str) -> String {
    format!(r#"{{"runtimes":{{"storm":{{"path":"{rt}","runtimeArgs":["--marker={gen}","--check={gen}"]}}}}}}"#)
}

fn reload(d: &Daemon) -> u16 {
    let mut s = UnixStream::connect(d.sock()).unwrap();
    s.write_all(b"POST /berth/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn reload_storm_never_fails_a_run() {
    let d = Daemon::start("{}");
    d.import_busybox("bb");
    // The runtime: checks that both marker args come from one generation,
    // logs them, and runs runc with the rest.
    let calls = d.path("calls.log");
    let rt = d.path("storm-rt");
    std::fs::write(
        &rt,
        format!(
            "#!/bin/sh\nm=\"${{1#--marker=}}\"; c=\"${{2#--check=}}\"; shift 2\n[ \"$m\" = \"$c\" ] || {{ echo \"mixed generation $m/$c\" >&2; exit 1; }}\necho \"$m $*\" >> {}\nexec runc \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rt = rt.to_str().unwrap().to_string();
    d.write_config(&config(0, &rt));
    assert_eq!(reload(&d), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        let reloader = {
            let (stop, reloads, d, rt) = (stop.clone(), reloads.clone(), &d, rt.clone());
            s.spawn(move || {
                let mut gen = 1;
                while !stop.load(Ordering::Relaxed) {
                    d.write_config(&config(gen, &rt));
                    assert_eq!(reload(d), 200, "reload {gen} failed");
                    reloads.fetch_add(1, Ordering::Relaxed);
                    gen += 1;
                    // Pacing of the storm (what is tested), not a wait for
                    // anything: any pace passes.
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let d = &d;
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for i in 0..50 {
                        let o = d.docker(&["run", "--rm", "--runtime", "storm", "bb", "echo", &format!("c{c}-{i}")]);
                        if !o.status.success() || String::from_utf8_lossy(&o.stdout) != format!("c{c}-{i}\n") {
                            failures.push(text(&o));
                        }
                    }
                    failures
                })
            })
            .collect();
        let failures: Vec<String> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        reloader.join().unwrap();
        assert!(failures.is_empty(), "{} of 200 runs failed; first: {}", failures.len(), failures[0]);
    });

    let n = reloads.load(Ordering::Relaxed);
    eprintln!("200 runs, 0 failures, {n} reloads during the runs");
    assert!(n >= 20, "the storm reloaded only {n} times");
    // Every container's runtime calls (create, start, kill, delete…) used one
    // generation, pinned at its start, even when reloads came in between.
    let log = std::fs::read_to_string(&calls).unwrap();
    let mut by_container: std::collections::HashMap<String, std::collections::HashSet<String>> = Default::default();
    for line in log.lines() {
        let mut words = line.split_whitespace();
        let gen = words.next().unwrap().to_string();
        let words: Vec<&str> = words.collect();
        // The container id is the last 64-hex word of create/start/delete calls.
        if let Some(id) = words.iter().rev().find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit())) {
            by_container.entry(id.to_string()).or_default().insert(gen);
        }
    }
    assert!(by_container.len() >= 200, "saw {} containers in the runtime log", by_container.len());
    let mixed: Vec<_> = by_container.iter().filter(|(_, g)| g.len() > 1).collect();
    assert!(mixed.is_empty(), "containers whose runtime calls used several generations: {mixed:?}");
    // Nothing is left behind: no container, and only the current wrapper.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}
