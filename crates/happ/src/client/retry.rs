//! When to retry a request, and after how long: a pure function of the attempt, what went wrong,
//! the server's `Retry-After`, the wall-clock time and a random number passed in.
//!
//! No clock is read and no randomness is drawn here, so every decision is unit-tested exactly;
//! the client supplies `now` and a random `u64` on each call.
//!
//! # Which failures are retried
//!
//! | failure | transient | may the server have acted on the request? |
//! | --- | --- | --- |
//! | connect error (refused, DNS, TLS handshake, connect timeout) | yes | no: nothing was sent |
//! | `408 Request Timeout` | yes | no: the server did not read the whole request |
//! | `429 Too Many Requests` | yes | no: the rate limiter answers before the handler |
//! | `503 Service Unavailable` | yes | no (RFC 9110 §15.6.4: the server cannot handle it now) |
//! | other 5xx except 501 and 505 | yes | **maybe**: the handler may have failed after writing |
//! | timeout after the request was sent | yes | **maybe** |
//! | connection broken after the request was sent | yes | **maybe** |
//! | other 4xx, 501, 505 | no | no |
//!
//! [`Replay`] says what to do with a transient failure that *may* have taken effect. Retrying a
//! `POST` after such a failure can create the record twice (the first attempt succeeded but its
//! answer was lost); callers that cannot tolerate a duplicate use [`Replay::OnlyIfNotProcessed`]
//! and check for themselves, for instance by listing the chat's messages.
//!
//! # Delay
//!
//! Exponential backoff with "equal jitter": for the `n`-th failed attempt the ceiling is
//! `min(max_delay, base_delay · 2ⁿ⁻¹)` and the delay is uniform in `[ceiling/2, ceiling]`, so
//! clients that failed together spread out but none retries at once. A `Retry-After` header
//! (seconds or an HTTP date) raises the delay to at least what the server asked for; if the server
//! asks for more than `max_retry_after`, the client gives up at once and reports it, so the caller
//! can reschedule instead of blocking.

use std::time::{Duration, SystemTime};

/// Retry settings of a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 means never retry). Default 4.
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry. Default 250 ms.
    pub base_delay: Duration,
    /// Largest backoff ceiling. Default 8 s.
    pub max_delay: Duration,
    /// The longest `Retry-After` the client waits for; a longer one ends the retries. Default 60 s.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_attempts: 4, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(8), max_retry_after: Duration::from_secs(60) }
    }
}

/// Whether a request may be sent again after a failure that may already have taken effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Retry every transient failure. Right for reads and idempotent writes (`PATCH` to a value,
    /// `DELETE`); for creating `POST`s it gives at-least-once delivery: no loss, possible duplicates.
    Always,
    /// Retry only failures after which the server certainly did not act (connect errors, 408,
    /// 429, 503): at-most-once delivery, the caller resolves the uncertain cases.
    OnlyIfNotProcessed,
    /// Never retry.
    Never,
}

/// What went wrong with one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection was established: the request never left.
    Connect,
    /// No complete answer within the timeout, after the request was (possibly) sent.
    Timeout,
    /// The connection failed after the request was (possibly) sent.
    Broken,
    /// The server answered with this status (not 2xx).
    Status(u16),
}

impl Failure {
    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        match self {
            Self::Connect | Self::Timeout | Self::Broken => true,
            Self::Status(s) => s == 408 || s == 429 || (500..600).contains(&s) && s != 501 && s != 505,
        }
    }

    /// Whether the server may have acted on the request although it failed.
    pub fn maybe_processed(self) -> bool {
        match self {
            Self::Connect => false,
            Self::Timeout | Self::Broken => true,
            Self::Status(s) => (500..600).contains(&s) && s != 503,
        }
    }
}

