//! Scenario tests of the endpoint in virtual time, against a scripted peer that speaks raw SIP.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

mod registration;
mod session_timer;
mod uac;
mod uas;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::message::{Message, Request, Response, parse};

pub(super) const GW: &str = "127.0.0.1:5060";
pub(super) const PEER: &str = "127.0.0.1:5070";

/// The endpoint under test and a clock.
pub(super) struct Harness {
    pub ep: Endpoint,
    pub now: Instant,
    pub t0: Instant,
    pub sent: Vec<(Instant, Transmit)>,
    pub events: Vec<Event>,
}

impl Harness {
    pub fn new() -> Self {
        let now = Instant::now();
        let ep = Endpoint::new(EndpointConfig { local: GW.parse().expect("addr"), seed: 42, ..Default::default() });
        Harness { ep, now, t0: now, sent: Vec::new(), events: Vec::new() }
    }

    pub fn peer() -> SocketAddr {
        PEER.parse().expect("addr")
    }

    /// Collects what the endpoint wants to send and report.
    pub fn drain(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            self.sent.push((self.now, t));
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
    }

    /// Delivers `text` from the peer over UDP.
    pub fn recv(&mut self, text: &str) {
        self.recv_from(Transport::Udp, Self::peer(), text);
    }

    pub fn recv_from(&mut self, transport: Transport, source: SocketAddr, text: &str) {
        self.ep.handle_message(self.now, transport, source, text.as_bytes());
        self.drain();
    }

    /// Advances virtual time to `t0 + at`, firing every timer on the way.
    pub fn advance_to(&mut self, at: Duration) {
        let until = self.t0 + at;
        while let Some(next) = self.ep.poll_timeout().filter(|n| *n <= until) {
            self.now = next.max(self.now);
            self.ep.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    pub fn advance(&mut self, d: Duration) {
        let at = self.now + d - self.t0;
        self.advance_to(at);
    }

    /// Messages sent so far (parsed), with their time since start, and clears them.
    pub fn take_sent(&mut self) -> Vec<(Duration, SocketAddr, Message)> {
        let t0 = self.t0;
        std::mem::take(&mut self.sent)
            .into_iter()
            .filter(|(_, t)| !t.bytes.iter().all(u8::is_ascii_whitespace))
            .map(|(at, t)| {
                (at - t0, t.dest, parse(&t.bytes).unwrap_or_else(|e| panic!("we sent an unparseable message: {e}\n{}", String::from_utf8_lossy(&t.bytes))))
            })
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

pub(super) fn response(m: &Message) -> &Response {
    match m {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

pub(super) fn request(m: &Message) -> &Request {
    match m {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

/// Statuses of the responses in `sent`.
pub(super) fn statuses(sent: &[(Duration, SocketAddr, Message)]) -> Vec<u16> {
    sent.iter().filter_map(|(_, _, m)| if let Message::Response(r) = m { Some(r.status) } else { None }).collect()
}

/// A minimal SDP body for offers in tests.
pub(super) const SDP: &str =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 16000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// An INVITE from the peer to the gateway's number.
pub(super) fn invite(branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\n\
To: <sip:+380501234567@127.0.0.1>\r\n\
Call-ID: call-1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5070>\r\n\
{extra}Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}
