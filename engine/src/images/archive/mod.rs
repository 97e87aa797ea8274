//! Reading tar archives from clients (`docker import`, `docker load`):
//! opening them (plain or gzip), checking an import, reading a
//! `docker save` archive.

use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{EngineError, Result};

mod check;
mod save_archive;

pub(crate) use check::check_tarball;
pub(crate) use save_archive::read_save_archive;

/// The compression of a file by its magic bytes, if any.
fn compression(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    }
}

/// Opens a plain or gzip tar; other compressions are refused with a hint.
pub(crate) fn open_tar(path: &Path, what: &str) -> Result<Box<dyn Read>> {
    let ctx = |e: std::io::Error| EngineError::Internal(format!("reading {what}: {e}"));
    let mut file = std::fs::File::open(path).map_err(ctx)?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut file, &mut magic).map_err(ctx)?;
    if n == 0 {
        return Err(EngineError::InvalidParameter(format!("{what}: the input is empty, expected a tar archive")));
    }
    let file = std::fs::File::open(path).map_err(ctx)?;
    match compression(&magic[..n]) {
        None => Ok(Box::new(BufReader::new(file))),
        Some("gzip") => Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))),
        Some(other) => Err(EngineError::InvalidParameter(format!(
            "{what}: the input is {other}-compressed, which berth cannot read; decompress it (or use gzip) and try again"
        ))),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A tar reading error in words (the tar crate quotes raw header bytes).
pub(crate) fn tar_error(e: &std::io::Error) -> String {
    let m = e.to_string();
    if m.contains("failed to read entire block") {
        "invalid tar header: the data ends inside a 512-byte header block".into()
    } else if m.contains("cksum") || m.contains("checksum") {
        "invalid tar header: bad header checksum".into()
    } else if m.contains("numeric field") {
        "invalid tar header: a numeric header field is not a number".into()
    } else {
        let clean: String = m.chars().map(|c| if c.is_control() || c == '\u{fffd}' { '?' } else { c }).take(200).collect();
        clean
    }
}

#[cfg(test)]
pub(crate) mod test_tar {
    /// A ustar archive of regular files and symlinks.
    pub(crate) fn make_tar(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, *data).unwrap();
        }
        for (p, target) in links {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, p, target).unwrap();
        }
        b.into_inner().unwrap()
    }
}
