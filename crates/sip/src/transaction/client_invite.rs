//! The INVITE client transaction (RFC 3261 §17.1.1.2, Figure 5, as amended by RFC 6026).
//!
//! ```text
//!                     |INVITE from TU
//!   Timer A fires     |INVITE sent
//!   Reset A,          V                      Timer B fires
//!   INVITE sent +-----------+                or Transport Err.
//!     +---------|           |---------------+inform TU
//!     |         |  Calling  |               |
//!     +-------->|           |-------------->|
//!               +-----------+ 2xx           |
//!                  |  |       2xx to TU     |
//!                  |  |1xx                  |
//!  300-699 +-------+  |1xx to TU            |
//! ACK sent |          |                     |
//! resp. to TU         V    1xx to TU        |
//!          |   +-----------+----+           |
//!          |   |           |    |           |
//!          |   |Proceeding |<---+           |
//!          |   |           |----------------+-----+
//!          |   +-----------+ 2xx            |     |
//!          |      |           2xx to TU     |     |
//!          |      |300-699                  |     V
//!          |      |ACK sent,        +------------------+
//!          |      |resp. to TU      |     Accepted     |<-+ 2xx
//!          V      V                 |                  |--+ 2xx to TU
//!       +-----------+               +------------------+
//!       |           |<--+ 300-699        | Timer M
//!       | Completed |   | ACK sent       |
//!       |           |---+                V
//!       +-----------+               +-----------+
//!          | Timer D                |Terminated |
//!          +----------------------->+-----------+
//! ```
//!
//! The ACK of a 2xx is the TU's (it starts its own transaction); the ACK of a failure response
//! is made here from the INVITE (§17.1.1.3).

use std::time::{Duration, Instant};

use super::{Action, TimerValues, Timers};
use crate::message::{HeaderName, Headers, Method, Request, Response};

const A: usize = 0;
const B: usize = 1;
const D: usize = 2;
const M: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    Accepted,
    Completed,
    Terminated,
}

/// An INVITE client transaction.
#[derive(Clone, Debug)]
pub struct ClientInvite {
    state: State,
    values: TimerValues,
    reliable: bool,
    timers: Timers<4>,
    interval: Duration,
    invite: Request,
    ack: Option<Vec<u8>>,
}

impl ClientInvite {
    /// Starts the transaction as `invite` is sent.
    pub fn new(now: Instant, invite: Request, reliable: bool, values: TimerValues) -> Self {
        let mut timers = Timers::new();
        if !reliable {
            timers.set(A, now + values.t1);
        }
        timers.set(B, now + values.timeout());
        ClientInvite { state: State::Calling, values, reliable, timers, interval: values.t1, invite, ack: None }
    }

    /// The INVITE this transaction sent.
    pub fn invite(&self) -> &Request {
        &self.invite
    }

    /// Whether a provisional or final response has come (so a CANCEL may be sent, §9.1).
    pub fn has_response(&self) -> bool {
        self.state != State::Calling
    }

