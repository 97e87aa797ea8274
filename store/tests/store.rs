//! Integration tests of the container store: concurrency, lookups, crash
//! leftovers, corrupt records, persistence, and a full disk.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use berth_store::record::ContainerStatus;
use berth_store::{
    ContainerConfig, ContainerRecord, HostConfig, Mount, MountKind, NewContainer, PinnedRuntime, RestartPolicy, Store,
    StoreError,
};

fn named(name: &str) -> NewContainer {
    NewContainer { name: Some(name.to_owned()), image: "busybox".into(), ..Default::default() }
}

fn new_with_id(prefix: &str, name: &str) -> NewContainer {
    let id = format!("{prefix}{}", &berth_store::generate_id()[prefix.len()..]);
    NewContainer { id: Some(id), ..named(name) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_name_have_one_winner() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    for round in 0..5 {
        let name = format!("race{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (store, barrier, name) = (store.clone(), barrier.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                tokio::task::spawn_blocking(move || store.create(named(&name))).await.unwrap()
            }));
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(rec) => winners.push(rec),
                Err(StoreError::NameConflict { name: n, existing_id }) => {
                    assert_eq!(n, name);
                    losers.push(existing_id);
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create wins");
        assert_eq!(losers.len(), 7);
        assert!(losers.iter().all(|id| *id == winners[0].id), "losers name the winner");
        assert_eq!(store.resolve(&name).unwrap().id, winners[0].id);
    }
    assert_eq!(store.len(), 5);
    // Exactly five container directories on disk (plus the lock file).
    let dirs = fs::read_dir(d.path().join("containers")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
    assert_eq!(dirs, 5);
}

#[test]
fn prefix_lookup_including_ambiguous() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    let a = store.create(new_with_id("abc1", "alpha")).unwrap();
    let b = store.create(new_with_id("abc2", "beta")).unwrap();
    assert_eq!(store.resolve("abc1").unwrap().id, a.id);
    assert_eq!(store.resolve("abc2").unwrap().id, b.id);
    assert_eq!(store.resolve(&a.id[..12]).unwrap().id, a.id);
    assert_eq!(store.resolve(&b.id).unwrap().name, "beta");
    assert_eq!(store.resolve("/alpha").unwrap().id, a.id);
    let e = store.resolve("abc").unwrap_err();
    assert!(matches!(e, StoreError::AmbiguousPrefix(ref p) if p == "abc"), "{e}");
    assert!(e.to_string().starts_with("multiple containers match prefix abc"), "{e}");
    let e = store.resolve("abd").unwrap_err();
    assert_eq!(e.to_string(), "No such container: abd");
}

#[test]
fn list_is_newest_first() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    for n in ["c1", "c2", "c3"] {
        store.create(named(n)).unwrap();
    }
    let names: Vec<_> = store.list().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["c3", "c2", "c1"]);
}

