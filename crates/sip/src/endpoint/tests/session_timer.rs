//! Session timers (RFC 4028) in virtual time: refreshing, being refreshed, and giving up.

use super::*;
use crate::message::{HeaderName, Uri};

/// An INVITE carrying `extra` headers; returns the new leg (None when it was refused).
fn incoming(h: &mut Harness, extra: &str) -> Option<LegId> {
    h.recv(&invite("z9hG4bKst1", extra));
    h.take_events().into_iter().find_map(|e| if let Event::IncomingCall(c) = e { Some(c.leg) } else { None })
}

/// Answers, ACKs and returns our 200 and our tag.
fn answer_and_ack(h: &mut Harness, leg: LegId) -> (Response, String) {
    h.ep.answer(h.now, leg, SDP.as_bytes()).expect("answer");
    h.drain();
    let sent = h.take_sent();
    let ok = response(&sent.last().expect("200").2).clone();
    assert_eq!(ok.status, 200);
    let tag = ok.headers.to().expect("to").tag().expect("tag").to_owned();
    h.recv(&format!(
        "ACK sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKstack;rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>;tag={tag}\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(matches!(&h.take_events()[..], [Event::CallConfirmed { .. }]));
    (ok, tag)
}

/// A request from the peer inside the dialog.
fn from_peer(method: &str, cseq: u32, tag: &str, extra: &str) -> String {
    format!(
        "{method} sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKst{method}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>;tag={tag}\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The peer's response to a request of ours, with `extra` headers.
fn answer_to(req: &Request, status: u16, extra: &[(HeaderName, &str)]) -> String {
    let mut r = Response::for_request(req, status, crate::message::reason_phrase(status), None);
    for (name, value) in extra {
        r.headers.push(name.clone(), *value);
    }
    String::from_utf8(r.encode()).expect("utf-8")
}

/// Requests we sent, with when.
fn requests(sent: &[(Duration, SocketAddr, Message)]) -> Vec<(Duration, Request)> {
    sent.iter().filter_map(|(at, _, m)| if let Message::Request(r) = m { Some((*at, r.clone())) } else { None }).collect()
}

const SUPPORTS_UPDATE: &str = "Supported: timer\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n";

#[test]
fn as_the_refresher_we_send_an_update_every_half_interval() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, &format!("{SUPPORTS_UPDATE}Session-Expires: 120;refresher=uas\r\n")).expect("call");
    let (ok, tag) = answer_and_ack(&mut h, leg);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("120;refresher=uas"));
    assert_eq!(ok.headers.get(&HeaderName::Require), None, "we refresh: the caller need not know");
    assert!(ok.headers.get(&HeaderName::Allow).is_some_and(|a| a.contains("UPDATE")));

    h.advance(Duration::from_secs(59));
    assert!(requests(&h.take_sent()).is_empty());
    h.advance(Duration::from_secs(1));
    let sent = requests(&h.take_sent());
    let [(at, update)] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(*at, Duration::from_secs(60));
    assert_eq!(update.method, Method::Update);
    assert!(update.body.is_empty());
    assert_eq!(update.headers.get(&HeaderName::SessionExpires), Some("120;refresher=uac"));
    assert_eq!(update.headers.from().expect("from").tag(), Some(tag.as_str()));
    assert_eq!(update.headers.to().expect("to").tag(), Some("peer1"));
    assert_eq!(update.uri.to_string(), "sip:caller@127.0.0.1:5070", "to the caller's Contact");
    h.recv(&answer_to(update, 200, &[(HeaderName::SessionExpires, "120;refresher=uac")]));

    // The next refresh comes half an interval after the 200; the call never ends by itself.
    h.advance(Duration::from_secs(60));
    let sent = requests(&h.take_sent());
    assert_eq!(sent.iter().map(|(at, r)| (at.as_secs(), r.method.clone())).collect::<Vec<_>>(), vec![(120, Method::Update)]);
    let cseqs: Vec<u32> = sent.iter().map(|(_, r)| r.headers.cseq().expect("cseq").seq).collect();
    assert_eq!(cseqs, vec![2]);
    h.recv(&answer_to(&sent[0].1, 200, &[(HeaderName::SessionExpires, "120;refresher=uac")]));
    assert!(h.take_events().is_empty());
    assert!(h.ep.leg_active(leg));
}

#[test]
fn without_update_the_refresh_is_a_reinvite_with_our_unchanged_sdp() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n").expect("call");
    answer_and_ack(&mut h, leg);
    h.advance(Duration::from_secs(45));
    let sent = requests(&h.take_sent());
    let [(_, reinvite)] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(reinvite.method, Method::Invite);
    assert_eq!(reinvite.body, SDP.as_bytes(), "the same description, same version");
    assert!(reinvite.headers.get(&HeaderName::Contact).is_some());
    let cseq = reinvite.headers.cseq().expect("cseq").seq;
    let mut ok = Response::for_request(reinvite, 200, "OK", None);
    ok.headers.push(HeaderName::SessionExpires, "90;refresher=uac");
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    let ok = String::from_utf8(ok.encode()).expect("utf-8");
    h.recv(&ok);
    let sent = requests(&h.take_sent());
    let [(_, ack)] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((ack.method.clone(), ack.headers.cseq().expect("cseq").seq), (Method::Ack, cseq), "the ACK of the re-INVITE");
    // A retransmitted 200 gets the same ACK again.
    h.recv(&ok);
    assert_eq!(requests(&h.take_sent()).into_iter().map(|(_, r)| r).collect::<Vec<_>>(), vec![ack.clone()]);
}

