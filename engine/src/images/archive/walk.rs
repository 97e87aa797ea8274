//! The capped tar walker: reads a tar stream once, front to back, and hands
//! each member to a visitor with a reader of its body.
//!
//! Memory: one 512-byte block, plus at most one GNU long name, one long
//! link (each at most `TarLimits::path`) and one PAX header (at most
//! `TarLimits::pax_header`) for the member they describe. A header that
//! announces more is refused before its body is read; an entry whose
//! announced size would take the stream past `TarLimits::total` too.
//!
//! Interpretation follows Go's `archive/tar` (what containerd applies
//! layers with): a PAX `path`/`linkpath`/`size` wins over a GNU long
//! name/link, which wins over the header; a header checksum may be the
//! unsigned or the signed byte sum; the first all-zero block ends the
//! archive. GNU sparse members are walked (their extension blocks
//! skipped); their body is the stored data.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::{ArchiveError, Cap, TarLimits};

const BLOCK: usize = 512;

/// One member of an archive, as a visitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position among the members, from 0.
    pub index: u64,
    pub kind: tar::EntryType,
    /// The member's path, raw bytes (PAX `path`, else the GNU long name,
    /// else the header's, ustar prefix included).
    pub path: Vec<u8>,
    /// The link target of a symlink or hard link (same precedence).
    pub link: Option<Vec<u8>>,
    /// Body size in bytes.
    pub size: u64,
    /// Permission bits (with setuid, setgid, sticky), owner and
    /// modification time (seconds): PAX `uid`/`gid`/`mtime`, else the
    /// header's; 0 where a header field is not a number.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
}

/// What a walk saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Members (and PAX global headers).
    pub entries: u64,
    /// Bytes of the decompressed stream, trailing data included.
    pub bytes: u64,
    /// `sha256:<hex>` of those bytes, when asked for (a layer's diffID).
    pub digest: Option<String>,
}

/// How to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkOptions {
    pub limits: TarLimits,
    /// Bytes already used of `limits.total` by earlier streams sharing the
    /// budget (the layers of one `docker load`).
    pub spent: u64,
    /// Compute [`Summary::digest`].
    pub digest: bool,
}

impl WalkOptions {
    pub fn new(limits: TarLimits) -> Self {
        WalkOptions { limits, spent: 0, digest: false }
    }
}

/// Walks the tar stream `input` (already decompressed, see
/// [`super::open_stream`]) under `opts`, calling `visit` for every member
/// with a reader of its body (at most `Entry::size` bytes; what the visitor
/// leaves unread is skipped). After the end-of-archive block the rest of
/// the stream is read (and counted) too. Pure: no I/O but `input` and what
/// the visitor does.
pub fn walk<R: Read>(
    input: R,
    opts: &WalkOptions,
    mut visit: impl FnMut(&Entry, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<Summary, ArchiveError> {
    let mut src = Source {
        inner: input,
        read: 0,
        room: opts.limits.total.saturating_sub(opts.spent),
        over: false,
        hasher: opts.digest.then(Sha256::new),
    };
    let over = |src: &Source<R>| ArchiveError::Limit { cap: Cap::Total, size: opts.spent + src.read, limit: opts.limits.total };
    let entries = match members(&mut src, opts, &mut visit) {
        Ok(n) => n,
        Err(_) if src.over => return Err(over(&src)),
        Err(e) => return Err(e),
    };
    // Trailing data still costs a decompression: count it. Other errors
    // there (a gzip member cut short after the archive) do not matter.
    let mut sink = [0u8; 8192];
    loop {
        match src.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) if src.over => return Err(over(&src)),
            Err(_) => break,
        }
    }
    Ok(Summary { entries, bytes: src.read, digest: src.hasher.map(|h| format!("sha256:{}", hex::encode(h.finalize()))) })
}

