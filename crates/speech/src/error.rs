//! Failures of a speech or LLM stream, by blame, with what the bridge should do about them.
//!
//! | variant | whose fault | [`is_retryable`](Error::is_retryable) | [`should_fall_back`](Error::should_fall_back) |
//! | --- | --- | --- | --- |
//! | [`Error::Refused`] | the request or the account: 4xx (bad key, unknown model, bad input) | no | yes: another provider may accept it |
//! | [`Error::RateLimited`] | nobody: the account's limit (429) | yes, after `retry_after` | yes, if waiting is too long for a caller |
//! | [`Error::Unavailable`] | the provider: 5xx, refused or reset connection | yes | yes |
//! | [`Error::Timeout`] | the provider or the network: no first byte, or a stalled stream | yes | yes |
//! | [`Error::Closed`] | the provider or the network: the stream ended mid-way | yes (the partial output was already given) | yes |
//! | [`Error::Protocol`] | the provider: an answer that is not its documented wire format | no | yes |
//! | [`Error::Cancelled`] | this process: the stream was cancelled (barge-in) | no | no |
//! | [`Error::Config`] | this process: a bad base URL, a key with bad characters | no | yes |
//!
//! When neither a retry nor a fallback is possible, the bridge apologises to the caller. Messages
//! never contain an API key: request URLs are stripped from transport errors, and keys only live
//! in [`Secret`](crate::Secret)s.

use std::time::Duration;

/// Which wait ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// No response headers within the first-byte timeout (connect, TLS and the provider's queue).
    FirstByte,
    /// Nothing received within the idle timeout while the stream was open: it stalled.
    Idle,
}

/// A failed or interrupted speech or LLM stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The provider rejected the request (4xx other than 408 and 429, or a 429 for an exhausted
    /// quota): bad or missing key, unknown model, invalid request.
    #[error("provider refused the request: HTTP {status}{}: {message}", code_suffix(code.as_deref()))]
    Refused {
        /// HTTP status.
        status: u16,
        /// The provider's message (`error.message`), or the start of a body that was not JSON.
        message: String,
        /// The provider's error code (`error.code` or `error.type`), e.g. `invalid_api_key`.
        code: Option<String>,
    },
    /// The provider's rate limit (429).
    #[error("rate limited by the provider{}: {message}", retry_after_suffix(*retry_after))]
    RateLimited {
        /// How long the provider asked to wait (`Retry-After` or `retry-after-ms`), if it said.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// The provider is down or unreachable: 5xx, 408, a refused or reset connection, or an error
    /// event inside the stream.
    #[error("provider unavailable{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Unavailable {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What happened.
        detail: String,
    },
    /// A wait ran out; the stream is over.
    #[error("provider timed out ({phase:?}) after {after:?}")]
    Timeout {
        /// Which wait.
        phase: TimeoutPhase,
        /// The configured limit.
        after: Duration,
    },
    /// The stream ended before the provider said it was complete (a disconnect, a truncated
    /// body). Events already given stay valid.
    #[error("provider stream closed mid-way: {detail}")]
    Closed {
        /// What happened.
        detail: String,
    },
    /// The provider sent something outside its wire format: a line that is not SSE, JSON that does
    /// not parse, a tool call without a name.
    #[error("provider protocol error: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The stream was cancelled by its owner.
    #[error("stream cancelled")]
    Cancelled,
    /// The adapter is configured or used wrongly.
    #[error("speech adapter misconfigured: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
}

impl Error {
    /// Whether the same request to the same provider may succeed if sent again (after
    /// [`retry_after`](Self::retry_after) when given). A retry after [`Error::Closed`] repeats
    /// output the caller may already have heard: the bridge decides whether that is acceptable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Timeout { .. } | Self::Closed { .. } => true,
            Self::Refused { .. } | Self::Protocol { .. } | Self::Cancelled | Self::Config { .. } => false,
        }
    }

    /// Whether another configured provider is worth trying: every failure but a cancellation.
    pub fn should_fall_back(&self) -> bool {
        !matches!(self, Self::Cancelled)
    }

    /// How long the provider asked to wait before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" {c}")).unwrap_or_default()
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    retry_after.map(|d| format!(" (asked to wait {d:?})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_by_blame() {
        let refused = Error::Refused { status: 401, message: "Incorrect API key provided".into(), code: Some("invalid_api_key".into()) };
        assert!(!refused.is_retryable() && refused.should_fall_back());
        assert_eq!(refused.to_string(), "provider refused the request: HTTP 401 invalid_api_key: Incorrect API key provided");
        let limited = Error::RateLimited { retry_after: Some(Duration::from_secs(2)), message: "slow down".into() };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        assert!(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_secs(1) }.is_retryable());
        assert!(!Error::Cancelled.is_retryable() && !Error::Cancelled.should_fall_back());
        assert!(!Error::Protocol { detail: String::new() }.is_retryable());
    }
}
