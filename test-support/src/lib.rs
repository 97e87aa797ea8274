//! Helpers shared by berth's test suites (a dev-dependency only; never
//! published): a busybox rootfs as a deterministic tar, the OCI runtime
//! `runc` as berth finds it, and waiting on a condition with a deadline.
//!
//! The daemon harness of the end-to-end tests stays in
//! `berth/tests/common` (it needs `CARGO_BIN_EXE_berth`, which only berth's
//! own integration tests have).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

/// Where Debian's `busybox-static` (installed by `scripts/setup`) puts the
/// binary every test image is built from.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets of the standard test image ([`Rootfs::busybox`]): what the
/// engine, containerd and end-to-end tests run.
pub const APPLETS: &[&str] =
    &["sh", "echo", "cat", "sleep", "true", "false", "ls", "env", "id", "head", "dd", "wc", "hostname", "yes", "seq", "tr", "printf"];

/// `/etc/passwd` of the standard test image: root only.
pub const PASSWD_ROOT: &str = "root:x:0:0:root:/root:/bin/sh\n";

/// Which busybox applets get a `/bin/<applet>` symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applets {
    /// These names.
    Only(Vec<String>),
    /// Every applet `busybox --list` names.
    All,
}

/// A busybox root filesystem, written as a tar with fixed metadata (owner
/// root, mtime 0, entries in name order), so the same options always give
/// the same bytes (and the same layer digest).
///
/// ```no_run
/// use berth_test_support::Rootfs;
/// let dir = std::path::Path::new("/tmp/x");
/// // The standard image: /bin/busybox, the APPLETS, root in /etc/passwd.
/// let tar = Rootfs::busybox().write_tar(&dir.join("busybox.tar"));
/// // Every applet, a second user and a file of one's own.
/// let tar = Rootfs::busybox()
///     .all_applets()
///     .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", 0o644)
///     .dir("mnt", 0o755)
///     .write_tar(&dir.join("probe.tar"));
/// ```
#[derive(Debug, Clone)]
pub struct Rootfs {
    applets: Applets,
    /// Directory (no trailing `/`) → mode.
    dirs: BTreeMap<String, u32>,
    /// File → (content, mode).
    files: BTreeMap<String, (Vec<u8>, u32)>,
}

impl Rootfs {
    /// The standard test image: directories `bin`, `etc`, `tmp` (0755),
    /// `/bin/busybox`, a symlink for each of [`APPLETS`], and an
    /// `/etc/passwd` with root ([`PASSWD_ROOT`]).
    pub fn busybox() -> Rootfs {
        let dirs = ["bin", "etc", "tmp"].into_iter().map(|d| (d.to_string(), 0o755)).collect();
        Rootfs { applets: Applets::Only(APPLETS.iter().map(|a| a.to_string()).collect()), dirs, files: BTreeMap::new() }
            .file("etc/passwd", PASSWD_ROOT, 0o644)
    }

    /// Symlinks exactly these applets (instead of [`APPLETS`]).
    pub fn applets(mut self, names: &[&str]) -> Rootfs {
        self.applets = Applets::Only(names.iter().map(|a| a.to_string()).collect());
        self
    }

    /// Symlinks every applet of `busybox --list`.
    pub fn all_applets(mut self) -> Rootfs {
        self.applets = Applets::All;
        self
    }

    /// Adds (or sets the mode of) a directory; its parents must be added too.
    pub fn dir(mut self, path: &str, mode: u32) -> Rootfs {
        self.dirs.insert(path.trim_matches('/').to_string(), mode);
        self
    }

    /// Adds (or replaces) a regular file, e.g. `("etc/group", "...", 0o644)`.
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Rootfs {
        self.files.insert(path.trim_matches('/').to_string(), (content.into(), mode));
        self
    }

    /// Drops a file (e.g. the default `/etc/passwd`).
    pub fn without_file(mut self, path: &str) -> Rootfs {
        self.files.remove(path.trim_matches('/'));
        self
    }

