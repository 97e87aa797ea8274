//! Query-string values as dockerd parses them: signals (`kill?signal=`,
//! `StopSignal`), times (`since`/`until` of logs and events, `until` of
//! prune), booleans (`all=1`, `force=true`), integers (`t`, `timeout`) and
//! the query of `docker logs` ([`LogsQuery`]).
//!
//! Everything here is pure; errors become 400s via [`ParamError`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_engine::containers::wait::LogsOptions;
use berth_engine::model::timefmt::parse_rfc3339;

use crate::error::ApiError;

/// A query or body value that could not be parsed. Always a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// dockerd's text for a bad signal.
    #[error("Invalid signal: {0}")]
    InvalidSignal(String),
    /// Not a timestamp, RFC 3339 date or Go duration.
    #[error("invalid value for {name}: {value:?}: expected unix seconds (e.g. 1795926092.5), an RFC 3339 time or a duration such as 10m")]
    InvalidTime { name: String, value: String },
    /// Not an integer.
    #[error("invalid value for {name}: strconv.Atoi: parsing {value:?}: invalid syntax")]
    InvalidInt { name: String, value: String },
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Parses a signal as dockerd does (see [`berth_engine::signal::parse`]).
pub fn parse_signal(raw: &str) -> Result<i32, ParamError> {
    berth_engine::signal::parse(raw).ok_or_else(|| ParamError::InvalidSignal(raw.to_owned()))
}

/// The conventional name (`SIGTERM`) of a signal number.
pub fn signal_name(n: i32) -> Option<String> {
    berth_engine::signal::name(n)
}

/// A boolean query parameter as dockerd's `httputils.BoolValue` reads it:
/// absent, empty, `0`, `no`, `false` and `none` (any case, trimmed) are
/// false; **anything else is true** (`1`, `true`, `True`, `yes`).
pub fn parse_bool(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => {
            let v = v.trim().to_ascii_lowercase();
            !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
        }
    }
}

/// Like [`parse_bool`] but an absent or empty parameter gives `default`
/// (dockerd's `BoolValueOrDefault`, used e.g. for `stdout` on logs).
pub fn parse_bool_or(value: Option<&str>, default: bool) -> bool {
    match value {
        None | Some("") => default,
        v => parse_bool(v),
    }
}

/// An optional integer query parameter (`t`, `timeout`, `h`, `w`, `limit`):
/// absent or empty → `None`; otherwise a decimal integer (surrounding
/// spaces are not allowed, as in Go's `strconv.Atoi`).
pub fn parse_int(name: &str, value: Option<&str>) -> Result<Option<i64>, ParamError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ParamError::InvalidInt { name: name.to_owned(), value: v.to_owned() }),
    }
}

/// The query of `GET /containers/{id}/logs`: which streams, `follow`,
/// `tail` (a number or `all`), `since`/`until` (see [`parse_time`]; `0` or
/// empty = not set) and `timestamps`. Pure; the fuzz target `logs_query`
/// calls it.
#[derive(Debug, Clone)]
pub struct LogsQuery {
    pub options: LogsOptions,
    pub timestamps: bool,
}

impl LogsQuery {
    /// Parses the (URL-decoded) query; `now` anchors durations.
    pub fn parse(query: &HashMap<String, String>, now: SystemTime) -> Result<LogsQuery, ApiError> {
        let q = |k: &str| query.get(k).map(String::as_str);
        let (stdout, stderr) = (parse_bool(q("stdout")), parse_bool(q("stderr")));
        if !stdout && !stderr {
            return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
        }
        let time = |k: &str| -> Result<Option<SystemTime>, ParamError> {
            match q(k).filter(|v| !v.is_empty() && *v != "0") {
                Some(v) => Ok(Some(parse_time(k, v, now)?)),
                None => Ok(None),
            }
        };
        let tail = match q("tail") {
            None | Some("") | Some("all") => None,
            Some(t) => Some(
                t.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid tail value {t:?}: use a number or \"all\"")))?,
            ),
        };
        let options = LogsOptions { follow: parse_bool(q("follow")), tail, since: time("since")?, until: time("until")?, stdout, stderr };
        Ok(LogsQuery { options, timestamps: parse_bool(q("timestamps")) })
    }
}

