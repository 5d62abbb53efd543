//! Inbound calls: every server transaction and dialog path.

use super::*;
use crate::message::HeaderName;

fn incoming(h: &mut Harness) -> LegId {
    h.recv(&invite("z9hG4bKinv1", ""));
    let events = h.take_events();
    match &events[..] {
        [Event::IncomingCall(c)] => {
            assert_eq!(c.request_uri.user.as_deref(), Some("+380501234567"));
            assert_eq!(c.from.tag(), Some("peer1"));
            assert_eq!(c.source, Harness::peer());
            assert!(c.sdp.as_deref().is_some_and(|s| s.starts_with(b"v=0")));
            c.leg
        }
        other => panic!("{other:?}"),
    }
}

/// The ACK of our 2xx (a new branch, our tag in To).
fn ack_for(to_tag: &str) -> String {
    format!(
        "ACK sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack1;rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>;tag={to_tag}\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
}

fn in_dialog(method: &str, branch: &str, cseq: u32, to_tag: &str, body: &str) -> String {
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".to_owned() };
    format!(
        "{method} sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>;tag={to_tag}\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Answers the call and returns our tag.
fn answered(h: &mut Harness, leg: LegId) -> String {
    h.ep.ring(h.now, leg, None).expect("ring");
    h.ep.answer(h.now, leg, SDP.as_bytes()).expect("answer");
    h.drain();
    let sent = h.take_sent();
    let ok = response(&sent.last().expect("200").2);
    assert_eq!(ok.status, 200);
    ok.headers.to().expect("to").tag().expect("our tag").to_owned()
}

#[test]
fn trying_at_once_then_ringing_then_ok_with_dialog_headers() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let sent = h.take_sent();
    assert_eq!(statuses(&sent), vec![100]);
    let trying = response(&sent[0].2);
    assert_eq!(trying.headers.to().expect("to").tag(), None, "100 carries no To tag");
    // rport and received recorded in the Via we return (RFC 3581).
    let via = trying.headers.top_via().expect("via");
    assert_eq!(via.rport(), Some(Some(5070)));
    assert_eq!(sent[0].1, Harness::peer());

    h.ep.ring(h.now, leg, None).expect("ring");
    h.ep.answer(h.now, leg, SDP.as_bytes()).expect("answer");
    h.drain();
    let sent = h.take_sent();
    assert_eq!(statuses(&sent), vec![180, 200]);
    let (ringing, ok) = (response(&sent[0].2), response(&sent[1].2));
    let tag = ringing.headers.to().expect("to").tag().expect("tag").to_owned();
    assert_eq!(ok.headers.to().expect("to").tag(), Some(tag.as_str()), "same tag in 180 and 200");
    assert!(ok.headers.get(&HeaderName::Contact).is_some_and(|c| c.contains("127.0.0.1:5060")));
    assert_eq!(ok.headers.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(ok.body, SDP.as_bytes());
    assert!(ok.headers.get(&HeaderName::Allow).is_some());
    assert!(h.ep.ring(h.now, leg, None).is_err(), "no ringing after the answer");
}

#[test]
fn two_hundred_is_retransmitted_until_the_ack() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let tag = answered(&mut h, leg);
    h.advance(Duration::from_millis(3_600));
    let times: Vec<u128> = h
        .take_sent()
        .iter()
        .map(|(t, _, m)| {
            assert_eq!(response(m).status, 200);
            t.as_millis()
        })
        .collect();
    assert_eq!(times, vec![500, 1_500, 3_500]);
    h.recv(&ack_for(&tag));
    assert!(matches!(&h.take_events()[..], [Event::CallConfirmed { leg: l, sdp: None }] if *l == leg));
    h.advance(Duration::from_secs(10));
    assert!(h.take_sent().is_empty(), "no retransmission after the ACK");
    // A retransmitted ACK changes nothing.
    h.recv(&ack_for(&tag));
    assert!(h.take_events().is_empty());
}

#[test]
fn missing_ack_ends_the_call_with_a_bye() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    answered(&mut h, leg);
    h.advance(Duration::from_secs(33));
    let sent = h.take_sent();
    let byes: Vec<&Request> = sent.iter().filter_map(|(_, _, m)| if let Message::Request(r) = m { Some(r) } else { None }).collect();
    assert!(byes.iter().all(|b| b.method == Method::Bye));
    // One BYE (its transaction may already have retransmitted it).
    let branches: std::collections::HashSet<String> = byes.iter().filter_map(|b| b.headers.top_via().ok()?.branch().map(str::to_owned)).collect();
    assert_eq!(branches.len(), 1);
    assert!(matches!(&h.take_events()[..], [Event::CallEnded { by: Ender::Local, reason, .. }] if reason.contains("no ACK")));
}

#[test]
fn retransmitted_invite_gets_the_last_provisional_again() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    h.ep.ring(h.now, leg, None).expect("ring");
    h.drain();
    h.take_sent();
    h.recv(&invite("z9hG4bKinv1", ""));
    assert_eq!(statuses(&h.take_sent()), vec![180]);
    assert!(h.take_events().is_empty(), "not a new call");
}

