//! Inbound calls from SIPp to the gateway's phones: the echo handler's audio, hold and resume,
//! CANCEL while ringing, BYE from either side, the call limits, and who may call at all.
//!
//! The phones are trunks (`register = false`, `telephonyUrl` on 127.0.0.1), so SIPp may call
//! them directly from 127.0.0.1.

#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use happ_media::Law;
use happ_testkit::sipp::{Sipp, SippHandle, SippOutcome, Transport};
use support::{Gateway, Phone, RtpPeer, Setup, eventually, speech, wav};

const TRUNK: &str = "127.0.0.1:5999";

fn spawn(sipp: Sipp) -> SippHandle {
    sipp.spawn().unwrap_or_else(|e| panic!("{e}"))
}

fn wait(handle: SippHandle) -> SippOutcome {
    handle.wait().unwrap_or_else(|e| panic!("{e}"))
}

fn assert_succeeded(out: &SippOutcome, gw: &Gateway) {
    assert!(out.succeeded(), "{}\n--- gateway ---\n{}", out.report(), gw.log());
}

/// A call answered on `gw` (polls `GET /calls`).
fn answered_call(gw: &Gateway) -> serde_json::Value {
    eventually("a call answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"))
}

/// How many of the distinct 20 ms frames of `sent` came back sample-exact in `received`, out
/// of how many, and whether they came back in the order sent.
///
/// Frames are compared decoded: µ-law has two codes for zero (0x7F and 0xFF), and an encoder
/// fed the decoded zero picks 0xFF whatever code came in.
fn frames_echoed(sent: &[i16], received: &[Vec<i16>]) -> (usize, usize, bool) {
    let frames: Vec<&[i16]> = sent.chunks_exact(160).collect();
    let mut count: HashMap<&[i16], usize> = HashMap::new();
    for f in &frames {
        *count.entry(f).or_default() += 1;
    }
    // Frames that occur once identify a position in the stream (silence repeats).
    let index: HashMap<&[i16], usize> = frames.iter().enumerate().filter(|(_, f)| count[*f] == 1).map(|(i, f)| (*f, i)).collect();
    let order: Vec<usize> = received.iter().filter_map(|p| index.get(p.as_slice()).copied()).collect();
    let in_order = order.windows(2).all(|w| w[0] < w[1]);
    (order.len(), index.len(), in_order)
}

#[test]
fn echo_returns_the_callers_audio_in_the_phones_codec() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone { codec: "ulaw", ..Phone::trunk("+4930111", TRUNK) }]));
    let peer = RtpPeer::bind();
    let uac = spawn(Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", peer.port()).placeholder("TALK_MS", 6000).remote(gw.sip).service("4930111"));
    let call = answered_call(&gw);
    // The offer lists PCMA first; the phone prefers µ-law, and gets it.
    assert_eq!(call["codec"], "PCMU", "{call}");
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["remote"], "caller");

    let pcm = speech(3000);
    peer.send(SocketAddr::from((Ipv4Addr::LOCALHOST, gw.rtp)), Law::Ulaw, 0, &pcm);
    thread::sleep(Duration::from_millis(600));
    let received = peer.finish();
    let out = wait(uac);
    assert_succeeded(&out, &gw);

    // What the gateway heard: the speech through the µ-law encoder and decoder.
    let mut codes = vec![0u8; pcm.len()];
    Law::Ulaw.encode(&pcm, &mut codes);
    let mut sent = vec![0i16; pcm.len()];
    Law::Ulaw.decode(&codes, &mut sent);
    let decode = |payload: &[u8]| {
        let mut pcm = vec![0i16; payload.len()];
        Law::Ulaw.decode(payload, &mut pcm);
        pcm
    };
    let payloads: Vec<Vec<i16>> = received.iter().filter(|r| r.payload_type == 0).map(|r| decode(&r.payload)).collect();
    assert!(received.iter().all(|r| r.payload_type == 0 || r.payload_type == 13), "only PCMU (and CN) is sent");
    let (echoed, distinct, in_order) = frames_echoed(&sent, &payloads);
    eprintln!("echo: {echoed} of {distinct} distinct frames came back sample-exact");
    assert!(distinct > 100, "the speech has {distinct} distinct frames");
    assert!(echoed * 100 >= distinct * 95, "{echoed} of {distinct} frames came back sample-exact");
    assert!(in_order, "the frames came back in order");

    // The call is listed as ended, with its media statistics.
    let ended = eventually("call ended with statistics", Duration::from_secs(5), || {
        gw.calls().into_iter().find(|c| c["state"] == "ended" && c["packetsLost"].is_number())
    });
    assert_eq!(ended["packetsLost"], 0, "{ended}");
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("remote")), "{ended}");
    assert_eq!(gw.metric(r#"happ_gateway_calls_total{direction="inbound",outcome="answered"}"#), 1.0);
    assert!(gw.metric("happ_gateway_rtp_packets_received_total") >= 150.0);
    assert_eq!(gw.metric("happ_gateway_calls_active"), 0.0);
}

#[test]
fn a_call_over_tcp() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone::trunk("+4930111", TRUNK)]));
    let peer = RtpPeer::bind();
    let uac = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", peer.port()).placeholder("TALK_MS", 1500);
    let out = wait(spawn(uac.transport(Transport::Tcp).remote(gw.sip).service("4930111")));
    assert_succeeded(&out, &gw);
    let call = gw.calls().into_iter().next().expect("the call is listed");
    assert_eq!((call["state"].as_str(), call["codec"].as_str()), (Some("ended"), Some("PCMA")), "{call}");
    // The gateway's media reached the peer.
    assert!(peer.finish().len() >= 25, "RTP from the gateway");
    // Everything logged about the call carries its span: our id and the SIP Call-ID.
    let log = gw.log();
    let id = call["id"].as_str().expect("id");
    let in_span = log.lines().filter(|l| l.contains(&format!("call{{id={id} sip_call_id="))).collect::<Vec<_>>();
    assert!(in_span.iter().any(|l| l.contains("media started")) && in_span.iter().any(|l| l.contains("call ended")), "{log}");
}

