//! Exec records on a real containerd: an exec is inspectable right after it
//! exits, and many execs do not grow the exec table.

mod common;

use std::time::{Duration, Instant};

use berth_engine::exec::table::{EXITED_PER_CONTAINER, EXITED_RETENTION};
use berth_engine::exec::ExecConfig;
use common::TestEngine;

/// Runs `cmd` as an exec to its end; returns the exec id and exit code.
async fn exec(t: &TestEngine, container: &str, cmd: &str) -> (String, i64) {
    let execs = &t.engine.execs;
    let id = execs.create(container, ExecConfig { cmd: vec!["sh".into(), "-c".into(), cmd.into()], attach_stdout: true, ..Default::default() }).unwrap();
    let mut streams = execs.start(&id).await.unwrap();
    while streams.output.recv().await.is_some() {}
    let code = tokio::time::timeout(Duration::from_secs(30), streams.exit.wait_for(|e| e.is_some())).await.expect("exit in time").unwrap().unwrap();
    (id, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_are_collected_after_exit_yet_inspectable_right_after() {
    let t = TestEngine::start("{}").await;
    let c = &t.engine.containers;
    let rec = c.create(t.request(&["sleep", "1000"])).await.unwrap();
    c.start(&rec.id).await.unwrap();
    let execs = &t.engine.execs;

    let runs = EXITED_PER_CONTAINER + 16;
    for i in 0..runs {
        let (id, code) = exec(&t, &rec.id, &format!("exit {}", i % 7)).await;
        assert_eq!(code, (i % 7) as i64);
        let info = execs.inspect(&id).expect("inspectable right after exit");
        assert_eq!((info.running, info.exit_code), (false, Some((i % 7) as i64)));
    }
    assert!(execs.count() <= EXITED_PER_CONTAINER, "{runs} execs left {} records", execs.count());

    // A stopped container: its never-started execs go at the next
    // collection; exited ones stay inspectable until they expire.
    let (done, _) = exec(&t, &rec.id, "true").await;
    let pending = execs.create(&rec.id, ExecConfig { cmd: vec!["true".into()], ..Default::default() }).unwrap();
    c.stop(&rec.id, Some(0)).await.unwrap();
    assert!(!c.get(&rec.id).unwrap().state.running);
    execs.collect(Instant::now());
    assert!(execs.inspect(&pending).is_err(), "a created exec of a stopped container is collected");
    assert_eq!(execs.inspect(&done).unwrap().exit_code, Some(0));
    execs.collect(Instant::now() + EXITED_RETENTION);
    assert!(execs.inspect(&done).is_err(), "an old exit is collected");
    assert_eq!(execs.count(), 0);
    t.shutdown().await;
}
