//! Gzipping rotated log files, off the write path: one background thread
//! for the whole daemon takes jobs from a queue; a writer only enqueues.
//!
//! A job names the rotated file by the rotation that created it, so it
//! finds the file again after later rotations shifted it. It compresses
//! into a temp file, fsyncs it, and then, under the log's [`FileSet`] lock,
//! renames it to `<base>.<idx>.gz` and only then removes the plain file:
//! at every instant one complete copy exists. A file rotated out of the
//! set meanwhile is skipped.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use tracing::{debug, warn};

use super::files::{gz_temp, rotated_path, FileSet};

/// A rotated file to compress.
pub(crate) struct Job {
    pub files: Arc<FileSet>,
    /// The writer's rotation count when the file had index `idx`.
    pub rotation: u64,
    pub idx: u32,
    /// Files kept (the live one included): an index at or past it is gone.
    pub max_files: u32,
    /// Time of the file's last entry, for the gzip header (as dockerd).
    pub last_time: Option<String>,
}

impl Job {
    /// Where the file is now, or `None` if it has been rotated away.
    fn current_idx(&self, rotations: u64) -> Option<u32> {
        let idx = u64::from(self.idx) + rotations.checked_sub(self.rotation)?;
        u32::try_from(idx).ok().filter(|&i| i < self.max_files)
    }
}

/// Queues a job; returns at once.
pub(crate) fn submit(job: Job) {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("berth-log-gzip".into()).spawn(move || {
            for job in rx {
                run(&job);
                job.files.job_done();
            }
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the log compression thread; rotated logs stay uncompressed");
        }
        Mutex::new(tx)
    });
    job.files.job_started();
    let sent = queue.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    if let Err(mpsc::SendError(job)) = sent {
        job.files.job_done();
    }
}

fn run(job: &Job) {
    let base = job.files.base();
    let tmp = gz_temp(base);
    match compress(job) {
        Ok(true) => {}
        Ok(false) => {
            let _ = std::fs::remove_file(&tmp);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // The container may have been removed meanwhile.
            if base.parent().is_some_and(|d| d.exists()) {
                warn!(log = %base.display(), error = %e, "compressing a rotated log file failed; it stays uncompressed");
            } else {
                debug!(log = %base.display(), error = %e, "log directory gone while compressing");
            }
        }
    }
}

/// Compresses the job's file; `Ok(false)` when there was nothing to do.
fn compress(job: &Job) -> io::Result<bool> {
    let base = job.files.base();
    let src = {
        let rotations = job.files.lock();
        let Some(idx) = job.current_idx(*rotations) else { return Ok(false) };
        match File::open(rotated_path(base, idx, false)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
    };
    let tmp = gz_temp(base);
    let out = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&tmp)?;
    let mut builder = GzBuilder::new();
    if let Some(t) = &job.last_time {
        builder = builder.extra(serde_json::json!({ "lastTime": t }).to_string().into_bytes());
    }
    let mut enc: GzEncoder<File> = builder.write(out, Compression::default());
    io::copy(&mut BufReader::with_capacity(256 * 1024, src), &mut enc)?;
    let mut out = enc.finish()?;
    out.flush()?;
    out.sync_all()?;
    drop(out);

    {
        let rotations = job.files.lock();
        let Some(idx) = job.current_idx(*rotations) else { return Ok(false) };
        if !rotated_path(base, idx, false).exists() {
            return Ok(false);
        }
        std::fs::rename(&tmp, rotated_path(base, idx, true))?;
    }
    // The gzipped copy must be durable before the plain one goes; the
    // writer does not wait for this fsync (the lock is not held).
    if let Some(dir) = base.parent() {
        crate::fsutil::fsync_dir(dir)?;
    }
    let rotations = job.files.lock();
    if let Some(idx) = job.current_idx(*rotations) {
        match std::fs::remove_file(rotated_path(base, idx, false)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(true)
}