#[test]
fn hold_and_resume() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone::trunk("+4930111", TRUNK)]));
    let out = wait(spawn(Sipp::scenario("uac_hold.xml").remote(gw.sip).service("4930111")));
    assert_succeeded(&out, &gw);
    // SIPp checked the directions of the answers (recvonly, then sendrecv); the gateway saw both.
    let log = gw.log();
    assert!(log.contains("re-INVITE") && log.contains("hold=true") && log.contains("hold=false"), "{log}");
}

#[test]
fn cancel_while_ringing() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone { answer_delay_ms: 5000, ..Phone::trunk("+4930111", TRUNK) }]));
    let out = wait(spawn(Sipp::scenario("uac_cancel.xml").placeholder("CANCEL_AFTER_MS", 300).remote(gw.sip).service("4930111")));
    assert_succeeded(&out, &gw);
    assert!(out.received_statuses().contains(&487), "{}", out.report());
    let call = gw.calls().into_iter().next().expect("listed");
    assert_eq!(call["state"], "ended");
    assert_eq!(call["answeredAt"], serde_json::Value::Null);
    assert!(call["reason"].as_str().is_some_and(|r| r.contains("cancelled")), "{call}");
    assert_eq!(gw.metric(r#"happ_gateway_calls_total{direction="inbound",outcome="cancelled"}"#), 1.0);
    // The RTP ports went back to the pool.
    assert_eq!(gw.metric("happ_gateway_rtp_port_pairs_in_use"), 0.0);
}

#[test]
fn a_ringing_call_is_answered_after_the_delay() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone { answer_delay_ms: 800, ..Phone::trunk("+4930111", TRUNK) }]));
    let uac = spawn(Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 500).remote(gw.sip).service("4930111"));
    let ringing = eventually("a ringing call", Duration::from_secs(5), || gw.calls().into_iter().find(|c| c["state"] == "ringing"));
    assert_eq!(ringing["direction"], "inbound");
    let out = wait(uac);
    assert_succeeded(&out, &gw);
    assert_eq!(out.received_statuses(), [100, 180, 200, 200], "{}", out.report());
}

#[test]
fn the_gateway_hangs_up_when_playback_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = wav(dir.path(), "prompt.wav", &speech(1000));
    let phone = Phone { handler: format!("play:{}", file.display()), ..Phone::trunk("+4930111", TRUNK) };
    let gw = Gateway::start(&Setup::with_phones(vec![phone]));
    let uac = Sipp::scenario("uac_wait_bye.xml").placeholder("BYE_TIMEOUT_MS", 10_000);
    let out = wait(spawn(uac.remote(gw.sip).service("4930111")));
    assert_succeeded(&out, &gw);
    let call = gw.calls().into_iter().next().expect("listed");
    assert!(call["reason"].as_str().is_some_and(|r| r.contains("playback finished")), "{call}");
}

