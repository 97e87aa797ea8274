//! Container logs in Docker's json-file format.
//!
//! One JSON object per line:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-29T04:19:37.483365888Z"}`.
//! A line longer than [`PARTIAL_MAX`] bytes, or output still without a
//! newline when the writer is flushed or closed, is stored as several
//! entries; all but the last lack the trailing `\n` (Docker's "partial"
//! messages). Concatenating the `log` fields of a stream gives its output
//! back (bytes that are not UTF-8 become U+FFFD, as with Docker).
//!
//! - [`LogWriter`]: appends for both streams of one container, one `write`
//!   system call per burst (more when a burst crosses `max-size`), rotates
//!   by size as dockerd does (`<id>-json.log.1`, `.2.gz`, …; [`Rotation`])
//!   and tells followers in the same process.
//! - [`LogReader`]: async reader with tail / since / until / stream
//!   selection and follow, across rotated (also gzipped) files;
//!   [`LogIter`] is its blocking, non-follow core.
//! - `files`: naming, listing, rotation steps and crash repair;
//!   `compress`: the background gzip thread.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::timefmt::format_rfc3339_nano;

mod compress;
mod files;
mod reader;
mod writer;

pub use reader::{LogIter, LogReader, ReadOptions, Tail};
pub use writer::{LogProgress, LogSubscription, LogWriter, Rotation};

/// Longest entry the writer stores (Docker's 16 KiB): longer lines are split
/// into partial entries.
pub const PARTIAL_MAX: usize = 16 * 1024;

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`, as stored in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
        }
    }
}

/// One log entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The stream it was written to.
    pub stream: LogStream,
    /// When the writer received it.
    pub time: SystemTime,
    /// The bytes, including the trailing `\n` unless [`Self::is_partial`].
    pub line: Vec<u8>,
}

impl LogEntry {
    /// True for a piece of a longer line (no trailing newline).
    pub fn is_partial(&self) -> bool {
        !self.line.ends_with(b"\n")
    }

    /// The time as `docker logs -t` prints it (RFC 3339, nine fractional
    /// digits, UTC); the API layer adds the separating space.
    pub fn timestamp(&self) -> String {
        format_rfc3339_nano(self.time)
    }
}

/// A line as written.
#[derive(Serialize)]
struct JsonLineOut<'a> {
    log: &'a str,
    stream: &'static str,
    time: &'a str,
}

/// A line as read (unknown fields such as Docker's `attrs` are ignored).
#[derive(Deserialize)]
struct JsonLineIn {
    log: String,
    stream: LogStream,
    time: String,
}
