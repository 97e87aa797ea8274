//! Child processes: bounded in time, interruptible (Ctrl-C), timed.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM/SIGHUP; every loop checks it.
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

pub fn interrupted() -> bool {
    FLAG.get().map(|f| f.load(Ordering::Relaxed)).unwrap_or(false)
}

pub fn check_interrupt() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Registers the flag for SIGINT, SIGTERM and SIGHUP.
pub fn install_signal_flag() {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, flag.clone()).expect("register signal handler");
    }
}

/// The outcome of one command.
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    /// Bytes read from stdout (also when `count_only`).
    pub stdout_bytes: u64,
    pub stderr: String,
}

impl Out {
    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn describe(&self) -> String {
        format!("exit {:?}: {}", self.code, self.stderr.trim())
    }
}

/// Runs `cmd` to completion, at most `timeout`; kills it on timeout or
/// interruption. With `count_only`, stdout is counted and discarded.
pub fn run(mut cmd: Command, timeout: Duration, count_only: bool) -> Result<Out, String> {
    check_interrupt()?;
    let what = format!("{:?}", cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Own process group: a terminal Ctrl-C reaches only the harness, which
    // then stops every child itself.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let start = Instant::now();
    let mut child: Child = cmd.spawn().map_err(|e| format!("spawn {what}: {e}"))?;
    let pid = child.id() as i32;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut kept = Vec::new();
        let mut n: u64 = 0;
        loop {
            match so.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    n += k as u64;
                    if !count_only {
                        kept.extend_from_slice(&buf[..k]);
                    }
                }
            }
        }
        (kept, n)
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let st = child.wait();
        let t = Instant::now();
        let _ = tx.send((st, t));
    });
    let deadline = start + timeout;
    let (status, end) = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((st, t)) => break (st.map_err(|e| format!("wait {what}: {e}"))?, t),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if interrupted() || Instant::now() > deadline {
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = rx.recv_timeout(Duration::from_secs(5));
                    if interrupted() {
                        return Err("interrupted".into());
                    }
                    return Err(format!("timed out after {:?}: {what}", timeout));
                }
            }
            Err(e) => return Err(format!("wait {what}: {e}")),
        }
    };
    let (stdout, stdout_bytes) = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Ok(Out { ok: status.success(), code: status.code(), elapsed: end - start, stdout, stdout_bytes, stderr })
}

/// Like `run`, but a non-zero exit is an error.
pub fn run_ok(cmd: Command, timeout: Duration) -> Result<Out, String> {
    let what = format!("{:?}", cmd);
    let o = run(cmd, timeout, false)?;
    if !o.ok {
        return Err(format!("{what} failed: {}", o.describe()));
    }
    Ok(o)
}

/// First line of a command's output, or "unknown".
pub fn version_of(prog: &str, args: &[&str]) -> String {
    let mut c = Command::new(prog);
    c.args(args);
    match run(c, Duration::from_secs(10), false) {
        Ok(o) if o.ok => o.stdout_str().lines().next().unwrap_or("").trim().to_string(),
        _ => "unknown".into(),
    }
}

/// Resident set size of a process in KiB (VmRSS), from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Children of `ppid` whose command name is `comm`.
pub fn children_named(ppid: u32, comm: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid ...
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = &stat[l + 1..r];
        let ppid_field = stat[r + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if name == comm && ppid_field == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// Processes whose command line mentions `needle` (used for our own temp
/// root only, so they are ours by construction).
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(cl) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cl).contains(needle) {
            out.push(pid);
        }
    }
    out
}

pub fn alive(pid: u32) -> bool {
    // A zombie is not alive for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rfind(')').and_then(|r| s[r + 1..].split_whitespace().next()).map(|st| st != "Z").unwrap_or(false),
        Err(_) => false,
    }
}

/// Unmounts everything mounted at or below `root`, deepest first.
pub fn unmount_below(root: &Path) {
    let root = root.to_string_lossy().to_string();
    for _ in 0..3 {
        let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
        let mut points: Vec<String> = mi
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(unescape_mount)
            .filter(|p| p == &root || p.starts_with(&format!("{root}/")))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        for p in points {
            if let Ok(c) = std::ffi::CString::new(p.clone()) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}
