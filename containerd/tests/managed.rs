//! The managed containerd: start, version, typed start errors, supervised
//! restart after SIGKILL (shims survive).

mod common;

use std::time::Duration;

use berth_containerd::{Error, FifoSet, ManagedConfig, ManagedContainerd, TaskStatus};
use common::TestEnv;

#[tokio::test]
async fn version_answers() {
    let env = TestEnv::start().await;
    let v = env.client.version().await.expect("version");
    assert!(v.version.starts_with('1') || v.version.starts_with('2'), "{v:?}");
    assert!(env.containerd.as_ref().unwrap().pid() > 0);
    // The generated config keeps containerd off the system's paths.
    let toml = std::fs::read_to_string(&env.containerd.as_ref().unwrap().config().config_file).unwrap();
    assert!(toml.contains("io.containerd.grpc.v1.cri"));
    assert!(!toml.contains("/run/containerd/"));
    env.shutdown().await;
}

#[tokio::test]
async fn missing_containerd_binary_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ManagedConfig::new(dir.path().join("root"), dir.path().join("state"));
    config.containerd_binary = Some("/nonexistent/containerd".into());
    let err = ManagedContainerd::start(config).await.unwrap_err();
    assert!(matches!(err, Error::ContainerdNotInstalled), "{err:?}");
    assert!(err.to_string().contains("apt-get install containerd"));
}

#[tokio::test]
async fn containerd_that_exits_at_start_reports_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ManagedConfig::new(dir.path().join("root"), dir.path().join("state"));
    // A "containerd" that prints something and exits 1.
    let fake = dir.path().join("containerd");
    std::fs::write(&fake, "#!/bin/sh\necho 'fake containerd: boom' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    config.containerd_binary = Some(fake);
    let err = ManagedContainerd::start(config).await.unwrap_err();
    match &err {
        Error::StartExited { log_tail, .. } => assert!(log_tail.contains("boom"), "{log_tail}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn supervisor_restarts_killed_containerd_and_shims_survive() {
    let env = TestEnv::start().await;
    let image = env.import_busybox("example.local/busybox:latest").await;
    let id = "survivor";
    let mounts = env.create_container(id, &image, &["sleep", "100"], env.runtime()).await;
    let fifos = FifoSet::create(env.path("io/survivor"), false, true, true).unwrap();
    let mut open = fifos.open().unwrap();
    env.tasks.create(id, &fifos.task_io(false), mounts).await.expect("task create");
    open.release();
    let (_out, _err) = open.collect_output();
    env.tasks.start(id).await.expect("start");

    let managed = env.containerd.as_ref().unwrap();
    let mut restarts = managed.subscribe_restarts();
    let old_pid = managed.pid();
    // SAFETY: kill(2) on the containerd child.
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    tokio::time::timeout(Duration::from_secs(30), restarts.changed()).await.expect("restarted in time").unwrap();
    assert_eq!(managed.restarts(), 1);
    assert_ne!(managed.pid(), old_pid);

    // The same client works again (the channel reconnects).
    let mut ok = false;
    for _ in 0..50 {
        if env.client.version().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "client did not reconnect");

    // The task survived the restart.
    let state = env.tasks.get(id, "").await.expect("task still known");
    assert_eq!(state.status, TaskStatus::Running);
    let wait = tokio::spawn(env.tasks.wait(id));
    env.tasks.kill(id, libc::SIGKILL as u32, true).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), wait).await.unwrap().unwrap().unwrap();
    assert_eq!(status.code, 137);
    env.tasks.delete(id).await.unwrap();
    env.containers.delete(id).await.unwrap();
    fifos.remove().unwrap();
    env.shutdown().await;
}
