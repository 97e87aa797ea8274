//! OCI image JSON documents (config, manifest, index) — just the fields berth
//! reads or writes. Unknown fields are kept in `extra` where a document may be
//! stored verbatim later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OCI image manifest media type.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const MEDIA_TYPE_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config media type.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed layer.
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// gzip layer.
pub const MEDIA_TYPE_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
    /// Platform (only in indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// Platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2, same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type of this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layer blobs, base first.
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Entries.
    pub manifests: Vec<Descriptor>,
}

/// The runnable defaults of an image (the `config` object of the image
/// config), plus the top-level fields berth cares about. This is what
/// `docker import --change` edits and what the engine reads to build a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`, `arm64`, …); empty = the host's.
    #[serde(skip)]
    pub architecture: String,
    /// OS; empty = `linux`.
    #[serde(skip)]
    pub os: String,
    /// Creation time, RFC 3339.
    #[serde(skip)]
    pub created: Option<String>,
    /// Author.
    #[serde(skip)]
    pub author: Option<String>,
    /// `User`.
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `ExposedPorts` (`"80/tcp": {}`).
    #[serde(rename = "ExposedPorts", default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `Env` (`KEY=value`).
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `Entrypoint`.
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `Volumes`.
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `WorkingDir`.
    #[serde(rename = "WorkingDir", default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `Labels`.
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal`.
    #[serde(rename = "StopSignal", default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `Healthcheck` (`HEALTHCHECK`).
    #[serde(rename = "Healthcheck", default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<ImageHealthcheck>,
}

/// An image's `Healthcheck`: Docker's `HealthConfig` (durations in
/// nanoseconds, 0 = unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHealthcheck {
    #[serde(rename = "Test", default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The whole image config document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfigFile {
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// Runnable defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageConfig>,
    /// Layer diffIDs.
    pub rootfs: RootFs,
    /// History entries (kept as-is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<serde_json::Value>>,
    /// Any other top-level field.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// diffIDs, base first.
    pub diff_ids: Vec<String>,
}

impl ImageConfigFile {
    /// Parses a config blob; the top-level fields are copied into
    /// `config` so [`ImageConfig`] is self-contained.
    pub fn parse(raw: &[u8]) -> Result<Self, serde_json::Error> {
        let mut file: ImageConfigFile = serde_json::from_slice(raw)?;
        let mut cfg = file.config.take().unwrap_or_default();
        cfg.architecture = file.architecture.clone();
        cfg.os = file.os.clone();
        cfg.created = file.created.clone();
        cfg.author = file.author.clone();
        file.config = Some(cfg);
        Ok(file)
    }

    /// The runnable defaults (never `None` after [`ImageConfigFile::parse`]).
    pub fn image_config(&self) -> ImageConfig {
        self.config.clone().unwrap_or_default()
    }

    /// Builds a config document from runnable defaults and diffIDs.
    pub fn build(cfg: &ImageConfig, diff_ids: Vec<String>) -> Self {
        ImageConfigFile {
            created: cfg.created.clone(),
            author: cfg.author.clone(),
            architecture: if cfg.architecture.is_empty() { host_architecture().into() } else { cfg.architecture.clone() },
            os: if cfg.os.is_empty() { "linux".into() } else { cfg.os.clone() },
            config: Some(cfg.clone()),
            rootfs: RootFs { kind: "layers".into(), diff_ids },
            history: None,
            extra: BTreeMap::new(),
        }
    }
}

/// The host's architecture in OCI/Go naming.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip() {
        let cfg = ImageConfig {
            env: Some(vec!["A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/w".into()),
            ..Default::default()
        };
        let file = ImageConfigFile::build(&cfg, vec!["sha256:aa".into()]);
        let raw = serde_json::to_vec(&file).unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("\"Env\":[\"A=1\"]"), "{text}");
        assert!(text.contains("\"diff_ids\":[\"sha256:aa\"]"), "{text}");
        assert!(text.contains("\"os\":\"linux\""), "{text}");
        let back = ImageConfigFile::parse(&raw).unwrap();
        let c = back.image_config();
        assert_eq!(c.cmd, cfg.cmd);
        assert_eq!(c.os, "linux");
        assert_eq!(c.architecture, host_architecture());
    }

    #[test]
    fn parses_docker_style_config_and_keeps_extra_fields() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":null,"Entrypoint":["/e"],"User":"1"},"rootfs":{"type":"layers","diff_ids":["sha256:x"]},"docker_version":"20.10"}"#;
        let f = ImageConfigFile::parse(raw).unwrap();
        let c = f.image_config();
        assert_eq!(c.entrypoint, Some(vec!["/e".to_string()]));
        assert_eq!(c.cmd, None);
        assert_eq!(c.user.as_deref(), Some("1"));
        assert!(f.extra.contains_key("docker_version"));
    }
}
