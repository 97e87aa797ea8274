//! The event bus: container, image and daemon events, as `docker events`
//! shows them. Live subscribers get a broadcast; a bounded history serves
//! `--since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many past events `since` can reach.
pub const HISTORY: usize = 1024;

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
    pub fn new(kind: &str, action: &str, actor: &str, attributes: BTreeMap<String, String>) -> Event {
        let time_nano = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        Event { kind: kind.into(), action: action.into(), actor: actor.into(), attributes, time_nano }
    }
}

/// Publishes events to subscribers and keeps a short history.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus { tx: broadcast::channel(HISTORY).0, history: Mutex::new(VecDeque::with_capacity(HISTORY)) }
    }

    /// Publishes an event (and logs it).
    pub fn publish(&self, event: Event) {
        tracing::debug!(kind = %event.kind, action = %event.action, actor = %event.actor, "event");
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }

    /// Past events since `since_nano` (inclusive) and a receiver for the
    /// ones after them, taken atomically so none is missed or doubled.
    pub fn subscribe(&self, since_nano: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let past = match since_nano {
            Some(s) => h.iter().filter(|e| e.time_nano >= s).cloned().collect(),
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
}
