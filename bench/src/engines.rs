//! Starting, restarting and stopping the engines under test, each with its
//! own data root, exec root, socket and containerd, all under one temp dir.
//!
//! Exec roots and containerd's state directories (what a host keeps under
//! `/run`) go on a tmpfs the harness mounts at `<temp>/run`, as `/run` is on
//! any systemd host; data roots stay on the disk.

use crate::http::Api;
use crate::proc::{self, run_ok};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "bb";
/// The same image as containerd sees it in berth's namespace.
pub const CTR_IMAGE: &str = "docker.io/library/bb:latest";
pub const BERTH_NS: &str = "berth";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Berth,
    Dockerd,
    Ctr,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::Dockerd => "dockerd",
            Kind::Ctr => "ctr (floor)",
        }
    }
}

/// A daemon we started: its process, how to start it again, its log.
pub struct Daemon {
    pub name: String,
    pub child: Option<Child>,
    pub cmd: Vec<String>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: Vec<String>, log: PathBuf) -> Result<Daemon, String> {
        let mut d = Daemon { name: name.into(), child: None, cmd, log };
        d.start()?;
        Ok(d)
    }

    pub fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // Own process group: Ctrl-C in the terminal reaches only the
        // harness, which stops the daemons in order.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let child = c.spawn().map_err(|e| format!("start {}: {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> Duration {
        let start = Instant::now();
        let Some(mut c) = self.child.take() else { return Duration::ZERO };
        if let Ok(Some(_)) = c.try_wait() {
            return Duration::ZERO;
        }
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = start + grace;
        loop {
            if let Ok(Some(_)) = c.try_wait() {
                return start.elapsed();
            }
            if Instant::now() > deadline {
                eprintln!("bench: {} did not stop within {:?}; killing it", self.name, grace);
                let _ = c.kill();
                let _ = c.wait();
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => Some(format!("{} exited: {st}", self.name)),
            _ => None,
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let v: Vec<&str> = s.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }
}

/// One Docker-API engine (berth or dockerd).
pub struct Engine {
    pub kind: Kind,
    pub daemon: Daemon,
    pub sock: PathBuf,
    pub api: Api,
    /// dockerd only: the containerd we started for it.
    pub containerd: Option<Daemon>,
    /// berth only: its managed containerd's socket (for ctr).
    pub ctd_sock: PathBuf,
    pub config_file: PathBuf,
    pub docker_config: PathBuf,
}

