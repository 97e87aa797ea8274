//! `change`: `docker import --change` lines.

use std::collections::BTreeSet;

use berth_containerd::ImageConfig;
use berth_engine::images::change::apply_changes;

use crate::lines;

/// One change per line, applied to an empty config and to one that has
/// settings already.
pub fn change(data: &[u8]) {
    let changes = lines(data);
    let mut cfg = ImageConfig::default();
    match apply_changes(&mut cfg, &changes) {
        Ok(()) => {
            let env = cfg.env.unwrap_or_default();
            let keys: BTreeSet<&str> = env.iter().map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k)).collect();
            assert_eq!(keys.len(), env.len(), "a variable set twice: {env:?}");
            assert!(env.iter().all(|e| e.contains('=')), "{env:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let mut cfg = ImageConfig {
        env: Some(vec!["PATH=/usr/bin:/bin".into(), "A=1".into(), "NOVALUE".into()]),
        working_dir: Some("/srv/".into()),
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let _ = apply_changes(&mut cfg, &changes);
}
