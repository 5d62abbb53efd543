//! Registration of the gateway's phones with Kamailio (digest authentication): several phones
//! over UDP and TCP, refreshes, recovery after a registrar restart, a wrong password reported
//! for its phone alone, SHA-256, calls routed by the registrar to the gateway, and the
//! unregistration at SIGTERM.

#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::thread;
use std::time::Duration;

use happ_sip::digest::Algorithm;
use happ_testkit::dns::{Answer, DnsServer};
use happ_testkit::kamailio::{Kamailio, KamailioConfig, WrongPassword};
use happ_testkit::ports::free_port;
use happ_testkit::sipp::Sipp;
use support::{Gateway, Phone, Setup, eventually};

const USERS: [(&str, &str); 3] = [("1001", "pw-1001"), ("1002", "pw-1002"), ("1003", "pw-1003")];

fn kamailio(config: KamailioConfig) -> Kamailio {
    Kamailio::start(config).unwrap_or_else(|e| panic!("{e}"))
}

/// Phone `i` of [`USERS`] registering at `url`.
fn phone(i: usize, url: &str) -> Phone {
    Phone::registered(&format!("+49300{}", USERS[i].0), USERS[i].0, USERS[i].1, url)
}

fn state(gw: &Gateway, number: &str) -> String {
    gw.phone(number)["state"].as_str().unwrap_or_default().to_owned()
}

fn all_registered(gw: &Gateway) {
    eventually("every phone registered", Duration::from_secs(15), || gw.phones().iter().all(|p| p["state"] == "registered").then_some(()));
}

#[test]
fn phones_register_refresh_and_recover_after_a_registrar_restart() {
    let mut k = kamailio(KamailioConfig { min_expires: 2, ..KamailioConfig::with_users(&USERS) });
    let udp = k.addr().to_string();
    let tcp = format!("{};transport=tcp", k.addr());
    let setup = Setup { registration_expires: 4, ..Setup::with_phones(vec![phone(0, &udp), phone(1, &udp), phone(2, &tcp)]) };
    let gw = Gateway::start(&setup);
    all_registered(&gw);
    let port = gw.sip.port();
    assert_eq!(k.registered("1001").expect("ul.lookup"), [format!("sip:1001@127.0.0.1:{port}")]);
    assert_eq!(k.registered("1002").expect("ul.lookup"), [format!("sip:1002@127.0.0.1:{port}")]);
    assert_eq!(k.registered("1003").expect("ul.lookup"), [format!("sip:1003@127.0.0.1:{port};transport=tcp")]);
    let p = gw.phone("+493001001");
    assert_eq!(p["expires"], 4, "{p}");
    assert_eq!(p["contact"], format!("sip:1001@127.0.0.1:{port}"), "{p}");
    assert_eq!(gw.metric(r#"happ_gateway_phones{state="registered"}"#), 3.0);

    // Refreshed every 2 s (half of the 4 s granted): three rounds for three phones.
    eventually("two refreshes of every phone", Duration::from_secs(15), || (gw.metric("happ_gateway_sip_registrations_total") >= 9.0).then_some(()));

    // The registrar forgets everything in a restart; the next refresh registers again.
    k.restart().unwrap_or_else(|e| panic!("{e}"));
    assert!(k.registered("1001").expect("ul.lookup").is_empty());
    eventually("every phone registered again at the restarted registrar", Duration::from_secs(30), || {
        USERS.iter().all(|(u, _)| k.registered(u).is_ok_and(|c| c.len() == 1)).then_some(())
    });
    all_registered(&gw);
}

#[test]
fn a_wrong_password_is_reported_for_its_phone_alone_and_not_retried_at_once() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..2]));
    let url = k.addr().to_string();
    let wrong = Phone { password: "not-the-password".into(), ..phone(1, &url) };
    let gw = Gateway::start(&Setup::with_phones(vec![phone(0, &url), wrong]));
    let failed = eventually("phone 1002 failed", Duration::from_secs(10), || Some(gw.phone("+493001002")).filter(|p| p["state"] == "failed"));
    assert_eq!(failed["lastStatus"], 401, "{failed}");
    let error = failed["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("rejected the credentials") && error.contains("1002"), "{failed}");
    assert!(!error.contains("not-the-password"), "the password is never shown");
    assert!(failed["retryIn"].as_u64().is_some_and(|s| s >= 300), "a rejected password waits long before the next try: {failed}");
    eventually("phone 1001 registered", Duration::from_secs(10), || (state(&gw, "+493001001") == "registered").then_some(()));
    assert_eq!(gw.metric(r#"happ_gateway_phones{state="failed"}"#), 1.0);

    // Two REGISTERs reached the registrar for 1002 (the challenged one and the one it
    // refused), and no more: no loop against the provider's fraud protection.
    thread::sleep(Duration::from_secs(2));
    let attempts = k.log().matches("REGISTER from 1002: authentication result").count();
    assert!(attempts <= 2, "{attempts} attempts:\n{}", k.log());
    assert!(!gw.log().contains("not-the-password"), "the password never reaches the log");
}

#[test]
fn a_forbidden_registration_backs_off() {
    let k = kamailio(KamailioConfig { wrong_password: WrongPassword::Forbidden, ..KamailioConfig::with_users(&USERS[..1]) });
    let wrong = Phone { password: "nope".into(), ..phone(0, &k.addr().to_string()) };
    let gw = Gateway::start(&Setup::with_phones(vec![wrong]));
    let failed = eventually("phone failed", Duration::from_secs(10), || Some(gw.phone("+493001001")).filter(|p| p["state"] == "failed"));
    assert_eq!(failed["lastStatus"], 403, "{failed}");
    assert!(failed["retryIn"].as_u64().is_some_and(|s| s >= 3), "backoff: {failed}");
}

#[test]
fn sha256_challenges_are_answered() {
    let k = kamailio(KamailioConfig { algorithm: Algorithm::Sha256, ..KamailioConfig::with_users(&USERS[..1]) });
    let gw = Gateway::start(&Setup::with_phones(vec![phone(0, &k.addr().to_string())]));
    all_registered(&gw);
    assert_eq!(k.registered("1001").expect("ul.lookup").len(), 1);
}

#[test]
fn calls_routed_by_the_registrar_reach_the_gateway() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..1]));
    let gw = Gateway::start(&Setup::with_phones(vec![phone(0, &k.addr().to_string())]));
    all_registered(&gw);
    // A caller Kamailio does not know calls 1001: Kamailio looks up its contact, the gateway.
    let uac = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 1000).remote(k.addr()).service("1001");
    let out = uac.run().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
    let call = gw.calls().into_iter().next().expect("the call is listed");
    assert_eq!((call["direction"].as_str(), call["phone"].as_str(), call["state"].as_str()), (Some("inbound"), Some("+493001001"), Some("ended")), "{call}");
    // The BYE came back through the registrar's Record-Route.
    let ok = out.received_response(200).expect("200");
    assert!(ok.header("Record-Route").is_some(), "{}", out.report());
}