impl Engine {
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// `docker -H <this engine> args...`
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", &self.docker_config)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(self.host())
            .args(args);
        c
    }

    /// Waits until `/_ping` answers, at most `timeout`; returns the time taken.
    pub fn wait_ready(&mut self, since: Instant, timeout: Duration) -> Result<Duration, String> {
        loop {
            if self.api.ping() {
                return Ok(since.elapsed());
            }
            if let Some(e) = self.daemon.exited() {
                return Err(format!("{e}\n{}", self.daemon.log_tail(30)));
            }
            proc::check_interrupt()?;
            if since.elapsed() > timeout {
                return Err(format!("{} not ready after {:?}\n{}", self.kind.name(), timeout, self.daemon.log_tail(30)));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the daemon and starts it again; the time until `/_ping` answers.
    pub fn restart(&mut self) -> Result<Duration, String> {
        self.daemon.stop(Duration::from_secs(60));
        // A unix socket left behind would make `ping` fail, not succeed, but
        // remove it so the new daemon binds a fresh one.
        let start = Instant::now();
        self.daemon.start()?;
        self.wait_ready(start, Duration::from_secs(120))
    }

    /// RSS of the daemon process, KiB.
    pub fn rss(&self) -> Option<u64> {
        self.daemon.pid().and_then(proc::rss_kib)
    }

    /// RSS of this engine's containerd, KiB.
    pub fn containerd_rss(&self) -> Option<u64> {
        match &self.containerd {
            Some(d) => d.pid().and_then(proc::rss_kib),
            None => {
                let pid = self.daemon.pid()?;
                let kids = proc::children_named(pid, "containerd");
                kids.first().and_then(|p| proc::rss_kib(*p))
            }
        }
    }

    /// Force-removes every container, `threads` at a time.
    pub fn remove_all(&self, threads: usize) -> Result<usize, String> {
        let r = self.api.get("/containers/json?all=1")?;
        let v = r.json()?;
        let ids: Vec<String> = v
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["Id"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        let n = ids.len();
        let chunks: Vec<Vec<String>> = ids.chunks(n.div_ceil(threads.max(1)).max(1)).map(|c| c.to_vec()).collect();
        std::thread::scope(|s| {
            for chunk in chunks {
                let api = self.api.clone();
                s.spawn(move || {
                    for id in chunk {
                        let _ = api.delete(&format!("/containers/{id}?force=1&v=1"));
                    }
                });
            }
        });
        Ok(n)
    }
}

/// `ctr` against berth's managed containerd.
pub fn ctr(ctd_sock: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ctr");
    c.arg("-a").arg(ctd_sock).arg("-n").arg(BERTH_NS).args(args);
    c
}

/// Mounts a tmpfs at `<root>/run` for the engines' exec roots and returns
/// a line for the machine description. Falls back to the disk (and says so).
pub fn mount_run_tmpfs(root: &Path) -> Result<String, String> {
    let run = root.join("run");
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    let mut c = Command::new("mount");
    c.args(["-t", "tmpfs", "-o", "size=2g,mode=0755", "berth-bench-run"]).arg(&run);
    match proc::run(c, Duration::from_secs(10), false) {
        Ok(o) if o.ok => Ok("tmpfs (mounted by the harness, as /run on a systemd host)".into()),
        Ok(o) => Ok(format!("disk (tmpfs mount failed: {})", o.describe())),
        Err(e) => Ok(format!("disk (tmpfs mount failed: {e})")),
    }
}

pub fn start_berth(root: &Path, berth_bin: &Path) -> Result<Engine, String> {
    let dir = root.join("b");
    let data = dir.join("data");
    let exec = root.join("run").join("b");
    for d in [&data, &exec] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let config_file = dir.join("daemon.json");
    write_berth_config(&config_file, &serde_json::json!({}))?;
    let sock = dir.join("berth.sock");
    let cmd = vec![
        berth_bin.display().to_string(),
        "daemon".into(),
        "--config-file".into(),
        config_file.display().to_string(),
        "--data-root".into(),
        data.display().to_string(),
        "--exec-root".into(),
        exec.display().to_string(),
        "-H".into(),
        format!("unix://{}", sock.display()),
    ];
    let start = Instant::now();
    let daemon = Daemon::spawn("berth", cmd, dir.join("berth.log"))?;
    let docker_config = root.join("docker-cli");
    std::fs::create_dir_all(&docker_config).ok();
    let mut e = Engine {
        kind: Kind::Berth,
        daemon,
        api: Api::new(&sock),
        sock,
        containerd: None,
        ctd_sock: exec.join("containerd").join("containerd.sock"),
        config_file,
        docker_config,
    };
    e.wait_ready(start, Duration::from_secs(120))?;
    Ok(e)
}

/// berth's config file: `live-restore` off (so a stop leaves nothing
/// running), a default bridge of its own (`berthbench0`, 10.250.1.0/24;
/// dockerd gets 10.250.2.0/24), plus `extra` keys (the reload scenario's
/// runtimes).
pub fn write_berth_config(path: &Path, extra: &serde_json::Value) -> Result<(), String> {
    let mut v = serde_json::json!({ "live-restore": false, "bridge": "berthbench0", "bip": "10.250.1.1/24" });
    if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in x {
            m.insert(k.clone(), val.clone());
        }
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&v).unwrap()).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

pub fn start_dockerd(root: &Path) -> Result<Engine, String> {
    let dir = root.join("d");
    let ctd = dir.join("ctd");
    let run = root.join("run").join("d");
    for d in [dir.join("data"), dir.join("ctd/root"), run.join("exec"), run.join("ctd-state")] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let ctd_sock = ctd.join("containerd.sock");
    let toml = format!(
        "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
        root = ctd.join("root").display(),
        state = run.join("ctd-state").display(),
        sock = ctd_sock.display()
    );
    let ctd_conf = ctd.join("config.toml");
    std::fs::write(&ctd_conf, toml).map_err(|e| e.to_string())?;
    let mut containerd = Daemon::spawn(
        "containerd (dockerd's)",
        vec!["containerd".into(), "--config".into(), ctd_conf.display().to_string()],
        ctd.join("containerd.log"),
    )?;
    let t = Instant::now();
    while !ctd_sock.exists() {
        if let Some(e) = containerd.exited() {
            return Err(format!("{e}\n{}", containerd.log_tail(20)));
        }
        if t.elapsed() > Duration::from_secs(30) {
            containerd.stop(Duration::from_secs(5));
            return Err("dockerd's containerd did not create its socket in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sock = dir.join("docker.sock");
    let cmd = vec![
        "dockerd".into(),
        "--data-root".into(),
        dir.join("data").display().to_string(),
        "--exec-root".into(),
        run.join("exec").display().to_string(),
        "--pidfile".into(),
        dir.join("dockerd.pid").display().to_string(),
        "-H".into(),
        format!("unix://{}", sock.display()),
        "--containerd".into(),
        ctd_sock.display().to_string(),
        // Its default bridge (docker0) with iptables, as dockerd runs by
        // default, on a subnet of its own.
        "--bip=10.250.2.1/24".into(),
        "--ip6tables=false".into(),
    ];
    let start = Instant::now();
    let daemon = match Daemon::spawn("dockerd", cmd, dir.join("dockerd.log")) {
        Ok(d) => d,
        Err(e) => {
            containerd.stop(Duration::from_secs(10));
            return Err(e);
        }
    };
    let docker_config = root.join("docker-cli");
    std::fs::create_dir_all(&docker_config).ok();
    let mut e = Engine {
        kind: Kind::Dockerd,
        daemon,
        api: Api::new(&sock),
        sock,
        containerd: Some(containerd),
        ctd_sock,
        config_file: PathBuf::new(),
        docker_config,
    };
    if let Err(err) = e.wait_ready(start, Duration::from_secs(120)) {
        e.daemon.stop(Duration::from_secs(20));
        if let Some(c) = e.containerd.as_mut() {
            c.stop(Duration::from_secs(10));
        }
        return Err(err);
    }
    Ok(e)
}

/// A rootfs tar of /bin/busybox plus its applet symlinks.
pub fn build_image_tar(root: &Path) -> Result<PathBuf, String> {
    let rootfs = root.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(|e| e.to_string())?;
    }
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or("busybox not found (apt-get install busybox-static)")?;
    std::fs::copy(bb, rootfs.join("bin/busybox")).map_err(|e| e.to_string())?;
    let mut c = Command::new(rootfs.join("bin/busybox"));
    c.arg("--list");
    let list = run_ok(c, Duration::from_secs(10))?.stdout_str();
    for applet in list.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/')) {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").map_err(|e| e.to_string())?;
    let tar = root.join("bb.tar");
    let mut c = Command::new("tar");
    c.arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".");
    run_ok(c, Duration::from_secs(60))?;
    let _ = std::fs::remove_dir_all(&rootfs);
    Ok(tar)
}

pub fn import_image(e: &Engine, tar: &Path) -> Result<(), String> {
    let t = tar.display().to_string();
    run_ok(e.docker(&["import", "--change", "CMD [\"sh\"]", &t, IMAGE]), Duration::from_secs(120))?;
    Ok(())
}
