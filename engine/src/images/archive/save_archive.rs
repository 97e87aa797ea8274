//! `docker load`: unpacking a `docker save` archive and reading its
//! `manifest.json`.
//!
//! The archive is walked once ([`walk`]): regular files go to flat names
//! (`f<index>`) under the caller's scratch directory, so nothing in the
//! archive chooses a path on disk; symlinks and hard links are kept as a
//! table and followed inside the archive. `manifest.json` and
//! `repositories` announcing more than their limit are refused at their
//! header; an image config is refused by its size before it is read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_containerd::oci::ImageConfigFile;

use super::walk::{walk, WalkOptions};
use super::{open_file, ArchiveError, Cap, TarLimits};

/// Bounds on a `docker save` archive, on top of its [`TarLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveArchiveLimits {
    /// The archive's tar stream.
    pub tar: TarLimits,
    /// Bytes of `manifest.json`.
    pub manifest: u64,
    /// Bytes of `repositories` (berth does not read it; it is bounded like
    /// `manifest.json` all the same).
    pub repositories: u64,
    /// Bytes of one image config (what berth can read back from
    /// containerd, [`berth_containerd::content::MAX_JSON_BLOB`]).
    pub config: u64,
    /// Bytes of the names of the archive's files and links, added up (the
    /// table kept in memory while the archive is unpacked).
    pub names: u64,
    /// Layers of one image.
    pub layers: u64,
}

impl SaveArchiveLimits {
    /// berth's limits (see the README, "Limits"): the tar limits with at
    /// most 100,000 entries (an archive has about four per layer), 8 MiB
    /// for `manifest.json` and `repositories`, 16 MiB per config, 16 MiB
    /// of names, 1,000 layers per image (overlayfs mounts far fewer).
    pub const DEFAULT: SaveArchiveLimits = SaveArchiveLimits {
        tar: TarLimits { entries: 100_000, ..TarLimits::DEFAULT },
        manifest: 8 << 20,
        repositories: 8 << 20,
        config: berth_containerd::content::MAX_JSON_BLOB as u64,
        names: 16 << 20,
        layers: 1000,
    };
}

impl Default for SaveArchiveLimits {
    fn default() -> Self {
        SaveArchiveLimits::DEFAULT
    }
}

/// One image of a `docker save` archive, with its files unpacked.
#[derive(Debug)]
pub(crate) struct ArchiveImage {
    pub(crate) config_path: String,
    pub(crate) config: Vec<u8>,
    pub(crate) repo_tags: Vec<String>,
    /// Unpacked layer files, base first.
    pub(crate) layers: Vec<PathBuf>,
    /// Their names in the archive (as `manifest.json` gives them).
    pub(crate) layer_names: Vec<String>,
}

/// One image of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// Parses `manifest.json` (pure): at least one image, at most
/// `limits.layers` layers each.
pub fn parse_manifest(raw: &[u8], limits: &SaveArchiveLimits) -> Result<Vec<ManifestEntry>, ArchiveError> {
    if raw.len() as u64 > limits.manifest {
        return Err(ArchiveError::Limit { cap: Cap::Manifest, size: raw.len() as u64, limit: limits.manifest });
    }
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(raw).map_err(|e| ArchiveError::Invalid(format!("manifest.json is not valid: {e}")))?;
    if entries.is_empty() {
        return Err(ArchiveError::Invalid("manifest.json lists no image".into()));
    }
    for e in &entries {
        if e.layers.len() as u64 > limits.layers {
            return Err(ArchiveError::Limit { cap: Cap::Layers, size: e.layers.len() as u64, limit: limits.layers });
        }
    }
    Ok(entries)
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

/// The files of an unpacked archive: archive name → file on disk, and
/// links (archive name → archive name).
#[derive(Default)]
struct Unpacked {
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
}

impl Unpacked {
    /// The file an archive path names, following links (16 hops at most).
    fn lookup(&self, p: &str) -> Result<PathBuf, ArchiveError> {
        let mut cur = clean_archive_path(p).ok_or_else(|| ArchiveError::Invalid(format!("path {p:?} leaves the archive")))?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&cur) {
                return Ok(f.clone());
            }
            match self.links.get(&cur) {
                Some(next) => cur = next.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Invalid(format!("the archive lists {p:?} but does not contain it")))
    }
}