/// Parses a time given to `since`/`until` (logs, events, prune `until`),
/// accepting what the CLI sends and what people type with curl:
/// - unix seconds with an optional decimal fraction (`1795926092`,
///   `1795926092.000000123`; the CLI always sends nine digits — the
///   fraction is read as a decimal fraction);
/// - RFC 3339 (`2026-11-29T04:19:37Z`, with offset or fraction), and the
///   shorter Go forms `2006-01-02`, `2006-01-02T15:04`,
///   `2006-01-02T15:04:05[.frac]` without a zone, read as UTC;
/// - a Go duration (`10m`, `1h30m`, `1.5h`, `300ms`), meaning `now - d`.
///
/// `name` is the parameter's name, for the error message.
pub fn parse_time(name: &str, value: &str, now: SystemTime) -> Result<SystemTime, ParamError> {
    let invalid = || ParamError::InvalidTime { name: name.to_owned(), value: value.to_owned() };
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid());
    }
    if let Some(t) = parse_unix(v) {
        return Ok(t);
    }
    if v.contains('-') && v.len() >= 10 && v.as_bytes()[4] == b'-' {
        return parse_date(v).ok_or_else(invalid);
    }
    if let Some((negative, d)) = parse_go_duration(v) {
        let t = if negative { now.checked_add(d) } else { now.checked_sub(d) };
        return t.ok_or_else(invalid);
    }
    Err(invalid())
}

/// `secs[.frac]`, possibly negative.
fn parse_unix(v: &str) -> Option<SystemTime> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    let (neg, digits) = match int.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, int),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = digits.parse().ok()?;
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    if neg {
        UNIX_EPOCH.checked_sub(Duration::new(secs, 0))?.checked_add(Duration::new(0, nanos))
    } else {
        UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    }
}

/// RFC 3339, or a shorter Go layout completed to RFC 3339 in UTC.
fn parse_date(v: &str) -> Option<SystemTime> {
    if let Some(t) = parse_rfc3339(v) {
        return Some(t);
    }
    let completed = match v.len() {
        10 => format!("{v}T00:00:00Z"),
        16 => format!("{v}:00Z"),
        _ => format!("{v}Z"),
    };
    parse_rfc3339(&completed)
}

