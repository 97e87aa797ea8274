//! Test support: a private containerd per test, a busybox image, a minimal
//! runnable spec, and a run-to-completion helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_containerd::oci_spec::runtime::{LinuxBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, Spec};
use berth_containerd::{
    Client, Containers, ExitStatus, FifoSet, ImageConfig, ImageStore, ImportRequest, ImportedImage, ManagedConfig,
    ManagedContainerd, NewContainer, Rootfs, RuncOptions, ShimRuntime, Tasks,
};

/// One test's world.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub containerd: Option<ManagedContainerd>,
    pub client: Client,
    pub namespace: String,
    pub images: ImageStore,
    pub containers: Containers,
    pub tasks: Tasks,
}

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 4];
    getrandom_bytes(&mut b);
    format!("{prefix}-{}-{:02x}{:02x}{:02x}{:02x}", std::process::id(), b[0], b[1], b[2], b[3])
}

fn getrandom_bytes(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom").unwrap().read_exact(buf).unwrap();
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        let dir = tempfile::Builder::new().prefix("bctd").tempdir().expect("tempdir");
        let config = ManagedConfig::new(dir.path().join("root"), dir.path().join("state"));
        let containerd = ManagedContainerd::start(config).await.expect("managed containerd starts");
        let namespace = unique("t");
        let client = containerd.client(&namespace).await.expect("client connects");
        let images = ImageStore::with_default_snapshotter(client.clone()).await.expect("snapshotter");
        TestEnv {
            containers: Containers::new(client.clone()),
            tasks: Tasks::new(client.clone()),
            images,
            client,
            namespace,
            containerd: Some(containerd),
            dir,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// runc options with a per-test state root.
    pub fn runc_options(&self) -> RuncOptions {
        RuncOptions { root: self.path("runc-root").to_string_lossy().into_owned(), ..Default::default() }
    }

    pub fn runtime(&self) -> ShimRuntime {
        ShimRuntime::runc(&self.runc_options())
    }

    pub async fn import_busybox(&self, name: &str) -> ImportedImage {
        let tar = busybox_rootfs_tar(self.dir.path());
        let cfg = ImageConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/".into()),
            ..Default::default()
        };
        self.images
            .import(ImportRequest {
                names: vec![name.into()],
                layers: vec![tar],
                config: berth_containerd::ConfigSource::Build(cfg),
                labels: HashMap::new(),
            })
            .await
            .expect("import busybox")
    }

    /// Creates a container from `image` running `args`; returns its rootfs mounts.
    pub async fn create_container(
        &self,
        id: &str,
        image: &ImportedImage,
        args: &[&str],
        runtime: ShimRuntime,
    ) -> Vec<berth_containerd::Mount> {
        self.containers
            .create(NewContainer {
                id: id.into(),
                image: image.names[0].clone(),
                spec: test_spec(&self.namespace, id, args),
                runtime,
                labels: HashMap::new(),
                rootfs: Rootfs::Snapshot {
                    snapshotter: self.images.snapshotter().into(),
                    parent: image.chain_id.clone().unwrap(),
                },
            })
            .await
            .expect("container create")
    }

    /// Runs `args` in a new container to completion; returns (status, stdout, stderr).
    pub async fn run(&self, id: &str, image: &ImportedImage, args: &[&str], runtime: ShimRuntime) -> (ExitStatus, String, String) {
        let mounts = self.create_container(id, image, args, runtime).await;
        let fifos = FifoSet::create(self.path(&format!("io/{id}")), false, true, true).unwrap();
        let mut open = fifos.open().unwrap();
        let created = self.tasks.create(id, &fifos.task_io(false), mounts).await;
        open.release();
        let (out, err) = open.collect_output();
        created.expect("task create");
        let wait = tokio::spawn(self.tasks.wait(id));
        self.tasks.start(id).await.expect("task start");
        let status = tokio::time::timeout(Duration::from_secs(30), wait).await.expect("exit in time").unwrap().unwrap();
        let deleted = self.tasks.delete(id).await.expect("task delete");
        assert_eq!(deleted.code, status.code);
        self.containers.delete(id).await.expect("container delete");
        let out = String::from_utf8(out.unwrap().await.unwrap()).unwrap();
        let err = String::from_utf8(err.unwrap().await.unwrap()).unwrap();
        fifos.remove().unwrap();
        (status, out, err)
    }

    /// Stops containerd and removes the (empty) per-namespace cgroups.
    pub async fn shutdown(mut self) {
        if let Some(c) = self.containerd.take() {
            c.shutdown().await.expect("shutdown");
        }
        remove_ns_cgroups(&self.namespace);
    }
}