/// Unpacks the archive at `archive` (plain or gzip) under `work`.
fn unpack(archive: &Path, work: &Path, limits: &SaveArchiveLimits) -> Result<Unpacked, ArchiveError> {
    let mut out = Unpacked::default();
    let mut names = 0u64;
    let io = |e: std::io::Error| ArchiveError::Io(format!("unpacking into {}: {e}", work.display()));
    let mut buf = vec![0u8; 64 * 1024];
    walk(open_file(archive)?, &WalkOptions::new(limits.tar), |entry, body| {
        let raw = String::from_utf8_lossy(&entry.path);
        let Some(name) = clean_archive_path(&raw).filter(|n| !n.is_empty()) else { return Ok(()) };
        let mut count_name = |extra: usize| {
            names += (name.len() + extra) as u64;
            if names > limits.names {
                return Err(ArchiveError::Limit { cap: Cap::Names, size: names, limit: limits.names });
            }
            Ok(())
        };
        match entry.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let cap = match name.as_str() {
                    "manifest.json" => Some((Cap::Manifest, limits.manifest)),
                    "repositories" => Some((Cap::Repositories, limits.repositories)),
                    _ => None,
                };
                if let Some((cap, limit)) = cap.filter(|(_, limit)| entry.size > *limit) {
                    return Err(ArchiveError::Limit { cap, size: entry.size, limit });
                }
                count_name(0)?;
                // Flat names on disk: no directories, nothing to escape.
                let dest = work.join(format!("f{}", entry.index));
                let mut f = std::fs::File::create(&dest).map_err(io)?;
                // Read errors are the input's; write errors are berth's.
                loop {
                    let n = match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ArchiveError::NotTar(format!("the input cannot be read: {e}"))),
                    };
                    f.write_all(&buf[..n]).map_err(io)?;
                }
                out.files.insert(name, dest);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let resolved = if entry.kind == tar::EntryType::Symlink && !target.starts_with('/') {
                    let parent = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    clean_archive_path(&format!("{parent}/{target}"))
                } else {
                    clean_archive_path(&target)
                };
                if let Some(r) = resolved {
                    count_name(r.len())?;
                    out.links.insert(name, r);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// Unpacks a `docker save` archive under `work` and reads its
/// `manifest.json` and the configs it names (blocking).
pub(crate) fn read_save_archive(archive: &Path, work: &Path, limits: &SaveArchiveLimits) -> Result<Vec<ArchiveImage>, ArchiveError> {
    let unpacked = unpack(archive, work, limits)?;
    let manifest_path = match unpacked.files.get("manifest.json") {
        Some(p) => p.clone(),
        None if unpacked.files.contains_key("index.json") => {
            return Err(ArchiveError::Invalid(
                "this is an OCI image layout without manifest.json, which berth cannot load yet; use an archive written by `docker save`".into(),
            ))
        }
        None => return Err(ArchiveError::Invalid("manifest.json not found; is this an archive written by `docker save`?".into())),
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| ArchiveError::Io(format!("reading {}: {e}", p.display())));
    let entries = parse_manifest(&read(&manifest_path)?, limits)?;
    let mut out = Vec::new();
    for e in entries {
        let config_file = unpacked.lookup(&e.config)?;
        let size = std::fs::metadata(&config_file).map_err(|x| ArchiveError::Io(format!("reading {}: {x}", config_file.display())))?.len();
        if size > limits.config {
            return Err(ArchiveError::Limit { cap: Cap::Config, size, limit: limits.config });
        }
        let config = read(&config_file)?;
        ImageConfigFile::parse(&config).map_err(|x| ArchiveError::Invalid(format!("config {} is not an image config: {x}", e.config)))?;
        let layers = e.layers.iter().map(|l| unpacked.lookup(l)).collect::<Result<Vec<_>, _>>()?;
        out.push(ArchiveImage { config_path: e.config, config, repo_tags: e.repo_tags.unwrap_or_default(), layers, layer_names: e.layers });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::test_tar::make_tar;

    fn read(archive: &Path, work: &Path) -> Result<Vec<ArchiveImage>, ArchiveError> {
        read_save_archive(archive, work, &SaveArchiveLimits::DEFAULT)
    }

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
        let images = read(&archive, &work).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].config, config.to_vec());
        assert_eq!(images[0].repo_tags, vec!["bb:latest".to_string(), "me/x:1".to_string()]);
        assert_eq!(std::fs::read(&images[0].layers[0]).unwrap(), b"layer bytes");
        assert_eq!(images[0].layer_names, vec!["abc/layer.tar".to_string()]);

        // Paths that leave the archive, missing files, no manifest.
        for (entries, links, want) in [
            (vec![("manifest.json", &br#"[{"Config":"../../etc/passwd","Layers":[]}]"#[..])], vec![], "leaves the archive"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![], "does not contain it"),
            (vec![("manifest.json", &br#"[{"Config":"c.json","Layers":[]}]"#[..])], vec![("c.json", "/etc/passwd")], "does not contain it"),
            (vec![("index.json", &b"{}"[..])], vec![], "OCI image layout"),
            (vec![("x", &b"{}"[..])], vec![], "manifest.json not found"),
            (vec![("manifest.json", &b"[]"[..])], vec![], "lists no image"),
        ] {
            std::fs::write(&archive, make_tar(&entries, &links)).unwrap();
            let work = tempfile::tempdir().unwrap();
            let e = read(&archive, work.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn json_files_over_their_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        let limits = SaveArchiveLimits { manifest: 100, repositories: 10, config: 50, names: 64, ..SaveArchiveLimits::DEFAULT };
        let big = vec![b' '; 101];
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        type Files<'a> = Vec<(&'a str, &'a [u8])>;
        let cases: Vec<(Files, Cap)> = vec![
            (vec![("manifest.json", &big)], Cap::Manifest),
            (vec![("repositories", &big[..11])], Cap::Repositories),
            (vec![("manifest.json", br#"[{"Config":"c","Layers":[]}]"#), ("c", config)], Cap::Config),
            (vec![(a.as_str(), b""), (b.as_str(), b"")], Cap::Names),
        ];
        for (entries, cap) in cases {
            std::fs::write(&archive, make_tar(&entries, &[])).unwrap();
            let work = tempfile::tempdir().unwrap();
            let e = read_save_archive(&archive, work.path(), &limits).unwrap_err();
            assert!(matches!(e, ArchiveError::Limit { cap: c, .. } if c == cap), "{cap:?}: {e}");
        }
        let many = format!(r#"[{{"Config":"c","Layers":[{}]}}]"#, vec!["\"l\""; 1001].join(","));
        let e = parse_manifest(many.as_bytes(), &SaveArchiveLimits::DEFAULT).unwrap_err();
        assert_eq!(e, ArchiveError::Limit { cap: Cap::Layers, size: 1001, limit: 1000 });
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(clean_archive_path("./a/../b/c").as_deref(), Some("b/c"));
        assert_eq!(clean_archive_path("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean_archive_path("../x"), None);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            /// Any bytes: a manifest or an error, never a panic.
            #[test]
            fn manifests_from_anything(raw in prop::collection::vec(any::<u8>(), 0..512), text in "[\\[\\]{}\",:a-zA-Z0-9 ]{0,200}") {
                let limits = SaveArchiveLimits { layers: 3, ..SaveArchiveLimits::DEFAULT };
                for input in [raw.as_slice(), text.as_bytes()] {
                    if let Ok(m) = parse_manifest(input, &limits) {
                        prop_assert!(!m.is_empty());
                        prop_assert!(m.iter().all(|e| e.layers.len() <= 3));
                    }
                }
            }

            /// Manifests as docker save writes them read back.
            #[test]
            fn manifests_round_trip(images in prop::collection::vec(("[a-f0-9]{1,64}\\.json", prop::option::of(prop::collection::vec("[a-z]{1,10}:[a-z0-9]{1,5}", 0..3)), prop::collection::vec("[a-f0-9]{1,64}/layer\\.tar", 0..4)), 1..4)) {
                let json: Vec<serde_json::Value> = images.iter().map(|(c, t, l)| serde_json::json!({ "Config": c, "RepoTags": t, "Layers": l })).collect();
                let m = parse_manifest(&serde_json::to_vec(&json).unwrap(), &SaveArchiveLimits::DEFAULT).unwrap();
                let got: Vec<(String, Option<Vec<String>>, Vec<String>)> = m.into_iter().map(|e| (e.config, e.repo_tags, e.layers)).collect();
                prop_assert_eq!(got, images);
            }

            /// Unpacking any bytes under a scratch directory: an answer,
            /// and nothing written outside it.
            #[test]
            fn unpacking_anything(data in prop::collection::vec(any::<u8>(), 0..3000)) {
                let dir = tempfile::tempdir().unwrap();
                let archive = dir.path().join("a.tar");
                std::fs::write(&archive, &data).unwrap();
                let work = dir.path().join("w");
                std::fs::create_dir(&work).unwrap();
                let limits = SaveArchiveLimits { tar: TarLimits { entries: 8, total: 8192, ..TarLimits::DEFAULT }, ..SaveArchiveLimits::DEFAULT };
                let _ = read_save_archive(&archive, &work, &limits);
                let mut top: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
                top.sort();
                prop_assert_eq!(top, vec!["a.tar".to_string(), "w".to_string()]);
                for f in std::fs::read_dir(&work).unwrap() {
                    let f = f.unwrap();
                    prop_assert!(f.file_type().unwrap().is_file());
                    prop_assert!(f.file_name().to_string_lossy().starts_with('f'));
                }
            }
        }
    }
}
