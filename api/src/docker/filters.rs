//! The `filters` query parameter (`GET /containers/json`,
//! `POST /containers/prune`, …) and container matching.
//!
//! Wire forms accepted, per key: `{"status":{"running":true}}` (what the
//! CLI sends) and `{"status":["running"]}` (older clients).
//!
//! Container list semantics (as dockerd, except where noted):
//! - different keys are ANDed; several values of one key are ORed, except
//!   `label` where every value must match;
//! - `id`: prefix of the full id (dockerd applies the value as a regexp;
//!   for hex ids the results agree except for mid-id matches);
//! - `name`: each value is a regular expression searched in the name with
//!   and without its leading `/` (so `web` matches `/myweb`, `^web$`
//!   matches exactly); an invalid regexp matches nothing, like dockerd;
//!   the patterns of one request compile within [`NAME_REGEX_BUDGET`]
//!   (a 400 otherwise);
//! - `label`: `key` (present) or `key=value`;
//! - `status`: created, restarting, running, removing, paused, exited, dead;
//! - `exited`: exit code of exited containers;
//! - `ancestor`: image reference (`bb` ≡ `bb:latest` ≡
//!   `docker.io/library/bb:latest`) or image id / id prefix (with or
//!   without `sha256:`). Unlike dockerd, images built *from* that image are
//!   not matched (berth has no image parent chain);
//! - `before` / `since`: a container (name, id or id prefix, resolved by
//!   the caller) — only containers created strictly before / after it.
//!
//! Prune accepts `until` (a time, see [`super::params::parse_time`]),
//! `label` and `label!`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use berth_engine::model::{ContainerRecord, ContainerStatus};
use berth_engine::model::timefmt::parse_rfc3339;
use http::StatusCode;

use super::glob::Glob;
use super::params::parse_time;
use crate::error::ApiError;

/// Filter errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not JSON of either accepted shape.
    #[error("invalid filters: {0}")]
    Malformed(String),
    /// A key this endpoint does not accept.
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    /// A key dockerd has but berth does not implement.
    #[error("filter '{0}' is not supported by berth yet")]
    Unsupported(String),
    /// A value that does not fit its key.
    #[error("invalid filter '{key}={value}'")]
    BadValue { key: String, value: String },
    /// A glob that cannot be used: a syntax error, or too long.
    #[error("invalid filter '{key}={}': {reason}", shorten(.value))]
    BadPattern { key: String, value: String, reason: String },
    /// More filter values, or pattern bytes, than one request may carry.
    #[error("invalid filters: {0}")]
    TooMuch(String),
    /// `before`/`since` name a container that does not exist (404).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        let status = match e {
            FilterError::NoSuchContainer(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A client's value, short enough to quote in a message.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_owned(),
    }
}

/// Parsed filters: key → values (sorted, de-duplicated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the raw (URL-decoded) `filters` value; absent or empty → no
    /// filters.
    pub fn parse(raw: Option<&str>) -> Result<Filters, FilterError> {
        let raw = raw.unwrap_or("").trim();
        if raw.is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| FilterError::Malformed(e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| FilterError::Malformed("expected a JSON object".into()))?;
        let mut out = BTreeMap::new();
        let mut count = 0usize;
        for (key, vals) in obj {
            let mut list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                serde_json::Value::Array(a) => {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_owned))
                        .collect::<Option<_>>()
                        .ok_or_else(|| FilterError::Malformed(format!("values of '{key}' must be strings")))?
                }
                _ => {
                    return Err(FilterError::Malformed(format!(
                        "values of '{key}' must be an object of booleans or a list of strings"
                    )))
                }
            };
            count += list.len();
            if count > MAX_FILTER_VALUES {
                return Err(FilterError::TooMuch(format!("more than {MAX_FILTER_VALUES} values; use fewer filters")));
            }
            list.sort();
            list.dedup();
            out.insert(key.clone(), list);
        }
        Ok(Filters(out))
    }

    /// Values of `key` (empty if absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Fails on the first (sorted) key not in `accepted`; keys in
    /// `unsupported` get a "not supported by berth yet" message instead.
    pub fn validate(&self, accepted: &[&str], unsupported: &[&str]) -> Result<(), FilterError> {
        for k in self.keys() {
            if unsupported.contains(&k) {
                return Err(FilterError::Unsupported(k.to_owned()));
            }
            if !accepted.contains(&k) {
                return Err(FilterError::UnknownKey(k.to_owned()));
            }
        }
        Ok(())
    }
}

