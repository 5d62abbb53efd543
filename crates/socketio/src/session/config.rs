//! Session settings.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::socketio::{MAIN_NAMESPACE, namespace_valid};

/// The longest delay or timeout the session accepts in its settings and commands; it keeps every
/// deadline representable.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);

/// How the session reconnects after a connection ends.
///
/// The delay before reconnect attempt `n` (1, 2, …) is `d = min(cap, base · 2^(n-1))`, spread
/// by `jitter` to a uniform draw in `[d·(1-jitter), d·(1+jitter)]`, then capped at `cap` again.
/// The attempt count restarts once a connection reaches every namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// The delay before the first attempt.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// The spread, in `[0, 1]` (0.5 is the Socket.IO reference client's randomization factor).
    pub jitter: f64,
    /// How many attempts in a row before giving up; `None` retries for ever, `Some(0)` never
    /// reconnects.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 1 s doubling to 30 s, ±50 %, for ever: a gateway wants its platform link back.
    fn default() -> Self {
        ReconnectPolicy { base: Duration::from_secs(1), cap: Duration::from_secs(30), jitter: 0.5, max_attempts: None }
    }
}

/// Settings of a [`crate::Session`]. Its `Debug` output hides the auth object.
#[derive(Clone, PartialEq)]
pub struct SessionConfig {
    /// The namespaces to connect to, each `/…` without a `,`; the first is the default one of the
    /// client API. The session counts as connected when every one is.
    pub namespaces: Vec<String>,
    /// The auth object sent with every CONNECT (`40{"token":"…"}`); `None` sends a bare `40`.
    /// Protocol v5 requires an object, hence the type. It holds secrets: the session never logs
    /// it and `Debug` prints only its keys.
    pub auth: Option<Map<String, Value>>,
    /// How long a connection may take from the driver being asked to open it to every namespace
    /// being connected (the reference client's `timeout`, 20 s).
    pub connect_timeout: Duration,
    /// Reconnection after a lost connection.
    pub reconnect: ReconnectPolicy,
    /// Whether a CONNECT_ERROR (the server refusing the auth) is retried like a lost
    /// connection. Off by default: a refused token stays refused, and the session closes; turn
    /// it on if the server may refuse for passing reasons, and refresh the token with
    /// [`crate::Session::set_auth`].
    pub reconnect_on_connect_error: bool,
    /// How many emits may wait for the driver (queued while not connected, or not yet taken by
    /// [`crate::Session::poll_transmit`]). Beyond it, [`crate::Session::emit`] refuses new emits
    /// with [`crate::EmitError::QueueFull`] and keeps the ones already queued.
    pub max_queued: usize,
    /// The largest frame we send before the server's handshake states its `maxPayload`.
    pub max_payload: u64,
    /// The seed of the generator that draws the backoff jitter (the driver seeds it from the OS,
    /// tests with a constant).
    pub seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            namespaces: vec![MAIN_NAMESPACE.to_owned()],
            auth: None,
            connect_timeout: Duration::from_secs(20),
            reconnect: ReconnectPolicy::default(),
            reconnect_on_connect_error: false,
            max_queued: 1024,
            max_payload: crate::engineio::DEFAULT_MAX_PAYLOAD,
            seed: 0,
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth_keys: Option<Vec<&String>> = self.auth.as_ref().map(|a| a.keys().collect());
        f.debug_struct("SessionConfig")
            .field("namespaces", &self.namespaces)
            .field("auth_keys", &auth_keys)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect", &self.reconnect)
            .field("reconnect_on_connect_error", &self.reconnect_on_connect_error)
            .field("max_queued", &self.max_queued)
            .field("max_payload", &self.max_payload)
            .field("seed", &self.seed)
            .finish()
    }
}

/// Why a [`SessionConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No namespace to connect to.
    #[error("at least one namespace is needed")]
    NoNamespace,
    /// A namespace that does not start with `/` or holds a `,`.
    #[error("invalid namespace {0:?}: it must start with '/' and hold no ','")]
    Namespace(String),
    /// The same namespace twice.
    #[error("namespace {0:?} appears twice")]
    DuplicateNamespace(String),
    /// A backoff with a zero base, a cap below the base, or a jitter outside `[0, 1]`.
    #[error("invalid reconnect policy: {0}")]
    Reconnect(&'static str),
    /// A delay or timeout that is zero or longer than a day.
    #[error("{0} must be between 1 ms and one day")]
    Duration(&'static str),
    /// A zero queue bound.
    #[error("max_queued must be at least 1")]
    MaxQueued,
}

impl SessionConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.namespaces.is_empty() {
            return Err(ConfigError::NoNamespace);
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if !namespace_valid(ns) {
                return Err(ConfigError::Namespace(ns.clone()));
            }
            if self.namespaces[..i].contains(ns) {
                return Err(ConfigError::DuplicateNamespace(ns.clone()));
            }
        }
        let in_range = |d: Duration| d >= Duration::from_millis(1) && d <= MAX_DELAY;
        if !in_range(self.connect_timeout) {
            return Err(ConfigError::Duration("connect_timeout"));
        }
        let r = &self.reconnect;
        if !in_range(r.base) || !in_range(r.cap) {
            return Err(ConfigError::Duration("reconnect base and cap"));
        }
        if r.cap < r.base {
            return Err(ConfigError::Reconnect("cap below base"));
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            return Err(ConfigError::Reconnect("jitter outside [0, 1]"));
        }
        if self.max_queued == 0 {
            return Err(ConfigError::MaxQueued);
        }
        Ok(())
    }
}
