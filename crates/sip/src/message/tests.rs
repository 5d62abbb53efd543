use super::*;

fn request(bytes: &str) -> Request {
    match parse(bytes.as_bytes()).expect("valid message") {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

const INVITE: &str = "INVITE sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=abc\r\n\
To: <sip:+380501234567@127.0.0.1>\r\n\
Call-ID: 1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5061>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

#[test]
fn parses_and_prints_a_request() {
    let r = request(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user.as_deref(), Some("+380501234567"));
    assert_eq!(r.body, b"v=0\n");
    let h = &r.headers;
    assert_eq!(h.from().expect("from").tag(), Some("abc"));
    assert_eq!(h.to().expect("to").tag(), None);
    assert_eq!(h.call_id().expect("call-id"), "1@127.0.0.1");
    assert_eq!(h.cseq().expect("cseq"), CSeq { seq: 1, method: Method::Invite });
    assert_eq!(h.top_via().expect("via").branch(), Some("z9hG4bK-1"));
    assert_eq!(h.max_forwards(), Some(70));
    assert_eq!(h.content_type().as_deref(), Some("application/sdp"));
    assert!(r.validate().is_ok());
    // Printing gives back the same message.
    assert_eq!(String::from_utf8(r.encode()).expect("utf-8"), INVITE);
    assert_eq!(request(&r.to_string()), r);
}

#[test]
fn compact_forms_multiple_vias_and_lists() {
    let r = request(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bK2\r\n\
Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK3\r\n\
f: <sip:a@b>;tag=1\r\nt: <sip:bob@example.com>\r\ni: x@y\r\nCSeq: 1 INVITE\r\n\
m: \"A, B\" <sip:a@10.0.0.1>;expires=60, <sip:a@10.0.0.9>\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p3;lr>\r\nl: 0\r\n\r\n",
    );
    let vias = r.headers.vias().expect("vias");
    assert_eq!(vias.iter().map(|v| v.branch()).collect::<Vec<_>>(), vec![Some("z9hG4bK1"), Some("z9hG4bK2"), Some("z9hG4bK3")]);
    let contacts = r.headers.name_addrs(&HeaderName::Contact).expect("contacts");
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].display.as_deref(), Some("A, B"));
    assert_eq!(contacts[0].params.value("expires"), Some("60"));
    assert_eq!(r.headers.name_addrs(&HeaderName::RecordRoute).expect("rr").len(), 3);
    assert!(r.validate().is_ok());
}

#[test]
fn tolerant_of_case_whitespace_folding_and_bare_lf() {
    let r = request(
        "\r\n\r\nOPTIONS   sip:x@y   SIP/2.0\n\
via:SIP/2.0/UDP   10.0.0.1:5060 ; branch=z9hG4bKa\n\
Subject: I know you're there,\n   pick up the phone\n\
from:<sip:a@b>;tag=1\nTO :   <sip:x@y>\ncall-id:abc\ncseq:  7   OPTIONS\ncontent-length:0\n\n",
    );
    assert_eq!(r.method, Method::Options);
    assert_eq!(r.headers.get(&HeaderName::Other("subject".into())), Some("I know you're there, pick up the phone"));
    assert_eq!(r.headers.cseq().expect("cseq").seq, 7);
    assert!(r.validate().is_ok());
}

#[test]
fn tel_and_ipv6_request_uris() {
    let r = request(
        "INVITE tel:+380501234567 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1\r\nFrom: <sip:a@[2001:db8::1]>;tag=1\r\nTo: <tel:+380501234567>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
    );
    assert_eq!(r.uri.scheme, Scheme::Tel);
    assert_eq!(r.headers.top_via().expect("via").host, Host::V6("2001:db8::1".parse().expect("ip")));
    let r = request(
        "OPTIONS sip:[2001:db8::10]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP [::1];branch=z9hG4bKa\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: abc\r\nCSeq: 7 OPTIONS\r\n\r\n",
    );
    assert_eq!(r.uri.socket_addr(5060), Some("[2001:db8::10]:5070".parse().expect("addr")));
}

#[test]
fn content_length_governs_the_body() {
    let base = "MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n";
    // Extra bytes in a datagram are discarded.
    let r = request(&format!("{base}Content-Length: 5\r\n\r\nhello, and more"));
    assert_eq!(r.body, b"hello");
    // A body shorter than announced is an error.
    let e = parse(format!("{base}Content-Length: 50\r\n\r\nhello").as_bytes()).expect_err("truncated");
    assert!(e.reason().contains("shorter than Content-Length"), "{e}");
    // The head of such a request is kept, to answer it with a 400; not that of a response.
    assert_eq!(e.request_head().map(|r| (r.method.clone(), r.body.len())), Some((Method::Message, 0)));
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 9\r\n\r\nab";
    assert!(parse(response.as_bytes()).expect_err("truncated").request_head().is_none());
    // No Content-Length: the rest is the body.
    assert_eq!(request(&format!("{base}\r\nabc")).body, b"abc");
    assert!(parse(format!("{base}Content-Length: x\r\n\r\n").as_bytes()).is_err());
}

