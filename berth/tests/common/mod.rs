//! Test support: a real `berth daemon` (with its own managed containerd) in
//! a temp dir, the docker CLI pointed at it, and the standard busybox image
//! (`berth_test_support::busybox_tar`). The one daemon harness of berth's
//! end-to-end tests.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test file uses some
pub use berth_test_support::{busybox_tar, eventually, text};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// The berth binary the daemon tests run: `BERTH_TEST_BIN` when set (a
/// copy of this worktree's build, safe from other builds sharing the
/// target directory), else cargo's.
pub fn berth_bin() -> std::ffi::OsString {
    std::env::var_os("BERTH_TEST_BIN").unwrap_or_else(|| BERTH.into())
}

pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// Extra environment of the daemon process (kept across restarts).
    pub env: Vec<(String, std::ffi::OsString)>,
}

impl Daemon {
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// [`Daemon::start`] with extra environment variables for the daemon.
    pub fn start_with_env(config: &str, env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("bd").tempdir().unwrap();
        std::fs::write(dir.path().join("daemon.json"), test_config(config)).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_os_string())).collect();
        let mut d = Daemon { child: None, dir, env };
        d.spawn();
        d
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("daemon.log")).unwrap();
        let child = Command::new(berth_bin())
            .arg("daemon")
            .args(root_flags(self.dir.path()))
            .arg("-H")
            .arg(self.host())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = Command::new("docker").arg("-H").arg(self.host()).arg("version").output().unwrap();
            if o.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "daemon did not come up: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn sock(&self) -> PathBuf {
        self.path("berth.sock")
    }
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }
    pub fn write_config(&self, json: &str) {
        std::fs::write(self.path("daemon.json"), test_config(json)).unwrap();
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.host()).args(args);
        c
    }

    /// Runs the docker CLI with no stdin.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs the docker CLI feeding `input` on stdin.
    pub fn docker_in(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self.docker_cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// `docker` that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?} failed: {}\n--- daemon log ---\n{}", text(&o), tail(&self.log()));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(berth_bin()).args(args).env("BERTH_HOST", self.host()).output().unwrap()
    }

    /// Imports the busybox image as `name`.
    pub fn import_busybox(&self, name: &str) {
        let tar = busybox_tar(self.dir.path());
        self.ok(&["import", "--change", "CMD [\"sh\"]", tar.to_str().unwrap(), name]);
    }

    pub fn stop(&mut self, signal: i32) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc_kill(c.id() as i32, signal) };
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Leave nothing running: remove containers, then stop the daemon.
            if let Ok(o) = Command::new("docker").arg("-H").arg(self.host()).args(["ps", "-aq"]).output() {
                let ids: Vec<String> = String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker").arg("-H").arg(self.host()).args(["rm", "-f"]).args(&ids).output();
                }
            }
            self.stop(15);
        }
    }
}

/// A test daemon's config: as given, with `"bridge": "none"` unless it sets
/// `bridge` (tests run many daemons at once; only the network tests give
/// each its own bridge name and subnet). Text that is not a JSON object is
/// left as it is (tests of bad configs).
pub fn test_config(config: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(config) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.entry("bridge").or_insert_with(|| "none".into());
            serde_json::Value::Object(m).to_string()
        }
        _ => config.to_string(),
    }
}

/// `--config-file <dir>/daemon.json --data-root <dir>/data --exec-root
/// <dir>/exec`: everything berth reads or writes under `dir`, nothing of the
/// host's `/etc/berth`.
pub fn root_flags(dir: &Path) -> Vec<OsString> {
    vec![
        "--config-file".into(),
        dir.join("daemon.json").into(),
        "--data-root".into(),
        dir.join("data").into(),
        "--exec-root".into(),
        dir.join("exec").into(),
    ]
}

extern "C" {
    #[link_name = "kill"]
    pub fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// The last 30 lines of `s` (a daemon log in an assertion message).
pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
