//! The exec table: which execs exist, in which phase, and when they are
//! collected. Pure bookkeeping (no I/O); [`super::ExecService`] holds it
//! under one mutex.
//!
//! dockerd keeps an exited exec inspectable until its GC, which runs every
//! 5 minutes and drops exits older than one tick (so 5 to 10 minutes), and
//! drops a container's created and running execs when the container stops.
//! berth keeps an exited exec for [`EXITED_RETENTION`] and, so that a flood
//! of `docker exec` (or exec health checks) cannot grow the table, keeps at
//! most [`EXITED_PER_CONTAINER`] exits per container (the oldest go first)
//! and at most [`CREATED_PER_CONTAINER`] execs created and not yet started
//! (the oldest go first).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long an exited exec stays inspectable (dockerd: 5 to 10 minutes).
pub const EXITED_RETENTION: Duration = Duration::from_secs(5 * 60);
/// The most exited execs kept per container.
pub const EXITED_PER_CONTAINER: usize = 64;
/// The most execs created and not started kept per container.
pub const CREATED_PER_CONTAINER: usize = 256;

/// Where an exec is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created, not started.
    Created,
    /// `start` was called (the process may still be starting).
    Started,
    /// Exited (or could not start) at this instant.
    Exited(Instant),
}

struct Slot<T> {
    container: String,
    phase: Phase,
    value: T,
}

/// Execs by id, with per-container queues of the collectable ones.
pub struct Table<T> {
    slots: HashMap<String, Slot<T>>,
    /// Per container: its created execs, oldest first.
    created: HashMap<String, VecDeque<String>>,
    /// Per container: its exited execs, in exit order.
    exited: HashMap<String, VecDeque<String>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { slots: HashMap::new(), created: HashMap::new(), exited: HashMap::new() }
    }
}

impl<T: Clone> Table<T> {
    /// How many execs the table holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// An exec and its phase.
    pub fn get(&self, id: &str) -> Option<(T, Phase)> {
        self.slots.get(id).map(|s| (s.value.clone(), s.phase))
    }

    /// Adds a created exec; drops the container's oldest created one if it
    /// has [`CREATED_PER_CONTAINER`] already.
    pub fn insert(&mut self, id: String, container: &str, value: T) {
        let queue = self.created.entry(container.to_string()).or_default();
        queue.push_back(id.clone());
        while queue.len() > CREATED_PER_CONTAINER {
            if let Some(old) = queue.pop_front() {
                self.slots.remove(&old);
            }
        }
        self.slots.insert(id, Slot { container: container.to_string(), phase: Phase::Created, value });
    }

    /// Moves a created exec to started; false if it is not in the created
    /// phase (unknown, already started, or exited), so a start runs once.
    pub fn start(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.get_mut(id).filter(|s| s.phase == Phase::Created) else { return false };
        slot.phase = Phase::Started;
        if let Some(q) = self.created.get_mut(&slot.container) {
            q.retain(|x| x != id);
            if q.is_empty() {
                self.created.remove(&slot.container);
            }
        }
        true
    }

    /// Records an exit (idempotent); drops the container's oldest exits
    /// beyond [`EXITED_PER_CONTAINER`] and any older than
    /// [`EXITED_RETENTION`].
    pub fn exited(&mut self, id: &str, now: Instant) {
        let Some(slot) = self.slots.get_mut(id) else { return };
        match slot.phase {
            Phase::Exited(_) => return,
            Phase::Created => {
                // A start that failed before `start` moved it on: not created any more.
                if let Some(q) = self.created.get_mut(&slot.container) {
                    q.retain(|x| x != id);
                    if q.is_empty() {
                        self.created.remove(&slot.container);
                    }
                }
            }
            Phase::Started => {}
        }
        slot.phase = Phase::Exited(now);
        let container = slot.container.clone();
        self.exited.entry(container.clone()).or_default().push_back(id.to_string());
        self.trim_exited(&container, now);
    }

    fn trim_exited(&mut self, container: &str, now: Instant) {
        let Some(queue) = self.exited.get_mut(container) else { return };
        while let Some(old) = queue.front() {
            let expired = match self.slots.get(old).map(|s| s.phase) {
                Some(Phase::Exited(at)) => queue.len() > EXITED_PER_CONTAINER || now.saturating_duration_since(at) >= EXITED_RETENTION,
                _ => true, // already gone
            };
            if !expired {
                break;
            }
            if let Some(old) = queue.pop_front() {
                self.slots.remove(&old);
            }
        }
        if queue.is_empty() {
            self.exited.remove(container);
        }
    }

