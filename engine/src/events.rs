//! The event bus: container, image and daemon events, as `docker events`
//! shows them. Live subscribers get a broadcast; a bounded history serves
//! `--since`.
//!
//! Memory is bounded: the history keeps at most [`HISTORY`] events and
//! [`HISTORY_BYTES`] of them; history, broadcast and subscribers share one
//! copy of each event; a container event carries at most [`LABEL_BYTES`] of
//! the container's labels ([`add_labels`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many past events `since` can reach (dockerd keeps 256).
pub const HISTORY: usize = 1024;
/// How many bytes of past events the history keeps (the oldest go first).
pub const HISTORY_BYTES: usize = 4 << 20;
/// How many bytes of labels (keys and values) one event carries. dockerd
/// copies every label into every container event; labels past this budget
/// (in key order) are left out, so `--filter label=` cannot match them.
pub const LABEL_BYTES: usize = 16 << 10;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `container`, `image` or `daemon`.
    pub kind: String,
    /// `create`, `start`, `die`, `destroy`, `reload`, …
    pub action: String,
    /// Container id, image name, or daemon id.
    pub actor: String,
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i128,
}

impl Event {
    /// Roughly the bytes the event holds, for the history's budget.
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 48;
        let strings = self.kind.len() + self.action.len() + self.actor.len();
        let attrs: usize = self.attributes.iter().map(|(k, v)| k.len() + v.len() + OVERHEAD).sum();
        std::mem::size_of::<Event>() + strings + attrs
    }

    pub fn new(kind: &str, action: &str, actor: &str, attributes: BTreeMap<String, String>) -> Event {
        let time_nano = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        Event { kind: kind.into(), action: action.into(), actor: actor.into(), attributes, time_nano }
    }
}

/// Adds `labels` to an event's attributes (an attribute already there wins)
/// until [`LABEL_BYTES`] are used; a label that does not fit is left out.
pub fn add_labels(attrs: &mut BTreeMap<String, String>, labels: &BTreeMap<String, String>) {
    let mut budget = LABEL_BYTES;
    for (k, v) in labels {
        let cost = k.len() + v.len();
        if cost > budget || attrs.contains_key(k) {
            continue;
        }
        budget -= cost;
        attrs.insert(k.clone(), v.clone());
    }
}

/// Publishes events to subscribers and keeps a short history.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<History>,
}

#[derive(Default)]
struct History {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus { tx: broadcast::channel(HISTORY).0, history: Mutex::new(History::default()) }
    }

    /// Publishes an event (and logs it).
    pub fn publish(&self, event: Event) {
        tracing::debug!(kind = %event.kind, action = %event.action, actor = %event.actor, "event");
        let event = Arc::new(event);
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.bytes += event.size();
            h.events.push_back(event.clone());
            // The newest event always stays.
            while h.events.len() > 1 && (h.events.len() > HISTORY || h.bytes > HISTORY_BYTES) {
                if let Some(old) = h.events.pop_front() {
                    h.bytes -= old.size();
                }
            }
        }
        let _ = self.tx.send(event);
    }

    /// Past events since `since_nano` (inclusive) and a receiver for the
    /// ones after them, taken atomically so none is missed or doubled.
    pub fn subscribe(&self, since_nano: Option<i128>) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let past = match since_nano {
            Some(s) => h.events.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_and_live() {
        let bus = EventBus::new();
        bus.publish(Event::new("container", "create", "a", BTreeMap::new()));
        let (past, mut rx) = bus.subscribe(Some(0));
        assert_eq!(past.len(), 1);
        bus.publish(Event::new("container", "start", "a", BTreeMap::new()));
        assert_eq!(rx.recv().await.unwrap().action, "start");
        let (past, _) = bus.subscribe(None);
        assert!(past.is_empty());
    }

    #[test]
    fn history_is_bounded_in_count_and_bytes() {
        let bus = EventBus::new();
        for i in 0..2 * HISTORY {
            bus.publish(Event::new("container", "start", &format!("c{i}"), BTreeMap::new()));
        }
        let (past, _) = bus.subscribe(Some(0));
        assert_eq!(past.len(), HISTORY);
        assert_eq!(past.last().unwrap().actor, format!("c{}", 2 * HISTORY - 1), "the newest are kept");

        // Big events: the byte budget holds, the newest stays.
        let big: BTreeMap<String, String> = (0..16).map(|i| (format!("k{i}"), "v".repeat(4096))).collect();
        for i in 0..2000 {
            bus.publish(Event::new("container", "exec_create", &format!("b{i}"), big.clone()));
        }
        let (past, _) = bus.subscribe(Some(0));
        let bytes: usize = past.iter().map(|e| e.size()).sum();
        assert!(bytes <= HISTORY_BYTES, "{bytes} bytes kept");
        assert!(past.len() < 2000 && past.len() > 10, "{} events kept", past.len());
        assert_eq!(past.last().unwrap().actor, "b1999");
    }

    #[test]
    fn labels_in_an_event_are_bounded() {
        let mut labels: BTreeMap<String, String> = (0..100).map(|i| (format!("big{i:03}"), "x".repeat(1024))).collect();
        labels.insert("com.example.small".into(), "yes".into());
        labels.insert("name".into(), "not-the-name".into());
        let mut attrs = BTreeMap::from([("name".to_string(), "web".to_string())]);
        add_labels(&mut attrs, &labels);
        let label_bytes: usize = attrs.iter().filter(|(k, _)| *k != "name").map(|(k, v)| k.len() + v.len()).sum();
        assert!(label_bytes <= LABEL_BYTES, "{label_bytes}");
        assert_eq!(attrs["name"], "web", "the event's own attributes win");
        assert_eq!(attrs.get("com.example.small").map(String::as_str), Some("yes"), "small labels still fit");
        assert!(attrs.contains_key("big000"));
    }
}