#[test]
fn refreshed_by_the_caller_or_hung_up_before_the_interval_ends() {
    let mut h = Harness::new();
    // A caller that supports timers and leaves the refresher to us: it refreshes (uac).
    let leg = incoming(&mut h, &format!("{SUPPORTS_UPDATE}Session-Expires: 90\r\n")).expect("call");
    let (ok, tag) = answer_and_ack(&mut h, leg);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"));
    assert_eq!(ok.headers.get(&HeaderName::Require), Some("timer"));

    // Its refresh at 40 s is answered with the interval, and restarts it.
    h.advance(Duration::from_secs(40));
    h.recv(&from_peer("UPDATE", 2, &tag, "Session-Expires: 90;refresher=uac\r\n"));
    let sent = h.take_sent();
    let r = response(&sent[0].2);
    assert_eq!((r.status, r.headers.get(&HeaderName::SessionExpires)), (200, Some("90;refresher=uac")));

    // Without another, we hang up 30 s (a third of 90) before the interval ends: at 40 + 60.
    h.advance(Duration::from_secs(59));
    let early = requests(&h.take_sent());
    assert!(early.is_empty(), "{early:?}");
    h.advance(Duration::from_secs(1));
    let sent = requests(&h.take_sent());
    assert_eq!(sent.iter().map(|(at, r)| (at.as_secs(), r.method.clone())).collect::<Vec<_>>(), vec![(100, Method::Bye)]);
    let events = h.take_events();
    assert!(matches!(&events[..], [Event::CallEnded { by: Ender::Local, reason, .. }] if reason.contains("session expired")), "{events:?}");
    assert!(!h.ep.leg_active(leg));
}

#[test]
fn a_reinvite_from_the_caller_refreshes_too() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "Supported: timer\r\nSession-Expires: 300;refresher=uac\r\n").expect("call");
    let (_, tag) = answer_and_ack(&mut h, leg);
    h.advance(Duration::from_secs(150));
    let reinvite = from_peer("INVITE", 2, &tag, "Supported: timer\r\nSession-Expires: 300;refresher=uac\r\n");
    h.recv(&reinvite);
    assert!(matches!(&h.take_events()[..], [Event::ReInvite { sdp: None, .. }]));
    h.ep.answer(h.now, leg, SDP.as_bytes()).expect("answer");
    h.drain();
    let sent = h.take_sent();
    let ok = response(&sent.last().expect("200").2);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("300;refresher=uac"));
    h.recv(&from_peer("ACK", 2, &tag, ""));
    // 150 + 300 - 32 = 418 s: the BYE is due then, not at 300 - 32 = 268.
    h.advance_to(Duration::from_secs(417));
    assert!(requests(&h.take_sent()).is_empty());
    h.advance_to(Duration::from_secs(418));
    assert!(requests(&h.take_sent()).iter().any(|(_, r)| r.method == Method::Bye));
}

