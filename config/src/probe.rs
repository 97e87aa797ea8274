//! Probing runtime binaries: does it exist, is it executable, what does
//! `--version` say, what `features` does it report.
//!
//! Probes run in parallel (one thread per distinct binary), each command with
//! a 2 s timeout, and are cached by binary path + file identity (inode, size,
//! mtime), so a reload with unchanged binaries runs nothing, whatever their
//! `runtimeArgs` became.
//!
//! A runtime's `runtimeArgs` are not passed to the probe: they are flags for
//! the runtime's own invocations (`create`, `start`, …), and version and
//! features belong to the binary. So 100 runtimes on one binary cost one probe,
//! and changing their args costs none.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long one probe command may run. Generous: the first run of a large
/// binary (runsc is ~50 MB of Go) on a fresh host under load reads it from
/// disk, and a version lost to a timeout changes what berth decides about
/// the runtime (gVisor's network checks depend on its release).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a runtime cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Unavailable {
    /// The binary does not exist (not on PATH, or no such file).
    NotFound(String),
    /// The binary exists but cannot be executed.
    NotExecutable(String),
}

impl Unavailable {
    pub fn message(&self) -> &str {
        match self {
            Unavailable::NotFound(m) | Unavailable::NotExecutable(m) => m,
        }
    }
}

/// What a probe found out about a binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    /// The binary that was probed (absolute once found).
    pub binary: PathBuf,
    /// `Ok` when the binary exists and is executable.
    pub availability: Result<(), Unavailable>,
    /// First line of `--version` output, if it answered.
    pub version: Option<String>,
    /// The `features` JSON (OCI runtime-spec features), if it answered with JSON.
    pub features: Option<Arc<serde_json::Value>>,
    /// Why version or features are unknown (not an error: crun and runsc have no `features`).
    pub notes: Vec<String>,
    /// A command timed out: the answer may differ next time, so the result
    /// is not cached and the next load probes again.
    #[serde(skip)]
    pub transient: bool,
}

/// A probe request: the binary (absolute path or bare name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub binary: String,
    /// Whether to run `--version` and `features` (shim binaries are only checked to exist).
    pub run: bool,
}

/// Looks up a command the way a shell does: a name with `/` is used as is;
/// a bare name is searched in `$PATH`.
pub fn lookup(binary: &str) -> Result<PathBuf, Unavailable> {
    if binary.contains('/') {
        return check_executable(Path::new(binary)).map(|_| PathBuf::from(binary));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut not_exec = None;
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(binary);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(Unavailable::NotExecutable(m)) => not_exec = Some(m),
            Err(Unavailable::NotFound(_)) => {}
        }
    }
    Err(not_exec.map(Unavailable::NotExecutable).unwrap_or_else(|| {
        Unavailable::NotFound(format!("exec: {binary:?}: executable file not found in $PATH"))
    }))
}

fn check_executable(path: &Path) -> Result<(), Unavailable> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => Unavailable::NotExecutable(format!("{}: permission denied", path.display())),
        _ => Unavailable::NotFound(format!("{}: no such file or directory", path.display())),
    })?;
    if !meta.is_file() {
        return Err(Unavailable::NotExecutable(format!("{}: is not a regular file: permission denied", path.display())));
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Unavailable::NotFound(format!("{}: no such file or directory", path.display())))?;
    // SAFETY: `c` is a valid NUL-terminated string; access(2) only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(Unavailable::NotExecutable(format!("{}: permission denied", path.display())));
    }
    Ok(())
}

/// Identity of a file on disk, so a replaced binary is probed again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileId {
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
}

fn file_id(p: &Path) -> Option<FileId> {
    let m = fs::metadata(p).ok()?;
    Some(FileId { ino: m.ino(), size: m.size(), mtime: m.mtime(), mtime_ns: m.mtime_nsec() })
}

type CacheMap = HashMap<(ProbeKey, Option<FileId>), ProbeResult>;

/// A cache of probe results, shared by every load of one daemon.
#[derive(Debug, Clone)]
pub struct ProbeCache {
    inner: Arc<Mutex<CacheMap>>,
    timeout: Duration,
}

impl Default for ProbeCache {
    fn default() -> Self {
        ProbeCache { inner: Arc::default(), timeout: PROBE_TIMEOUT }
    }
}

