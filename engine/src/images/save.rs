//! `docker save`: resolving the images up front, then streaming Docker's
//! legacy archive layout (which `docker load` of every version reads).

use std::collections::BTreeMap;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::ImageService;
use crate::error::{EngineError, Result};
use crate::reference::{self, Reference};

impl ImageService {
    /// Resolves the images of `docker save` (so a missing one fails before
    /// anything is sent). Several names of one image share an entry.
    pub async fn save_plan(&self, names: &[String]) -> Result<SavePlan> {
        let mut images: Vec<SaveImage> = Vec::new();
        for given in names {
            let img = self.resolve(given).await?;
            let tag = reference::parse(given)
                .ok()
                .filter(|r| r.full() == img.name && r.digest.is_none())
                .map(|r| r.familiar());
            if let Some(existing) = images.iter_mut().find(|i| i.id == img.id) {
                if let Some(t) = tag {
                    if !existing.tags.contains(&t) {
                        existing.tags.push(t);
                    }
                }
                continue;
            }
            let (_, config) = self.store.read_config(&img.name).await?;
            let diff_ids = img.info.config_file.rootfs.diff_ids.clone();
            if diff_ids.len() != img.info.manifest.layers.len() {
                return Err(EngineError::Internal(format!(
                    "image {given}: its config lists {} layers but its manifest {}",
                    diff_ids.len(),
                    img.info.manifest.layers.len()
                )));
            }
            let chains = berth_containerd::layers::chain_ids(&diff_ids);
            let layers = img
                .info
                .manifest
                .layers
                .iter()
                .zip(chains.iter())
                .map(|(d, c)| SaveLayer { digest: d.digest.clone(), size: d.size, dir: c.trim_start_matches("sha256:").to_string() })
                .collect();
            images.push(SaveImage { id: img.id.clone(), config, tags: tag.into_iter().collect(), layers, created: img.info.config.created.clone() });
        }
        Ok(SavePlan { images })
    }

    /// Writes the `docker save` archive of a plan: `manifest.json`,
    /// `repositories`, `<id>.json` configs and `<layer>/{VERSION,json,layer.tar}`
    /// (Docker's legacy archive layout, which `docker load` of every
    /// version reads). Layer blobs are streamed from the content store.
    pub async fn write_save<W: AsyncWrite + Unpin + Send>(&self, plan: &SavePlan, out: &mut W) -> Result<()> {
        let io = |e: std::io::Error| EngineError::Internal(format!("writing the archive: {e}"));
        let mut written_dirs: Vec<String> = Vec::new();
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in &plan.images {
            let mtime = img
                .created
                .as_deref()
                .and_then(berth_store::timefmt::parse_rfc3339)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut layer_paths = Vec::new();
            let mut parent: Option<String> = None;
            for layer in &img.layers {
                let dir = layer.dir.clone();
                layer_paths.push(format!("{dir}/layer.tar"));
                if !written_dirs.contains(&dir) {
                    tar_dir(out, &format!("{dir}/"), mtime).await.map_err(io)?;
                    tar_file(out, &format!("{dir}/VERSION"), b"1.0", mtime).await.map_err(io)?;
                    let mut v1 = serde_json::json!({ "id": dir, "created": img.created.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()) });
                    if let Some(p) = &parent {
                        v1["parent"] = serde_json::Value::String(p.clone());
                    }
                    tar_file(out, &format!("{dir}/json"), v1.to_string().as_bytes(), mtime).await.map_err(io)?;
                    out.write_all(&tar_header(&format!("{dir}/layer.tar"), layer.size as u64, 0o644, tar::EntryType::Regular, mtime)?)
                        .await
                        .map_err(io)?;
                    let n = berth_containerd::content::copy_blob(self.store.client(), &layer.digest, out).await?;
                    if n != layer.size {
                        return Err(EngineError::Internal(format!("layer {} is {n} bytes, its descriptor says {}", layer.digest, layer.size)));
                    }
                    pad(out, layer.size as u64).await.map_err(io)?;
                    written_dirs.push(dir.clone());
                }
                parent = Some(dir);
            }
            let config_name = format!("{}.json", img.id.trim_start_matches("sha256:"));
            if !written_dirs.contains(&config_name) {
                tar_file(out, &config_name, &img.config, mtime).await.map_err(io)?;
                written_dirs.push(config_name.clone());
            }
            for t in &img.tags {
                if let (Ok(r), Some(top)) = (reference::parse(t), &parent) {
                    let fam = Reference { tag: None, digest: None, ..r.clone() }.familiar();
                    repositories.entry(fam).or_default().insert(r.tag.clone().unwrap_or_default(), top.clone());
                }
            }
            manifest.push(serde_json::json!({
                "Config": config_name,
                "RepoTags": if img.tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(img.tags) },
                "Layers": layer_paths,
            }));
            self.publish("save", &img.id, img.tags.first().cloned());
        }
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories).map_err(|e| EngineError::Internal(e.to_string()))?;
            tar_file(out, "repositories", &r, 0).await.map_err(io)?;
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| EngineError::Internal(e.to_string()))?;
        tar_file(out, "manifest.json", &m, 0).await.map_err(io)?;
        out.write_all(&[0u8; 1024]).await.map_err(io)?;
        out.flush().await.map_err(io)?;
        Ok(())
    }
}

