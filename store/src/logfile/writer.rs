//! The json-file writer, with dockerd's size-based rotation.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::warn;

use super::compress::{self, Job};
use super::files::{self, FileSet};
use super::{JsonLineOut, LogStream, PARTIAL_MAX};
use crate::error::LogError;
use crate::timefmt::format_rfc3339_nano;

/// Progress of a log, published by its writer after every burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogProgress {
    /// Length of the live file after the last complete burst.
    pub len: u64,
    /// Rotations done since the writer opened the log.
    pub rotations: u64,
    /// The writer was closed (the container stopped): no more data comes.
    pub closed: bool,
}

/// A follower's handle on a writer (see [`LogWriter::subscribe`]): wakes
/// it after every burst, rotation and on close, and lets it find the files
/// a rotation moved. Pass it to [`super::LogReader::open_live`].
#[derive(Debug, Clone)]
pub struct LogSubscription {
    pub(crate) rx: watch::Receiver<LogProgress>,
    pub(crate) files: Arc<FileSet>,
}

impl LogSubscription {
    /// The writer's latest progress.
    pub fn progress(&self) -> LogProgress {
        *self.rx.borrow()
    }
}

/// When to rotate (dockerd's `max-size`, `max-file`, `compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a write once the live file has this many bytes
    /// (`None` = never: one file that grows).
    pub max_size: Option<u64>,
    /// Files kept, the live one included (1 = the live file is replaced).
    pub max_files: u32,
    /// Gzip rotated files (on a background thread).
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { max_size: None, max_files: 1, compress: false }
    }
}

struct Inner {
    file: File,
    /// Length of the live file after the last complete burst.
    len: u64,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
    /// Encoded lines of the current burst (reused).
    buf: Vec<u8>,
    /// Time of the last entry written (for compressed files' headers).
    last_time: Option<String>,
    closed: bool,
}

/// Appends one container's stdout and stderr to its json-file log and
/// rotates it as configured.
///
/// Share it (`Arc<LogWriter>`) between the stdout and stderr copiers: each
/// [`LogWriter::write`] is a burst that is encoded and appended under an
/// internal lock, so entries of the two streams never interleave mid-line.
/// Data reaches the kernel at the end of every burst (no fsync: like
/// Docker, a machine crash may lose the last seconds of output, a berth
/// crash loses nothing written). Blocking I/O.
///
/// Rotation (as dockerd): before an entry is written, if the live file has
/// reached `max_size`, the files are shifted (`.1` → `.2` …, the oldest
/// dropped) and the live file becomes `.1`, so a file exceeds `max_size` by
/// at most one entry. The renames take the log's file-set lock, which
/// readers also take to open a consistent set; compression runs on a
/// background thread and never blocks a write.
pub struct LogWriter {
    path: PathBuf,
    rotation: Rotation,
    files: Arc<FileSet>,
    inner: Mutex<Inner>,
    progress: watch::Sender<LogProgress>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").field("path", &self.path).field("rotation", &self.rotation).finish()
    }
}

fn open_live(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).append(true).create(true).mode(0o640).open(path)
}

/// The new live file after a rotation: empty (truncated if a failed
/// rotation left the old one in place).
fn open_empty(path: &Path) -> std::io::Result<File> {
    let f = open_live(path)?;
    if f.metadata()?.len() > 0 {
        f.set_len(0)?;
    }
    Ok(f)
}

impl LogWriter {
    /// Opens (creating if needed, mode 0640) the log for appending, without
    /// rotation.
    pub fn open(path: impl AsRef<Path>) -> Result<LogWriter, LogError> {
        Self::open_with(path, Rotation::default())
    }

