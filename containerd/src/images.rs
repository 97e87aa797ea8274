//! Images in containerd's image store: import from layer tarballs + config,
//! unpack to the snapshotter, list, inspect, tag, delete.
//!
//! Import is the common core of `docker load` (several layers, a verbatim
//! config, several tags) and `docker import` (one layer, a config built from
//! [`ImageConfig`] + changes). Everything it writes happens under one lease,
//! and carries the GC labels containerd's Go client sets, so nothing is
//! collected once the lease is gone:
//! manifest → config + layers (`gc.ref.content.*`), config → top snapshot
//! (`gc.ref.snapshot.<snapshotter>`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest};
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::{ApplyRequest, CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest, UpdateImageRequest};
use containerd_client::types::Descriptor as PbDescriptor;

use crate::client::{Client, Lease};
use crate::content::{read_blob, write_blob, BlobSource, MAX_JSON_BLOB};
use crate::error::{Error, Result};
use crate::layers::{chain_ids, inspect_layer, LayerDigests};
use crate::oci::{self, Descriptor, ImageConfig, ImageConfigFile, Index, Manifest};
use crate::util::{random_hex, sha256_digest, to_system_time};

/// Label on a layer blob naming its diffID (as containerd's Go client sets).
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// How long an import lease lives if berth dies in the middle.
const IMPORT_LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// The config of an image to import.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per import; boxing buys nothing
pub enum ConfigSource {
    /// Build the config document from these runnable defaults
    /// (`docker import`); `rootfs.diff_ids` are filled in.
    Build(ImageConfig),
    /// Store this document byte for byte (`docker load`: the image ID is the
    /// digest of these bytes). Its `rootfs.diff_ids` must match the layers.
    Raw(Vec<u8>),
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Image names (references) to create or move; may be empty (the image
    /// is then only reachable by digest, like an untagged `docker load`; it
    /// gets the name `sha256:<config hex>`'s containerd form, see
    /// [`ImportedImage::names`]).
    pub names: Vec<String>,
    /// Layer tarballs, base first; plain tar or gzip.
    pub layers: Vec<PathBuf>,
    /// The config.
    pub config: ConfigSource,
    /// Labels of the containerd image records.
    pub labels: HashMap<String, String>,
}

/// Result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The image records written.
    pub names: Vec<String>,
    /// Manifest digest (the record's target).
    pub manifest_digest: String,
    /// Config digest (Docker's image ID).
    pub config_digest: String,
    /// diffIDs, base first.
    pub diff_ids: Vec<String>,
    /// Top chainID (the snapshot a container's rootfs is prepared from);
    /// `None` for an image with no layers.
    pub chain_id: Option<String>,
    /// Sum of the stored blob sizes.
    pub size: i64,
}

/// A containerd image record (cheap: no content read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Name (reference).
    pub name: String,
    /// The manifest (or index) it points to.
    pub target: Descriptor,
    /// Record labels.
    pub labels: HashMap<String, String>,
    /// When the record was created.
    pub created_at: Option<SystemTime>,
    /// When it was last updated.
    pub updated_at: Option<SystemTime>,
}

/// A resolved image: record + manifest + parsed config.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// The record.
    pub record: ImageRecord,
    /// The manifest for this platform.
    pub manifest: Manifest,
    /// Config digest (Docker's image ID).
    pub config_digest: String,
    /// Parsed config document (runnable defaults in `config`).
    pub config_file: ImageConfigFile,
    /// Runnable defaults (Env, Cmd, Entrypoint, WorkingDir, User, …).
    pub config: ImageConfig,
    /// Top chainID, `None` without layers.
    pub chain_id: Option<String>,
    /// Config plus layer blob sizes (compressed as stored).
    pub size: i64,
}

/// Images of one namespace, unpacked into one snapshotter.
#[derive(Debug, Clone)]
pub struct ImageStore {
    client: Client,
    snapshotter: String,
}

fn pb_descriptor(d: &Descriptor) -> PbDescriptor {
    PbDescriptor { media_type: d.media_type.clone(), digest: d.digest.clone(), size: d.size, annotations: HashMap::new() }
}

fn record_from(image: Image) -> ImageRecord {
    let target = image.target.unwrap_or_default();
    ImageRecord {
        name: image.name,
        target: Descriptor { media_type: target.media_type, digest: target.digest, size: target.size, platform: None },
        labels: image.labels,
        created_at: to_system_time(image.created_at.as_ref()),
        updated_at: to_system_time(image.updated_at.as_ref()),
    }
}

