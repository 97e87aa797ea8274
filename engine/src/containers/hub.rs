//! A container's in-memory coordination point (never persisted): attached
//! clients, stdin from an attached client, the raw exit of the current run,
//! and a tick that wakes waiters whenever the container's state changes.
//!
//! One `Hub` lives per container from create (or restore) to removal; a
//! waiter or an attached client holds an `Arc<Hub>`, so it survives removal
//! and can still read the last exit code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_store::logfile::LogWriter;
use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch, Notify};

/// A piece of output for attached clients. With a TTY everything is `Stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// Input for the container's stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinMsg {
    Data(Bytes),
    /// Close the container's stdin (a `StdinOnce` client reached EOF).
    Eof,
}

/// What waiters watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Completed runs (exits recorded).
    pub exits: u64,
    /// Exit code of the last run.
    pub last_exit: i64,
    pub removed: bool,
}

/// The raw exit of a run, as containerd reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawExit {
    pub pid: u32,
    pub code: u32,
}

#[derive(Default)]
struct StdinState {
    tx: Option<mpsc::Sender<StdinMsg>>,
    pending: Option<mpsc::Receiver<StdinMsg>>,
}

/// How many chunks (of at most 32 KiB) an attached client may lag behind
/// before the output copier waits for it.
const SUBSCRIBER_BUFFER: usize = 64;

/// How long an attached client whose buffer is full may take nothing
/// before it is disconnected. A client that reads paces the output (as under
/// dockerd, nothing is dropped from its stream); one that stops reading
/// holds the container's output, its log and the other clients at most
/// this long, once.
pub const STALL_LIMIT: Duration = Duration::from_secs(5);

/// An attached client as the hub sees it.
struct Subscriber {
    tx: mpsc::Sender<Chunk>,
    /// Notified when the hub disconnects the client for not reading.
    dropped: Arc<Notify>,
}

/// What an attached client holds: the output, and a signal that it was
/// disconnected for not reading (then it must close its connection instead
/// of writing what is still buffered).
pub struct Attachment {
    pub output: mpsc::Receiver<Chunk>,
    pub dropped: Arc<Notify>,
}

/// The live part of a running container: what its exit must clean up.
pub struct Run {
    pub pid: u32,
    pub io: Option<tokio::task::JoinHandle<()>>,
    pub fifos: berth_containerd::FifoSet,
}

/// Restart-policy bookkeeping (in memory, like dockerd's).
#[derive(Debug, Clone, Copy, Default)]
pub struct RestartState {
    /// `docker stop`/`kill` by a user: no restart until the next start.
    pub manually_stopped: bool,
    /// Next back-off delay.
    pub delay: std::time::Duration,
    /// When the current run started.
    pub started: Option<std::time::Instant>,
}

