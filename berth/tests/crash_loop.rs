//! Crash loop: rounds of create/start/stop/rm bursts and image imports,
//! berth SIGKILLed at a random moment in each, then restarted. After every
//! round: every acknowledged container exists, no record is corrupt, and
//! containerd agrees with the records (no orphan container, task or FIFO).

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Daemon;

const ROUNDS: usize = 20;

fn ctr(d: &Daemon, args: &[&str]) -> Vec<String> {
    let sock = d.path("exec/containerd/containerd.sock");
    let o = Command::new("ctr").arg("-a").arg(&sock).args(["-n", "berth"]).args(args).output().unwrap();
    assert!(o.status.success(), "ctr {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let mut d = Daemon::start("{}");
    d.import_busybox("bb");
    let tar = d.path("busybox.tar");
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let rm_tried: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut ops_total = 0usize;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = d.child.as_ref().unwrap().id() as i32;
        let ops = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|w| {
                    let (d, stop, acked, rm_tried, tar) = (&d, stop.clone(), acked.clone(), rm_tried.clone(), tar.clone());
                    s.spawn(move || {
                        let mut ops = 0;
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            i += 1;
                            let o = d.docker(&["create", "bb", "sh", "-c", "sleep 0.2"]);
                            ops += 1;
                            if !o.status.success() {
                                continue;
                            }
                            let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
                            acked.lock().unwrap().insert(id.clone());
                            d.docker(&["start", &id]);
                            if i % 2 == 0 {
                                d.docker(&["stop", "-t", "0", &id]);
                                rm_tried.lock().unwrap().insert(id.clone());
                                d.docker(&["rm", "-f", &id]);
                            }
                            if w == 0 && i % 5 == 0 {
                                d.docker(&["import", tar.to_str().unwrap(), &format!("round{round}:{i}")]);
                            }
                            ops += 3;
                        }
                        ops
                    })
                })
                .collect();
            // Kill berth at a pseudo-random moment of the burst. The wait is
            // what is tested (a kill at any point of the burst); the checks
            // after it hold for every moment, so it cannot make the test flaky.
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
            std::thread::sleep(Duration::from_millis(300 + (nanos % 1200) as u64));
            unsafe { common::libc_kill(pid, 9) };
            stop.store(true, Ordering::Relaxed);
            workers.into_iter().map(|w| w.join().unwrap()).sum::<usize>()
        });
        ops_total += ops;
        d.stop(9); // reap it
        d.spawn();

        // Every acknowledged create whose removal was never attempted exists.
        let present: HashSet<String> = d.ok(&["ps", "-aq", "--no-trunc"]).lines().map(str::to_owned).collect();
        for id in acked.lock().unwrap().difference(&rm_tried.lock().unwrap()) {
            assert!(present.contains(id), "round {round}: acknowledged container {id} is gone");
        }
        // No corrupt record was found at start-up.
        assert!(!d.log().contains("was corrupt"), "round {round}: a record was corrupt");
        // containerd agrees with the records (orphans were reconciled).
        let ctd: HashSet<String> = ctr(&d, &["containers", "ls", "-q"]).into_iter().collect();
        let orphans: Vec<_> = ctd.difference(&present).collect();
        assert!(orphans.is_empty(), "round {round}: containerd containers without a record: {orphans:?}");
        let running: HashSet<String> = d.ok(&["ps", "-q", "--no-trunc"]).lines().map(str::to_owned).collect();
        for line in ctr(&d, &["tasks", "ls"]).iter().skip(1) {
            let mut f = line.split_whitespace();
            let (id, status) = (f.next().unwrap_or(""), f.nth(1).unwrap_or(""));
            if status == "RUNNING" {
                assert!(running.contains(id), "round {round}: task {id} runs but its record does not say so");
            }
        }
        if let Ok(dirs) = std::fs::read_dir(d.path("exec/fifo")) {
            for e in dirs.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                assert!(running.contains(&id) || present.contains(&id), "round {round}: FIFO dir of unknown container {id}");
            }
        }
    }
    eprintln!("{ROUNDS} rounds, {ops_total} operations, 0 lost acknowledged containers");
    // Clean up everything; then nothing is left in containerd.
    let all = d.ok(&["ps", "-aq"]);
    let ids: Vec<&str> = all.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        d.ok(&args);
    }
    assert!(ctr(&d, &["containers", "ls", "-q"]).is_empty());
    assert!(ctr(&d, &["tasks", "ls", "-q"]).is_empty());
}
