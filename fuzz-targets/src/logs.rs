//! `logs_query`: the query of `docker logs` (and the other query values
//! parsed alike); `log_opts`: log drivers and their options.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use berth_api::docker::params::{parse_bool, parse_go_duration, parse_int, parse_signal, parse_time, LogsQuery};
use berth_config::logconfig::{self, LogConfig, LogDriver};

use crate::lines;

/// A fixed "now" (2026-11-29), so that a failure replays.
const NOW: Duration = Duration::from_secs(1_795_926_092);

/// A raw (URL-encoded) query string.
pub fn logs_query(data: &[u8]) {
    let now = UNIX_EPOCH + NOW;
    // As axum's `Query<HashMap<…>>`: decoded, the last value of a key wins.
    let query: HashMap<String, String> = form_urlencoded::parse(data).into_owned().collect();
    match LogsQuery::parse(&query, now) {
        Ok(q) => assert!(q.options.stdout || q.options.stderr),
        Err(e) => assert!(!e.message.is_empty()),
    }
    for (key, value) in &query {
        let _ = parse_time(key, value, now);
        let _ = parse_go_duration(value);
        let _ = parse_int(key, Some(value));
        let _ = parse_signal(value);
        parse_bool(Some(value));
    }
}

/// The driver on the first line; `key=value` options on the next ones.
pub fn log_opts(data: &[u8]) {
    let lines = lines(data);
    let driver = lines[0].as_str();
    let opts: BTreeMap<String, String> = lines[1..]
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    for v in opts.values() {
        logconfig::parse_size(v);
    }
    if let Ok(s) = logconfig::validate(driver, &opts) {
        assert!((1..=logconfig::MAX_FILE_LIMIT).contains(&s.max_file), "max-file {}", s.max_file);
        assert!(s.max_size != Some(0));
        if s.compress {
            assert!(s.max_file >= 2 && s.max_size.is_some(), "{s:?}");
        }
        if s.driver == LogDriver::None {
            assert!(opts.is_empty());
        }
    }
    let defaults = [
        LogConfig::builtin(),
        LogConfig { driver: String::new(), opts: BTreeMap::from([("max-file".into(), "3".into())]) },
        LogConfig { driver: logconfig::LOCAL.into(), opts: BTreeMap::from([("compress".into(), "false".into())]) },
    ];
    for d in &defaults {
        match logconfig::resolve(driver, &opts, d) {
            Ok((merged, _)) => assert!(opts.keys().all(|k| merged.opts.get(k) == opts.get(k)), "the container's options changed"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
