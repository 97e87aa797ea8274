//! Connection to containerd: channel, namespace header, version, leases.
//!
//! Every request carries the `containerd-namespace` header of the namespace
//! given at construction (berth uses `berth`). Requests that create objects
//! which must survive garbage collection until they are referenced also carry
//! a `containerd-lease` header ([`Lease`]).
//!
//! The channel reconnects by itself: after containerd restarts, the first call
//! may fail with [`Error::Unavailable`]; later calls reconnect.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{CreateRequest as LeaseCreateRequest, DeleteRequest as LeaseDeleteRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use crate::error::{Error, Result};
use crate::util::{random_hex, rfc3339};

/// containerd's label that makes a lease expire on its own.
pub const LEASE_EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// The version containerd reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// e.g. `1.6.20~ds1`.
    pub version: String,
    /// e.g. `1.6.20~ds1-1+deb12u3`.
    pub revision: String,
}

/// A namespaced handle on one containerd. Cheap to clone (the gRPC channel is
/// shared).
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    namespace: Arc<str>,
    socket: Arc<Path>,
}

/// Checks containerd's namespace syntax: `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`,
/// at most 76 characters.
pub fn validate_namespace(ns: &str) -> Result<()> {
    let ok = !ns.is_empty()
        && ns.len() <= 76
        && ns.split(['.', '_', '-']).all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("invalid containerd namespace {ns:?}")))
    }
}

/// Builds a channel that dials the Unix socket at `path` (lazily when `lazy`).
async fn unix_channel(path: &Path, lazy: bool) -> Result<Channel> {
    let endpoint = Endpoint::try_from("http://[::]:50051")
        .expect("static URI is valid")
        .connect_timeout(Duration::from_secs(5));
    let socket = path.to_path_buf();
    let connector = tower::service_fn(move |_| {
        let socket = socket.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(socket).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    if lazy {
        Ok(endpoint.connect_with_connector_lazy(connector))
    } else {
        endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|source| Error::Connect { path: path.to_path_buf(), source })
    }
}

impl Client {
    /// Connects to containerd's gRPC socket now (fails if nothing listens).
    pub async fn connect(socket: impl AsRef<Path>, namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        let socket = socket.as_ref();
        let channel = unix_channel(socket, false).await?;
        Ok(Client { channel, namespace: namespace.into(), socket: socket.into() })
    }

    /// Like [`Client::connect`] but dials on first use; never fails on a
    /// missing socket (calls then fail with [`Error::Unavailable`]).
    pub async fn connect_lazy(socket: impl AsRef<Path>, namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        let socket = socket.as_ref();
        let channel = unix_channel(socket, true).await?;
        Ok(Client { channel, namespace: namespace.into(), socket: socket.into() })
    }

    /// The same connection, another namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        Ok(Client { channel: self.channel.clone(), namespace: namespace.into(), socket: self.socket.clone() })
    }

    /// The namespace of every request.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.socket.to_path_buf()
    }

    /// The raw gRPC channel (for services this crate does not wrap).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Wraps a message in a request carrying the namespace header.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        let value = MetadataValue::try_from(&*self.namespace).expect("namespace was validated");
        req.metadata_mut().insert("containerd-namespace", value);
        req
    }

    /// Like [`Client::request`], plus the lease header.
    pub fn leased_request<T>(&self, message: T, lease: &Lease) -> Request<T> {
        let mut req = self.request(message);
        let value = MetadataValue::try_from(lease.id()).expect("lease ids are ASCII");
        req.metadata_mut().insert("containerd-lease", value);
        req
    }

    /// containerd's version (also a cheap liveness probe).
    pub async fn version(&self) -> Result<Version> {
        let resp = VersionClient::new(self.channel()).version(self.request(())).await?.into_inner();
        Ok(Version { version: resp.version, revision: resp.revision })
    }

    /// Creates a lease `<prefix>-<random>` that expires on its own after
    /// `expire` (so a crash never leaks it for good).
    pub async fn create_lease(&self, prefix: &str, expire: Duration) -> Result<Lease> {
        let id = format!("{prefix}-{}", random_hex(8));
        let mut labels = HashMap::new();
        labels.insert(LEASE_EXPIRE_LABEL.to_string(), rfc3339(SystemTime::now() + expire));
        LeasesClient::new(self.channel())
            .create(self.request(LeaseCreateRequest { id: id.clone(), labels }))
            .await?;
        tracing::trace!(lease = %id, namespace = %self.namespace, "lease created");
        Ok(Lease { id, client: Some(self.clone()) })
    }

    /// Deletes a lease by id; NotFound counts as success.
    pub async fn delete_lease(&self, id: &str) -> Result<()> {
        match LeasesClient::new(self.channel())
            .delete(self.request(LeaseDeleteRequest { id: id.to_string(), sync: false }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s.into()),
        }
    }
}

/// A containerd lease. Objects created with [`Client::leased_request`] under it
/// are safe from GC until it is deleted. Call [`Lease::delete`]; if it is
/// dropped instead, deletion is attempted in the background (and the expiry
/// label is the last resort).
#[derive(Debug)]
pub struct Lease {
    id: String,
    client: Option<Client>,
}

impl Lease {
    /// A handle on an existing lease that this handle never deletes (for
    /// its request header only).
    pub fn borrowed(id: String) -> Lease {
        Lease { id, client: None }
    }

    /// The lease id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Deletes the lease now.
    pub async fn delete(mut self) -> Result<()> {
        match self.client.take() {
            Some(client) => client.delete_lease(&self.id).await,
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let id = std::mem::take(&mut self.id);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = client.delete_lease(&id).await {
                        tracing::debug!(lease = %id, error = %e, "background lease delete failed; it will expire");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert!(validate_namespace("berth").is_ok());
        assert!(validate_namespace("t-1.a_b").is_ok());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace("a..b").is_err());
        assert!(validate_namespace("-a").is_err());
        assert!(validate_namespace("a/b").is_err());
    }
}
