//! API versions: strip an optional `/v<major>.<minor>` prefix before routing,
//! refuse versions out of range as dockerd does, and add Docker's headers to
//! every response.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Request, Uri};

use crate::error::ApiError;
use crate::{API_VERSION, MIN_API_VERSION};

/// Parses `1.41` into (1, 41).
fn parse(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits `/v1.41/containers/json` into `Some("1.41")` and `/containers/json`.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let v = &rest[..end];
        if parse(v).is_some() {
            let tail = &rest[end..];
            return (Some(v), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// The API version a request asked for (its `/v1.xx` prefix; the current
/// one without), kept in the request's extensions for the few routes whose
/// defaults depend on it, as in dockerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestedVersion(pub u32, pub u32);

impl RequestedVersion {
    /// Whether the request's version is older than `major.minor`.
    pub fn older_than(self, major: u32, minor: u32) -> bool {
        (self.0, self.1) < (major, minor)
    }
}

/// Rewrites the request URI to the unversioned path, or answers 400 for a
/// version out of range.
pub fn rewrite(mut req: Request<Body>) -> Result<Request<Body>, ApiError> {
    let asked = split_version(req.uri().path()).0.and_then(parse).or_else(|| parse(API_VERSION)).unwrap_or((1, 41));
    req.extensions_mut().insert(RequestedVersion(asked.0, asked.1));
    let path = req.uri().path();
    let (version, rest) = split_version(path);
    if let Some(v) = version {
        let (want, max, min) = (parse(v), parse(API_VERSION), parse(MIN_API_VERSION));
        if want > max {
            return Err(ApiError::bad_request(format!(
                "client version {v} is too new. Maximum supported API version is {API_VERSION}"
            )));
        }
        if want < min {
            return Err(ApiError::bad_request(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            )));
        }
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    Ok(req)
}

/// Adds the headers dockerd puts on every response.
pub fn add_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_versions() {
        assert_eq!(split_version("/v1.41/containers/json"), (Some("1.41"), "/containers/json"));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), "/"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(split_version("/vx.y/a"), (None, "/vx.y/a"));
    }
}
