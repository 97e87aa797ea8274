//! The json-file reader: tail, since/until, stream selection, follow;
//! across the rotated files (plain or gzipped) as well as the live one.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use tracing::{debug, warn};

use super::files::{self, FileSet, Opened};
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
    /// Everything kept (`tail=all`).
    #[default]
    All,
    /// The last N lines (`tail=N`; 0 = none, useful with follow), counted
    /// across the rotated files. As in Docker, lines are counted before the
    /// since/until and stream filters.
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

/// How a file is read.
enum Source {
    Plain(File),
    /// Not started yet (the decoder is made when reading begins).
    Gz(File),
    Decoding(Box<GzDecoder<BufReader<File>>>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self {
                Source::Plain(f) => return f.read(buf),
                Source::Decoding(d) => return d.read(buf),
                Source::Gz(f) => {
                    let f = f.try_clone()?;
                    *self = Source::Decoding(Box::new(GzDecoder::new(BufReader::with_capacity(64 * 1024, f))));
                }
            }
        }
    }
}

/// One file of the log, opened (so a rotation cannot take it away).
struct Segment {
    path: PathBuf,
    source: Source,
    /// Complete lines to skip at its start (a tail that starts inside a
    /// gzipped file).
    skip: usize,
    /// The live file: more may be appended.
    live: bool,
    /// Where reading stops (the live file's length when a reader that does
    /// not follow opened it, as dockerd bounds it): `docker logs --tail 3`
    /// of a container that writes fast gives 3 lines, not what came after.
    end: Option<u64>,
}

impl Segment {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (&mut self.source, self.end) {
            (Source::Plain(f), Some(end)) => {
                let pos = f.stream_position()?;
                let room = end.saturating_sub(pos).min(buf.len() as u64) as usize;
                if room == 0 {
                    return Ok(0);
                }
                f.read(&mut buf[..room])
            }
            (source, _) => source.read(buf),
        }
    }
}

impl Segment {
    fn open(path: PathBuf, opened: Opened) -> Segment {
        let source = match opened {
            Opened::Plain(f) => Source::Plain(f),
            Opened::Gz(f) => Source::Gz(f),
        };
        Segment { path, source, skip: 0, live: false, end: None }
    }
}

/// Blocking, non-following reader: an iterator over the entries selected
/// by [`ReadOptions`], oldest file first. Lines that are not valid entries
/// (a torn line after a crash, foreign garbage) are skipped; a trailing
/// line without newline is not yet complete and is not returned.
pub struct LogIter {
    path: PathBuf,
    /// Files still to read after `cur`, oldest first.
    queue: VecDeque<Segment>,
    cur: Option<Segment>,
    /// The writer's rotation count when the live file was opened.
    live_rotation: u64,
    opts: ReadOptions,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    /// An entry newer than `until` was seen: nothing more is returned.
    past_until: bool,
    ready: VecDeque<LogEntry>,
}

impl LogIter {
    /// Opens the log (the live file at `path` and its rotated files) and
    /// positions it according to `opts.tail`.
    pub fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<LogIter, LogError> {
        Self::open_set(path.as_ref(), opts, None)
    }

    /// Opens every file of the log under the writer's file-set lock when
    /// there is a writer, so no rotation happens in between.
    fn open_set(path: &Path, opts: ReadOptions, files: Option<&FileSet>) -> Result<LogIter, LogError> {
        let path = path.to_path_buf();
        let io_err = |e| LogError::from_io(&path, e);
        let mut segments = Vec::new();
        let guard = files.map(FileSet::lock);
        let live_rotation = guard.as_deref().copied().unwrap_or(0);
        if opts.tail != Tail::Last(0) {
            for r in files::list_rotated(&path).map_err(io_err)?.into_iter().rev() {
                if let Some((p, opened)) = files::open_rotated(&path, r.idx).map_err(io_err)? {
                    segments.push(Segment::open(p, opened));
                }
            }
        }
        match File::open(&path) {
            Ok(f) => {
                let end = f.metadata().map_err(io_err)?.len();
                segments.push(Segment { path: path.clone(), source: Source::Plain(f), skip: 0, live: true, end: Some(end) })
            }
            // A crash between moving the live file away and creating the
            // new one: the rotated files are all there is.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !segments.is_empty() => {}
            Err(source) => return Err(LogError::Open { path: path.clone(), source }),
        }
        drop(guard);
        if let Some(since) = opts.since {
            // Gzipped files record their last entry's time: skip those
            // entirely older than `since` without decompressing them.
            segments.retain_mut(|s| match &mut s.source {
                Source::Gz(f) => gz_last_time(f).is_none_or(|t| t >= since),
                _ => true,
            });
        }
        if let Tail::Last(n) = opts.tail {
            position_tail(&mut segments, n).map_err(io_err)?;
        }
        let mut queue: VecDeque<Segment> = segments.into();
        let cur = queue.pop_front();
        Ok(LogIter {
            path,
            queue,
            cur,
            live_rotation,
            opts,
            buf: Vec::new(),
            pos: 0,
            past_until: false,
            ready: VecDeque::new(),
        })
    }

