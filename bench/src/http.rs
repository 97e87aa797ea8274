//! A minimal HTTP/1.1 client over a unix socket (one request per
//! connection), enough for the Docker API calls the harness times itself.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Api {
    pub sock: PathBuf,
    /// API version prefix; both engines understand 1.41.
    pub prefix: &'static str,
}

pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Resp {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("bad JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(2000)]).into_owned()
    }
    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }
}

impl Api {
    pub fn new(sock: &Path) -> Api {
        Api { sock: sock.to_path_buf(), prefix: "/v1.41" }
    }

    pub fn get(&self, path: &str) -> Result<Resp, String> {
        self.request("GET", path, None, Duration::from_secs(60))
    }

    pub fn post(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Resp, String> {
        self.request("POST", path, body, Duration::from_secs(120))
    }

    pub fn delete(&self, path: &str) -> Result<Resp, String> {
        self.request("DELETE", path, None, Duration::from_secs(120))
    }

    /// `path` without the version prefix; `/_ping` and `/berth/...` are sent
    /// as they are.
    pub fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>, timeout: Duration) -> Result<Resp, String> {
        let full = if path.starts_with("/_ping") || path.starts_with("/berth/") {
            path.to_string()
        } else {
            format!("{}{}", self.prefix, path)
        };
        let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let start = Instant::now();
        let mut s = UnixStream::connect(&self.sock).map_err(|e| format!("connect {}: {e}", self.sock.display()))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.set_write_timeout(Some(timeout)).ok();
        let mut req = format!("{method} {full} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\nConnection: close\r\n");
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut buf = req.into_bytes();
        buf.extend_from_slice(&body);
        s.write_all(&buf).map_err(|e| format!("{method} {full}: write: {e}"))?;
        let mut raw = Vec::with_capacity(64 * 1024);
        // Read until the message is complete (or EOF): the server may keep
        // the connection open despite Connection: close.
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = s.read(&mut chunk).map_err(|e| format!("{method} {full}: read: {e}"))?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
            if complete(&raw) {
                break;
            }
        }
        let elapsed = start.elapsed();
        let (status, body) = parse(&raw).ok_or_else(|| format!("{method} {full}: malformed response ({} bytes)", raw.len()))?;
        Ok(Resp { status, body, elapsed })
    }

    /// True when `/_ping` answers 200.
    pub fn ping(&self) -> bool {
        matches!(self.request("GET", "/_ping", None, Duration::from_secs(2)), Ok(r) if r.status == 200)
    }
}

fn header_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn headers(raw: &[u8], end: usize) -> (u16, Option<usize>, bool) {
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut len = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                len = v.parse().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    (status, len, chunked)
}

fn complete(raw: &[u8]) -> bool {
    let Some(end) = header_end(raw) else { return false };
    let (status, len, chunked) = headers(raw, end);
    if status == 204 || status == 304 {
        return true;
    }
    if let Some(n) = len {
        return raw.len() >= end + n;
    }
    if chunked {
        return dechunk(&raw[end..]).is_some();
    }
    false
}

fn parse(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = header_end(raw)?;
    let (status, len, chunked) = headers(raw, end);
    let rest = &raw[end..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = len {
        rest.get(..n)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some((status, body))
}

/// Decodes a complete chunked body; None while incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size_s = std::str::from_utf8(&b[..nl]).ok()?;
        let size = usize::from_str_radix(size_s.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert!(complete(raw));
        assert_eq!(parse(raw).unwrap(), (200, b"abcde".to_vec()));
        assert!(!complete(&raw[..raw.len() - 5]));
    }

    #[test]
    fn length() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nOK";
        assert_eq!(parse(raw).unwrap(), (404, b"OK".to_vec()));
    }
}
