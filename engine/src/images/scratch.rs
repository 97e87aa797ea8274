//! Scratch directories for uploads (`docker import`, `docker load`):
//! `<data-root>/tmp/import-*` and `load-*`. Each is removed when its
//! request ends; a daemon killed in the middle leaves them behind, so the
//! engine removes leftovers at start-up, before it serves anything.

use std::path::{Path, PathBuf};

/// Prefixes of the scratch directories berth creates.
const PREFIXES: [&str; 2] = ["import-", "load-"];

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
                let r = if entry.file_type()?.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
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
        let (removed, error) = s.clean();
        assert_eq!((removed, error.map(|e| e.to_string())), (2, None));
        assert!(!load.exists() && !import.exists());
        assert!(s.base().join("someone-else").exists());
        // A live one is removed on drop.
        let live = s.create(ScratchKind::Import).unwrap();
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }
}
