//! Any text as an Engine.IO frame and as a Socket.IO packet: no panic, and what parses encodes to
//! text that parses to the same packet. Then a Socket.IO session driven by the same bytes as a
//! script (frames, transport open/close, emits, acks, close, time passing): no panic, a bounded
//! queue, a timer whenever it is not closed, and every `WantConnect` answered by exactly one
//! `Disconnected`.
//!
//! The input is split at `\n` into chunks; the first byte of each picks the action (low 3 bits)
//! and how long to wait before it (the rest, in 37 ms steps).
#![no_main]

use std::time::{Duration, Instant};

use happ_socketio::engineio::{self, Handshake};
use happ_socketio::socketio;
use happ_socketio::{Event, Frame, PeerAck, Phase, ReconnectPolicy, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const MAX_QUEUED: usize = 8;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    parsers(&text);
    session(data);
});

fn parsers(text: &str) {
    if let Ok(p) = engineio::Packet::parse(text) {
        let mut out = String::new();
        p.encode(&mut out);
        assert_eq!(engineio::Packet::parse(&out), Ok(p), "Engine.IO round trip");
        if let engineio::Packet::Open(json) = p
            && let Ok(h) = Handshake::parse(json)
        {
            assert_eq!(Handshake::parse(&h.to_json()), Ok(h), "handshake round trip");
        }
    }
    if let Ok(p) = socketio::Packet::parse(text) {
        let mut out = String::new();
        p.encode(&mut out);
        assert_eq!(socketio::Packet::parse(&out).as_ref(), Ok(&p), "Socket.IO round trip of {text:?} via {out:?}");
    }
}

fn session(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let config = SessionConfig {
        namespaces: vec!["/".into(), "/admin".into()],
        auth: json!({"token": "t"}).as_object().cloned(),
        connect_timeout: Duration::from_secs(3),
        reconnect: ReconnectPolicy { base: Duration::from_millis(50), cap: Duration::from_secs(2), jitter: 0.5, max_attempts: Some(20) },
        max_queued: MAX_QUEUED,
        seed: 3,
        ..SessionConfig::default()
    };
    let Ok(mut s) = Session::new(config, now) else { return };
    let mut outstanding = false; // a WantConnect not yet answered by a Disconnected
    drain(&mut s, &mut outstanding);
    for chunk in data.split(|b| *b == b'\n') {
        let Some((&first, rest)) = chunk.split_first() else { continue };
        now += Duration::from_millis(u64::from(first >> 3) * 37);
        while let Some(at) = s.poll_timeout().filter(|at| *at <= now) {
            s.handle_timeout(at);
            drain(&mut s, &mut outstanding);
        }
        let text = String::from_utf8_lossy(rest);
        let arg = rest.first().copied().unwrap_or(0);
        let ns = if arg & 1 == 0 { "/" } else { "/admin" };
        match first & 7 {
            0 | 1 => s.handle_frame(now, Frame::Text(&text)),
            2 => s.handle_frame(now, Frame::Binary(rest)),
            3 => s.handle_transport_open(now),
            4 => s.handle_transport_closed(now, "fuzz"),
            5 => {
                let _ = s.emit(now, ns, &text, &[json!(arg), Value::String(text.to_string())]);
            }
            6 => {
                if arg & 2 == 0 {
                    let _ = s.emit_with_ack(now, ns, "a", &[], Duration::from_millis(u64::from(arg) * 20));
                } else {
                    let _ = s.ack(now, ns, PeerAck(u64::from(arg)), &[json!(null)]);
                }
            }
            _ => s.close(now),
        }
        drain(&mut s, &mut outstanding);
        assert!(s.queued() <= MAX_QUEUED, "queue bound");
        assert!(s.phase() == Phase::Closed || s.poll_timeout().is_some(), "a live session always has a timer");
        if s.phase() == Phase::Connected {
            assert!(s.is_connected("/") && s.is_connected("/admin"));
        }
    }
}

fn drain(s: &mut Session, outstanding: &mut bool) {
    let mut sent = 0;
    while s.poll_transmit().is_some() {
        sent += 1;
        assert!(sent <= 64, "runaway transmit");
    }
    while let Some(event) = s.poll_event() {
        match event {
            Event::WantConnect { .. } => {
                assert!(!*outstanding, "WantConnect before the last connection ended");
                *outstanding = true;
            }
            Event::Disconnected { .. } => {
                assert!(*outstanding, "Disconnected without a connection");
                *outstanding = false;
            }
            Event::Closed => assert_eq!(s.phase(), Phase::Closed),
            _ => {}
        }
    }
}
