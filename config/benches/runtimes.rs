//! Benchmarks of the runtime layer's hot paths (issue targets in brackets):
//! - reload of a config with 100 runtimes, wrappers on disk, probes cached [< 5 ms]
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

fn benches(c: &mut Criterion) {
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