/// What `docker save` writes, resolved up front.
#[derive(Debug, Clone)]
pub struct SavePlan {
    pub images: Vec<SaveImage>,
}

#[derive(Debug, Clone)]
pub struct SaveImage {
    pub id: String,
    /// The config document, verbatim.
    pub config: Vec<u8>,
    /// Familiar names to record in the archive.
    pub tags: Vec<String>,
    pub layers: Vec<SaveLayer>,
    pub created: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SaveLayer {
    /// Blob digest in the content store.
    pub digest: String,
    pub size: i64,
    /// Directory in the archive (the layer's chainID hex).
    pub dir: String,
}


fn tar_header(path: &str, size: u64, mode: u32, kind: tar::EntryType, mtime: u64) -> Result<[u8; 512]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| EngineError::Internal(format!("tar path {path}: {e}")))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

async fn pad<W: AsyncWrite + Unpin>(out: &mut W, size: u64) -> std::io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem]).await?;
    }
    Ok(())
}

async fn tar_file<W: AsyncWrite + Unpin>(out: &mut W, path: &str, data: &[u8], mtime: u64) -> std::io::Result<()> {
    let h = tar_header(path, data.len() as u64, 0o644, tar::EntryType::Regular, mtime).map_err(std::io::Error::other)?;
    out.write_all(&h).await?;
    out.write_all(data).await?;
    pad(out, data.len() as u64).await
}

async fn tar_dir<W: AsyncWrite + Unpin>(out: &mut W, path: &str, mtime: u64) -> std::io::Result<()> {
    let h = tar_header(path, 0, 0o755, tar::EntryType::Directory, mtime).map_err(std::io::Error::other)?;
    out.write_all(&h).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_tar_entries_read_back() {
        let mut out = Vec::new();
        tar_dir(&mut out, "abc/", 5).await.unwrap();
        tar_file(&mut out, "abc/VERSION", b"1.0", 5).await.unwrap();
        tar_file(&mut out, "manifest.json", &[b'x'; 700], 0).await.unwrap();
        out.extend_from_slice(&[0u8; 1024]);
        let mut a = tar::Archive::new(&out[..]);
        let got: Vec<(String, u64)> =
            a.entries().unwrap().map(|e| e.unwrap()).map(|e| (e.path().unwrap().display().to_string(), e.size())).collect();
        assert_eq!(got, vec![("abc/".to_string(), 0), ("abc/VERSION".to_string(), 3), ("manifest.json".to_string(), 700)]);
    }
}