    /// The execs of `container` that have not exited (created or
    /// started), sorted: what dockerd lists as a container's `ExecIDs`.
    pub fn live_of(&self, container: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.container == container && !matches!(s.phase, Phase::Exited(_)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The containers that have execs.
    pub fn containers(&self) -> Vec<String> {
        let mut c: Vec<String> = self.slots.values().map(|s| s.container.clone()).collect();
        c.sort();
        c.dedup();
        c
    }

    /// The periodic collection. `running` says, for each container of
    /// [`containers`](Self::containers), whether it runs (`None`: removed).
    /// Drops expired exits; the execs of a removed container; the created
    /// execs of a stopped one (they can never start). A started exec of a
    /// stopped container died with it: it counts as exited now, unless its
    /// exit arrives first.
    pub fn sweep(&mut self, now: Instant, running: &HashMap<String, Option<bool>>) {
        for (container, state) in running {
            match state {
                None => {
                    self.slots.retain(|_, s| &s.container != container);
                    self.created.remove(container);
                    self.exited.remove(container);
                }
                Some(false) => {
                    if let Some(q) = self.created.remove(container) {
                        for id in q {
                            self.slots.remove(&id);
                        }
                    }
                    let started: Vec<String> =
                        self.slots.iter().filter(|(_, s)| &s.container == container && s.phase == Phase::Started).map(|(id, _)| id.clone()).collect();
                    for id in started {
                        self.exited(&id, now);
                    }
                }
                Some(true) => {}
            }
        }
        let containers: Vec<String> = self.exited.keys().cloned().collect();
        for c in containers {
            self.trim_exited(&c, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_one(t: &mut Table<u32>, id: &str, container: &str, now: Instant) {
        t.insert(id.to_string(), container, 0);
        assert!(t.start(id));
        t.exited(id, now);
    }

    #[test]
    fn ten_thousand_execs_do_not_grow_the_table() {
        let mut t = Table::default();
        let now = Instant::now();
        for i in 0..10_000 {
            let id = format!("e{i}");
            run_one(&mut t, &id, "c1", now);
            // Inspectable right after its exit.
            assert!(matches!(t.get(&id), Some((_, Phase::Exited(_)))), "exec {i} gone right after exit");
        }
        assert_eq!(t.len(), EXITED_PER_CONTAINER);
        // The most recent ones are the ones kept.
        assert!(t.get("e9999").is_some() && t.get(&format!("e{}", 10_000 - EXITED_PER_CONTAINER)).is_some());
        assert!(t.get(&format!("e{}", 10_000 - EXITED_PER_CONTAINER - 1)).is_none());
        // Another container's exits are not pushed out.
        run_one(&mut t, "other", "c2", now);
        for i in 0..1000 {
            run_one(&mut t, &format!("f{i}"), "c1", now);
        }
        assert!(t.get("other").is_some());
        assert_eq!(t.len(), EXITED_PER_CONTAINER + 1);
    }

    #[test]
    fn created_execs_are_capped_and_start_once() {
        let mut t = Table::default();
        for i in 0..10_000 {
            t.insert(format!("e{i}"), "c1", i);
        }
        assert_eq!(t.len(), CREATED_PER_CONTAINER);
        assert!(t.get("e0").is_none() && t.get("e9999").is_some());
        assert!(t.start("e9999"));
        assert!(!t.start("e9999"), "a second start is refused");
        assert!(!t.start("nosuch"));
        // A start that failed before running counts as an exit.
        t.exited("e9998", Instant::now());
        assert!(!t.start("e9998"));
        assert!(matches!(t.get("e9998"), Some((_, Phase::Exited(_)))));
    }

    #[test]
    fn exits_expire_and_stopped_or_removed_containers_release_their_execs() {
        let mut t = Table::default();
        let t0 = Instant::now();
        run_one(&mut t, "old", "c1", t0);
        t.insert("pending".into(), "c2", 0);
        t.insert("running".into(), "c2", 0);
        assert!(t.start("running"));
        t.insert("gone".into(), "c3", 0);
        assert!(t.start("gone"));
        let later = t0 + EXITED_RETENTION;
        let states = HashMap::from([("c1".to_string(), Some(true)), ("c2".to_string(), Some(false)), ("c3".to_string(), None)]);
        t.sweep(later, &states);
        assert!(t.get("old").is_none(), "an exit older than the retention is collected");
        assert!(t.get("pending").is_none(), "a created exec of a stopped container can never start");
        assert_eq!(t.get("running").map(|x| x.1), Some(Phase::Exited(later)), "died with its container, still inspectable");
        assert!(t.get("gone").is_none(), "the execs of a removed container go with it");
        t.sweep(later + EXITED_RETENTION, &HashMap::new());
        assert!(t.is_empty());
    }

    #[test]
    fn live_of_lists_created_and_started_execs_of_one_container() {
        let mut t: Table<()> = Table::default();
        let now = Instant::now();
        t.insert("a1".into(), "c1", ());
        t.insert("a2".into(), "c1", ());
        t.insert("b1".into(), "c2", ());
        assert!(t.start("a2"));
        assert_eq!(t.live_of("c1"), ["a1", "a2"]);
        t.exited("a2", now);
        assert_eq!(t.live_of("c1"), ["a1"]);
        assert_eq!(t.live_of("c2"), ["b1"]);
        assert!(t.live_of("c3").is_empty());
    }
}
