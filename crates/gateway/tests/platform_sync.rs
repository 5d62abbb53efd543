//! Phones and assistants from the Happ platform (`[happ]`): the gateway registers the phones the
//! local Happ server lists at Kamailio, and follows phones added, re-linked and removed there,
//! without a restart; an API outage changes nothing; `check` shows what the platform serves.

#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use happ_client::model::{AssistantId, Codec, NewPhone, PhoneId};
use happ_server::{FaultConfig, HappServer, Seed, ServerConfig, ServerHandle};
use happ_testkit::kamailio::{Kamailio, KamailioConfig};
use happ_testkit::sipp::Sipp;
use support::{Gateway, Phone, Setup, eventually};

const TOKEN: &str = "happ_gateway_test";
const USERS: [(&str, &str); 3] = [("1001", "pw-1001"), ("1002", "pw-1002"), ("1003", "pw-1003")];

fn seed(registrar: &str) -> Seed {
    serde_json::from_value(serde_json::json!({
        "assistants": [
            {"id": "a-support", "name": "Support", "promptText": "Help callers.", "firstMessage": "Hello!", "llmProvider": "local", "llmModel": "knowledge", "language": "en"},
            {"id": "a-sales", "name": "Sales", "promptText": "Sell.", "language": "en"}
        ],
        "knowledge": [
            {"id": "k1", "assistantId": "a-support", "type": "text", "name": "Hours", "resourceContent": "Open 9 to 6."}
        ],
        "phones": [
            {"id": "p1", "phoneNumber": "+493001001", "sipLogin": "1001", "password": "pw-1001", "telephonyUrl": registrar, "codec": "alaw", "assistantId": "a-support"},
            {"id": "p-bad", "phoneNumber": "+493009999", "sipLogin": "9999", "password": "x", "telephonyUrl": "sips:tls.example", "codec": "alaw"}
        ]
    }))
    .expect("a valid seed")
}

/// The local Happ server, on a runtime of its own.
fn happ(registrar: &str) -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut config = ServerConfig::new(TOKEN);
    config.seed = seed(registrar);
    let server = rt.block_on(HappServer::start(config)).expect("happ-server starts");
    (rt, server)
}

fn phone_state(gw: &Gateway, number: &str) -> Option<serde_json::Value> {
    gw.phones().into_iter().find(|p| p["phoneNumber"] == number)
}

