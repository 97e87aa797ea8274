//! Container log drivers and their options: `log-driver` / `log-opts` in
//! `daemon.json` (the defaults) and `HostConfig.LogConfig` at create.
//!
//! berth keeps logs itself with three of dockerd's drivers: `json-file`,
//! `local` and `none`. Every other driver name is refused, never ignored.
//! [`resolve`] merges a container's choice with the daemon defaults the way
//! dockerd does (the defaults' options fill in keys the container did not
//! set, and only when the container uses the default driver) and
//! [`validate`] checks the options, with dockerd's error texts where dockerd
//! has one. This module is pure: no files, no clocks.

use std::collections::BTreeMap;

use serde::Serialize;

/// dockerd's default driver, berth's too.
pub const JSON_FILE: &str = "json-file";
/// dockerd's `local` driver (berth stores it in the json-file format).
pub const LOCAL: &str = "local";
/// No logs kept.
pub const NONE: &str = "none";

/// Drivers dockerd has that berth does not implement: refused with a clear
/// message instead of dockerd's "plugin not found".
pub const DOCKERD_ONLY_DRIVERS: &[&str] =
    &["syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"];

/// `local`'s defaults (dockerd's): 20 MiB per file, 5 files, compressed.
pub const LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const LOCAL_MAX_FILE: u32 = 5;
/// The most files berth keeps per container log (dockerd has no limit). A
/// reader holds every file of a log open while it reads, so this bounds
/// the descriptors one `docker logs` can take.
pub const MAX_FILE_LIMIT: u32 = 100;

/// Options dockerd accepts for json-file and local that berth does not
/// implement yet (they add attributes to every entry).
const ATTRIBUTE_OPTS: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];

/// A log driver and its options as given (and, after [`resolve`], merged
/// with the daemon defaults): what `docker inspect` shows as
/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// Driver name; "" = the daemon default.
    pub driver: String,
    /// Driver options (`--log-opt key=value`).
    pub opts: BTreeMap<String, String>,
}

impl LogConfig {
    /// berth's built-in default: json-file without options.
    pub fn builtin() -> LogConfig {
        LogConfig { driver: JSON_FILE.into(), opts: BTreeMap::new() }
    }
}

/// The drivers berth implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    JsonFile,
    Local,
    None,
}

/// What a writer needs: the driver and its rotation limits, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub driver: LogDriver,
    /// Rotate when the current file reaches this many bytes; `None` = never.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (≥ 1).
    pub max_file: u32,
    /// Gzip rotated files.
    pub compress: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { driver: LogDriver::JsonFile, max_size: None, max_file: 1, compress: false }
    }
}

/// Why a log configuration is refused (a 400 at create; a config problem
/// in `daemon.json`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogConfigError {
    /// Not a driver dockerd or berth knows (dockerd's text, plus the choice).
    /// dockerd's message, word for word (clients match it); berth's drivers
    /// are json-file, local and none.
    #[error("error looking up logging plugin {0}: plugin \"{0}\" not found")]
    UnknownDriver(String),
    /// A dockerd driver berth does not implement.
    #[error("berth does not support the {0} logging driver: use json-file, local or none (a log collector can read the json-file logs)")]
    UnsupportedDriver(String),
    /// An option the driver does not have (dockerd's texts).
    #[error("{}", unknown_opt_text(driver, key))]
    UnknownOpt { driver: String, key: String },
    /// An option dockerd has for this driver and berth does not implement.
    #[error("berth does not support log opt '{key}' of the {driver} log driver yet: remove it")]
    UnsupportedOpt { driver: String, key: String },
    /// A value that does not parse or does not fit (dockerd's text where it
    /// has a useful one, then what to do).
    #[error("{0}")]
    InvalidValue(String),
}

fn unknown_opt_text(driver: &str, key: &str) -> String {
    match driver {
        JSON_FILE => format!("unknown log opt '{key}' for json-file log driver; its options are max-size, max-file and compress"),
        LOCAL => format!("unknown log opt '{key}' for log driver local; its options are max-size, max-file and compress"),
        _ => format!("invalid logging opts for driver {driver}: it takes no options (got '{key}')"),
    }
}