#[test]
fn cancel_before_answer() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    h.ep.ring(h.now, leg, None).expect("ring");
    h.drain();
    h.take_sent();
    let cancel = "CANCEL sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv1;rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    h.recv(cancel);
    let sent = h.take_sent();
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert_eq!(response(&sent[0].2).headers.cseq().expect("cseq").method, Method::Cancel);
    assert!(matches!(&h.take_events()[..], [Event::CallCancelled { leg: l }] if *l == leg));
    assert!(h.ep.answer(h.now, leg, SDP.as_bytes()).is_err(), "cannot answer a cancelled call");
    // The 487 is retransmitted until its ACK (same branch as the INVITE).
    h.advance(Duration::from_millis(600));
    assert_eq!(statuses(&h.take_sent()), vec![487]);
    let ack = "ACK sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv1;rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5070>;tag=peer1\r\nTo: <sip:+380501234567@127.0.0.1>;tag=x\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    h.recv(ack);
    h.advance(Duration::from_secs(5));
    assert!(h.take_sent().is_empty());
    // A CANCEL for nothing gets 481.
    h.recv(&cancel.replace("z9hG4bKinv1", "z9hG4bKnope"));
    assert_eq!(statuses(&h.take_sent()), vec![481]);
}

#[test]
fn rejecting_retransmits_until_acked_and_validates_status() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    h.take_sent();
    assert_eq!(h.ep.reject(h.now, leg, 200, None, &[]), Err(EndpointError::Status(200)));
    h.ep.reject(h.now, leg, 503, Some("Service Unavailable"), &[(HeaderName::RetryAfter, "30".into())]).expect("reject");
    h.drain();
    let sent = h.take_sent();
    assert_eq!(statuses(&sent), vec![503]);
    assert_eq!(response(&sent[0].2).headers.get(&HeaderName::RetryAfter), Some("30"));
    h.advance(Duration::from_secs(40));
    // Timer G: 0.5, 1.5, 3.5, 7.5, 11.5 ... until Timer H at 32 s.
    let n = h.take_sent().len();
    assert!((8..=10).contains(&n), "{n} retransmissions");
}

#[test]
fn peer_hangs_up_with_bye() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let tag = answered(&mut h, leg);
    h.recv(&ack_for(&tag));
    h.take_events();
    h.recv(&in_dialog("BYE", "z9hG4bKbye1", 2, &tag, ""));
    assert_eq!(statuses(&h.take_sent()), vec![200]);
    assert!(matches!(&h.take_events()[..], [Event::CallEnded { leg: l, by: Ender::Remote, .. }] if *l == leg));
    // Its retransmission gets the same 200 from the transaction, and no new event.
    h.recv(&in_dialog("BYE", "z9hG4bKbye1", 2, &tag, ""));
    assert_eq!(statuses(&h.take_sent()), vec![200]);
    assert!(h.take_events().is_empty());
    assert!(!h.ep.leg_active(leg));
    // After the linger, the leg is forgotten.
    h.advance(Duration::from_secs(40));
    assert_eq!(h.ep.stats().legs, 0);
}