    /// The writer rotated past the live file this reader holds (which has
    /// been read to its end): queue the files that came after it, oldest
    /// first, and the new live file. Files already rotated away (a reader
    /// more than `max-file` rotations behind) are skipped, as dockerd
    /// does, with a warning.
    fn advance(&mut self, files: &FileSet) -> Result<(), LogError> {
        let io_err = |e| LogError::from_io(&self.path, e);
        let rotations = files.lock();
        let now = *rotations;
        if now <= self.live_rotation {
            return Ok(());
        }
        // Rotated files newer than ours have indices 1 ..= now - ours - 1.
        let newer = now - self.live_rotation - 1;
        let mut found = 0u64;
        let mut next = Vec::new();
        for r in files::list_rotated(&self.path).map_err(io_err)?.into_iter().rev() {
            if u64::from(r.idx) > newer {
                continue;
            }
            if let Some((p, opened)) = files::open_rotated(&self.path, r.idx).map_err(io_err)? {
                next.push(Segment::open(p, opened));
                found += 1;
            }
        }
        let live = File::open(&self.path).map_err(|source| LogError::Open { path: self.path.clone(), source })?;
        drop(rotations);
        if found < newer {
            warn!(log = %self.path.display(), files = newer - found, "a log follower fell behind by more than max-file rotations; the lines in between were rotated away");
        }
        self.live_rotation = now;
        self.cur = None;
        self.buf.clear();
        self.pos = 0;
        self.queue.extend(next);
        self.queue.push_back(Segment { path: self.path.clone(), source: Source::Plain(live), skip: 0, live: true, end: None });
        self.cur = self.queue.pop_front();
        Ok(())
    }

