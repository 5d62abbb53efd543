//! Registration against a scripted registrar that really checks digest credentials.

use super::*;
use crate::digest::{Credentials, Login, verify};
use crate::message::{HeaderName, Uri};

const REGISTRAR: &str = "127.0.0.1:5080";
const PASSWORD: &str = "s3cret";

fn account_config(expires: u32) -> AccountConfig {
    AccountConfig {
        aor: Uri::parse("sip:1001@gw.test").expect("uri"),
        display_name: None,
        proxy: REGISTRAR.parse().expect("addr"),
        transport: Transport::Udp,
        username: "1001".into(),
        password: PASSWORD.into(),
        register: true,
        expires,
        keepalive: None,
        contact_user: "1001".into(),
    }
}

/// The REGISTERs sent since the last call.
fn registers(h: &mut Harness) -> Vec<Request> {
    h.take_sent()
        .into_iter()
        .map(|(_, dest, m)| {
            assert_eq!(dest, REGISTRAR.parse().expect("addr"));
            let r = request(&m).clone();
            assert_eq!(r.method, Method::Register);
            r
        })
        .collect()
}

fn one_register(h: &mut Harness) -> Request {
    let mut all = registers(h);
    assert_eq!(all.len(), 1, "one REGISTER");
    all.remove(0)
}

fn respond(h: &mut Harness, req: &Request, status: u16, extra: &[(HeaderName, &str)]) {
    let mut r = Response::for_request(req, status, crate::message::reason_phrase(status), Some("reg"));
    for (n, v) in extra {
        r.headers.push(n.clone(), *v);
    }
    h.recv_from(Transport::Udp, REGISTRAR.parse().expect("addr"), &String::from_utf8(r.encode()).expect("utf-8"));
}

fn challenge(h: &mut Harness, req: &Request, nonce: &str, stale: bool) {
    let value = format!("Digest realm=\"gw.test\", nonce=\"{nonce}\", qop=\"auth,auth-int\", algorithm=SHA-256{}", if stale { ", stale=true" } else { "" });
    respond(h, req, 401, &[(HeaderName::WwwAuthenticate, &value)]);
}

fn credentials(req: &Request) -> Credentials {
    Credentials::parse(req.headers.get(&HeaderName::Authorization).expect("Authorization")).expect("valid credentials")
}

fn ok(h: &mut Harness, req: &Request, expires: u32) {
    let contact = format!("{};expires={expires}", req.headers.get(&HeaderName::Contact).expect("contact"));
    respond(h, req, 200, &[(HeaderName::Contact, &contact)]);
}

fn registered(h: &mut Harness) -> (AccountId, Request) {
    let id = h.ep.add_account(h.now, account_config(120));
    h.drain();
    let first = one_register(h);
    challenge(h, &first, "n1", false);
    let second = one_register(h);
    ok(h, &second, 120);
    (id, second)
}

#[test]
fn registers_with_digest_then_refreshes_before_expiry() {
    let mut h = Harness::new();
    let id = h.ep.add_account(h.now, account_config(120));
    h.drain();
    let first = one_register(&mut h);
    assert!(first.validate().is_ok());
    assert_eq!(first.uri.to_string(), "sip:gw.test", "the registrar's domain, no user");
    assert_eq!(first.headers.get(&HeaderName::Expires), Some("120"));
    assert!(first.headers.get(&HeaderName::Authorization).is_none());
    assert!(matches!(&h.take_events()[..], [Event::Registration { state: RegistrationState::Registering, .. }]));

    challenge(&mut h, &first, "n1", false);
    let second = one_register(&mut h);
    let c = credentials(&second);
    assert_eq!((c.nonce.as_str(), c.uri.as_str()), ("n1", "sip:gw.test"));
    assert!(verify(&c, "REGISTER", &Login { username: "1001", password: PASSWORD }, &second.body), "right digest");
    assert_eq!(second.headers.cseq().expect("cseq").seq, first.headers.cseq().expect("cseq").seq + 1);
    assert_eq!(second.headers.call_id().ok(), first.headers.call_id().ok(), "one Call-ID per account");
    assert_eq!(second.headers.from().expect("from").tag(), first.headers.from().expect("from").tag());

    ok(&mut h, &second, 120);
    let mut events = h.take_events();
    assert!(matches!(events.remove(0), Event::Challenged { status: 401, algorithm, .. } if algorithm == "SHA-256"));
    assert!(
        matches!(&events[..], [Event::Registration { account, state: RegistrationState::Registered { expires, contact } }]
        if *account == id && *expires == Duration::from_secs(120) && contact.contains("1001@127.0.0.1:5060")),
        "{events:?}"
    );
    assert!(matches!(h.ep.registration(id), Some(RegistrationState::Registered { .. })));

    // Refresh halfway through the 120 s (60 s), reusing the challenge with the next nonce count.
    h.advance_to(Duration::from_secs(59));
    assert!(h.take_sent().is_empty());
    h.advance_to(Duration::from_secs(60));
    let refresh = one_register(&mut h);
    let c = credentials(&refresh);
    assert_eq!(c.nc.map(|n| n.to_string()).as_deref(), Some("00000002"));
    assert!(verify(&c, "REGISTER", &Login { username: "1001", password: PASSWORD }, &[]));
    ok(&mut h, &refresh, 120);
    assert!(h.take_events().is_empty(), "a refresh changes nothing visible");
}

