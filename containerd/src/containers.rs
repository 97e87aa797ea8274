//! Container records in containerd: create (with a snapshot rootfs prepared
//! from an image's chainID), get, list, delete.
//!
//! GC-safe ordering (see the prototype's findings):
//! * the snapshot is prepared and the container created inside one short
//!   lease, so GC cannot remove the unreferenced active snapshot in between;
//! * on delete the snapshot is removed **before** the container record, and
//!   NotFound counts as success.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::container::Runtime as PbRuntime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{AddResourceRequest, Resource as LeaseResource};
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{MountsRequest, PrepareSnapshotRequest, PrepareSnapshotResponse, RemoveSnapshotRequest};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, GetContainerRequest, ListContainersRequest,
    UpdateContainerRequest,
};
use containerd_client::types::Mount;
use prost_types::Any;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::runtime::ShimRuntime;
use crate::util::to_system_time;

/// Type URL of an OCI runtime spec packed as JSON in an `Any`.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Packs an OCI runtime spec (JSON) into an `Any`.
pub fn spec_any(spec: &oci_spec::runtime::Spec) -> Result<Any> {
    Ok(Any { type_url: SPEC_TYPE_URL.into(), value: serde_json::to_vec(spec).map_err(|e| Error::json("encoding OCI spec", e))? })
}

/// Where a container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    /// A new active snapshot (key = container id) on top of `parent`
    /// (an image's top chainID; empty = an empty rootfs).
    Snapshot {
        /// Snapshotter name.
        snapshotter: String,
        /// Parent snapshot (chainID).
        parent: String,
    },
    /// No snapshot: the spec's `root.path` is absolute (Docker's own way) or
    /// the caller passes its own mounts to the task.
    None,
}

/// A container to create.
#[derive(Debug, Clone)]
pub struct NewContainer {
    /// Container id (also the snapshot key).
    pub id: String,
    /// Image name (informational).
    pub image: String,
    /// The OCI runtime spec.
    pub spec: oci_spec::runtime::Spec,
    /// Shim and its options.
    pub runtime: ShimRuntime,
    /// Labels of the record.
    pub labels: HashMap<String, String>,
    /// Rootfs source.
    pub rootfs: Rootfs,
}

/// A container record as containerd stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    /// Id.
    pub id: String,
    /// Image name.
    pub image: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Shim and options.
    pub runtime: ShimRuntime,
    /// Snapshotter ("" without snapshot).
    pub snapshotter: String,
    /// Snapshot key ("" without snapshot).
    pub snapshot_key: String,
    /// The spec, when it decodes.
    pub spec: Option<oci_spec::runtime::Spec>,
    /// Created at.
    pub created_at: Option<SystemTime>,
}

fn info_from(c: Container) -> ContainerInfo {
    let runtime = c
        .runtime
        .map(|r| ShimRuntime { name: r.name, options: r.options })
        .unwrap_or_else(|| ShimRuntime::bare(""));
    ContainerInfo {
        spec: c.spec.as_ref().and_then(|a| serde_json::from_slice(&a.value).ok()),
        id: c.id,
        image: c.image,
        labels: c.labels,
        runtime,
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: to_system_time(c.created_at.as_ref()),
    }
}

/// The lease that holds the snapshot of a container prepared before its
/// first start.
pub fn prestart_lease(id: &str) -> String {
    format!("berth-prestart-{id}")
}

/// Container operations of one namespace.
#[derive(Debug, Clone)]
pub struct Containers {
    client: Client,
}

