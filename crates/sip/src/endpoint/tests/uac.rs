//! Outbound calls through an account's proxy: every client transaction and dialog path.

use super::*;
use crate::message::{HeaderName, Uri};

const PROXY: &str = "127.0.0.1:5080";

fn account(h: &mut Harness, password: &str) -> AccountId {
    let config = AccountConfig {
        aor: Uri::parse("sip:1001@127.0.0.1").expect("uri"),
        display_name: Some("Support".into()),
        proxy: PROXY.parse().expect("addr"),
        transport: Transport::Udp,
        username: "1001".into(),
        password: password.into(),
        register: false,
        expires: 300,
        keepalive: None,
        contact_user: "1001".into(),
    };
    h.ep.add_account(h.now, config)
}

fn call(h: &mut Harness, account: AccountId) -> (LegId, Request) {
    let leg = h
        .ep
        .invite(h.now, OutboundCall { account, target: Uri::parse("sip:+15551234@127.0.0.1").expect("uri"), sdp: SDP.as_bytes().to_vec(), headers: vec![] })
        .expect("invite");
    h.drain();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, PROXY.parse().expect("addr"), "to the account's proxy");
    (leg, request(&sent[0].2).clone())
}

/// A response to `req` from the far end with `status`, tag `t1`, our Contact and Record-Route.
fn reply(req: &Request, status: u16, body: &str) -> String {
    let mut r = Response::for_request(req, status, crate::message::reason_phrase(status), Some("t1"));
    if (101..300).contains(&status) {
        r.headers.push(HeaderName::Contact, "<sip:callee@127.0.0.1:5090>");
        r.headers.push(HeaderName::RecordRoute, "<sip:127.0.0.1:5080;lr>");
    }
    if !body.is_empty() {
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body.as_bytes().to_vec();
    }
    String::from_utf8(r.encode()).expect("utf-8")
}

#[test]
fn invite_is_well_formed() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (_, inv) = call(&mut h, a);
    assert!(inv.validate().is_ok());
    assert_eq!(inv.uri.to_string(), "sip:+15551234@127.0.0.1");
    let from = inv.headers.from().expect("from");
    assert_eq!((from.display.as_deref(), from.uri.to_string().as_str()), (Some("Support"), "sip:1001@127.0.0.1"));
    assert!(from.tag().is_some());
    assert_eq!(inv.headers.to().expect("to").tag(), None);
    assert_eq!(inv.headers.cseq().expect("cseq").seq, 1);
    assert!(inv.headers.get(&HeaderName::Contact).is_some_and(|c| c.contains("sip:1001@127.0.0.1:5060")));
    assert_eq!(inv.body, SDP.as_bytes());
    let via = inv.headers.top_via().expect("via");
    assert!(via.branch().is_some_and(|b| b.starts_with("z9hG4bK")) && via.rport() == Some(None));
}

#[test]
fn ringing_answer_ack_and_hangup() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 100, ""));
    h.recv(&reply(&inv, 180, ""));
    assert!(matches!(&h.take_events()[..], [Event::CallProgress { status: 180, sdp: None, .. }]));
    h.recv(&reply(&inv, 200, SDP));
    assert!(matches!(&h.take_events()[..], [Event::CallAnswered { leg: l, sdp: Some(_) }] if *l == leg));
    let sent = h.take_sent();
    let (_, dest, ack) = &sent[0];
    let ack = request(ack);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(*dest, PROXY.parse().expect("addr"), "along the record-route");
    assert_eq!(ack.uri.to_string(), "sip:callee@127.0.0.1:5090", "to the remote target");
    assert_ne!(ack.headers.top_via().expect("via").branch(), inv.headers.top_via().expect("via").branch(), "a 2xx ACK has its own branch");
    assert_eq!(ack.headers.cseq().expect("cseq").seq, 1);
    assert_eq!(ack.headers.to().expect("to").tag(), Some("t1"));
    assert_eq!(ack.headers.get(&HeaderName::Route), Some("<sip:127.0.0.1:5080;lr>"));
    // A retransmitted 200 gets the same ACK.
    h.recv(&reply(&inv, 200, SDP));
    let again = h.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(request(&again[0].2), ack);
    assert!(h.take_events().is_empty());
    // Hang up: BYE with CSeq 2.
    h.ep.hangup(h.now, leg).expect("hangup");
    h.drain();
    let bye = h.take_sent();
    let bye = request(&bye[0].2);
    assert_eq!((bye.method.clone(), bye.headers.cseq().expect("cseq").seq), (Method::Bye, 2));
    assert!(matches!(&h.take_events()[..], [Event::CallEnded { by: Ender::Local, .. }]));
}