#[test]
fn sighup_adds_removes_and_changes_phones_without_disturbing_calls() {
    let k = kamailio(KamailioConfig::with_users(&USERS));
    let url = k.addr().to_string();
    let gw = Gateway::start(&Setup::with_phones(vec![phone(0, &url), phone(1, &url)]));
    all_registered(&gw);
    // A call to phone 0 through the registrar, in progress across the reload that removes it.
    let uac = Sipp::scenario("uac_talk.xml").placeholder("SDP_PORT", 9).placeholder("TALK_MS", 4000).remote(k.addr()).service("1001");
    let call = uac.spawn().unwrap_or_else(|e| panic!("{e}"));
    eventually("the call answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"));

    // Phone 0 removed, phone 1 answers with silence from now on, phone 2 added.
    let dir = tempfile::tempdir().expect("tempdir");
    let prompt = support::wav(dir.path(), "prompt.wav", &support::speech(500));
    let changed = Phone { handler: format!("play:{}", prompt.display()), ..phone(1, &url) };
    gw.reconfigure(&Setup::with_phones(vec![changed.clone(), phone(2, &url)]));
    eventually("phone 2 registered, phone 0 gone", Duration::from_secs(15), || {
        let phones = gw.phones();
        let numbers: Vec<&str> = phones.iter().filter_map(|p| p["phoneNumber"].as_str()).collect();
        (numbers == ["+493001002", "+493001003"] && phones.iter().all(|p| p["state"] == "registered")).then_some(())
    });
    assert_eq!(gw.phone("+493001002")["handler"].as_str(), Some(changed.handler.as_str()));
    eventually("phone 0 unregistered at the registrar", Duration::from_secs(10), || k.registered("1001").ok().filter(Vec::is_empty));
    assert_eq!(k.registered("1003").expect("ul.lookup").len(), 1);
    let log = gw.log();
    assert!(log.contains("configuration reloaded") && log.contains("added=1 changed=1 removed=1"), "{log}");

    // The call on the removed phone went on to its end.
    let out = call.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
    assert_eq!(gw.metric(r#"happ_gateway_phones{state="registered"}"#), 2.0);
    assert_eq!(gw.metric(r#"happ_gateway_phones{state="retired"}"#), 0.0, "the removed phone's slot is freed after its call");

    // A file that does not load changes nothing.
    let broken = Phone { handler: "play:/nonexistent.wav".into(), ..phone(0, &url) };
    gw.reconfigure(&Setup::with_phones(vec![changed, phone(2, &url), broken]));
    eventually("the reload refused", Duration::from_secs(10), || gw.log().contains("configuration not reloaded").then_some(()));
    assert_eq!(gw.phones().len(), 2);
}

#[test]
fn sigterm_unregisters_every_phone_and_exits() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..2]));
    let url = k.addr().to_string();
    let mut gw = Gateway::start(&Setup::with_phones(vec![phone(0, &url), phone(1, &url)]));
    all_registered(&gw);
    gw.terminate();
    let status = gw.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", gw.log());
    assert!(k.registered("1001").expect("ul.lookup").is_empty(), "Expires: 0 sent for 1001");
    assert!(k.registered("1002").expect("ul.lookup").is_empty(), "Expires: 0 sent for 1002");
    assert!(gw.log().contains("stopped"), "{}", gw.log());
}