impl Containers {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Containers { client }
    }

    /// Creates the container (and its snapshot); returns the rootfs mounts
    /// to pass to the task (empty for [`Rootfs::None`]). On failure nothing
    /// is left behind.
    pub async fn create(&self, new: NewContainer) -> Result<Vec<Mount>> {
        self.create_with(new, |_, spec| async { Ok::<_, Error>(spec) }).await
    }

    /// [`Containers::create`], letting `finish` complete the spec once the
    /// snapshot is prepared and its mounts known (to read files of the
    /// container's filesystem, such as `/etc/passwd`), before the container
    /// record is written. An error from `finish` removes the snapshot.
    pub async fn create_with<E, F, Fut>(
        &self,
        mut new: NewContainer,
        finish: F,
    ) -> std::result::Result<Vec<Mount>, E>
    where
        E: From<Error>,
        F: FnOnce(Vec<Mount>, oci_spec::runtime::Spec) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<oci_spec::runtime::Spec, E>>,
    {
        let lease = self.client.create_lease("berth-create", Duration::from_secs(600)).await?;
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let (snapshotter, key, mounts) = match &new.rootfs {
            Rootfs::Snapshot { snapshotter, parent } => {
                let mut mounts = snapshots
                    .prepare(self.client.leased_request(
                        PrepareSnapshotRequest {
                            snapshotter: snapshotter.clone(),
                            key: new.id.clone(),
                            parent: parent.clone(),
                            labels: HashMap::new(),
                        },
                        &lease,
                    ))
                    .await
                    .map_err(Error::from);
                if matches!(&mounts, Err(e) if e.is_already_exists()) {
                    // Prepared before the first start (`docker cp` into a
                    // created container): that filesystem is the one.
                    mounts = snapshots
                        .mounts(self.client.request(MountsRequest { snapshotter: snapshotter.clone(), key: new.id.clone() }))
                        .await
                        .map(|r| tonic::Response::new(PrepareSnapshotResponse { mounts: r.into_inner().mounts }))
                        .map_err(Error::from);
                }
                match mounts {
                    Ok(resp) => (snapshotter.clone(), new.id.clone(), resp.into_inner().mounts),
                    Err(e) => {
                        let _ = lease.delete().await;
                        return Err(e.into());
                    }
                }
            }
            Rootfs::None => (String::new(), String::new(), Vec::new()),
        };
        let remove_snapshot = |lease: crate::client::Lease| async {
            if !key.is_empty() {
                let _ = SnapshotsClient::new(self.client.channel())
                    .remove(self.client.request(RemoveSnapshotRequest { snapshotter: snapshotter.clone(), key: key.clone() }))
                    .await;
            }
            let _ = lease.delete().await;
        };
        match finish(mounts.clone(), std::mem::take(&mut new.spec)).await {
            Ok(spec) => new.spec = spec,
            Err(e) => {
                remove_snapshot(lease).await;
                return Err(e);
            }
        }
        let created = async {
            let container = Container {
                id: new.id.clone(),
                labels: new.labels.clone(),
                image: new.image.clone(),
                runtime: Some(PbRuntime { name: new.runtime.name.clone(), options: new.runtime.options.clone() }),
                spec: Some(spec_any(&new.spec)?),
                snapshotter: snapshotter.clone(),
                snapshot_key: key.clone(),
                ..Default::default()
            };
            ContainersClient::new(self.client.channel())
                .create(self.client.leased_request(CreateContainerRequest { container: Some(container) }, &lease))
                .await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = created {
            remove_snapshot(lease).await;
            return Err(e.into());
        }
        if let Err(e) = lease.delete().await {
            tracing::warn!(error = %e, "deleting create lease failed; it will expire");
        }
        if !key.is_empty() {
            // The record holds the snapshot now.
            if let Err(e) = self.client.delete_lease(&prestart_lease(&new.id)).await {
                tracing::warn!(error = %e, "deleting the lease of a snapshot prepared before the first start failed");
            }
        }
        tracing::debug!(id = %new.id, runtime = %new.runtime.name, %snapshotter, "container created");
        Ok(mounts)
    }

    /// Gives an existing container a new spec and runtime, keeping its
    /// snapshot (a new run of a stopped container whose runtime may have
    /// been redefined by a reload). containerd 1.6 cannot update a
    /// container's runtime, so when it changes the record is re-created
    /// around the same snapshot, which a lease protects from GC meanwhile.
    pub async fn update(&self, id: &str, spec: &oci_spec::runtime::Spec, runtime: &ShimRuntime) -> Result<()> {
        let info = self.get(id).await?;
        let mut svc = ContainersClient::new(self.client.channel());
        if info.runtime == *runtime {
            let container = Container { id: id.into(), spec: Some(spec_any(spec)?), ..Default::default() };
            svc.update(self.client.request(UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(prost_types::FieldMask { paths: vec!["spec".into()] }),
            }))
            .await?;
            return Ok(());
        }
        let lease = self.client.create_lease("berth-recreate", Duration::from_secs(600)).await?;
        let res = async {
            if !info.snapshot_key.is_empty() {
                LeasesClient::new(self.client.channel())
                    .add_resource(self.client.request(AddResourceRequest {
                        id: lease.id().to_string(),
                        resource: Some(LeaseResource { id: info.snapshot_key.clone(), r#type: format!("snapshots/{}", info.snapshotter) }),
                    }))
                    .await?;
            }
            svc.delete(self.client.request(DeleteContainerRequest { id: id.into() })).await?;
            let container = Container {
                id: id.into(),
                labels: info.labels.clone(),
                image: info.image.clone(),
                runtime: Some(PbRuntime { name: runtime.name.clone(), options: runtime.options.clone() }),
                spec: Some(spec_any(spec)?),
                snapshotter: info.snapshotter.clone(),
                snapshot_key: info.snapshot_key.clone(),
                ..Default::default()
            };
            svc.create(self.client.leased_request(CreateContainerRequest { container: Some(container) }, &lease)).await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = lease.delete().await {
            tracing::warn!(error = %e, "deleting the recreate lease failed; it will expire");
        }
        res
    }

    /// Prepares the snapshot of a container that has not run yet (key =
    /// its id, on `parent`), held by a lease of its own until its first
    /// start's [`Containers::create`] takes it over (or
    /// [`Containers::remove_prestart`] removes both); returns its mounts.
    /// An existing one is reused.
    pub async fn prepare_prestart(&self, id: &str, snapshotter: &str, parent: &str) -> Result<Vec<Mount>> {
        use containerd_client::services::v1::CreateRequest as LeaseCreateRequest;
        match LeasesClient::new(self.client.channel())
            .create(self.client.request(LeaseCreateRequest { id: prestart_lease(id), labels: HashMap::new() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::AlreadyExists => {}
            Err(s) => return Err(s.into()),
        }
        let lease_header = crate::client::Lease::borrowed(prestart_lease(id));
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let prepared = snapshots
            .prepare(self.client.leased_request(
                PrepareSnapshotRequest { snapshotter: snapshotter.into(), key: id.into(), parent: parent.into(), labels: HashMap::new() },
                &lease_header,
            ))
            .await;
        match prepared {
            Ok(r) => Ok(r.into_inner().mounts),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(snapshots
                .mounts(self.client.request(MountsRequest { snapshotter: snapshotter.into(), key: id.into() }))
                .await?
                .into_inner()
                .mounts),
            Err(s) => Err(s.into()),
        }
    }

    /// The mounts of a snapshot prepared before the first start, if any.
    pub async fn prestart_mounts(&self, id: &str, snapshotter: &str) -> Result<Option<Vec<Mount>>> {
        match SnapshotsClient::new(self.client.channel())
            .mounts(self.client.request(MountsRequest { snapshotter: snapshotter.into(), key: id.into() }))
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().mounts)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s.into()),
        }
    }

    /// Removes what [`Containers::prepare_prestart`] made for a container
    /// that is going without having run (NotFound counts as success).
    pub async fn remove_prestart(&self, id: &str, snapshotter: &str) -> Result<()> {
        match SnapshotsClient::new(self.client.channel())
            .remove(self.client.request(RemoveSnapshotRequest { snapshotter: snapshotter.into(), key: id.into() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s.into()),
        }
        self.client.delete_lease(&prestart_lease(id)).await
    }

    /// The mounts of a container's snapshot (to create its task again, e.g.
    /// after a restart).
    pub async fn rootfs_mounts(&self, id: &str) -> Result<Vec<Mount>> {
        let info = self.get(id).await?;
        if info.snapshot_key.is_empty() {
            return Ok(Vec::new());
        }
        let resp = SnapshotsClient::new(self.client.channel())
            .mounts(self.client.request(MountsRequest { snapshotter: info.snapshotter, key: info.snapshot_key }))
            .await?;
        Ok(resp.into_inner().mounts)
    }

    /// One container record.
    pub async fn get(&self, id: &str) -> Result<ContainerInfo> {
        let resp = ContainersClient::new(self.client.channel())
            .get(self.client.request(GetContainerRequest { id: id.into() }))
            .await?
            .into_inner();
        resp.container.map(info_from).ok_or_else(|| Error::NotFound(format!("container {id}")))
    }

    /// All container records (optionally filtered, containerd filter syntax,
    /// e.g. `labels."com.example"==x`).
    pub async fn list(&self, filters: Vec<String>) -> Result<Vec<ContainerInfo>> {
        let resp = ContainersClient::new(self.client.channel())
            .list(self.client.request(ListContainersRequest { filters }))
            .await?
            .into_inner();
        Ok(resp.containers.into_iter().map(info_from).collect())
    }

    /// Deletes a container: its snapshot first, then the record. A missing
    /// snapshot or record counts as success. The task must be deleted first.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let info = match self.get(id).await {
            Ok(i) => Some(i),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        if let Some(info) = &info {
            if !info.snapshot_key.is_empty() {
                match SnapshotsClient::new(self.client.channel())
                    .remove(self.client.request(RemoveSnapshotRequest {
                        snapshotter: info.snapshotter.clone(),
                        key: info.snapshot_key.clone(),
                    }))
                    .await
                {
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::NotFound => {}
                    Err(s) => return Err(s.into()),
                }
            }
        }
        match ContainersClient::new(self.client.channel())
            .delete(self.client.request(DeleteContainerRequest { id: id.into() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s.into()),
        }
        tracing::debug!(id, "container deleted");
        Ok(())
    }
}
