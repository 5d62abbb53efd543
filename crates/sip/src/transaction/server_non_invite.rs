//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!                       |Request received
//!                       |pass to TU
//!                       V
//!                 +-----------+
//!                 |           |
//!                 | Trying    |-------------+
//!                 |           |             |
//!                 +-----------+             |200-699 from TU
//!                       |                   |send response
//!                       |1xx from TU        |
//!                       |send response      |
//!                       |                   |
//!    Request            V      1xx from TU  |
//!    send response+-----------+send response|
//!        +--------|           |--------+    |
//!        |        | Proceeding|        |    |
//!        +------->|           |<-------+    |
//! +<--------------|           |             |
//! |Trnsprt Err    +-----------+             |
//! |Inform TU            |                   |
//! |                     |                   |
//! |                     |200-699 from TU    |
//! |                     |send response      |
//! |  Request            V                   |
//! |  send response+-----------+             |
//! |      +--------|           |             |
//! |      |        | Completed |<------------+
//! |      +------->|           |
//! +<--------------|           |
//! |Trnsprt Err    +-----------+
//! |Inform TU            |
//! |                     |Timer J fires
//! |                     |-
//! |                     |
//! |                     V
//! |               +-----------+
//! |               |           |
//! +-------------->| Terminated|
//!                 |           |
//!                 +-----------+
//! ```

use std::time::{Duration, Instant};

use super::{Action, TimerValues, Timers};

const J: usize = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Clone, Debug)]
pub struct ServerNonInvite {
    state: State,
    values: TimerValues,
    reliable: bool,
    timers: Timers<1>,
    last: Option<Vec<u8>>,
}

impl ServerNonInvite {
    /// Starts the transaction for a request just received (which the TU gets).
    pub fn new(reliable: bool, values: TimerValues) -> Self {
        ServerNonInvite { state: State::Trying, values, reliable, timers: Timers::new(), last: None }
    }

    /// A retransmission of the request: resend the last response, if any.
    pub fn on_request(&mut self) -> Action {
        match (self.state, &self.last) {
            (State::Proceeding | State::Completed, Some(_)) => Action::Retransmit,
            _ => Action::Absorb,
        }
    }

    /// The TU responds with `status`, encoded as `bytes`; returns what to send (nothing when
    /// the transaction is already completed).
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Option<Action> {
        match self.state {
            State::Trying | State::Proceeding => {
                if status < 200 {
                    self.state = State::Proceeding;
                } else {
                    self.state = State::Completed;
                    let j = if self.reliable { Duration::ZERO } else { self.values.timeout() };
                    self.timers.set(J, now + j);
                }
                self.last = Some(bytes.clone());
                Some(Action::Send(bytes))
            }
            State::Completed | State::Terminated => None,
        }
    }

    /// The last response sent.
    pub fn last_response(&self) -> Option<&[u8]> {
        self.last.as_deref()
    }

    /// Whether a final response has been given.
    pub fn is_completed(&self) -> bool {
        matches!(self.state, State::Completed | State::Terminated)
    }

    /// Handles the due timers.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.timers.take_due(now) == Some(J) {
            self.state = State::Terminated;
        }
    }

    /// When [`ServerNonInvite::on_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction is over.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn absorbs_until_it_has_a_response_then_repeats_it() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(false, TimerValues::default());
        assert_eq!(tx.on_request(), Action::Absorb);
        assert_eq!(tx.respond(t0, 100, b"100".to_vec()), Some(Action::Send(b"100".to_vec())));
        assert_eq!(tx.on_request(), Action::Retransmit);
        assert_eq!(tx.respond(t0, 200, b"200".to_vec()), Some(Action::Send(b"200".to_vec())));
        assert_eq!(tx.last_response(), Some(&b"200"[..]));
        assert_eq!(tx.on_request(), Action::Retransmit);
        assert_eq!(tx.respond(t0, 500, b"500".to_vec()), None, "one final response only");
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "Timer J: 64 T1 on UDP");
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_terminates_at_once() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(true, TimerValues::default());
        tx.respond(t0, 200, Vec::new());
        assert_eq!(tx.next_timeout(), Some(t0));
        tx.on_timeout(t0);
        assert!(tx.is_terminated());
    }
}
