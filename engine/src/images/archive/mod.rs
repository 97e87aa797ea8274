//! Reading tar archives from clients (`docker import`, `docker load`).
//!
//! Everything here treats its input as hostile: an archive is read as a
//! stream, once, through [`walk`], which holds at most one bounded header
//! in memory and refuses an archive as soon as it goes over one of the
//! [`TarLimits`] (a GNU long name or a PAX header that is too large, too
//! many entries, too many decompressed bytes). The `tar` crate's own
//! reader is not used on client input: it reads long names and PAX headers
//! whole, whatever size they announce.
//!
//! - [`open_stream`]: plain or gzip (other compressions are refused);
//! - [`walk`]: the capped tar walker (`walk.rs`);
//! - `check.rs`: `docker import`'s check of the rootfs tarball and the
//!   check (and diffID) of each layer of a `docker load`;
//! - `save_archive.rs`: unpacking a `docker save` archive and reading its
//!   `manifest.json`.
//!
//! [`walk`], [`open_stream`], [`check_stream`] and [`parse_manifest`] are
//! pure (a reader or bytes in, a value or an [`ArchiveError`] out): they
//! are what fuzz targets call.

use std::io::{BufReader, Read};
use std::path::Path;

mod check;
mod save_archive;
mod walk;

pub use check::check_stream;
pub(crate) use check::{check_layers, check_tarball};
pub use save_archive::{parse_manifest, ManifestEntry, SaveArchiveLimits};
pub(crate) use save_archive::read_save_archive;
pub use walk::{walk, Entry, Summary, WalkOptions};

/// Bounds on one tar stream from a client. Every archive berth reads from a
/// client (the rootfs of `docker import`, the archive of `docker load` and
/// each layer in it) is walked under these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarLimits {
    /// Bytes of one path or link target, whether it comes from the header,
    /// a GNU long-name / long-link entry (`L`, `K`) or a PAX record.
    pub path: u64,
    /// Bytes of one PAX extended header (`x`, `g`).
    pub pax_header: u64,
    /// Entries (members; PAX global headers count too).
    pub entries: u64,
    /// Bytes of the decompressed stream, headers, padding and anything
    /// after the end-of-archive marker included.
    pub total: u64,
}

impl TarLimits {
    /// The limits berth applies (see the README, "Limits"):
    /// 8 KiB paths (Linux cannot create a longer one: `PATH_MAX` is 4 KiB),
    /// 1 MiB PAX headers (what Go's `archive/tar`, hence containerd,
    /// accepts; room for extended attributes and ACLs), a million entries
    /// (large real layers have a few hundred thousand files), 64 GiB
    /// decompressed (the largest real images are a few tens of GiB).
    pub const DEFAULT: TarLimits = TarLimits { path: 8 << 10, pax_header: 1 << 20, entries: 1_000_000, total: 64 << 30 };
}

impl Default for TarLimits {
    fn default() -> Self {
        TarLimits::DEFAULT
    }
}

/// Which limit an archive went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// A GNU long name or long link body.
    LongName,
    /// A path or link target (any source).
    Path,
    /// A PAX extended header.
    PaxHeader,
    /// The number of entries.
    Entries,
    /// The decompressed size.
    Total,
    /// `manifest.json` of a `docker save` archive.
    Manifest,
    /// `repositories` of a `docker save` archive.
    Repositories,
    /// An image config in a `docker save` archive.
    Config,
    /// The names of the files in a `docker save` archive, added up.
    Names,
    /// The layers of one image.
    Layers,
}

