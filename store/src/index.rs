//! The immutable in-memory index of container records.
//!
//! A [`Snapshot`] is one published version of the index: a map id → record
//! and a map name → id. The store publishes a new snapshot (copy-on-write)
//! after each durable change; readers take the current one with a single
//! atomic load and never wait for writers, container locks or I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::StoreError;
use crate::names::normalize_name;
use crate::record::ContainerRecord;

/// The maps behind a snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Records by full id (ordered, for prefix lookups).
    pub(crate) by_id: BTreeMap<String, Arc<ContainerRecord>>,
    /// Full id by name (without the leading `/`).
    pub(crate) by_name: HashMap<String, String>,
}

/// A consistent, immutable view of all containers at one instant. Cheap to
/// clone; holding it keeps that version alive but blocks nobody.
#[derive(Debug, Clone)]
pub struct Snapshot(pub(crate) Arc<Index>);

impl Snapshot {
    /// The record with exactly this full id.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.0.by_id.get(id).cloned()
    }

    /// The full id of the container with this name (with or without the
    /// leading `/`).
    pub fn id_by_name(&self, name: &str) -> Option<&str> {
        self.0.by_name.get(normalize_name(name)).map(String::as_str)
    }

    /// Finds a container the way Docker does: exact full id, then exact
    /// name (with or without `/`), then unique id prefix.
    ///
    /// Errors: [`StoreError::NotFound`] for no match,
    /// [`StoreError::AmbiguousPrefix`] if the prefix matches several ids.
    pub fn resolve(&self, key: &str) -> Result<Arc<ContainerRecord>, StoreError> {
        if key.is_empty() {
            return Err(StoreError::NotFound(key.to_owned()));
        }
        if let Some(r) = self.0.by_id.get(key) {
            return Ok(r.clone());
        }
        if let Some(id) = self.0.by_name.get(normalize_name(key)) {
            if let Some(r) = self.0.by_id.get(id) {
                return Ok(r.clone());
            }
        }
        let mut matches = self
            .0
            .by_id
            .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((_, r)), None) => Ok(r.clone()),
            (Some(_), Some(_)) => Err(StoreError::AmbiguousPrefix(key.to_owned())),
            _ => Err(StoreError::NotFound(key.to_owned())),
        }
    }

    /// All records, newest first (by `created`, then by id for a stable
    /// order). `docker ps` shows them in this order; filtering (running
    /// only, labels, …) is the caller's.
    pub fn list(&self) -> Vec<Arc<ContainerRecord>> {
        let mut v: Vec<_> = self.0.by_id.values().cloned().collect();
        // Stamps written by berth are fixed-width UTC RFC 3339, so string
        // order is time order.
        v.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// Iterates over all records in id order (no sorting, no allocation).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ContainerRecord>> {
        self.0.by_id.values()
    }

    /// Number of containers.
    pub fn len(&self) -> usize {
        self.0.by_id.len()
    }

    /// True if there are no containers.
    pub fn is_empty(&self) -> bool {
        self.0.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str, created: &str) -> Arc<ContainerRecord> {
        let mut r = ContainerRecord::new(id, name);
        r.created = created.into();
        Arc::new(r)
    }

    fn snapshot(recs: &[Arc<ContainerRecord>]) -> Snapshot {
        let mut ix = Index::default();
        for r in recs {
            ix.by_id.insert(r.id.clone(), r.clone());
            ix.by_name.insert(r.name.clone(), r.id.clone());
        }
        Snapshot(Arc::new(ix))
    }

    #[test]
    fn resolves_like_docker() {
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        // A container whose *name* looks like the other's id prefix.
        let c = format!("ff{}", "0".repeat(62));
        let s = snapshot(&[rec(&a, "web", "1"), rec(&b, "db", "2"), rec(&c, "abc1", "3")]);
        assert_eq!(s.resolve(&a).unwrap().name, "web");
        assert_eq!(s.resolve("/db").unwrap().id, b);
        assert_eq!(s.resolve("db").unwrap().id, b);
        // Name wins over prefix.
        assert_eq!(s.resolve("abc1").unwrap().id, c);
        assert_eq!(s.resolve("abc2").unwrap().id, b);
        assert!(matches!(s.resolve("abc"), Err(StoreError::AmbiguousPrefix(p)) if p == "abc"));
        assert!(matches!(s.resolve("abd"), Err(StoreError::NotFound(_))));
        assert!(matches!(s.resolve(""), Err(StoreError::NotFound(_))));
        assert_eq!(s.id_by_name("/web"), Some(a.as_str()));
    }

    #[test]
    fn lists_newest_first() {
        let s = snapshot(&[rec("a1", "x1", "2026-01-01"), rec("b2", "x2", "2026-03-01"), rec("c3", "x3", "2026-02-01")]);
        let names: Vec<_> = s.list().iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, ["x2", "x3", "x1"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().count(), 3);
    }
}
