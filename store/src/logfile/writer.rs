//! The json-file writer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::warn;

use super::{JsonLineOut, LogStream, PARTIAL_MAX};
use crate::error::LogError;
use crate::timefmt::format_rfc3339_nano;

/// Progress of a log file, published by its writer after every burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogProgress {
    /// File length after the last complete burst.
    pub len: u64,
    /// The writer was closed (the container stopped): no more data comes.
    pub closed: bool,
}

/// A follower's handle on a writer's progress (see
/// [`LogWriter::subscribe`]); pass it to [`super::LogReader::follow`].
pub type LogSubscription = watch::Receiver<LogProgress>;

struct Inner {
    file: File,
    /// Length of the file after the last complete burst.
    len: u64,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
    /// Encoded lines of the current burst (reused).
    buf: Vec<u8>,
    closed: bool,
}

/// Appends one container's stdout and stderr to its json-file log.
///
/// Share it (`Arc<LogWriter>`) between the stdout and stderr copiers: each
/// [`LogWriter::write`] is a burst that is encoded and appended with one
/// `write` system call under an internal lock, so entries of the two streams
/// never interleave mid-line. Data reaches the kernel at the end of every
/// burst (no fsync: like Docker, a machine crash may lose the last
/// seconds of output, a berth crash loses nothing written). Blocking I/O.
pub struct LogWriter {
    path: PathBuf,
    inner: Mutex<Inner>,
    progress: watch::Sender<LogProgress>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").field("path", &self.path).finish()
    }
}

impl LogWriter {
    /// Opens (creating if needed, mode 0640) the log for appending. If the
    /// file ends in a torn line (a crash mid-write), a newline is added so
    /// the torn line stays alone (readers skip it).
    pub fn open(path: impl AsRef<Path>) -> Result<LogWriter, LogError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| LogError::Open { path: path.clone(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o640).open(&path).map_err(open_err)?;
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
        let (progress, _) = watch::channel(LogProgress { len, closed: false });
        Ok(LogWriter {
            path,
            inner: Mutex::new(Inner { file, len, pending: [Vec::new(), Vec::new()], buf: Vec::with_capacity(8192), closed: false }),
            progress,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that wakes followers after every burst and on close.
    pub fn subscribe(&self) -> LogSubscription {
        self.progress.subscribe()
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
        self.commit(inner)
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
        let len = g.len;
        self.progress.send_replace(LogProgress { len, closed: true });
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
        self.commit(inner)
    }

    /// Appends the encoded burst with one write and publishes progress. On
    /// failure the file is cut back to its last good length so no torn
    /// line stays behind.
    fn commit(&self, inner: &mut Inner) -> Result<(), LogError> {
        if inner.buf.is_empty() {
            return Ok(());
        }
        let result = inner.file.write_all(&inner.buf);
        let n = inner.buf.len() as u64;
        inner.buf.clear();
        if inner.buf.capacity() > 1 << 20 {
            inner.buf.shrink_to(64 * 1024);
        }
        match result {
            Ok(()) => {
                inner.len += n;
                let len = inner.len;
                self.progress.send_replace(LogProgress { len, closed: false });
                Ok(())
            }
            Err(e) => {
                if let Err(e2) = inner.file.set_len(inner.len) {
                    warn!(path = %self.path.display(), error = %e2, "cannot cut a torn log line; readers will skip it");
                    // Make the next burst start on a fresh line.
                    inner.buf.push(b'\n');
                }
                Err(LogError::from_io(&self.path, e))
            }
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.close();
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
        assert!(sub.borrow().closed);
        assert!(matches!(w.write(LogStream::Stdout, b"late\n"), Err(LogError::Closed { .. })));
    }
}