/// A record with every field set to a non-default value.
fn full_record_update(r: &mut ContainerRecord) {
    r.image_digest = Some("sha256:dig".into());
    r.config = ContainerConfig {
        cmd: Some(vec!["sh".into(), "-c".into(), "echo 'hi there'".into()]),
        entrypoint: Some(vec![]),
        env: vec!["A=1".into(), "B=two words".into()],
        working_dir: "/w".into(),
        user: "1000:1000".into(),
        tty: true,
        open_stdin: true,
        stdin_once: true,
        attach_stdin: true,
        attach_stdout: true,
        attach_stderr: true,
        labels: [("com.example/x".to_owned(), "y".to_owned())].into_iter().collect(),
        stop_signal: Some("SIGINT".into()),
        stop_timeout: Some(3),
        hostname: "box".into(),
        healthcheck: Some(berth_store::Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 1_000_000_000,
            timeout: 2_000_000_000,
            start_period: 3_000_000_000,
            retries: 4,
        }),
    };
    r.host_config = HostConfig {
        runtime: "crun".into(),
        binds: vec!["/a:/b:ro".into()],
        mounts: vec![Mount { kind: MountKind::Bind, source: "/src".into(), target: "/dst".into(), read_only: true }],
        network_mode: "host".into(),
        auto_remove: true,
        restart_policy: RestartPolicy { name: "on-failure".into(), maximum_retry_count: 4 },
        memory: 1 << 30,
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        pids_limit: Some(100),
        nano_cpus: 0,
        privileged: true,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["ALL".into()],
        security_opt: vec!["no-new-privileges".into()],
        readonly_rootfs: true,
        devices: vec![berth_store::DeviceMapping { path_on_host: "/dev/fuse".into(), path_in_container: String::new(), cgroup_permissions: "rwm".into() }],
        device_cgroup_rules: vec!["c 1:3 r".into()],
        group_add: vec!["audio".into()],
        tmpfs: [("/t".to_owned(), "size=3m".to_owned())].into_iter().collect(),
        pid_mode: "host".into(),
        ipc_mode: "shareable".into(),
        uts_mode: "host".into(),
        cgroupns_mode: "private".into(),
        shm_size: 1 << 20,
        sysctls: [("net.ipv4.ip_forward".to_owned(), "1".to_owned())].into_iter().collect(),
        ulimits: vec![berth_store::Ulimit { name: "nofile".into(), soft: 10, hard: 20 }],
        oom_kill_disable: Some(true),
        memory_swap: 2 << 30,
        memory_swappiness: Some(40),
        memory_reservation: 1 << 29,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: "0".into(),
        cpu_realtime_period: 1000,
        cpu_realtime_runtime: 500,
        isolation: "default".into(),
        init: Some(true),
    };
    r.state.status = ContainerStatus::Exited;
    r.state.running = false;
    r.state.paused = false;
    r.state.pid = 4242;
    r.state.exit_code = 137;
    r.state.error = "killed".into();
    r.state.started_at = "2026-11-29T04:19:37.483365888Z".into();
    r.state.finished_at = "2026-11-29T04:20:37.000000001Z".into();
    r.state.oom_killed = true;
    r.state.restart_count = 2;
    r.pinned_runtime = Some(PinnedRuntime {
        name: "crun".into(),
        generation: 7,
        shim: "io.containerd.runc.v2".into(),
        binary: Some("/usr/bin/crun".into()),
        args: vec!["--debug".into()],
        wrapper: Some("/run/berth/runtimes/crun.abc".into()),
        wrapper_digest: Some("abc".into()),
        options: serde_json::json!({"BinaryName": "/run/berth/runtimes/crun.abc", "SystemdCgroup": true, "n": 3}),
    });
}

#[test]
fn records_persist_across_reopen() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    let a = store.create(NewContainer { image_id: "sha256:img".into(), ..named("keep") }).unwrap();
    let a = store.update(&a.id, full_record_update).unwrap();
    let b = store.create(named("other")).unwrap();
    let b = store.rename(&b.id, "renamed").unwrap();
    let gone = store.create(named("gone")).unwrap();
    store.remove(&gone.id).unwrap();
    drop(store);

    let (store, report) = Store::open(d.path()).unwrap();
    assert_eq!(report.loaded, 2);
    assert!(report.corrupt.is_empty() && report.cleaned.is_empty());
    assert_eq!(*store.get(&a.id).unwrap(), *a, "every field round-trips");
    assert_eq!(*store.resolve("renamed").unwrap(), *b);
    assert!(store.resolve("other").is_err());
    assert!(store.resolve("gone").is_err());
    // The names are still reserved after reopen.
    assert!(matches!(store.create(named("keep")), Err(StoreError::NameConflict { .. })));
}

#[test]
fn crash_leftovers_are_cleaned_and_valid_records_load() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    let a = store.create(named("survivor")).unwrap();
    let a = store.update(&a.id, |r| r.state.exit_code = 9).unwrap();
    let b = store.create(named("halfremoved")).unwrap();
    drop(store);

    let cdir = d.path().join("containers");
    // A crash in the middle of an update: a temp file beside the record,
    // with half of a new record in it.
    fs::write(cdir.join(&a.id).join(".config.json.tmp-0a1b2c"), b"{\"id\":\"tru").unwrap();
    // A crash in the middle of a removal: the directory was renamed and
    // partly deleted.
    fs::rename(cdir.join(&b.id), cdir.join(format!(".removing-{}", b.id))).unwrap();
    fs::remove_file(cdir.join(format!(".removing-{}", b.id)).join("config.json")).unwrap();
    // A crash in the middle of a create (never acknowledged).
    let c = berth_store::generate_id();
    fs::create_dir(cdir.join(format!(".creating-{c}"))).unwrap();
    fs::write(cdir.join(format!(".creating-{c}")).join("config.json"), b"{").unwrap();

    let (store, report) = Store::open(d.path()).unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.cleaned.len(), 3, "{:?}", report.cleaned);
    assert!(report.corrupt.is_empty());
    assert_eq!(*store.get(&a.id).unwrap(), *a);
    assert!(store.get(&b.id).is_none());
    let mut left: Vec<_> = fs::read_dir(&cdir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, vec![".store.lock".to_owned(), a.id.clone()]);
    assert_eq!(fs::read_dir(cdir.join(&a.id)).unwrap().count(), 1, "only config.json remains");
    // The removed container's name is free.
    store.create(named("halfremoved")).unwrap();
}