/// `key` or `key=value` label conditions; true if all hold.
pub fn labels_match(conditions: &[String], labels: &BTreeMap<String, String>) -> bool {
    conditions.iter().all(|c| label_matches(c, labels))
}

fn label_matches(condition: &str, labels: &BTreeMap<String, String>) -> bool {
    match condition.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(condition),
    }
}

/// An image reference in Docker's short ("familiar") form: no
/// `docker.io/` or `library/` prefix, `:latest` added when there is no tag
/// or digest. `sha256:…` ids are returned unchanged.
pub fn familiar_image_ref(r: &str) -> String {
    let mut s = r;
    for p in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
            break;
        }
    }
    let s = s.strip_prefix("library/").unwrap_or(s);
    if s.starts_with("sha256:") || s.contains('@') {
        return s.to_owned();
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') {
        s.to_owned()
    } else {
        format!("{s}:latest")
    }
}

/// The image `reference` filter (`docker images --filter reference=…`):
/// globs ([`Glob`], Go's `path.Match`) matched, as dockerd does, against a
/// tag's familiar `name:tag` and then its familiar name (`bb:latest`, then
/// `bb`; `me/app:1`, then `me/app`). Several values are ORed.
#[derive(Debug, Clone, Default)]
pub struct ReferenceFilter {
    globs: Vec<Glob>,
}

/// The most bytes the `reference` patterns of one request may total:
/// matching costs up to pattern × name for every tag, so this bounds a
/// request's work (a few dozen ordinary patterns fit).
pub const REFERENCE_PATTERNS_BUDGET: usize = 4096;

/// The most values one `filters` parameter may carry, all keys together.
pub const MAX_FILTER_VALUES: usize = 1024;

