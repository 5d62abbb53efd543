//! Settings of the endpoint and of each account.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::message::{Transport, Uri};
use crate::transaction::TimerValues;

/// Settings of the endpoint.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// The address we listen on (UDP and TCP).
    pub local: SocketAddr,
    /// The address advertised in Via, Contact (and, by the gateway, SDP) behind NAT; the local
    /// address when absent.
    pub public: Option<IpAddr>,
    /// The User-Agent and Server header value.
    pub user_agent: String,
    /// RFC 3261 timer values.
    pub timers: TimerValues,
    /// Seed of the identifier and jitter generator (the daemon takes it from the OS).
    pub seed: u64,
    /// First retry delay after a failed registration; doubled per failure, with ±25 % jitter.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Delay before trying again after the registrar rejected our credentials: long, so that a
    /// wrong password does not hammer the provider (and trip its fraud protection).
    pub auth_retry: Duration,
    /// The session interval we ask for on our calls, and give callers that support session
    /// timers without asking for one (RFC 4028), in seconds; 0: none.
    pub session_expires: u32,
    /// The shortest session interval we accept (our Min-SE): shorter ones get 422.
    pub min_session_expires: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            local: SocketAddr::from(([127, 0, 0, 1], 5060)),
            public: None,
            user_agent: concat!("happ-gateway/", env!("CARGO_PKG_VERSION")).into(),
            timers: TimerValues::default(),
            seed: 1,
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            auth_retry: Duration::from_secs(600),
            session_expires: 1800,
            min_session_expires: 90,
        }
    }
}

/// A SIP identity: the phone's login at its provider.
#[derive(Clone)]
pub struct AccountConfig {
    /// The address of record, `sip:login@domain` (From and To of REGISTER, From of our calls).
    pub aor: Uri,
    /// A display name for From.
    pub display_name: Option<String>,
    /// The resolved next hop for everything the account sends: its registrar or outbound proxy.
    pub proxy: SocketAddr,
    /// The transport to it.
    pub transport: Transport,
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Whether to register (false for a trunk that sends calls by IP).
    pub register: bool,
    /// Requested registration lifetime, in seconds.
    pub expires: u32,
    /// Interval of NAT keep-alives (a CRLF ping) toward the proxy, if any.
    pub keepalive: Option<Duration>,
    /// The user part of our Contact.
    pub contact_user: String,
}

impl std::fmt::Debug for AccountConfig {
    /// Everything but the password (STYLE.md, rule 12).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("aor", &self.aor)
            .field("display_name", &self.display_name)
            .field("proxy", &self.proxy)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("register", &self.register)
            .field("expires", &self.expires)
            .field("keepalive", &self.keepalive)
            .field("contact_user", &self.contact_user)
            .finish()
    }
}
