//! Wrapper scripts for `path` + `runtimeArgs` runtimes.
//!
//! The runc shim has no "extra arguments" option, so a runtime with
//! `runtimeArgs` gets a small script as its `BinaryName`:
//!
//! ```text
//! #!/bin/sh
//! exec '/usr/bin/runsc' '--platform=ptrace' '--network=none' "$@"
//! ```
//!
//! Every word is single-quoted (POSIX quoting), so spaces, `$`, `*`, `;`,
//! quotes and newlines reach the binary as the exact bytes configured. The
//! file is named `<runtime name>.<sha256 hex of the content>`: the name is a
//! function of the content, so a wrapper, once written, never changes. An
//! existing file is verified (content and mode), never rewritten in place.
//!
//! Durability: wrappers live in the exec root (`/run/berth`, a tmpfs on a
//! normal host), are written to a temp file and renamed into place, and are
//! not fsynced. Nothing needs them to survive a power loss: the containers
//! that pin them do not survive one either, and every start of berth verifies
//! (and repairs) the wrappers of the configuration it loads before anything
//! can use them. Skipping the fsyncs keeps a reload of 100 changed runtimes
//! within a few milliseconds on a disk file system too.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Mode of the wrapper directory and of every wrapper.
pub const MODE: u32 = 0o700;

/// A wrapper script: where it lives and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Wrapper {
    pub path: PathBuf,
    /// SHA-256 of `content`, lower-case hex; also the suffix of the file name.
    pub digest: String,
    #[serde(skip)]
    pub content: String,
}

/// What [`Wrapper::materialize`] found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialized {
    /// The file was already there with the right content and mode.
    Verified,
    /// The file was written.
    Written,
    /// A file with this name had other content (or mode); it was replaced
    /// atomically by the right one. Someone tampered with it.
    Repaired,
}

/// Errors writing or verifying a wrapper.
#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    #[error("cannot create the wrapper directory {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    #[error("cannot write wrapper {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("wrapper path {path} exists and is not a regular file; remove it")]
    NotAFile { path: PathBuf },
}

