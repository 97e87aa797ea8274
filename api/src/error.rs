//! Errors at the API edge: mapped once to Docker's status codes and
//! `{"message": "..."}` bodies with `Content-Type: application/json` exactly
//! (the docker CLI parses the body only for that exact value).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

/// A JSON response with `Content-Type: application/json` (no charset).
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|e| {
        format!(r#"{{"message":"cannot encode the response: {e}"}}"#).into_bytes()
    });
    bytes.push(b'\n');
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &serde_json::json!({ "message": self.message }))
    }
}

impl From<berth_engine::runtimes::ReloadError> for ApiError {
    fn from(e: berth_engine::runtimes::ReloadError) -> Self {
        use berth_engine::runtimes::ReloadError;
        match e {
            ReloadError::Invalid(errs) => ApiError::bad_request(errs.to_string()),
            ReloadError::Internal(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

impl From<berth_engine::EngineError> for ApiError {
    fn from(e: berth_engine::EngineError) -> Self {
        use berth_engine::EngineError as E;
        let status = match &e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::InvalidParameter(_) | E::UnknownRuntime(_) => StatusCode::BAD_REQUEST,
            E::NotModified => StatusCode::NOT_MODIFIED,
            // The docker CLI picks its exit code (127/126) from the message.
            E::Start { exit_code: 126 | 127, .. } => StatusCode::BAD_REQUEST,
            E::Start { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            E::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Turns an `ApiError` for 304 into an empty response (dockerd sends no body).
pub fn result_response(r: Result<Response, ApiError>) -> Response {
    match r {
        Ok(resp) => resp,
        Err(e) if e.status == StatusCode::NOT_MODIFIED => StatusCode::NOT_MODIFIED.into_response(),
        Err(e) => e.into_response(),
    }
}
