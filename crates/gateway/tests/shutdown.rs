//! Graceful shutdown: at SIGTERM new calls get 503 and `/readyz` says no, calls in progress may
//! finish within `calls.drain_secs`, those left are hung up with a BYE, and the process exits 0.

#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use happ_testkit::sipp::Sipp;
use support::{Gateway, Phone, Setup, eventually};

fn trunk_gateway(drain_secs: u64) -> Gateway {
    Gateway::start(&Setup { drain_secs, ..Setup::with_phones(vec![Phone::trunk("+4930111", "127.0.0.1:5999")]) })
}

fn answered(gw: &Gateway) {
    eventually("a call answered", Duration::from_secs(10), || gw.calls().iter().any(|c| c["state"] == "answered").then_some(()));
}

#[test]
fn calls_in_progress_finish_while_new_ones_are_refused() {
    let mut gw = trunk_gateway(20);
    let talking = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 3000).remote(gw.sip).service("4930111");
    let talking = talking.spawn().expect("SIPp");
    answered(&gw);
    gw.terminate();
    let readyz = format!("{}/readyz", gw.control);
    eventually("/readyz says no", Duration::from_secs(5), || reqwest::blocking::get(&readyz).ok().filter(|r| r.status() == 503));
    let refused = Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 503).remote(gw.sip).service("4930111").run().expect("SIPp");
    assert!(refused.succeeded(), "{}\n{}", refused.report(), gw.log());
    let (status, body) = gw.post("/calls", &serde_json::json!({ "to": "123", "phone": "+4930111" }));
    assert_eq!(status, 503, "{body}");
    // The call in progress ends on its own (SIPp's BYE), well before the drain time.
    let talking = talking.wait().expect("SIPp");
    assert!(talking.succeeded(), "{}\n{}", talking.report(), gw.log());
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", gw.log());
}

#[test]
fn calls_left_at_the_end_of_the_drain_are_hung_up() {
    let mut gw = trunk_gateway(1);
    let waiting = Sipp::scenario("uac_wait_bye.xml").placeholder("BYE_TIMEOUT_MS", 15_000).remote(gw.sip).service("4930111").spawn().expect("SIPp");
    answered(&gw);
    gw.terminate();
    let waiting = waiting.wait().expect("SIPp");
    assert!(waiting.succeeded(), "the gateway's BYE came: {}\n{}", waiting.report(), gw.log());
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", gw.log());
    assert!(gw.log().contains("drain time over"), "{}", gw.log());
}
