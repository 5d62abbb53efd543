//! The session in virtual time: a scripted server feeds frames, the test plays the driver.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const OPEN: &str = r#"0{"sid":"eio-1","upgrades":[],"pingInterval":1000,"pingTimeout":500,"maxPayload":1000000}"#;

fn config() -> SessionConfig {
    let mut auth = serde_json::Map::new();
    auth.insert("token".into(), json!("secret"));
    SessionConfig {
        auth: Some(auth),
        connect_timeout: Duration::from_secs(5),
        reconnect: ReconnectPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(2), jitter: 0.5, max_attempts: None },
        seed: 7,
        ..SessionConfig::default()
    }
}

/// The test plays the driver: it holds the clock and drains the session.
struct Driver {
    s: Session,
    now: Instant,
}

impl Driver {
    fn new(config: SessionConfig) -> Driver {
        let now = Instant::now();
        Driver { s: Session::new(config, now).unwrap(), now }
    }

    fn tx(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn frame(&mut self, text: &str) {
        self.s.handle_frame(self.now, Frame::Text(text));
    }

    /// Moves the clock to `now + d`, firing every deadline on the way, in order.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(at) = self.s.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.s.handle_timeout(self.now);
        }
        self.now = until;
    }

    /// Runs a connection from `WantConnect` to every namespace connected; returns the frames sent
    /// after the CONNECT replies (the flushed queue).
    fn connect(&mut self) -> Vec<String> {
        assert_eq!(self.s.phase(), Phase::Connecting, "expected a WantConnect");
        self.events();
        self.s.handle_transport_open(self.now);
        assert_eq!(self.s.phase(), Phase::Opening);
        self.frame(OPEN);
        let connects = self.tx();
        assert_eq!(connects.len(), self.s.config().namespaces.len());
        for (i, ns) in self.s.config().namespaces.clone().iter().enumerate() {
            let prefix = if ns == "/" { String::new() } else { format!("{ns},") };
            self.frame(&format!("40{prefix}{{\"sid\":\"sio-{i}\"}}"));
        }
        assert_eq!(self.s.phase(), Phase::Connected);
        self.tx()
    }
}

fn connected_events(events: &[Event]) -> Vec<(String, bool)> {
    events.iter().filter_map(|e| if let Event::Connected { namespace, reconnected, .. } = e { Some((namespace.clone(), *reconnected)) } else { None }).collect()
}

