//! containerd's event stream, decoded into a typed enum.
//!
//! The payload of each envelope is an `Any` whose type URL is the event's
//! protobuf full name (`containerd.events.TaskExit`, possibly with a
//! `…/` prefix). Unknown types come through as [`Event::Other`].
//!
//! The stream ends when containerd goes away; after a restart of the
//! managed containerd (see [`crate::ManagedContainerd::subscribe_restarts`])
//! subscribe again and reconcile task states, since events emitted in
//! between are lost.

use std::time::SystemTime;

use containerd_client::events as ev;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::{ImageCreate, ImageDelete, ImageUpdate, PublishRequest, SubscribeRequest};
use prost::Message;
use prost_types::Any;
use tokio_stream::StreamExt;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::util::{random_hex, to_system_time};

/// A decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A task was created.
    TaskCreate {
        /// Container id.
        container_id: String,
        /// Init pid.
        pid: u32,
    },
    /// A task's init process started.
    TaskStart {
        /// Container id.
        container_id: String,
        /// Init pid.
        pid: u32,
    },
    /// A process exited (the init process when `exec_id` is empty or equals
    /// the container id).
    TaskExit {
        /// Container id.
        container_id: String,
        /// Process id in containerd's sense (container id for init).
        exec_id: String,
        /// Host pid.
        pid: u32,
        /// Exit status (128 + signal when signalled).
        exit_status: u32,
        /// When.
        exited_at: Option<SystemTime>,
    },
    /// The container hit its memory limit.
    TaskOom {
        /// Container id.
        container_id: String,
    },
    /// A task or process was deleted.
    TaskDelete {
        /// Container id.
        container_id: String,
        /// Process id in containerd's sense.
        exec_id: String,
        /// Host pid.
        pid: u32,
        /// Exit status.
        exit_status: u32,
        /// When it exited.
        exited_at: Option<SystemTime>,
    },
    /// An exec process was added.
    TaskExecAdded {
        /// Container id.
        container_id: String,
        /// Exec id.
        exec_id: String,
    },
    /// An exec process started.
    TaskExecStarted {
        /// Container id.
        container_id: String,
        /// Exec id.
        exec_id: String,
        /// Host pid.
        pid: u32,
    },
    /// The container was frozen.
    TaskPaused {
        /// Container id.
        container_id: String,
    },
    /// The container was thawed.
    TaskResumed {
        /// Container id.
        container_id: String,
    },
    /// A container record was created.
    ContainerCreate {
        /// Container id.
        id: String,
    },
    /// A container record was updated.
    ContainerUpdate {
        /// Container id.
        id: String,
    },
    /// A container record was deleted.
    ContainerDelete {
        /// Container id.
        id: String,
    },
    /// An image record was created.
    ImageCreate {
        /// Image name.
        name: String,
    },
    /// An image record was updated.
    ImageUpdate {
        /// Image name.
        name: String,
    },
    /// An image record was deleted.
    ImageDelete {
        /// Image name.
        name: String,
    },
    /// Any other event (snapshots, content, namespaces …).
    Other {
        /// The payload's type URL.
        type_url: String,
    },
}

/// One event with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Namespace it happened in.
    pub namespace: String,
    /// Topic, e.g. `/tasks/exit`.
    pub topic: String,
    /// When containerd published it.
    pub timestamp: Option<SystemTime>,
    /// The decoded payload.
    pub event: Event,
}

fn decode<M: Message + Default>(any: &Any) -> Result<M> {
    M::decode(any.value.as_slice()).map_err(|e| Error::InvalidData(format!("decoding event {}: {e}", any.type_url)))
}

/// Decodes an event payload.
pub fn decode_event(any: &Any) -> Result<Event> {
    let name = any.type_url.rsplit('/').next().unwrap_or(&any.type_url);
    Ok(match name {
        "containerd.events.TaskCreate" => {
            let e: ev::TaskCreate = decode(any)?;
            Event::TaskCreate { container_id: e.container_id, pid: e.pid }
        }
        "containerd.events.TaskStart" => {
            let e: ev::TaskStart = decode(any)?;
            Event::TaskStart { container_id: e.container_id, pid: e.pid }
        }
        "containerd.events.TaskExit" => {
            let e: ev::TaskExit = decode(any)?;
            Event::TaskExit {
                container_id: e.container_id,
                exec_id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
                exited_at: to_system_time(e.exited_at.as_ref()),
            }
        }
        "containerd.events.TaskOOM" => {
            let e: ev::TaskOom = decode(any)?;
            Event::TaskOom { container_id: e.container_id }
        }
        "containerd.events.TaskDelete" => {
            let e: ev::TaskDelete = decode(any)?;
            Event::TaskDelete {
                container_id: e.container_id,
                exec_id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
                exited_at: to_system_time(e.exited_at.as_ref()),
            }
        }
        "containerd.events.TaskExecAdded" => {
            let e: ev::TaskExecAdded = decode(any)?;
            Event::TaskExecAdded { container_id: e.container_id, exec_id: e.exec_id }
        }
        "containerd.events.TaskExecStarted" => {
            let e: ev::TaskExecStarted = decode(any)?;
            Event::TaskExecStarted { container_id: e.container_id, exec_id: e.exec_id, pid: e.pid }
        }
        "containerd.events.TaskPaused" => {
            let e: ev::TaskPaused = decode(any)?;
            Event::TaskPaused { container_id: e.container_id }
        }
        "containerd.events.TaskResumed" => {
            let e: ev::TaskResumed = decode(any)?;
            Event::TaskResumed { container_id: e.container_id }
        }
        "containerd.events.ContainerCreate" => {
            let e: ev::ContainerCreate = decode(any)?;
            Event::ContainerCreate { id: e.id }
        }
        "containerd.events.ContainerUpdate" => {
            let e: ev::ContainerUpdate = decode(any)?;
            Event::ContainerUpdate { id: e.id }
        }
        "containerd.events.ContainerDelete" => {
            let e: ev::ContainerDelete = decode(any)?;
            Event::ContainerDelete { id: e.id }
        }
        "containerd.services.images.v1.ImageCreate" => Event::ImageCreate { name: decode::<ImageCreate>(any)?.name },
        "containerd.services.images.v1.ImageUpdate" => Event::ImageUpdate { name: decode::<ImageUpdate>(any)?.name },
        "containerd.services.images.v1.ImageDelete" => Event::ImageDelete { name: decode::<ImageDelete>(any)?.name },
        _ => Event::Other { type_url: any.type_url.clone() },
    })
}

