//! The content store: write blobs (streamed, with GC labels), read blobs.

use std::collections::HashMap;
use std::path::PathBuf;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{Info, InfoRequest, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest};
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::client::{Client, Lease};
use crate::error::{Error, Result};
use crate::util::random_hex;

/// Size of each `Write` message.
const CHUNK: usize = 1024 * 1024;
/// Upper bound for JSON documents read with [`read_blob`].
pub const MAX_JSON_BLOB: i64 = 16 * 1024 * 1024;

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// In memory (configs, manifests).
    Bytes(Vec<u8>),
    /// A file (layers), streamed.
    File(PathBuf),
}

/// Info of a blob, or `None` when it does not exist.
pub async fn blob_info(client: &Client, digest: &str) -> Result<Option<Info>> {
    match ContentClient::new(client.channel()).info(client.request(InfoRequest { digest: digest.into() })).await {
        Ok(r) => Ok(r.into_inner().info),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s.into()),
    }
}

/// Sets labels on an existing blob (only the given keys are touched).
pub async fn set_blob_labels(client: &Client, digest: &str, labels: HashMap<String, String>) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    let info = Info { digest: digest.into(), labels, ..Default::default() };
    ContentClient::new(client.channel())
        .update(client.request(UpdateRequest { info: Some(info), update_mask: Some(prost_types::FieldMask { paths }) }))
        .await?;
    Ok(())
}

/// Adds an object (`kind` = `content`, or `snapshots/<snapshotter>` with
/// the snapshot key as `id`) to a lease, so GC keeps it while the lease
/// lives even if nothing else references it yet.
pub async fn lease_add(client: &Client, lease: &Lease, kind: &str, id: &str) -> Result<()> {
    use containerd_client::services::v1::leases_client::LeasesClient;
    use containerd_client::services::v1::{AddResourceRequest, Resource};
    LeasesClient::new(client.channel())
        .add_resource(client.request(AddResourceRequest {
            id: lease.id().to_string(),
            resource: Some(Resource { id: id.to_string(), r#type: kind.to_string() }),
        }))
        .await?;
    Ok(())
}

/// Writes a blob under `lease` unless it is already there, then makes sure
/// it carries `labels`. The server checks `digest` and `size`.
pub async fn write_blob(
    client: &Client,
    lease: &Lease,
    source: BlobSource,
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
) -> Result<()> {
    // Lease it first: a blob that exists now may be unreferenced (its image
    // was just deleted) and collected before the new references exist.
    lease_add(client, lease, "content", digest).await?;
    if blob_info(client, digest).await?.is_some() {
        tracing::trace!(%digest, "blob already present");
        return set_blob_labels(client, digest, labels).await;
    }
    let reference = format!("berth-{}-{}", digest.trim_start_matches("sha256:").get(..16).unwrap_or(digest), random_hex(4));
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    let base = WriteContentRequest {
        action: WriteAction::Write as i32,
        r#ref: reference.clone(),
        total: size,
        expected: digest.into(),
        ..Default::default()
    };
    let commit_labels = labels.clone();
    // Producer: feeds chunks; stops quietly when the server stops listening.
    let producer = tokio::spawn(async move {
        let mut offset = 0i64;
        match source {
            BlobSource::Bytes(data) => {
                for chunk in data.chunks(CHUNK) {
                    let msg = WriteContentRequest { offset, data: chunk.to_vec(), ..base.clone() };
                    offset += chunk.len() as i64;
                    if tx.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
            }
            BlobSource::File(path) => {
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = file.read(&mut buf).await.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                    if n == 0 {
                        break;
                    }
                    let msg = WriteContentRequest { offset, data: buf[..n].to_vec(), ..base.clone() };
                    offset += n as i64;
                    if tx.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        let commit =
            WriteContentRequest { action: WriteAction::Commit as i32, offset, labels: commit_labels, ..base };
        let _ = tx.send(commit).await;
        Ok::<(), Error>(())
    });

    let result = async {
        let mut responses = ContentClient::new(client.channel())
            .write(client.leased_request(ReceiverStream::new(rx), lease))
            .await?
            .into_inner();
        // The server answers every message; drain them so it never blocks.
        while let Some(resp) = responses.next().await {
            resp?;
        }
        Ok::<(), Error>(())
    }
    .await;
    let produced = producer.await.map_err(|e| Error::Cancelled(format!("blob writer task: {e}")))?;
    match (result, produced) {
        // A local read error explains whatever the server said.
        (_, Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
        // Someone else committed the same blob meanwhile: fine, label it.
        (Err(Error::AlreadyExists(_)), Ok(())) => set_blob_labels(client, digest, labels).await,
        (Err(e), Ok(())) => Err(e),
    }?;
    tracing::debug!(%digest, size, "blob written");
    Ok(())
}

/// Reads a whole blob into memory (refuses blobs above `max` bytes).
pub async fn read_blob(client: &Client, digest: &str, max: i64) -> Result<Vec<u8>> {
    let info = blob_info(client, digest).await?.ok_or_else(|| Error::NotFound(format!("content {digest}")))?;
    if info.size > max {
        return Err(Error::InvalidData(format!("blob {digest} is {} bytes, more than the {max} allowed", info.size)));
    }
    let mut stream = ContentClient::new(client.channel())
        .read(client.request(ReadContentRequest { digest: digest.into(), offset: 0, size: 0 }))
        .await?
        .into_inner();
    let mut out = Vec::with_capacity(info.size as usize);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?.data);
    }
    Ok(out)
}

/// Streams a whole blob into `out` (for `docker save`); returns the number
/// of bytes written. Nothing is buffered beyond one gRPC message.
pub async fn copy_blob<W: tokio::io::AsyncWrite + Unpin>(client: &Client, digest: &str, out: &mut W) -> Result<i64> {
    use tokio::io::AsyncWriteExt;
    let mut stream = ContentClient::new(client.channel())
        .read(client.request(ReadContentRequest { digest: digest.into(), offset: 0, size: 0 }))
        .await?
        .into_inner();
    let mut written = 0i64;
    while let Some(chunk) = stream.next().await {
        let data = chunk?.data;
        out.write_all(&data).await.map_err(|e| Error::io(format!("writing blob {digest}"), e))?;
        written += data.len() as i64;
    }
    Ok(written)
}
