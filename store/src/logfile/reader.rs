//! The json-file reader: tail, since/until, stream selection, follow.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tracing::debug;

use super::{JsonLineIn, LogEntry, LogStream, LogSubscription};
use crate::error::LogError;
use crate::timefmt::parse_rfc3339;

/// Bytes read from the file per batch.
const CHUNK: usize = 256 * 1024;
/// How often a follower looks at the file when no writer notifies it.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a follower looks at the file even when a writer notifies it
/// (a safety net only).
const NOTIFIED_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Which entries to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tail {
    /// The whole file (`tail=all`).
    #[default]
    All,
    /// The last N lines of the file (`tail=N`; 0 = none, useful with
    /// follow). As in Docker, lines are counted before the since/until and
    /// stream filters.
    Last(usize),
}

/// What to read. The `timestamps` option of `docker logs` needs nothing
/// here: every entry carries its time, and the API layer formats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Where to start.
    pub tail: Tail,
    /// Skip entries older than this.
    pub since: Option<SystemTime>,
    /// Stop at the first entry newer than this (and, when following, at
    /// this time).
    pub until: Option<SystemTime>,
    /// Include stdout entries.
    pub stdout: bool,
    /// Include stderr entries.
    pub stderr: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { tail: Tail::All, since: None, until: None, stdout: true, stderr: true }
    }
}

/// Blocking, non-following reader: an iterator over the entries selected
/// by [`ReadOptions`]. Lines that are not valid entries (a torn line after
/// a crash, foreign garbage) are skipped; a trailing line without newline
/// is not yet complete and is not returned.
pub struct LogIter {
    path: PathBuf,
    file: File,
    opts: ReadOptions,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    /// An entry newer than `until` was seen: nothing more is returned.
    past_until: bool,
    ready: VecDeque<LogEntry>,
}

impl LogIter {
    /// Opens the log and positions it according to `opts.tail`.
    pub fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<LogIter, LogError> {
        let path = path.as_ref().to_path_buf();
        let mut file = File::open(&path).map_err(|source| LogError::Open { path: path.clone(), source })?;
        if let Tail::Last(n) = opts.tail {
            let start = tail_offset(&mut file, n).map_err(|e| LogError::from_io(&path, e))?;
            file.seek(SeekFrom::Start(start)).map_err(|e| LogError::from_io(&path, e))?;
        }
        Ok(LogIter { path, file, opts, buf: Vec::new(), pos: 0, past_until: false, ready: VecDeque::new() })
    }

    /// Reads at most one chunk and parses the complete lines in it into
    /// `self.ready`. Returns the number of bytes read (0 at the current
    /// end of the file).
    fn read_batch(&mut self) -> Result<usize, LogError> {
        if self.past_until {
            return Ok(0);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(LogError::from_io(&self.path, e));
                }
            }
        };
        self.buf.truncate(old + n);
        // Decode every complete line; an unfinished one stays in `buf`
        // until a later read completes it.
        while let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
            let line_end = self.pos + i;
            let line = &self.buf[self.pos..line_end];
            self.pos = line_end + 1;
            if line.is_empty() {
                continue;
            }
            let Some(entry) = parse_line(line) else {
                debug!(path = %self.path.display(), "skipping a log line that is not a valid entry");
                continue;
            };
            if let Some(until) = self.opts.until {
                if entry.time > until {
                    self.past_until = true;
                    break;
                }
            }
            if self.opts.since.is_some_and(|since| entry.time < since) {
                continue;
            }
            let wanted = match entry.stream {
                LogStream::Stdout => self.opts.stdout,
                LogStream::Stderr => self.opts.stderr,
            };
            if wanted {
                self.ready.push_back(entry);
            }
        }
        Ok(n)
    }

    /// The next entry, reading on as needed; `None` at the end of the file
    /// (for now: more may be appended later) or past `until`.
    fn next_entry(&mut self) -> Option<Result<LogEntry, LogError>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            match self.read_batch() {
                Ok(0) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Iterator for LogIter {
    type Item = Result<LogEntry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
}

/// Decodes one line of the file.
fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let raw: JsonLineIn = serde_json::from_slice(line).ok()?;
    let time = parse_rfc3339(&raw.time)?;
    Some(LogEntry { stream: raw.stream, time, line: raw.log.into_bytes() })
}