    /// The applet names this rootfs links (runs `busybox --list` for
    /// [`Applets::All`]).
    pub fn applet_names(&self) -> Vec<String> {
        match &self.applets {
            Applets::Only(v) => v.clone(),
            Applets::All => {
                let o = Command::new(BUSYBOX).arg("--list").output().unwrap_or_else(|e| panic!("{BUSYBOX} --list: {e} (scripts/setup installs busybox-static)"));
                assert!(o.status.success(), "{BUSYBOX} --list failed: {}", text(&o));
                String::from_utf8_lossy(&o.stdout).split_whitespace().filter(|a| *a != "busybox").map(str::to_owned).collect()
            }
        }
    }

    /// Writes the tar to `path` (replacing it) and returns `path`.
    pub fn write_tar(&self, path: &Path) -> PathBuf {
        let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (scripts/setup installs busybox-static)"));
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for (d, mode) in &self.dirs {
            entries.insert(d.clone(), Entry::Dir(*mode));
        }
        entries.insert("bin/busybox".into(), Entry::File(busybox, 0o755));
        for a in self.applet_names() {
            entries.insert(format!("bin/{a}"), Entry::Link("busybox".into()));
        }
        for (f, (content, mode)) in &self.files {
            entries.insert(f.clone(), Entry::File(content.clone(), *mode));
        }
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut b = tar::Builder::new(std::io::BufWriter::new(file));
        for (name, entry) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            match entry {
                Entry::Dir(mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{name}/"), std::io::empty()).unwrap();
                }
                Entry::File(data, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, name, data.as_slice()).unwrap();
                }
                Entry::Link(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, name, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap().into_inner().map_err(|e| e.into_error()).unwrap().sync_all().unwrap();
        path.to_path_buf()
    }
}

enum Entry {
    Dir(u32),
    File(Vec<u8>, u32),
    Link(String),
}

/// The standard test image ([`Rootfs::busybox`]) as `<dir>/busybox.tar`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    Rootfs::busybox().write_tar(&dir.join("busybox.tar"))
}

/// The `runc` berth runs by default: the name looked up in `$PATH` as
/// berth looks it up (`berth_config::probe::lookup`). Tests compare with
/// this instead of assuming `/usr/sbin/runc`.
pub fn runc() -> PathBuf {
    berth_config::probe::lookup("runc").unwrap_or_else(|e| panic!("runc is not on PATH ({}); scripts/setup installs it", e.message()))
}

/// Polls `f` every 50 ms until it holds or `within` passed; whether it held.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the system clock reads later than `t`; returns that reading.
/// For time filters (`since`, `until`): a time taken this way lies strictly
/// between what was written before and what is written after, however
/// coarse the clock, without a fixed sleep.
pub fn clock_after(t: SystemTime) -> SystemTime {
    loop {
        let now = SystemTime::now();
        if now > t {
            return now;
        }
        std::thread::yield_now();
    }
}

/// A command's exit code, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("exit={:?}\nstdout: {}\nstderr: {}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Path) -> Vec<(String, tar::EntryType, u32)> {
        let mut a = tar::Archive::new(std::fs::File::open(p).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().entry_type(), e.header().mode().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_tar_is_deterministic_and_holds_what_was_asked() {
        let d = std::env::temp_dir().join(format!("berth-test-support-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let a = Rootfs::busybox().dir("tmp", 0o1777).file("bin/tool", "#!/bin/sh\n", 0o755).write_tar(&d.join("a.tar"));
        let b = Rootfs::busybox().file("bin/tool", "#!/bin/sh\n", 0o755).dir("tmp", 0o1777).write_tar(&d.join("b.tar"));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same options, same bytes");
        let n = names(&a);
        assert!(n.contains(&("tmp/".into(), tar::EntryType::Directory, 0o1777)), "{n:?}");
        assert!(n.contains(&("bin/seq".into(), tar::EntryType::Symlink, 0o777)), "{n:?}");
        assert!(n.contains(&("bin/tool".into(), tar::EntryType::Regular, 0o755)), "{n:?}");
        assert!(n.contains(&("etc/passwd".into(), tar::EntryType::Regular, 0o644)), "{n:?}");
        let all = names(&Rootfs::busybox().all_applets().without_file("etc/passwd").write_tar(&d.join("c.tar")));
        assert!(all.iter().any(|(p, ..)| p == "bin/wget") && !all.iter().any(|(p, ..)| p == "etc/passwd"), "{all:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
