//! The files of one container log, named as dockerd names them: the live
//! file `<id>-json.log` and the rotated ones `<id>-json.log.1` (newest) …
//! `.N` (oldest), each either plain or gzipped (`.N.gz`).
//!
//! Rotation is a sequence of renames and one unlink ([`rotation_steps`]),
//! each atomic, so a kill at any point leaves only whole files: every line
//! is in exactly one file, a file may be missing from the sequence (a gap)
//! and a rotated file may exist both plain and gzipped (compression
//! interrupted before the plain file was removed; the plain one is
//! complete). Readers cope with all of this ([`list_rotated`] orders by
//! index and prefers the plain copy); [`repair`] tidies it up when a
//! writer opens the log again.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

/// What rotation and compression share with readers of one log: the lock
/// under which files are renamed, and the number of rotations done so far
/// by the writer (it tells a follower which file is which).
#[derive(Debug)]
pub(crate) struct FileSet {
    base: PathBuf,
    rotations: Mutex<u64>,
    /// Compression jobs not finished yet.
    pending: Mutex<usize>,
    idle: Condvar,
}

impl FileSet {
    pub(crate) fn new(base: PathBuf) -> FileSet {
        FileSet { base, rotations: Mutex::new(0), pending: Mutex::new(0), idle: Condvar::new() }
    }

    /// The live file.
    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// Held while files are renamed, removed or opened as a set; the value
    /// is the number of completed rotations.
    pub(crate) fn lock(&self) -> MutexGuard<'_, u64> {
        self.rotations.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn job_started(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    pub(crate) fn job_done(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *p = p.saturating_sub(1);
        if *p == 0 {
            self.idle.notify_all();
        }
    }

    /// Blocks until no compression job of this log is queued or running.
    pub(crate) fn wait_idle(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while *p > 0 {
            p = self.idle.wait(p).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// `<base>.<idx>` or `<base>.<idx>.gz`.
pub(crate) fn rotated_path(base: &Path, idx: u32, gz: bool) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{idx}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(name)
}

/// Where a gzipped copy is written before it is renamed into place.
pub(crate) fn gz_temp(base: &Path) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".gz-tmp");
    PathBuf::from(name)
}

/// A rotated file as found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rotated {
    pub idx: u32,
    /// `<base>.<idx>` exists.
    pub plain: bool,
    /// `<base>.<idx>.gz` exists.
    pub gz: bool,
}

