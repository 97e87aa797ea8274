//! Containers and tasks: output, exit codes, kill, custom runtime binary,
//! exec, pause/resume/pids, events, runtime errors.

mod common;

use std::time::Duration;

use berth_containerd::{events, Event, FifoSet, RuncOptions, RuntimeFailure, ShimRuntime, TaskStatus};
use common::{test_process, TestEnv};

#[tokio::test]
async fn echo_hello_through_fifos() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let (status, out, err) = env.run("hello", &image, &["echo", "hello"], env.runtime()).await;
    assert_eq!(status.code, 0);
    assert_eq!(out, "hello\n");
    assert_eq!(err, "");
    env.shutdown().await;
}

#[tokio::test]
async fn exit_code_propagates() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let (status, _, err) = env.run("exit3", &image, &["sh", "-c", "echo oops >&2; exit 3"], env.runtime()).await;
    assert_eq!(status.code, 3);
    assert_eq!(err, "oops\n");
    env.shutdown().await;
}

#[tokio::test]
async fn sigkill_gives_137_and_pause_resume_pids_work() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let id = "sleeper";
    let mounts = env.create_container(id, &image, &["sleep", "100"], env.runtime()).await;
    env.tasks.create(id, &Default::default(), mounts).await.unwrap();
    let wait = tokio::spawn(env.tasks.wait(id));
    let pid = env.tasks.start(id).await.unwrap();
    assert!(pid > 0);
    assert_eq!(env.tasks.pids(id).await.unwrap(), vec![pid]);
    env.tasks.pause(id).await.unwrap();
    assert_eq!(env.tasks.get(id, "").await.unwrap().status, TaskStatus::Paused);
    env.tasks.resume(id).await.unwrap();
    assert_eq!(env.tasks.get(id, "").await.unwrap().status, TaskStatus::Running);
    assert_eq!(env.tasks.list().await.unwrap().len(), 1);
    env.tasks.kill(id, libc::SIGKILL as u32, true).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), wait).await.unwrap().unwrap().unwrap();
    assert_eq!(status.code, 137);
    assert!(status.exited_at.is_some());
    assert_eq!(env.tasks.delete(id).await.unwrap().code, 137);
    env.containers.delete(id).await.unwrap();
    // Deleting again is fine.
    env.containers.delete(id).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn custom_runtime_binary_is_used() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let log = env.path("wrapper.log");
    let wrapper = env.path("runc-wrapper");
    std::fs::write(&wrapper, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), berth_test_support::runc().display())).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let opts = RuncOptions { binary_name: wrapper.to_string_lossy().into_owned(), ..env.runc_options() };
    let runtime = ShimRuntime::runc(&opts);
    let (status, out, _) = env.run("wrapped", &image, &["echo", "via-wrapper"], runtime).await;
    assert_eq!(status.code, 0);
    assert_eq!(out, "via-wrapper\n");
    let calls = std::fs::read_to_string(&log).expect("wrapper log exists");
    assert!(calls.contains("create"), "{calls}");
    assert!(calls.contains(&env.path("runc-root").to_string_lossy().into_owned()), "runc root option used: {calls}");
    env.shutdown().await;
}