pub struct Hub {
    run: Mutex<Option<Run>>,
    pub restart: Mutex<RestartState>,
    subscribers: Mutex<Vec<Subscriber>>,
    stdin: Mutex<StdinState>,
    tick: watch::Sender<Tick>,
    exited: watch::Sender<Option<RawExit>>,
    log: Mutex<Option<Arc<LogWriter>>>,
    /// `State.Health` and the health monitor of the current run.
    pub health: crate::health::Tracker,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            run: Mutex::new(None),
            restart: Mutex::new(RestartState::default()),
            subscribers: Mutex::new(Vec::new()),
            stdin: Mutex::new(StdinState::default()),
            tick: watch::channel(Tick::default()).0,
            exited: watch::channel(None).0,
            log: Mutex::new(None),
            health: Default::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Attaches a client: it receives the output of the current run (or of
    /// the next one, if the container is not running) until that run's
    /// output ends.
    pub fn attach(&self) -> Attachment {
        let (tx, output) = mpsc::channel(SUBSCRIBER_BUFFER);
        let dropped = Arc::new(Notify::new());
        lock(&self.subscribers).push(Subscriber { tx, dropped: dropped.clone() });
        Attachment { output, dropped }
    }

    /// Sends a piece of output to every attached client; returns how many
    /// were disconnected for taking nothing for [`STALL_LIMIT`] while their
    /// buffer was full. Clients that went away are forgotten.
    pub async fn broadcast(&self, chunk: &Chunk) -> usize {
        let subs: Vec<(mpsc::Sender<Chunk>, Arc<Notify>)> = {
            let mut subs = lock(&self.subscribers);
            subs.retain(|s| !s.tx.is_closed());
            subs.iter().map(|s| (s.tx.clone(), s.dropped.clone())).collect()
        };
        let mut full = Vec::new();
        for (tx, dropped) in subs {
            match tx.try_send(chunk.clone()) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(c)) => full.push((tx, dropped, c)),
            }
        }
        if full.is_empty() {
            return 0;
        }
        // One deadline for all: slow clients together hold the output at
        // most STALL_LIMIT per chunk, and only while one of them reads.
        let deadline = tokio::time::Instant::now() + STALL_LIMIT;
        let mut disconnected = 0;
        for (tx, dropped, c) in full {
            if tokio::time::timeout_at(deadline, tx.send(c)).await.is_err() {
                lock(&self.subscribers).retain(|s| !s.tx.same_channel(&tx));
                dropped.notify_one();
                disconnected += 1;
            }
        }
        disconnected
    }

    /// The run's output ended: attached clients see the end of the stream.
    pub fn end_output(&self) {
        lock(&self.subscribers).clear();
    }

    /// A sender into the container's stdin, for an attached client. Data
    /// sent before the container starts is delivered when it does.
    pub fn stdin(&self) -> mpsc::Sender<StdinMsg> {
        let mut s = lock(&self.stdin);
        if let Some(tx) = &s.tx {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(64);
        s.tx = Some(tx.clone());
        s.pending = Some(rx);
        tx
    }

    /// For a starting run: the receiver its stdin pump reads.
    pub fn take_stdin(&self) -> mpsc::Receiver<StdinMsg> {
        let mut s = lock(&self.stdin);
        if let Some(rx) = s.pending.take() {
            return rx;
        }
        let (tx, rx) = mpsc::channel(64);
        s.tx = Some(tx);
        rx
    }

    /// Forget stdin of a finished run.
    pub fn reset_stdin(&self) {
        *lock(&self.stdin) = StdinState::default();
    }

    pub fn watch_tick(&self) -> watch::Receiver<Tick> {
        self.tick.subscribe()
    }

    pub fn tick(&self) -> Tick {
        *self.tick.borrow()
    }

    /// Records an exit for waiters.
    pub fn record_exit(&self, code: i64) {
        self.tick.send_modify(|t| {
            t.exits += 1;
            t.last_exit = code;
        });
    }

    pub fn mark_removed(&self) {
        self.tick.send_modify(|t| t.removed = true);
    }

    /// Set by the event loop the moment containerd reports the exit.
    pub fn set_exited(&self, exit: Option<RawExit>) {
        self.exited.send_replace(exit);
    }

    pub fn watch_exited(&self) -> watch::Receiver<Option<RawExit>> {
        self.exited.subscribe()
    }

    pub fn set_run(&self, run: Run) {
        *lock(&self.run) = Some(run);
    }

    pub fn take_run(&self) -> Option<Run> {
        lock(&self.run).take()
    }

    /// The container's log writer (opened once, shared by every run).
    pub fn log(&self, path: &std::path::Path, rotation: berth_store::logfile::Rotation) -> Result<Arc<LogWriter>, berth_store::LogError> {
        let mut l = lock(&self.log);
        if let Some(w) = &*l {
            return Ok(w.clone());
        }
        let w = Arc::new(LogWriter::open_with(path, rotation)?);
        *l = Some(w.clone());
        Ok(w)
    }

    /// The log writer if one is open (for `logs --follow`).
    pub fn current_log(&self) -> Option<Arc<LogWriter>> {
        lock(&self.log).clone()
    }

    pub fn close_log(&self) {
        if let Some(w) = lock(&self.log).take() {
            let _ = w.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdin_before_start_is_delivered() {
        let hub = Hub::default();
        let tx = hub.stdin();
        tx.send(StdinMsg::Data(Bytes::from_static(b"abc"))).await.unwrap();
        tx.send(StdinMsg::Eof).await.unwrap();
        let mut rx = hub.take_stdin();
        assert_eq!(rx.recv().await, Some(StdinMsg::Data(Bytes::from_static(b"abc"))));
        assert_eq!(rx.recv().await, Some(StdinMsg::Eof));
    }

    #[tokio::test]
    async fn attach_ends_with_the_output() {
        let hub = Hub::default();
        let mut a = hub.attach();
        assert_eq!(hub.broadcast(&Chunk::Stdout(Bytes::from_static(b"x"))).await, 0);
        hub.end_output();
        assert_eq!(a.output.recv().await, Some(Chunk::Stdout(Bytes::from_static(b"x"))));
        assert_eq!(a.output.recv().await, None);
    }

    fn chunk(i: usize) -> Chunk {
        Chunk::Stdout(Bytes::from(i.to_string()))
    }

    /// A client that stops reading is disconnected after STALL_LIMIT; one
    /// that reads keeps getting every chunk, in order, without loss.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_disconnected() {
        let hub = Arc::new(Hub::default());
        let stalled = hub.attach();
        let mut reader = hub.attach();
        let got = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = reader.output.recv().await {
                got.push(c);
            }
            got
        });
        let total = SUBSCRIBER_BUFFER * 3;
        let start = tokio::time::Instant::now();
        let mut disconnected = 0;
        for i in 0..total {
            disconnected += hub.broadcast(&chunk(i)).await;
        }
        hub.end_output();
        assert_eq!(disconnected, 1);
        assert_eq!(start.elapsed(), STALL_LIMIT, "the stalled client held the output once, for STALL_LIMIT");
        let got = got.await.unwrap();
        assert_eq!(got, (0..total).map(chunk).collect::<Vec<_>>());
        // The stalled client is told, and its stream holds what it had.
        tokio::time::timeout(Duration::from_secs(1), stalled.dropped.notified()).await.expect("told it was dropped");
        let mut output = stalled.output;
        let mut n = 0;
        while output.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, SUBSCRIBER_BUFFER);
    }

    /// A slow client that keeps reading paces the output and loses nothing.
    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_paces_the_output() {
        let hub = Arc::new(Hub::default());
        let mut slow = hub.attach();
        let got = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = slow.output.recv().await {
                tokio::time::sleep(STALL_LIMIT / 2).await;
                got.push(c);
            }
            got
        });
        let total = SUBSCRIBER_BUFFER + 4;
        let mut disconnected = 0;
        for i in 0..total {
            disconnected += hub.broadcast(&chunk(i)).await;
        }
        hub.end_output();
        assert_eq!(disconnected, 0);
        assert_eq!(got.await.unwrap(), (0..total).map(chunk).collect::<Vec<_>>());
    }

    /// A client that went away is forgotten without waiting.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_went_away_is_forgotten() {
        let hub = Hub::default();
        drop(hub.attach());
        let start = tokio::time::Instant::now();
        for i in 0..SUBSCRIBER_BUFFER * 2 {
            assert_eq!(hub.broadcast(&chunk(i)).await, 0);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(lock(&hub.subscribers).is_empty());
    }
}