#[test]
fn check_shows_what_would_register() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..1]));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[phones]]\nphoneNumber = \"+493001001\"\nsipLogin = \"1001\"\npassword = \"${{PW}}\"\ntelephonyUrl = \"{};transport=tcp\"\nhandler = \"echo\"\n",
            k.addr()
        ),
    )
    .expect("write");
    let out = Command::new(support::binary()).args(["check", "--config"]).arg(&config).env("PW", "secret-pw").output().expect("check runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("registers as 1001@{}", k.addr())), "{text}");
    assert!(text.contains(&format!("resolves to {} (TCP)", k.addr())), "{text}");
    assert!(!text.contains("secret-pw"), "{text}");
    // Without the variable, the check fails and names it.
    let out = Command::new(support::binary()).args(["check", "--config"]).arg(&config).env_remove("PW").output().expect("check runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PW"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_telephony_url_without_a_port_is_found_by_dns_srv() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..2]));
    let port = k.addr().port();
    let srv = || Answer::Srv { priority: 10, weight: 5, port, target: "registrar.voip.test.".into() };
    let dns = DnsServer::start(vec![
        ("_sip._udp.voip.test.", srv()),
        ("_sip._tcp.voip.test.", srv()),
        ("registrar.voip.test.", Answer::A(std::net::Ipv4Addr::LOCALHOST)),
    ])
    .expect("DNS server");
    let setup = Setup { dns_servers: vec![dns.addr()], ..Setup::with_phones(vec![phone(0, "voip.test"), phone(1, "voip.test;transport=tcp")]) };
    let gw = Gateway::start(&setup);
    all_registered(&gw);
    assert_eq!(gw.phone("+493001001")["targets"], serde_json::json!([format!("127.0.0.1:{port} (UDP)")]));
    assert_eq!(gw.phone("+493001002")["targets"], serde_json::json!([format!("127.0.0.1:{port} (TCP)")]));
    assert!(k.registered("1002").expect("ul.lookup")[0].ends_with(";transport=tcp"));
    let asked = dns.asked();
    assert!(asked.contains(&"SRV _sip._udp.voip.test.".to_owned()) && asked.contains(&"SRV _sip._tcp.voip.test.".to_owned()), "{asked:?}");
    // The From and To of the REGISTER keep the domain, not the address it resolved to.
    assert_eq!(gw.phone("+493001001")["telephonyUrl"], "voip.test");
}

#[test]
fn a_phone_whose_registrar_does_not_resolve_yet_starts_when_dns_answers() {
    let k = kamailio(KamailioConfig::with_users(&USERS[..1]));
    let dns_port = free_port(1);
    let url = format!("registrar.voip.test:{}", k.addr().port());
    let setup = Setup { dns_servers: vec![([127, 0, 0, 1], dns_port).into()], ..Setup::with_phones(vec![phone(0, &url)]) };
    let gw = Gateway::start(&setup);
    let p = gw.phone("+493001001");
    assert_eq!(p["state"], "unresolved", "{p}");
    assert!(p["lastError"].as_str().is_some_and(|e| e.contains("registrar.voip.test")), "{p}");
    // The DNS server comes up; the next lookup finds the registrar.
    let _dns = DnsServer::start_on(dns_port, vec![("registrar.voip.test.", Answer::A(std::net::Ipv4Addr::LOCALHOST))]).expect("DNS server");
    eventually("registered once DNS answers", Duration::from_secs(40), || (state(&gw, "+493001001") == "registered").then_some(()));
    assert_eq!(k.registered("1001").expect("ul.lookup").len(), 1);
}
