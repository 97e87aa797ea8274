//! The wrapper a start is about to hand to containerd: checked against
//! its digest and restored when changed, with an event and a log line.

use std::collections::BTreeMap;

use berth_config::wrapper::{DirCheck, Materialized};
use berth_config::Resolved;

use super::ContainerService;
use crate::error::{EngineError, Result};
use crate::events::Event;

impl ContainerService {
    /// Makes sure the wrapper of `resolved` (if any) is exactly what the
    /// snapshot says before container `id` starts with it: a file changed or
    /// removed on disk is restored (`daemon` event `wrapper-restored`), a
    /// wrapper directory with a loose mode is fixed (`wrapper-dir-fixed`),
    /// one that is not berth's own refuses the start.
    pub(super) async fn ensure_wrapper(&self, id: &str, resolved: &Resolved) -> Result<()> {
        let check = self.runtimes.ensure_wrapper(resolved).await.map_err(|e| {
            tracing::error!(container = %id, runtime = %resolved.name, error = %e, "cannot use the runtime's wrapper; not starting");
            EngineError::Internal(format!("runtime {}: {e}", resolved.name))
        })?;
        let (Some(check), Some(w)) = (check, resolved.wrapper.as_ref()) else { return Ok(()) };
        let attrs = |what: &str, path: String| {
            BTreeMap::from([
                ("path".to_string(), path),
                ("runtime".to_string(), resolved.name.clone()),
                ("container".to_string(), id.to_string()),
                ("found".to_string(), what.to_string()),
            ])
        };
        if let DirCheck::ModeFixed { was } = check.dir {
            let dir = w.path.parent().map(|d| d.display().to_string()).unwrap_or_default();
            tracing::warn!(container = %id, runtime = %resolved.name, dir = %dir, mode = format!("{was:04o}"), "the wrapper directory was not mode 0700; fixed it before the start");
            self.events.publish(Event::new("daemon", "wrapper-dir-fixed", "berth", attrs(&format!("mode {was:04o}"), dir)));
        }
        let found = match check.file {
            Materialized::Verified => return Ok(()),
            Materialized::Written => "missing",
            Materialized::Repaired => "modified",
        };
        tracing::warn!(container = %id, runtime = %resolved.name, wrapper = %w.path.display(), found,
            "the runtime's wrapper did not match its digest; restored it from the configuration before the start");
        self.events.publish(Event::new("daemon", "wrapper-restored", "berth", attrs(found, w.path.display().to_string())));
        Ok(())
    }
}