    /// Reads at most one chunk and parses the complete lines in it into
    /// `self.ready`. Returns the number of bytes read (0 at the current
    /// end of the live file, or of the last file).
    fn read_batch(&mut self) -> Result<usize, LogError> {
        if self.past_until {
            return Ok(0);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let n = loop {
            let Some(seg) = self.cur.as_mut() else { return Ok(0) };
            let old = self.buf.len();
            self.buf.resize(old + CHUNK, 0);
            let r = loop {
                match seg.read(&mut self.buf[old..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match r {
                Ok(0) if !seg.live => {
                    // A rotated file is complete: an unfinished line at its
                    // end will never be completed. Go on with the next file.
                    self.buf.clear();
                    self.cur = self.queue.pop_front();
                    if self.cur.is_none() {
                        return Ok(0);
                    }
                }
                Ok(n) => {
                    self.buf.truncate(old + n);
                    break n;
                }
                Err(e) => {
                    self.buf.truncate(old);
                    let path = seg.path.clone();
                    if !seg.live {
                        // A damaged rotated file (e.g. a truncated gzip):
                        // say so and go on with the next one.
                        warn!(log = %path.display(), error = %e, "cannot read a rotated log file; skipping the rest of it");
                        self.buf.clear();
                        self.cur = self.queue.pop_front();
                        continue;
                    }
                    return Err(LogError::from_io(&path, e));
                }
            }
        };
        // Decode every complete line; an unfinished one stays in `buf`
        // until a later read completes it.
        while let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
            let line_end = self.pos + i;
            let line = &self.buf[self.pos..line_end];
            self.pos = line_end + 1;
            if let Some(seg) = self.cur.as_mut().filter(|s| s.skip > 0) {
                seg.skip -= 1;
                continue;
            }
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

    /// The next entry, reading on as needed; `None` at the end of the log
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

/// Keeps only what the last `n` lines need: walks the files newest first,
/// counting lines, drops the files before the one where the tail starts
/// and positions that one (a byte offset in a plain file, lines to skip in
/// a gzipped one). `n == 0`: the end of the live file.
fn position_tail(segments: &mut Vec<Segment>, n: usize) -> io::Result<()> {
    if n == 0 {
        segments.retain(|s| s.live);
        if let Some(Segment { source: Source::Plain(f), .. }) = segments.last_mut() {
            let len = f.seek(SeekFrom::End(0))?;
            let start = last_newline_end(f, len)?;
            f.seek(SeekFrom::Start(start))?;
        }
        return Ok(());
    }
    let mut need = n;
    for i in (0..segments.len()).rev() {
        let seg = &mut segments[i];
        let found = match &mut seg.source {
            Source::Plain(f) => {
                let (offset, found) = tail_back(f, need)?;
                f.seek(SeekFrom::Start(offset))?;
                found
            }
            Source::Gz(f) => {
                let total = count_lines_gz(f)?;
                f.seek(SeekFrom::Start(0))?;
                if total >= need {
                    seg.skip = total - need;
                }
                total.min(need)
            }
            Source::Decoding(_) => 0,
        };
        if found >= need {
            segments.drain(..i);
            return Ok(());
        }
        need -= found;
    }
    Ok(())
}

/// Complete lines in a gzipped file (read to its end).
fn count_lines_gz(f: &mut File) -> io::Result<usize> {
    f.seek(SeekFrom::Start(0))?;
    let mut d = GzDecoder::new(BufReader::with_capacity(64 * 1024, &*f));
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match d.read(&mut chunk) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += chunk[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The time of the last entry recorded in a gzipped file's header (as
/// dockerd writes it: `{"lastTime": "<RFC 3339>"}` in the extra field).
/// Leaves the file at its start.
fn gz_last_time(f: &mut File) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "lastTime")]
        last_time: String,
    }
    f.seek(SeekFrom::Start(0)).ok()?;
    let d = GzDecoder::new(&*f);
    let t = d.header().and_then(|h| h.extra()).and_then(|x| serde_json::from_slice::<Meta>(x).ok()).and_then(|m| parse_rfc3339(&m.last_time));
    drop(d);
    f.seek(SeekFrom::Start(0)).ok()?;
    t
}

/// Decodes one line of the file.
fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let raw: JsonLineIn = serde_json::from_slice(line).ok()?;
    let time = parse_rfc3339(&raw.time)?;
    Some(LogEntry { stream: raw.stream, time, line: raw.log.into_bytes() })
}

/// Offset of the first of the last `n` (≥ 1) complete lines of a plain
/// file and how many there are from there (fewer than `n` when the file
/// has fewer; then the offset is 0). Scans backwards in chunks; bytes
/// after the last newline are an unfinished line and do not count.
fn tail_back(file: &mut File, n: usize) -> io::Result<(u64, usize)> {
    let len = file.seek(SeekFrom::End(0))?;
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
                    return Ok((start + i as u64 + 1, n));
                }
            }
        }
        end = start;
    }
    Ok((0, seen))
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
/// keeps returning new ones as they are appended until the container stops,
/// across rotations.
///
/// Following ends (after everything written so far has been returned) when
/// the writer behind the [`LogSubscription`] is closed or dropped, when the
/// caller's stop signal fires, or when `until` passes. New data is noticed
/// through the subscription at once; without one the file is polled every
/// 200 ms (and rotations are not followed). Dropping the reader stops it.
/// File reads run on tokio's blocking pool, so a reader never stalls the
/// async workers.
///
/// A rotation never loses lines for a follower that keeps up: it holds the
/// file it reads open, reads it to its end once the writer has moved on,
/// then continues with the files that came after it. One that falls more
/// than `max-file` rotations behind skips what was deleted meanwhile.
pub struct LogReader {
    iter: Option<LogIter>,
    follow: bool,
    live: Option<LogSubscription>,
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
    /// pool) when no writer is live. Without [`Self::follow`] the reader
    /// ends at the end of the log.
    pub async fn open(path: impl AsRef<Path>, opts: ReadOptions) -> Result<LogReader, LogError> {
        Self::open_live(path, opts, None).await
    }

    /// Opens the log of a container whose writer may be live: with its
    /// [`crate::logfile::LogWriter::subscribe`] handle the set of files is
    /// opened under the writer's file-set lock (no rotation in between),
    /// and a follower is woken by the writer and follows its rotations.
    pub async fn open_live(path: impl AsRef<Path>, opts: ReadOptions, live: Option<LogSubscription>) -> Result<LogReader, LogError> {
        let path = path.as_ref().to_path_buf();
        let files = live.as_ref().map(|l| l.files.clone());
        let iter = blocking(move || LogIter::open_set(&path, opts, files.as_deref())).await?;
        Ok(LogReader { iter: Some(iter), follow: false, live, stop: None, stopping: false, done: false })
    }

