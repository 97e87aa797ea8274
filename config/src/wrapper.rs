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
//! existing file is verified (regular file, owner, mode, content), never
//! rewritten in place: one that does not match is replaced whole (temp file
//! created `O_EXCL|O_NOFOLLOW`, then `rename`). Loads verify every wrapper
//! of their snapshot, and so does every container start for the wrapper it
//! is about to use ([`crate::ConfigStore::ensure_wrapper`]). The directory
//! must be berth's own (owner, not a symlink) and is kept at mode 0700.
//! The script execs the binary the probe found (absolute), not a bare name.
//!
//! Durability: wrappers live in the exec root (`/run/berth`, a tmpfs on a
//! normal host), are written to a temp file and renamed into place, and are
//! not fsynced. Nothing needs them to survive a power loss: the containers
//! that pin them do not survive one either, and every start of berth verifies
//! (and repairs) the wrappers of the configuration it loads before anything
//! can use them. Skipping the fsyncs keeps a reload of 100 changed runtimes
//! within a few milliseconds on a disk file system too.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    /// The file was missing and was written.
    Written,
    /// A file with this name had other content (or mode, or owner, or was
    /// a symbolic link); it was replaced atomically by the right one.
    /// Someone tampered with it.
    Repaired,
}

/// Errors writing or verifying a wrapper.
#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    #[error("cannot create the wrapper directory {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    /// The wrapper directory is not berth's own: wrappers in it cannot be trusted.
    #[error("the wrapper directory {dir} {why}; berth runs the files in it as runtimes, so it refuses to use it: remove the directory (berth creates it again) or fix it")]
    UnsafeDir { dir: PathBuf, why: String },
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
            Ok(meta) if meta.is_dir() => Err(WrapperError::NotAFile { path: self.path.clone() }),
            Ok(meta) => {
                if self.intact(&meta)? {
                    return Ok(Materialized::Verified);
                }
                // rename(2) replaces a planted symlink itself, never its target.
                self.write_atomic(dir)?;
                tracing::warn!(wrapper = %self.path.display(), "wrapper content, mode or owner did not match its digest; restored it");
                Ok(Materialized::Repaired)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.write_atomic(dir)?;
                Ok(Materialized::Written)
            }
            Err(e) => Err(WrapperError::Write { path: self.path.clone(), source: e }),
        }
    }

    /// Whether the file on disk is this wrapper, unchanged: a regular file
    /// (not a symlink) owned by berth's user, mode 0700, holding exactly
    /// `content`. Reads nothing but the file; writes nothing.
    pub fn verify(&self) -> Result<bool, WrapperError> {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) => self.intact(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(WrapperError::Write { path: self.path.clone(), source: e }),
        }
    }

    fn intact(&self, meta: &fs::Metadata) -> Result<bool, WrapperError> {
        Ok(meta.file_type().is_file()
            && meta.permissions().mode() & 0o7777 == MODE
            && meta.uid() == euid()
            && self.content_matches()?)
    }

    /// Whether the file on disk holds exactly `content` (a symlink at the
    /// wrapper's path does not count: it is not followed).
    pub fn content_matches(&self) -> Result<bool, WrapperError> {
        let err = |e| WrapperError::Write { path: self.path.clone(), source: e };
        let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        let mut buf = Vec::with_capacity(self.content.len() + 1);
        // Read one byte more than expected to notice a longer file.
        Read::by_ref(&mut f).take(self.content.len() as u64 + 1).read_to_end(&mut buf).map_err(err)?;
        Ok(buf == self.content.as_bytes())
    }

    /// Writes the wrapper to a temp file created with `O_EXCL|O_NOFOLLOW`
    /// (a file or symlink already at the temp path is never opened, let
    /// alone followed: the next name is tried) and renames it into place.
    fn write_atomic(&self, dir: &Path) -> Result<(), WrapperError> {
        let err = |e| WrapperError::Write { path: self.path.clone(), source: e };
        let file_name = self.path.file_name().expect("wrapper has a file name").to_string_lossy();
        let (tmp, mut f) = (0..TEMP_ATTEMPTS)
            .find_map(|attempt| {
                let tmp = dir.join(temp_name(&file_name, attempt));
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(MODE)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&tmp)
                {
                    Ok(f) => Some(Ok((tmp, f))),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        tracing::warn!(file = %tmp.display(), "a file is in the way of a wrapper's temp file; not touching it, trying another name");
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            })
            .unwrap_or_else(|| {
                Err(io::Error::other(format!(
                    "{TEMP_ATTEMPTS} temp file names in {} are taken; remove the {TEMP_PREFIX}* files there",
                    dir.display()
                )))
            })
            .map_err(err)?;
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

/// How many temp names [`Wrapper::materialize`] tries before giving up.
const TEMP_ATTEMPTS: u32 = 16;

/// The temp file name of attempt `attempt` at writing `file_name`.
fn temp_name(file_name: &str, attempt: u32) -> String {
    format!("{TEMP_PREFIX}{file_name}.{}.{attempt}", std::process::id())
}

fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// What [`ensure_dir`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirCheck {
    /// The directory was sound.
    Ok,
    /// It was created.
    Created,
    /// Its mode was not 0700 (group or other could write or read it); it
    /// was set to 0700.
    ModeFixed { was: u32 },
}