/// Offset of the first of the last `n` complete lines (scanning backwards
/// in chunks; bytes after the last newline are an unfinished line and do
/// not count).
fn tail_offset(file: &mut File, n: usize) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        // Start at the end, but before an unfinished line if any.
        return last_newline_end(file, len);
    }
    let mut seen = 0usize;
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        for (i, &b) in part.iter().enumerate().rev() {
            if b == b'\n' {
                seen += 1;
                if seen == n + 1 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// Offset just after the last newline at or before `len` (0 if none).
fn last_newline_end(file: &mut File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Async log reader: returns the selected entries and, when following,
/// keeps returning new ones as they are appended until the container stops.
///
/// Following ends (after everything written so far has been returned) when
/// the writer behind the [`LogSubscription`] is closed or dropped, when the
/// caller's stop signal fires, or when `until` passes. New data is noticed
/// through the subscription at once; without one the file is polled every
/// 200 ms. Dropping the reader stops it. File reads run on tokio's blocking
/// pool, so a reader never stalls the async workers.
pub struct LogReader {
    iter: Option<LogIter>,
    follow: bool,
    notify: Option<LogSubscription>,
    stop: Option<StopSignal>,
    /// Set once a stop condition was seen: read to the end, then finish.
    stopping: bool,
    done: bool,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").field("follow", &self.follow).field("done", &self.done).finish()
    }
}

impl LogReader {
    /// Opens the log at `path` (positioning for `tail` on the blocking
    /// pool). Without [`Self::follow`] the reader ends at the end of the
    /// file.
    pub async fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<LogReader, LogError> {
        let path = path.as_ref().to_path_buf();
        let iter = blocking(move || LogIter::open(&path, opts)).await?;
        Ok(LogReader { iter: Some(iter), follow: false, notify: None, stop: None, stopping: false, done: false })
    }

    /// Keeps reading after the end of the file. `notify` is the writer's
    /// [`crate::logfile::LogWriter::subscribe`] if the container has a live
    /// writer in this process (`None` = poll; then only `stop` or `until`
    /// end the stream). `stop` is the "container stopped" signal (e.g. a
    /// oneshot receiver or a cancellation token's future).
    pub fn follow<S>(mut self, notify: Option<LogSubscription>, stop: S) -> Self
    where
        S: Future<Output = ()> + Send + 'static,
    {
        self.follow = true;
        self.notify = notify;
        self.stop = Some(Box::pin(stop));
        self
    }

    /// The next entry; `None` when the reader is finished.
    pub async fn next(&mut self) -> Option<Result<LogEntry, LogError>> {
        loop {
            if self.done {
                return None;
            }
            let iter = self.iter.as_mut()?;
            if let Some(entry) = iter.ready.pop_front() {
                return Some(Ok(entry));
            }
            // Mark the current progress as seen *before* reading, so a burst
            // appended after our read still wakes us below.
            if let Some(rx) = self.notify.as_mut() {
                if rx.borrow_and_update().closed {
                    self.stopping = true;
                }
            }
            let mut iter = self.iter.take()?;
            let (iter, result) = blocking(move || {
                let r = iter.read_batch();
                (iter, r)
            })
            .await;
            let past_until = iter.past_until;
            self.iter = Some(iter);
            match result {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            // At the end of the file for now.
            if !self.follow || self.stopping || past_until {
                self.done = true;
                return None;
            }
            self.wait_for_more().await;
        }
    }

    /// Waits until new data may be there or a stop condition fires (which
    /// sets `stopping`: one more pass to the end, then finish).
    async fn wait_for_more(&mut self) {
        let poll = if self.notify.is_some() { NOTIFIED_POLL_INTERVAL } else { POLL_INTERVAL };
        let until_sleep = async {
            match time_until(self.iter.as_ref()) {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            match self.stop.as_mut() {
                Some(s) => s.as_mut().await,
                None => std::future::pending().await,
            }
        };
        let notified = async {
            match self.notify.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        // The writer is gone: nothing more will come.
                        return true;
                    }
                    rx.borrow().closed
                }
                None => std::future::pending().await,
            }
        };
        let stopping = tokio::select! {
            closed = notified => closed,
            () = stop => true,
            () = until_sleep => true,
            () = tokio::time::sleep(poll) => false,
        };
        if stopping {
            self.stopping = true;
            // A fired stop future must not be polled again.
            self.stop = None;
        }
    }
}

/// Time left until `until`, if set.
fn time_until(iter: Option<&LogIter>) -> Option<Duration> {
    let until = iter?.opts.until?;
    Some(until.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let mut f = File::create(&p).unwrap();
        for l in lines {
            f.write_all(l.as_bytes()).unwrap();
        }
        (d, p)
    }

    #[test]
    fn tail_offsets() {
        let (_d, p) = file_with(&["a\n", "bb\n", "ccc\n", "unfinished"]);
        let mut f = File::open(&p).unwrap();
        assert_eq!(tail_offset(&mut f, 1).unwrap(), 5);
        assert_eq!(tail_offset(&mut f, 2).unwrap(), 2);
        assert_eq!(tail_offset(&mut f, 3).unwrap(), 0);
        assert_eq!(tail_offset(&mut f, 10).unwrap(), 0);
        assert_eq!(tail_offset(&mut f, 0).unwrap(), 9);
        let (_d, p) = file_with(&[]);
        let mut f = File::open(&p).unwrap();
        assert_eq!(tail_offset(&mut f, 5).unwrap(), 0);
        assert_eq!(tail_offset(&mut f, 0).unwrap(), 0);
    }

    #[test]
    fn skips_garbage_and_unfinished_lines() {
        let (_d, p) = file_with(&[
            "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.000000001Z\"}\n",
            "garbage\n",
            "\n",
            "{\"log\":\"two\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:00Z\",\"attrs\":{}}\n",
            "{\"log\":\"bad time\",\"stream\":\"stderr\",\"time\":\"yesterday\"}\n",
            "{\"log\":\"torn",
        ]);
        let got: Vec<_> = LogIter::open(&p, ReadOptions::default()).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, b"one\n");
        assert_eq!(got[0].timestamp(), "2026-01-01T00:00:00.000000001Z");
        assert_eq!(got[1].stream, LogStream::Stderr);
        let only_err: Vec<_> = LogIter::open(&p, ReadOptions { stdout: false, ..Default::default() })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(only_err.len(), 1);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = LogIter::open("/nonexistent/x-json.log", ReadOptions::default()).err().unwrap();
        assert!(e.to_string().contains("cannot open container log /nonexistent/x-json.log"), "{e}");
    }
}