    /// Keeps reading after the end of the log. `notify` is the writer's
    /// [`crate::logfile::LogWriter::subscribe`] if not given to
    /// [`Self::open_live`] already (`None` = the one given there, or poll;
    /// then only `stop` or `until` end the stream). `stop` is the
    /// "container stopped" signal (e.g. a oneshot receiver or a
    /// cancellation token's future).
    pub fn follow<S>(mut self, notify: Option<LogSubscription>, stop: S) -> Self
    where
        S: Future<Output = ()> + Send + 'static,
    {
        self.follow = true;
        if let Some(iter) = self.iter.as_mut() {
            // A follower reads what is appended after it opened the log.
            iter.cur.iter_mut().chain(iter.queue.iter_mut()).for_each(|s| s.end = None);
        }
        if let Some(n) = notify {
            if self.live.is_none() {
                // Opened without the writer: its current file is the one
                // we hold (best effort).
                if let Some(iter) = self.iter.as_mut() {
                    iter.live_rotation = n.progress().rotations;
                }
            }
            self.live = Some(n);
        }
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
            // appended (or a rotation done) after our read still wakes us.
            let mut rotated = false;
            if let Some(live) = self.live.as_mut() {
                let p = *live.rx.borrow_and_update();
                if p.closed {
                    self.stopping = true;
                }
                rotated = self.follow && p.rotations > iter.live_rotation;
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
            // At the end of the live file for now.
            if rotated && !past_until {
                let (Some(mut iter), Some(files)) = (self.iter.take(), self.live.as_ref().map(|l| l.files.clone())) else {
                    return None;
                };
                let (iter, r) = blocking(move || {
                    let r = iter.advance(&files);
                    (iter, r)
                })
                .await;
                self.iter = Some(iter);
                if let Err(e) = r {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
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
        let poll = if self.live.is_some() { NOTIFIED_POLL_INTERVAL } else { POLL_INTERVAL };
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
            match self.live.as_mut() {
                Some(l) => {
                    if l.rx.changed().await.is_err() {
                        // The writer is gone: nothing more will come.
                        return true;
                    }
                    l.rx.borrow().closed
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
    fn a_reader_that_does_not_follow_stops_where_the_log_ended_when_opened() {
        let line = |i: usize| format!("{{\"log\":\"{i}\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-03T10:00:00.000000000Z\"}}\n");
        let first: Vec<String> = (0..5).map(line).collect();
        for tail in [Tail::All, Tail::Last(3)] {
            let (_d, p) = file_with(&first.iter().map(String::as_str).collect::<Vec<_>>());
            let iter = LogIter::open(&p, ReadOptions { tail, ..Default::default() }).unwrap();
            // The container keeps writing after the reader opened the log.
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            for i in 5..2000 {
                f.write_all(line(i).as_bytes()).unwrap();
            }
            let got: Vec<String> = iter.map(|e| String::from_utf8(e.unwrap().line).unwrap()).collect();
            let want = if tail == Tail::All { 5 } else { 3 };
            assert_eq!(got.len(), want, "{tail:?}: {got:?}");
            assert_eq!(got.last().map(String::as_str), Some("4\n"), "{tail:?}");
        }
    }

    #[test]
    fn tail_offsets() {
        let (_d, p) = file_with(&["a\n", "bb\n", "ccc\n", "unfinished"]);
        let mut f = File::open(&p).unwrap();
        assert_eq!(tail_back(&mut f, 1).unwrap(), (5, 1));
        assert_eq!(tail_back(&mut f, 2).unwrap(), (2, 2));
        assert_eq!(tail_back(&mut f, 3).unwrap(), (0, 3));
        assert_eq!(tail_back(&mut f, 10).unwrap(), (0, 3));
        assert_eq!(last_newline_end(&mut f, 19).unwrap(), 9);
        let (_d, p) = file_with(&[]);
        let mut f = File::open(&p).unwrap();
        assert_eq!(tail_back(&mut f, 5).unwrap(), (0, 0));
        assert_eq!(last_newline_end(&mut f, 0).unwrap(), 0);
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
