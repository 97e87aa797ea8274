//! Waiting for containers (`POST /containers/{id}/wait`) and reading their
//! logs (`GET /containers/{id}/logs`).

use std::future::Future;
use std::time::SystemTime;

use berth_store::logfile::{LogReader, ReadOptions, Tail};

use super::ContainerService;
use crate::error::{EngineError, Result};

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if not running, else at the exit.
    NotRunning,
    /// The next exit, even if the container is not running yet (`docker run`).
    NextExit,
    /// Removal (`docker run --rm`).
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidParameter(format!("invalid condition: \"{other}\"; use not-running, next-exit or removed"))),
        }
    }
}

/// Options of a log read.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub stdout: bool,
    pub stderr: bool,
}

impl ContainerService {
    /// Checks the container exists now and returns a future that resolves to
    /// the exit code when `condition` is met. (The API sends headers in
    /// between, as dockerd does.)
    pub fn waiter(&self, key: &str, condition: WaitCondition) -> Result<impl Future<Output = i64> + Send + 'static> {
        let rec = self.get(key)?;
        let hub = self.hub(&rec.id);
        let mut rx = hub.watch_tick();
        let start = *rx.borrow();
        let running = rec.state.running;
        let current_exit = rec.state.exit_code;
        Ok(async move {
            if condition == WaitCondition::NotRunning && !running {
                return current_exit;
            }
            let res = rx
                .wait_for(|t| match condition {
                    WaitCondition::Removed => t.removed,
                    _ => t.exits > start.exits || t.removed,
                })
                .await
                .map(|t| t.last_exit);
            // The hub is gone only if the container was removed before any exit.
            res.unwrap_or(current_exit)
        })
    }

    /// Opens a container's log for reading; with `follow` and a running
    /// container, the reader keeps going (across rotations) until the
    /// container exits. A container whose driver keeps no log (`none`)
    /// gets dockerd's 501.
    pub async fn logs(&self, key: &str, opts: LogsOptions) -> Result<LogReader> {
        let rec = self.get(key)?;
        if super::logconfig::rotation(&super::logconfig::settings(&rec)).is_none() {
            return Err(EngineError::NotImplemented(super::logconfig::NOT_READABLE.into()));
        }
        let path = self.store.log_path(&rec.id);
        let ro = ReadOptions {
            tail: opts.tail.map(Tail::Last).unwrap_or(Tail::All),
            since: opts.since,
            until: opts.until,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        if !path.exists() {
            // Never started: an empty log.
            let _ = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        }
        let hub = self.hub(&rec.id);
        let live = hub.current_log().map(|w| w.subscribe());
        let reader = LogReader::open_live(&path, ro, live)
            .await
            .map_err(|e| EngineError::Internal(format!("reading the log of {}: {e}", rec.id)))?;
        if !(opts.follow && rec.state.running) {
            return Ok(reader);
        }
        let mut rx = hub.watch_tick();
        let start = *rx.borrow();
        let stop = async move {
            let _ = rx.wait_for(|t| t.exits > start.exits || t.removed).await;
        };
        Ok(reader.follow(None, stop))
    }
}
