//! A container's log driver: resolved against the daemon defaults at
//! create (dockerd's merge, in [`berth_config::logconfig`]), decoded again
//! at every start into the writer's rotation.

use berth_config::logconfig::{self, LogDriver, LogSettings};
use berth_config::Snapshot;
use berth_store::logfile::Rotation;
use berth_store::{ContainerRecord, LogConfig};

use crate::error::{EngineError, Result};

/// dockerd's answer to `docker logs` for a driver it cannot read (501).
pub const NOT_READABLE: &str = "configured logging driver does not support reading";

/// The log configuration a new container gets: its own (`requested`,
/// driver "" = the daemon's) merged with the snapshot's `log-driver` and
/// `log-opts`, validated. A reload changes what later creates get; an
/// existing container keeps what it was created with.
pub fn resolve(requested: &LogConfig, snap: &Snapshot) -> Result<LogConfig> {
    let (merged, _) = logconfig::resolve(&requested.driver, &requested.opts, &snap.config.log_defaults())
        .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
    Ok(LogConfig { driver: merged.driver, opts: merged.opts })
}

/// The decoded settings of a container's log. Records from before log
/// drivers (empty driver) are json-file without limits; a record that no
/// longer validates (edited by hand) falls back to that too, with a warning.
pub fn settings(rec: &ContainerRecord) -> LogSettings {
    let driver = if rec.log_config.driver.is_empty() { logconfig::JSON_FILE } else { rec.log_config.driver.as_str() };
    logconfig::validate(driver, &rec.log_config.opts).unwrap_or_else(|e| {
        tracing::warn!(container = %rec.id, error = %e, "the container's log configuration is invalid; logging to json-file without limits");
        LogSettings::default()
    })
}

/// The writer's rotation, or `None` when no log is kept (`none`). `local`
/// is stored in the json-file format: the on-disk format is private to the
/// daemon, and one format means one reader.
pub fn rotation(s: &LogSettings) -> Option<Rotation> {
    match s.driver {
        LogDriver::None => None,
        LogDriver::JsonFile | LogDriver::Local => Some(Rotation { max_size: s.max_size, max_files: s.max_file, compress: s.compress }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_log_as_before_and_drivers_map_to_rotation() {
        let mut rec = ContainerRecord::new("a", "b");
        assert_eq!(rotation(&settings(&rec)), Some(Rotation::default()));
        rec.log_config = LogConfig { driver: "local".into(), opts: Default::default() };
        assert_eq!(rotation(&settings(&rec)), Some(Rotation { max_size: Some(20 << 20), max_files: 5, compress: true }));
        rec.log_config.driver = "none".into();
        assert_eq!(rotation(&settings(&rec)), None);
        rec.log_config = LogConfig { driver: "json-file".into(), opts: [("max-size".to_owned(), "bad".to_owned())].into() };
        assert_eq!(rotation(&settings(&rec)), Some(Rotation::default()));
    }
}
