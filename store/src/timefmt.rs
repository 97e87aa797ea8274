//! RFC 3339 timestamps as Docker writes them (UTC, nanoseconds), without a
//! date-time dependency.
//!
//! [`format_rfc3339_nano`] always prints nine fractional digits
//! (`2026-11-29T04:19:37.483365888Z`, Docker's `RFC3339NanoFixed`), so two
//! stamps made by berth compare correctly as plain strings.
//! [`parse_rfc3339`] accepts any RFC 3339 form (0–9 fractional digits, `Z` or
//! a numeric offset), e.g. Go's trimmed `RFC3339Nano` from a dockerd log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time`, which Docker prints for "never" (e.g. `StartedAt`
/// of a container that was never started).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Splits a time into whole seconds since the epoch (may be negative) and
/// nanoseconds (always `0..1e9`).
fn to_unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let mut secs = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos();
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (secs, nanos)
        }
    }
}

fn from_unix(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(u64::from(nanos))
    }
}

/// Formats `t` in UTC with nine fractional digits, e.g.
/// `2026-11-29T04:19:37.483365888Z`.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = to_unix(t);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The current time as [`format_rfc3339_nano`] prints it.
pub fn now_rfc3339_nano() -> String {
    format_rfc3339_nano(SystemTime::now())
}

/// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
/// Returns `None` if `s` is not one.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(start..end)? * 10u32.pow(9 - digits as u32);
        i = end;
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let v = i64::from(num(i + 1..i + 3)?) * 3600 + i64::from(num(i + 4..i + 6)?) * 60;
            if *c == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se) - offset_secs;
    Some(from_unix(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_926_092, 483_365_888);
        assert_eq!(format_rfc3339_nano(t), "2026-11-29T04:21:32.483365888Z");
        let leap = parse_rfc3339("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(format_rfc3339_nano(leap), "2024-02-29T23:59:59.000000000Z");
    }

    #[test]
    fn round_trips_including_before_epoch() {
        for s in [
            "0001-01-01T00:00:00.000000000Z",
            "1969-12-31T23:59:59.999999999Z",
            "2000-03-01T00:00:00.000000001Z",
            "2026-11-29T04:19:37.483365888Z",
            "9999-12-31T23:59:59.123456789Z",
        ] {
            assert_eq!(format_rfc3339_nano(parse_rfc3339(s).unwrap()), s);
        }
        assert_eq!(
            format_rfc3339_nano(parse_rfc3339(ZERO_TIME).unwrap()),
            "0001-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn parses_go_forms_and_offsets() {
        let a = parse_rfc3339("2026-11-29T04:19:37.4833Z").unwrap();
        let b = parse_rfc3339("2026-11-29T06:19:37.483300000+02:00").unwrap();
        assert_eq!(a, b);
        assert!(parse_rfc3339("2026-11-29T04:19:37").is_none());
        assert!(parse_rfc3339("2026-13-29T04:19:37Z").is_none());
        assert!(parse_rfc3339("2026-11-29T04:19:37.Z").is_none());
        assert!(parse_rfc3339("2026-11-29T04:19:37.1234567891Z").is_none());
        assert!(parse_rfc3339("garbage").is_none());
    }

    #[test]
    fn fixed_width_strings_sort_like_times() {
        let t1 = format_rfc3339_nano(UNIX_EPOCH + Duration::new(100, 9));
        let t2 = format_rfc3339_nano(UNIX_EPOCH + Duration::new(100, 10));
        assert!(t1 < t2);
    }
}
