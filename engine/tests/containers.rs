//! The engine against a real containerd: runs, exit codes, logs, runtimes
//! through wrappers, reloads under running containers, concurrency, and bad
//! input that must leave nothing behind.

mod common;

use std::time::Duration;

use berth_engine::containers::wait::WaitCondition;
use berth_engine::EngineError;
use common::TestEngine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_logs_and_exit_codes() {
    let t = TestEngine::start("{}").await;
    let (id, code) = t.run(t.request(&["echo", "hello"])).await;
    assert_eq!(code, 0);
    assert_eq!(t.logs(&id).await, "hello\n");
    let rec = t.engine.containers.get(&id).unwrap();
    assert!(!rec.state.running);
    assert_eq!(rec.host_config.runtime, "runc", "runtime defaulted and persisted");
    let pinned = rec.pinned_runtime.as_ref().unwrap();
    assert_eq!((pinned.name.as_str(), pinned.generation), ("runc", 1));

    let (_, code) = t.run(t.request(&["sh", "-c", "echo out; echo err >&2; exit 3"])).await;
    assert_eq!(code, 3);

    // A missing command: start fails with 127, recorded in the record.
    let rec = t.engine.containers.create(t.request(&["/nonexistent"])).await.unwrap();
    let err = t.engine.containers.start(&rec.id).await.unwrap_err();
    assert!(matches!(&err, EngineError::Start { exit_code: 127, .. }), "{err:?}");
    assert!(err.to_string().contains("no such file or directory") || err.to_string().contains("executable file not found"), "{err}");
    assert_eq!(t.engine.containers.get(&rec.id).unwrap().state.exit_code, 127);
    // Restarting an exited container reuses its filesystem.
    let mut req = t.request(&["sh", "-c", "echo x >> /tmp/count; wc -l < /tmp/count"]);
    req.name = Some("again".into());
    let (id, _) = t.run(req).await;
    let wait = t.engine.containers.waiter(&id, WaitCondition::NextExit).unwrap();
    t.engine.containers.start(&id).await.unwrap();
    assert_eq!(wait.await, 0);
    assert_eq!(t.logs(&id).await, "1\n2\n");
    // A runtime redefined by a reload applies at the next start, and the
    // container keeps its files (containerd's record is re-created around
    // the same snapshot).
    let rt = t.script("runc-v2", "exec runc \"$@\"");
    t.write_config(&format!(r#"{{"runtimes":{{"alt":{{"path":"{}"}}}},"default-runtime":"alt"}}"#, rt.display()));
    t.engine.runtimes.reload(false).await.unwrap();
    let mut req = t.request(&["sh", "-c", "echo y >> /tmp/count; wc -l < /tmp/count"]);
    req.host_config.runtime = "alt".into();
    let (id2, _) = t.run(req).await;
    t.write_config(&format!(r#"{{"runtimes":{{"alt":{{"path":"{}","runtimeArgs":["--debug"]}}}}}}"#, rt.display()));
    t.engine.runtimes.reload(false).await.unwrap();
    let wait = t.engine.containers.waiter(&id2, WaitCondition::NextExit).unwrap();
    t.engine.containers.start(&id2).await.unwrap();
    assert_eq!(wait.await, 0);
    assert_eq!(t.logs(&id2).await, "1\n2\n");
    let pinned = t.engine.containers.get(&id2).unwrap().pinned_runtime.clone().unwrap();
    assert_eq!((pinned.generation, pinned.args.clone()), (3, vec!["--debug".to_string()]));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_runtime_with_args_runs_through_its_wrapper_and_survives_removal() {
    let t = TestEngine::start("{}").await;
    let log = t.path("calls.log");
    let rt = t.script("runc-logger", &format!("echo \"$@\" >> {}\nexec runc \"$@\"", log.display()));
    t.write_config(&format!(r#"{{"runtimes":{{"logged":{{"path":"{}","runtimeArgs":["--debug"]}}}}}}"#, rt.display()));
    t.engine.runtimes.reload(false).await.unwrap();

    let mut req = t.request(&["sleep", "300"]);
    req.host_config.runtime = "logged".into();
    let rec = t.engine.containers.create(req).await.unwrap();
    t.engine.containers.start(&rec.id).await.unwrap();
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.lines().any(|l| l.starts_with("--debug ") && l.contains(" create ")), "{calls}");
    let pinned = t.engine.containers.get(&rec.id).unwrap().pinned_runtime.clone().unwrap();
    let wrapper = std::path::PathBuf::from(pinned.wrapper.clone().unwrap());
    assert_eq!(pinned.args, vec!["--debug"]);
    assert_eq!(pinned.binary.as_deref(), Some(rt.to_str().unwrap()));
    assert!(wrapper.exists());

    // Reload removes the runtime; GC keeps the wrapper the container pins.
    t.write_config("{}");
    let report = t.engine.runtimes.reload(false).await.unwrap();
    assert_eq!(report.removed, vec!["logged"]);
    t.engine.runtimes.collect_now().await;
    assert!(wrapper.exists(), "a wrapper pinned by a container is never collected");

    // New containers with the removed name are refused at create.
    let mut req = t.request(&["true"]);
    req.host_config.runtime = "logged".into();
    let err = t.engine.containers.create(req).await.unwrap_err();
    assert!(err.to_string().starts_with("unknown or invalid runtime name: logged"), "{err}");

    // The running one keeps working: exec, stop, rm.
    let exec_id = t.engine.execs.create(&rec.id, berth_engine::exec::ExecConfig { cmd: vec!["sh".into(), "-c".into(), "echo via-exec; exit 4".into()], attach_stdout: true, ..Default::default() }).unwrap();
    let mut streams = t.engine.execs.start(&exec_id).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = streams.output.recv().await {
        if let berth_engine::containers::hub::Chunk::Stdout(b) = c {
            out.extend_from_slice(&b);
        }
    }
    let code = streams.exit.wait_for(|e| e.is_some()).await.unwrap().unwrap();
    assert_eq!((String::from_utf8_lossy(&out).as_ref(), code), ("via-exec\n", 4));
    assert_eq!(t.engine.execs.inspect(&exec_id).unwrap().exit_code, Some(4));
    t.engine.containers.stop(&rec.id, Some(1)).await.unwrap();
    assert_eq!(t.engine.containers.get(&rec.id).unwrap().state.exit_code, 137, "busybox sleep ignores SIGTERM as PID 1");
    t.engine.containers.remove(&rec.id, false).await.unwrap();
    assert!(matches!(t.engine.containers.get(&rec.id), Err(EngineError::NotFound(_))));
    // Now nothing pins it: the next GC removes it.
    assert_eq!(t.engine.runtimes.collect_now().await, 1);
    assert!(!wrapper.exists());
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_containers() {
    let t = TestEngine::start("{}").await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let engine = t.engine.clone();
        let req = t.request(&["sh", "-c", &format!("echo n{i}")]);
        handles.push(tokio::spawn(async move {
            let rec = engine.containers.create(req).await.unwrap();
            let wait = engine.containers.waiter(&rec.id, WaitCondition::NextExit).unwrap();
            engine.containers.start(&rec.id).await.unwrap();
            (rec.id.clone(), tokio::time::timeout(Duration::from_secs(120), wait).await.unwrap())
        }));
    }
    let mut ok = 0;
    for (i, h) in handles.into_iter().enumerate() {
        let (id, code) = h.await.unwrap();
        assert_eq!(code, 0);
        assert_eq!(t.logs(&id).await, format!("n{i}\n"));
        ok += 1;
    }
    assert_eq!(ok, 50);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_leaves_nothing_behind() {
    let t = TestEngine::start("{}").await;
    let c = &t.engine.containers;
    let mut req = t.request(&["true"]);
    req.image = "nosuch:v9".into();
    assert_eq!(c.create(req).await.unwrap_err(), EngineError::NotFound("No such image: nosuch:v9".into()));
    let mut req = t.request(&["true"]);
    req.host_config.runtime = "nope".into();
    assert!(matches!(c.create(req).await.unwrap_err(), EngineError::UnknownRuntime(m) if m.contains("unknown or invalid runtime name: nope")));
    let mut req = t.request(&["true"]);
    req.host_config.binds = vec!["/nonexistent-src:/x".into()];
    assert!(c.create(req).await.unwrap_err().to_string().contains("bind source path does not exist"));
    let mut req = t.request(&["true"]);
    req.config.cmd = None;
    req.config.entrypoint = Some(vec![]);
    // bb has Cmd sh; an explicit empty entrypoint with no cmd has nothing to run.
    assert_eq!(c.create(req).await.unwrap_err(), EngineError::InvalidParameter("No command specified".into()));
    assert_eq!(c.list().len(), 0, "no record was created");
    assert_eq!(t.engine.containers.store().len(), 0);

    let mut req = t.request(&["sleep", "300"]);
    req.name = Some("dup".into());
    let rec = c.create(req.clone()).await.unwrap();
    assert!(matches!(c.create(req).await.unwrap_err(), EngineError::Conflict(m) if m.contains("is already in use")));
    c.start(&rec.id).await.unwrap();
    assert_eq!(c.start("dup").await.unwrap_err(), EngineError::NotModified);
    assert!(matches!(c.remove("dup", false).await.unwrap_err(), EngineError::Conflict(m) if m.contains("You cannot remove a running container")));
    c.remove("dup", true).await.unwrap();
    assert!(matches!(c.stop("dup", None).await.unwrap_err(), EngineError::NotFound(m) if m == "No such container: dup"));
    assert!(matches!(c.kill(&rec.id, "KILL").await.unwrap_err(), EngineError::NotFound(_)));
    // No containerd container, task or FIFO left.
    assert!(t.engine.containers.list().is_empty());
    let fifo = t.path("exec/fifo").join(&rec.id);
    assert!(!fifo.exists());
    t.shutdown().await;
}
