//! Checking tarballs before anything is stored: the rootfs of
//! `docker import`, and each layer of a `docker load` (whose diffIDs are
//! computed in the same pass, so a config that does not match its layers
//! is refused before any image of the archive is imported).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_containerd::oci::ImageConfigFile;

use super::walk::{walk, Summary, WalkOptions};
use super::{open_file, open_stream, ArchiveError, TarLimits};
use super::save_archive::ArchiveImage;

/// Opens `input` (plain or gzip) and walks it under `opts` (pure).
pub fn check_stream(input: impl Read, opts: &WalkOptions) -> Result<Summary, ArchiveError> {
    walk(open_stream(input)?, opts, |_, _| Ok(()))
}

/// Reads a whole tarball to make sure it is one (`docker import`): at
/// least one entry, within `limits`; with `digest`, its diffID (blocking).
pub(crate) fn check_tarball(path: &Path, limits: &TarLimits, digest: bool) -> Result<Summary, ArchiveError> {
    let summary = walk(open_file(path)?, &WalkOptions { limits: *limits, spent: 0, digest }, |_, _| Ok(()))?;
    if summary.entries == 0 {
        return Err(ArchiveError::Invalid("the archive has no entries".into()));
    }
    Ok(summary)
}

/// A layer of a `docker load` that is not acceptable.
#[derive(Debug)]
pub(crate) struct LayerError {
    /// The layer's name in the archive.
    pub(crate) layer: String,
    pub(crate) error: ArchiveError,
}

/// Walks every distinct layer of `images` (plain or gzip tar) under
/// `limits`, their decompressed sizes sharing `limits.total`, and checks
/// that each config's `rootfs.diff_ids` are the layers' (blocking).
pub(crate) fn check_layers(images: &[ArchiveImage], limits: &TarLimits) -> Result<(), LayerError> {
    let mut diff_ids: HashMap<PathBuf, String> = HashMap::new();
    let mut spent = 0u64;
    for img in images {
        for (file, name) in img.layers.iter().zip(&img.layer_names) {
            if diff_ids.contains_key(file) {
                continue;
            }
            let fail = |error| LayerError { layer: name.clone(), error };
            let opts = WalkOptions { limits: *limits, spent, digest: true };
            let summary = walk(open_file(file).map_err(fail)?, &opts, |_, _| Ok(())).map_err(fail)?;
            spent += summary.bytes;
            diff_ids.insert(file.clone(), summary.digest.unwrap_or_default());
        }
        let have: Vec<&str> = img.layers.iter().map(|f| diff_ids[f].as_str()).collect();
        let config = ImageConfigFile::parse(&img.config).map_err(|e| LayerError {
            layer: img.config_path.clone(),
            error: ArchiveError::Invalid(format!("config {} is not an image config: {e}", img.config_path)),
        })?;
        if config.rootfs.diff_ids != have {
            return Err(LayerError {
                layer: img.config_path.clone(),
                error: ArchiveError::Invalid(format!(
                    "config {} lists diff_ids {:?} but its layers have {:?}",
                    img.config_path, config.rootfs.diff_ids, have
                )),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::test_tar::{gzip, make_tar};
    use crate::images::archive::Cap;

    fn check(path: &Path) -> Result<Summary, ArchiveError> {
        check_tarball(path, &TarLimits::DEFAULT, false)
    }

    #[test]
    fn import_checks_the_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, make_tar(&[("bin/sh", b"x")], &[])).unwrap();
        assert_eq!(check(&p).unwrap().entries, 1);
        std::fs::write(&p, gzip(&make_tar(&[("a", b"x")], &[]))).unwrap();
        check(&p).unwrap();
        for (data, want) in [
            (&b"hello\n"[..], "ends inside a 512-byte header block"),
            (&[7u8; 2048][..], "invalid tar header"),
            (&b""[..], "the input is empty"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..], "xz-compressed"),
            (&[0u8; 1024][..], "the archive has no entries"),
        ] {
            std::fs::write(&p, data).unwrap();
            let e = check(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains('\u{fffd}'), "{e}");
        }
    }

    fn image(dir: &Path, layers: &[(&str, Vec<u8>)], diff_ids: &[String]) -> ArchiveImage {
        let mut files = Vec::new();
        for (name, data) in layers {
            let f = dir.join(name);
            std::fs::write(&f, data).unwrap();
            files.push(f);
        }
        let config = serde_json::json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": diff_ids } });
        ArchiveImage {
            config_path: "c.json".into(),
            config: serde_json::to_vec(&config).unwrap(),
            repo_tags: vec![],
            layers: files,
            layer_names: layers.iter().map(|(n, _)| n.to_string()).collect(),
        }
    }

    fn digest(data: &[u8]) -> String {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
    }

    #[test]
    fn load_layers_are_walked_and_match_their_config() {
        let dir = tempfile::tempdir().unwrap();
        let plain = make_tar(&[("a", b"1")], &[]);
        let zipped = gzip(&make_tar(&[("b", b"2")], &[]));
        let ok = image(dir.path(), &[("l1", plain.clone()), ("l2", zipped)], &[digest(&plain), digest(&make_tar(&[("b", b"2")], &[]))]);
        check_layers(&[ok], &TarLimits::DEFAULT).unwrap();

        let wrong = image(dir.path(), &[("l1", plain.clone())], &["sha256:00".into()]);
        let e = check_layers(&[wrong], &TarLimits::DEFAULT).unwrap_err();
        assert!(e.error.to_string().contains("lists diff_ids"), "{e:?}");

        // The layers of an archive share one budget.
        let big = make_tar(&[("f", &[7u8; 3000])], &[]);
        let limits = TarLimits { total: big.len() as u64 + 100, ..TarLimits::DEFAULT };
        let one = image(dir.path(), &[("b1", big.clone())], &[digest(&big)]);
        check_layers(&[one], &limits).unwrap();
        let two = image(dir.path(), &[("b1", big.clone()), ("b2", big.clone())], &[digest(&big), digest(&big)]);
        let e = check_layers(&[two], &limits).unwrap_err();
        assert_eq!(e.layer, "b2");
        assert!(matches!(e.error, ArchiveError::Limit { cap: Cap::Total, .. }), "{e:?}");

        // A layer with a header bomb names the layer.
        let mut bomb = tar::Header::new_gnu();
        bomb.set_path("././@LongLink").unwrap();
        bomb.set_entry_type(tar::EntryType::GNULongName);
        bomb.set_size(1 << 34);
        bomb.set_cksum();
        let bad = image(dir.path(), &[("l9", bomb.as_bytes().to_vec())], &["sha256:00".into()]);
        let e = check_layers(&[bad], &TarLimits::DEFAULT).unwrap_err();
        assert_eq!(e.layer, "l9");
        assert!(matches!(e.error, ArchiveError::Limit { cap: Cap::LongName, .. }), "{e:?}");
    }
}
