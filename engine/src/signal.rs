//! Signals by number or name, as dockerd parses them (`9`, `KILL`,
//! `sigkill`, `SIGRTMIN+3`). One table for the engine and the API.

/// Signal names as Go's `signal.SignalMap` on Linux has them (without the
/// `SIG` prefix), with their numbers. `RTMIN+n` / `RTMAX-n` are computed.
const SIGNALS: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// Linux's real-time signal range as Go (and the kernel ABI) numbers it.
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parses a signal as dockerd does: a decimal number (1–64), or a name,
/// case-insensitive, with or without `SIG` (`HUP`, `sighup`, `SIGRTMIN+3`).
/// Empty and `0` are invalid (callers substitute their default first).
pub fn parse(raw: &str) -> Option<i32> {
    if let Ok(n) = raw.parse::<i64>() {
        return (1..=i64::from(SIGRTMAX)).contains(&n).then_some(n as i32);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Some(n);
    }
    let rt = |rest: &str, base: i32, sign: i32| -> Option<i32> {
        if rest.is_empty() {
            return Some(base);
        }
        let off: i32 = rest.strip_prefix(if sign > 0 { '+' } else { '-' })?.parse().ok()?;
        let n = base + sign * off;
        ((1..=15).contains(&off) && (SIGRTMIN..=SIGRTMAX).contains(&n)).then_some(n)
    };
    let found = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(rest, SIGRTMIN, 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(rest, SIGRTMAX, -1)
    } else {
        None
    };
    found
}

/// The conventional name (`SIGTERM`) of a signal number, for messages and
/// events; `None` for numbers without one.
pub fn name(n: i32) -> Option<String> {
    if let Some((name, _)) = SIGNALS.iter().find(|&&(s, v)| v == n && s != "CLD" && s != "IOT" && s != "POLL") {
        return Some(format!("SIG{name}"));
    }
    match n {
        SIGRTMIN => Some("SIGRTMIN".into()),
        SIGRTMAX => Some("SIGRTMAX".into()),
        n if (SIGRTMIN + 1..=SIGRTMIN + 15).contains(&n) => Some(format!("SIGRTMIN+{}", n - SIGRTMIN)),
        n if (SIGRTMAX - 14..SIGRTMAX).contains(&n) => Some(format!("SIGRTMAX-{}", SIGRTMAX - n)),
        _ => None,
    }
}