#[test]
fn corrupt_record_is_moved_aside_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    let good = store.create(named("good")).unwrap();
    let bad = store.create(named("bad")).unwrap();
    let wrong = store.create(named("wrong")).unwrap();
    drop(store);
    let cdir = d.path().join("containers");
    fs::write(cdir.join(&bad.id).join("config.json"), b"{\"id\": \"not json at all").unwrap();
    fs::write(cdir.join(&bad.id).join(format!("{}-json.log", bad.id)), b"precious\n").unwrap();
    // A record whose id does not match its directory.
    let text = fs::read_to_string(cdir.join(&wrong.id).join("config.json")).unwrap();
    fs::write(cdir.join(&wrong.id).join("config.json"), text.replace(&wrong.id, &good.id)).unwrap();

    let (store, report) = Store::open(d.path()).unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.corrupt.len(), 2);
    let c = report.corrupt.iter().find(|c| c.id == bad.id).unwrap();
    assert!(c.reason.contains("not a valid container record"), "{}", c.reason);
    let moved = c.moved_to.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(moved.starts_with(&format!("{}.corrupt-", bad.id)), "{moved}");
    assert_eq!(fs::read(c.moved_to.join(format!("{}-json.log", bad.id))).unwrap(), b"precious\n", "nothing is lost");
    let w = report.corrupt.iter().find(|c| c.id == wrong.id).unwrap();
    assert!(w.reason.contains("holds the record of container"), "{}", w.reason);
    assert!(store.get(&good.id).is_some());
    assert!(store.resolve("bad").is_err());
    drop(store);

    // A later open loads the same and lists the quarantined records.
    let (_store, report) = Store::open(d.path()).unwrap();
    assert_eq!(report.loaded, 1);
    assert!(report.corrupt.is_empty());
    assert_eq!(report.previously_quarantined.len(), 2);
}

#[test]
fn record_from_a_newer_berth_is_left_in_place() {
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(d.path()).unwrap();
    let r = store.create(named("future")).unwrap();
    drop(store);
    let file = d.path().join("containers").join(&r.id).join("config.json");
    let text = fs::read_to_string(&file).unwrap().replace("\"version\": 1", "\"version\": 99");
    fs::write(&file, &text).unwrap();
    let (store, report) = Store::open(d.path()).unwrap();
    assert_eq!(report.unsupported.len(), 1);
    assert!(report.unsupported[0].reason.contains("upgrade berth"));
    assert!(store.is_empty());
    assert_eq!(fs::read_to_string(&file).unwrap(), text, "untouched");
}