#[test]
fn the_platforms_phones_register_and_follow_its_changes() {
    let k = Kamailio::start(KamailioConfig::with_users(&USERS)).unwrap_or_else(|e| panic!("{e}"));
    let registrar = k.addr().to_string();
    let (_rt, server) = happ(&registrar);
    let setup = Setup { happ: Some((server.base_url(), TOKEN.into(), 1)), ..Setup::with_phones(vec![]) };
    let gw = Gateway::start(&setup);

    let p1 = eventually("the platform's phone registered", Duration::from_secs(20), || phone_state(&gw, "+493001001").filter(|p| p["state"] == "registered"));
    assert_eq!((p1["source"].as_str(), p1["assistantId"].as_str(), p1["handler"].as_str()), (Some("happ"), Some("a-support"), Some("assistant")), "{p1}");
    assert!(phone_state(&gw, "+493009999").is_none(), "a phone the gateway cannot serve is skipped");
    assert!(gw.log().contains("platform phone skipped"), "{}", gw.log());

    // Added on the platform: registered without a restart.
    server
        .state()
        .write(|s| {
            s.create_phone(NewPhone {
                phone_number: "+493001002".into(),
                sip_login: "1002".into(),
                password: "pw-1002".into(),
                telephony_url: registrar.clone(),
                codec: Codec::Ulaw,
                assistant_id: Some(AssistantId::new("a-sales")),
            })
        })
        .expect("phone created");
    let p2 = eventually("the new phone registered", Duration::from_secs(20), || phone_state(&gw, "+493001002").filter(|p| p["state"] == "registered"));
    assert_eq!(p2["assistantId"], "a-sales");
    assert_eq!(k.registered("1002").expect("ul.lookup").len(), 1);

    // Re-linked to another assistant: the next calls use it; the registration is not redone.
    let registrations = gw.metric("happ_gateway_sip_registrations_total");
    server.state().write(|s| s.link_phone(&PhoneId::new("p1"), Some(AssistantId::new("a-sales")))).expect("linked");
    eventually("the phone re-linked", Duration::from_secs(10), || phone_state(&gw, "+493001001").filter(|p| p["assistantId"] == "a-sales"));
    assert_eq!(phone_state(&gw, "+493001001").expect("listed")["state"], "registered");
    assert!(gw.metric("happ_gateway_sip_registrations_total") - registrations < 2.0, "no new registration for a re-link");

    // Removed from the platform: unregistered and gone.
    let id = server.state().read(|s| s.phones().iter().find(|p| p.phone_number == "+493001002").map(|p| p.id.clone())).expect("listed");
    server.state().write(|s| s.remove_phone(&id)).expect("removed");
    eventually("the removed phone gone", Duration::from_secs(10), || phone_state(&gw, "+493001002").is_none().then_some(()));
    eventually("and unregistered at the registrar", Duration::from_secs(10), || k.registered("1002").ok().filter(Vec::is_empty));

    // An outage of the platform changes nothing: the last phones stay registered.
    server.state().set_faults(serde_json::from_str::<FaultConfig>(r#"{"rules": [{"action": {"kind": "error", "status": 503}}]}"#).expect("rules"));
    eventually("two failed reads", Duration::from_secs(60), || (gw.metric(r#"happ_gateway_platform_syncs_total{outcome="failed"}"#) >= 2.0).then_some(()));
    let phones = gw.phones();
    assert_eq!(phones.len(), 1, "{phones:?}");
    assert_eq!(phones[0]["state"], "registered");
    server.state().set_faults(FaultConfig::default());

    // `check` shows what the platform serves.
    let out = Command::new(support::binary())
        .args(["check", "--config"])
        .arg(gw.dir().join("gateway.toml"))
        .env("GATEWAY_CONTROL_TOKEN", "x")
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 phones, 1 linked assistants") && text.contains("+493001001") && text.contains("Sales"), "{text}");
}

#[test]
fn calls_are_mirrored_into_chats_and_survive_a_restart_during_an_outage() {
    let (_rt, server) = happ("127.0.0.1:5999");
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup {
        happ: Some((server.base_url(), TOKEN.into(), 1)),
        happ_outbox: Some(dir.path().join("outbox.sqlite")),
        ..Setup::with_phones(vec![Phone { assistant_id: Some("a-support".into()), ..Phone::trunk("+4930111", "127.0.0.1:5999") }])
    };
    let chats = |server: &ServerHandle| {
        server
            .state()
            .read(|s| s.chats().filter(|c| c.assistant_id.as_ref().is_some_and(|a| a.as_str() == "a-support")).map(|c| c.id.clone()).collect::<Vec<_>>())
    };

    // The platform is down while a call happens, and the gateway stops before it is back.
    server.state().set_faults(serde_json::from_str::<FaultConfig>(r#"{"rules": [{"action": {"kind": "error", "status": 503}}]}"#).expect("rules"));
    let mut gw = Gateway::start(&setup);
    let uac = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 500).remote(gw.sip).service("4930111");
    let out = uac.run().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
    eventually("the chat's creation tried", Duration::from_secs(10), || (server.state().stats().route("POST /api/chats").requests > 0).then_some(()));
    gw.terminate();
    assert!(gw.wait_exit(Duration::from_secs(20)).success(), "{}", gw.log());
    assert!(chats(&server).is_empty(), "nothing reached the platform yet");

    // Back up, and a new gateway process: the call's chat arrives, once, with both messages.
    server.state().set_faults(FaultConfig::default());
    let gw = Gateway::start(&setup);
    let chat = eventually("the call's chat delivered", Duration::from_secs(30), || {
        let ids = chats(&server);
        let id = ids.first()?.clone();
        let messages = server.state().read(|s| s.messages(&id).map(|m| m.to_vec())).ok()?;
        (messages.len() == 2).then_some((ids, messages))
    });
    let (ids, messages) = chat;
    assert_eq!(ids.len(), 1, "one chat for one call");
    assert!(messages[0].content.starts_with("Inbound call from ") && messages[0].content.contains("+4930111"), "{:?}", messages[0]);
    assert!(messages[1].content.starts_with("Call ended after "), "{:?}", messages[1]);
    assert!(messages.iter().all(|m| m.role.to_string() == "system"), "{messages:?}");
    assert!(gw.log().contains("Happ outbox open") && gw.log().contains("pending=3"), "{}", gw.log());
}