#[test]
fn handshake_sends_connect_with_auth_and_reports_connected() {
    let mut d = Driver::new(config());
    assert_eq!(d.events(), [Event::WantConnect { attempt: 0 }]);
    assert_eq!(d.s.phase(), Phase::Connecting);
    assert!(d.tx().is_empty());
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    assert_eq!(d.s.phase(), Phase::Open);
    assert_eq!(d.s.engine_sid(), Some("eio-1"));
    assert_eq!(d.tx(), [r#"40{"token":"secret"}"#]);
    d.frame(r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
    assert_eq!(d.s.phase(), Phase::Connected);
    assert!(d.s.is_connected("/"));
    assert_eq!(d.events(), [Event::Connected { namespace: "/".into(), sid: "wZX3oN0bSVIhsaknAAAI".into(), reconnected: false }]);
    assert_eq!(d.s.stats().connections, 1);
}

#[test]
fn connect_without_auth_is_a_bare_40() {
    let mut d = Driver::new(SessionConfig { auth: None, ..config() });
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    assert_eq!(d.tx(), ["40"]);
}

#[test]
fn events_in_and_out() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    d.s.emit(d.now, "/", "hello", &[json!({"a": 1})]).unwrap();
    d.s.emit(d.now, "/", "two", &[json!(1), json!("x")]).unwrap();
    d.s.emit(d.now, "/", "none", &[]).unwrap();
    assert_eq!(d.tx(), [r#"42["hello",{"a":1}]"#, r#"42["two",1,"x"]"#, r#"42["none"]"#]);
    d.frame(r#"42["news",{"x":1},2]"#);
    d.frame(r#"42[7]"#);
    assert_eq!(
        d.events(),
        [
            Event::Event { namespace: "/".into(), name: "news".into(), args: vec![json!({"x": 1}), json!(2)], ack: None },
            Event::Event { namespace: "/".into(), name: "7".into(), args: vec![], ack: None },
        ]
    );
    assert_eq!(d.s.stats().frames_out, 4); // CONNECT + 3 emits
}

#[test]
fn namespaces_connect_separately_and_queue_per_namespace() {
    let mut d = Driver::new(SessionConfig { namespaces: vec!["/".into(), "/admin".into()], ..config() });
    d.events();
    d.s.emit(d.now, "/admin", "early", &[json!(1)]).unwrap();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    assert_eq!(d.tx(), [r#"40{"token":"secret"}"#, r#"40/admin,{"token":"secret"}"#]);
    d.frame(r#"40{"sid":"a"}"#);
    assert_eq!(d.s.phase(), Phase::Open);
    assert!(d.s.is_connected("/") && !d.s.is_connected("/admin"));
    d.s.emit(d.now, "/", "main", &[]).unwrap();
    assert_eq!(d.tx(), [r#"42["main"]"#], "the main namespace does not wait for /admin");
    d.frame(r#"40/admin,{"sid":"b"}"#);
    assert_eq!(d.s.phase(), Phase::Connected);
    assert_eq!(d.tx(), [r#"42/admin,["early",1]"#]);
    assert_eq!(connected_events(&d.events()), [("/".into(), false), ("/admin".into(), false)]);
    d.frame(r#"42/admin,5["question",{"q":1}]"#);
    let ev = d.events();
    assert_eq!(ev, [Event::Event { namespace: "/admin".into(), name: "question".into(), args: vec![json!({"q": 1})], ack: Some(PeerAck(5)) }]);
    d.s.ack(d.now, "/admin", PeerAck(5), &[json!("answer")]).unwrap();
    assert_eq!(d.tx(), [r#"43/admin,5["answer"]"#]);
    d.frame(r#"42/other,["x"]"#);
    assert!(matches!(d.events()[..], [Event::Malformed { error: ProtocolError::Unexpected(_) }]));
    assert_eq!(d.s.emit(d.now, "/other", "x", &[]), Err(EmitError::UnknownNamespace("/other".into())));
}

#[test]
fn acks_arrive_time_out_and_late_ones_are_counted() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    let a = d.s.emit_with_ack(d.now, "/", "echo", &[json!("x")], Duration::from_secs(1)).unwrap();
    let b = d.s.emit_with_ack(d.now, "/", "slow", &[], Duration::from_secs(1)).unwrap();
    assert_eq!((a, b), (AckId(0), AckId(1)));
    assert_eq!(d.tx(), [r#"420["echo","x"]"#, r#"421["slow"]"#]);
    d.frame(r#"430["x"]"#);
    assert_eq!(d.events(), [Event::Ack { namespace: "/".into(), id: a, args: vec![json!("x")] }]);
    d.advance(Duration::from_millis(999));
    d.frame("2");
    d.tx();
    assert!(d.events().is_empty());
    d.advance(Duration::from_millis(1));
    assert_eq!(d.events(), [Event::AckFailed { id: b, reason: AckFailure::Timeout }]);
    d.frame("431[]");
    assert!(d.events().is_empty(), "a late ack is ignored");
    assert_eq!(d.s.stats().unknown_acks, 1);
    assert_eq!(d.s.stats().ack_timeouts, 1);
    d.frame("43[]");
    assert!(matches!(d.events()[..], [Event::Malformed { error: ProtocolError::Unexpected(_) }]));
}

#[test]
fn server_pings_are_answered_and_keep_the_link() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    // pingInterval 1000 + pingTimeout 500
    assert_eq!(d.s.poll_timeout(), Some(d.now + Duration::from_millis(1500)));
    for _ in 0..10 {
        d.advance(Duration::from_millis(1000));
        d.frame("2");
        assert_eq!(d.tx(), ["3"]);
        assert_eq!(d.s.poll_timeout(), Some(d.now + Duration::from_millis(1500)));
    }
    d.advance(Duration::from_millis(1499));
    d.frame("2probe");
    assert_eq!(d.tx(), ["3probe"]);
    assert!(d.events().is_empty());
    assert_eq!(d.s.phase(), Phase::Connected);
    assert_eq!(d.s.stats().pings, 11);
}

#[test]
fn missing_pings_end_the_connection_and_schedule_a_reconnect() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    d.advance(Duration::from_millis(1499));
    assert!(d.events().is_empty());
    d.advance(Duration::from_millis(1));
    let ev = d.events();
    assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::HeartbeatTimeout });
    assert_eq!(DisconnectReason::HeartbeatTimeout.initiator(), Initiator::Timeout);
    let Event::Reconnecting { attempt: 1, delay } = ev[1] else { panic!("{ev:?}") };
    let (lo, hi) = config().reconnect.bounds(1);
    assert!(delay >= lo && delay <= hi);
    assert_eq!(d.s.phase(), Phase::Waiting);
    // Frames from the dead socket are ignored.
    d.frame("2");
    assert!(d.tx().is_empty());
    assert_eq!(d.s.stats().stray_frames, 1);
    d.advance(delay);
    assert_eq!(d.events(), [Event::WantConnect { attempt: 1 }]);
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    d.tx();
    d.frame(r#"40{"sid":"again"}"#);
    assert_eq!(connected_events(&d.events()), [("/".into(), true)]);
}

#[test]
fn reconnect_backoff_doubles_with_jitter_until_the_cap_and_resets_after_success() {
    let policy = config().reconnect;
    let mut d = Driver::new(config());
    let mut delays = Vec::new();
    for attempt in 1..=8u32 {
        assert_eq!(d.events(), [Event::WantConnect { attempt: attempt - 1 }]);
        d.s.handle_transport_closed(d.now, "connection refused");
        let ev = d.events();
        assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::Transport { message: "connection refused".into() } });
        let Event::Reconnecting { attempt: n, delay } = ev[1] else { panic!("{ev:?}") };
        assert_eq!(n, attempt);
        let (lo, hi) = policy.bounds(attempt);
        assert!(delay >= lo && delay <= hi, "attempt {attempt}: {delay:?} outside {lo:?}..={hi:?}");
        assert!(delay <= policy.cap);
        delays.push(delay);
        // Nothing happens before the delay is over.
        d.advance(delay - Duration::from_millis(1));
        assert!(d.events().is_empty());
        assert_eq!(d.s.phase(), Phase::Waiting);
        d.advance(Duration::from_millis(1));
    }
    // Nominal 100, 200, 400, 800, 1600, 2000 (cap)…: the late ones are bounded by the cap.
    assert!(delays[5..].iter().all(|d| *d >= Duration::from_secs(1)));
    // A success resets the count: the next loss is attempt 1 again.
    d.connect();
    d.events();
    d.s.handle_transport_closed(d.now, "reset");
    let ev = d.events();
    assert!(matches!(ev[1], Event::Reconnecting { attempt: 1, .. }), "{ev:?}");
}

#[test]
fn the_same_seed_gives_the_same_delays() {
    let run = || {
        let mut d = Driver::new(config());
        let mut delays = Vec::new();
        for _ in 0..5 {
            d.events();
            d.s.handle_transport_closed(d.now, "x");
            for e in d.events() {
                if let Event::Reconnecting { delay, .. } = e {
                    delays.push(delay);
                    d.advance(delay);
                }
            }
        }
        delays
    };
    assert_eq!(run(), run());
}

#[test]
fn gives_up_after_max_attempts() {
    let mut d = Driver::new(SessionConfig { reconnect: ReconnectPolicy { max_attempts: Some(2), ..config().reconnect }, ..config() });
    for _ in 0..2 {
        d.events();
        d.s.handle_transport_closed(d.now, "refused");
        let delay = d.events().iter().find_map(|e| if let Event::Reconnecting { delay, .. } = e { Some(*delay) } else { None }).unwrap();
        d.advance(delay);
    }
    d.events();
    d.s.handle_transport_closed(d.now, "refused");
    assert_eq!(d.events(), [Event::Disconnected { reason: DisconnectReason::Transport { message: "refused".into() } }, Event::Closed]);
    assert_eq!(d.s.phase(), Phase::Closed);
    assert_eq!(d.s.poll_timeout(), None);
}

#[test]
fn never_reconnects_with_zero_attempts() {
    let mut d = Driver::new(SessionConfig { reconnect: ReconnectPolicy { max_attempts: Some(0), ..config().reconnect }, ..config() });
    d.connect();
    d.events();
    d.frame("1");
    assert_eq!(d.events(), [Event::Disconnected { reason: DisconnectReason::ServerClose }, Event::Closed]);
}

#[test]
fn emits_before_connect_are_flushed_in_order_after_the_connect_reply() {
    let mut d = Driver::new(config());
    d.events();
    d.s.emit(d.now, "/", "e", &[json!(0)]).unwrap();
    d.s.emit(d.now, "/", "e", &[json!(1)]).unwrap();
    assert!(d.tx().is_empty(), "nothing leaves before the connection");
    d.s.handle_transport_open(d.now);
    d.s.emit(d.now, "/", "e", &[json!(2)]).unwrap();
    d.frame(OPEN);
    d.s.emit(d.now, "/", "e", &[json!(3)]).unwrap();
    assert_eq!(d.tx(), [r#"40{"token":"secret"}"#], "only the CONNECT before the reply");
    assert_eq!(d.s.queued(), 4);
    d.frame(r#"40{"sid":"s"}"#);
    d.s.emit(d.now, "/", "e", &[json!(4)]).unwrap();
    assert_eq!(d.tx(), (0..5).map(|i| format!(r#"42["e",{i}]"#)).collect::<Vec<_>>());
    assert_eq!(d.s.queued(), 0);
}

#[test]
fn emits_not_taken_before_a_loss_go_out_after_the_reconnect_in_order() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    d.s.emit(d.now, "/", "e", &[json!(0)]).unwrap();
    assert_eq!(d.tx().len(), 1);
    d.s.emit(d.now, "/", "e", &[json!(1)]).unwrap();
    d.s.emit(d.now, "/", "e", &[json!(2)]).unwrap();
    d.frame("2"); // a pong is queued too: it belongs to the dead connection
    d.s.handle_transport_closed(d.now, "reset");
    d.s.emit(d.now, "/", "e", &[json!(3)]).unwrap();
    let delay = d.events().iter().find_map(|e| if let Event::Reconnecting { delay, .. } = e { Some(*delay) } else { None }).unwrap();
    d.advance(delay);
    let flushed = d.connect();
    assert_eq!(flushed, (1..4).map(|i| format!(r#"42["e",{i}]"#)).collect::<Vec<_>>());
}

#[test]
fn a_full_queue_refuses_new_emits_and_keeps_the_old() {
    let mut d = Driver::new(SessionConfig { max_queued: 3, ..config() });
    for i in 0..3 {
        d.s.emit(d.now, "/", "e", &[json!(i)]).unwrap();
    }
    assert_eq!(d.s.emit(d.now, "/", "e", &[json!(3)]), Err(EmitError::QueueFull(3)));
    assert_eq!(d.s.stats().emits_refused, 1);
    let flushed = d.connect();
    assert_eq!(flushed, (0..3).map(|i| format!(r#"42["e",{i}]"#)).collect::<Vec<_>>());
    d.s.emit(d.now, "/", "e", &[json!(4)]).unwrap();
}

#[test]
fn a_queued_emit_whose_ack_times_out_is_dropped() {
    let mut d = Driver::new(config());
    d.events();
    let id = d.s.emit_with_ack(d.now, "/", "a", &[], Duration::from_millis(100)).unwrap();
    d.s.emit(d.now, "/", "b", &[]).unwrap();
    d.advance(Duration::from_millis(100));
    assert_eq!(d.events(), [Event::AckFailed { id, reason: AckFailure::Timeout }]);
    assert_eq!(d.s.queued(), 1);
    assert_eq!(d.connect(), [r#"42["b"]"#]);
}

#[test]
fn sent_acks_fail_on_a_loss_and_queued_ones_survive() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    let sent = d.s.emit_with_ack(d.now, "/", "a", &[], Duration::from_secs(60)).unwrap();
    d.tx();
    let queued = d.s.emit_with_ack(d.now, "/", "b", &[], Duration::from_secs(60)).unwrap();
    d.s.handle_transport_closed(d.now, "reset");
    let ev = d.events();
    assert!(ev.contains(&Event::AckFailed { id: sent, reason: AckFailure::Disconnected }));
    assert!(!ev.iter().any(|e| matches!(e, Event::AckFailed { id, .. } if *id == queued)));
    let delay = ev.iter().find_map(|e| if let Event::Reconnecting { delay, .. } = e { Some(*delay) } else { None }).unwrap();
    d.advance(delay);
    assert_eq!(d.connect(), [r#"421["b"]"#]);
    d.frame("431[true]");
    assert!(d.events().contains(&Event::Ack { namespace: "/".into(), id: queued, args: vec![json!(true)] }));
}

#[test]
fn a_connect_error_closes_the_session_by_default() {
    let mut d = Driver::new(config());
    d.events();
    let id = d.s.emit_with_ack(d.now, "/", "a", &[], Duration::from_secs(60)).unwrap();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    d.tx();
    d.frame(r#"44{"message":"invalid token","data":{"code":401}}"#);
    let reason = DisconnectReason::ConnectError { namespace: "/".into(), message: "invalid token".into(), data: Some(json!({"code": 401})) };
    assert_eq!(reason.initiator(), Initiator::Peer);
    assert_eq!(d.events(), [Event::Disconnected { reason }, Event::AckFailed { id, reason: AckFailure::Closed }, Event::Closed]);
    assert_eq!(d.s.phase(), Phase::Closed);
    assert_eq!(d.s.emit(d.now, "/", "x", &[]), Err(EmitError::Closed));
    assert_eq!(d.s.poll_timeout(), None);
}

#[test]
fn a_connect_error_may_be_retried_with_a_new_token() {
    let mut d = Driver::new(SessionConfig { reconnect_on_connect_error: true, ..config() });
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    d.tx();
    d.frame(r#"44"expired""#);
    let ev = d.events();
    assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::ConnectError { namespace: "/".into(), message: "expired".into(), data: None } });
    let Event::Reconnecting { delay, .. } = ev[1] else { panic!("{ev:?}") };
    let mut auth = serde_json::Map::new();
    auth.insert("token".into(), json!("fresh"));
    d.s.set_auth(Some(auth));
    d.advance(delay);
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    assert_eq!(d.tx(), [r#"40{"token":"fresh"}"#]);
}

#[test]
fn a_connect_reply_without_sid_is_a_protocol_error() {
    let mut d = Driver::new(config());
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    d.tx();
    d.frame("40");
    assert_eq!(d.events()[0], Event::Disconnected { reason: DisconnectReason::Protocol(ProtocolError::MissingSid) });
}

#[test]
fn a_bad_handshake_ends_the_connection() {
    let mut d = Driver::new(config());
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(r#"0{"sid":1}"#);
    assert!(matches!(d.events()[0], Event::Disconnected { reason: DisconnectReason::Protocol(ProtocolError::Handshake(_)) }));
}

#[test]
fn the_server_disconnecting_or_closing_ends_the_connection() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    d.frame("41");
    let ev = d.events();
    assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::ServerDisconnect { namespace: "/".into() } });
    assert!(matches!(ev[1], Event::Reconnecting { attempt: 1, .. }));
    let Event::Reconnecting { delay, .. } = ev[1] else { unreachable!() };
    d.advance(delay);
    d.connect();
    d.events();
    d.frame("1");
    let ev = d.events();
    assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::ServerClose });
    assert_eq!(d.s.stats().disconnects, 2);
}

#[test]
fn no_connection_in_time_is_a_connect_timeout() {
    let mut d = Driver::new(config());
    d.events();
    d.s.handle_transport_open(d.now);
    d.advance(Duration::from_secs(5));
    let ev = d.events();
    assert_eq!(ev[0], Event::Disconnected { reason: DisconnectReason::ConnectTimeout });
    // A socket that is open but never says CONNECT counts too.
    let Event::Reconnecting { delay, .. } = ev[1] else { panic!("{ev:?}") };
    d.advance(delay);
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(OPEN);
    for _ in 0..4 {
        d.advance(Duration::from_secs(1));
        d.frame("2");
    }
    d.advance(Duration::from_secs(1));
    assert_eq!(d.events()[0], Event::Disconnected { reason: DisconnectReason::ConnectTimeout });
}

#[test]
fn malformed_frames_are_reported_and_ignored() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    let bad = [
        "",
        "9",
        "é",
        "4",
        "4x",
        "42",
        "42[",
        "42{}",
        r#"42["connect"]"#,
        "41{}",
        "4399999999999999999999[]",
        "0{}",
        r#"40{"sid":"again"}"#,
        r#"42/nope,["x"]"#,
        "45-[]",
    ];
    for text in bad {
        d.frame(text);
    }
    d.s.handle_frame(d.now, Frame::Binary(&[1, 2, 3]));
    let ev = d.events();
    assert_eq!(ev.len(), bad.len() + 1, "{ev:?}");
    assert!(ev.iter().all(|e| matches!(e, Event::Malformed { .. })), "{ev:?}");
    assert_eq!(d.s.stats().malformed, bad.len() as u64 + 1);
    assert_eq!(d.s.phase(), Phase::Connected);
    // Still working.
    d.frame(r#"42["ok"]"#);
    assert!(matches!(&d.events()[..], [Event::Event { name, .. }] if name == "ok"));
}

#[test]
fn binary_packets_are_skipped_with_their_attachments() {
    let mut d = Driver::new(config());
    d.connect();
    d.events();
    d.frame(r#"452-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    d.s.handle_frame(d.now, Frame::Binary(b"one"));
    d.s.handle_frame(d.now, Frame::Binary(b"two"));
    assert_eq!(d.events(), [Event::Malformed { error: ProtocolError::BinaryUnsupported }]);
    d.s.handle_frame(d.now, Frame::Binary(b"three"));
    assert_eq!(d.events(), [Event::Malformed { error: ProtocolError::UnexpectedBinary }]);
}

#[test]
fn packets_out_of_turn_are_malformed() {
    let mut d = Driver::new(config());
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame("2");
    d.frame(r#"42["x"]"#);
    assert_eq!(d.s.stats().malformed, 2);
    d.frame(OPEN);
    d.tx();
    d.frame(r#"42["x"]"#); // before the namespace's CONNECT reply
    assert_eq!(d.s.stats().malformed, 3);
    d.frame("6");
    d.frame("3");
    d.frame("5");
    assert_eq!(d.s.stats().malformed, 3, "noop, pong and upgrade are ignored");
}

#[test]
fn frames_without_a_transport_are_stray() {
    let mut d = Driver::new(config());
    d.frame(OPEN); // before handle_transport_open
    assert_eq!(d.s.stats().stray_frames, 1);
    assert_eq!(d.s.phase(), Phase::Connecting);
    d.s.handle_transport_open(d.now);
    d.s.handle_transport_open(d.now); // twice is harmless
    assert_eq!(d.s.phase(), Phase::Opening);
}

#[test]
fn close_sends_queued_emits_then_disconnects() {
    let mut d = Driver::new(SessionConfig { namespaces: vec!["/".into(), "/admin".into()], ..config() });
    d.connect();
    d.events();
    d.s.emit(d.now, "/", "last", &[]).unwrap();
    let id = d.s.emit_with_ack(d.now, "/admin", "bye", &[], Duration::from_secs(60)).unwrap();
    d.s.close(d.now);
    assert_eq!(d.tx(), [r#"42["last"]"#, r#"42/admin,0["bye"]"#, "41", "41/admin,"]);
    assert_eq!(d.events(), [Event::Disconnected { reason: DisconnectReason::ClientClose }, Event::AckFailed { id, reason: AckFailure::Closed }, Event::Closed]);
    assert_eq!(d.s.poll_timeout(), None);
    d.s.close(d.now);
    assert!(d.events().is_empty(), "closing twice is a no-op");
    assert_eq!(d.s.ack(d.now, "/", PeerAck(1), &[]), Err(EmitError::Closed));
}

#[test]
fn close_while_waiting_only_closes() {
    let mut d = Driver::new(config());
    d.events();
    d.s.handle_transport_closed(d.now, "refused");
    d.events();
    d.s.emit(d.now, "/", "dropped", &[]).unwrap();
    d.s.close(d.now);
    assert_eq!(d.events(), [Event::Closed]);
    assert!(d.tx().is_empty());
    assert_eq!(d.s.queued(), 0);
}

#[test]
fn emit_refusals() {
    let mut d = Driver::new(config());
    d.connect();
    assert_eq!(d.s.emit(d.now, "/", "disconnect", &[]), Err(EmitError::Reserved("disconnect".into())));
    assert_eq!(d.s.ack(d.now, "/nope", PeerAck(1), &[]), Err(EmitError::UnknownNamespace("/nope".into())));
    // The server's handshake sets the size limit.
    d.s.handle_transport_closed(d.now, "x");
    let delay = d.events().iter().find_map(|e| if let Event::Reconnecting { delay, .. } = e { Some(*delay) } else { None }).unwrap();
    assert_eq!(d.s.ack(d.now, "/", PeerAck(1), &[]), Err(EmitError::NotConnected("/".into())));
    d.advance(delay);
    d.events();
    d.s.handle_transport_open(d.now);
    d.frame(r#"0{"sid":"x","pingInterval":1000,"pingTimeout":1000,"maxPayload":20}"#);
    let big = Value::String("x".repeat(20));
    assert_eq!(d.s.emit(d.now, "/", "e", std::slice::from_ref(&big)), Err(EmitError::TooLarge { len: 30, max: 20 }));
}

#[test]
fn config_is_validated() {
    let now = Instant::now();
    let bad = |c: SessionConfig| Session::new(c, now).unwrap_err();
    assert_eq!(bad(SessionConfig { namespaces: vec![], ..config() }), ConfigError::NoNamespace);
    assert_eq!(bad(SessionConfig { namespaces: vec!["admin".into()], ..config() }), ConfigError::Namespace("admin".into()));
    assert_eq!(bad(SessionConfig { namespaces: vec!["/a".into(), "/a".into()], ..config() }), ConfigError::DuplicateNamespace("/a".into()));
    assert_eq!(bad(SessionConfig { max_queued: 0, ..config() }), ConfigError::MaxQueued);
    assert_eq!(bad(SessionConfig { connect_timeout: Duration::ZERO, ..config() }), ConfigError::Duration("connect_timeout"));
    let r = config().reconnect;
    assert!(matches!(bad(SessionConfig { reconnect: ReconnectPolicy { jitter: 1.5, ..r.clone() }, ..config() }), ConfigError::Reconnect(_)));
    assert!(matches!(bad(SessionConfig { reconnect: ReconnectPolicy { jitter: f64::NAN, ..r.clone() }, ..config() }), ConfigError::Reconnect(_)));
    assert!(matches!(bad(SessionConfig { reconnect: ReconnectPolicy { cap: Duration::from_millis(10), ..r }, ..config() }), ConfigError::Reconnect(_)));
}

#[test]
fn the_auth_stays_out_of_debug_output() {
    let text = format!("{:?}", config());
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("token"));
}

#[test]
fn events_stay_small() {
    assert!(std::mem::size_of::<Event>() <= 96, "Event is {} bytes", std::mem::size_of::<Event>());
}
