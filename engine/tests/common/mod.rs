//! Test support: a berth engine over its own managed containerd, in a temp
//! dir, with a busybox image built from Debian's busybox-static.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_config::{ConfigStore, Flags};
use berth_containerd::{ImageConfig, ManagedConfig, ManagedContainerd};
use berth_engine::containers::wait::{LogsOptions, WaitCondition};
use berth_engine::containers::CreateRequest;
use berth_engine::runtimes::RuntimeService;
use berth_engine::Engine;
use berth_store::{ContainerConfig, HostConfig, Store};

pub struct TestEngine {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    containerd: Option<ManagedContainerd>,
}

impl TestEngine {
    pub async fn start(config: &str) -> TestEngine {
        let dir = tempfile::Builder::new().prefix("beng").tempdir().unwrap();
        std::fs::write(dir.path().join("daemon.json"), config).unwrap();
        let flags = Flags {
            config_file: Some(dir.path().join("daemon.json")),
            exec_root: Some(dir.path().join("exec")),
            data_root: Some(dir.path().join("data")),
            ..Default::default()
        };
        let store = Arc::new(ConfigStore::open(flags).expect("config"));
        let runtimes = Arc::new(RuntimeService::new(store));
        let containerd = ManagedContainerd::start(ManagedConfig::new(dir.path().join("ctd-root"), dir.path().join("ctd-state")))
            .await
            .expect("containerd starts");
        let client = containerd.client("berth").await.unwrap();
        let (records, _) = Store::open(dir.path().join("data")).unwrap();
        let cgroups = berth_engine::cgroups::Cgroups::detect(Some(berth_config::CgroupDriver::Cgroupfs)).expect("cgroups");
        let engine = Engine::start(runtimes, client, records, dir.path().join("exec"), cgroups).await.expect("engine");
        let t = TestEngine { dir, engine, containerd: Some(containerd) };
        let tar = berth_test_support::busybox_tar(t.dir.path());
        let cfg = ImageConfig { env: Some(vec!["PATH=/bin".into()]), cmd: Some(vec!["sh".into()]), ..Default::default() };
        t.engine.images.import(tar, Some("bb"), cfg).await.expect("import busybox");
        t
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write_config(&self, json: &str) {
        std::fs::write(self.path("daemon.json"), json).unwrap();
    }

    /// An executable script under the test dir.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn request(&self, args: &[&str]) -> CreateRequest {
        CreateRequest {
            name: None,
            image: "bb".into(),
            config: ContainerConfig { cmd: Some(args.iter().map(|s| s.to_string()).collect()), ..Default::default() },
            host_config: HostConfig { network_mode: "none".into(), ..Default::default() },
            log_config: Default::default(),
            networking: Default::default(),
        }
    }

    /// create + start + wait; returns (id, exit code).
    pub async fn run(&self, req: CreateRequest) -> (String, i64) {
        let c = &self.engine.containers;
        let rec = c.create(req).await.expect("create");
        let wait = c.waiter(&rec.id, WaitCondition::NextExit).unwrap();
        c.start(&rec.id).await.expect("start");
        let code = tokio::time::timeout(Duration::from_secs(60), wait).await.expect("exits in time");
        (rec.id.clone(), code)
    }

    /// The whole log of a container as text.
    pub async fn logs(&self, id: &str) -> String {
        let mut r = self.engine.containers.logs(id, LogsOptions { stdout: true, stderr: true, ..Default::default() }).await.unwrap();
        let mut out = Vec::new();
        while let Some(e) = r.next().await {
            out.extend_from_slice(&e.unwrap().line);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    pub async fn shutdown(mut self) {
        for rec in self.engine.containers.list() {
            let _ = self.engine.containers.remove(&rec.id, true).await;
        }
        if let Some(c) = self.containerd.take() {
            let _ = c.shutdown().await;
        }
    }
}