impl ImageStore {
    /// A store using `snapshotter` (see [`crate::snapshotter::select_snapshotter`]).
    pub fn new(client: Client, snapshotter: impl Into<String>) -> Self {
        ImageStore { client, snapshotter: snapshotter.into() }
    }

    /// A store using overlayfs when usable, native otherwise.
    pub async fn with_default_snapshotter(client: Client) -> Result<Self> {
        let snapshotter = crate::snapshotter::select_snapshotter(&client).await?;
        Ok(ImageStore { client, snapshotter })
    }

    /// The snapshotter images are unpacked into.
    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Imports an image: blobs, records for every name, unpacked snapshots.
    pub async fn import(&self, req: ImportRequest) -> Result<ImportedImage> {
        let paths = req.layers.clone();
        let layers: Vec<LayerDigests> = tokio::task::spawn_blocking(move || paths.iter().map(|p| inspect_layer(p)).collect::<Result<Vec<_>>>())
            .await
            .map_err(|e| Error::Cancelled(format!("layer digest task: {e}")))??;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config_bytes = match &req.config {
            ConfigSource::Build(cfg) => serde_json::to_vec(&ImageConfigFile::build(cfg, diff_ids.clone()))
                .map_err(|e| Error::json("encoding image config", e))?,
            ConfigSource::Raw(raw) => {
                let parsed = ImageConfigFile::parse(raw).map_err(|e| Error::json("parsing image config", e))?;
                if parsed.rootfs.diff_ids != diff_ids {
                    return Err(Error::InvalidData(format!(
                        "image config lists diff_ids {:?} but the layers have {:?}",
                        parsed.rootfs.diff_ids, diff_ids
                    )));
                }
                raw.clone()
            }
        };
        let layer_descs: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor { media_type: l.media_type.clone(), digest: l.digest.clone(), size: l.size, platform: None })
            .collect();
        let lease = self.client.create_lease("berth-import", IMPORT_LEASE_EXPIRY).await?;
        let result = async {
            for l in &layers {
                let mut labels = HashMap::new();
                if l.digest != l.diff_id {
                    labels.insert(LABEL_UNCOMPRESSED.to_string(), l.diff_id.clone());
                }
                write_blob(&self.client, &lease, BlobSource::File(l.path.clone()), &l.digest, l.size, labels).await?;
            }
            self.store_image(&lease, config_bytes, layer_descs, &diff_ids, &req.names, req.labels.clone()).await
        }
        .await;
        if let Err(e) = lease.delete().await {
            tracing::warn!(error = %e, "deleting import lease failed; it will expire");
        }
        let imported = result?;
        tracing::info!(names = ?imported.names, config = %imported.config_digest, layers = layers.len(), "image imported");
        Ok(imported)
    }

    /// Stores an image whose layer blobs are already in the content store
    /// (leased by `lease`): its config and manifest with their GC labels,
    /// the unpacked snapshots, and a record for every name (an anonymous
    /// `sha256:` record when `names` is empty). `diff_ids` must be those
    /// of `layers` and of the config's `rootfs`.
    pub async fn store_image(
        &self,
        lease: &Lease,
        config_bytes: Vec<u8>,
        layer_descs: Vec<Descriptor>,
        diff_ids: &[String],
        names: &[String],
        labels: HashMap<String, String>,
    ) -> Result<ImportedImage> {
        let top = chain_ids(diff_ids).pop();
        let config_desc = Descriptor {
            media_type: oci::MEDIA_TYPE_CONFIG.into(),
            digest: sha256_digest(&config_bytes),
            size: config_bytes.len() as i64,
            platform: None,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_TYPE_MANIFEST.into()),
            config: config_desc.clone(),
            layers: layer_descs.clone(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("encoding manifest", e))?;
        let manifest_desc = Descriptor {
            media_type: oci::MEDIA_TYPE_MANIFEST.into(),
            digest: sha256_digest(&manifest_bytes),
            size: manifest_bytes.len() as i64,
            platform: None,
        };
        let mut cfg_labels = HashMap::new();
        if let Some(top) = &top {
            cfg_labels.insert(format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter), top.clone());
        }
        write_blob(&self.client, lease, BlobSource::Bytes(config_bytes), &config_desc.digest, config_desc.size, cfg_labels).await?;
        let mut man_labels = HashMap::new();
        man_labels.insert("containerd.io/gc.ref.content.config".to_string(), config_desc.digest.clone());
        for (i, l) in layer_descs.iter().enumerate() {
            man_labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
        }
        write_blob(&self.client, lease, BlobSource::Bytes(manifest_bytes), &manifest_desc.digest, manifest_desc.size, man_labels).await?;

        self.unpack_layers(lease, &layer_descs, diff_ids).await?;

        let names = if names.is_empty() {
            // An untagged image still needs a record, or GC takes it.
            vec![format!("sha256:{}", config_desc.digest.trim_start_matches("sha256:"))]
        } else {
            names.to_vec()
        };
        for name in &names {
            self.put_record(name, &manifest_desc, labels.clone()).await?;
        }
        let size = config_desc.size + layer_descs.iter().map(|l| l.size).sum::<i64>();
        Ok(ImportedImage {
            names,
            manifest_digest: manifest_desc.digest,
            config_digest: config_desc.digest,
            diff_ids: diff_ids.to_vec(),
            chain_id: top,
            size,
        })
    }

    /// Creates the record `name → target`, or moves it if it exists.
    async fn put_record(&self, name: &str, target: &Descriptor, labels: HashMap<String, String>) -> Result<()> {
        let image = Image { name: name.into(), labels, target: Some(pb_descriptor(target)), created_at: None, updated_at: None };
        let mut images = ImagesClient::new(self.client.channel());
        match images.create(self.client.request(CreateImageRequest { image: Some(image.clone()), source_date_epoch: None })).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                images
                    .update(self.client.request(UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await?;
                Ok(())
            }
            Err(s) => Err(s.into()),
        }
    }

    /// Applies each layer on top of the previous snapshot, skipping layers
    /// whose chainID snapshot already exists.
    async fn unpack_layers(&self, lease: &Lease, layers: &[Descriptor], diff_ids: &[String]) -> Result<()> {
        let chains = chain_ids(diff_ids);
        let mut snapshots = SnapshotsClient::new(self.client.channel());
        let mut parent = String::new();
        for (i, layer) in layers.iter().enumerate() {
            let chain = &chains[i];
            // An existing snapshot may belong to an image deleted a moment
            // ago: lease it before relying on it.
            crate::content::lease_add(&self.client, lease, &format!("snapshots/{}", self.snapshotter), chain).await?;
            let exists = snapshots
                .stat(self.client.request(StatSnapshotRequest { snapshotter: self.snapshotter.clone(), key: chain.clone() }))
                .await;
            match exists {
                Ok(_) => {
                    parent = chain.clone();
                    continue;
                }
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(s.into()),
            }
            let key = format!("extract-{} {chain}", random_hex(6));
            let mounts = snapshots
                .prepare(self.client.leased_request(
                    PrepareSnapshotRequest {
                        snapshotter: self.snapshotter.clone(),
                        key: key.clone(),
                        parent: parent.clone(),
                        labels: HashMap::new(),
                    },
                    lease,
                ))
                .await?
                .into_inner()
                .mounts;
            let applied = async {
                let resp = DiffClient::new(self.client.channel())
                    .apply(self.client.leased_request(
                        ApplyRequest { diff: Some(pb_descriptor(layer)), mounts, payloads: HashMap::new(), sync_fs: false },
                        lease,
                    ))
                    .await?
                    .into_inner();
                let got = resp.applied.map(|d| d.digest).unwrap_or_default();
                if got != diff_ids[i] {
                    return Err(Error::InvalidData(format!("layer {} unpacked to {got}, expected diffID {}", layer.digest, diff_ids[i])));
                }
                snapshots
                    .clone()
                    .commit(self.client.leased_request(
                        CommitSnapshotRequest {
                            snapshotter: self.snapshotter.clone(),
                            name: chain.clone(),
                            key: key.clone(),
                            labels: HashMap::new(),
                        },
                        lease,
                    ))
                    .await?;
                Ok(())
            }
            .await;
            match applied {
                Ok(()) => {}
                Err(e) => {
                    let _ = snapshots
                        .remove(self.client.request(RemoveSnapshotRequest { snapshotter: self.snapshotter.clone(), key: key.clone() }))
                        .await;
                    // A concurrent unpack of the same layer won the race.
                    if !e.is_already_exists() {
                        return Err(e);
                    }
                }
            }
            tracing::debug!(layer = %layer.digest, chain = %chain, "layer unpacked");
            parent = chain.clone();
        }
        Ok(())
    }

    /// Makes sure the snapshots of an existing image are unpacked (e.g. after
    /// switching snapshotters); returns its top chainID.
    pub async fn unpack(&self, name: &str) -> Result<Option<String>> {
        let info = self.get(name).await?;
        let lease = self.client.create_lease("berth-unpack", IMPORT_LEASE_EXPIRY).await?;
        let result = self.unpack_layers(&lease, &info.manifest.layers, &info.config_file.rootfs.diff_ids).await;
        if let Some(top) = &info.chain_id {
            let mut labels = HashMap::new();
            labels.insert(format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter), top.clone());
            crate::content::set_blob_labels(&self.client, &info.config_digest, labels).await?;
        }
        let _ = lease.delete().await;
        result?;
        Ok(info.chain_id)
    }

    /// All image records of the namespace.
    pub async fn list(&self) -> Result<Vec<ImageRecord>> {
        let resp = ImagesClient::new(self.client.channel())
            .list(self.client.request(ListImagesRequest { filters: vec![] }))
            .await?
            .into_inner();
        Ok(resp.images.into_iter().map(record_from).collect())
    }

    /// One image record.
    pub async fn record(&self, name: &str) -> Result<ImageRecord> {
        let resp = ImagesClient::new(self.client.channel())
            .get(self.client.request(GetImageRequest { name: name.into() }))
            .await?
            .into_inner();
        resp.image.map(record_from).ok_or_else(|| Error::NotFound(format!("image {name}")))
    }

    /// Resolves an image: record, manifest for this platform, parsed config.
    pub async fn get(&self, name: &str) -> Result<ImageInfo> {
        let record = self.record(name).await?;
        let manifest = self.resolve_manifest(&record.target).await?;
        let raw = read_blob(&self.client, &manifest.config.digest, MAX_JSON_BLOB).await?;
        let config_file = ImageConfigFile::parse(&raw).map_err(|e| Error::json(format!("parsing config of {name}"), e))?;
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<i64>();
        Ok(ImageInfo {
            chain_id: chain_ids(&config_file.rootfs.diff_ids).pop(),
            config: config_file.image_config(),
            config_digest: manifest.config.digest.clone(),
            config_file,
            manifest,
            record,
            size,
        })
    }

    /// The raw config document of an image and its digest.
    pub async fn read_config(&self, name: &str) -> Result<(String, Vec<u8>)> {
        let record = self.record(name).await?;
        let manifest = self.resolve_manifest(&record.target).await?;
        let raw = read_blob(&self.client, &manifest.config.digest, MAX_JSON_BLOB).await?;
        Ok((manifest.config.digest, raw))
    }

    /// The top chainID of an image (the parent of a container snapshot).
    pub async fn chain_id(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(name).await?.chain_id)
    }

    /// Points `new_name` at the same manifest as `existing` (docker tag).
    pub async fn tag(&self, existing: &str, new_name: &str) -> Result<()> {
        let record = self.record(existing).await?;
        self.put_record(new_name, &record.target, record.labels).await
    }

    /// Deletes an image record; blobs and snapshots go with the next GC once
    /// nothing else references them.
    pub async fn delete(&self, name: &str) -> Result<()> {
        ImagesClient::new(self.client.channel())
            .delete(self.client.request(DeleteImageRequest { name: name.into(), sync: false, target: None }))
            .await?;
        tracing::info!(name, "image record deleted");
        Ok(())
    }

    /// Reads the manifest of a target, picking this platform's manifest from
    /// an index.
    async fn resolve_manifest(&self, target: &Descriptor) -> Result<Manifest> {
        let raw = read_blob(&self.client, &target.digest, MAX_JSON_BLOB).await?;
        match target.media_type.as_str() {
            oci::MEDIA_TYPE_INDEX | oci::MEDIA_TYPE_DOCKER_LIST => {
                let index: Index = serde_json::from_slice(&raw).map_err(|e| Error::json("parsing image index", e))?;
                let arch = oci::host_architecture();
                let chosen = index
                    .manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
                    .or_else(|| index.manifests.first())
                    .ok_or_else(|| Error::InvalidData(format!("index {} lists no manifest", target.digest)))?;
                let raw = read_blob(&self.client, &chosen.digest, MAX_JSON_BLOB).await?;
                serde_json::from_slice(&raw).map_err(|e| Error::json("parsing manifest", e))
            }
            _ => serde_json::from_slice(&raw).map_err(|e| Error::json("parsing manifest", e)),
        }
    }
}
