//! Scratch directories for uploads (`docker import`, `docker load`,
//! `docker cp` into a container): `<data-root>/tmp/import-*`, `load-*`,
//! `copy-*`, and the mount points of stopped containers' snapshots for
//! `docker cp` (`mount-*`). Each is removed when its request ends; a
//! daemon killed in the middle leaves them behind, so the engine removes
//! leftovers at start-up, before it serves anything: a mount point is
//! unmounted first and then only removed if empty (never recursively).

use std::path::{Path, PathBuf};

/// Prefixes of the scratch directories berth creates.
const PREFIXES: [&str; 4] = ["import-", "load-", "copy-", MOUNT_PREFIX];
const MOUNT_PREFIX: &str = "mount-";

/// Where scratch directories go.
#[derive(Debug, Clone)]
pub struct Scratch {
    base: PathBuf,
}

/// What kind of upload a scratch directory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchKind {
    Import,
    Load,
    /// A tar sent to `docker cp`.
    Copy,
    /// A mount point.
    Mount,
}

impl Scratch {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Scratch { base: base.into() }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// A new empty directory, removed when the handle is dropped (drop it
    /// off the async threads: it may hold gigabytes).
    pub fn create(&self, kind: ScratchKind) -> std::io::Result<tempfile::TempDir> {
        std::fs::create_dir_all(&self.base)?;
        let prefix = match kind {
            ScratchKind::Import => PREFIXES[0],
            ScratchKind::Load => PREFIXES[1],
            ScratchKind::Copy => PREFIXES[2],
            ScratchKind::Mount => MOUNT_PREFIX,
        };
        tempfile::Builder::new().prefix(prefix).tempdir_in(&self.base)
    }

    /// Removes every scratch directory left in the base (call it before
    /// any upload can start). Returns how many went, and the first error:
    /// an entry that cannot be removed does not stop the others. Entries
    /// it does not know are left alone. Blocking.
    pub fn clean(&self) -> (usize, Option<std::io::Error>) {
        let dir = match std::fs::read_dir(&self.base) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (0, None),
            Err(e) => return (0, Some(e)),
        };
        let mut removed = 0;
        let mut first_error = None;
        for entry in dir {
            let r = entry.and_then(|entry| {
                let ours = entry.file_name().to_str().is_some_and(|n| PREFIXES.iter().any(|p| n.starts_with(p)));
                if !ours {
                    return Ok(false);
                }
                let path = entry.path();
                let name = entry.file_name();
                let r = if name.to_str().is_some_and(|n| n.starts_with(MOUNT_PREFIX)) {
                    crate::cp::mount::unmount(&path).and_then(|()| std::fs::remove_dir(&path))
                } else if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match r {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(std::io::Error::new(e.kind(), format!("removing {}: {e}", path.display()))),
                }
            });
            match r {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (removed, first_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let s = Scratch::new(root.path().join("tmp"));
        assert_eq!(s.clean().0, 0, "no base yet");
        // What a killed daemon leaves: a load with unpacked files, an import.
        let load = s.create(ScratchKind::Load).unwrap().keep();
        std::fs::create_dir_all(load.join("files")).unwrap();
        std::fs::write(load.join("files/f1"), b"layer").unwrap();
        let import = s.create(ScratchKind::Import).unwrap().keep();
        std::fs::write(import.join("layer.tar"), b"x").unwrap();
        std::fs::write(s.base().join("someone-else"), b"keep").unwrap();
        // A mount point left mounted goes once unmounted; one that still
        // holds files (not a mount: never the container's) is kept.
        let mounted = s.create(ScratchKind::Mount).unwrap().keep();
        let source = root.path().join("source");
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("container-file"), b"x").unwrap();
        let bind = std::process::Command::new("mount").arg("--bind").arg(&source).arg(&mounted).status().is_ok_and(|s| s.success());
        let full = s.create(ScratchKind::Mount).unwrap().keep();
        std::fs::write(full.join("f"), b"x").unwrap();
        let (removed, error) = s.clean();
        assert_eq!(removed, 3, "bind mount made: {bind}");
        assert!(error.is_some_and(|e| e.to_string().contains("removing")), "the non-empty mount point is reported");
        assert!(!load.exists() && !import.exists());
        assert!(source.join("container-file").exists(), "the mounted files are untouched");
        assert!(!mounted.exists());
        assert!(full.join("f").exists());
        std::fs::remove_dir_all(&full).unwrap();
        assert!(s.base().join("someone-else").exists());
        // A live one is removed on drop.
        let live = s.create(ScratchKind::Import).unwrap();
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }
}
