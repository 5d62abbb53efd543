//! The response envelopes every endpoint uses.
//!
//! ```text
//! {"success": true,  "data": {...}}                                  DataEnvelope
//! {"success": true,  "data": [...], "totalCount": 42, "page": 1}     PageEnvelope
//! {"success": false, "error": {"message": "...", "code": "..."}}     ErrorEnvelope
//! ```
//!
//! These types are what a server writes; the client reads responses more defensively (see
//! `client`), because it must tell a well-formed error from a broken body.

use serde::{Deserialize, Serialize};

/// A successful response with one value (or a list that is not paginated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataEnvelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The payload.
    pub data: T,
}

impl<T> DataEnvelope<T> {
    /// `{"success": true, "data": data}`.
    pub fn ok(data: T) -> Self {
        Self { success: true, data }
    }
}

/// A successful paginated response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageEnvelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The items of this page.
    pub data: Vec<T>,
    /// How many items exist over all pages.
    pub total_count: u64,
    /// The 1-based number of this page.
    pub page: u32,
}

/// The `error` object of a failed response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub message: String,
    /// A machine-readable code such as `NOT_FOUND` (may be absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A failed response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// The error.
    pub error: ErrorBody,
}

impl ErrorEnvelope {
    /// `{"success": false, "error": {"message": message, "code": code}}`.
    pub fn new(message: impl Into<String>, code: impl Into<String>) -> Self {
        Self { success: false, error: ErrorBody { message: message.into(), code: Some(code.into()) } }
    }
}