#[test]
fn responses() {
    let m = parse(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=1.2.3.4;rport=4321\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x@y\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"b\", nonce=\"abc\", qop=\"auth,auth-int\"\r\nContent-Length: 0\r\n\r\n").expect("valid");
    let Message::Response(r) = m else { panic!("response") };
    assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
    let via = r.headers.top_via().expect("via");
    assert_eq!((via.received(), via.rport()), (Some("1.2.3.4"), Some(Some(4321))));
    assert!(r.headers.get(&HeaderName::WwwAuthenticate).is_some_and(|v| v.starts_with("Digest")));
    let m = parse(b"SIP/2.0 200\r\nCSeq: 2 BYE\r\n\r\n").expect("empty reason is allowed");
    assert!(matches!(m, Message::Response(Response { status: 200, .. })));
}

#[test]
fn response_for_a_request_copies_the_transaction_headers() {
    let r = request(INVITE);
    let resp = Response::for_request(&r, 180, reason_phrase(180), Some("gw1"));
    assert_eq!(resp.headers.to().expect("to").tag(), Some("gw1"));
    assert_eq!(resp.headers.top_via().expect("via").branch(), Some("z9hG4bK-1"));
    assert_eq!(resp.headers.call_id().expect("call-id"), "1@127.0.0.1");
    // 100 Trying carries no tag.
    let trying = Response::for_request(&r, 100, "Trying", Some("gw1"));
    assert_eq!(trying.headers.to().expect("to").tag(), None);
    let printed = String::from_utf8(resp.encode()).expect("utf-8");
    assert!(printed.starts_with("SIP/2.0 180 Ringing\r\n"));
}

#[test]
fn malformed_messages_are_errors_with_reasons() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "no end of headers"),
        (b"INVITE sip:x@y SIP/2.0\r\nVia: x", "no end of headers"),
        (b"INVITE sip:x@y\r\n\r\n", "bad request line"),
        (b"INVITE sip:x@y SIP/3.0\r\n\r\n", "unsupported SIP version"),
        (b"INVITE http://x SIP/2.0\r\n\r\n", "unsupported URI scheme"),
        (b"SIP/2.0 99 Low\r\n\r\n", "out of range"),
        (b"SIP/2.0 abc OK\r\n\r\n", "bad status code"),
        (b"OPTIONS sip:x@y SIP/2.0\r\nNoColonHere\r\n\r\n", "without ':'"),
        (b"OPTIONS sip:x@y SIP/2.0\r\nBad Name: x\r\n\r\n", "bad header name"),
        (b"OPTIONS sip:x@y SIP/2.0\r\nX: \xff\xfe\r\n\r\n", "not UTF-8"),
        (b" \r\nOPTIONS sip:x@y SIP/2.0\r\n\r\n", "continuation before the start line"),
    ];
    for (bytes, reason) in cases {
        let e = parse(bytes).expect_err("malformed");
        assert!(e.reason().contains(reason), "{:?}: {e}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn validation_names_the_missing_header() {
    for (drop, reason) in [("Call-ID", "missing Call-ID"), ("From", "missing From"), ("To", "missing To"), ("CSeq", "missing CSeq"), ("Via", "missing Via")] {
        let text: String = INVITE.split("\r\n").filter(|l| !l.starts_with(&format!("{drop}:"))).collect::<Vec<_>>().join("\r\n");
        let e = request(&text).validate().expect_err("invalid");
        assert_eq!(e.reason(), reason);
    }
    let mismatched = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    assert!(request(&mismatched).validate().is_err());
}

#[test]
fn never_panics_on_mutations() {
    // Deterministic mutations of valid messages: every prefix, and byte flips.
    let samples =
        [INVITE.as_bytes().to_vec(), b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1\r\nContact: *\r\nContent-Length: 0\r\n\r\n".to_vec()];
    let mut x = 0x1234_5678u32;
    for s in samples {
        for n in 0..=s.len() {
            let _ = parse(&s[..n]).map(|m| (m.headers().vias(), m.headers().from(), m.headers().name_addrs(&HeaderName::Contact)));
        }
        for _ in 0..5_000 {
            let mut m = s.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % m.len();
                m[i] = (x >> 8) as u8;
            }
            if let Ok(msg) = parse(&m) {
                let h = msg.headers();
                let _ = (h.vias(), h.from(), h.to(), h.cseq(), h.call_id(), h.name_addrs(&HeaderName::Contact), h.name_addrs(&HeaderName::RecordRoute));
                let _ = msg.encode();
            }
        }
    }
}

#[test]
fn top_via_is_replaced_in_place() {
    let mut r = request(
        "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
    );
    let mut top = r.headers.top_via().expect("via");
    top.params.set("received", Some("1.2.3.4"));
    r.headers.set_top_via(&top);
    let vias = r.headers.vias().expect("vias");
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].received(), Some("1.2.3.4"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK2"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK3"));
}
