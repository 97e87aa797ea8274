//! FIFOs for task and exec stdio, opened without ever blocking.
//!
//! The shim opens the FIFOs itself during `Tasks.Create` / `Tasks.Exec`. A
//! blocking `open()` on our side would hang forever if that call fails (the
//! shim never opens its end). So:
//!
//! 1. [`FifoSet::create`] makes the FIFOs (before the RPC);
//! 2. [`FifoSet::open`] opens our ends non-blocking **before** the RPC: the
//!    read ends of stdout/stderr, plus a write end of each that we hold so a
//!    read before the shim connects waits instead of seeing EOF; stdin is
//!    opened read-write (never blocks, whether or not the shim is there);
//! 3. once the shim has opened the FIFOs — i.e. after `Tasks.Create`
//!    returns for a task, but only after `Tasks.Start` of the exec
//!    ([`crate::Tasks::start_process`]) for an exec, since the shim opens an
//!    exec's stdio when it starts it — or as soon as either RPC fails, call
//!    [`OpenFifos::release`]: our write ends close, so the readers see EOF
//!    exactly when the shim closes its ends (or at once if it never opened
//!    them). Releasing earlier makes a reader see EOF and close the read
//!    end, and the shim's open then times out.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::tasks::TaskIo;

/// A task reading one output stream to EOF (see [`OpenFifos::collect_output`]).
pub type OutputReader = JoinHandle<Vec<u8>>;

/// A directory holding the FIFOs of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoSet {
    /// The directory (removed by [`FifoSet::remove`]).
    pub dir: PathBuf,
    /// stdin FIFO, if wanted.
    pub stdin: Option<PathBuf>,
    /// stdout FIFO, if wanted.
    pub stdout: Option<PathBuf>,
    /// stderr FIFO, if wanted (not with a terminal).
    pub stderr: Option<PathBuf>,
}

/// Our ends of a [`FifoSet`].
#[derive(Debug)]
pub struct OpenFifos {
    /// Write here to feed the process's stdin; drop it to close stdin.
    pub stdin: Option<pipe::Sender>,
    /// The process's stdout.
    pub stdout: Option<pipe::Receiver>,
    /// The process's stderr.
    pub stderr: Option<pipe::Receiver>,
    holders: Vec<pipe::Sender>,
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidData(format!("FIFO path {} contains NUL", path.display())))?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(Error::io(format!("mkfifo {}", path.display()), err));
        }
    }
    Ok(())
}

impl FifoSet {
    /// Creates `dir` (mode 0700) and the wanted FIFOs (`stdin`, `stdout`,
    /// `stderr`, mode 0600) in it.
    pub fn create(dir: impl Into<PathBuf>, stdin: bool, stdout: bool, stderr: bool) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let make = |wanted: bool, name: &str| -> Result<Option<PathBuf>> {
            if !wanted {
                return Ok(None);
            }
            let p = dir.join(name);
            mkfifo(&p)?;
            Ok(Some(p))
        };
        Ok(FifoSet { stdin: make(stdin, "stdin")?, stdout: make(stdout, "stdout")?, stderr: make(stderr, "stderr")?, dir })
    }

    /// The paths as [`TaskIo`] (missing streams become "" = /dev/null).
    pub fn task_io(&self, terminal: bool) -> TaskIo {
        let s = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        TaskIo { stdin: s(&self.stdin), stdout: s(&self.stdout), stderr: s(&self.stderr), terminal }
    }

    /// Opens our ends without blocking (see the module docs). Call before
    /// the create/exec RPC; call [`OpenFifos::release`] after it.
    pub fn open(&self) -> Result<OpenFifos> {
        let ctx = |p: &Path| format!("opening FIFO {}", p.display());
        let mut holders = Vec::new();
        let mut reader = |p: &Option<PathBuf>| -> Result<Option<pipe::Receiver>> {
            let Some(p) = p else { return Ok(None) };
            let rx = pipe::OpenOptions::new().open_receiver(p).map_err(|e| Error::io(ctx(p), e))?;
            holders.push(pipe::OpenOptions::new().open_sender(p).map_err(|e| Error::io(ctx(p), e))?);
            Ok(Some(rx))
        };
        let stdout = reader(&self.stdout)?;
        let stderr = reader(&self.stderr)?;
        let stdin = match &self.stdin {
            Some(p) => Some(pipe::OpenOptions::new().read_write(true).open_sender(p).map_err(|e| Error::io(ctx(p), e))?),
            None => None,
        };
        Ok(OpenFifos { stdin, stdout, stderr, holders })
    }

    /// Removes the directory and the FIFOs.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", self.dir.display()), e)),
        }
    }
}

impl OpenFifos {
    /// Closes our placeholder write ends: from now on, EOF on stdout/stderr
    /// means the shim closed them (or never opened them).
    pub fn release(&mut self) {
        self.holders.clear();
    }

    /// Spawns tasks reading stdout and stderr to the end (after
    /// [`OpenFifos::release`] they finish when the process's output ends).
    pub fn collect_output(&mut self) -> (Option<OutputReader>, Option<OutputReader>) {
        (self.stdout.take().map(spawn_read_to_end), self.stderr.take().map(spawn_read_to_end))
    }
}

/// Reads a pipe to EOF in a task (read errors end the read).
pub fn spawn_read_to_end(mut rx: pipe::Receiver) -> OutputReader {
    tokio::spawn(async move {
        let mut out = Vec::new();
        if let Err(e) = rx.read_to_end(&mut out).await {
            tracing::debug!(error = %e, "FIFO read ended with an error");
        }
        out
    })
}
