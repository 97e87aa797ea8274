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