/// The value of a `Retry-After` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120`.
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`.
    At(SystemTime),
}

impl RetryAfter {
    /// Parses either form (RFC 9110 §10.2.3); `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Absurdly long digit strings saturate instead of failing.
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(Self::Delay(Duration::from_secs(secs)));
        }
        httpdate::parse_http_date(value).ok().map(Self::At)
    }

    /// How long from `now` the server asked the client to wait (zero for a date in the past).
    pub fn delay_from(self, now: SystemTime) -> Duration {
        match self {
            Self::Delay(d) => d,
            Self::At(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// The outcome of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send the request again after this delay.
    Retry(Duration),
    /// Stop and report the failure.
    GiveUp(GiveUp),
}

/// Why [`decide`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure is permanent (a 4xx other than 408/429, 501, 505).
    NotRetryable,
    /// The request may have taken effect and the replay policy forbids sending it again.
    MaybeProcessed,
    /// The replay policy is [`Replay::Never`].
    ReplayNever,
    /// `max_attempts` were made.
    AttemptsExhausted,
    /// The server asked to wait longer than `max_retry_after`.
    RetryAfterTooLong(Duration),
}

/// Decides what to do after `attempt` (1-based) failed with `failure`.
///
/// `random` is any uniformly distributed `u64`; it only places the delay inside its jitter window.
pub fn decide(config: &RetryConfig, replay: Replay, attempt: u32, failure: Failure, retry_after: Option<RetryAfter>, now: SystemTime, random: u64) -> Decision {
    if !failure.is_transient() {
        return Decision::GiveUp(GiveUp::NotRetryable);
    }
    match replay {
        Replay::Never => return Decision::GiveUp(GiveUp::ReplayNever),
        Replay::OnlyIfNotProcessed if failure.maybe_processed() => return Decision::GiveUp(GiveUp::MaybeProcessed),
        Replay::OnlyIfNotProcessed | Replay::Always => {}
    }
    if attempt >= config.max_attempts {
        return Decision::GiveUp(GiveUp::AttemptsExhausted);
    }
    let backoff = backoff(config, attempt, random);
    match retry_after.map(|r| r.delay_from(now)) {
        Some(asked) if asked > config.max_retry_after => Decision::GiveUp(GiveUp::RetryAfterTooLong(asked)),
        Some(asked) => Decision::Retry(backoff.max(asked)),
        None => Decision::Retry(backoff),
    }
}

/// The jittered backoff after failed attempt `attempt` (1-based), in `[ceiling/2, ceiling]`.
pub fn backoff(config: &RetryConfig, attempt: u32, random: u64) -> Duration {
    let doublings = attempt.saturating_sub(1);
    let ceiling = if doublings > 31 { config.max_delay } else { config.base_delay.saturating_mul(1u32 << doublings).min(config.max_delay) };
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let half = nanos / 2;
    let spread = nanos - half;
    // `spread + 1` cannot overflow: `spread` is at most `u64::MAX - u64::MAX / 2`.
    Duration::from_nanos(half + random % (spread + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(30),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn classification() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(Failure::Status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 501, 505] {
            assert!(!Failure::Status(s).is_transient(), "{s}");
        }
        assert!(!Failure::Status(429).maybe_processed());
        assert!(!Failure::Status(503).maybe_processed());
        assert!(!Failure::Connect.maybe_processed());
        assert!(Failure::Status(500).maybe_processed());
        assert!(Failure::Status(504).maybe_processed());
        assert!(Failure::Timeout.maybe_processed());
        assert!(Failure::Broken.maybe_processed());
    }

    #[test]
    fn backoff_doubles_within_jitter_window_and_caps() {
        let c = cfg();
        for (attempt, ceiling_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000), (u32::MAX, 1000)] {
            let lo = backoff(&c, attempt, 0);
            let hi = backoff(&c, attempt, u64::MAX - 1);
            assert_eq!(lo, Duration::from_millis(ceiling_ms / 2), "attempt {attempt}");
            assert!(hi <= Duration::from_millis(ceiling_ms) && hi >= lo, "attempt {attempt}: {hi:?}");
            for r in [1, 12345, 987_654_321_987, u64::MAX] {
                let d = backoff(&c, attempt, r);
                assert!(d >= lo && d <= Duration::from_millis(ceiling_ms), "attempt {attempt} random {r}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_with_zero_or_huge_settings() {
        let zero = RetryConfig { base_delay: Duration::ZERO, max_delay: Duration::ZERO, ..cfg() };
        assert_eq!(backoff(&zero, 3, 77), Duration::ZERO);
        let huge = RetryConfig { base_delay: Duration::MAX, max_delay: Duration::MAX, ..cfg() };
        assert!(backoff(&huge, 10, 5) > Duration::from_secs(1 << 32));
    }

    #[test]
    fn retries_transient_failures_until_attempts_run_out() {
        let c = cfg();
        for failure in [Failure::Connect, Failure::Timeout, Failure::Broken, Failure::Status(429), Failure::Status(500), Failure::Status(503)] {
            for attempt in 1..4 {
                assert!(matches!(decide(&c, Replay::Always, attempt, failure, None, at(NOW), 0), Decision::Retry(_)), "{failure:?} {attempt}");
            }
            assert_eq!(decide(&c, Replay::Always, 4, failure, None, at(NOW), 0), Decision::GiveUp(GiveUp::AttemptsExhausted));
        }
    }

    #[test]
    fn permanent_failures_are_never_retried() {
        for s in [400, 401, 403, 404, 409, 422, 501] {
            assert_eq!(decide(&cfg(), Replay::Always, 1, Failure::Status(s), None, at(NOW), 0), Decision::GiveUp(GiveUp::NotRetryable));
        }
    }

    #[test]
    fn only_if_not_processed_refuses_uncertain_failures() {
        let c = cfg();
        for f in [Failure::Timeout, Failure::Broken, Failure::Status(500), Failure::Status(502), Failure::Status(504)] {
            assert_eq!(decide(&c, Replay::OnlyIfNotProcessed, 1, f, None, at(NOW), 0), Decision::GiveUp(GiveUp::MaybeProcessed), "{f:?}");
        }
        for f in [Failure::Connect, Failure::Status(408), Failure::Status(429), Failure::Status(503)] {
            assert!(matches!(decide(&c, Replay::OnlyIfNotProcessed, 1, f, None, at(NOW), 0), Decision::Retry(_)), "{f:?}");
        }
        assert_eq!(decide(&c, Replay::Never, 1, Failure::Connect, None, at(NOW), 0), Decision::GiveUp(GiveUp::ReplayNever));
        assert_eq!(decide(&c, Replay::Never, 1, Failure::Status(404), None, at(NOW), 0), Decision::GiveUp(GiveUp::NotRetryable));
    }

    #[test]
    fn retry_after_raises_the_delay() {
        let c = cfg();
        let ra = RetryAfter::Delay(Duration::from_secs(3));
        assert_eq!(decide(&c, Replay::Always, 1, Failure::Status(429), Some(ra), at(NOW), 0), Decision::Retry(Duration::from_secs(3)));
        // A shorter Retry-After than the backoff keeps the backoff.
        let ra = RetryAfter::Delay(Duration::ZERO);
        assert_eq!(decide(&c, Replay::Always, 2, Failure::Status(429), Some(ra), at(NOW), 0), Decision::Retry(Duration::from_millis(100)));
        // The date form, relative to the `now` passed in; a past date means no extra wait.
        let ra = RetryAfter::At(at(NOW + 7));
        assert_eq!(decide(&c, Replay::Always, 1, Failure::Status(503), Some(ra), at(NOW), 0), Decision::Retry(Duration::from_secs(7)));
        let ra = RetryAfter::At(at(NOW - 7));
        assert_eq!(decide(&c, Replay::Always, 1, Failure::Status(503), Some(ra), at(NOW), 0), Decision::Retry(Duration::from_millis(50)));
    }

    #[test]
    fn too_long_retry_after_gives_up() {
        let ra = RetryAfter::Delay(Duration::from_secs(31));
        assert_eq!(
            decide(&cfg(), Replay::Always, 1, Failure::Status(429), Some(ra), at(NOW), 0),
            Decision::GiveUp(GiveUp::RetryAfterTooLong(Duration::from_secs(31)))
        );
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Delay(Duration::from_secs(120))));
        assert_eq!(RetryAfter::parse(" 0 "), Some(RetryAfter::Delay(Duration::ZERO)));
        assert_eq!(RetryAfter::parse("99999999999999999999999"), Some(RetryAfter::Delay(Duration::from_secs(u64::MAX))));
        assert_eq!(RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(RetryAfter::At(at(784_111_777))));
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad:?}");
        }
    }
}