/// The decompressed stream: counted, optionally hashed, refused past its
/// room (one byte over is let through, so going over is seen).
struct Source<R> {
    inner: R,
    read: u64,
    room: u64,
    over: bool,
    hasher: Option<Sha256>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over {
            return Err(io::Error::other("over the size limit"));
        }
        let allowed = self.room.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.room {
            self.over = true;
            return Err(io::Error::other("over the size limit"));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The extension headers seen before a member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// The PAX records berth uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Pax {
    pub(super) path: Option<Vec<u8>>,
    pub(super) linkpath: Option<Vec<u8>>,
    pub(super) size: Option<u64>,
    pub(super) uid: Option<u64>,
    pub(super) gid: Option<u64>,
    pub(super) mtime: Option<i64>,
}

fn malformed(m: impl Into<String>) -> ArchiveError {
    ArchiveError::NotTar(m.into())
}

/// A read error in words: decompression errors come through here.
fn read_error(e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return malformed("the archive ends in the middle of an entry");
    }
    let clean: String = e.to_string().chars().map(|c| if c.is_control() { '?' } else { c }).take(200).collect();
    malformed(format!("the input cannot be read: {clean}"))
}

/// `path` for messages: lossy, control characters replaced, shortened.
fn shown(path: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(path).chars().map(|c| if c.is_control() { '?' } else { c }).take(200).collect();
    format!("{s:?}")
}