#[test]
fn we_hang_up_with_a_bye_along_the_route_set() {
    let mut h = Harness::new();
    h.recv(&invite("z9hG4bKinv1", "Record-Route: <sip:127.0.0.9:5080;lr>\r\n"));
    let Some(Event::IncomingCall(c)) = h.take_events().into_iter().next() else { panic!("call") };
    let tag = answered(&mut h, c.leg);
    h.recv(&ack_for(&tag));
    h.take_events();
    h.ep.hangup(h.now, c.leg).expect("hangup");
    h.drain();
    let sent = h.take_sent();
    let (_, dest, m) = &sent[0];
    let bye = request(m);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(*dest, "127.0.0.9:5080".parse().expect("addr"), "to the first route");
    assert_eq!(bye.uri.to_string(), "sip:caller@127.0.0.1:5070", "to the remote target");
    assert_eq!(bye.headers.get(&HeaderName::Route), Some("<sip:127.0.0.9:5080;lr>"));
    assert_eq!(bye.headers.from().expect("from").tag(), Some(tag.as_str()), "our tag in From");
    assert_eq!(bye.headers.to().expect("to").tag(), Some("peer1"));
    assert_eq!(bye.headers.call_id().expect("call-id"), "call-1@127.0.0.1");
    assert!(bye.validate().is_ok());
    assert!(matches!(&h.take_events()[..], [Event::CallEnded { by: Ender::Local, .. }]));
}

#[test]
fn hanging_up_before_the_ack_waits_for_it() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let tag = answered(&mut h, leg);
    h.ep.hangup(h.now, leg).expect("hangup");
    h.drain();
    assert!(h.take_sent().is_empty(), "no BYE before the ACK");
    h.recv(&ack_for(&tag));
    let sent = h.take_sent();
    assert_eq!(request(&sent[0].2).method, Method::Bye);
}

#[test]
fn reinvite_for_hold_is_offered_to_the_gateway_and_answered() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let tag = answered(&mut h, leg);
    h.recv(&ack_for(&tag));
    h.take_events();
    let hold = SDP.replace("a=rtpmap", "a=sendonly\r\na=rtpmap");
    h.recv(&in_dialog("INVITE", "z9hG4bKre1", 2, &tag, &hold));
    assert_eq!(statuses(&h.take_sent()), vec![100]);
    assert!(matches!(&h.take_events()[..], [Event::ReInvite { leg: l, sdp: Some(s) }] if *l == leg && s == hold.as_bytes()));
    // A second re-INVITE before we answered the first: 491, retransmitted until its ACK.
    h.recv(&in_dialog("INVITE", "z9hG4bKre2", 3, &tag, &hold));
    assert_eq!(statuses(&h.take_sent()), vec![491]);
    h.recv(&in_dialog("ACK", "z9hG4bKre2", 3, &tag, ""));
    h.ep.answer(h.now, leg, b"v=0\r\n").expect("answer re-INVITE");
    h.drain();
    let sent = h.take_sent();
    assert_eq!(statuses(&sent), vec![200]);
    assert_eq!(response(&sent[0].2).headers.cseq().expect("cseq").seq, 2);
    // Its ACK is taken quietly; the call goes on.
    h.recv(&ack_for(&tag).replace("CSeq: 1 ACK", "CSeq: 2 ACK"));
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_secs(5));
    assert!(h.take_sent().is_empty());
    assert!(h.ep.leg_active(leg));
    // Rejecting a re-INVITE keeps the call.
    h.recv(&in_dialog("INVITE", "z9hG4bKre3", 4, &tag, &hold));
    h.take_events();
    h.take_sent();
    h.ep.reject(h.now, leg, 488, None, &[]).expect("reject re-INVITE");
    h.drain();
    assert_eq!(statuses(&h.take_sent()), vec![488]);
    assert!(h.ep.leg_active(leg));
}

