//! Test support: a temp dir with a config file, drop-ins and roots.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_config::{ConfigErrors, Flags};

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env { dir: tempfile::tempdir().unwrap() };
        env.write("{}");
        env
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config_file(&self) -> PathBuf {
        self.path().join("daemon.json")
    }
    /// Flags pointing at this env: config file, exec-root and data-root.
    pub fn flags(&self) -> Flags {
        Flags {
            config_file: Some(self.config_file()),
            exec_root: Some(self.path().join("exec")),
            data_root: Some(self.path().join("data")),
            ..Flags::default()
        }
    }
    pub fn write(&self, json: &str) {
        fs::write(self.config_file(), json).unwrap();
    }
    pub fn dropin(&self, file: &str, json: &str) {
        let d = self.path().join("runtimes.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(file), json).unwrap();
    }
    pub fn wrapper_dir(&self) -> PathBuf {
        self.path().join("exec/runtimes")
    }
    /// An executable script in the env's `bin/`.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let d = self.path().join("bin");
        fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

/// The messages of a failed check, for `contains` assertions.
pub fn messages(e: &ConfigErrors) -> Vec<String> {
    e.problems.iter().map(|p| p.to_string()).collect()
}

pub fn assert_one_error_containing(e: &ConfigErrors, needle: &str) {
    let m = messages(e);
    assert!(m.iter().any(|s| s.contains(needle)), "expected an error containing {needle:?}, got {m:#?}");
}
