//! `docker load`: unpacking a `docker save` archive and reading its
//! `manifest.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_containerd::oci::ImageConfigFile;

use super::{open_tar, tar_error};
use crate::error::{EngineError, Result};

/// One image of a `docker save` archive, with its files unpacked.
#[derive(Debug)]
pub(crate) struct ArchiveImage {
    pub(crate) config_path: String,
    pub(crate) config: Vec<u8>,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) layers: Vec<PathBuf>,
}

#[derive(serde::Deserialize)]
struct ArchiveManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Lexically normalises an archive path; `None` if it leaves the archive.
fn clean_archive_path(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Unpacks a `docker save` archive under `work` (regular files only; links
/// are kept as a table and followed inside the archive) and reads its
/// `manifest.json`.
pub(crate) fn read_save_archive(archive: &Path, work: &Path) -> Result<Vec<ArchiveImage>> {
    let what = "loading the archive";
    let bad = |m: String| EngineError::InvalidParameter(m);
    let reader = open_tar(archive, what)?;
    let mut tar = tar::Archive::new(reader);
    let invalid = |e: std::io::Error| EngineError::InvalidParameter(format!("{what}: the input is not a tar archive: {}", tar_error(&e)));
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    for (i, entry) in tar.entries().map_err(invalid)?.enumerate() {
        let mut entry = entry.map_err(invalid)?;
        let raw = entry.path().map_err(invalid)?.to_string_lossy().into_owned();
        let Some(name) = clean_archive_path(&raw).filter(|n| !n.is_empty()) else { continue };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Flat names on disk: no directories, nothing to escape.
                let dest = work.join(format!("f{i}"));
                let mut f = std::fs::File::create(&dest).map_err(|e| EngineError::Internal(format!("{what}: {e}")))?;
                std::io::copy(&mut entry, &mut f).map_err(invalid)?;
                files.insert(name, dest);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name().map_err(invalid)?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink && !target.starts_with('/') {
                    let parent = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    clean_archive_path(&format!("{parent}/{target}"))
                } else {
                    clean_archive_path(&target)
                };
                if let Some(r) = resolved {
                    links.insert(name, r);
                }
            }
            _ => {}
        }
    }
    let lookup = |p: &str| -> Result<PathBuf> {
        let mut cur = clean_archive_path(p).ok_or_else(|| bad(format!("{what}: path {p:?} leaves the archive")))?;
        for _ in 0..16 {
            if let Some(f) = files.get(&cur) {
                return Ok(f.clone());
            }
            match links.get(&cur) {
                Some(next) => cur = next.clone(),
                None => break,
            }
        }
        Err(bad(format!("{what}: the archive lists {p:?} but does not contain it")))
    };
    let manifest_path = match files.get("manifest.json") {
        Some(p) => p.clone(),
        None if files.contains_key("index.json") => {
            return Err(bad(format!(
                "{what}: this is an OCI image layout without manifest.json, which berth cannot load yet; use an archive written by `docker save`"
            )))
        }
        None => return Err(bad(format!("{what}: manifest.json not found; is this an archive written by `docker save`?"))),
    };
    let raw = std::fs::read(&manifest_path).map_err(|e| EngineError::Internal(format!("{what}: {e}")))?;
    let entries: Vec<ArchiveManifestEntry> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("{what}: manifest.json is not valid: {e}")))?;
    if entries.is_empty() {
        return Err(bad(format!("{what}: manifest.json lists no image")));
    }
    let mut out = Vec::new();
    for e in entries {
        let config_file = lookup(&e.config)?;
        let meta = std::fs::metadata(&config_file).map_err(|x| EngineError::Internal(format!("{what}: {x}")))?;
        if meta.len() > 16 * 1024 * 1024 {
            return Err(bad(format!("{what}: config {} is too large", e.config)));
        }
        let config = std::fs::read(&config_file).map_err(|x| EngineError::Internal(format!("{what}: {x}")))?;
        ImageConfigFile::parse(&config).map_err(|x| bad(format!("{what}: config {} is not an image config: {x}", e.config)))?;
        let layers = e.layers.iter().map(|l| lookup(l)).collect::<Result<Vec<_>>>()?;
        out.push(ArchiveImage { config_path: e.config, config, repo_tags: e.repo_tags.unwrap_or_default(), layers });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::test_tar::make_tar;

    #[test]
    fn reads_docker_save_archives_with_links() {
        let dir = tempfile::tempdir().unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let manifest = br#"[{"Config":"blobs/sha256/cc","RepoTags":["bb:latest","me/x:1"],"Layers":["abc/layer.tar"]}]"#;
        let tar = make_tar(
            &[("manifest.json", manifest), ("blobs/sha256/cc", config), ("blobs/sha256/ll", b"layer bytes")],
            &[("abc/layer.tar", "../blobs/sha256/ll")],
        );
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, tar).unwrap();
        let work = dir.path().join("w");
        std::fs::create_dir(&work).unwrap();
        let images = read_save_archive(&archive, &work).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].config, config.to_vec());
        assert_eq!(images[0].repo_tags, vec!["bb:latest".to_string(), "me/x:1".to_string()]);
        assert_eq!(std::fs::read(&images[0].layers[0]).unwrap(), b"layer bytes");

        // Paths that leave the archive, missing files, no manifest.
        for (entries, links, want) in [
            (vec![("manifest.json", &br#"[{"Config":"../../etc/passwd","Layers":[]}]"#[..])], vec![], "leaves the archive"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![], "does not contain it"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![("c.json", "/etc/passwd")], "does not contain it"),
            (vec![("index.json", &b"{}"[..])], vec![], "OCI image layout"),
            (vec![("x", &b"{}"[..])], vec![], "manifest.json not found"),
        ] {
            std::fs::write(&archive, make_tar(&entries, &links)).unwrap();
            let work = tempfile::tempdir().unwrap();
            let e = read_save_archive(&archive, work.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(clean_archive_path("./a/../b/c").as_deref(), Some("b/c"));
        assert_eq!(clean_archive_path("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean_archive_path("../x"), None);
    }
}