#[test]
fn wrong_password_is_reported_and_not_retried_in_a_loop() {
    let mut h = Harness::new();
    let id = h.ep.add_account(h.now, account_config(120));
    h.drain();
    let first = one_register(&mut h);
    challenge(&mut h, &first, "n1", false);
    let second = one_register(&mut h);
    // The registrar refuses the credentials with a new challenge (not stale).
    challenge(&mut h, &second, "n2", false);
    assert!(registers(&mut h).is_empty(), "no immediate retry");
    let events = h.take_events();
    let Some(Event::Registration { state: RegistrationState::Failed { status, reason, retry_in }, .. }) = events.last() else { panic!("{events:?}") };
    assert_eq!(*status, Some(401));
    assert!(reason.contains("wrong username or password") && reason.contains("1001") && !reason.contains(PASSWORD), "{reason}");
    assert_eq!(*retry_in, Duration::from_secs(600));
    h.advance_to(Duration::from_secs(599));
    assert!(registers(&mut h).is_empty());
    h.advance_to(Duration::from_secs(600));
    assert_eq!(registers(&mut h).len(), 1, "one try after the long pause");
    assert!(matches!(h.ep.registration(id), Some(RegistrationState::Failed { .. })));
}

#[test]
fn stale_nonce_is_answered_without_a_failure() {
    let mut h = Harness::new();
    let (_, _) = registered(&mut h);
    h.take_events();
    h.advance_to(Duration::from_secs(60));
    let refresh = one_register(&mut h);
    challenge(&mut h, &refresh, "n9", true);
    let again = one_register(&mut h);
    let c = credentials(&again);
    assert_eq!((c.nonce.as_str(), c.nc.map(|n| n.to_string())), ("n9", Some("00000001".into())));
    ok(&mut h, &again, 120);
    let events = h.take_events();
    assert!(matches!(&events[..], [Event::Challenged { stale: true, .. }]), "no failure reported for a stale nonce: {events:?}");
}

#[test]
fn preemptive_credentials_refused_are_not_a_wrong_password() {
    let mut h = Harness::new();
    registered(&mut h);
    h.take_events();
    h.advance_to(Duration::from_secs(60));
    let refresh = one_register(&mut h);
    // Some registrars answer an aged nonce with a plain new challenge, without stale=true.
    challenge(&mut h, &refresh, "n10", false);
    let again = one_register(&mut h);
    assert_eq!(credentials(&again).nonce, "n10");
    ok(&mut h, &again, 120);
    assert!(matches!(&h.take_events()[..], [Event::Challenged { status: 401, stale: false, .. }]), "only the challenge is reported");
}

#[test]
fn interval_too_brief_raises_the_expiry() {
    let mut h = Harness::new();
    h.ep.add_account(h.now, account_config(30));
    h.drain();
    let first = one_register(&mut h);
    respond(&mut h, &first, 423, &[(HeaderName::MinExpires, "90")]);
    let second = one_register(&mut h);
    assert_eq!(second.headers.get(&HeaderName::Expires), Some("90"));
    // A 423 without a larger Min-Expires is a failure, not a loop.
    respond(&mut h, &second, 423, &[(HeaderName::MinExpires, "60")]);
    assert!(registers(&mut h).is_empty());
    assert!(matches!(h.take_events().last(), Some(Event::Registration { state: RegistrationState::Failed { status: Some(423), .. }, .. })));
}

