//! The error answers of the server, in the API's envelope.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use happ_client::model::ErrorEnvelope;

/// An error answer: HTTP status, `error.code` and `error.message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error.code`.
    pub code: &'static str,
    /// `error.message`.
    pub message: String,
}

impl ApiError {
    /// 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "VALIDATION_ERROR", message: message.into() }
    }

    /// 404 `NOT_FOUND` for `what` (e.g. `Chat`) with `id`.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "NOT_FOUND", message: format!("{what} {id} not found") }
    }

    /// 401 `UNAUTHORIZED`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, code: "UNAUTHORIZED", message: message.into() }
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self { status: StatusCode::CONFLICT, code: "CONFLICT", message: message.into() }
    }

    /// The conventional code of an HTTP status, for answers the server makes up (faults, routing).
    pub fn code_for(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 | 422 => "VALIDATION_ERROR",
            401 => "UNAUTHORIZED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            405 => "METHOD_NOT_ALLOWED",
            409 => "CONFLICT",
            413 => "PAYLOAD_TOO_LARGE",
            415 => "UNSUPPORTED_MEDIA_TYPE",
            429 => "RATE_LIMITED",
            503 => "SERVICE_UNAVAILABLE",
            500..=599 => "INTERNAL_ERROR",
            _ => "ERROR",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorEnvelope::new(self.message, self.code))).into_response()
    }
}
