//! `filters`: the `filters` query value of the container and image routes;
//! `glob`: the image `reference` filter's globs.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use berth_api::docker::filters::{
    familiar_image_ref, image_matches, labels_match, ContainerFilter, FilterError, Filters, PruneFilter, ReferenceFilter,
};
use berth_api::docker::glob::Glob;
use berth_store::record::{ContainerRecord, ContainerStatus};

use crate::{split_nul, text};

/// A fixed "now" (2026-11-29), so that a failure replays.
const NOW: Duration = Duration::from_secs(1_795_926_092);

/// The raw `filters` value.
pub fn filters(data: &[u8]) {
    let raw = text(data);
    let f = match Filters::parse(Some(&raw)) {
        Ok(f) => f,
        Err(e) => return check_error(&e),
    };
    let records = records();
    // Every route's use of the parsed filters.
    match ContainerFilter::new(&f, resolve) {
        Ok(cf) => records.iter().for_each(|r| {
            cf.matches(r);
        }),
        Err(e) => check_error(&e),
    }
    match PruneFilter::new(&f, UNIX_EPOCH + NOW) {
        Ok(pf) => records.iter().for_each(|r| {
            pf.matches(r);
        }),
        Err(e) => check_error(&e),
    }
    match ReferenceFilter::new(f.get("reference")) {
        Ok(rf) => {
            for tag in ["bb:latest", "me/app:1", "registry.example:5000/team/app:v2", "sha256:0123", ""] {
                rf.matches(tag);
            }
        }
        Err(e) => check_error(&e),
    }
    for key in f.keys() {
        let values = f.get(key);
        assert!(values.windows(2).all(|w| w[0] < w[1]), "values of {key} not sorted and distinct");
        for v in values {
            familiar_image_ref(v);
            records.iter().for_each(|r| {
                image_matches(v, r);
            });
        }
        records.iter().for_each(|r| {
            labels_match(values, &r.config.labels);
        });
    }
}

fn check_error(e: &FilterError) {
    let message = e.to_string();
    assert!(!message.is_empty());
    // A client's pattern is quoted shortened (64 characters), not whole.
    if let FilterError::BadPattern { value, .. } = e {
        assert!(value.chars().count() <= 64 || !message.contains(value.as_str()), "{message}");
    }
}

/// `before`/`since` resolve two containers by name.
fn resolve(key: &str) -> Option<String> {
    match key {
        "web" => Some("2026-11-29T04:00:00Z".into()),
        "db" => Some("not a time".into()),
        _ => None,
    }
}

fn records() -> &'static [ContainerRecord] {
    static RECORDS: OnceLock<Vec<ContainerRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let mut web = ContainerRecord::new("0123456789abcdef".repeat(4), "web");
        web.created = "2026-11-29T04:00:00.000000000Z".into();
        web.image = "busybox".into();
        web.image_id = format!("sha256:{}", "ab".repeat(32));
        web.config.labels.insert("app".into(), "web".into());
        web.config.labels.insert("tier".into(), String::new());
        web.state.status = ContainerStatus::Running;
        let mut old = ContainerRecord::new("fedcba9876543210".repeat(4), "old");
        old.created = "1999-01-01T00:00:00Z".into();
        old.image = "docker.io/library/alpine:3".into();
        old.state.status = ContainerStatus::Exited;
        old.state.exit_code = 137;
        let mut odd = ContainerRecord::new("00".repeat(32), "odd");
        odd.created = "garbage".into();
        vec![web, old, odd]
    })
}

/// Names are image references: the name is cut at 512 characters (the
/// pattern is not: [`Glob::new`] bounds it).
const MAX_NAME: usize = 512;

/// `PATTERN\0NAME`, or a pattern alone (matched against a few names).
pub fn glob(data: &[u8]) {
    let (pattern, name) = match split_nul(data) {
        (Some(p), n) => (text(p), vec![text(n).chars().take(MAX_NAME).collect::<String>()]),
        (None, p) => (text(p), vec![String::new(), "bb".into(), "bb:latest".into(), "me/app:1".into()]),
    };
    let g = match Glob::new(&pattern) {
        Ok(g) => g,
        Err(e) => return assert!(!e.to_string().is_empty()),
    };
    for name in &name {
        let m = g.matches(name);
        // Without a metacharacter a pattern matches itself only.
        if !pattern.contains(['*', '?', '[', '\\']) {
            assert_eq!(m, pattern == *name, "{pattern:?} against {name:?}");
        }
        if pattern == "*" {
            assert_eq!(m, !name.contains('/'), "* against {name:?}");
        }
    }
}
