//! Layer tarballs: digests (blob digest, diffID) and chainIDs.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::oci::{MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_TAR_GZIP};

/// What a layer file is, as computed by [`inspect_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// The file.
    pub path: PathBuf,
    /// Digest of the file as stored (compressed or not).
    pub digest: String,
    /// Size of the file.
    pub size: i64,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Media type (tar or tar+gzip).
    pub media_type: String,
}

/// Digests a reader, returning (`sha256:<hex>`, byte count).
fn hash_reader(mut r: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), total))
}

/// Reads a layer file (plain tar or gzip, detected by its magic) and computes
/// its blob digest and diffID. Blocking: call it from `spawn_blocking`.
pub fn inspect_layer(path: &Path) -> Result<LayerDigests> {
    let ctx = |what: &str| format!("{what} layer {}", path.display());
    let mut file = File::open(path).map_err(|e| Error::io(ctx("opening"), e))?;
    let mut magic = [0u8; 2];
    let gz = matches!(file.read(&mut magic), Ok(2)) && magic == [0x1f, 0x8b];
    let file = File::open(path).map_err(|e| Error::io(ctx("opening"), e))?;
    let (digest, size) = hash_reader(BufReader::new(file)).map_err(|e| Error::io(ctx("reading"), e))?;
    let (diff_id, media_type) = if gz {
        let file = File::open(path).map_err(|e| Error::io(ctx("opening"), e))?;
        let (d, _) = hash_reader(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
            .map_err(|e| Error::io(ctx("decompressing"), e))?;
        (d, MEDIA_TYPE_LAYER_TAR_GZIP)
    } else {
        (digest.clone(), MEDIA_TYPE_LAYER_TAR)
    };
    Ok(LayerDigests { path: path.to_path_buf(), digest, size: size as i64, diff_id, media_type: media_type.into() })
}

/// chainIDs of a stack of diffIDs: `chain[0] = diff[0]`,
/// `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => crate::util::sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The top chainID (the image's snapshot), `None` for an image with no layers.
pub fn chain_id(diff_ids: &[String]) -> Option<String> {
    chain_ids(diff_ids).pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn chain_of_one_is_the_diff_id() {
        assert_eq!(chain_ids(&["sha256:a".into()]), vec!["sha256:a".to_string()]);
        let two = chain_ids(&["sha256:a".into(), "sha256:b".into()]);
        assert_eq!(two[1], crate::util::sha256_digest(b"sha256:a sha256:b"));
        assert_eq!(chain_id(&[]), None);
    }

    #[test]
    fn gzip_layers_get_diff_id_of_uncompressed() {
        let dir = std::env::temp_dir().join(format!("berth-layer-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("l.tar");
        std::fs::write(&plain, b"not really a tar but bytes").unwrap();
        let gzp = dir.join("l.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gzp).unwrap(), flate2::Compression::default());
        enc.write_all(b"not really a tar but bytes").unwrap();
        enc.finish().unwrap();
        let a = inspect_layer(&plain).unwrap();
        let b = inspect_layer(&gzp).unwrap();
        assert_eq!(a.digest, a.diff_id);
        assert_eq!(a.media_type, MEDIA_TYPE_LAYER_TAR);
        assert_eq!(b.diff_id, a.diff_id);
        assert_ne!(b.digest, b.diff_id);
        assert_eq!(b.media_type, MEDIA_TYPE_LAYER_TAR_GZIP);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