/// Reads one block: `false` at a clean end of input.
fn read_block(src: &mut impl Read, block: &mut [u8; BLOCK]) -> Result<bool, ArchiveError> {
    let mut n = 0;
    while n < BLOCK {
        match src.read(&mut block[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err(malformed("invalid tar header: the data ends inside a 512-byte header block")),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    Ok(true)
}

/// The checksum field against the block (unsigned or signed sum, as Go).
fn checksum_ok(block: &[u8; BLOCK]) -> Result<(), ArchiveError> {
    let field = &block[148..156];
    let text: String = field.iter().map(|&b| b as char).collect();
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    let want = u32::from_str_radix(digits, 8).map_err(|_| malformed("invalid tar header: the checksum field is not a number"))?;
    let mut unsigned = 0u32;
    let mut signed = 0i32;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    if want == unsigned || i64::from(want) == i64::from(signed) {
        Ok(())
    } else {
        Err(malformed("invalid tar header: bad header checksum"))
    }
}

/// Reads `n` bytes and discards them; `false` if the input ends first.
fn skip(src: &mut impl Read, n: u64) -> Result<bool, ArchiveError> {
    let copied = io::copy(&mut src.take(n), &mut io::sink()).map_err(read_error)?;
    Ok(copied == n)
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The body of an extension header (its size already checked) and its
/// padding.
fn read_small_body(src: &mut impl Read, size: u64) -> Result<Vec<u8>, ArchiveError> {
    let mut body = Vec::with_capacity(size as usize);
    src.take(size).read_to_end(&mut body).map_err(read_error)?;
    if body.len() as u64 != size || !skip(src, padding(size))? {
        return Err(malformed("the archive ends in the middle of an extension header"));
    }
    Ok(body)
}

/// A GNU long name/link: up to its first NUL.
fn until_nul(mut b: Vec<u8>) -> Vec<u8> {
    if let Some(i) = b.iter().position(|&c| c == 0) {
        b.truncate(i);
    }
    b
}

/// Parses PAX records (`<len> <key>=<value>\n`, `len` counting the whole
/// record), keeping `path`, `linkpath` and `size`. Values may hold
/// newlines. Pure.
pub(super) fn parse_pax(mut body: &[u8]) -> Result<Pax, ArchiveError> {
    let bad = || malformed("invalid PAX extended header: a record is not `<length> <key>=<value>`");
    let mut pax = Pax::default();
    while !body.is_empty() {
        let space = body.iter().take(20).position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&body[..space]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if len <= space + 1 || len > body.len() || body[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &body[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').filter(|&i| i > 0).ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => {
                let s = std::str::from_utf8(value).ok().filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
                pax.size = Some(s.and_then(|s| s.parse().ok()).ok_or_else(|| malformed("invalid PAX extended header: size is not a number"))?);
            }
            b"uid" | b"gid" | b"mtime" => {
                // mtime may have a fraction: whole seconds are kept.
                let s = std::str::from_utf8(value).ok().map(|s| s.split('.').next().unwrap_or(""));
                let n: Option<i64> = s.and_then(|s| s.parse().ok());
                match key {
                    b"uid" => pax.uid = n.and_then(|n| u64::try_from(n).ok()),
                    b"gid" => pax.gid = n.and_then(|n| u64::try_from(n).ok()),
                    _ => pax.mtime = n,
                }
            }
            _ => {}
        }
        body = &body[len..];
    }
    Ok(pax)
}

/// Walks the members; returns their number.
fn members<R: Read>(
    src: &mut Source<R>,
    opts: &WalkOptions,
    visit: &mut impl FnMut(&Entry, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<u64, ArchiveError> {
    let limits = &opts.limits;
    let mut block = [0u8; BLOCK];
    let mut count = 0u64;
    let mut pending = Pending::default();
    loop {
        if !read_block(src, &mut block)? || block.iter().all(|&b| b == 0) {
            if !pending.is_empty() {
                return Err(malformed("the archive ends after an extension header, without the entry it describes"));
            }
            return Ok(count);
        }
        checksum_ok(&block)?;
        let header = tar::Header::from_byte_slice(&block);
        let kind = header.entry_type();
        let size = header.entry_size().map_err(|_| malformed("invalid tar header: the size field is not a number"))?;
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                if size > limits.path {
                    return Err(ArchiveError::Limit { cap: Cap::LongName, size, limit: limits.path });
                }
                let slot = if kind == tar::EntryType::GNULongName { &mut pending.long_name } else { &mut pending.long_link };
                if slot.is_some() {
                    return Err(malformed("two GNU long-name entries describe the same entry"));
                }
                *slot = Some(until_nul(read_small_body(src, size)?));
                continue;
            }
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
                if size > limits.pax_header {
                    return Err(ArchiveError::Limit { cap: Cap::PaxHeader, size, limit: limits.pax_header });
                }
                let body = read_small_body(src, size)?;
                let pax = parse_pax(&body)?;
                if kind == tar::EntryType::XGlobalHeader {
                    // Applies to every later entry; berth needs none of it.
                    count += 1;
                    if count > limits.entries {
                        return Err(ArchiveError::Limit { cap: Cap::Entries, size: count, limit: limits.entries });
                    }
                    continue;
                }
                if pending.pax.is_some() {
                    return Err(malformed("two PAX headers describe the same entry"));
                }
                pending.pax = Some(pax);
                continue;
            }
            _ => {}
        }
        let Pending { long_name, long_link, pax } = std::mem::take(&mut pending);
        let pax = pax.unwrap_or_default();
        let size = pax.size.unwrap_or(size);
        count += 1;
        if count > limits.entries {
            return Err(ArchiveError::Limit { cap: Cap::Entries, size: count, limit: limits.entries });
        }
        let path = pax.path.or(long_name).unwrap_or_else(|| header.path_bytes().into_owned());
        let link = pax.linkpath.or(long_link).or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        for p in std::iter::once(&path).chain(link.as_ref()) {
            if p.len() as u64 > limits.path {
                return Err(ArchiveError::Limit { cap: Cap::Path, size: p.len() as u64, limit: limits.path });
            }
        }
        let mode = header.mode().unwrap_or(0) & 0o7777;
        let uid = pax.uid.or_else(|| header.uid().ok()).unwrap_or(0);
        let gid = pax.gid.or_else(|| header.gid().ok()).unwrap_or(0);
        let mtime = pax.mtime.or_else(|| header.mtime().ok().map(|m| m as i64)).unwrap_or(0);
        if kind == tar::EntryType::GNUSparse && block[482] != 0 {
            // Sparse map extension blocks, each saying whether another follows.
            loop {
                if !read_block(src, &mut block)? {
                    return Err(malformed("the archive ends inside a sparse map"));
                }
                if block[504] == 0 {
                    break;
                }
            }
        }
        let used = opts.spent.saturating_add(src.read);
        if used.saturating_add(size) > limits.total {
            return Err(ArchiveError::Limit { cap: Cap::Total, size: used.saturating_add(size), limit: limits.total });
        }
        let entry = Entry {
            index: count - 1,
            kind,
            path,
            link,
            size,
            mode,
            uid,
            gid,
            mtime,
        };
        let mut body = (&mut *src).take(size);
        visit(&entry, &mut body)?;
        io::copy(&mut body, &mut io::sink()).map_err(read_error)?;
        if body.limit() != 0 || !skip(src, padding(size))? {
            return Err(malformed(format!("the archive ends in the middle of entry {}", shown(&entry.path))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::check_stream;
    use crate::images::archive::test_tar::{gzip, make_tar};

    fn small() -> TarLimits {
        TarLimits { path: 256, pax_header: 4096, entries: 100, total: 1 << 20 }
    }

    fn list(data: &[u8], limits: TarLimits) -> Result<Vec<(String, u64)>, ArchiveError> {
        let mut out = Vec::new();
        walk(data, &WalkOptions::new(limits), |e, body| {
            let mut b = Vec::new();
            body.read_to_end(&mut b).unwrap();
            assert_eq!(b.len() as u64, e.size);
            out.push((String::from_utf8_lossy(&e.path).into_owned(), e.size));
            Ok(())
        })?;
        Ok(out)
    }

    /// A raw header block with a valid checksum.
    fn header(name: &str, kind: u8, size: u64) -> [u8; BLOCK] {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = [0u8; BLOCK];
        b.copy_from_slice(h.as_bytes());
        b
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body_len = key.len() + value.len() + 3;
        let mut len = body_len + body_len.to_string().len();
        if (len).to_string().len() != body_len.to_string().len() {
            len += 1;
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    }

    fn with_body(mut out: Vec<u8>, body: &[u8]) -> Vec<u8> {
        out.extend_from_slice(body);
        out.resize(out.len() + padding(body.len() as u64) as usize, 0);
        out
    }

    #[test]
    fn reads_what_the_tar_crate_writes() {
        let long = format!("{}/file", "d".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "ln", &long).unwrap();
        let data = b.into_inner().unwrap();
        let mut seen = Vec::new();
        let sum = walk(&data[..], &WalkOptions { digest: true, ..WalkOptions::new(small()) }, |e, _| {
            seen.push(e.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].path, long.as_bytes());
        assert_eq!(seen[1].link.as_deref(), Some(long.as_bytes()));
        assert_eq!((sum.entries, sum.bytes), (2, data.len() as u64));
        assert_eq!(sum.digest.unwrap(), format!("sha256:{}", hex::encode(Sha256::digest(&data))));
        assert_eq!(list(&make_tar(&[("a", b"1"), ("b/c", b"22")], &[]), small()).unwrap(), vec![("a".into(), 1), ("b/c".into(), 2)]);
    }

    #[test]
    fn pax_records_override_and_may_hold_newlines() {
        let mut body = pax_record("path", b"new\nline");
        body.extend(pax_record("size", b"5"));
        body.extend(pax_record("mtime", b"1.5"));
        let mut data = with_body(header("pax", b'x', body.len() as u64).to_vec(), &body);
        data = with_body([data, header("short", b'0', 0).to_vec()].concat(), b"hello");
        data.extend_from_slice(&[0u8; 1024]);
        assert_eq!(list(&data, small()).unwrap(), vec![("new\nline".into(), 5)]);
        for bad in [&b"5 a=b\n"[..], b"x path=y\n", b"99 path=y\n", b"6 =b\n\n"] {
            assert!(matches!(parse_pax(bad), Err(ArchiveError::NotTar(_))), "{bad:?}");
        }
    }

    /// `head`, then `fill` bytes for ever; counts what was read.
    struct Endless {
        head: Vec<u8>,
        fill: u8,
        read: u64,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(64 * 1024);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let at = self.read as usize + i;
                *b = if at < self.head.len() { self.head[at] } else { self.fill };
            }
            self.read += n as u64;
            Ok(n)
        }
    }

    /// Walks an endless stream starting with `head`; returns the error and
    /// how many bytes the walker took (it must stop at the header).
    fn endless(head: Vec<u8>) -> (ArchiveError, u64) {
        let mut input = Endless { head, fill: b'a', read: 0 };
        let e = walk(&mut input, &WalkOptions::new(TarLimits::DEFAULT), |_, _| Ok(())).unwrap_err();
        (e, input.read)
    }

    #[test]
    fn a_long_name_announcing_a_huge_size_is_refused_at_its_header() {
        let (e, read) = endless(header("././@LongLink", b'L', 16 << 30).to_vec());
        assert_eq!(e, ArchiveError::Limit { cap: Cap::LongName, size: 16 << 30, limit: 8 << 10 });
        assert!(e.to_string().contains("16 GiB") && e.to_string().contains("8 KiB"), "{e}");
        assert!(read <= 64 * 1024, "read {read} bytes of the body");
        let (e, _) = endless(header("././@LongLink", b'K', (8 << 10) + 1).to_vec());
        assert!(matches!(e, ArchiveError::Limit { cap: Cap::LongName, .. }), "{e}");
        // At the limit it is read (and then the endless name has no NUL,
        // no following entry: the stream of 'a's is not a header).
        let mut input = Endless { head: header("././@LongLink", b'L', 8 << 10).to_vec(), fill: b'a', read: 0 };
        let e = walk(&mut input, &WalkOptions::new(TarLimits::DEFAULT), |_, _| Ok(())).unwrap_err();
        assert!(matches!(e, ArchiveError::NotTar(_)), "{e}");
    }

    #[test]
    fn pax_header_bombs_are_refused() {
        // One huge PAX header, its body never read.
        let (e, read) = endless(header("pax", b'x', 1 << 40).to_vec());
        assert_eq!(e, ArchiveError::Limit { cap: Cap::PaxHeader, size: 1 << 40, limit: 1 << 20 });
        assert!(read <= 64 * 1024, "read {read} bytes of the body");
        // A global one too.
        let (e, _) = endless(header("g", b'g', (1 << 20) + 1).to_vec());
        assert!(matches!(e, ArchiveError::Limit { cap: Cap::PaxHeader, .. }), "{e}");
        // A PAX path longer than the path limit.
        let body = pax_record("path", &[b'p'; 300]);
        let data = with_body(header("pax", b'x', body.len() as u64).to_vec(), &body);
        let data = [data, header("f", b'0', 0).to_vec()].concat();
        assert!(matches!(list(&data, small()), Err(ArchiveError::Limit { cap: Cap::Path, size: 300, .. })));
        // Many global headers count as entries.
        let body = pax_record("comment", b"x");
        let one = with_body(header("g", b'g', body.len() as u64).to_vec(), &body);
        let data = one.repeat(101);
        assert!(matches!(list(&data, small()), Err(ArchiveError::Limit { cap: Cap::Entries, size: 101, .. })));
    }

    #[test]
    fn too_many_entries_are_refused() {
        let files: Vec<(String, Vec<u8>)> = (0..101).map(|i| (format!("f{i}"), vec![])).collect();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let e = list(&make_tar(&refs, &[]), small()).unwrap_err();
        assert_eq!(e, ArchiveError::Limit { cap: Cap::Entries, size: 101, limit: 100 });
        assert_eq!(list(&make_tar(&refs[..100], &[]), small()).unwrap().len(), 100);
    }

    #[test]
    fn an_entry_announcing_more_than_the_total_is_refused_before_its_body() {
        let data = header("big", b'0', 2 << 20).to_vec();
        let e = list(&data, small()).unwrap_err();
        assert_eq!(e, ArchiveError::Limit { cap: Cap::Total, size: 512 + (2 << 20), limit: 1 << 20 });
    }

    /// `n` MiB of zeros after `head`, gzipped (about 1 KiB per MiB).
    fn zeros_gz(head: &[u8], mib: usize) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(head).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..mib {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        let limits = TarLimits { total: 2 << 20, ..TarLimits::DEFAULT };
        // An entry announcing 16 MiB: refused at its header.
        let bomb = zeros_gz(&header("zeros", b'0', 16 << 20), 16);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let e = check_stream(&bomb[..], &WalkOptions::new(limits)).unwrap_err();
        assert_eq!(e, ArchiveError::Limit { cap: Cap::Total, size: 512 + (16 << 20), limit: 2 << 20 });
        // Zeros (an empty archive, then trailing data): counted while
        // decompressing, refused one byte over the limit.
        let bomb = zeros_gz(b"", 16);
        let e = check_stream(&bomb[..], &WalkOptions::new(limits)).unwrap_err();
        assert_eq!(e, ArchiveError::Limit { cap: Cap::Total, size: (2 << 20) + 1, limit: 2 << 20 });
        // A budget already partly spent (the layers of one load).
        let e = walk(&make_tar(&[("a", &[1u8; 600])], &[])[..], &WalkOptions { spent: (1 << 20) - 1000, ..WalkOptions::new(small()) }, |_, _| Ok(()))
            .unwrap_err();
        assert!(matches!(e, ArchiveError::Limit { cap: Cap::Total, .. }), "{e}");
        // Under the limit, the same stream is fine.
        let ok = zeros_gz(&make_tar(&[("a", b"1")], &[]), 1);
        assert_eq!(check_stream(&ok[..], &WalkOptions::new(limits)).unwrap().entries, 1);
        assert!(gzip(b"").len() < 100);
    }

    #[test]
    fn broken_archives_say_what_is_wrong() {
        let good = make_tar(&[("a", b"hello")], &[]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello\n".to_vec(), "ends inside a 512-byte header block"),
            (vec![7u8; 2048], "checksum"),
            (good[..600].to_vec(), "ends in the middle of entry \"a\""),
            (header("././@LongLink", b'L', 10).to_vec(), "ends in the middle of an extension header"),
            (with_body(header("././@LongLink", b'L', 2).to_vec(), b"x\0"), "without the entry it describes"),
            (
                [with_body(header("l", b'L', 2).to_vec(), b"x\0"), with_body(header("l", b'L', 2).to_vec(), b"y\0")].concat(),
                "two GNU long-name entries",
            ),
        ];
        for (data, want) in cases {
            let e = list(&data, small()).unwrap_err();
            assert!(matches!(e, ArchiveError::NotTar(_)) && e.to_string().contains(want), "{want}: {e}");
        }
        // Signed checksums (old writers) are accepted.
        let mut h = header("é", b'0', 0);
        h[0] = 0xe9;
        let signed: i32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i32::from(b as i8) }).sum();
        h[148..156].copy_from_slice(format!("{:06o}\0 ", signed).as_bytes());
        assert_eq!(list(&h, small()).unwrap().len(), 1);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// A path of 1-6 segments of 1-60 characters: long enough for GNU
        /// long names and ustar prefixes.
        fn path() -> impl Strategy<Value = String> {
            prop::collection::vec("[a-z0-9._-]{1,60}", 1..6)
                .prop_map(|segs| segs.join("/"))
                .prop_filter("no . or .. segment", |p| p.split('/').all(|s| s != "." && s != ".."))
        }

        fn entries() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
            prop::collection::vec((path(), prop::collection::vec(any::<u8>(), 0..1500)), 0..8)
        }

        fn build(entries: &[(String, Vec<u8>)], gnu: bool) -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for (p, data) in entries {
                let mut h = if gnu { tar::Header::new_gnu() } else { tar::Header::new_ustar() };
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            b.into_inner().unwrap()
        }

        /// (path, body) of each entry.
        type Seen = Vec<(Vec<u8>, Vec<u8>)>;

        /// Walks `data` reading every body; the answer and what it saw.
        fn seen(data: &[u8], limits: TarLimits) -> (Result<Summary, ArchiveError>, Seen) {
            let mut out = Vec::new();
            let r = walk(data, &WalkOptions::new(limits), |e, body| {
                let mut b = Vec::new();
                body.read_to_end(&mut b).map_err(|e| ArchiveError::NotTar(e.to_string()))?;
                assert!(b.len() as u64 <= e.size);
                out.push((e.path.clone(), b));
                Ok(())
            });
            (r, out)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            /// Archives the tar crate writes (GNU long names, ustar
            /// prefixes) read back entry for entry.
            #[test]
            fn round_trip(entries in entries(), gnu in any::<bool>()) {
                let data = build(&entries, gnu);
                let (r, got) = seen(&data, TarLimits::DEFAULT);
                let summary = r.unwrap();
                prop_assert_eq!(summary.entries, entries.len() as u64);
                prop_assert_eq!(summary.bytes, data.len() as u64);
                let want: Seen = entries.into_iter().map(|(p, d)| (p.into_bytes(), d)).collect();
                prop_assert_eq!(got, want);
            }

            /// Any bytes: an answer, never a panic; the whole input is
            /// read when it is accepted, and no more than the limits allow.
            #[test]
            fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..4096)) {
                let limits = TarLimits { path: 64, pax_header: 256, entries: 4, total: 2048 };
                let (r, got) = seen(&data, limits);
                prop_assert!(got.len() <= 4);
                if let Ok(s) = r {
                    prop_assert_eq!(s.bytes, data.len() as u64);
                    prop_assert!(s.bytes <= 2048);
                }
            }

            /// Valid archives with bytes changed or cut short.
            #[test]
            fn mutated_archives(
                entries in entries(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
                cut in any::<prop::sample::Index>(),
                do_cut in any::<bool>(),
            ) {
                let mut data = build(&entries, true);
                if !data.is_empty() {
                    for (at, b) in edits {
                        let i = at.index(data.len());
                        data[i] = b;
                    }
                    if do_cut {
                        data.truncate(cut.index(data.len()));
                    }
                }
                let (r, _) = seen(&data, TarLimits::DEFAULT);
                if let Ok(s) = r {
                    prop_assert_eq!(s.bytes, data.len() as u64);
                }
            }

            /// Whatever a header announces, an endless stream behind it is
            /// read no further than the total limit (plus one read).
            #[test]
            fn endless_input_is_read_within_the_limit(
                kind in prop::sample::select(vec![b'0', b'5', b'L', b'K', b'x', b'g', b'S', b'7', 0, b'Z']),
                size in prop_oneof![0u64..4096, any::<u64>()],
                middle in prop::collection::vec(any::<u8>(), 0..1024),
                fill in prop_oneof![Just(0u8), Just(b'a'), any::<u8>()],
            ) {
                let limits = TarLimits { total: 256 << 10, ..TarLimits::DEFAULT };
                let mut head = header("x", kind, size & ((1 << 63) - 1)).to_vec();
                head.extend(middle);
                let mut input = Endless { head, fill, read: 0 };
                let r = walk(&mut input, &WalkOptions::new(limits), |_, body| {
                    io::copy(body, &mut io::sink()).map(|_| ()).map_err(|e| ArchiveError::NotTar(e.to_string()))
                });
                prop_assert!(r.is_err());
                prop_assert!(input.read <= (256 << 10) + 1 + 64 * 1024, "read {}", input.read);
            }

            /// PAX records: any bytes parse or are refused; records berth
            /// writes come back, newlines and all.
            #[test]
            fn pax_records(junk in prop::collection::vec(any::<u8>(), 0..512), path in prop::collection::vec(any::<u8>(), 0..300), size in any::<u64>()) {
                let _ = parse_pax(&junk);
                let mut body = pax_record("path", &path);
                body.extend(pax_record("size", size.to_string().as_bytes()));
                body.extend(pax_record("SCHILY.xattr.user.x", &junk));
                let pax = parse_pax(&body).unwrap();
                prop_assert_eq!(pax.path, Some(path));
                prop_assert_eq!(pax.size, Some(size));
            }

            /// Gzip of anything (and anything that merely starts like gzip).
            #[test]
            fn gzip_streams(data in prop::collection::vec(any::<u8>(), 0..2048), raw_tail in prop::collection::vec(any::<u8>(), 0..64)) {
                let limits = TarLimits { total: 64 << 10, ..TarLimits::DEFAULT };
                let _ = check_stream(&gzip(&data)[..], &WalkOptions::new(limits));
                let mut fake = vec![0x1f, 0x8b];
                fake.extend(raw_tail);
                let _ = check_stream(&fake[..], &WalkOptions::new(limits));
            }
        }
    }
}