/// The rotated files of `base`, newest (lowest index) first.
pub(crate) fn list_rotated(base: &Path) -> io::Result<Vec<Rotated>> {
    let (Some(dir), Some(name)) = (base.parent(), base.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut found: Vec<Rotated> = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let (digits, gz) = match rest.strip_suffix(".gz") {
            Some(d) => (d, true),
            None => (rest, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
            continue;
        }
        let Ok(idx) = digits.parse::<u32>() else { continue };
        match found.iter_mut().find(|r| r.idx == idx) {
            Some(r) if gz => r.gz = true,
            Some(r) => r.plain = true,
            None => found.push(Rotated { idx, plain: !gz, gz }),
        }
    }
    found.sort_by_key(|r| r.idx);
    Ok(found)
}

/// One file system operation of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl Step {
    /// Runs the step; a missing source is not an error.
    pub(crate) fn apply(&self) -> io::Result<()> {
        let r = match self {
            Step::Remove(p) => fs::remove_file(p),
            Step::Rename(from, to) => fs::rename(from, to),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The steps of one rotation keeping `max_files` files (the live one
/// included), as dockerd does them: drop the oldest, shift every rotated
/// file up by one (plain and gzipped alike), then move the live file to
/// `.1` (or, with one file, unlink it: readers keep their open handle).
/// The caller then creates a new live file.
pub(crate) fn rotation_steps(base: &Path, max_files: u32) -> Vec<Step> {
    if max_files < 2 {
        return vec![Step::Remove(base.to_path_buf())];
    }
    let last = max_files - 1;
    let mut steps = vec![Step::Remove(rotated_path(base, last, false)), Step::Remove(rotated_path(base, last, true))];
    for i in (2..=last).rev() {
        for gz in [false, true] {
            steps.push(Step::Rename(rotated_path(base, i - 1, gz), rotated_path(base, i, gz)));
        }
    }
    steps.push(Step::Rename(base.to_path_buf(), rotated_path(base, 1, false)));
    steps
}

/// Tidies the rotated files of a log whose writer is opening it (nothing
/// else writes or compresses it then): removes an interrupted compression's
/// temp file and the gzipped copy of a file also present plain, closes gaps
/// left by an interrupted rotation (order kept), and removes files beyond
/// `max_files`. Returns the indices of plain rotated files (candidates for
/// compression).
pub(crate) fn repair(base: &Path, max_files: u32) -> io::Result<Vec<u32>> {
    remove_if_present(&gz_temp(base))?;
    let mut plain = Vec::new();
    for (k, r) in list_rotated(base)?.into_iter().enumerate() {
        if r.plain && r.gz {
            remove_if_present(&rotated_path(base, r.idx, true))?;
        }
        let gz = !r.plain;
        let target = u32::try_from(k + 1).unwrap_or(u32::MAX);
        if target >= max_files {
            remove_if_present(&rotated_path(base, r.idx, gz))?;
            continue;
        }
        if target != r.idx {
            fs::rename(rotated_path(base, r.idx, gz), rotated_path(base, target, gz))?;
        }
        if !gz {
            plain.push(target);
        }
    }
    Ok(plain)
}

fn remove_if_present(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A rotated file opened for reading.
#[derive(Debug)]
pub(crate) enum Opened {
    Plain(File),
    Gz(File),
}

/// Opens rotated file `idx`, plain if it is there, else gzipped (the plain
/// copy is removed only after the gzipped one is complete). `None` if
/// neither exists.
pub(crate) fn open_rotated(base: &Path, idx: u32) -> io::Result<Option<(PathBuf, Opened)>> {
    let plain = rotated_path(base, idx, false);
    match File::open(&plain) {
        Ok(f) => return Ok(Some((plain, Opened::Plain(f)))),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let gz = rotated_path(base, idx, true);
    match File::open(&gz) {
        Ok(f) => Ok(Some((gz, Opened::Gz(f)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn steps_shift_plain_and_gz_files_like_dockerd() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("c-json.log");
        for f in ["c-json.log", "c-json.log.1", "c-json.log.2.gz", "c-json.log.3.gz"] {
            fs::write(d.path().join(f), f).unwrap();
        }
        for s in rotation_steps(&base, 4) {
            s.apply().unwrap();
        }
        assert_eq!(names(d.path()), ["c-json.log.1", "c-json.log.2", "c-json.log.3.gz"]);
        assert_eq!(fs::read_to_string(d.path().join("c-json.log.1")).unwrap(), "c-json.log");
        assert_eq!(fs::read_to_string(d.path().join("c-json.log.3.gz")).unwrap(), "c-json.log.2.gz");
        assert_eq!(rotation_steps(&base, 1), [Step::Remove(base.clone())]);
    }

    #[test]
    fn listing_ignores_foreign_names() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("c-json.log");
        for f in ["c-json.log", "c-json.log.2.gz", "c-json.log.1", "c-json.log.1.gz", "c-json.log.gz-tmp", "c-json.log.x", "c-json.log.01", "other.1", "c-json.log.10"] {
            fs::write(d.path().join(f), "").unwrap();
        }
        let l = list_rotated(&base).unwrap();
        assert_eq!(
            l,
            [
                Rotated { idx: 1, plain: true, gz: true },
                Rotated { idx: 2, plain: false, gz: true },
                Rotated { idx: 10, plain: true, gz: false }
            ]
        );
    }

    #[test]
    fn repair_closes_gaps_and_drops_duplicates_and_extras() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("c-json.log");
        for f in ["c-json.log", "c-json.log.1", "c-json.log.1.gz", "c-json.log.3.gz", "c-json.log.5", "c-json.log.6", "c-json.log.gz-tmp"] {
            fs::write(d.path().join(f), f).unwrap();
        }
        let plain = repair(&base, 4).unwrap();
        assert_eq!(names(d.path()), ["c-json.log", "c-json.log.1", "c-json.log.2.gz", "c-json.log.3"]);
        assert_eq!(fs::read_to_string(d.path().join("c-json.log.3")).unwrap(), "c-json.log.5");
        assert_eq!(plain, [1, 3]);
    }
}
