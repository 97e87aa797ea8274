//! Health checks (Docker's `HEALTHCHECK`), as dockerd 20.10 runs them.
//!
//! A container whose config has a health check gets `State.Health` at
//! every start (status `starting`). While it runs, unpaused, a monitor task
//! probes it every `Interval` (the first probe one interval after the
//! start): each probe is an exec of the test in the container, killed
//! after `Timeout`. Exit 0 is healthy; anything else is a failure, counted
//! unless the container never was healthy and is still in its
//! `StartPeriod`; `Retries` consecutive counted failures make it
//! unhealthy. The last [`MAX_LOG`] results are kept, each output capped at
//! [`MAX_OUTPUT`] bytes. A status change is the event `health_status: …`.
//!
//! The state lives in the container's hub (memory only): a live-restored
//! container starts again from `starting`. The monitor stops at exit and
//! pause (unpause starts a new one, as dockerd does); a stopped monitor
//! finishes its running probe (bounded by the probe's timeout) and a pause
//! waits for it before freezing, since an exec cut off mid-start in a
//! container being frozen stalls containerd. It holds no lock across an
//! await: it reads and writes the state in short critical sections between
//! probes.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use berth_store::Healthcheck;
use tokio::sync::watch;

use crate::containers::hub::{Chunk, Hub};
use crate::exec::{ExecConfig, ExecService};
use crate::error::{EngineError, Result};

/// dockerd's defaults for zero durations and retries.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: i64 = 3;
/// The shortest duration a health check may set (dockerd's `MinimumDuration`).
pub const MIN_DURATION_NS: i64 = 1_000_000;
/// How many results `State.Health.Log` keeps.
pub const MAX_LOG: usize = 5;
/// The most bytes of a probe's output kept.
pub const MAX_OUTPUT: usize = 4096;

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub start: SystemTime,
    pub end: SystemTime,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: Status,
    pub failing_streak: i64,
    pub log: Vec<Probe>,
}

/// A container's health state and its monitor, held by its hub.
pub struct Tracker {
    state: Mutex<Option<Health>>,
    /// Dropping the sender stops the monitor.
    monitor: Mutex<Option<watch::Sender<()>>>,
    /// Whether a probe is running (a stopped monitor finishes it).
    probing: watch::Sender<bool>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { state: Mutex::new(None), monitor: Mutex::new(None), probing: watch::channel(false).0 }
    }
}

impl Tracker {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current `State.Health` (`None`: no health check configured).
    pub fn get(&self) -> Option<Health> {
        Self::lock(&self.state).clone()
    }

    /// Sets the status to `starting` and the streak to 0, keeping the log
    /// (dockerd's start).
    fn reset(&self) {
        let mut s = Self::lock(&self.state);
        match s.as_mut() {
            Some(h) => {
                h.status = Status::Starting;
                h.failing_streak = 0;
            }
            None => *s = Some(Health { status: Status::Starting, failing_streak: 0, log: Vec::new() }),
        }
    }

    /// Stops the monitor, if one runs: it starts no other probe, and
    /// finishes a running one (its exec is never left half-started).
    pub fn stop(&self) {
        Self::lock(&self.monitor).take();
    }

    /// Waits (at most `within`) until no probe runs; a pause waits for this
    /// after [`stop`](Self::stop), so that no exec races the freeze.
    pub async fn idle(&self, within: Duration) {
        let mut rx = self.probing.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|p| !*p)).await;
    }

    /// Records a result; returns the new status when it changed.
    fn record(&self, hc: &Healthcheck, started_at: SystemTime, probe: Probe) -> Option<Status> {
        let mut s = Self::lock(&self.state);
        let h = s.as_mut()?;
        let old = h.status;
        apply(h, hc, started_at, probe);
        (h.status != old).then_some(h.status)
    }
}