/// Parses a Go duration (`time.ParseDuration`): an optional sign, then one
/// or more `<decimal><unit>` with units `ns us µs ms s m h`; a lone `0` is
/// allowed. Returns (negative, magnitude).
pub fn parse_go_duration(s: &str) -> Option<(bool, Duration)> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some((neg, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some((neg, Duration::from_nanos(total.round() as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("64"), Ok(64));
        assert_eq!(parse_signal("HUP"), Ok(1));
        assert_eq!(parse_signal("sighup"), Ok(1));
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("Int"), Ok(2));
        assert_eq!(parse_signal("KILL"), Ok(9));
        assert_eq!(parse_signal("USR1"), Ok(10));
        assert_eq!(parse_signal("usr2"), Ok(12));
        assert_eq!(parse_signal("QUIT"), Ok(3));
        assert_eq!(parse_signal("STOP"), Ok(19));
        assert_eq!(parse_signal("CONT"), Ok(18));
        assert_eq!(parse_signal("WINCH"), Ok(28));
        assert_eq!(parse_signal("RTMIN"), Ok(34));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("RTMAX"), Ok(64));
    }

    #[test]
    fn bad_signals_use_dockerd_text() {
        for bad in ["0", "-1", "65", "", "SIG", "FOO", "SIGFOO", "RTMIN+16", "RTMIN+x", "9x"] {
            let e = parse_signal(bad).unwrap_err();
            assert_eq!(e.to_string(), format!("Invalid signal: {bad}"));
            let api: ApiError = e.into();
            assert_eq!(api.status, http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn signal_names_round_trip() {
        for n in 1..=64 {
            if let Some(name) = signal_name(n) {
                assert_eq!(parse_signal(&name), Ok(n), "{name}");
            }
        }
        assert_eq!(signal_name(15).as_deref(), Some("SIGTERM"));
        assert_eq!(signal_name(17).as_deref(), Some("SIGCHLD"));
        assert_eq!(signal_name(40).as_deref(), Some("SIGRTMIN+6"));
        assert_eq!(signal_name(0), None);
    }

    #[test]
    fn booleans_like_dockerd() {
        for t in ["1", "true", "True", "TRUE", "yes", "anything", " 1 "] {
            assert!(parse_bool(Some(t)), "{t}");
        }
        for f in ["", "0", "false", "False", "no", "none", " 0 "] {
            assert!(!parse_bool(Some(f)), "{f}");
        }
        assert!(!parse_bool(None));
        assert!(parse_bool_or(None, true));
        assert!(parse_bool_or(Some(""), true));
        assert!(!parse_bool_or(Some("0"), true));
        assert!(parse_bool_or(Some("1"), false));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("t", None), Ok(None));
        assert_eq!(parse_int("t", Some("")), Ok(None));
        assert_eq!(parse_int("t", Some("10")), Ok(Some(10)));
        assert_eq!(parse_int("t", Some("-1")), Ok(Some(-1)));
        let e = parse_int("t", Some("ten")).unwrap_err();
        assert_eq!(e.to_string(), "invalid value for t: strconv.Atoi: parsing \"ten\": invalid syntax");
        assert!(parse_int("t", Some(" 1")).is_err());
    }

    #[test]
    fn times_in_every_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_926_700);
        let at = |s: &str| parse_time("since", s, now).unwrap();
        assert_eq!(at("1795926092"), UNIX_EPOCH + Duration::from_secs(1_795_926_092));
        assert_eq!(at("1795926092.000000123"), UNIX_EPOCH + Duration::new(1_795_926_092, 123));
        assert_eq!(at("1795926092.5"), UNIX_EPOCH + Duration::new(1_795_926_092, 500_000_000));
        assert_eq!(at("0"), UNIX_EPOCH);
        assert_eq!(at("2026-11-29T04:21:32Z"), UNIX_EPOCH + Duration::from_secs(1_795_926_092));
        assert_eq!(at("2026-11-29T06:21:32+02:00"), UNIX_EPOCH + Duration::from_secs(1_795_926_092));
        assert_eq!(at("2026-11-29T04:21:32"), UNIX_EPOCH + Duration::from_secs(1_795_926_092));
        assert_eq!(at("2026-11-29T04:21"), UNIX_EPOCH + Duration::from_secs(1_795_926_060));
        assert_eq!(at("2026-11-29"), UNIX_EPOCH + Duration::from_secs(1_795_910_400));
        assert_eq!(at("10m"), now - Duration::from_secs(600));
        assert_eq!(at("1h30m"), now - Duration::from_secs(5400));
        assert_eq!(at("1.5h"), now - Duration::from_secs(5400));
        assert_eq!(at("300ms"), now - Duration::from_millis(300));
        assert_eq!(at("-1m"), now + Duration::from_secs(60));
        for bad in ["", "yesterday", "10x", "1.2.3", "2026-13-01", "m", "1795926092.", "12.abc"] {
            let e = parse_time("since", bad, now).unwrap_err();
            assert!(e.to_string().starts_with("invalid value for since"), "{bad}: {e}");
        }
    }

    #[test]
    fn logs_query() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_926_700);
        let parse = |pairs: &[(&str, &str)]| {
            LogsQuery::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), now)
        };
        let q = parse(&[("stdout", "1"), ("since", "10m"), ("until", "0"), ("tail", "3"), ("timestamps", "true")]).unwrap();
        let o = &q.options;
        assert!(o.stdout && !o.stderr && !o.follow && q.timestamps);
        assert_eq!((o.since, o.until, o.tail), (Some(now - Duration::from_secs(600)), None, Some(3)));
        assert_eq!(parse(&[("stderr", "1"), ("tail", "all"), ("follow", "1")]).unwrap().options.tail, None);
        let e = parse(&[("stdout", "0")]).unwrap_err();
        assert_eq!(e.message, "Bad parameters: you must choose at least one stream");
        let e = parse(&[("stdout", "1"), ("tail", "-1")]).unwrap_err();
        assert_eq!(e.message, "invalid tail value \"-1\": use a number or \"all\"");
        let e = parse(&[("stdout", "1"), ("until", "soon")]).unwrap_err();
        assert!(e.message.starts_with("invalid value for until"), "{}", e.message);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Some((false, Duration::ZERO)));
        assert_eq!(parse_go_duration("2h45m10.5s"), Some((false, Duration::from_millis(9_910_500))));
        assert_eq!(parse_go_duration("1us"), Some((false, Duration::from_micros(1))));
        assert_eq!(parse_go_duration("1µs"), Some((false, Duration::from_micros(1))));
        assert_eq!(parse_go_duration("-5s"), Some((true, Duration::from_secs(5))));
        for bad in ["", "5", "s", "5d", "1..5s", "-"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
