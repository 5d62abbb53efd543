//! The four transaction state machines of RFC 3261 §17, with the "Accepted" states of
//! RFC 6026, in virtual time.
//!
//! A transaction holds the bytes it may have to send again and a small table of timers; its
//! owner (the endpoint) feeds it messages and timeouts and carries out the [`Action`]s it
//! returns. Over a reliable transport (TCP) nothing is retransmitted and the waiting timers are
//! zero, as §17 specifies.

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;

use std::time::{Duration, Instant};

pub use client_invite::ClientInvite;
pub use client_non_invite::ClientNonInvite;
pub use server_invite::ServerInvite;
pub use server_non_invite::ServerNonInvite;

use crate::message::Method;

/// The RFC 3261 timer base values (§17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerValues {
    /// Round-trip estimate: 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses: 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network: 5 s.
    pub t4: Duration,
}

impl Default for TimerValues {
    fn default() -> Self {
        TimerValues { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerValues {
    /// 64 × T1: the transaction timeout (timers B, F, H, J, L, M).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction asks its owner to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the transaction's message again (its request, or its last response).
    Retransmit,
    /// Send these bytes (an ACK the transaction made, or a response the TU gave it).
    Send(Vec<u8>),
    /// Give the message just received to the transaction user.
    Deliver,
    /// Tell the transaction user the transaction timed out.
    Timeout,
    /// Nothing (the message was a retransmission, absorbed).
    Absorb,
}

/// Which timer of a machine is armed, as an index into its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers<const N: usize> {
    at: [Option<Instant>; N],
}

impl<const N: usize> Timers<N> {
    pub(crate) fn new() -> Self {
        Timers { at: [None; N] }
    }

    pub(crate) fn set(&mut self, timer: usize, at: Instant) {
        self.at[timer] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: usize) {
        self.at[timer] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.at = [None; N];
    }

    /// The earliest armed timer.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The first timer due at `now`, disarmed.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<usize> {
        let (i, _) = self.at.iter().enumerate().filter_map(|(i, t)| t.map(|t| (i, t))).filter(|(_, t)| *t <= now).min_by_key(|(_, t)| *t)?;
        self.at[i] = None;
        Some(i)
    }
}

/// The identity of a transaction (RFC 3261 §17.1.3 and §17.2.3): the branch of the top Via,
/// and the method, with ACK matching its INVITE. Only RFC 3261 branches (`z9hG4bK...`) are
/// supported; an RFC 2543 peer without one is answered as best the TU can.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// The branch, with the magic cookie.
    pub branch: String,
    /// The method (INVITE for ACKs).
    pub method: Method,
    /// Whether we are the server side (our own branches and the peer's never collide in
    /// practice, but the key must not let a response match a server transaction).
    pub server: bool,
}

impl TxKey {
    /// The key of a client transaction.
    pub fn client(branch: &str, method: &Method) -> TxKey {
        TxKey { branch: branch.to_owned(), method: key_method(method), server: false }
    }

    /// The key of a server transaction.
    pub fn server(branch: &str, method: &Method) -> TxKey {
        TxKey { branch: branch.to_owned(), method: key_method(method), server: true }
    }
}

fn key_method(m: &Method) -> Method {
    if *m == Method::Ack { Method::Invite } else { m.clone() }
}

/// The RFC 3261 magic cookie that starts every branch we create and that marks a peer as
/// RFC 3261-compliant.
pub const BRANCH_COOKIE: &str = "z9hG4bK";