/// A live subscription. Dropping it ends the subscription.
#[derive(Debug)]
pub struct EventStream {
    rx: tokio::sync::mpsc::Receiver<Result<Envelope>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventStream {
    /// The next event; `None` when the stream ended (containerd went away).
    /// Undecodable payloads come back as errors; the stream continues.
    pub async fn next(&mut self) -> Option<Result<Envelope>> {
        self.rx.recv().await
    }
}

fn envelope_from(env: containerd_client::types::Envelope) -> Result<Envelope> {
    let event = match &env.event {
        Some(any) => decode_event(any)?,
        None => Event::Other { type_url: String::new() },
    };
    Ok(Envelope { namespace: env.namespace, topic: env.topic, timestamp: to_system_time(env.timestamp.as_ref()), event })
}

/// Subscribes to the client's namespace. Each filter (containerd syntax,
/// e.g. `topic~="/tasks/"`) is AND-ed with the namespace; filters are OR-ed
/// with each other; no filters = every event of the namespace.
///
/// Returns once containerd has registered the subscription (every event
/// published after this returns is delivered): containerd sends nothing —
/// not even response headers — until the first matching event, so this
/// publishes a private sync event and waits for it to come back.
pub async fn subscribe(client: &Client, filters: &[&str]) -> Result<EventStream> {
    let ns = format!("namespace=={}", client.namespace());
    let sync_topic = format!("/berth/subscribed/{}", random_hex(8));
    let mut all: Vec<String> =
        if filters.is_empty() { vec![ns.clone()] } else { filters.iter().map(|f| format!("{ns},{f}")).collect() };
    all.push(format!("{ns},topic==\"{sync_topic}\""));

    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let (synced_tx, mut synced_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let task_client = client.clone();
    let topic = sync_topic.clone();
    let task = tokio::spawn(async move {
        let mut synced_tx = Some(synced_tx);
        let stream = EventsClient::new(task_client.channel())
            .subscribe(task_client.request(SubscribeRequest { filters: all }))
            .await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(status) => {
                if let Some(s) = synced_tx.take() {
                    let _ = s.send(Err(status.into()));
                }
                return;
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(env) if env.topic == topic => {
                    if let Some(s) = synced_tx.take() {
                        let _ = s.send(Ok(()));
                    }
                }
                Ok(env) => {
                    if tx.send(envelope_from(env)).await.is_err() {
                        return;
                    }
                }
                Err(status) => {
                    if let Some(s) = synced_tx.take() {
                        let _ = s.send(Err(status.into()));
                        return;
                    }
                    let _ = tx.send(Err(status.into())).await;
                    return;
                }
            }
        }
    });
    let stream = EventStream { rx, task };

    // Publish the sync event until it comes back through our stream.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut events = EventsClient::new(client.channel());
    loop {
        let marker = Any { type_url: "berth.events.SubscriptionSync".into(), value: Vec::new() };
        events.publish(client.request(PublishRequest { topic: sync_topic.clone(), event: Some(marker) })).await?;
        match tokio::time::timeout(std::time::Duration::from_millis(200), &mut synced_rx).await {
            Ok(Ok(Ok(()))) => return Ok(stream),
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(Error::Cancelled("event subscription ended before it started".into())),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::Unavailable("event subscription was not confirmed within 10s".into()))
            }
            Err(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_task_exit_with_or_without_prefix() {
        let exit = ev::TaskExit { container_id: "c".into(), id: "c".into(), pid: 7, exit_status: 3, exited_at: None };
        for url in ["containerd.events.TaskExit", "types.containerd.io/containerd.events.TaskExit"] {
            let any = Any { type_url: url.into(), value: exit.encode_to_vec() };
            assert_eq!(
                decode_event(&any).unwrap(),
                Event::TaskExit { container_id: "c".into(), exec_id: "c".into(), pid: 7, exit_status: 3, exited_at: None }
            );
        }
        let other = Any { type_url: "containerd.events.SnapshotPrepare".into(), value: vec![] };
        assert!(matches!(decode_event(&other).unwrap(), Event::Other { .. }));
    }
}
