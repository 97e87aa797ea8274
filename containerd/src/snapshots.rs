//! Snapshots beyond images and containers: disk usage, and a layer made
//! from the difference between a container's snapshot and its image's
//! (`docker commit`), by containerd's diff service.
//!
//! The diff service mounts both sides itself (in containerd's process),
//! walks them and writes the tar straight into the content store, under
//! the caller's lease: berth mounts nothing and holds no file of the
//! container open. The image side is a read-only view of the image's top
//! snapshot, also under the lease, so a crash leaves nothing that the
//! lease's expiry (or [`delete_leases`] at the next start) does not collect.

use std::collections::HashMap;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest, ViewSnapshotRequest};
use containerd_client::services::v1::{DiffRequest, ListRequest as LeaseListRequest};
use containerd_client::types::Mount;

use crate::client::{Client, Lease};
use crate::error::{Error, Result};
use crate::oci::{Descriptor, MEDIA_TYPE_LAYER_TAR};
use crate::util::random_hex;

/// Disk usage of one snapshot, as the snapshotter counts it (for an
/// active overlay snapshot: its upper directory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotUsage {
    /// Bytes.
    pub size: i64,
    /// Inodes.
    pub inodes: i64,
}

/// The usage of snapshot `key`.
pub async fn usage(client: &Client, snapshotter: &str, key: &str) -> Result<SnapshotUsage> {
    let resp = SnapshotsClient::new(client.channel())
        .usage(client.request(UsageRequest { snapshotter: snapshotter.into(), key: key.into() }))
        .await?
        .into_inner();
    Ok(SnapshotUsage { size: resp.size, inodes: resp.inodes })
}

/// The parent of snapshot `key` ("" for a base snapshot).
pub async fn parent(client: &Client, snapshotter: &str, key: &str) -> Result<String> {
    let resp = SnapshotsClient::new(client.channel())
        .stat(client.request(StatSnapshotRequest { snapshotter: snapshotter.into(), key: key.into() }))
        .await?
        .into_inner();
    Ok(resp.info.map(|i| i.parent).unwrap_or_default())
}

/// The usage of `key` alone and of `key` with all its ancestors: a
/// container's `SizeRw` and `SizeRootFs`.
pub async fn usage_with_parents(client: &Client, snapshotter: &str, key: &str) -> Result<(i64, i64)> {
    let own = usage(client, snapshotter, key).await?.size;
    let mut total = own;
    let mut next = parent(client, snapshotter, key).await?;
    // A chain is as long as an image's layers; bound it all the same.
    for _ in 0..1024 {
        if next.is_empty() {
            break;
        }
        total += usage(client, snapshotter, &next).await?.size;
        next = parent(client, snapshotter, &next).await?;
    }
    Ok((own, total))
}

/// The layer that turns snapshot `parent` (an image's top chainID; `None`
/// for an image without layers) into the filesystem mounted by `upper`
/// (a container's snapshot mounts): an uncompressed tar written by
/// containerd's diff service into the content store under `lease`. Its
/// digest is its diffID.
pub async fn diff_layer(client: &Client, lease: &Lease, snapshotter: &str, parent: Option<&str>, upper: Vec<Mount>) -> Result<Descriptor> {
    let mut snapshots = SnapshotsClient::new(client.channel());
    let view_key = format!("berth-commit-view-{}", random_hex(8));
    let lower = match parent {
        Some(p) => {
            snapshots
                .view(client.leased_request(
                    ViewSnapshotRequest { snapshotter: snapshotter.into(), key: view_key.clone(), parent: p.into(), labels: HashMap::new() },
                    lease,
                ))
                .await?
                .into_inner()
                .mounts
        }
        None => Vec::new(),
    };
    let diffed = DiffClient::new(client.channel())
        .diff(client.leased_request(
            DiffRequest {
                left: lower,
                right: upper,
                media_type: MEDIA_TYPE_LAYER_TAR.into(),
                r#ref: format!("berth-commit-{}", random_hex(8)),
                labels: HashMap::new(),
                source_date_epoch: None,
            },
            lease,
        ))
        .await;
    if parent.is_some() {
        // The lease would take it too; no need to keep it until then.
        if let Err(e) = snapshots.remove(client.request(RemoveSnapshotRequest { snapshotter: snapshotter.into(), key: view_key.clone() })).await {
            tracing::debug!(key = %view_key, error = %e, "removing the commit view failed; the lease collects it");
        }
    }
    let d = diffed?.into_inner().diff.ok_or_else(|| Error::InvalidData("the diff service returned no descriptor".into()))?;
    Ok(Descriptor { media_type: d.media_type, digest: d.digest, size: d.size, platform: None })
}

/// A read-only view of committed snapshot `parent` (an image's top
/// chainID) under `lease`: its key and mounts. The lease's end removes it.
pub async fn view(client: &Client, lease: &Lease, snapshotter: &str, parent: &str) -> Result<(String, Vec<Mount>)> {
    let key = format!("berth-view-{}", random_hex(8));
    let mounts = SnapshotsClient::new(client.channel())
        .view(client.leased_request(
            ViewSnapshotRequest { snapshotter: snapshotter.into(), key: key.clone(), parent: parent.into(), labels: HashMap::new() },
            lease,
        ))
        .await?
        .into_inner()
        .mounts;
    Ok((key, mounts))
}

/// Deletes every lease whose id starts with `prefix` (what a killed
/// daemon left of its operations; call it at start). Returns how many.
pub async fn delete_leases(client: &Client, prefix: &str) -> Result<usize> {
    let leases = LeasesClient::new(client.channel()).list(client.request(LeaseListRequest { filters: vec![] })).await?.into_inner().leases;
    let mut n = 0;
    for l in leases.into_iter().filter(|l| l.id.starts_with(prefix)) {
        client.delete_lease(&l.id).await?;
        n += 1;
    }
    Ok(n)
}
