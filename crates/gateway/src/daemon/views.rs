//! What the control API shows of phones and calls (JSON).

use serde::Serialize;

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