impl ReferenceFilter {
    /// Compiles the values of `reference`; a bad pattern is a 400 that
    /// says why.
    pub fn new(values: &[String]) -> Result<Self, FilterError> {
        let globs = values
            .iter()
            .map(|v| {
                Glob::new(v).map_err(|e| FilterError::BadPattern { key: "reference".into(), value: v.clone(), reason: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        let total: usize = values.iter().map(String::len).sum();
        if total > REFERENCE_PATTERNS_BUDGET {
            return Err(FilterError::TooMuch(format!(
                "the reference patterns total {total} bytes, more than the {REFERENCE_PATTERNS_BUDGET} berth matches in one request; use fewer or shorter patterns"
            )));
        }
        Ok(ReferenceFilter { globs })
    }

    /// No pattern given.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Does a familiar `name:tag` match one of the patterns?
    pub fn matches(&self, familiar_tag: &str) -> bool {
        let name = familiar_tag.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map(|(r, _)| r).unwrap_or(familiar_tag);
        self.globs.iter().any(|g| g.matches(familiar_tag) || g.matches(name))
    }
}

/// Does `value` (a reference or an id/id prefix) designate the image of
/// `record`?
pub fn image_matches(value: &str, record: &ContainerRecord) -> bool {
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    let id_hex = record.image_id.strip_prefix("sha256:").unwrap_or(&record.image_id);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && id_hex.starts_with(hex) {
        return true;
    }
    !record.image.is_empty() && familiar_image_ref(value) == familiar_image_ref(&record.image)
}

const STATUSES: &[&str] = &["created", "restarting", "running", "removing", "paused", "exited", "dead"];

/// Keys `GET /containers/json` accepts.
pub const CONTAINER_LIST_KEYS: &[&str] = &["id", "name", "label", "status", "exited", "ancestor", "before", "since"];
/// Keys dockerd accepts there that berth does not implement yet.
pub const CONTAINER_LIST_UNSUPPORTED: &[&str] =
    &["expose", "health", "isolation", "is-task", "network", "publish", "volume"];

/// A compiled container list filter.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    ids: Vec<String>,
    names: Vec<regex::Regex>,
    name_given: bool,
    labels: Vec<String>,
    statuses: Vec<String>,
    exited: Vec<i64>,
    ancestors: Vec<String>,
    before: Option<SystemTime>,
    since: Option<SystemTime>,
}

impl ContainerFilter {
    /// Compiles `filters`. `resolve` maps a `before`/`since` value (name,
    /// id or id prefix) to that container's `created` time (RFC 3339);
    /// `None` → 404 `No such container: X`.
    pub fn new(filters: &Filters, resolve: impl Fn(&str) -> Option<String>) -> Result<Self, FilterError> {
        filters.validate(CONTAINER_LIST_KEYS, CONTAINER_LIST_UNSUPPORTED)?;
        let bad = |key: &str, value: &str| FilterError::BadValue { key: key.into(), value: value.into() };
        for s in filters.get("status") {
            if !STATUSES.contains(&s.as_str()) {
                return Err(bad("status", s));
            }
        }
        let exited = filters
            .get("exited")
            .iter()
            .map(|v| v.parse::<i64>().map_err(|_| bad("exited", v)))
            .collect::<Result<_, _>>()?;
        let bound = |key: &str| -> Result<Option<SystemTime>, FilterError> {
            match filters.get(key).last() {
                None => Ok(None),
                Some(v) => {
                    let created = resolve(v).ok_or_else(|| FilterError::NoSuchContainer(v.clone()))?;
                    Ok(Some(parse_rfc3339(&created).unwrap_or(SystemTime::UNIX_EPOCH)))
                }
            }
        };
        Ok(ContainerFilter {
            ids: filters.get("id").to_vec(),
            names: name_regexes(filters.get("name"))?,
            name_given: filters.contains("name"),
            labels: filters.get("label").to_vec(),
            statuses: filters.get("status").to_vec(),
            exited,
            ancestors: filters.get("ancestor").to_vec(),
            before: bound("before")?,
            since: bound("since")?,
        })
    }

    /// Does `r` pass every condition?
    pub fn matches(&self, r: &ContainerRecord) -> bool {
        if !self.ids.is_empty() && !self.ids.iter().any(|p| r.id.starts_with(p.as_str())) {
            return false;
        }
        if self.name_given {
            let slashed = r.docker_name();
            if !self.names.iter().any(|re| re.is_match(&slashed) || re.is_match(&r.name)) {
                return false;
            }
        }
        if !labels_match(&self.labels, &r.config.labels) {
            return false;
        }
        if !self.statuses.is_empty() && !self.statuses.iter().any(|s| s == r.state.status.as_str()) {
            return false;
        }
        let exited_ok = r.state.status == ContainerStatus::Exited && self.exited.contains(&r.state.exit_code);
        if !self.exited.is_empty() && !exited_ok {
            return false;
        }
        if !self.ancestors.is_empty() && !self.ancestors.iter().any(|a| image_matches(a, r)) {
            return false;
        }
        if self.before.is_some() || self.since.is_some() {
            let created = parse_rfc3339(&r.created).unwrap_or(SystemTime::UNIX_EPOCH);
            if self.before.is_some_and(|b| created >= b) || self.since.is_some_and(|s| created <= s) {
                return false;
            }
        }
        true
    }
}

/// Bytes of compiled program all the `name` patterns of one request may
/// take together (their lazy DFAs may cache as much again). Each pattern
/// gets an equal share, so one pattern may be large (`\w{20}` takes 1 MiB:
/// `\w` is every letter of Unicode) and many small ones fit.
pub const NAME_REGEX_BUDGET: usize = 4 << 20;

/// Compiles the `name` values within [`NAME_REGEX_BUDGET`]. Like dockerd,
/// a value that is not a valid regexp matches nothing; one that needs more
/// than its share is refused (a few bytes of query could otherwise cost
/// megabytes and seconds each).
fn name_regexes(values: &[String]) -> Result<Vec<regex::Regex>, FilterError> {
    let share = NAME_REGEX_BUDGET / values.len().max(1);
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match regex::RegexBuilder::new(v).size_limit(share).dfa_size_limit(share).build() {
            Ok(re) => out.push(re),
            Err(regex::Error::CompiledTooBig(_)) => {
                return Err(FilterError::BadPattern {
                    key: "name".into(),
                    value: v.clone(),
                    reason: format!(
                        "the regular expression is too large: the {} name patterns may take {} KiB each once compiled; \
                         give fewer or simpler patterns (e.g. [a-z0-9_] rather than \\w, which is every letter of Unicode)",
                        values.len(),
                        share >> 10
                    ),
                })
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Keys `POST /containers/prune` accepts.
pub const PRUNE_KEYS: &[&str] = &["until", "label", "label!"];

/// A compiled prune filter (`until`, `label`, `label!`).
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    until: Option<SystemTime>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilter {
    /// Compiles `filters`; `until` durations are relative to `now`.
    pub fn new(filters: &Filters, now: SystemTime) -> Result<Self, FilterError> {
        filters.validate(PRUNE_KEYS, &[])?;
        let until = match filters.get("until") {
            [] => None,
            [one] => Some(
                parse_time("until", one, now)
                    .map_err(|_| FilterError::BadValue { key: "until".into(), value: one.clone() })?,
            ),
            _ => return Err(FilterError::Malformed("more than one until filter specified".into())),
        };
        Ok(PruneFilter { until, labels: filters.get("label").to_vec(), not_labels: filters.get("label!").to_vec() })
    }

    /// Should `r` (already known to be stopped) be pruned?
    pub fn matches(&self, r: &ContainerRecord) -> bool {
        if let Some(until) = self.until {
            let created = parse_rfc3339(&r.created).unwrap_or(SystemTime::UNIX_EPOCH);
            if created >= until {
                return false;
            }
        }
        labels_match(&self.labels, &r.config.labels)
            && !self.not_labels.iter().any(|c| label_matches(c, &r.config.labels))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn rec(id: &str, name: &str, created: &str) -> ContainerRecord {
        let mut r = ContainerRecord::new(id.repeat(64 / id.len()), name);
        r.created = created.into();
        r
    }

    fn f(json: &str) -> Filters {
        Filters::parse(Some(json)).unwrap()
    }

    fn cf(json: &str) -> ContainerFilter {
        ContainerFilter::new(&f(json), |_| None).unwrap()
    }

    #[test]
    fn both_wire_forms() {
        let a = f(r#"{"status":{"running":true,"exited":true}}"#);
        let b = f(r#"{"status":["exited","running","running"]}"#);
        assert_eq!(a, b);
        assert_eq!(a.get("status"), &["exited".to_string(), "running".to_string()]);
        assert!(Filters::parse(None).unwrap().is_empty());
        assert!(Filters::parse(Some("")).unwrap().is_empty());
        assert!(f("{}").is_empty());
        for bad in ["x", "[]", r#"{"a":"b"}"#, r#"{"a":[1]}"#] {
            let e = Filters::parse(Some(bad)).unwrap_err();
            assert!(matches!(e, FilterError::Malformed(_)), "{bad}: {e}");
            assert_eq!(ApiError::from(e).status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn unknown_and_unsupported_keys() {
        let e = ContainerFilter::new(&f(r#"{"bogus":{"x":true}}"#), |_| None).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'bogus'");
        assert_eq!(ApiError::from(e).status, StatusCode::BAD_REQUEST);
        let e = ContainerFilter::new(&f(r#"{"health":["healthy"]}"#), |_| None).unwrap_err();
        assert_eq!(e.to_string(), "filter 'health' is not supported by berth yet");
        let e = ContainerFilter::new(&f(r#"{"status":["sleeping"]}"#), |_| None).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'status=sleeping'");
        let e = ContainerFilter::new(&f(r#"{"exited":["x"]}"#), |_| None).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'exited=x'");
    }

    #[test]
    fn filter_values_and_reference_patterns_are_bounded() {
        let many: Vec<String> = (0..=MAX_FILTER_VALUES).map(|i| format!("\"k{i}\"")).collect();
        let raw = format!("{{\"label\":[{}]}}", many.join(","));
        assert!(matches!(Filters::parse(Some(&raw)), Err(FilterError::TooMuch(_))));
        let ok: Vec<String> = (0..MAX_FILTER_VALUES).map(|i| format!("\"k{i}\"")).collect();
        assert!(Filters::parse(Some(&format!("{{\"label\":[{}]}}", ok.join(",")))).is_ok());

        let pattern = "*a".repeat(256);
        let within: Vec<String> = (0..REFERENCE_PATTERNS_BUDGET / pattern.len()).map(|i| format!("{pattern}{i}")).collect();
        assert!(ReferenceFilter::new(&within[..within.len() - 1]).is_ok());
        let over: Vec<String> = (0..=REFERENCE_PATTERNS_BUDGET / pattern.len()).map(|_| pattern.clone()).collect();
        let e = ReferenceFilter::new(&over).unwrap_err();
        assert!(e.to_string().contains("more than the 4096 berth matches in one request"), "{e}");
    }

    #[test]
    fn name_patterns_compile_within_one_budget() {
        // 20 patterns of 9 bytes asked for ~6 MiB of compiled program each
        // (`\w` is every letter of Unicode): 120 MiB and seconds of CPU for
        // a query of 250 bytes, without bound as the query grows.
        let many: Vec<String> = (0..20).map(|i| format!(r"\w{{100}}{i}")).collect();
        let json = serde_json::json!({ "name": many }).to_string();
        let e = ContainerFilter::new(&f(&json), |_| None).unwrap_err();
        assert!(matches!(&e, FilterError::BadPattern { key, .. } if key == "name"), "{e}");
        assert!(e.to_string().contains("too large"), "{e}");
        assert_eq!(ApiError::from(e).status, StatusCode::BAD_REQUEST);
        // Everyday patterns, many of them, and one large one alone still work.
        let web = rec("ab", "myweb", "2026-01-01T00:00:00Z");
        let usual: Vec<String> = (0..64).map(|i| format!("^/?web{i}$")).chain(["web$".to_string()]).collect();
        assert!(cf(&serde_json::json!({ "name": usual }).to_string()).matches(&web));
        assert!(cf(r#"{"name":["\\w{20}"]}"#).matches(&rec("ab", "abcdefghijklmnopqrstu", "")));
    }

    #[test]
    fn id_name_label_status_exited() {
        let mut web = rec("ab", "myweb", "2026-01-01T00:00:00Z");
        web.config.labels.insert("tier".into(), "front".into());
        web.config.labels.insert("x".into(), "".into());
        web.state.status = ContainerStatus::Running;
        let mut db = rec("cd", "db", "2026-01-02T00:00:00Z");
        db.state.status = ContainerStatus::Exited;
        db.state.exit_code = 3;

        assert!(cf(r#"{"id":["abab"]}"#).matches(&web));
        assert!(!cf(r#"{"id":["abab"]}"#).matches(&db));
        assert!(cf(r#"{"name":{"web":true}}"#).matches(&web));
        assert!(cf(r#"{"name":["^myweb$"]}"#).matches(&web));
        assert!(cf(r#"{"name":["^/myweb$"]}"#).matches(&web));
        assert!(!cf(r#"{"name":["^web"]}"#).matches(&web));
        assert!(cf(r#"{"name":["nomatch","db"]}"#).matches(&db), "values of one key are ORed");
        assert!(!cf(r#"{"name":["("]}"#).matches(&web), "invalid regexp matches nothing");
        assert!(cf(r#"{"label":["tier"]}"#).matches(&web));
        assert!(cf(r#"{"label":["tier=front","x"]}"#).matches(&web));
        assert!(!cf(r#"{"label":["tier=front","y"]}"#).matches(&web), "labels are ANDed");
        assert!(!cf(r#"{"label":["tier=back"]}"#).matches(&web));
        assert!(cf(r#"{"label":["x="]}"#).matches(&web));
        assert!(cf(r#"{"status":["running","paused"]}"#).matches(&web));
        assert!(!cf(r#"{"status":["exited"]}"#).matches(&web));
        assert!(cf(r#"{"exited":["3"]}"#).matches(&db));
        assert!(!cf(r#"{"exited":["0"]}"#).matches(&db));
        assert!(!cf(r#"{"exited":["0"]}"#).matches(&web));
        assert!(!cf(r#"{"status":["exited"],"name":["web"]}"#).matches(&db), "keys are ANDed");
        assert!(cf("{}").matches(&db));
    }

    #[test]
    fn ancestor() {
        let mut r = rec("ab", "a1", "");
        r.image = "bb".into();
        r.image_id = "sha256:73bb6cd75f9fa13c37423ffd10349d3e268355043157f37546aef3fb9d8b04ab".into();
        for yes in ["bb", "bb:latest", "docker.io/library/bb:latest", "library/bb", "73bb6cd75f9f", "sha256:73bb"] {
            assert!(cf(&format!(r#"{{"ancestor":["{yes}"]}}"#)).matches(&r), "{yes}");
        }
        for no in ["bb:v2", "other", "74bb", "busybox"] {
            assert!(!cf(&format!(r#"{{"ancestor":["{no}"]}}"#)).matches(&r), "{no}");
        }
        assert_eq!(familiar_image_ref("docker.io/library/bb"), "bb:latest");
        assert_eq!(familiar_image_ref("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(familiar_image_ref("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
        assert_eq!(familiar_image_ref("docker.io/me/app"), "me/app:latest");
    }

    #[test]
    fn reference_filter_like_dockerd() {
        let r = |p: &str| ReferenceFilter::new(&[p.to_string()]).unwrap();
        // (pattern, familiar tag, matches): dockerd 20.10's answers.
        for (p, tag, want) in [
            ("busybox", "busybox:latest", true),
            ("busy*", "busybox:latest", true),
            ("busybox:latest", "busybox:latest", true),
            ("busybox:*", "busybox:latest", true),
            ("*:latest", "busybox:latest", true),
            ("*", "busybox:latest", true),
            ("b?sybox", "busybox:latest", true),
            ("[a-c]usybox", "busybox:latest", true),
            ("[^a]usybox", "busybox:latest", true),
            ("busybox:lat", "busybox:latest", false),
            ("library/busybox", "busybox:latest", false),
            ("docker.io/library/busybox", "busybox:latest", false),
            ("*/*", "busybox:latest", false),
            ("berthglob/*", "berthglob/xx/y:1", false),
            ("berthglob/*/*", "berthglob/xx/y:1", true),
            ("*/xx/y", "berthglob/xx/y:1", true),
            ("berthglob/xx[/]y", "berthglob/xx/y:1", true),
            ("berthglob/*:1", "berthglob/xx/y:1", false),
            ("berthglob/xx/*:1", "berthglob/xx/y:1", true),
            ("berthglob/*x[^z]*y", "berthglob/xx/y:1", false),
            ("localhost:5000/x", "localhost:5000/x:1", true),
        ] {
            assert_eq!(r(p).matches(tag), want, "{p} against {tag}");
        }
        let two = ReferenceFilter::new(&["nomatch".into(), "bb".into()]).unwrap();
        assert!(two.matches("bb:1"), "values are ORed");
        for bad in ["zzz[", "[", "busybox\\"] {
            let e = ReferenceFilter::new(&[bad.into()]).unwrap_err();
            assert!(e.to_string().starts_with(&format!("invalid filter 'reference={bad}': syntax error in pattern")), "{e}");
            assert_eq!(ApiError::from(e).status, StatusCode::BAD_REQUEST);
        }
        let e = ReferenceFilter::new(&["*".repeat(100_000)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid filter 'reference={}…': the pattern is 100000 bytes, longer than the 1024 berth accepts", "*".repeat(64))
        );
    }

    #[test]
    fn before_and_since() {
        let a = rec("aa", "a", "2026-01-01T00:00:00Z");
        let b = rec("bb", "b", "2026-01-02T00:00:00Z");
        let c = rec("cc", "c", "2026-01-03T00:00:00Z");
        let all = [a.clone(), b.clone(), c.clone()];
        let resolve = |v: &str| all.iter().find(|r| r.name == v || r.id.starts_with(v)).map(|r| r.created.clone());
        let before = ContainerFilter::new(&f(r#"{"before":["b"]}"#), resolve).unwrap();
        assert_eq!(all.iter().filter(|r| before.matches(r)).map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a"]);
        let since = ContainerFilter::new(&f(r#"{"since":["bbbb"]}"#), resolve).unwrap();
        assert_eq!(all.iter().filter(|r| since.matches(r)).map(|r| r.name.as_str()).collect::<Vec<_>>(), ["c"]);
        let e = ContainerFilter::new(&f(r#"{"since":["nosuch"]}"#), resolve).unwrap_err();
        assert_eq!(e.to_string(), "No such container: nosuch");
        assert_eq!(ApiError::from(e).status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn prune() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut old = rec("aa", "old", "2026-01-01T00:00:00Z");
        old.config.labels.insert("keep".into(), "1".into());
        let new = rec("bb", "new", &berth_engine::model::timefmt::format_rfc3339_nano(now - Duration::from_secs(60)));
        let p = PruneFilter::new(&f(r#"{"until":["10m"]}"#), now).unwrap();
        assert!(p.matches(&old) && !p.matches(&new));
        let p = PruneFilter::new(&f(r#"{"until":["2026-06-01T00:00:00Z"]}"#), now).unwrap();
        assert!(p.matches(&old) && !p.matches(&new));
        let p = PruneFilter::new(&f(r#"{"label!":["keep"]}"#), now).unwrap();
        assert!(!p.matches(&old) && p.matches(&new));
        let p = PruneFilter::new(&f(r#"{"label":{"keep=1":true}}"#), now).unwrap();
        assert!(p.matches(&old) && !p.matches(&new));
        assert!(PruneFilter::new(&f("{}"), now).unwrap().matches(&new));
        let e = PruneFilter::new(&f(r#"{"status":["exited"]}"#), now).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'status'");
        let e = PruneFilter::new(&f(r#"{"until":["soon"]}"#), now).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'until=soon'");
    }
}