#[test]
fn failures_back_off_exponentially_with_jitter() {
    let mut h = Harness::new();
    h.ep.add_account(h.now, account_config(120));
    h.drain();
    let mut delays = Vec::new();
    let mut last = h.now;
    let mut req = one_register(&mut h);
    for _ in 0..7 {
        respond(&mut h, &req, 500, &[]);
        let Some(Event::Registration { state: RegistrationState::Failed { retry_in, .. }, .. }) = h.take_events().pop() else { panic!("failed") };
        h.advance(retry_in);
        req = one_register(&mut h);
        delays.push((h.now - last).as_secs_f64());
        last = h.now;
    }
    for (i, d) in delays.iter().enumerate() {
        let base = (5.0 * 2f64.powi(i as i32)).min(300.0);
        assert!(*d >= base * 0.75 - 0.01 && *d <= base * 1.25 + 0.01, "retry {i}: {d:.1} s, base {base}");
    }
}

#[test]
fn retry_after_is_honoured_and_timeouts_are_failures() {
    let mut h = Harness::new();
    h.ep.add_account(h.now, account_config(120));
    h.drain();
    let first = one_register(&mut h);
    respond(&mut h, &first, 503, &[(HeaderName::RetryAfter, "17")]);
    assert!(
        matches!(h.take_events().last(), Some(Event::Registration { state: RegistrationState::Failed { retry_in, .. }, .. }) if *retry_in == Duration::from_secs(17))
    );
    h.advance(Duration::from_secs(17));
    let _ = one_register(&mut h);
    // No answer at all: Timer F.
    h.advance(Duration::from_secs(32));
    let events = h.take_events();
    assert!(
        matches!(events.last(), Some(Event::Registration { state: RegistrationState::Failed { status: None, reason, .. }, .. }) if reason.contains("no response")),
        "{events:?}"
    );
}

#[test]
fn nat_address_seen_by_the_registrar_is_registered_and_the_old_binding_removed() {
    let mut h = Harness::new();
    h.ep.add_account(h.now, account_config(120));
    h.drain();
    let first = one_register(&mut h);
    // The registrar saw us at 203.0.113.5:40000.
    let mut r = Response::for_request(&first, 200, "OK", Some("reg"));
    let mut via = r.headers.top_via().expect("via");
    via.params.set("received", Some("203.0.113.5"));
    via.params.set("rport", Some("40000"));
    r.headers.set_top_via(&via);
    let contact = format!("{};expires=120", first.headers.get(&HeaderName::Contact).expect("contact"));
    r.headers.push(HeaderName::Contact, contact);
    h.recv_from(Transport::Udp, REGISTRAR.parse().expect("addr"), &String::from_utf8(r.encode()).expect("utf-8"));
    let again = one_register(&mut h);
    let contacts = again.headers.name_addrs(&HeaderName::Contact).expect("contacts");
    assert_eq!(contacts[0].uri.to_string(), "sip:1001@203.0.113.5:40000");
    assert_eq!(contacts[1].uri.to_string(), "sip:1001@127.0.0.1:5060");
    assert_eq!(contacts[1].params.value("expires"), Some("0"));
}

#[test]
fn over_tcp_only_another_address_means_nat() {
    let mut h = Harness::new();
    let reply = |h: &mut Harness, request: &Request, received: &str| {
        let mut r = Response::for_request(request, 200, "OK", Some("reg"));
        let mut via = r.headers.top_via().expect("via");
        via.params.set("received", Some(received));
        // The connection's ephemeral port, not our listening one.
        via.params.set("rport", Some("41234"));
        r.headers.set_top_via(&via);
        r.headers.push(HeaderName::Contact, format!("{};expires=120", request.headers.get(&HeaderName::Contact).expect("contact")));
        h.recv_from(Transport::Tcp, REGISTRAR.parse().expect("addr"), &String::from_utf8(r.encode()).expect("utf-8"));
    };
    let id = h.ep.add_account(h.now, AccountConfig { transport: Transport::Tcp, ..account_config(120) });
    h.drain();
    let first = one_register(&mut h);
    reply(&mut h, &first, "127.0.0.1");
    assert!(registers(&mut h).is_empty(), "same address, another port: registered as it is");
    let state = h.ep.registration(id);
    assert!(matches!(state, Some(RegistrationState::Registered { contact, .. }) if contact == "sip:1001@127.0.0.1:5060;transport=tcp"), "{state:?}");
    // Let the refresh go, answered from behind a NAT: the connection's mapping is registered.
    h.advance(Duration::from_secs(60));
    let refresh = one_register(&mut h);
    reply(&mut h, &refresh, "203.0.113.5");
    let again = one_register(&mut h);
    let contacts = again.headers.name_addrs(&HeaderName::Contact).expect("contacts");
    assert_eq!(contacts[0].uri.to_string(), "sip:1001@203.0.113.5:41234;transport=tcp");
}

