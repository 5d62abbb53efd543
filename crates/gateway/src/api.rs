//! What the control API and the SIP task say to each other: the requests, their answers (the
//! JSON of phones and calls), and what the running daemon shares with the HTTP side.
//!
//! Both `control` (the HTTP server) and `daemon` (the SIP task) depend on this module and not on
//! each other.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Requests of the control API to the SIP task.
pub enum ControlCommand {
    /// Place a call.
    Dial(DialRequest, oneshot::Sender<Result<CallView, ApiError>>),
    /// Hang up a call.
    Hangup(String, oneshot::Sender<Result<(), ApiError>>),
    /// List calls.
    Calls(oneshot::Sender<Vec<CallView>>),
    /// One call.
    Call(String, oneshot::Sender<Option<CallView>>),
    /// List phones.
    Phones(oneshot::Sender<Vec<PhoneView>>),
}

/// What the running daemon shares with the control API.
#[derive(Clone)]
pub struct Shared {
    /// Requests to the SIP task.
    pub commands: mpsc::Sender<ControlCommand>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether new calls are taken.
    pub ready: Arc<AtomicBool>,
}

/// An error for the control API: an HTTP status and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with this status.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

/// A phone and its registration.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneView {
    /// The number.
    pub phone_number: String,
    /// SIP login.
    pub sip_login: String,
    /// The telephonyUrl as configured.
    pub telephony_url: String,
    /// The addresses it resolved to.
    pub targets: Vec<String>,
    /// `registered`, `registering`, `failed`, `unregistered`, `trunk` (no registration) or
    /// `unresolved` (DNS failed).
    pub state: String,
    /// The lifetime granted, seconds, when registered.
    pub expires: Option<u64>,
    /// The registered contact.
    pub contact: Option<String>,
    /// The registrar's last error status.
    pub last_status: Option<u16>,
    /// The last error, for operators.
    pub last_error: Option<String>,
    /// Seconds until the next attempt after a failure.
    pub retry_in: Option<u64>,
    /// Calls in progress on this phone.
    pub active_calls: u32,
    /// The handler.
    pub handler: String,
    /// The assistant that answers it.
    pub assistant_id: Option<String>,
    /// Where it comes from: `config` (the file) or `happ` (the platform).
    pub source: String,
}

/// A call, in progress or recently ended.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    /// Our identifier (for `DELETE /calls/{id}`).
    pub id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The phone's number.
    pub phone: String,
    /// The other party's number or URI.
    pub remote: String,
    /// `ringing`, `answered`, `ended`.
    pub state: String,
    /// Seconds since the Unix epoch when the call started.
    pub started_at: u64,
    /// Seconds since the Unix epoch when it was answered.
    pub answered_at: Option<u64>,
    /// Seconds since the Unix epoch when it ended.
    pub ended_at: Option<u64>,
    /// The codec in use.
    pub codec: Option<String>,
    /// The SIP status of a call that failed (486, 603, 408...).
    pub status: Option<u16>,
    /// Why it ended or failed.
    pub reason: Option<String>,
    /// The SIP Call-ID.
    pub sip_call_id: Option<String>,
    /// Packets lost on the way in, as RTCP counts them.
    pub packets_lost: Option<i64>,
    /// Interarrival jitter in ms.
    pub jitter_ms: Option<f64>,
}

/// `POST /calls`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialRequest {
    /// The number to call.
    pub to: String,
    /// The phone (number or SIP login) to call from.
    pub phone: String,
    /// The assistant to use instead of the phone's.
    pub assistant: Option<String>,
}