#[test]
fn the_control_api_hangs_up_a_call() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone::trunk("+4930111", TRUNK)]));
    let uac = spawn(Sipp::scenario("uac_wait_bye.xml").placeholder("BYE_TIMEOUT_MS", 10_000).remote(gw.sip).service("4930111"));
    let call = answered_call(&gw);
    let id = call["id"].as_str().expect("id");
    // Give the ACK time to arrive: the BYE waits for it anyway (RFC 3261 §15).
    assert_eq!(gw.delete(&format!("/calls/{id}")), 204);
    let out = wait(uac);
    assert_succeeded(&out, &gw);
    assert_eq!(gw.delete(&format!("/calls/{id}")), 404, "already ended");
    let (status, view) = gw.get(&format!("/calls/{id}"));
    assert_eq!((status, view["state"].as_str()), (200, Some("ended")), "{view}");
}

#[test]
fn session_timers_keep_a_call_refreshed_or_end_it() {
    // A 4 s session interval (Min-SE lowered to 2 s for the test; RFC 4028's floor is 90 s).
    let setup = Setup { session_timer: (1800, 2), ..Setup::with_phones(vec![Phone::trunk("+4930111", TRUNK), Phone::trunk("+4930222", TRUNK)]) };
    let gw = Gateway::start(&setup);
    // The gateway refreshes (refresher=uas): two UPDATEs, at 2 s and 4 s.
    let refreshed = spawn(Sipp::scenario("uac_session_refreshed.xml").placeholder("SESSION_EXPIRES", 4).remote(gw.sip).service("4930111"));
    // The caller was to refresh and does not: the gateway hangs up at 4 - 4/3 s.
    let expires = spawn(Sipp::scenario("uac_session_expires.xml").placeholder("SESSION_EXPIRES", 4).remote(gw.sip).service("4930222"));
    let (refreshed, expires) = (wait(refreshed), wait(expires));
    assert_succeeded(&refreshed, &gw);
    assert_succeeded(&expires, &gw);
    let calls = gw.calls();
    let reason = |number: &str| calls.iter().find(|c| c["phone"] == number).and_then(|c| c["reason"].as_str().map(str::to_owned)).unwrap_or_default();
    assert!(reason("+4930222").contains("session expired"), "{calls:?}");
    assert!(!reason("+4930111").contains("session"), "{calls:?}");
}

#[test]
fn call_limits_per_phone_and_per_gateway() {
    let setup = Setup {
        max_concurrent: 2,
        ..Setup::with_phones(vec![Phone { max_calls: Some(1), ..Phone::trunk("+4930111", TRUNK) }, Phone::trunk("+4930222", TRUNK)])
    };
    let gw = Gateway::start(&setup);
    let talk = |number: &str| spawn(Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 6000).remote(gw.sip).service(number));
    let expect = |number: &str, code: u16| {
        let out = wait(spawn(Sipp::scenario("uac_expect_code.xml").placeholder("CODE", code).remote(gw.sip).service(number)));
        assert_succeeded(&out, &gw);
        out
    };
    let first = talk("4930111");
    answered_call(&gw);
    // The phone is at its limit: 486 Busy Here.
    expect("4930111", 486);
    let second = talk("4930222");
    eventually("two calls answered", Duration::from_secs(10), || (gw.calls().iter().filter(|c| c["state"] == "answered").count() == 2).then_some(()));
    // The gateway is at its limit: 503 with Retry-After.
    let out = expect("4930222", 503);
    let rejection = out.received_response(503).expect("503");
    assert_eq!(rejection.header("Retry-After"), Some("10"), "{}", out.report());
    assert_succeeded(&wait(first), &gw);
    assert_succeeded(&wait(second), &gw);
    assert_eq!(gw.metric(r#"happ_gateway_calls_rejected_total{status="486"}"#), 1.0);
    assert_eq!(gw.metric(r#"happ_gateway_calls_rejected_total{status="503"}"#), 1.0);
}

#[test]
fn strangers_and_unknown_numbers_are_refused() {
    let gw = Gateway::start(&Setup::with_phones(vec![Phone::trunk("+4930111", TRUNK)]));
    // From 127.0.0.2: neither a registrar nor a trunk of ours.
    let stranger = Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 403).local_ip(Ipv4Addr::new(127, 0, 0, 2));
    assert_succeeded(&wait(spawn(stranger.remote(gw.sip).service("4930111"))), &gw);
    // A number no phone has.
    let unknown = Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 404);
    assert_succeeded(&wait(spawn(unknown.remote(gw.sip).service("4930999"))), &gw);
    assert_eq!(gw.metric(r#"happ_gateway_calls_rejected_total{status="403"}"#), 1.0);
    assert_eq!(gw.metric(r#"happ_gateway_calls_rejected_total{status="404"}"#), 1.0);
    // The number also matches with its +, and the login (the E.164 digits here).
    let out = wait(spawn(Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 200).remote(gw.sip).service("+4930111")));
    assert_succeeded(&out, &gw);
}
