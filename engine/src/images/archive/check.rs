//! `docker import`: is the upload a tar archive?

use std::path::Path;

use super::{open_tar, tar_error};
use crate::error::{EngineError, Result};

/// Reads a whole tarball to make sure it is one (`docker import`), with a
/// message saying what is wrong when it is not.
pub(crate) fn check_tarball(path: &Path) -> Result<()> {
    let what = "Error processing tar file";
    let reader = open_tar(path, what).map_err(|e| match e {
        EngineError::InvalidParameter(m) => EngineError::Internal(m),
        other => other,
    })?;
    let mut archive = tar::Archive::new(reader);
    let invalid = |e: std::io::Error| {
        EngineError::Internal(format!("{what}: the input is not a tar archive (plain or gzip-compressed): {}", tar_error(&e)))
    };
    let mut count = 0usize;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        entry.path().map_err(invalid)?;
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(invalid)?;
        count += 1;
    }
    if count == 0 {
        return Err(EngineError::Internal(format!("{what}: the archive has no entries")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::test_tar::make_tar;

    #[test]
    fn import_checks_the_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, make_tar(&[("bin/sh", b"x")], &[])).unwrap();
        check_tarball(&p).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &make_tar(&[("a", b"x")], &[])).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        check_tarball(&p).unwrap();
        for (data, want) in [
            (&b"hello\n"[..], "ends inside a 512-byte header block"),
            (&[7u8; 2048][..], "invalid tar header"),
            (&b""[..], "the input is empty"),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..], "xz-compressed"),
        ] {
            std::fs::write(&p, data).unwrap();
            let e = check_tarball(&p).unwrap_err().to_string();
            assert!(e.starts_with("Error processing tar file") && e.contains(want), "{e}");
            assert!(!e.contains('\u{fffd}'), "{e}");
        }
    }
}
