//! 8 threads resolve runtimes in a loop while one thread reloads 1,000 times
//! between configs that change args, paths and the default, and another runs
//! wrapper GC: no lookup ever sees a mixed snapshot or a missing or altered
//! wrapper.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use berth_config::{ConfigStore, RuntimeDef};
use common::Env;

/// Config number `k`: 66 distinct variants (so probes are mostly cached),
/// each changing args, the path and the default relative to the previous one.
fn variant(k: u64) -> String {
    let k = k % 66;
    let path = if k.is_multiple_of(2) { "/bin/true" } else { "/bin/echo" };
    format!(
        r#"{{"default-runtime":"alt{d}","runtimes":{{
            "marker":{{"path":"/bin/true","runtimeArgs":["variant-{k}"]}},
            "alt{d}":{{"path":"{path}","runtimeArgs":["v","{a}"]}},
            "stable":{{"path":"/bin/true","runtimeArgs":["same"]}}}}}}"#,
        d = k % 3,
        a = k % 7,
    )
}

#[test]
fn readers_never_see_a_mixed_snapshot_or_missing_wrapper() {
    let env = Env::new();
    env.write(&variant(0));
    let store = Arc::new(ConfigStore::open(env.flags()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (store, stop, lookups) = (store.clone(), stop.clone(), lookups.clone());
            std::thread::spawn(move || {
                let mut last_gen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let s = store.snapshot();
                    assert!(s.generation >= last_gen, "generations never go back");
                    last_gen = s.generation;
                    // Config and table agree: one snapshot, one variant.
                    assert_eq!(s.config.default_runtime, s.runtimes.default);
                    let Some(RuntimeDef::Path { args, .. }) = &s.config.runtimes["marker"].def.clone().into() else { panic!() };
                    let marker = s.get("marker").unwrap();
                    assert_eq!(&marker.args, args, "table and config from different generations");
                    let k: u64 = args[0].trim_start_matches("variant-").parse().unwrap();
                    assert!(k < 66);
                    assert_eq!(s.runtimes.default, format!("alt{}", k % 3));
                    for name in ["", "marker", "stable"] {
                        let r = s.get(name).unwrap();
                        let w = r.wrapper.as_ref().unwrap();
                        // While the snapshot is held its wrappers exist, unaltered.
                        assert!(w.content_matches().unwrap(), "wrapper {} altered or missing", w.path.display());
                    }
                    lookups.fetch_add(1, Ordering::Relaxed);
                    drop(s);
                    // Leave the reloading thread some CPU on small machines.
                    std::thread::yield_now();
                }
            })
        })
        .collect();

    let gc = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut removed = 0;
            while !stop.load(Ordering::Relaxed) {
                removed += store.gc_wrappers(|| Some(Vec::new())).unwrap().removed.len();
            }
            removed
        })
    };

    for k in 1..=1000 {
        env.write(&variant(k));
        let r = store.reload(false).unwrap();
        assert_eq!(r.generation, k + 1);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader saw an inconsistency");
    }
    let removed = gc.join().unwrap();
    let n = lookups.load(Ordering::Relaxed);
    eprintln!("{n} consistent lookups, {removed} wrappers garbage-collected during 1000 reloads");
    assert!(n > 0 && removed > 0, "the test exercised lookups ({n}) and GC ({removed})");
    // After everything: only live wrappers remain.
    store.gc_wrappers(|| Some(Vec::new())).unwrap();
    let left = std::fs::read_dir(env.wrapper_dir()).unwrap().count();
    assert_eq!(left, 3, "current snapshot's 3 wrappers");
}
