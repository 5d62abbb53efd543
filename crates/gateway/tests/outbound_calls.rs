//! Outbound calls placed through the control API and `happ-gateway dial`, to SIPp callees that
//! answer, challenge with 407, reject with 486 or 603, never answer, or send early media; and
//! through Kamailio as the registrar and outbound proxy of a registered phone.

#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use happ_media::Law;
use happ_testkit::captures::rtp_capture;
use happ_testkit::kamailio::{Kamailio, KamailioConfig};
use happ_testkit::sipp::{Sipp, SippHandle, SippOutcome};
use serde_json::{Value, json};
use support::{Gateway, Phone, Setup, TOKEN, eventually};

const NUMBER: &str = "+4930111";
const CALLEE: &str = "4930999";

fn spawn(sipp: Sipp) -> SippHandle {
    sipp.spawn().unwrap_or_else(|e| panic!("{e}"))
}

fn wait(handle: SippHandle) -> SippOutcome {
    handle.wait().unwrap_or_else(|e| panic!("{e}"))
}

fn assert_succeeded(out: &SippOutcome, gw: &Gateway) {
    assert!(out.succeeded(), "{}\n--- gateway ---\n{}", out.report(), gw.log());
}

/// A gateway whose one phone is a trunk to `callee`.
fn gateway_to(callee: &SippHandle, setup: impl FnOnce(Setup) -> Setup) -> Gateway {
    Gateway::start(&setup(Setup::with_phones(vec![Phone::trunk(NUMBER, callee.local_addr())])))
}

/// `POST /calls`; the call's view.
fn dial(gw: &Gateway) -> Value {
    let (status, call) = gw.post("/calls", &json!({ "to": CALLEE, "phone": NUMBER }));
    assert_eq!(status, 201, "{call}\n{}", gw.log());
    assert_eq!((call["direction"].as_str(), call["state"].as_str(), call["remote"].as_str()), (Some("outbound"), Some("ringing"), Some(CALLEE)));
    call
}

fn call_in_state(gw: &Gateway, id: &str, state: &str) -> Value {
    eventually(&format!("call {id} {state}"), Duration::from_secs(15), || {
        let (status, call) = gw.get(&format!("/calls/{id}"));
        (status == 200 && call["state"] == state).then_some(call)
    })
}

#[test]
fn answered_then_hung_up_through_the_api() {
    let uas = spawn(Sipp::scenario("uas_answer.xml"));
    let gw = gateway_to(&uas, |s| s);
    let call = dial(&gw);
    let id = call["id"].as_str().expect("id").to_owned();
    let answered = call_in_state(&gw, &id, "answered");
    assert_eq!(answered["codec"], "PCMA", "{answered}");
    assert_eq!(gw.delete(&format!("/calls/{id}")), 204);
    let out = wait(uas);
    assert_succeeded(&out, &gw);
    let invite = out.received_request("INVITE").expect("INVITE");
    assert!(invite.start_line().starts_with(&format!("INVITE sip:{CALLEE}@{} SIP/2.0", out_addr(&gw))), "{}", invite.start_line());
    assert!(invite.header("From").is_some_and(|f| f.contains("sip:4930111@")), "{:?}", invite.header("From"));
    assert!(invite.body().contains("a=rtpmap:101 telephone-event/8000"), "{}", invite.body());
    assert!(out.received_request("BYE").is_some());
    let ended = call_in_state(&gw, &id, "ended");
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("control API")), "{ended}");
}

/// The trunk's address as the gateway writes it in the Request-URI (the phone's telephonyUrl).
fn out_addr(gw: &Gateway) -> String {
    gw.phone(NUMBER)["telephonyUrl"].as_str().expect("url").to_owned()
}