/// dockerd's `handleProbeResult` on the state.
fn apply(h: &mut Health, hc: &Healthcheck, started_at: SystemTime, probe: Probe) {
    let retries = if hc.retries <= 0 { DEFAULT_RETRIES } else { hc.retries };
    if probe.exit_code == 0 {
        h.failing_streak = 0;
        h.status = Status::Healthy;
    } else {
        let in_start_period = h.status == Status::Starting
            && probe.start.duration_since(started_at).unwrap_or_default() < Duration::from_nanos(hc.start_period.max(0) as u64);
        if !in_start_period {
            h.failing_streak += 1;
            if h.failing_streak >= retries {
                h.status = Status::Unhealthy;
            }
        }
    }
    h.log.push(probe);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
}

/// The first problem of a health check's durations, in dockerd's words.
pub fn validate(hc: &Healthcheck) -> std::result::Result<(), String> {
    let too_small = |v: i64| v != 0 && v < MIN_DURATION_NS;
    if too_small(hc.interval) {
        return Err("Interval in Healthcheck cannot be less than 1ms".into());
    }
    if too_small(hc.timeout) {
        return Err("Timeout in Healthcheck cannot be less than 1ms".into());
    }
    if hc.retries < 0 {
        return Err("Retries in Healthcheck cannot be negative".into());
    }
    if too_small(hc.start_period) {
        return Err("StartPeriod in Healthcheck cannot be less than 1ms".into());
    }
    Ok(())
}

/// dockerd's merge of the image's health check into the container's: the
/// image's as a whole when the container has none, else field by field
/// where the container's is unset.
pub fn merge(container: &mut Option<Healthcheck>, image: Option<&Healthcheck>) {
    let Some(image) = image else { return };
    let Some(c) = container.as_mut() else {
        *container = Some(image.clone());
        return;
    };
    if c.test.is_empty() {
        c.test = image.test.clone();
    }
    for (mine, theirs) in [(&mut c.interval, image.interval), (&mut c.timeout, image.timeout), (&mut c.start_period, image.start_period), (&mut c.retries, image.retries)] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// The command a probe runs, or `None` when the check does not probe
/// (`NONE`, or no test).
pub fn probe_command(hc: &Healthcheck) -> Option<Vec<String>> {
    match hc.test.first().map(String::as_str) {
        Some("CMD") if hc.test.len() > 1 => Some(hc.test[1..].to_vec()),
        Some("CMD-SHELL") if hc.test.len() > 1 => Some(["/bin/sh".to_string(), "-c".into()].into_iter().chain(hc.test[1..].iter().cloned()).collect()),
        _ => None,
    }
}

/// Checks a test's form (dockerd refuses an unknown kind at the probe; berth
/// at create, so a container never runs with a check that cannot probe).
pub fn validate_test(test: &[String]) -> std::result::Result<(), String> {
    match test.first().map(String::as_str) {
        None | Some("NONE") => Ok(()),
        Some("CMD") | Some("CMD-SHELL") if test.len() > 1 => Ok(()),
        Some("CMD") | Some("CMD-SHELL") => Err(format!("Healthcheck {} needs a command", test[0])),
        Some(other) => Err(format!("unknown Healthcheck type {other:?}")),
    }
}

/// How long a running probe of `hc` can take: its timeout, and a margin
/// for the kill.
pub fn probe_deadline(hc: Option<&Healthcheck>) -> Duration {
    duration_or(hc.map_or(0, |h| h.timeout), DEFAULT_TIMEOUT) + Duration::from_secs(5)
}

fn duration_or(ns: i64, default: Duration) -> Duration {
    if ns <= 0 {
        default
    } else {
        Duration::from_nanos(ns as u64)
    }
}

/// Starts health checking a container that just started (or was
/// re-attached, or unpaused with `reset` false): stops any previous
/// monitor, sets `starting` when `reset`, and spawns the monitor. A
/// container without a check that probes gets nothing.
pub(crate) fn start(execs: Weak<ExecService>, hub: &Arc<Hub>, id: &str, hc: Option<&Healthcheck>, started_at: SystemTime, reset: bool) {
    // A check that does not probe (`NONE`) gets no state, as under dockerd.
    let Some((hc, cmd)) = hc.and_then(|hc| probe_command(hc).map(|cmd| (hc, cmd))) else { return };
    hub.health.stop();
    if reset || hub.health.get().is_none() {
        hub.health.reset();
    }
    let (tx, rx) = watch::channel(());
    *Tracker::lock(&hub.health.monitor) = Some(tx);
    tokio::spawn(monitor(execs, hub.clone(), id.to_string(), hc.clone(), cmd, started_at, rx));
}

async fn monitor(execs: Weak<ExecService>, hub: Arc<Hub>, id: String, hc: Healthcheck, cmd: Vec<String>, started_at: SystemTime, mut stop: watch::Receiver<()>) {
    let interval = duration_or(hc.interval, DEFAULT_INTERVAL);
    let timeout = duration_or(hc.timeout, DEFAULT_TIMEOUT);
    loop {
        // Stop first: once stopped, no poll starts another probe.
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(svc) = execs.upgrade() else { return };
        // Not cancelled by a stop: a probe ends by itself (at the latest
        // at its timeout, killed), so its exec is never dropped mid-start.
        hub.health.probing.send_replace(true);
        let result = probe(&svc, &id, &cmd, timeout).await;
        hub.health.probing.send_replace(false);
        if stop.has_changed().unwrap_or(true) {
            return;
        }
        if let Some(status) = hub.health.record(&hc, started_at, result) {
            if let Ok(rec) = svc.containers().get(&id) {
                svc.containers().event(&format!("health_status: {}", status.as_str()), &rec, &[]);
            }
        }
    }
}

/// One probe: the exec, its output (capped) and exit code; a timeout kills
/// the process and is a failure with dockerd's output. An exec that cannot
/// run is a failure whose output is the error (dockerd's `-1`).
async fn probe(execs: &ExecService, id: &str, cmd: &[String], timeout: Duration) -> Probe {
    let start = SystemTime::now();
    let mut exec_id = None;
    let run = async {
        let eid = execs.create(id, ExecConfig { cmd: cmd.to_vec(), attach_stdout: true, attach_stderr: true, ..Default::default() })?;
        exec_id = Some(eid.clone());
        let mut streams = execs.start(&eid).await?;
        let mut out = Output::default();
        while let Some(chunk) = streams.output.recv().await {
            match chunk {
                Chunk::Stdout(b) | Chunk::Stderr(b) => out.push(&b),
            }
        }
        let code = streams.exit.wait_for(|c| c.is_some()).await.map(|c| c.unwrap_or(-1)).unwrap_or(-1);
        Ok::<_, EngineError>((code, out.into_string()))
    };
    let outcome = tokio::time::timeout(timeout, run).await;
    let (exit_code, output) = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => (-1, e.to_string()),
        Err(_) => {
            if let Some(eid) = &exec_id {
                if let Err(e) = execs.kill(eid).await {
                    tracing::warn!(container = %id, exec = %eid, error = %e, "killing a health check that timed out failed");
                }
            }
            (-1, format!("Health check exceeded timeout ({})", go_duration(timeout)))
        }
    };
    Probe { start, end: SystemTime::now(), exit_code, output }
}