#[test]
fn too_small_an_interval_gets_422_and_require_timer_is_supported() {
    let mut h = Harness::new();
    assert_eq!(incoming(&mut h, "Require: timer\r\nSupported: timer\r\nSession-Expires: 30\r\n"), None);
    let sent = h.take_sent();
    let r = response(&sent.last().expect("response").2);
    assert_eq!((r.status, r.headers.get(&HeaderName::MinSe)), (422, Some("90")));

    let mut h = Harness::new();
    assert_eq!(incoming(&mut h, "Session-Expires: soon\r\n"), None);
    assert_eq!(statuses(&h.take_sent()), vec![400]);

    let mut h = Harness::new();
    let leg = incoming(&mut h, "Require: timer\r\nSupported: timer\r\nSession-Expires: 90\r\n").expect("accepted, not 420");
    let (ok, tag) = answer_and_ack(&mut h, leg);
    assert_eq!(ok.headers.get(&HeaderName::Supported), Some("timer"));
    // A refresh asking for less than our Min-SE gets 422 too, and the call goes on.
    h.recv(&from_peer("UPDATE", 2, &tag, "Session-Expires: 10\r\n"));
    assert_eq!(statuses(&h.take_sent()), vec![422]);
    assert!(h.ep.leg_active(leg));
}

#[test]
fn a_caller_that_supports_timers_without_asking_gets_ours_and_others_none() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, "Supported: timer, 100rel\r\nMin-SE: 2000\r\n").expect("call");
    let (ok, _) = answer_and_ack(&mut h, leg);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("2000;refresher=uac"), "at least the caller's Min-SE");
    assert_eq!(ok.headers.get(&HeaderName::Require), Some("timer"));

    let mut h = Harness::new();
    let leg = incoming(&mut h, "").expect("call");
    let (ok, _) = answer_and_ack(&mut h, leg);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), None);
    h.advance(Duration::from_secs(7200));
    assert!(requests(&h.take_sent()).is_empty(), "no timer: nothing is sent");
    assert!(h.ep.leg_active(leg));
}

#[test]
fn a_refresh_answered_481_or_unanswered_ends_the_call() {
    for answer in [Some(481), Some(408), None] {
        let mut h = Harness::new();
        let leg = incoming(&mut h, &format!("{SUPPORTS_UPDATE}Session-Expires: 120;refresher=uas\r\n")).expect("call");
        answer_and_ack(&mut h, leg);
        h.advance(Duration::from_secs(60));
        let sent = requests(&h.take_sent());
        let update = sent[0].1.clone();
        match answer {
            Some(status) => h.recv(&answer_to(&update, status, &[])),
            // Unanswered: the UPDATE is retransmitted until timer F (64·T1) fails it.
            None => h.advance(Duration::from_secs(33)),
        }
        let bye = requests(&h.take_sent()).into_iter().find(|(_, r)| r.method == Method::Bye);
        assert!(bye.is_some(), "{answer:?}: a BYE");
        let events = h.take_events();
        assert!(
            matches!(&events[..], [Event::CallEnded { by: Ender::Local, reason, .. }] if reason.contains("session refresh failed")),
            "{answer:?}: {events:?}"
        );
    }
}