impl ProbeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Probes every key (in parallel, cached) and returns the results in
    /// order. Each distinct key is probed at most once per call.
    pub fn probe_all(&self, keys: &[ProbeKey]) -> Vec<ProbeResult> {
        // Distinct keys, each with its binary's current identity.
        let mut distinct: Vec<(&ProbeKey, Option<FileId>)> = Vec::new();
        let mut index: HashMap<&ProbeKey, usize> = HashMap::new();
        let slots: Vec<usize> = keys
            .iter()
            .map(|k| {
                *index.entry(k).or_insert_with(|| {
                    distinct.push((k, lookup(&k.binary).ok().and_then(|p| file_id(&p))));
                    distinct.len() - 1
                })
            })
            .collect();
        let mut results: Vec<Option<ProbeResult>> = {
            let cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            // Only cache hits for binaries that exist: a missing binary may
            // appear any moment, and checking is cheap.
            distinct
                .iter()
                .map(|(k, id)| id.as_ref().and_then(|_| cache.get(&((*k).clone(), id.clone())).cloned()))
                .collect()
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = distinct
                .iter()
                .zip(results.iter())
                .enumerate()
                .filter(|(_, (_, r))| r.is_none())
                .map(|(i, ((k, _), _))| (i, s.spawn(move || probe_within(k, self.timeout))))
                .collect();
            for (i, h) in handles {
                let r = h.join().unwrap_or_else(|_| ProbeResult {
                    binary: distinct[i].0.binary.clone().into(),
                    availability: Ok(()),
                    version: None,
                    features: None,
                    notes: vec!["probe thread panicked".into()],
                    transient: true,
                });
                results[i] = Some(r);
            }
        });
        let results: Vec<ProbeResult> = results.into_iter().map(|r| r.expect("every key probed")).collect();
        {
            let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            for ((k, id), r) in distinct.iter().zip(&results) {
                if id.is_some() && r.availability.is_ok() && !r.transient {
                    cache.insert(((*k).clone(), id.clone()), r.clone());
                }
            }
        }
        slots.into_iter().map(|i| results[i].clone()).collect()
    }
}

/// Probes one binary (uncached).
pub fn probe(key: &ProbeKey) -> ProbeResult {
    probe_within(key, PROBE_TIMEOUT)
}

/// Probes one binary, each command bounded by `timeout`.
fn probe_within(key: &ProbeKey, timeout: Duration) -> ProbeResult {
    let binary = match lookup(&key.binary) {
        Ok(p) => p,
        Err(u) => {
            return ProbeResult { binary: key.binary.clone().into(), availability: Err(u), version: None, features: None, notes: vec![], transient: false }
        }
    };
    let mut res =
        ProbeResult { binary: binary.clone(), availability: Ok(()), version: None, features: None, notes: vec![], transient: false };
    if !key.run {
        return res;
    }
    match run(&binary, "--version", timeout) {
        Ok(out) => match out.lines().find(|l| !l.trim().is_empty()) {
            Some(first) => res.version = Some(first.trim().to_string()),
            None => res.notes.push("version unknown: `--version` printed nothing".into()),
        },
        Err(e) => {
            res.transient |= e.timed_out;
            res.notes.push(format!("version unknown: {}", e.message));
        }
    }
    match run(&binary, "features", timeout) {
        Ok(out) => match serde_json::from_str::<serde_json::Value>(&out) {
            Ok(v) if v.is_object() => res.features = Some(Arc::new(v)),
            _ => res.notes.push("features unknown: `features` did not print a JSON object".into()),
        },
        Err(e) => {
            res.transient |= e.timed_out;
            res.notes.push(format!("features unknown: {}", e.message));
        }
    }
    res
}

/// Why a probe command gave no answer.
struct RunError {
    message: String,
    timed_out: bool,
}

impl From<String> for RunError {
    fn from(message: String) -> Self {
        RunError { message, timed_out: false }
    }
}

