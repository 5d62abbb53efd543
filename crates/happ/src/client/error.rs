//! Errors of the Happ client, by blame.
//!
//! | variant | whose fault | retried before it is returned? |
//! | --- | --- | --- |
//! | [`Error::Api`] | the request (the API rejected it with a 4xx) | never |
//! | [`Error::RateLimited`] | nobody: the account's rate limit | yes, until attempts or patience ran out |
//! | [`Error::Server`] | the platform (or a proxy in front of it): 5xx | yes |
//! | [`Error::Timeout`] | unknown: the network or a slow server | yes |
//! | [`Error::Transport`] | the network: connect failure, reset connection | yes |
//! | [`Error::InvalidResponse`] | the platform: a 2xx/3xx answer this client cannot read | never |
//! | [`Error::Usage`] | this process: bad base URL, token with bad characters, … | never |
//!
//! [`Error::maybe_processed`] tells a caller whether a failed write may nevertheless have been
//! stored, which is what an outbox needs to decide between resending and checking first.

use std::time::Duration;

/// A failed Happ API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API rejected the request with a non-retryable status (4xx other than 408/429, 501, 505).
    /// `message` and `code` come from the error envelope; when the body was not an envelope (a
    /// proxy's page) `message` holds the start of the body and `code` is `None`.
    #[error("Happ API rejected the request: HTTP {status}{}: {message}", code_suffix(code.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
        /// `error.code`, e.g. `NOT_FOUND`.
        code: Option<String>,
    },
    /// Still `429 Too Many Requests` after the retries allowed.
    #[error("rate limited by the Happ API after {attempts} attempt(s){}", retry_after_suffix(*retry_after))]
    RateLimited {
        /// Requests sent.
        attempts: u32,
        /// The last `Retry-After`, if the server sent one.
        retry_after: Option<Duration>,
    },
    /// Still a server error (5xx, 408) after the retries allowed, or one the replay policy did not
    /// allow to retry.
    #[error("Happ API server error HTTP {status}{} after {attempts} attempt(s): {message}", code_suffix(code.as_deref()))]
    Server {
        /// HTTP status of the last answer.
        status: u16,
        /// `error.message`, or the start of a body that was not an envelope.
        message: String,
        /// `error.code`, if any.
        code: Option<String>,
        /// Requests sent.
        attempts: u32,
    },
    /// No complete answer within the configured timeout on the last attempt.
    #[error("no answer from the Happ API within {timeout:?} (after {attempts} attempt(s))")]
    Timeout {
        /// Requests sent.
        attempts: u32,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// The connection could not be made, or broke.
    #[error("cannot talk to the Happ API (after {attempts} attempt(s)): {detail}")]
    Transport {
        /// Requests sent (or tried).
        attempts: u32,
        /// Whether the last failure happened after the request may have been sent.
        after_send: bool,
        /// The cause chain, as text.
        detail: String,
    },
    /// An answer this client cannot read: not JSON, not the envelope, a field missing or of the
    /// wrong type, `success: false` without an error, an unexpected status.
    #[error("invalid response from the Happ API (HTTP {status}, {what}): {detail}")]
    InvalidResponse {
        /// HTTP status of the answer.
        status: u16,
        /// Which request and which part of the body, e.g. `GET /api/chats: data[3]`.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The client was used or configured wrongly.
    #[error("Happ client misuse: {detail}")]
    Usage {
        /// What is wrong.
        detail: String,
    },
}

impl Error {
    /// Whether a write that failed with this error may nevertheless have taken effect on the
    /// server: after a timeout, a broken connection, or a 5xx other than 503. `false` for errors
    /// that prove the request was not acted on (4xx, 429, 503, connect failures, misuse).
    ///
    /// An [`Error::InvalidResponse`] to a write counts as processed-maybe too: the server answered
    /// 2xx, so the write most likely happened, but its result could not be read.
    pub fn maybe_processed(&self) -> bool {
        match self {
            Self::Api { .. } | Self::RateLimited { .. } | Self::Usage { .. } => false,
            Self::Server { status, .. } => *status != 503 && *status != 408,
            Self::Timeout { .. } | Self::InvalidResponse { .. } => true,
            Self::Transport { after_send, .. } => *after_send,
        }
    }

    /// The HTTP status of the answer the error came from, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Server { status, .. } | Self::InvalidResponse { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::Timeout { .. } | Self::Transport { .. } | Self::Usage { .. } => None,
        }
    }

    /// `error.code` of the envelope, if the error came with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } | Self::Server { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" {c}")).unwrap_or_default()
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    retry_after.map(|d| format!(" (server asked to wait {d:?})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_status_and_code() {
        let e = Error::Api { status: 404, message: "Chat not found".into(), code: Some("NOT_FOUND".into()) };
        assert_eq!(e.to_string(), "Happ API rejected the request: HTTP 404 NOT_FOUND: Chat not found");
        assert!(!e.maybe_processed());
        let e = Error::RateLimited { attempts: 4, retry_after: Some(Duration::from_secs(2)) };
        assert_eq!(e.to_string(), "rate limited by the Happ API after 4 attempt(s) (server asked to wait 2s)");
        assert!(Error::Server { status: 500, message: String::new(), code: None, attempts: 1 }.maybe_processed());
        assert!(!Error::Server { status: 503, message: String::new(), code: None, attempts: 1 }.maybe_processed());
    }
}