    /// Opens the log for appending with `rotation`. If the live file ends
    /// in a torn line (a crash mid-write), a newline is added so the torn
    /// line stays alone (readers skip it). With rotation, rotated files
    /// left inconsistent by a crash mid-rotation are tidied first (see
    /// [`files::repair`]) and uncompressed ones queued for compression.
    pub fn open_with(path: impl AsRef<Path>, rotation: Rotation) -> Result<LogWriter, LogError> {
        let path = path.as_ref().to_path_buf();
        let rotation = Rotation { max_files: rotation.max_files.max(1), ..rotation };
        let open_err = |source| LogError::Open { path: path.clone(), source };
        let files = Arc::new(FileSet::new(path.clone()));
        let to_compress = if rotation.max_size.is_some() { files::repair(&path, rotation.max_files).map_err(open_err)? } else { Vec::new() };
        let mut file = open_live(&path).map_err(open_err)?;
        let mut len = file.metadata().map_err(open_err)?.len();
        if len > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(len - 1)).and_then(|_| file.read_exact(&mut last)).map_err(open_err)?;
            if last[0] != b'\n' {
                warn!(path = %path.display(), "container log ends in a torn line; it will be skipped by readers");
                file.write_all(b"\n").map_err(|e| LogError::from_io(&path, e))?;
                len += 1;
            }
        }
        if rotation.compress {
            for idx in to_compress {
                compress::submit(Job { files: files.clone(), rotation: 0, idx, max_files: rotation.max_files, last_time: None });
            }
        }
        let (progress, _) = watch::channel(LogProgress { len, rotations: 0, closed: false });
        Ok(LogWriter {
            path,
            rotation,
            files,
            inner: Mutex::new(Inner {
                file,
                len,
                pending: [Vec::new(), Vec::new()],
                buf: Vec::with_capacity(8192),
                last_time: None,
                closed: false,
            }),
            progress,
        })
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotation settings.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// A handle that wakes followers after every burst and on close.
    pub fn subscribe(&self) -> LogSubscription {
        LogSubscription { rx: self.progress.subscribe(), files: self.files.clone() }
    }

    /// Blocks until every rotated file queued for compression so far has
    /// been handled (for tests and orderly shutdown; writes never wait).
    pub fn wait_for_compression(&self) {
        self.files.wait_idle();
    }

    /// Appends output of one stream. Complete lines are stored at once;
    /// an unfinished line is kept until its newline, until it reaches
    /// [`PARTIAL_MAX`] bytes (then stored as a partial entry), or until
    /// [`Self::flush_partial`] / [`Self::close`].
    pub fn write(&self, stream: LogStream, data: &[u8]) -> Result<(), LogError> {
        let mut g = self.lock();
        if g.closed {
            return Err(LogError::Closed { path: self.path.clone() });
        }
        let time = format_rfc3339_nano(SystemTime::now());
        let inner = &mut *g;
        encode(&mut inner.buf, &mut inner.pending[stream.index()], stream, &time, data);
        self.commit(inner, &time)
    }

    /// Stores unfinished lines of both streams as partial entries now (e.g.
    /// a prompt without newline, on a timer or when a stream ends).
    pub fn flush_partial(&self) -> Result<(), LogError> {
        let mut g = self.lock();
        self.flush_partial_locked(&mut g)
    }

    /// Flushes unfinished lines and closes the writer: followers read to
    /// the end and stop. Later writes fail with [`LogError::Closed`].
    /// Idempotent; also done (ignoring errors) on drop.
    pub fn close(&self) -> Result<(), LogError> {
        let mut g = self.lock();
        if g.closed {
            return Ok(());
        }
        let r = self.flush_partial_locked(&mut g);
        g.closed = true;
        self.progress.send_modify(|p| p.closed = true);
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush_partial_locked(&self, inner: &mut Inner) -> Result<(), LogError> {
        if inner.pending.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let time = format_rfc3339_nano(SystemTime::now());
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let pending = std::mem::take(&mut inner.pending[stream.index()]);
            if !pending.is_empty() {
                emit(&mut inner.buf, stream, &time, &pending);
            }
            // Keep the allocation.
            inner.pending[stream.index()] = pending;
            inner.pending[stream.index()].clear();
        }
        self.commit(inner, &time)
    }

    /// Appends the encoded burst and publishes progress, rotating between
    /// entries whenever the live file has reached `max_size`. On a write
    /// failure the file is cut back to its last good length so no torn
    /// line stays behind, and the rest of the burst is dropped.
    fn commit(&self, inner: &mut Inner, time: &str) -> Result<(), LogError> {
        let mut start = 0;
        let mut result = Ok(());
        while start < inner.buf.len() {
            if self.rotation.max_size.is_some_and(|max| inner.len >= max) {
                self.rotate(inner);
            }
            let room = self.rotation.max_size.map(|max| max.saturating_sub(inner.len));
            let end = start + entries_filling(&inner.buf[start..], room);
            if let Err(e) = inner.file.write_all(&inner.buf[start..end]) {
                if let Err(e2) = inner.file.set_len(inner.len) {
                    warn!(path = %self.path.display(), error = %e2, "cannot cut a torn log line; readers will skip it");
                    // Make the next burst start on a fresh line.
                    let _ = inner.file.write_all(b"\n");
                }
                result = Err(LogError::from_io(&self.path, e));
                break;
            }
            inner.len += (end - start) as u64;
            inner.last_time = Some(time.to_owned());
            let len = inner.len;
            self.progress.send_modify(|p| p.len = len);
            start = end;
        }
        inner.buf.clear();
        if inner.buf.capacity() > 1 << 20 {
            inner.buf.shrink_to(64 * 1024);
        }
        result
    }

    /// Rotates the files and opens a new live file (dockerd's order). On
    /// failure the live file is truncated instead, as dockerd does: the
    /// disk bound holds even when a rename fails.
    fn rotate(&self, inner: &mut Inner) {
        let mut rotations = self.files.lock();
        let mut failed = None;
        for step in files::rotation_steps(&self.path, self.rotation.max_files) {
            if let Err(e) = step.apply() {
                failed = Some(e);
                break;
            }
        }
        if let Some(e) = &failed {
            warn!(path = %self.path.display(), error = %e, "rotating the container log failed; truncating it instead (its lines are lost)");
        }
        match open_empty(&self.path) {
            Ok(f) => inner.file = f,
            Err(e) => {
                // Keep appending to the old file; try again after another max-size.
                warn!(path = %self.path.display(), error = %e, "cannot create a new container log after rotation; still writing the old one");
                inner.len = 0;
                return;
            }
        }
        *rotations += 1;
        let now = *rotations;
        drop(rotations);
        inner.len = 0;
        self.progress.send_modify(|p| {
            p.len = 0;
            p.rotations = now;
        });
        if failed.is_none() && self.rotation.compress && self.rotation.max_files >= 2 {
            compress::submit(Job {
                files: self.files.clone(),
                rotation: now,
                idx: 1,
                max_files: self.rotation.max_files,
                last_time: inner.last_time.clone(),
            });
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Length of the prefix of `buf` (whole encoded entries, each ending in
/// its only `\n`) to write into a file with `room` bytes left: the entries
/// up to and including the one that reaches `room` (all with `None`).
fn entries_filling(buf: &[u8], room: Option<u64>) -> usize {
    let Some(room) = room else { return buf.len() };
    let from = usize::try_from(room).unwrap_or(usize::MAX).saturating_sub(1);
    if from >= buf.len() {
        return buf.len();
    }
    match buf[from..].iter().position(|&b| b == b'\n') {
        Some(i) => from + i + 1,
        None => buf.len(),
    }
}

/// Splits `data` into entries and appends them, encoded, to `buf`;
/// `pending` holds the unfinished line of this stream across calls.
fn encode(buf: &mut Vec<u8>, pending: &mut Vec<u8>, stream: LogStream, time: &str, mut data: &[u8]) {
    while !data.is_empty() {
        let room = PARTIAL_MAX - pending.len();
        let newline = data.iter().position(|&b| b == b'\n');
        match newline {
            Some(i) if i < room => {
                let line = &data[..=i];
                if pending.is_empty() {
                    emit(buf, stream, time, line);
                } else {
                    pending.extend_from_slice(line);
                    emit(buf, stream, time, pending);
                    pending.clear();
                }
                data = &data[i + 1..];
            }
            _ if data.len() < room => {
                // No newline and the line still fits: wait for more.
                pending.extend_from_slice(data);
                return;
            }
            _ => {
                // The line reaches PARTIAL_MAX: store a partial entry,
                // cut before a UTF-8 sequence that would be split.
                let take = utf8_cut(&data[..room]);
                if pending.is_empty() {
                    emit(buf, stream, time, &data[..take]);
                } else {
                    pending.extend_from_slice(&data[..take]);
                    emit(buf, stream, time, pending);
                    pending.clear();
                }
                data = &data[take..];
            }
        }
    }
}

/// Length of `chunk` without an incomplete UTF-8 sequence at its end (never
/// 0, so progress is guaranteed).
fn utf8_cut(chunk: &[u8]) -> usize {
    let n = chunk.len();
    for back in 1..=3.min(n) {
        let b = chunk[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back && n - back > 0 { n - back } else { n };
    }
    n
}

/// Appends one encoded entry to `buf`.
fn emit(buf: &mut Vec<u8>, stream: LogStream, time: &str, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let entry = JsonLineOut { log: &text, stream: stream.as_str(), time };
    // Writing JSON into a Vec cannot fail.
    serde_json::to_writer(&mut *buf, &entry).expect("encoding a log line into memory");
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buf: &[u8]) -> Vec<serde_json::Value> {
        buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[test]
    fn encodes_docker_json_lines() {
        let mut buf = Vec::new();
        let mut pending = Vec::new();
        encode(&mut buf, &mut pending, LogStream::Stderr, "T", b"a\nb\"c\n\npart");
        let v = lines(&buf);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], serde_json::json!({"log":"a\n","stream":"stderr","time":"T"}));
        assert_eq!(v[1]["log"], "b\"c\n");
        assert_eq!(v[2]["log"], "\n");
        assert_eq!(pending, b"part");
        buf.clear();
        encode(&mut buf, &mut pending, LogStream::Stderr, "T", b"ial\n");
        assert_eq!(lines(&buf)[0]["log"], "partial\n");
        assert!(pending.is_empty());
    }

    #[test]
    fn long_lines_become_partial_entries() {
        let mut buf = Vec::new();
        let mut pending = Vec::new();
        let data = vec![b'x'; PARTIAL_MAX * 2 + 10];
        encode(&mut buf, &mut pending, LogStream::Stdout, "T", &data);
        let v = lines(&buf);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["log"].as_str().unwrap().len(), PARTIAL_MAX);
        assert_eq!(pending.len(), 10);
    }

    #[test]
    fn never_splits_a_utf8_sequence() {
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut("aé".as_bytes()), 3);
        assert_eq!(utf8_cut(&"aé".as_bytes()[..2]), 1);
        assert_eq!(utf8_cut(&"a€".as_bytes()[..3]), 1);
        assert_eq!(utf8_cut(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(utf8_cut("a😀".as_bytes()), 5);
        // Invalid data is cut anywhere, but never to 0.
        assert_eq!(utf8_cut(&[0xF0]), 1);
        let mut buf = Vec::new();
        let mut pending = Vec::new();
        let mut data = vec![b'x'; PARTIAL_MAX - 1];
        data.extend_from_slice("é\n".as_bytes());
        encode(&mut buf, &mut pending, LogStream::Stdout, "T", &data);
        let v = lines(&buf);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["log"], "é\n");
    }

    #[test]
    fn writer_repairs_a_torn_tail_and_refuses_after_close() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        std::fs::write(&p, b"{\"log\":\"tor").unwrap();
        let w = LogWriter::open(&p).unwrap();
        w.write(LogStream::Stdout, b"ok\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\"log\":\"tor\n{\"log\":\"ok\\n\""), "{text}");
        let sub = w.subscribe();
        w.close().unwrap();
        assert!(sub.progress().closed);
        assert!(matches!(w.write(LogStream::Stdout, b"late\n"), Err(LogError::Closed { .. })));
    }

    fn copy_dir(from: &Path, to: &Path) {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    fn read_lines(p: &Path) -> Vec<String> {
        super::super::LogIter::open(p, Default::default()).unwrap().map(|e| String::from_utf8(e.unwrap().line).unwrap()).collect()
    }

    /// A kill at any point of a rotation (after any prefix of its steps)
    /// leaves logs that read back in order, losing only the file the
    /// rotation drops; a writer opening them again repairs them and goes on.
    #[test]
    fn a_kill_mid_rotation_leaves_readable_logs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let rot = Rotation { max_size: Some(400), max_files: 4, compress: true };
        let w = LogWriter::open_with(&p, rot).unwrap();
        for i in 0..40 {
            w.write(LogStream::Stdout, format!("{i:04}\n").as_bytes()).unwrap();
        }
        w.wait_for_compression();
        drop(w);
        // A half-compressed file too: `.1` plain beside a partial `.1.gz`.
        let one = files::rotated_path(&p, 1, false);
        let one_gz = files::rotated_path(&p, 1, true);
        std::fs::rename(&one_gz, &one).unwrap_or(());
        let mut dec = flate2::read::GzDecoder::new(std::fs::File::open(&one).unwrap());
        let mut plain = Vec::new();
        dec.read_to_end(&mut plain).unwrap();
        std::fs::write(&one, &plain).unwrap();
        std::fs::write(&one_gz, b"\x1f\x8b partial").unwrap();
        let before = read_lines(&p);
        assert!(before.len() > 10, "{before:?}");
        let oldest = files::list_rotated(&p).unwrap().last().unwrap().idx;
        assert_eq!(oldest, 3);
        let steps = files::rotation_steps(&p, 4);
        for k in 0..=steps.len() {
            let c = tempfile::tempdir().unwrap();
            copy_dir(d.path(), c.path());
            let cp = c.path().join("c-json.log");
            for s in &files::rotation_steps(&cp, 4)[..k] {
                s.apply().unwrap();
            }
            let got = read_lines(&cp);
            assert!(before.ends_with(&got), "after {k} steps: {got:?}");
            let dropped = if k >= 2 { before.len() - got.len() } else { 0 };
            assert!(got.len() + dropped == before.len() && (k < 2 || dropped > 0), "after {k} steps");
            // The writer repairs what it finds and continues.
            let w = LogWriter::open_with(&cp, rot).unwrap();
            w.write(LogStream::Stdout, b"after\n").unwrap();
            w.wait_for_compression();
            let mut want = got.clone();
            want.push("after\n".into());
            assert_eq!(read_lines(&cp), want, "after {k} steps, reopened");
            assert!(!files::gz_temp(&cp).exists());
            assert!(files::list_rotated(&cp).unwrap().iter().all(|r| r.plain != r.gz && r.idx < 4));
        }
    }
}