/// Mounts a 512 KiB tmpfs on `dir`; unmounts on drop.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path) -> Result<Self, std::io::Error> {
        let out = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"]).arg(dir).output()?;
        if out.status.success() {
            Ok(Tmpfs(dir))
        } else {
            Err(std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()))
        }
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn full_disk_update_fails_cleanly_and_recovers() {
    let d = tempfile::tempdir().unwrap();
    let _mount = Tmpfs::mount(d.path()).unwrap_or_else(|e| panic!("mounting a tmpfs failed (the test needs root): {e}"));
    let root = d.path().join("data");
    let (store, _) = Store::open(&root).unwrap();
    let rec = store.create(named("tight")).unwrap();
    let rec = store.update(&rec.id, |r| r.state.exit_code = 1).unwrap();
    let file = store.container_dir(&rec.id).join("config.json");
    let on_disk_before = fs::read(&file).unwrap();

    // Fill the file system.
    let filler = d.path().join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(libc_enospc()), "{e}");
                break;
            }
        }
    }

    let e = store.update(&rec.id, |r| r.state.exit_code = 2).unwrap_err();
    assert!(matches!(e, StoreError::NoSpace { .. }), "{e}");
    let msg = e.to_string();
    assert_eq!(
        msg,
        format!("no space left on device while saving container {}: free space under {} and retry", rec.id, root.display())
    );
    assert_eq!(store.get(&rec.id).unwrap().state.exit_code, 1, "memory unchanged");
    assert_eq!(fs::read(&file).unwrap(), on_disk_before, "disk unchanged");
    assert_eq!(fs::read_dir(store.container_dir(&rec.id)).unwrap().count(), 1, "no temp file left");
    // Creating fails cleanly too, and leaves nothing behind.
    let e = store.create(named("nospace")).unwrap_err();
    assert!(matches!(e, StoreError::NoSpace { .. }), "{e}");
    assert!(store.resolve("nospace").is_err());

    fs::remove_file(&filler).unwrap();
    let after = store.update(&rec.id, |r| r.state.exit_code = 2).unwrap();
    assert_eq!(after.state.exit_code, 2);
    store.create(named("nospace")).unwrap();
    drop(store);
    let (store, report) = Store::open(&root).unwrap();
    assert_eq!(report.loaded, 2);
    assert!(report.cleaned.is_empty());
    assert_eq!(store.resolve("tight").unwrap().state.exit_code, 2);
}

fn libc_enospc() -> i32 {
    28
}

/// Child side of [`kill_9_loses_nothing_acknowledged`]: runs only when the
/// parent sets the variable; updates, creates and removes in a loop and
/// prints an acknowledgement after each completed call.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var("BERTH_STORE_CRASH_CHILD") else { return };
    use std::io::Write;
    let (store, _) = Store::open(&root).unwrap();
    let victim = match store.resolve("victim") {
        Ok(r) => r,
        Err(_) => store.create(named("victim")).unwrap(),
    };
    let mut out = std::io::stdout().lock();
    for n in victim.state.exit_code + 1.. {
        store.update(&victim.id, |r| r.state.exit_code = n).unwrap();
        writeln!(out, "ack update {n}").unwrap();
        let t = store.create(named(&format!("tmp{n}"))).unwrap();
        writeln!(out, "ack create tmp{n}").unwrap();
        if n % 2 == 0 {
            store.remove(&t.id).unwrap();
            writeln!(out, "ack remove tmp{n}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("data");
    for round in 0..4u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("BERTH_STORE_CRASH_CHILD", &root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acks = Vec::new();
        // Kill after a varying number of acknowledgements, at whatever
        // point the child is in by then.
        let kill_after = 20 + round * 37;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(ack) = line.strip_prefix("ack ") {
                acks.push(ack.to_owned());
                if acks.len() as u64 >= kill_after {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(!acks.is_empty(), "the child ran");

        let (store, report) = Store::open(&root).unwrap();
        assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
        let victim = store.resolve("victim").unwrap();
        for ack in &acks {
            let mut words = ack.split(' ');
            match (words.next().unwrap(), words.next().unwrap()) {
                ("update", n) => assert!(victim.state.exit_code >= n.parse::<i64>().unwrap(), "lost update {n}"),
                ("create", name) => {
                    let n: i64 = name[3..].parse().unwrap();
                    let exists = store.resolve(name).is_ok();
                    if acks.contains(&format!("remove {name}")) {
                        assert!(!exists, "{name} came back");
                    } else if n % 2 != 0 {
                        assert!(exists, "lost create of {name}");
                    } // else: killed during its removal; either outcome is whole.
                }
                ("remove", _) => {} // checked with its create
                other => panic!("unexpected ack {other:?}"),
            }
        }
        // Containers never acknowledged may exist only if their create
        // completed just before the kill; all that loaded are whole records.
        for rec in store.list() {
            assert!(berth_store::is_valid_id(&rec.id) && !rec.name.is_empty());
        }
        // Clean up the temporaries for the next round (odd ones remain).
        for rec in store.list() {
            if rec.name != "victim" {
                store.remove(&rec.id).unwrap();
            }
        }
    }
}
