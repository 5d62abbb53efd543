//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as amended by RFC 6026).
//!
//! ```text
//!                                |INVITE
//!                                |pass INV to TU
//!             INVITE             V send 100 if TU won't in 200 ms
//!             send response+------------+
//!                 +--------|            |--------+ 101-199 from TU
//!                 |        |            |        | send response
//!                 +------->|            |<-------+
//!                          | Proceeding |
//!                          |            |--------+ Transport Err.
//!                          |            |        | Inform TU
//!                          |            |<-------+
//!                          +------------+
//!             300-699 from TU |    |2xx from TU
//!             send response   |    |send response
//!              +--------------+    +------------+
//!              |                                |
//! INVITE       V          Timer G fires         |
//! send response+-----------+ send response      |
//!     +--------|           |--------+           |
//!     |        | Completed |        |           |
//!     +------->|           |<-------+           V
//!              +-----------+              +------------+
//!                 |     |                 |  Accepted  |---+ 2xx from TU
//!             ACK |     |                 |            |<--+ send response
//!             -   |     +---------------->+------------+
//!                 |     Timer H fires           | Timer L fires
//!                 V     or Transport Err.       V
//!              +-----------+  Inform TU   +------------+
//!              |           |              |            |
//!              | Confirmed |------------->| Terminated |
//!              |           | Timer I      |            |
//!              +-----------+              +------------+
//! ```
//!
//! The 2xx is retransmitted by the TU until its ACK arrives (§13.3.1.4); in Accepted, INVITE
//! retransmissions are absorbed and an ACK that matches the transaction is passed up.

use std::time::{Duration, Instant};

use super::{Action, TimerValues, Timers};

const G: usize = 0;
const H: usize = 1;
const I: usize = 2;
const L: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// An INVITE server transaction.
#[derive(Clone, Debug)]
pub struct ServerInvite {
    state: State,
    values: TimerValues,
    reliable: bool,
    timers: Timers<4>,
    interval: Duration,
    last: Option<Vec<u8>>,
}

impl ServerInvite {
    /// Starts the transaction for an INVITE just received.
    pub fn new(reliable: bool, values: TimerValues) -> Self {
        ServerInvite { state: State::Proceeding, values, reliable, timers: Timers::new(), interval: values.t1, last: None }
    }

    /// A retransmitted INVITE: resend the last response where the RFC says so.
    pub fn on_invite(&self) -> Action {
        match (self.state, &self.last) {
            (State::Proceeding | State::Completed, Some(_)) => Action::Retransmit,
            _ => Action::Absorb,
        }
    }

    /// An ACK matching the transaction (the ACK of a failure response, or a 2xx ACK that
    /// reuses the INVITE's branch).
    pub fn on_ack(&mut self, now: Instant) -> Action {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.timers.clear_all();
                let i = if self.reliable { Duration::ZERO } else { self.values.t4 };
                self.timers.set(I, now + i);
                Action::Absorb
            }
            State::Accepted => Action::Deliver,
            _ => Action::Absorb,
        }
    }

    /// The TU responds with `status`, encoded as `bytes`.
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> Option<Action> {
        match self.state {
            State::Proceeding if status < 200 => {}
            State::Proceeding if status < 300 => {
                self.state = State::Accepted;
                self.timers.set(L, now + self.values.timeout());
            }
            State::Proceeding => {
                self.state = State::Completed;
                if !self.reliable {
                    self.timers.set(G, now + self.values.t1);
                }
                self.timers.set(H, now + self.values.timeout());
            }
            // Retransmissions of the 2xx by the TU.
            State::Accepted if (200..300).contains(&status) => {}
            _ => return None,
        }
        self.last = Some(bytes.clone());
        Some(Action::Send(bytes))
    }

    /// The last response sent.
    pub fn last_response(&self) -> Option<&[u8]> {
        self.last.as_deref()
    }

    /// Whether a final response has been sent.
    pub fn is_final(&self) -> bool {
        self.state != State::Proceeding
    }

    /// Handles the due timers.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Action> {
        let timer = self.timers.take_due(now)?;
        match (timer, self.state) {
            (G, State::Completed) => {
                self.interval = (self.interval * 2).min(self.values.t2);
                self.timers.set(G, now + self.interval);
                Some(Action::Retransmit)
            }
            (H, State::Completed) => {
                self.terminate();
                Some(Action::Timeout)
            }
            (I, State::Confirmed) | (L, State::Accepted) => {
                self.terminate();
                None
            }
            _ => None,
        }
    }

    /// A transport error ends the transaction; the TU is told.
    pub fn on_transport_error(&mut self) -> Action {
        self.terminate();
        Action::Timeout
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.clear_all();
    }

    /// When [`ServerInvite::on_timeout`] is next due.
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
    fn provisional_is_repeated_for_retransmitted_invites() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(false, TimerValues::default());
        assert_eq!(tx.on_invite(), Action::Absorb);
        tx.respond(t0, 100, b"100".to_vec());
        tx.respond(t0, 180, b"180".to_vec());
        assert_eq!(tx.on_invite(), Action::Retransmit);
        assert_eq!(tx.last_response(), Some(&b"180"[..]));
        assert!(!tx.is_final());
    }

    #[test]
    fn failure_is_retransmitted_until_acked() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(false, TimerValues::default());
        tx.respond(t0, 486, b"486".to_vec());
        let mut at = Vec::new();
        for _ in 0..5 {
            let due = tx.next_timeout().expect("timer G");
            assert_eq!(tx.on_timeout(due), Some(Action::Retransmit));
            at.push((due - t0).as_millis());
        }
        assert_eq!(at, vec![500, 1_500, 3_500, 7_500, 11_500]);
        assert_eq!(tx.on_invite(), Action::Retransmit);
        assert_eq!(tx.on_ack(t0 + Duration::from_secs(12)), Action::Absorb);
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(17)), "Timer I = T4");
        assert_eq!(tx.on_ack(t0 + Duration::from_secs(13)), Action::Absorb);
        tx.on_timeout(t0 + Duration::from_secs(17));
        assert!(tx.is_terminated());
    }

    #[test]
    fn missing_ack_times_out_at_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(true, TimerValues::default());
        tx.respond(t0, 404, Vec::new());
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "no Timer G on TCP");
        assert_eq!(tx.on_timeout(t0 + Duration::from_secs(32)), Some(Action::Timeout));
        assert!(tx.is_terminated());
    }

    #[test]
    fn accepted_absorbs_invites_passes_acks_and_lets_the_tu_resend_2xx() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(false, TimerValues::default());
        assert!(tx.respond(t0, 200, b"200".to_vec()).is_some());
        assert!(tx.is_final());
        assert_eq!(tx.on_invite(), Action::Absorb);
        assert_eq!(tx.respond(t0, 200, b"200".to_vec()), Some(Action::Send(b"200".to_vec())));
        assert_eq!(tx.respond(t0, 500, b"500".to_vec()), None);
        assert_eq!(tx.on_ack(t0), Action::Deliver);
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "Timer L");
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }
}