#[test]
fn early_media_is_reported_with_its_sdp() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (_, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 183, SDP));
    assert!(matches!(&h.take_events()[..], [Event::CallProgress { status: 183, sdp: Some(s), .. }] if s == SDP.as_bytes()));
}

#[test]
fn busy_is_acked_and_reported_with_its_code() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 486, ""));
    let sent = h.take_sent();
    let ack = request(&sent[0].2);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.top_via().expect("via").branch(), inv.headers.top_via().expect("via").branch(), "non-2xx ACK: same branch");
    assert!(matches!(&h.take_events()[..], [Event::CallFailed { leg: l, status: 486, reason }] if *l == leg && reason == "Busy Here"));
    // Nothing is redialled.
    h.advance(Duration::from_secs(60));
    assert!(h.take_sent().iter().all(|(_, _, m)| matches!(m, Message::Request(r) if r.method == Method::Ack)));
}

#[test]
fn hangup_while_ringing_cancels() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 180, ""));
    h.take_events();
    h.ep.hangup(h.now, leg).expect("hangup");
    h.drain();
    let sent = h.take_sent();
    let cancel = request(&sent[0].2);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.headers.top_via().expect("via").branch(), inv.headers.top_via().expect("via").branch());
    assert_eq!(cancel.headers.cseq().expect("cseq").to_string(), "1 CANCEL");
    assert_eq!(cancel.headers.to().expect("to").tag(), None);
    assert!(matches!(&h.take_events()[..], [Event::CallEnded { by: Ender::Local, .. }]));
    h.recv(&reply(cancel, 200, ""));
    h.recv(&reply(&inv, 487, ""));
    let sent = h.take_sent();
    assert_eq!(request(&sent[0].2).method, Method::Ack, "the 487 is ACKed");
    assert!(h.take_events().is_empty(), "the 487 is not reported again");
}

#[test]
fn hangup_before_any_response_cancels_once_one_comes() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, inv) = call(&mut h, a);
    h.ep.hangup(h.now, leg).expect("hangup");
    h.drain();
    assert!(h.take_sent().is_empty(), "no CANCEL before a provisional response (§9.1)");
    h.recv(&reply(&inv, 180, ""));
    let sent = h.take_sent();
    assert_eq!(request(&sent[0].2).method, Method::Cancel);
}

#[test]
fn answer_after_cancel_is_acked_and_hung_up() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 180, ""));
    h.ep.hangup(h.now, leg).expect("hangup");
    h.drain();
    h.take_sent();
    h.take_events();
    h.recv(&reply(&inv, 200, SDP));
    let methods: Vec<Method> = h.take_sent().iter().map(|(_, _, m)| request(m).method.clone()).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
    assert!(h.take_events().is_empty());
}

#[test]
fn no_response_times_out_as_408() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (leg, _) = call(&mut h, a);
    h.advance(Duration::from_secs(33));
    let retransmits = h.take_sent().len();
    assert_eq!(retransmits, 6, "Timer A: 0.5 1.5 3.5 7.5 15.5 31.5 s");
    assert!(matches!(&h.take_events()[..], [Event::CallFailed { leg: l, status: 408, .. }] if *l == leg));
}

#[test]
fn a_failure_reason_comes_from_the_response() {
    let mut h = Harness::new();
    let a = account(&mut h, "pw");
    let (_, inv) = call(&mut h, a);
    h.recv(&reply(&inv, 603, "").replace("603 Decline", "603 Declined by user"));
    assert!(matches!(&h.take_events()[..], [Event::CallFailed { status: 603, reason, .. }] if reason == "Declined by user"));
    assert_eq!(
        h.ep.invite(h.now, OutboundCall { account: AccountId(999), target: Uri::parse("sip:x@y").expect("uri"), sdp: vec![], headers: vec![] }).err(),
        Some(EndpointError::UnknownAccount(AccountId(999)))
    );
}
