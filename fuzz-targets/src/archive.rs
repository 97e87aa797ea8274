//! `tar`: archives from clients (`docker import`, `docker load` and its
//! layers); `manifest`: the `manifest.json` of a `docker save` archive.

use std::io::Read;

use berth_engine::images::archive::{
    check_stream, open_stream, parse_manifest, walk, ArchiveError, SaveArchiveLimits, TarLimits, WalkOptions,
};

/// Small limits, so that inputs of a few KiB reach each of them.
const LIMITS: TarLimits = TarLimits { path: 256, pax_header: 4096, entries: 64, total: 256 << 10 };

/// The archive's bytes as uploaded (plain, gzip or anything else).
pub fn tar(data: &[u8]) {
    // `docker import`: the whole check, with the diffID.
    match check_stream(data, &WalkOptions { limits: LIMITS, spent: 0, digest: true }) {
        Ok(s) => {
            assert!(s.entries <= LIMITS.entries, "{} entries", s.entries);
            assert!(s.bytes <= LIMITS.total, "{} bytes", s.bytes);
            assert!(s.digest.is_some_and(|d| d.len() == 7 + 64));
        }
        Err(e) => check_error(&e),
    }
    // A visitor reading some of each body, as `docker load` does, with the
    // budget mostly spent by earlier layers.
    let spent = LIMITS.total - (64 << 10);
    let Ok(stream) = open_stream(data) else { return };
    // Indexes count PAX global headers too, which are not visited.
    let (mut seen, mut next) = (0u64, 0u64);
    let walked = walk(stream, &WalkOptions { limits: LIMITS, spent, digest: false }, |entry, body| {
        assert!(entry.index >= next, "entry {} after entry {}", entry.index, next.wrapping_sub(1));
        (seen, next) = (seen + 1, entry.index + 1);
        assert!(entry.path.len() as u64 <= LIMITS.path, "a path of {} bytes", entry.path.len());
        assert!(entry.link.as_ref().is_none_or(|l| l.len() as u64 <= LIMITS.path));
        let mut head = Vec::new();
        body.take(1000).read_to_end(&mut head).map_err(|e| ArchiveError::Io(e.to_string()))?;
        assert!(head.len() as u64 <= entry.size, "{} bytes read of a {}-byte body", head.len(), entry.size);
        Ok(())
    });
    match walked {
        Ok(s) => {
            assert!(seen <= s.entries && next <= s.entries && s.entries <= LIMITS.entries);
            assert!(spent + s.bytes <= LIMITS.total);
        }
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &ArchiveError) {
    let message = e.to_string();
    assert!(!message.is_empty());
    if let ArchiveError::Limit { size, limit, .. } = e {
        assert!(size > limit, "{message}");
    }
}

/// The bytes of `manifest.json`.
pub fn manifest(data: &[u8]) {
    let limits = SaveArchiveLimits { manifest: 4 << 10, layers: 16, ..SaveArchiveLimits::DEFAULT };
    match parse_manifest(data, &limits) {
        Ok(images) => {
            assert!(!images.is_empty());
            assert!(images.iter().all(|i| i.layers.len() as u64 <= limits.layers));
        }
        Err(e) => check_error(&e),
    }
}
