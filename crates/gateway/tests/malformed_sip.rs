//! Malformed, truncated and hostile SIP over UDP and TCP: each gets a 400 (or the response
//! RFC 3261 asks for), or is dropped where there is nothing to answer, and the gateway keeps
//! serving calls.

#![allow(clippy::disallowed_methods)]

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use happ_testkit::sipp::Sipp;
use support::{Gateway, Phone, RawSip, Setup};

const SHORT: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(3);

/// An INVITE to the phone from `local`, with extra header lines and a body.
fn invite(local: &str, branch: &str, extra: &str, body: &str) -> String {
    format!(
        "INVITE sip:4930111@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\nMax-Forwards: 70\n\
         From: <sip:caller@{local}>;tag=t{branch}\nTo: <sip:4930111@127.0.0.1>\nCall-ID: {branch}@test\nCSeq: 1 INVITE\n\
         Contact: <sip:caller@{local}>\n{extra}Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    )
}

fn sdp(payloads: &str, rtpmaps: &str) -> String {
    format!("v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP {payloads}\n{rtpmaps}")
}

fn ack(local: &str, branch: &str, response: &str) -> String {
    let to = response.lines().find(|l| l.starts_with("To:")).expect("To").trim_end();
    format!(
        "ACK sip:4930111@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\nMax-Forwards: 70\n\
         From: <sip:caller@{local}>;tag=t{branch}\n{to}\nCall-ID: {branch}@test\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    )
}

#[test]
fn bad_requests_get_400_and_garbage_is_dropped_over_udp() {
    let setup = Setup { rtp_pairs: 40, max_concurrent: 40, ..Setup::with_phones(vec![Phone::trunk("+4930111", "127.0.0.1:5999")]) };
    let gw = Gateway::start(&setup);
    let raw = RawSip::new(Ipv4Addr::LOCALHOST, gw.sip);
    let local = raw.local().to_string();

    // Not SIP at all, and a message cut before the end of its headers: nothing to answer.
    raw.send_bytes(b"\x00\x01\x02 not SIP \xff\r\n\r\n");
    raw.send_bytes(invite(&local, "cut", "", "").split("Call-ID").next().expect("head").as_bytes());
    assert!(raw.receive(SHORT).is_empty());

    // A required header missing: 400 naming it.
    raw.send(&invite(&local, "nocid", "", "").replace("Call-ID: nocid@test\n", ""));
    let r = raw.expect_status(400, WAIT);
    assert!(r.starts_with("SIP/2.0 400 Bad Request (missing Call-ID"), "{r}");

    // A body shorter than its Content-Length (a truncated datagram): 400 (RFC 3261 §18.3).
    let body = sdp("8", "a=rtpmap:8 PCMA/8000\n");
    let truncated = invite(&local, "trunc", "", &body);
    raw.send(&truncated[..truncated.len() - 20]);
    let r = raw.expect_status(400, WAIT);
    assert!(r.contains("shorter than Content-Length"), "{r}");

    // CSeq of another method: 400.
    raw.send(&invite(&local, "cseq", "", "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    raw.expect_status(400, WAIT);

    // An SDP body that is not SDP: 400 with the reason, after the 100.
    raw.send(&invite(&local, "badsdp", "", "this is not SDP\n"));
    let r = raw.expect_status(400, WAIT);
    assert!(r.contains("SDP"), "{r}");
    raw.send(&ack(&local, "badsdp", &r));

    // No codec in common: 488.
    raw.send(&invite(&local, "g729", "", &sdp("18", "a=rtpmap:18 G729/8000\n")));
    let r = raw.expect_status(488, WAIT);
    raw.send(&ack(&local, "g729", &r));

    // An unknown method: 405 with Allow; OPTIONS: 200 with Allow.
    raw.send(&format!(
        "FOO sip:4930111@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {local};branch=z9hG4bKfoo;rport\nMax-Forwards: 70\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: foo\nCSeq: 1 FOO\nContent-Length: 0\n\n"
    ));
    let r = raw.expect_status(405, WAIT);
    assert!(r.contains("Allow:"), "{r}");
    raw.send(&format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopt;rport\nMax-Forwards: 70\nFrom: <sip:probe@{local}>;tag=p\nTo: <sip:127.0.0.1>\nCall-ID: opt@test\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    ));
    let r = raw.expect_status(200, WAIT);
    assert!(r.contains("Allow:") && r.contains("INVITE"), "{r}");

    // Mangled INVITEs (a seeded byte-flip fuzz): answered or dropped, never a crash. Flips in
    // the head go to a number no phone has (404 when they still parse); flips in the SDP go to
    // the phone, and those still valid are answered (their calls end at Timer H, unacked).
    let body = sdp("8 101", "a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..330 {
        let to_phone = i >= 300;
        let valid = invite(&local, &format!("fuzz{i}"), "", &body).replace('\n', "\r\n");
        let valid = if to_phone { valid } else { valid.replace("4930111@", "4930999@") };
        let mut bytes = valid.into_bytes();
        let head = bytes.len() - body.replace('\n', "\r\n").len();
        let (from, len) = if to_phone { (head, bytes.len() - head) } else { (0, head) };
        for _ in 0..1 + i % 8 {
            let r = next();
            bytes[from + (r % len as u64) as usize] = (r >> 32) as u8;
        }
        raw.send_bytes(&bytes);
    }
    let _ = raw.receive(Duration::from_secs(1));
    assert!(gw.metric("happ_gateway_sip_bad_requests_total") >= 4.0, "{}", gw.metrics());
    assert!(gw.metric("happ_gateway_sip_unparseable_total") >= 2.0, "{}", gw.metrics());

    assert!(gw.metric("happ_gateway_calls_active") <= 30.0);
    // Still serving: a real call.
    let out = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 300).remote(gw.sip).service("4930111").run().expect("SIPp");
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
}

#[test]
fn garbage_on_a_tcp_connection_closes_it_and_others_are_served() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone::trunk("+4930111", "127.0.0.1:5999")]));
    let options = |local: &str| {
        format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p\r\n\
             To: <sip:127.0.0.1>\r\nCall-ID: tcp@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // A stream that is not SIP: the gateway closes the connection.
    let mut bad = TcpStream::connect(gw.sip).expect("connect");
    bad.set_read_timeout(Some(WAIT)).expect("timeout");
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x00\x00").expect("write");
    let mut buf = [0u8; 1024];
    assert!(matches!(bad.read(&mut buf), Ok(0) | Err(_)), "connection closed");

    // A Content-Length larger than anything allowed: closed too, without waiting for the body.
    let mut huge = TcpStream::connect(gw.sip).expect("connect");
    huge.set_read_timeout(Some(WAIT)).expect("timeout");
    let local = huge.local_addr().expect("addr").to_string();
    huge.write_all(options(&local).replace("Content-Length: 0", "Content-Length: 99999999").as_bytes()).expect("write");
    assert!(matches!(huge.read(&mut buf), Ok(0) | Err(_)), "connection closed");

    // A well-behaved connection, with a keep-alive first, gets its answer.
    let mut good = TcpStream::connect(gw.sip).expect("connect");
    good.set_read_timeout(Some(WAIT)).expect("timeout");
    let local = good.local_addr().expect("addr").to_string();
    good.write_all(b"\r\n\r\n").expect("ping");
    good.write_all(options(&local).as_bytes()).expect("write");
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = good.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    // The keep-alive is answered with a pong (RFC 5626 §3.5.1), then the 200.
    assert!(text.trim_start().starts_with("SIP/2.0 200 OK"), "{text}");
}