/// A probe's output, capped at [`MAX_OUTPUT`] bytes (dockerd's limited
/// buffer: what is cut is marked with `...`).
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn push(&mut self, b: &[u8]) {
        let room = MAX_OUTPUT - self.buf.len();
        if b.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&b[..b.len().min(room)]);
    }

    fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Go's `time.Duration.String()` (`200ms`, `30s`, `1m30s`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    fn frac(whole: u128, rem: u128, digits: u32) -> String {
        let mut f = format!("{rem:0width$}", width = digits as usize);
        while f.ends_with('0') {
            f.pop();
        }
        if f.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{f}")
        }
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns / 1_000, ns % 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns / 1_000_000, ns % 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let s = format!("{}s", frac(secs % 60, ns % 1_000_000_000, 9));
    let (m, h) = ((secs / 60) % 60, secs / 3600);
    if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    }
}

/// Checks a create request's health check (durations and test form).
pub fn check(hc: Option<&Healthcheck>) -> Result<()> {
    let Some(hc) = hc else { return Ok(()) };
    validate(hc).and_then(|_| validate_test(&hc.test)).map_err(EngineError::InvalidParameter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(retries: i64, start_period: i64) -> Healthcheck {
        Healthcheck { test: vec!["CMD".into(), "true".into()], retries, start_period, ..Default::default() }
    }

    fn probe_at(start: SystemTime, code: i64) -> Probe {
        Probe { start, end: start, exit_code: code, output: String::new() }
    }

    #[test]
    fn streaks_and_start_period() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut h = Health { status: Status::Starting, failing_streak: 0, log: vec![] };
        let c = hc(2, 5_000_000_000);
        apply(&mut h, &c, t0, probe_at(t0 + Duration::from_secs(1), 1));
        assert_eq!((h.status, h.failing_streak), (Status::Starting, 0), "failures in the start period do not count");
        apply(&mut h, &c, t0, probe_at(t0 + Duration::from_secs(6), 1));
        assert_eq!((h.status, h.failing_streak), (Status::Starting, 1));
        apply(&mut h, &c, t0, probe_at(t0 + Duration::from_secs(7), 1));
        assert_eq!((h.status, h.failing_streak), (Status::Unhealthy, 2));
        apply(&mut h, &c, t0, probe_at(t0 + Duration::from_secs(8), 0));
        assert_eq!((h.status, h.failing_streak), (Status::Healthy, 0));
        for i in 0..10 {
            apply(&mut h, &c, t0, probe_at(t0 + Duration::from_secs(9 + i), 1));
        }
        assert_eq!(h.log.len(), MAX_LOG);
        assert_eq!(h.status, Status::Unhealthy);
        // Once healthy, the start period no longer spares a failure.
        let mut h = Health { status: Status::Healthy, failing_streak: 0, log: vec![] };
        apply(&mut h, &hc(0, 5_000_000_000), t0, probe_at(t0 + Duration::from_secs(1), 1));
        assert_eq!(h.failing_streak, 1);
    }

    #[test]
    fn validation_follows_dockerd() {
        let mut c = hc(0, 0);
        assert_eq!(validate(&c), Ok(()));
        c.interval = 999_999;
        assert_eq!(validate(&c).unwrap_err(), "Interval in Healthcheck cannot be less than 1ms");
        c.interval = -1;
        assert_eq!(validate(&c).unwrap_err(), "Interval in Healthcheck cannot be less than 1ms");
        c.interval = 0;
        c.timeout = 5;
        assert_eq!(validate(&c).unwrap_err(), "Timeout in Healthcheck cannot be less than 1ms");
        c.timeout = 0;
        c.retries = -1;
        assert_eq!(validate(&c).unwrap_err(), "Retries in Healthcheck cannot be negative");
        c.retries = 0;
        c.start_period = -2;
        assert_eq!(validate(&c).unwrap_err(), "StartPeriod in Healthcheck cannot be less than 1ms");
        assert!(validate_test(&["CMD".into()]).is_err());
        assert!(validate_test(&["BOGUS".into(), "x".into()]).is_err());
        assert!(validate_test(&["NONE".into()]).is_ok());
    }

    #[test]
    fn merge_and_commands() {
        let image = Healthcheck { test: vec!["CMD-SHELL".into(), "exit 0".into()], interval: 5, timeout: 6, start_period: 7, retries: 8 };
        let mut none = None;
        merge(&mut none, Some(&image));
        assert_eq!(none.as_ref(), Some(&image));
        let mut some = Some(Healthcheck { interval: 1_000_000_000, ..Default::default() });
        merge(&mut some, Some(&image));
        assert_eq!(some, Some(Healthcheck { interval: 1_000_000_000, ..image.clone() }));
        assert_eq!(probe_command(&image), Some(vec!["/bin/sh".to_string(), "-c".into(), "exit 0".into()]));
        assert_eq!(probe_command(&hc(0, 0)), Some(vec!["true".to_string()]));
        assert_eq!(probe_command(&Healthcheck { test: vec!["NONE".into()], ..Default::default() }), None);
    }

    #[test]
    fn output_is_capped_and_durations_print_as_go() {
        let mut o = Output::default();
        o.push(&[b'a'; 4000]);
        o.push(&[b'b'; 200]);
        let s = o.into_string();
        assert_eq!(s.len(), MAX_OUTPUT + 3);
        assert!(s.ends_with("bb..."));
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