    /// Handles a response; returns what to do, in order.
    pub fn on_response(&mut self, now: Instant, response: &Response) -> Vec<Action> {
        let status = response.status;
        match self.state {
            State::Calling | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                // No more retransmissions; Timer B applies to Calling only (§17.1.1.2).
                self.timers.clear(A);
                self.timers.clear(B);
                vec![Action::Deliver]
            }
            State::Calling | State::Proceeding if status < 300 => {
                self.state = State::Accepted;
                self.timers.clear_all();
                self.timers.set(M, now + self.values.timeout());
                vec![Action::Deliver]
            }
            State::Calling | State::Proceeding => {
                self.state = State::Completed;
                self.timers.clear_all();
                let d = if self.reliable { Duration::ZERO } else { Duration::from_secs(32) };
                self.timers.set(D, now + d);
                let ack = ack_for(&self.invite, response).encode();
                self.ack = Some(ack.clone());
                vec![Action::Send(ack), Action::Deliver]
            }
            // Retransmitted 2xx go to the TU, which sends its ACK again (RFC 6026 §7.2).
            State::Accepted if (200..300).contains(&status) => vec![Action::Deliver],
            // A retransmitted failure gets the same ACK again.
            State::Completed if status >= 300 => match &self.ack {
                Some(ack) => vec![Action::Send(ack.clone())],
                None => vec![Action::Absorb],
            },
            _ => vec![Action::Absorb],
        }
    }

    /// Handles the due timers.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Action> {
        let timer = self.timers.take_due(now)?;
        match (timer, self.state) {
            (A, State::Calling) => {
                self.interval *= 2;
                self.timers.set(A, now + self.interval);
                Some(Action::Retransmit)
            }
            (B, State::Calling) => {
                self.terminate();
                Some(Action::Timeout)
            }
            (D, State::Completed) | (M, State::Accepted) => {
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

    /// When [`ClientInvite::on_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the transaction is over.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}

/// The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
/// Call-ID, From, top Via (same branch) and Route set; the response's To (with its tag); the
/// CSeq number with method ACK.
pub fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.get(&HeaderName::Via) {
        // Only the top Via entry.
        let top = crate::message::Headers::top_via(&invite.headers).map(|v| v.to_string()).unwrap_or_else(|_| via.to_owned());
        headers.push(HeaderName::Via, top);
    }
    headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get(&HeaderName::To) {
        headers.push(HeaderName::To, to);
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
    headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    for route in invite.headers.get_all(&HeaderName::Route) {
        headers.push(HeaderName::Route, route);
    }
    Request { method: Method::Ack, uri: invite.uri.clone(), headers, body: Vec::new() }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;
    use crate::message::{Message, parse};

    fn invite() -> Request {
        let text = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\nMax-Forwards: 70\r\nRoute: <sip:10.0.0.9;lr>\r\nFrom: <sip:alice@10.0.0.1>;tag=f1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nContent-Length: 0\r\n\r\n";
        match parse(text.as_bytes()).expect("valid") {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn response(status: u16) -> Response {
        let mut r = Response::for_request(&invite(), status, "x", Some("t9"));
        r.headers.push(HeaderName::Contact, "<sip:bob@10.0.0.2>");
        r
    }

    #[test]
    fn retransmits_doubling_without_cap_until_timer_b() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), false, TimerValues::default());
        let mut times = Vec::new();
        while let Some(at) = tx.next_timeout() {
            match tx.on_timeout(at) {
                Some(Action::Retransmit) => times.push((at - t0).as_millis()),
                Some(Action::Timeout) => {
                    times.push(u128::MAX);
                    assert_eq!(at - t0, Duration::from_secs(32));
                }
                _ => {}
            }
        }
        assert_eq!(times, vec![500, 1_500, 3_500, 7_500, 15_500, 31_500, u128::MAX]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn provisional_stops_retransmissions_and_timer_b() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), false, TimerValues::default());
        assert!(!tx.has_response());
        assert_eq!(tx.on_response(t0, &response(180)), vec![Action::Deliver]);
        assert!(tx.has_response());
        assert_eq!(tx.next_timeout(), None, "waits for the final response as long as the TU wants");
    }

    #[test]
    fn failure_is_acked_by_the_transaction_and_retransmissions_reacked() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), false, TimerValues::default());
        let actions = tx.on_response(t0, &response(486));
        let [Action::Send(ack), Action::Deliver] = &actions[..] else { panic!("{actions:?}") };
        let Message::Request(ack) = parse(ack).expect("valid ACK") else { panic!("request") };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri.to_string(), "sip:bob@10.0.0.2");
        assert_eq!(ack.headers.top_via().expect("via").branch(), Some("z9hG4bKabc"));
        assert_eq!(ack.headers.vias().expect("vias").len(), 1);
        assert_eq!(ack.headers.to().expect("to").tag(), Some("t9"));
        assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("7 ACK"));
        assert_eq!(ack.headers.get(&HeaderName::Route), Some("<sip:10.0.0.9;lr>"));
        assert!(ack.validate().is_ok());
        // The retransmitted 486 gets the same ACK, and is not delivered again.
        let again = tx.on_response(t0 + Duration::from_secs(1), &response(486));
        assert!(matches!(&again[..], [Action::Send(a)] if a == &ack.encode()));
        // Timer D: 32 s on UDP.
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn accepted_passes_retransmitted_2xx_up_until_timer_m() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), true, TimerValues::default());
        assert_eq!(tx.on_response(t0, &response(200)), vec![Action::Deliver]);
        assert_eq!(tx.on_response(t0, &response(200)), vec![Action::Deliver]);
        assert_eq!(tx.on_response(t0, &response(180)), vec![Action::Absorb]);
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(tx.on_timeout(t0 + Duration::from_secs(32)), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_acks_and_ends_at_once() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), true, TimerValues::default());
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "Timer B only, no Timer A");
        tx.on_response(t0, &response(603));
        assert_eq!(tx.next_timeout(), Some(t0));
        tx.on_timeout(t0);
        assert!(tx.is_terminated());
    }
}