#[test]
fn requests_outside_any_dialog_and_bad_requests() {
    let mut h = Harness::new();
    h.recv(&in_dialog("BYE", "z9hG4bKx", 2, "nosuchtag", ""));
    assert_eq!(statuses(&h.take_sent()), vec![481]);
    let options = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKo1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.recv(options);
    let sent = h.take_sent();
    let ok = response(&sent[0].2);
    assert_eq!(ok.status, 200);
    assert!(ok.headers.get(&HeaderName::Allow).is_some_and(|a| a.contains("INVITE")));
    // No rport asked: the response goes to the Via's port.
    assert_eq!(sent[0].1, "127.0.0.1:5070".parse().expect("addr"));
    h.recv(&options.replace("OPTIONS", "REGISTER").replace("o1", "r1"));
    assert_eq!(statuses(&h.take_sent()), vec![405]);
    h.recv(&options.replace("OPTIONS", "PUBLISH").replace("o1", "pub1"));
    assert_eq!(statuses(&h.take_sent()), vec![405]);
    // A request missing its Call-ID gets a 400 naming it.
    h.recv(&options.replace("Call-ID: o1\r\n", "").replace("z9hG4bKo1", "z9hG4bKo2"));
    let sent = h.take_sent();
    assert_eq!(response(&sent[0].2).status, 400);
    assert!(response(&sent[0].2).reason.contains("missing Call-ID"));
    // A datagram whose body is shorter than its Content-Length: 400 (RFC 3261 §18.3).
    h.recv(&options.replace("Content-Length: 0\r\n\r\n", "Content-Length: 99\r\n\r\nshort").replace("z9hG4bKo1", "z9hG4bKo3"));
    let sent = h.take_sent();
    assert_eq!(response(&sent[0].2).status, 400);
    assert!(response(&sent[0].2).reason.contains("shorter than Content-Length"), "{}", response(&sent[0].2).reason);
    // Garbage is dropped and counted, and so is a truncated response.
    h.recv("this is not SIP");
    h.recv("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKzz\r\nContent-Length: 10\r\n\r\nab");
    assert!(h.take_sent().is_empty());
    let s = h.ep.stats();
    assert_eq!((s.bad_requests, s.unparseable), (2, 2));
}

#[test]
fn unsupported_required_extension_and_media_type() {
    let mut h = Harness::new();
    h.recv(&invite("z9hG4bKr1", "Require: 100rel\r\n"));
    let sent = h.take_sent();
    let r = response(&sent[0].2);
    assert_eq!(r.status, 420);
    assert_eq!(r.headers.get(&HeaderName::Unsupported), Some("100rel"));
    assert!(h.take_events().is_empty());
    h.recv(&invite("z9hG4bKr2", "").replace("Content-Type: application/sdp", "Content-Type: text/plain"));
    assert_eq!(statuses(&h.take_sent()), vec![415]);
}

#[test]
fn tcp_responses_use_the_connection_and_are_not_retransmitted() {
    let mut h = Harness::new();
    let source: SocketAddr = "127.0.0.1:40111".parse().expect("addr");
    h.recv_from(Transport::Tcp, source, &invite("z9hG4bKt1", "").replace("SIP/2.0/UDP 127.0.0.1:5070", "SIP/2.0/TCP 127.0.0.1:5070"));
    let Some(Event::IncomingCall(c)) = h.take_events().into_iter().next() else { panic!("call") };
    assert_eq!(c.transport, Transport::Tcp);
    h.ep.answer(h.now, c.leg, SDP.as_bytes()).expect("answer");
    h.drain();
    let sent: Vec<Transmit> = h.sent.drain(..).map(|(_, t)| t).collect();
    assert!(sent.iter().all(|t| t.transport == Transport::Tcp && t.dest == source));
    h.advance(Duration::from_secs(10));
    assert!(h.sent.is_empty(), "nothing retransmitted over TCP");
}

#[test]
fn info_is_reported_and_unknown_methods_refused_in_a_dialog() {
    let mut h = Harness::new();
    let leg = incoming(&mut h);
    let tag = answered(&mut h, leg);
    h.recv(&ack_for(&tag));
    h.take_events();
    let info = in_dialog("INFO", "z9hG4bKi1", 2, &tag, "")
        .replace("Content-Length: 0", "Content-Type: application/dtmf-relay\r\nContent-Length: 19")
        .replace("\r\n\r\n", "\r\n\r\nSignal=5\r\nDuration=1");
    h.recv(&info.replace("Duration=1", "Duration=100"));
    assert_eq!(statuses(&h.take_sent()), vec![200]);
    assert!(matches!(&h.take_events()[..], [Event::Info { content_type: Some(t), .. }] if t == "application/dtmf-relay"));
    h.recv(&in_dialog("REFER", "z9hG4bKf1", 3, &tag, ""));
    assert_eq!(statuses(&h.take_sent()), vec![501]);
    // Requests with a lower CSeq than seen are refused.
    h.recv(&in_dialog("INFO", "z9hG4bKi9", 1, &tag, ""));
    assert_eq!(statuses(&h.take_sent()), vec![500]);
}