#[test]
fn a_delayed_account_registers_after_its_delay() {
    let mut h = Harness::new();
    let id = h.ep.add_account_after(h.now, account_config(120), Duration::from_millis(700));
    h.drain();
    assert!(registers(&mut h).is_empty(), "nothing before the delay");
    assert_eq!(h.ep.registration(id), Some(&RegistrationState::Idle));
    assert_eq!(h.ep.poll_timeout(), Some(h.now + Duration::from_millis(700)));
    h.advance(Duration::from_millis(700));
    let first = one_register(&mut h);
    assert_eq!(first.method, Method::Register);
    assert_eq!(h.ep.registration(id), Some(&RegistrationState::Registering));
}

#[test]
fn unregister_and_remove() {
    let mut h = Harness::new();
    let (id, _) = registered(&mut h);
    h.take_events();
    h.ep.unregister_all(h.now);
    h.drain();
    let bye = one_register(&mut h);
    assert_eq!(bye.headers.get(&HeaderName::Expires), Some("0"));
    assert!(bye.headers.get(&HeaderName::Authorization).is_some(), "credentials reused, no extra round trip");
    assert!(h.ep.registrations_pending());
    respond(&mut h, &bye, 200, &[]);
    assert!(matches!(&h.take_events()[..], [Event::Registration { state: RegistrationState::Unregistered, .. }]));
    assert!(!h.ep.registrations_pending());
    // Removing a registered account unregisters it, then forgets it.
    let mut h = Harness::new();
    let (id2, _) = registered(&mut h);
    h.ep.remove_account(h.now, id2).expect("known");
    h.drain();
    let bye = one_register(&mut h);
    respond(&mut h, &bye, 200, &[]);
    assert!(h.ep.registration(id2).is_none());
    let _ = id;
}

#[test]
fn keepalives_are_sent_to_the_proxy() {
    let mut h = Harness::new();
    let mut config = account_config(120);
    config.register = false;
    config.keepalive = Some(Duration::from_secs(15));
    h.ep.add_account(h.now, config);
    h.advance_to(Duration::from_secs(46));
    let pings: Vec<Duration> = h.sent.iter().filter(|(_, t)| t.bytes == b"\r\n\r\n").map(|(at, _)| *at - h.t0).collect();
    assert_eq!(pings, vec![Duration::from_secs(15), Duration::from_secs(30), Duration::from_secs(45)]);
}

#[test]
fn outbound_call_answers_a_proxy_challenge_and_reports_a_wrong_password() {
    let mut h = Harness::new();
    let mut config = account_config(120);
    config.register = false;
    let id = h.ep.add_account(h.now, config);
    let call = |h: &mut Harness| {
        h.ep.invite(
            h.now,
            OutboundCall { account: id, target: Uri::parse("sip:+15551234@gw.test").expect("uri"), sdp: SDP.as_bytes().to_vec(), headers: vec![] },
        )
        .expect("invite");
        h.drain();
        request(&h.take_sent()[0].2).clone()
    };
    let inv = call(&mut h);
    let value = "Digest realm=\"gw.test\", nonce=\"p1\", qop=\"auth\", algorithm=MD5";
    respond(&mut h, &inv, 407, &[(HeaderName::ProxyAuthenticate, value)]);
    let sent = h.take_sent();
    assert_eq!(request(&sent[0].2).method, Method::Ack);
    let again = request(&sent[1].2);
    assert_eq!((again.method.clone(), again.headers.cseq().expect("cseq").seq), (Method::Invite, 2));
    assert_eq!(again.body, inv.body, "the same offer");
    let c = Credentials::parse(again.headers.get(&HeaderName::ProxyAuthorization).expect("Proxy-Authorization")).expect("valid");
    assert!(verify(&c, "INVITE", &Login { username: "1001", password: PASSWORD }, &[]));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Challenged { method, status: 407, realm, algorithm, .. }] if method == "INVITE" && realm == "gw.test" && algorithm == "MD5"),
        "a challenge is reported for the log, and is not a failure: {events:?}"
    );
    // Challenged again although we answered: the password is wrong.
    respond(&mut h, again, 407, &[(HeaderName::ProxyAuthenticate, "Digest realm=\"gw.test\", nonce=\"p2\", qop=\"auth\"")]);
    assert!(matches!(h.take_events().last(), Some(Event::CallFailed { status: 407, reason, .. }) if reason.contains("wrong username or password")));
}