impl Drop for TestEnv {
    /// A test that panicked before `shutdown()`: kill what it left behind
    /// (shims of this containerd and their containers), unmount its rootfs
    /// mounts, so the temp dir can go. containerd itself is killed by
    /// `ManagedContainerd`'s own `Drop`.
    fn drop(&mut self) {
        if self.containerd.is_none() {
            return;
        }
        let needle = self.dir.path().to_string_lossy().into_owned();
        let procs: Vec<(i32, i32, String)> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
            })
            .collect();
        let mut killed = Vec::new();
        for (shim, _, cmd) in procs.iter().filter(|(_, _, c)| c.contains("containerd-shim") && c.contains(&needle)) {
            for (child, _, _) in procs.iter().filter(|(_, ppid, _)| ppid == shim) {
                // SAFETY: kill(2).
                unsafe { libc::kill(*child, libc::SIGKILL) };
                killed.push(*child);
            }
            eprintln!("test cleanup: killing leftover shim {shim}: {cmd}");
            // SAFETY: kill(2).
            unsafe { libc::kill(*shim, libc::SIGKILL) };
            killed.push(*shim);
        }
        // Unmount once the killed processes are gone (dead or a zombie).
        let gone = |pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        };
        berth_test_support::eventually(std::time::Duration::from_secs(5), || killed.iter().all(gone));
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut targets: Vec<&str> = mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&needle)).collect();
        targets.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for t in targets {
            let c = std::ffi::CString::new(t).unwrap();
            // SAFETY: umount2 on a path string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        remove_ns_cgroups(&self.namespace);
    }
}

/// Removes `/sys/fs/cgroup/*/<ns>` left empty by runc.
pub fn remove_ns_cgroups(ns: &str) {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for e in entries.flatten() {
        let ns_dir = e.path().join(ns);
        if let Ok(children) = std::fs::read_dir(&ns_dir) {
            for c in children.flatten() {
                if c.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(ns_dir);
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(ns));
}

/// The busybox rootfs these tests import: the standard test image plus
/// the mount points `proc`, `sys`, `dev` and a world-writable `tmp`.
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    berth_test_support::Rootfs::busybox()
        .dir("tmp", 0o1777)
        .dir("proc", 0o755)
        .dir("sys", 0o755)
        .dir("dev", 0o755)
        .write_tar(&dir.join("busybox-rootfs.tar"))
}

/// The process's own RLIMIT_NOFILE (never ask for more: no CAP_SYS_RESOURCE).
pub fn nofile_rlimit() -> PosixRlimit {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit into a local.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(rl.rlim_cur)
        .hard(rl.rlim_max)
        .build()
        .expect("rlimit")
}

/// A process running `args` as root in `/`.
pub fn test_process(args: &[&str]) -> Process {
    let mut p = Process::default();
    p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    p.set_env(Some(vec!["PATH=/bin".into()]));
    p.set_cwd("/".into());
    p.set_rlimits(Some(vec![nofile_rlimit()]));
    p
}

/// A minimal runnable spec: rootfs "rootfs" (rw), default namespaces and
/// mounts, cgroups path `/<ns>/<id>`.
pub fn test_spec(ns: &str, id: &str, args: &[&str]) -> Spec {
    let mut spec = Spec::default();
    spec.set_process(Some(test_process(args)));
    spec.set_hostname(Some(id.chars().take(63).collect()));
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let linux = spec.linux().clone().unwrap_or_else(|| LinuxBuilder::default().build().unwrap());
    let mut linux = linux;
    linux.set_cgroups_path(Some(format!("/{ns}/{id}").into()));
    spec.set_linux(Some(linux));
    spec
}
