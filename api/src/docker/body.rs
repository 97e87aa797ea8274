//! JSON request bodies (create, exec, exec start, …): read with a size
//! limit, decode into a model, and turn every failure into a 400/413 that
//! says what is wrong and where.
//!
//! - Malformed JSON → 400 `invalid JSON in request body: <what> at line L column C`.
//! - A value of the wrong type → 400 `invalid request body: field `HostConfig.Memory`: invalid type: …`
//!   (the path of Docker field names, from `serde_path_to_error`).
//! - Unknown fields are ignored, as dockerd does.
//! - More than the limit → 413 `request body too large: … (limit 1 MiB)`.
//! - Empty (or all-whitespace) body where JSON is optional → `T::default()`.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body berth reads for create, exec and similar requests:
/// 1 MiB. dockerd has no explicit limit; real create bodies are a few KiB,
/// so this only stops runaway or hostile clients.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// Why a body could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Over the limit. `size` is the announced `Content-Length`, if any.
    #[error("request body too large: {} (limit {})", describe_size(*.size), human_bytes(*.limit as u64))]
    TooLarge { size: Option<u64>, limit: usize },
    /// The connection failed while reading.
    #[error("cannot read the request body: {0}")]
    Read(String),
    /// Not JSON (syntax error or truncated), with line and column.
    #[error("invalid JSON in request body: {0}")]
    Syntax(serde_json::Error),
    /// Well-formed JSON with a value of the wrong type at `path`.
    #[error("invalid request body: field `{path}`: {source}")]
    Type { path: String, source: serde_json::Error },
}

fn describe_size(size: Option<u64>) -> String {
    match size {
        Some(n) => format!("{n} bytes"),
        None => "more than the limit".to_owned(),
    }
}

/// `1048576` → `1 MiB`, `2048` → `2 KiB`, otherwise `N bytes`.
pub fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n & (MIB - 1) == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n & (KIB - 1) == 0 {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

impl BodyError {
    /// The HTTP status: 413 for too large, else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

/// Checks an announced `Content-Length` against `limit` before reading.
pub fn check_content_length(headers: &HeaderMap, limit: usize) -> Result<(), BodyError> {
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(n) if n > limit as u64 => Err(BodyError::TooLarge { size: Some(n), limit }),
        _ => Ok(()),
    }
}

/// Reads a whole body (chunked or not), failing as soon as more than
/// `limit` bytes have arrived.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge { size: None, limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Decodes JSON bytes into `T`, with the field path on type errors.
/// Trailing non-whitespace after the value is a syntax error.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => BodyError::Type { path, source: inner },
            _ => BodyError::Syntax(inner),
        }
    })?;
    de.end().map_err(BodyError::Syntax)?;
    Ok(value)
}

/// Like [`decode_json`], but an empty or all-whitespace body is
/// `T::default()` (for bodies the API makes optional).
pub fn decode_json_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        decode_json(bytes)
    }
}

/// Reads and decodes a required JSON body of at most `limit` bytes.
/// (An empty body is a 400: `invalid JSON in request body: EOF while
/// parsing a value at line 1 column 0`.)
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let bytes = read_limited(body, limit).await?;
    Ok(decode_json(&bytes)?)
}

/// Reads and decodes an optional JSON body: empty → `T::default()`.
pub async fn read_json_or_default<T: DeserializeOwned + Default>(body: Body, limit: usize) -> Result<T, ApiError> {
    let bytes = read_limited(body, limit).await?;
    Ok(decode_json_or_default(&bytes)?)
}

/// [`read_json_or_default`] for a whole request: refuses an announced
/// `Content-Length` over `limit` before reading anything.
pub async fn read_request_json<T: DeserializeOwned + Default>(
    req: axum::extract::Request,
    limit: usize,
) -> Result<T, ApiError> {
    check_content_length(req.headers(), limit)?;
    read_json_or_default(req.into_body(), limit).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard_stubs::models::ContainerCreateBody;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Small {
        #[serde(rename = "Tty", default)]
        tty: bool,
        #[serde(rename = "Inner", default)]
        inner: Option<Inner>,
    }
    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Inner {
        #[serde(rename = "Memory")]
        memory: i64,
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = decode_json::<Small>(b"{\n  \"Tty\": x}").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.to_string(), "invalid JSON in request body: expected value at line 2 column 10");
        let e = decode_json::<Small>(b"{\"Tty\": true").unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON in request body: EOF while parsing"), "{e}");
        let e = decode_json::<Small>(b"{} x").unwrap_err();
        assert!(e.to_string().contains("trailing characters at line 1 column 4"), "{e}");
        let e = decode_json::<Small>(b"").unwrap_err();
        assert!(matches!(e, BodyError::Syntax(_)), "{e}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = decode_json::<Small>(br#"{"Inner": {"Memory": "lots"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid request body: field `Inner.Memory`: invalid type: string \"lots\", expected i64 at line 1 column 27"
        );
        let e = decode_json::<ContainerCreateBody>(br#"{"Image":"bb","HostConfig":{"Binds":"/a:/b"}}"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid request body: field `HostConfig.Binds`: invalid type"), "{e}");
        let e = decode_json::<ContainerCreateBody>(br#"{"Cmd":["a",1]}"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid request body: field `Cmd[1]`"), "{e}");
        let api: ApiError = e.into();
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn unknown_fields_ignored_and_empty_is_default() {
        let v: Small = decode_json(br#"{"Tty":true,"Whatever":{"x":[1,2]}}"#).unwrap();
        assert!(v.tty);
        let v: Small = decode_json_or_default(b"  \r\n").unwrap();
        assert_eq!(v, Small::default());
        let v: HashMap<String, i32> = decode_json_or_default(b"").unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn size_limit() {
        assert_eq!(MAX_JSON_BODY, 1 << 20);
        assert_eq!(human_bytes(MAX_JSON_BODY as u64), "1 MiB");
        assert_eq!(human_bytes(2048), "2 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        let big = vec![b' '; 2000];
        let e = block_on(read_limited(Body::from(big.clone()), 1024)).unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.to_string(), "request body too large: more than the limit (limit 1 KiB)");
        let ok = block_on(read_limited(Body::from(big), 2000)).unwrap();
        assert_eq!(ok.len(), 2000);

        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "2097152".parse().unwrap());
        let e = check_content_length(&headers, MAX_JSON_BODY).unwrap_err();
        let api: ApiError = e.into();
        assert_eq!(api.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(api.message, "request body too large: 2097152 bytes (limit 1 MiB)");
        headers.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        assert!(check_content_length(&headers, MAX_JSON_BODY).is_ok());
    }

    #[test]
    fn async_helpers() {
        let v: Small = block_on(read_json(Body::from(r#"{"Tty":true}"#), MAX_JSON_BODY)).unwrap();
        assert!(v.tty);
        let v: Small = block_on(read_json_or_default(Body::empty(), MAX_JSON_BODY)).unwrap();
        assert!(!v.tty);
        let e = block_on(read_json::<Small>(Body::from("{"), MAX_JSON_BODY)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);

        let req = http::Request::builder().header(header::CONTENT_LENGTH, "5000000").body(Body::from("{}")).unwrap();
        let e = block_on(read_request_json::<Small>(req, MAX_JSON_BODY)).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let req = http::Request::builder().body(Body::from(r#"{"Inner":{"Memory":7}}"#)).unwrap();
        let v: Small = block_on(read_request_json(req, MAX_JSON_BODY)).unwrap();
        assert_eq!(v.inner, Some(Inner { memory: 7 }));
    }
}