impl Cap {
    /// What is measured, in words.
    fn subject(self) -> &'static str {
        match self {
            Cap::LongName => "a GNU long-name entry",
            Cap::Path => "an entry's path",
            Cap::PaxHeader => "a PAX extended header",
            Cap::Entries => "the number of entries",
            Cap::Total => "the decompressed archive",
            Cap::Manifest => "manifest.json",
            Cap::Repositories => "the repositories file",
            Cap::Config => "an image config",
            Cap::Names => "the archive's file names, added up,",
            Cap::Layers => "the number of layers of one image",
        }
    }

    /// Counted in entries or layers rather than bytes.
    fn is_count(self) -> bool {
        matches!(self, Cap::Entries | Cap::Layers)
    }
}

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// Over one of the limits; `size` is what was seen or announced (at
    /// least `limit + 1`).
    #[error("{} is {}, over berth's limit of {}", .cap.subject(), amount(*.cap, *.size), amount(*.cap, *.limit))]
    Limit { cap: Cap, size: u64, limit: u64 },
    /// The tar structure is broken (bad header, cut short, undecodable).
    #[error("{0}")]
    NotTar(String),
    /// The input is not what berth can take (empty, another compression,
    /// a `docker save` archive with something missing or wrong).
    #[error("{0}")]
    Invalid(String),
    /// Reading the input or writing berth's own files failed.
    #[error("{0}")]
    Io(String),
}

/// `17179869184` → `16 GiB`, `8192` → `8 KiB`, `1536` → `1.5 KiB (1536
/// bytes)`, `1000001` (entries).
fn amount(cap: Cap, n: u64) -> String {
    if cap.is_count() {
        return n.to_string();
    }
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit} ({n} bytes)", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// The compression of a stream by its magic bytes, if any.
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

/// The tar stream of `input`: as is, or gunzipped. Empty input and other
/// compressions are refused (`Invalid`, with a hint).
pub fn open_stream<'a, R: Read + 'a>(mut input: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut input, &mut magic).map_err(|e| ArchiveError::Io(format!("reading the input: {e}")))?;
    if n == 0 {
        return Err(ArchiveError::Invalid("the input is empty, expected a tar archive".into()));
    }
    let whole = BufReader::with_capacity(64 * 1024, std::io::Cursor::new(magic[..n].to_vec()).chain(input));
    match compression(&magic[..n]) {
        None => Ok(Box::new(whole)),
        Some("gzip") => Ok(Box::new(flate2::read::MultiGzDecoder::new(whole))),
        Some(other) => Err(ArchiveError::Invalid(format!(
            "the input is {other}-compressed, which berth cannot read; decompress it (or use gzip) and try again"
        ))),
    }
}

/// [`open_stream`] of a file.
pub(crate) fn open_file(path: &Path) -> Result<Box<dyn Read>, ArchiveError> {
    let file = std::fs::File::open(path).map_err(|e| ArchiveError::Io(format!("opening {}: {e}", path.display())))?;
    open_stream(file)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, data).unwrap();
        gz.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(input: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::new();
        open_stream(input)?.read_to_end(&mut out).map_err(|e| ArchiveError::Io(e.to_string()))?;
        Ok(out)
    }

    #[test]
    fn opens_plain_and_gzip_and_refuses_the_rest() {
        assert_eq!(opened(b"plain bytes").unwrap(), b"plain bytes");
        assert_eq!(opened(b"ab").unwrap(), b"ab");
        assert_eq!(opened(&test_tar::gzip(b"zipped")).unwrap(), b"zipped");
        assert!(opened(b"").unwrap_err().to_string().contains("the input is empty"));
        let e = opened(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1]).unwrap_err().to_string();
        assert!(e.contains("xz-compressed"), "{e}");
        // A reader that hands out one byte at a time still gets its magic seen.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let gz = test_tar::gzip(b"slowly");
        let mut out = Vec::new();
        open_stream(Trickle(&gz)).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"slowly");
    }

    #[test]
    fn limit_errors_name_the_cap_in_words() {
        let e = ArchiveError::Limit { cap: Cap::LongName, size: 16 << 30, limit: 8 << 10 };
        assert_eq!(e.to_string(), "a GNU long-name entry is 16 GiB, over berth's limit of 8 KiB");
        let e = ArchiveError::Limit { cap: Cap::Entries, size: 1_000_001, limit: 1_000_000 };
        assert_eq!(e.to_string(), "the number of entries is 1000001, over berth's limit of 1000000");
        assert_eq!(amount(Cap::Total, 1536), "1.5 KiB (1536 bytes)");
        assert_eq!(amount(Cap::PaxHeader, 1 << 40), "1 TiB");
        assert_eq!(amount(Cap::Total, 100), "100 bytes");
    }
}