#[test]
fn refresh_glare_challenges_and_update_refusal() {
    let mut h = Harness::new();
    let leg = incoming(&mut h, &format!("{SUPPORTS_UPDATE}Session-Expires: 120;refresher=uas\r\n")).expect("call");
    answer_and_ack(&mut h, leg);
    h.advance(Duration::from_secs(60));
    let update = requests(&h.take_sent()).remove(0).1;
    // 491: tried again 2.1-4 s later.
    h.recv(&answer_to(&update, 491, &[]));
    h.advance(Duration::from_millis(2099));
    assert!(requests(&h.take_sent()).iter().all(|(_, r)| r.method != Method::Update || r.headers.cseq().expect("cseq").seq == 1));
    h.advance(Duration::from_millis(1901));
    let mut again = requests(&h.take_sent()).into_iter().filter(|(_, r)| r.method == Method::Update).collect::<Vec<_>>();
    again.dedup_by_key(|(_, r)| r.headers.cseq().expect("cseq").seq);
    assert_eq!(again.len(), 1, "one new UPDATE");
    // 501: the peer does not take UPDATE after all; a re-INVITE instead, at once.
    h.recv(&answer_to(&again[0].1, 501, &[]));
    let sent = requests(&h.take_sent());
    assert!(matches!(&sent[..], [(_, r)] if r.method == Method::Invite), "{sent:?}");
    // 422 on the re-INVITE: again with the peer's Min-SE.
    h.recv(&answer_to(&sent[0].1, 422, &[(HeaderName::MinSe, "600")]));
    let sent: Vec<_> = requests(&h.take_sent()).into_iter().filter(|(_, r)| r.method == Method::Invite).collect();
    let [(_, raised)] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(raised.headers.get(&HeaderName::SessionExpires), Some("600;refresher=uac"));
    assert_eq!(raised.headers.get(&HeaderName::MinSe), Some("600"));
    let mut ok = Response::for_request(raised, 200, "OK", None);
    ok.headers.push(HeaderName::SessionExpires, "600;refresher=uac");
    h.recv(&String::from_utf8(ok.encode()).expect("utf-8"));
    assert!(requests(&h.take_sent()).iter().any(|(_, r)| r.method == Method::Ack));
    // The next refresh is half of the new interval later.
    let t = h.now - h.t0;
    h.advance(Duration::from_secs(299));
    assert!(requests(&h.take_sent()).is_empty());
    h.advance(Duration::from_secs(1));
    let sent = requests(&h.take_sent());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, t + Duration::from_secs(300));
    assert!(h.ep.leg_active(leg));
}

#[test]
fn our_calls_ask_for_a_timer_raise_it_after_422_and_refresh_as_told() {
    let mut h = Harness::new();
    let account = h.ep.add_account(
        h.now,
        AccountConfig {
            aor: Uri::parse("sip:1001@127.0.0.1").expect("uri"),
            display_name: None,
            proxy: PEER.parse().expect("addr"),
            transport: Transport::Udp,
            username: "1001".into(),
            password: "pw".into(),
            register: false,
            expires: 300,
            keepalive: None,
            contact_user: "1001".into(),
        },
    );
    let leg = h
        .ep
        .invite(h.now, OutboundCall { account, target: Uri::parse("sip:+15551234@127.0.0.1").expect("uri"), sdp: SDP.as_bytes().to_vec(), headers: vec![] })
        .expect("invite");
    h.drain();
    let invite = requests(&h.take_sent()).remove(0).1;
    assert_eq!(invite.headers.get(&HeaderName::Supported), Some("timer"));
    assert_eq!(invite.headers.get(&HeaderName::SessionExpires), Some("1800"));
    assert_eq!(invite.headers.get(&HeaderName::MinSe), None);
    h.recv(&answer_to(&invite, 422, &[(HeaderName::MinSe, "3600")]));
    let sent = requests(&h.take_sent());
    let invite = sent.iter().find(|(_, r)| r.method == Method::Invite).expect("a new INVITE").1.clone();
    assert_eq!(invite.headers.cseq().expect("cseq").seq, 2);
    assert_eq!(invite.headers.get(&HeaderName::SessionExpires), Some("3600"));
    assert_eq!(invite.headers.get(&HeaderName::MinSe), Some("3600"));
    // Answered with us as the refresher, by a callee without UPDATE.
    let mut ok = Response::for_request(&invite, 200, "OK", Some("callee"));
    ok.headers.push(HeaderName::Contact, "<sip:callee@127.0.0.1:5070>");
    ok.headers.push(HeaderName::SessionExpires, "3600;refresher=uac");
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    h.recv(&String::from_utf8(ok.encode()).expect("utf-8"));
    assert!(h.take_events().iter().any(|e| matches!(e, Event::CallAnswered { .. })));
    h.take_sent();
    h.advance(Duration::from_secs(1800));
    let sent = requests(&h.take_sent());
    let [(_, refresh)] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!((refresh.method.clone(), refresh.headers.cseq().expect("cseq").seq), (Method::Invite, 3));
    assert_eq!(refresh.headers.to().expect("to").tag(), Some("callee"));
    assert_eq!(refresh.body, SDP.as_bytes(), "our offer, unchanged");
    assert!(h.ep.leg_active(leg));
}