#[tokio::test]
async fn exec_second_process() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let id = "execd";
    let mounts = env.create_container(id, &image, &["sleep", "100"], env.runtime()).await;
    env.tasks.create(id, &Default::default(), mounts).await.unwrap();
    let wait = tokio::spawn(env.tasks.wait(id));
    env.tasks.start(id).await.unwrap();

    let fifos = FifoSet::create(env.path("io/exec1"), true, true, true).unwrap();
    let mut open = fifos.open().unwrap();
    let process = test_process(&["sh", "-c", "read line; echo got-$line; echo to-err >&2; exit 5"]);
    let (out, err) = open.collect_output();
    env.tasks.exec(id, "exec1", &process, &fifos.task_io(false)).await.unwrap();
    let exec_wait = tokio::spawn(env.tasks.wait_process(id, "exec1"));
    // The shim opens an exec's FIFOs when it starts it: release after Start.
    let started = env.tasks.start_process(id, "exec1").await;
    open.release();
    started.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = open.stdin.take().unwrap();
        stdin.write_all(b"ping\n").await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(20), exec_wait).await.unwrap().unwrap().unwrap();
    assert_eq!(status.code, 5);
    assert_eq!(env.tasks.delete_process(id, "exec1").await.unwrap().code, 5);
    assert_eq!(String::from_utf8(out.unwrap().await.unwrap()).unwrap(), "got-ping\n");
    assert_eq!(String::from_utf8(err.unwrap().await.unwrap()).unwrap(), "to-err\n");
    fifos.remove().unwrap();

    env.tasks.kill(id, libc::SIGKILL as u32, true).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), wait).await.unwrap().unwrap().unwrap();
    env.tasks.delete(id).await.unwrap();
    env.containers.delete(id).await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn events_report_task_exit() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let mut stream = events::subscribe(&env.client, &[r#"topic~="/tasks/""#]).await.unwrap();
    let (status, _, _) = env.run("evented", &image, &["sh", "-c", "exit 7"], env.runtime()).await;
    assert_eq!(status.code, 7);
    let mut seen_start = false;
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = stream.next().await {
            let env_ = item.unwrap();
            assert!(env_.topic.starts_with("/tasks/"), "{env_:?}");
            match env_.event {
                Event::TaskStart { ref container_id, .. } if container_id == "evented" => seen_start = true,
                Event::TaskExit { ref container_id, exit_status, .. } if container_id == "evented" => return exit_status,
                _ => {}
            }
        }
        panic!("event stream ended");
    })
    .await
    .expect("TaskExit seen");
    assert_eq!(found, 7);
    assert!(seen_start);
    env.shutdown().await;
}

#[tokio::test]
async fn missing_executable_is_a_runtime_error() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let id = "missing";
    let mounts = env.create_container(id, &image, &["/no/such/binary"], env.runtime()).await;
    let fifos = FifoSet::create(env.path("io/missing"), false, true, true).unwrap();
    let mut open = fifos.open().unwrap();
    let created = env.tasks.create(id, &fifos.task_io(false), mounts).await;
    open.release();
    let (out, _err) = open.collect_output();
    let err = match created {
        Err(e) => e,
        Ok(_) => {
            // Some runtimes only fail at start.
            let e = env.tasks.start(id).await.unwrap_err();
            let _ = env.tasks.delete(id).await;
            e
        }
    };
    assert_eq!(err.runtime_failure(), Some(RuntimeFailure::NotFound), "{err:?}");
    assert_eq!(RuntimeFailure::NotFound.exit_code(), 127);
    // The reader is not stuck.
    tokio::time::timeout(Duration::from_secs(5), out.unwrap()).await.expect("reader unblocked").unwrap();
    env.containers.delete(id).await.unwrap();
    // The container is gone, and so is its snapshot.
    assert!(env.containers.get(id).await.unwrap_err().is_not_found());
    fifos.remove().unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn terminal_task_and_resize() {
    use berth_containerd::NewContainer;
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let id = "tty";
    let mut spec = common::test_spec(&env.namespace, id, &["sh", "-c", "sleep 1; echo in-tty; exit 4"]);
    let mut process = spec.process().clone().unwrap();
    process.set_terminal(Some(true));
    spec.set_process(Some(process));
    let mounts = env
        .containers
        .create(NewContainer {
            id: id.into(),
            image: image.names[0].clone(),
            spec,
            runtime: env.runtime(),
            labels: Default::default(),
            rootfs: berth_containerd::Rootfs::Snapshot {
                snapshotter: env.images.snapshotter().into(),
                parent: image.chain_id.clone().unwrap(),
            },
        })
        .await
        .unwrap();
    let fifos = FifoSet::create(env.path("io/tty"), false, true, false).unwrap();
    let mut open = fifos.open().unwrap();
    let (out, _) = open.collect_output();
    let created = env.tasks.create(id, &fifos.task_io(true), mounts).await;
    open.release();
    created.unwrap();
    let wait = tokio::spawn(env.tasks.wait(id));
    env.tasks.start(id).await.unwrap();
    env.tasks.resize_pty(id, "", 100, 40).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), wait).await.unwrap().unwrap().unwrap();
    assert_eq!(status.code, 4);
    env.tasks.delete(id).await.unwrap();
    let out = String::from_utf8(out.unwrap().await.unwrap()).unwrap();
    assert_eq!(out, "in-tty\r\n");
    env.containers.delete(id).await.unwrap();
    fifos.remove().unwrap();
    env.shutdown().await;
}