#[test]
fn the_callee_hangs_up() {
    let uas = spawn(Sipp::scenario("uas_answer.xml").placeholder("HANGUP_AFTER_MS", 800));
    let gw = gateway_to(&uas, |s| s);
    let id = dial(&gw)["id"].as_str().expect("id").to_owned();
    let out = wait(uas);
    assert_succeeded(&out, &gw);
    let ended = call_in_state(&gw, &id, "ended");
    assert!(ended["answeredAt"].is_number(), "{ended}");
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("remote")), "{ended}");
    assert_eq!(gw.metric(r#"happ_gateway_calls_total{direction="outbound",outcome="answered"}"#), 1.0);
}

#[test]
fn a_407_challenge_is_answered_with_the_phones_credentials() {
    let uas = Sipp::scenario("uas_auth_407.xml").placeholder("USER", "4930111").placeholder("NONCE", "0a4f113b7c1d").expect_digest("4930111", "trunk-secret");
    let uas = spawn(uas);
    let gw = gateway_to(&uas, |mut s| {
        s.phones[0].password = "trunk-secret".into();
        s
    });
    let id = dial(&gw)["id"].as_str().expect("id").to_owned();
    call_in_state(&gw, &id, "answered");
    assert_eq!(gw.delete(&format!("/calls/{id}")), 204);
    let out = wait(uas);
    // The harness checked the Proxy-Authorization against the password (expect_digest).
    assert_succeeded(&out, &gw);
    let invites = out.traced().into_iter().filter(|m| !m.sent && m.method() == Some("INVITE")).count();
    assert_eq!(invites, 2, "one challenged INVITE, one with credentials");
}

#[test]
fn busy_and_decline_are_reported_and_not_redialled() {
    for (code, reason) in [(486, "Busy Here"), (603, "Decline")] {
        let uas = spawn(Sipp::scenario("uas_busy.xml").placeholder("CODE", code).placeholder("REASON", reason));
        let gw = gateway_to(&uas, |s| s);
        let id = dial(&gw)["id"].as_str().expect("id").to_owned();
        let ended = call_in_state(&gw, &id, "ended");
        assert_eq!(ended["status"], code, "{ended}");
        assert!(ended["reason"].as_str().is_some_and(|r| r.contains(reason)), "{ended}");
        let out = wait(uas);
        assert_succeeded(&out, &gw);
        std::thread::sleep(Duration::from_millis(500));
        let invites = out.traced().into_iter().filter(|m| !m.sent && m.method() == Some("INVITE")).count();
        assert_eq!(invites, 1, "never redialled after {code}");
        assert_eq!(gw.metric(r#"happ_gateway_calls_total{direction="outbound",outcome="failed"}"#), 1.0);
        assert_eq!(gw.metric("happ_gateway_rtp_port_pairs_in_use"), 0.0);
    }
}

#[test]
fn an_unanswered_call_is_cancelled_at_the_ring_timeout() {
    let uas = spawn(Sipp::scenario("uas_no_answer.xml"));
    let gw = gateway_to(&uas, |s| Setup { ring_timeout_secs: 2, ..s });
    let id = dial(&gw)["id"].as_str().expect("id").to_owned();
    let ended = call_in_state(&gw, &id, "ended");
    assert_eq!(ended["status"], 408, "{ended}");
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("ring timeout")), "{ended}");
    // SIPp got the CANCEL, answered the INVITE with 487 and had its ACK.
    let out = wait(uas);
    assert_succeeded(&out, &gw);
    assert!(out.received_request("CANCEL").is_some(), "{}", out.report());
    assert!(out.received_request("ACK").is_some(), "{}", out.report());
}

#[test]
fn early_media_then_answer() {
    // 1.2 s of speech as early media (60 packets), before the 200.
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("early.pcap");
    std::fs::write(&pcap, rtp_capture(Law::Alaw, &support::speech(1200))).expect("write pcap");
    let uas = Sipp::scenario("uas_early_media.xml").play_pcap(&pcap).expect("pcap").placeholder("HANGUP_AFTER_MS", 500);
    let uas = spawn(uas);
    let gw = gateway_to(&uas, |s| s);
    let id = dial(&gw)["id"].as_str().expect("id").to_owned();
    let out = wait(uas);
    assert_succeeded(&out, &gw);
    let ended = call_in_state(&gw, &id, "ended");
    assert!(ended["answeredAt"].is_number(), "{ended}");
    // The early media was received (SIPp sends no RTP after its 200): counted when the call's
    // media ends.
    eventually("media statistics", Duration::from_secs(5), || (gw.metric("happ_gateway_rtp_packets_received_total") >= 55.0).then_some(()));
    assert!(gw.log().contains("media started"), "{}", gw.log());
}

#[test]
fn the_dial_command_reports_the_outcome() {
    let uas = spawn(Sipp::scenario("uas_answer.xml").placeholder("HANGUP_AFTER_MS", 1500));
    let gw = gateway_to(&uas, |s| s);
    let run = |extra: &[&str]| {
        let out = Command::new(support::binary())
            .args(["dial", "--to", CALLEE, "--phone", NUMBER, "--control", &gw.control])
            .args(extra)
            .env("GATEWAY_CONTROL_TOKEN", TOKEN)
            .output()
            .expect("dial runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("answered (PCMA)"), "{stdout}");
    assert_succeeded(&wait(uas), &gw);

    // A busy callee: exit status 1, with the code and reason.
    let busy = spawn(Sipp::scenario("uas_busy.xml"));
    let gw = gateway_to(&busy, |s| s);
    let run = |token: &str| {
        let out = Command::new(support::binary())
            .args(["dial", "--to", CALLEE, "--phone", NUMBER, "--control", &gw.control, "--token", token])
            .output()
            .expect("dial runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stdout, stderr) = run(TOKEN);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("not answered: 486 Busy Here"), "{stdout}");
    assert_succeeded(&wait(busy), &gw);
    // A wrong token is refused before anything is dialled.
    let (code, _, stderr) = run("wrong");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("401"), "{stderr}");
}

#[test]
fn the_control_api_refuses_bad_requests() {
    let uas = spawn(Sipp::scenario("uas_busy.xml").timeout(Duration::from_secs(5)));
    let gw = gateway_to(&uas, |s| s);
    let (status, body) = gw.post("/calls", &json!({ "to": CALLEE, "phone": "+1999" }));
    assert_eq!(status, 404, "{body}");
    let (status, body) = gw.post("/calls", &json!({ "to": "12;drop", "phone": NUMBER }));
    assert_eq!(status, 400, "{body}");
    let (status, body) = gw.post("/calls", &json!({ "to": CALLEE }));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("phone")), "{body}");
    let (status, _) = gw.get("/calls/nope");
    assert_eq!(status, 404);
    // Without the token: 401.
    let r = reqwest::blocking::get(format!("{}/calls", gw.control)).expect("GET");
    assert_eq!(r.status(), 401);
    // Health and readiness need none.
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", gw.control)).expect("GET").status(), 200);
    drop(uas);
}

#[test]
fn a_registered_phone_calls_through_its_registrar() {
    let uas = spawn(Sipp::scenario("uas_answer.xml"));
    let k = Kamailio::start(KamailioConfig { outbound_target: Some(uas.local_addr()), ..KamailioConfig::with_users(&[("1001", "pw-1001")]) })
        .unwrap_or_else(|e| panic!("{e}"));
    let phone = Phone::registered(NUMBER, "1001", "pw-1001", k.addr());
    let gw = Gateway::start(&Setup::with_phones(vec![phone]));
    // Not registered yet, or registered: dialling waits for the registration.
    eventually("registered", Duration::from_secs(10), || (gw.phone(NUMBER)["state"] == "registered").then_some(()));
    let id = dial(&gw)["id"].as_str().expect("id").to_owned();
    call_in_state(&gw, &id, "answered");
    assert_eq!(gw.delete(&format!("/calls/{id}")), 204);
    let out = wait(uas);
    assert_succeeded(&out, &gw);
    // Kamailio challenged the INVITE (407), consumed the credentials and record-routed.
    let invite = out.received_request("INVITE").expect("INVITE");
    assert!(invite.header("Record-Route").is_some(), "{}", out.report());
    assert!(invite.header("From").is_some_and(|f| f.contains("sip:1001@")), "{:?}", invite.header("From"));
    assert!(out.received_request("BYE").is_some());
}