/// Quotes one word for a POSIX shell: `'` + word with every `'` as `'\''` + `'`.
pub fn shell_quote(word: &str) -> String {
    let mut s = String::with_capacity(word.len() + 2);
    s.push('\'');
    for c in word.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// The script text for `path args...`.
pub fn script(path: &str, args: &[String]) -> String {
    let mut s = String::from("#!/bin/sh\nexec ");
    s.push_str(&shell_quote(path));
    for a in args {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s.push_str(" \"$@\"\n");
    s
}

/// Whether `file_name` looks like a wrapper berth wrote: `<name>.<64 hex>`.
pub fn is_wrapper_name(file_name: &str) -> bool {
    match file_name.rsplit_once('.') {
        Some((name, digest)) => {
            crate::load::valid_runtime_name(name)
                && digest.len() == 64
                && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

/// Prefix of the temp files used for atomic writes.
pub const TEMP_PREFIX: &str = ".tmp-";

impl Wrapper {
    /// Computes the wrapper of runtime `name` (nothing is written).
    pub fn plan(dir: &Path, name: &str, path: &str, args: &[String]) -> Wrapper {
        let content = script(path, args);
        let digest = hex::encode(Sha256::digest(content.as_bytes()));
        Wrapper { path: dir.join(format!("{name}.{digest}")), digest, content }
    }

    /// Makes sure the wrapper is on disk with the right content and mode 0700.
    /// A correct existing file is left alone (verified, not rewritten).
    pub fn materialize(&self) -> Result<Materialized, WrapperError> {
        ensure_dir(self.path.parent().expect("wrapper path has a parent"))?;
        self.materialize_in_dir()
    }

    /// [`Wrapper::materialize`] when the caller has already run
    /// [`ensure_dir`] on the wrapper directory (once for many wrappers).
    pub fn materialize_in_dir(&self) -> Result<Materialized, WrapperError> {
        let dir = self.path.parent().expect("wrapper path has a parent");
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if !meta.file_type().is_file() => Err(WrapperError::NotAFile { path: self.path.clone() }),
            Ok(meta) => {
                if meta.permissions().mode() & 0o7777 == MODE && self.content_matches()? {
                    return Ok(Materialized::Verified);
                }
                self.write_atomic(dir)?;
                tracing::warn!(wrapper = %self.path.display(), "wrapper content or mode did not match its digest; restored it");
                Ok(Materialized::Repaired)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.write_atomic(dir)?;
                Ok(Materialized::Written)
            }
            Err(e) => Err(WrapperError::Write { path: self.path.clone(), source: e }),
        }
    }

    /// Whether the file on disk holds exactly `content`.
    pub fn content_matches(&self) -> Result<bool, WrapperError> {
        let err = |e| WrapperError::Write { path: self.path.clone(), source: e };
        let mut f = File::open(&self.path).map_err(err)?;
        let mut buf = Vec::with_capacity(self.content.len() + 1);
        // Read one byte more than expected to notice a longer file.
        Read::by_ref(&mut f).take(self.content.len() as u64 + 1).read_to_end(&mut buf).map_err(err)?;
        Ok(buf == self.content.as_bytes())
    }

    fn write_atomic(&self, dir: &Path) -> Result<(), WrapperError> {
        let err = |e| WrapperError::Write { path: self.path.clone(), source: e };
        let file_name = self.path.file_name().expect("wrapper has a file name").to_string_lossy();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TEMP_PREFIX}{file_name}.{}.{n}", std::process::id()));
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(MODE).open(&tmp).map_err(err)?;
        let res = (|| {
            f.write_all(self.content.as_bytes())?;
            f.set_permissions(fs::Permissions::from_mode(MODE))?;
            drop(f);
            fs::rename(&tmp, &self.path)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(err)
    }
}

/// Creates the wrapper directory with mode 0700 (and fixes its mode).
pub fn ensure_dir(dir: &Path) -> Result<(), WrapperError> {
    let err = |e| WrapperError::Dir { dir: dir.to_path_buf(), source: e };
    fs::create_dir_all(dir).map_err(err)?;
    let meta = fs::metadata(dir).map_err(err)?;
    if meta.permissions().mode() & 0o7777 != MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(MODE)).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_quotes_every_word() {
        let s = script("/usr/bin/runsc", &["--platform=ptrace".into(), "it's $HOME; *".into()]);
        assert_eq!(s, "#!/bin/sh\nexec '/usr/bin/runsc' '--platform=ptrace' 'it'\\''s $HOME; *' \"$@\"\n");
    }

    #[test]
    fn name_is_content_addressed() {
        let dir = Path::new("/x");
        let a = Wrapper::plan(dir, "vm", "/bin/vm", &["--debug".into()]);
        let b = Wrapper::plan(dir, "vm", "/bin/vm", &["--debug".into()]);
        let c = Wrapper::plan(dir, "vm", "/bin/vm", &["--debug ".into()]);
        assert_eq!(a, b);
        assert_ne!(a.path, c.path);
        let file_name = a.path.file_name().unwrap().to_str().unwrap();
        assert!(is_wrapper_name(file_name), "{file_name}");
        assert_eq!(a.digest, hex::encode(Sha256::digest(a.content.as_bytes())));
        assert!(!is_wrapper_name("vm"));
        assert!(!is_wrapper_name(".tmp-vm.abc"));
        assert!(!is_wrapper_name(&format!("vm.{}", "A".repeat(64))));
    }

    #[test]
    fn materialize_writes_then_verifies_then_repairs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtimes");
        let w = Wrapper::plan(&dir, "vm", "/bin/echo", &["a b".into()]);
        assert_eq!(w.materialize().unwrap(), Materialized::Written);
        let ino = fs::metadata(&w.path).unwrap().modified().unwrap();
        assert_eq!(w.materialize().unwrap(), Materialized::Verified);
        assert_eq!(fs::metadata(&w.path).unwrap().modified().unwrap(), ino, "verified, not rewritten");
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, MODE);
        assert_eq!(fs::metadata(&w.path).unwrap().permissions().mode() & 0o7777, MODE);
        fs::write(&w.path, "#!/bin/sh\nexec evil\n").unwrap();
        assert_eq!(w.materialize().unwrap(), Materialized::Repaired);
        assert!(w.content_matches().unwrap());
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn refuses_non_regular_files() {
        let tmp = tempfile::tempdir().unwrap();
        let w = Wrapper::plan(tmp.path(), "vm", "/bin/echo", &["a".into()]);
        fs::create_dir(&w.path).unwrap();
        assert!(matches!(w.materialize(), Err(WrapperError::NotAFile { .. })));
    }
}