/// The effective log configuration of a new container: its own driver and
/// options, with the daemon `defaults` applied as dockerd applies them (an
/// empty driver means the default driver; when the container's driver is
/// the default one, each default option it does not set is added). Returns
/// the merged configuration (what inspect shows) and its decoded settings.
pub fn resolve(
    driver: &str,
    opts: &BTreeMap<String, String>,
    defaults: &LogConfig,
) -> Result<(LogConfig, LogSettings), LogConfigError> {
    let driver = if driver.is_empty() { defaults.driver.as_str() } else { driver };
    let driver = if driver.is_empty() { JSON_FILE } else { driver };
    let mut merged = opts.clone();
    if driver == defaults.driver || (defaults.driver.is_empty() && driver == JSON_FILE) {
        for (k, v) in &defaults.opts {
            merged.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let settings = validate(driver, &merged)?;
    Ok((LogConfig { driver: driver.to_owned(), opts: merged }, settings))
}

/// Checks a driver and its options and decodes them.
pub fn validate(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogSettings, LogConfigError> {
    match driver {
        JSON_FILE | LOCAL => {}
        NONE => {
            return match opts.keys().next() {
                Some(key) => Err(LogConfigError::UnknownOpt { driver: NONE.into(), key: key.clone() }),
                None => Ok(LogSettings { driver: LogDriver::None, ..LogSettings::default() }),
            }
        }
        d if DOCKERD_ONLY_DRIVERS.contains(&d) => return Err(LogConfigError::UnsupportedDriver(d.into())),
        d => return Err(LogConfigError::UnknownDriver(d.into())),
    }
    for key in opts.keys() {
        if ATTRIBUTE_OPTS.contains(&key.as_str()) {
            return Err(LogConfigError::UnsupportedOpt { driver: driver.into(), key: key.clone() });
        }
        if !matches!(key.as_str(), "max-size" | "max-file" | "compress") {
            return Err(LogConfigError::UnknownOpt { driver: driver.into(), key: key.clone() });
        }
    }
    if driver == JSON_FILE {
        json_file(opts)
    } else {
        local(opts)
    }
}

const SIZE_HINT: &str = "use a positive number with an optional unit k, m or g (such as 10m)";

/// json-file's rules (dockerd's `jsonfilelog.New`): no limit by default;
/// `max-file` without `max-size` is accepted and has no effect, as in dockerd.
fn json_file(opts: &BTreeMap<String, String>) -> Result<LogSettings, LogConfigError> {
    let invalid = LogConfigError::InvalidValue;
    let max_size = match opts.get("max-size") {
        None => None,
        Some(v) => match parse_size(v) {
            None => return Err(invalid(format!("invalid size: '{v}': max-size must be a size; {SIZE_HINT}"))),
            Some(0) => return Err(invalid(format!("max-size must be a positive number; {SIZE_HINT}"))),
            Some(n) => Some(n),
        },
    };
    let max_file = match opts.get("max-file") {
        None => 1,
        Some(v) => match v.parse::<i64>() {
            Err(_) => return Err(invalid(format!("invalid max-file '{v}': max-file must be a whole number of at least 1"))),
            Ok(n) if n < 1 => return Err(invalid("max-file cannot be less than 1".into())),
            Ok(n) => check_limit(n)?,
        },
    };
    let compress = match opts.get("compress") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| invalid(format!("invalid compress value '{v}': use true or false")))?,
    };
    if compress && (max_file == 1 || max_size.is_none()) {
        return Err(invalid(
            "compress cannot be true when max-file is less than 2 or max-size is not set; set max-size and a max-file of 2 or more".into(),
        ));
    }
    Ok(LogSettings { driver: LogDriver::JsonFile, max_size, max_file, compress })
}

/// local's rules (dockerd's `local.newConfig` and its 20.10 messages):
/// 20 MiB, 5 files, compressed unless told otherwise.
fn local(opts: &BTreeMap<String, String>) -> Result<LogSettings, LogConfigError> {
    let invalid = LogConfigError::InvalidValue;
    let max_size = match opts.get("max-size") {
        None => LOCAL_MAX_SIZE,
        Some(v) => match parse_size(v) {
            None => return Err(invalid(format!("invalid value for max-size: {v}: invalid size: '{v}'; {SIZE_HINT}"))),
            Some(0) => return Err(invalid(format!("max-size must be a positive number; {SIZE_HINT}"))),
            Some(n) => n,
        },
    };
    let max_file = match opts.get("max-file") {
        None => i64::from(LOCAL_MAX_FILE),
        Some(v) => v.parse::<i64>().map_err(|_| {
            invalid(format!("invalid value for max-file: {v}: max-file must be a whole number of at least 1"))
        })?,
    };
    if max_file < 0 {
        return Err(invalid("max file count cannot be less than 0".into()));
    }
    let compress = match opts.get("compress") {
        None => true,
        Some(v) => parse_bool(v)
            .ok_or_else(|| invalid(format!("error reading compress log option: invalid value '{v}': use true or false")))?,
    };
    if compress && max_file <= 1 {
        return Err(invalid(
            "compression cannot be enabled when max file count is 1; set max-file to 2 or more, or compress=false".into(),
        ));
    }
    let max_file = check_limit(max_file.max(1))?;
    Ok(LogSettings { driver: LogDriver::Local, max_size: Some(max_size), max_file, compress })
}

/// A max-file of at least 1 within [`MAX_FILE_LIMIT`].
fn check_limit(n: i64) -> Result<u32, LogConfigError> {
    u32::try_from(n).ok().filter(|&n| n <= MAX_FILE_LIMIT).ok_or_else(|| {
        LogConfigError::InvalidValue(format!(
            "max-file {n} is more than berth keeps per container log ({MAX_FILE_LIMIT}): use a larger max-size instead"
        ))
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A size as dockerd reads `max-size` (go-units' `FromHumanSize`): a
/// decimal number, an optional space, an optional unit k, m, g, t or p
/// (powers of 1000, any case), optionally followed by `i` and/or `b`
/// (`10m`, `1.5M`, `1kb`, `1KiB`, `100`). `None` if it is not one.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, mut rest) = s.split_at(digits_end);
    let valid_number = !number.is_empty()
        && number.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        && number.matches('.').count() <= 1;
    if !valid_number {
        return None;
    }
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mult: f64 = match chars.peek().map(char::to_ascii_lowercase) {
        Some('k') => 1e3,
        Some('m') => 1e6,
        Some('g') => 1e9,
        Some('t') => 1e12,
        Some('p') => 1e15,
        _ => 1.0,
    };
    if mult != 1.0 {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return None;
    }
    let value = number.parse::<f64>().ok()? * mult;
    (value.is_finite() && value < 9.2e18).then_some(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(driver: &str, pairs: &[(&str, &str)]) -> String {
        validate(driver, &opts(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn sizes_follow_go_units() {
        for (s, n) in [
            ("10", 10),
            ("1k", 1000),
            ("1kb", 1000),
            ("1KiB", 1000),
            ("1m", 1_000_000),
            ("1M", 1_000_000),
            ("1.5m", 1_500_000),
            ("2g", 2_000_000_000),
            ("1 m", 1_000_000),
            ("1t", 1_000_000_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_size(s), Some(n), "{s}");
        }
        for s in ["", "abc", "-1", "1x", "m", "1.2.3", "1mm", " 1m", "1m ", ".5m", "1.", "1e3", "99999999999999999999p"] {
            assert_eq!(parse_size(s), None, "{s}");
        }
    }

    #[test]
    fn json_file_options() {
        let s = validate(JSON_FILE, &opts(&[])).unwrap();
        assert_eq!(s, LogSettings::default());
        let s = validate(JSON_FILE, &opts(&[("max-size", "1m"), ("max-file", "3"), ("compress", "true")])).unwrap();
        assert_eq!(s, LogSettings { driver: LogDriver::JsonFile, max_size: Some(1_000_000), max_file: 3, compress: true });
        // dockerd accepts max-file without max-size; it has no effect.
        let s = validate(JSON_FILE, &opts(&[("max-file", "3")])).unwrap();
        assert_eq!(s.max_size, None);
        let s = validate(JSON_FILE, &opts(&[("max-size", "10k")])).unwrap();
        assert_eq!((s.max_size, s.max_file), (Some(10_000), 1));
    }

    #[test]
    fn json_file_errors_carry_dockerds_text() {
        assert!(err(JSON_FILE, &[("bogus", "1")]).starts_with("unknown log opt 'bogus' for json-file log driver"));
        assert!(err(JSON_FILE, &[("max-size", "abc")]).starts_with("invalid size: 'abc'"));
        assert!(err(JSON_FILE, &[("max-size", "-1")]).starts_with("invalid size: '-1'"));
        assert!(err(JSON_FILE, &[("max-size", "0")]).starts_with("max-size must be a positive number"));
        assert!(err(JSON_FILE, &[("max-size", "1m"), ("max-file", "0")]).starts_with("max-file cannot be less than 1"));
        assert!(err(JSON_FILE, &[("max-size", "1m"), ("max-file", "-1")]).starts_with("max-file cannot be less than 1"));
        assert!(err(JSON_FILE, &[("max-file", "x")]).contains("max-file must be a whole number"));
        assert!(err(JSON_FILE, &[("compress", "maybe")]).contains("invalid compress value 'maybe'"));
        assert!(err(JSON_FILE, &[("compress", "true")])
            .starts_with("compress cannot be true when max-file is less than 2 or max-size is not set"));
        assert!(err(JSON_FILE, &[("compress", "1"), ("max-size", "1m"), ("max-file", "1")]).starts_with("compress cannot be true"));
        assert!(err(JSON_FILE, &[("tag", "x")]).contains("does not support log opt 'tag'"));
        assert!(validate(JSON_FILE, &opts(&[("max-size", "1m"), ("max-file", "100")])).is_ok());
        assert!(err(JSON_FILE, &[("max-size", "1m"), ("max-file", "101")]).contains("more than berth keeps per container log (100)"));
        assert!(err(LOCAL, &[("max-file", "99999999999")]).contains("more than berth keeps"));
    }

    #[test]
    fn local_defaults_and_errors() {
        let s = validate(LOCAL, &opts(&[])).unwrap();
        assert_eq!(s, LogSettings { driver: LogDriver::Local, max_size: Some(20 << 20), max_file: 5, compress: true });
        let s = validate(LOCAL, &opts(&[("max-size", "1m"), ("compress", "false"), ("max-file", "1")])).unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (Some(1_000_000), 1, false));
        let s = validate(LOCAL, &opts(&[("max-file", "0"), ("compress", "false")])).unwrap();
        assert_eq!(s.max_file, 1);
        assert!(err(LOCAL, &[("bogus", "1")]).starts_with("unknown log opt 'bogus' for log driver local"));
        assert!(err(LOCAL, &[("max-size", "abc")]).starts_with("invalid value for max-size: abc: invalid size: 'abc'"));
        assert!(err(LOCAL, &[("max-file", "-1")]).starts_with("max file count cannot be less than 0"));
        assert!(err(LOCAL, &[("max-file", "1")]).starts_with("compression cannot be enabled when max file count is 1"));
        assert!(err(LOCAL, &[("max-file", "0")]).starts_with("compression cannot be enabled when max file count is 1"));
        assert!(err(LOCAL, &[("compress", "maybe")]).starts_with("error reading compress log option"));
        assert!(err(LOCAL, &[("env", "A")]).contains("does not support log opt 'env'"));
    }

    #[test]
    fn drivers() {
        assert_eq!(validate(NONE, &opts(&[])).unwrap().driver, LogDriver::None);
        assert!(err(NONE, &[("max-size", "1m")]).starts_with("invalid logging opts for driver none"));
        assert!(err("foo", &[]).starts_with("error looking up logging plugin foo: plugin \"foo\" not found"));
        let e = err("syslog", &[]);
        assert!(e.contains("berth does not support the syslog logging driver"), "{e}");
        for d in DOCKERD_ONLY_DRIVERS {
            assert!(matches!(validate(d, &opts(&[])), Err(LogConfigError::UnsupportedDriver(_))), "{d}");
        }
    }

    #[test]
    fn resolve_merges_defaults_like_dockerd() {
        let defaults = LogConfig { driver: JSON_FILE.into(), opts: opts(&[("max-size", "1m"), ("max-file", "2")]) };
        // No driver: the default with its options.
        let (c, s) = resolve("", &opts(&[]), &defaults).unwrap();
        assert_eq!(c, defaults);
        assert_eq!((s.max_size, s.max_file), (Some(1_000_000), 2));
        // Same driver: the container's keys win, missing ones are filled in.
        let (c, _) = resolve(JSON_FILE, &opts(&[("max-file", "5")]), &defaults).unwrap();
        assert_eq!(c.opts, opts(&[("max-size", "1m"), ("max-file", "5")]));
        // Another driver: the defaults' options do not apply.
        let (c, s) = resolve(NONE, &opts(&[]), &defaults).unwrap();
        assert_eq!((c.driver.as_str(), c.opts.len(), s.driver), (NONE, 0, LogDriver::None));
        let (c, s) = resolve(LOCAL, &opts(&[]), &defaults).unwrap();
        assert!(c.opts.is_empty());
        assert_eq!(s.max_file, 5);
        // A merged set is validated as a whole.
        let e = resolve("", &opts(&[("compress", "true"), ("max-file", "1")]), &defaults).unwrap_err();
        assert!(e.to_string().starts_with("compress cannot be true"), "{e}");
        // Built-in default (empty daemon config).
        let (c, s) = resolve("", &opts(&[]), &LogConfig::default()).unwrap();
        assert_eq!((c.driver.as_str(), s), (JSON_FILE, LogSettings::default()));
    }
}