/// Runs `binary last` with a timeout; returns stdout on exit status 0.
fn run(binary: &Path, last: &str, timeout: Duration) -> Result<String, RunError> {
    let mut child = Command::new(binary)
        .arg(last)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| RunError::from(format!("`{last}` could not run: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError { message: format!("`{last}` timed out after {} s", timeout.as_secs_f32()), timed_out: true });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("`{last}` could not be waited for: {e}").into()),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`{last}` exited with {status}").into());
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn key(p: &Path) -> ProbeKey {
        ProbeKey { binary: p.to_str().unwrap().into(), run: true }
    }

    #[test]
    fn reads_version_and_features() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "rt", r#"case "$1" in --version) echo "rt version 1.2";; features) echo '{"ociVersionMax":"1.1.0"}';; esac"#);
        let r = probe(&key(&p));
        assert_eq!(r.availability, Ok(()));
        assert_eq!(r.version.as_deref(), Some("rt version 1.2"));
        assert_eq!(r.features.unwrap()["ociVersionMax"], "1.1.0");
    }

    #[test]
    fn missing_features_is_a_note_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "crunlike", r#"case "$1" in --version) echo "crun version 1.8.1";; *) echo "unknown command $1" >&2; exit 1;; esac"#);
        let r = probe(&key(&p));
        assert_eq!(r.availability, Ok(()));
        assert!(r.features.is_none());
        assert!(r.notes.iter().any(|n| n.starts_with("features unknown")), "{:?}", r.notes);
    }

    #[test]
    fn missing_and_not_executable() {
        let d = tempfile::tempdir().unwrap();
        let r = probe(&key(&d.path().join("nope")));
        assert!(matches!(&r.availability, Err(Unavailable::NotFound(m)) if m.contains("no such file or directory")));
        let p = d.path().join("noexec");
        fs::write(&p, "x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        // root can execute anything with an x bit; without one access(X_OK) fails.
        let r = probe(&key(&p));
        assert!(matches!(&r.availability, Err(Unavailable::NotExecutable(m)) if m.contains("permission denied")), "{r:?}");
        let r = probe(&ProbeKey { binary: "surely-no-such-binary-berth".into(), run: true });
        assert!(matches!(&r.availability, Err(Unavailable::NotFound(m)) if m.contains("executable file not found in $PATH")));
    }

    #[test]
    fn hanging_binary_times_out() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "hang", "exec sleep 30");
        let timeout = Duration::from_millis(300);
        let t = Instant::now();
        let r = probe_within(&key(&p), timeout);
        assert_eq!(r.availability, Ok(()));
        assert!(r.notes.iter().any(|n| n.contains("timed out")), "{:?}", r.notes);
        assert!(r.transient, "a timeout is not a lasting answer");
        // Two commands, each bounded by the timeout (not a timing assertion on speed).
        assert!(t.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn one_probe_per_distinct_binary() {
        let d = tempfile::tempdir().unwrap();
        let count = d.path().join("count");
        let p = script(d.path(), "rt", &format!(r#"echo "$1" >> '{}'; echo "rt version 1""#, count.display()));
        let cache = ProbeCache::new();
        let other = script(d.path(), "other", r#"echo "other version 2""#);
        let keys = [key(&p), key(&other), key(&p), key(&p)];
        let r = cache.probe_all(&keys);
        let versions: Vec<_> = r.iter().map(|r| r.version.clone().unwrap()).collect();
        assert_eq!(versions, ["rt version 1", "other version 2", "rt version 1", "rt version 1"]);
        assert_eq!(fs::read_to_string(&count).unwrap(), "--version\nfeatures\n", "probed once");
        // Cached: nothing runs again.
        cache.probe_all(&keys);
        assert_eq!(fs::read_to_string(&count).unwrap(), "--version\nfeatures\n", "cached");
    }

    #[test]
    fn a_timed_out_probe_is_not_cached() {
        let d = tempfile::tempdir().unwrap();
        let slow = d.path().join("slow");
        fs::write(&slow, "").unwrap();
        // Slow while the marker exists (a cold binary on a loaded host), quick after.
        let p = script(d.path(), "rt", &format!(r#"[ -e '{}' ] && exec sleep 30; echo "rt version 1""#, slow.display()));
        let cache = ProbeCache { timeout: Duration::from_millis(300), ..ProbeCache::new() };
        let first = cache.probe_all(&[key(&p)]).remove(0);
        assert_eq!(first.version, None, "{first:?}");
        fs::remove_file(&slow).unwrap();
        assert_eq!(cache.probe_all(&[key(&p)])[0].version.as_deref(), Some("rt version 1"), "probed again");
    }

    #[test]
    fn cache_reprobes_a_replaced_binary() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "rt", r#"echo "rt version 1""#);
        let cache = ProbeCache::new();
        assert_eq!(cache.probe_all(&[key(&p)])[0].version.as_deref(), Some("rt version 1"));
        // Replace with a new file (new inode): probed again.
        let tmp = script(d.path(), "rt.new", r#"echo "rt version 2""#);
        fs::rename(&tmp, &p).unwrap();
        assert_eq!(cache.probe_all(&[key(&p)])[0].version.as_deref(), Some("rt version 2"));
    }
}