/// Creates the wrapper directory with mode 0700, or checks it: it must be a
/// directory (not a symlink) owned by berth's user, else it is refused; a
/// mode other than 0700 is fixed, with a warning naming the directory.
pub fn ensure_dir(dir: &Path) -> Result<DirCheck, WrapperError> {
    let err = |e| WrapperError::Dir { dir: dir.to_path_buf(), source: e };
    let mut created = false;
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    match fs::DirBuilder::new().mode(MODE).create(dir) {
        Ok(()) => created = true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(err)?;
    let unsafe_dir = |why: String| WrapperError::UnsafeDir { dir: dir.to_path_buf(), why };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    if meta.uid() != euid() {
        return Err(unsafe_dir(format!("is owned by uid {}, not by berth's uid {}", meta.uid(), euid())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(MODE)).map_err(err)?;
        if !created {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:04o}"), "the wrapper directory's mode was not 0700 (others could change the wrappers in it); set it to 0700");
            return Ok(DirCheck::ModeFixed { was: mode });
        }
    }
    Ok(if created { DirCheck::Created } else { DirCheck::Ok })
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

    /// A symlink planted at the temp path (pointing at a file berth must not
    /// write) is neither followed nor removed; the wrapper is written
    /// through another temp name.
    #[test]
    fn a_symlink_at_the_temp_path_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtimes");
        ensure_dir(&dir).unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let w = Wrapper::plan(&dir, "vm", "/bin/echo", &["a".into()]);
        let file_name = w.path.file_name().unwrap().to_str().unwrap().to_string();
        let planted = dir.join(temp_name(&file_name, 0));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert_eq!(w.materialize().unwrap(), Materialized::Written);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n", "the symlink was followed");
        assert!(w.verify().unwrap());
        assert!(fs::symlink_metadata(&planted).unwrap().file_type().is_symlink());
    }

    /// A symlink at the wrapper's own path (even to a file with the right
    /// content) is not the wrapper: it is replaced, its target untouched.
    #[test]
    fn a_symlink_at_the_wrapper_path_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtimes");
        ensure_dir(&dir).unwrap();
        let w = Wrapper::plan(&dir, "vm", "/bin/echo", &["a".into()]);
        let elsewhere = tmp.path().join("elsewhere");
        fs::write(&elsewhere, &w.content).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(MODE)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &w.path).unwrap();
        assert!(!w.verify().unwrap());
        assert_eq!(w.materialize().unwrap(), Materialized::Repaired);
        assert!(fs::symlink_metadata(&w.path).unwrap().file_type().is_file());
        assert!(w.verify().unwrap());
        assert!(fs::symlink_metadata(&elsewhere).unwrap().file_type().is_file());
    }

    #[test]
    fn a_world_writable_wrapper_dir_is_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtimes");
        assert_eq!(ensure_dir(&dir).unwrap(), DirCheck::Created);
        assert_eq!(ensure_dir(&dir).unwrap(), DirCheck::Ok);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(ensure_dir(&dir).unwrap(), DirCheck::ModeFixed { was: 0o777 });
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, MODE);
    }

    /// berth runs as root: a wrapper directory another user owns (or a
    /// symlink in its place) is refused, naming the directory.
    #[test]
    fn a_foreign_or_symlinked_wrapper_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("runtimes");
        ensure_dir(&dir).unwrap();
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path; chown(2) only reads it.
        let rc = unsafe { libc::chown(c.as_ptr(), 65534, 65534) };
        assert_eq!(rc, 0, "this test needs root (chown): {}", io::Error::last_os_error());
        let e = ensure_dir(&dir).unwrap_err();
        assert!(matches!(e, WrapperError::UnsafeDir { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&dir.display().to_string()) && msg.contains("owned by uid 65534"), "{msg}");
        let w = Wrapper::plan(&dir, "vm", "/bin/echo", &["a".into()]);
        assert!(w.materialize().is_err());
        assert!(!w.path.exists(), "nothing written into a foreign directory");

        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("linked");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let msg = ensure_dir(&link).unwrap_err().to_string();
        assert!(msg.contains("is a symbolic link"), "{msg}");
    }
}
