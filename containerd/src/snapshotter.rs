//! Choosing a snapshotter: overlayfs when its plugin initialised, else native.

use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::PluginsRequest;

use crate::client::Client;
use crate::error::Result;

/// The overlay snapshotter (preferred).
pub const OVERLAYFS: &str = "overlayfs";
/// The copy-based snapshotter (always works, slower, more disk).
pub const NATIVE: &str = "native";

/// Status of one snapshotter plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotterStatus {
    /// Plugin id, e.g. `overlayfs`.
    pub id: String,
    /// The plugin's init error, if it failed to initialise.
    pub init_error: Option<String>,
}

/// Lists the snapshotter plugins containerd loaded, with their init errors.
pub async fn snapshotters(client: &Client) -> Result<Vec<SnapshotterStatus>> {
    let resp = IntrospectionClient::new(client.channel())
        .plugins(client.request(PluginsRequest { filters: vec!["type==io.containerd.snapshotter.v1".into()] }))
        .await?
        .into_inner();
    Ok(resp
        .plugins
        .into_iter()
        .map(|p| SnapshotterStatus { id: p.id, init_error: p.init_err.map(|s| s.message) })
        .collect())
}

/// overlayfs if it initialised, otherwise native (logged at warn).
pub async fn select_snapshotter(client: &Client) -> Result<String> {
    let all = snapshotters(client).await?;
    let usable = |id: &str| all.iter().any(|s| s.id == id && s.init_error.is_none());
    if usable(OVERLAYFS) {
        return Ok(OVERLAYFS.into());
    }
    let reason = all
        .iter()
        .find(|s| s.id == OVERLAYFS)
        .and_then(|s| s.init_error.clone())
        .unwrap_or_else(|| "plugin not loaded".into());
    tracing::warn!(%reason, "overlayfs snapshotter unusable; falling back to native");
    Ok(NATIVE.into())
}
