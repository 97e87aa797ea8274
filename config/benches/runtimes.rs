//! Benchmarks of the runtime layer's hot paths (issue targets in brackets):
//! - reload of a config with 100 runtimes, wrappers on disk, probes cached [< 5 ms]
//! - reload where all 100 change (toggling between two configs, and to args
//!   never seen before), with the wrapper GC that follows each reload
//!
//! Wrappers live in the exec root, a tmpfs (`/run`) on a normal host; run with
//! `TMPDIR` on a tmpfs to measure that (on a disk file system, file creation
//! right after deletions dominates: see bench/README.md).
//! - snapshot load [< 50 ns]
//! - runtime lookup by name [< 200 ns]

use std::fmt::Write;

use berth_config::{ConfigStore, Flags};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn setup(n: usize) -> (tempfile::TempDir, ConfigStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut json = String::from(r#"{"runtimes":{"#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        // Half with args (a wrapper each), half plain paths.
        if i % 2 == 0 {
            write!(json, r#""rt{i}":{{"path":"/bin/true","runtimeArgs":["--flag={i}","x y"]}}"#).unwrap();
        } else {
            write!(json, r#""rt{i}":{{"path":"/bin/true"}}"#).unwrap();
        }
    }
    json.push_str("}}");
    std::fs::write(dir.path().join("daemon.json"), json).unwrap();
    let flags = Flags {
        config_file: Some(dir.path().join("daemon.json")),
        exec_root: Some(dir.path().join("exec")),
        data_root: Some(dir.path().join("data")),
        ..Flags::default()
    };
    let store = ConfigStore::open(flags).unwrap();
    (dir, store)
}

/// A config of `n` runtimes on runc-like `/bin/true`: variant 0 plain
/// paths, variant 1 the same names with runtimeArgs (so each has a wrapper).
fn variant(n: usize, v: usize) -> String {
    let mut json = String::from(r#"{"runtimes":{"#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        if v == 0 {
            write!(json, r#""rt{i}":{{"path":"/bin/true"}}"#).unwrap();
        } else {
            write!(json, r#""rt{i}":{{"path":"/bin/true","runtimeArgs":["--log-format","json"]}}"#).unwrap();
        }
    }
    json.push_str("}}");
    json
}

/// `n` runtimes whose args have never been seen before (`k` is new each
/// time): every reload writes `n` new wrappers.
fn fresh(n: usize, k: u64) -> String {
    let mut json = String::from(r#"{"runtimes":{"#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        write!(json, r#""rt{i}":{{"path":"/bin/true","runtimeArgs":["--log=/x/{k}"]}}"#).unwrap();
    }
    json.push_str("}}");
    json
}

fn benches(c: &mut Criterion) {
    // Every runtime gets new args on every reload: 100 new wrappers written,
    // the 100 old ones collected, as the daemon does.
    {
        let (dir, store) = setup(0);
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, fresh(100, 0)).unwrap();
        store.reload(false).unwrap();
        let mut k = 0;
        c.bench_function("reload_100_new_wrappers_with_gc", |b| {
            b.iter(|| {
                k += 1;
                std::fs::write(&file, fresh(100, k)).unwrap();
                let r = store.reload(false).unwrap();
                assert_eq!(r.changed.len(), 100);
                store.gc_wrappers(|| Some(Vec::new())).unwrap();
            })
        });
    }
    // Every runtime changes on every reload: toggles between two configs
    // (probes cached after the first two), and the wrappers nothing uses any
    // more are collected after each, as the daemon does.
    {
        let (dir, store) = setup(0);
        let cfgs = [variant(100, 0), variant(100, 1)];
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, &cfgs[0]).unwrap();
        store.reload(false).unwrap();
        let mut v = 0;
        c.bench_function("reload_100_changed_runtimes_with_gc", |b| {
            b.iter(|| {
                v ^= 1;
                std::fs::write(&file, &cfgs[v]).unwrap();
                let r = store.reload(false).unwrap();
                assert_eq!(r.changed.len(), 100);
                store.gc_wrappers(|| Some(Vec::new())).unwrap();
            })
        });
    }

    let (_dir, store) = setup(100);
    assert_eq!(store.snapshot().runtimes.runtimes.len(), 102);
    c.bench_function("reload_100_runtimes", |b| b.iter(|| store.reload(false).unwrap()));
    c.bench_function("snapshot_load", |b| b.iter(|| black_box(store.snapshot())));
    let snap = store.snapshot();
    c.bench_function("get_by_name", |b| b.iter(|| black_box(snap.get(black_box("rt42")).unwrap())));
    c.bench_function("get_default", |b| b.iter(|| black_box(snap.get(black_box("")).unwrap())));
}

criterion_group!(name = group; config = Criterion::default().sample_size(50); targets = benches);
criterion_main!(group);
