//! The event loop: containerd's task events drive container exits (no
//! polling). If the stream breaks (containerd restarted), it resubscribes
//! with back-off and reconciles running containers with containerd's view.

use std::sync::Arc;
use std::time::Duration;

use berth_containerd::{Event, TaskStatus};

use crate::containers::ContainerService;
use crate::exec::ExecService;

/// Runs until the process ends.
pub async fn run(containers: Arc<ContainerService>, execs: Arc<ExecService>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match berth_containerd::events::subscribe(&containers.ctd.client, &["topic~=\"/tasks/\""]).await {
            Ok(mut stream) => {
                backoff = Duration::from_millis(100);
                reconcile(&containers).await;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(env) => dispatch(&containers, &execs, env.event),
                        Err(e) => {
                            tracing::warn!(error = %e, "containerd event stream failed; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "cannot subscribe to containerd events"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn dispatch(containers: &Arc<ContainerService>, execs: &Arc<ExecService>, event: Event) {
    if let Event::TaskExit { container_id, exec_id, pid, exit_status, .. } = event {
        if exec_id.is_empty() || exec_id == container_id {
            containers.on_exit(&container_id, pid, exit_status);
        } else {
            execs.on_exit(&exec_id, exit_status);
        }
    }
}

/// Records exits that happened while no event stream was listening.
async fn reconcile(containers: &Arc<ContainerService>) {
    for rec in containers.list().into_iter().filter(|r| r.state.running) {
        match containers.ctd.tasks.get(&rec.id, "").await {
            Ok(st) if st.status == TaskStatus::Stopped => containers.on_exit(&rec.id, st.pid, st.exit_status),
            Ok(_) => {}
            Err(e) if e.is_not_found() => containers.on_exit(&rec.id, rec.state.pid, 255),
            Err(e) => tracing::warn!(container = %rec.id, error = %e, "cannot check the task"),
        }
    }
}
