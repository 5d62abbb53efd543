//! The real-peer harness against the real programs: SIPp against Kamailio and SIPp against
//! SIPp, so that the scenarios of `tests/sipp/` and the registrar of `tests/kamailio/` are
//! known good before the gateway uses them. Needs the Debian packages sip-tester and kamailio
//! (installed by `.ci/run`); every test has its own ports, directories and processes.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use happ_media::Law;
use happ_media::rtp::RtpPacket;
use happ_sip::digest::{Algorithm, Challenge, DigestClient, Login, Qop, RequestParts};
use happ_testkit::captures::rtp_capture;
use happ_testkit::kamailio::{self, Kamailio, KamailioConfig, WrongPassword};
use happ_testkit::ports::free_port;
use happ_testkit::sipp::{SIPP_PCAP_DIR, Sipp, SippHandle, SippOutcome, Transport};

const ALICE: (&str, &str) = ("alice", "alice-secret");
const GW: (&str, &str) = ("gw", "gw-secret");

fn kamailio(config: KamailioConfig) -> Kamailio {
    Kamailio::start(config).unwrap_or_else(|e| panic!("{e}"))
}

fn spawn(sipp: Sipp) -> SippHandle {
    sipp.spawn().unwrap_or_else(|e| panic!("{e}"))
}

fn wait(handle: SippHandle) -> SippOutcome {
    handle.wait().unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn assert_succeeded(outcomes: &[&SippOutcome]) {
    for o in outcomes {
        assert!(o.succeeded() && o.successful == 1, "{}", outcomes.iter().map(|o| o.report()).collect::<Vec<_>>().join("\n"));
    }
}

/// Registers `user` at `k` over `transport` with the contact port `port`, expecting
/// `final_code` after the challenge.
fn register(k: &Kamailio, (user, password): (&str, &str), port: u16, transport: Transport, expires: u32, final_code: u16) -> SippOutcome {
    let out = Sipp::scenario("uac_register.xml")
        .placeholder("USER", user)
        .placeholder("EXPIRES", expires)
        .placeholder("FINAL", final_code)
        .placeholder("CONTACT_PORT", port)
        .credentials(user, password)
        .remote(k.addr())
        .transport(transport)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_succeeded(&[&out]);
    assert_eq!(out.received_statuses(), [401, final_code], "{}", out.report());
    out
}

/// A pcap of `ms` milliseconds of a 440 Hz PCMA tone in 20 ms packets, in `dir`.
fn tone_pcap(dir: &Path, ms: usize) -> PathBuf {
    let pcm: Vec<i16> = (0..ms * 8).map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin()) as i16).collect();
    let path = dir.join("tone_pcma.pcap");
    std::fs::write(&path, rtp_capture(Law::Alaw, &pcm)).expect("write pcap");
    path
}

fn contact(user: &str, port: u16, transport: Transport) -> String {
    let t = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    format!("sip:{user}@127.0.0.1:{port};transport={t}")
}

// --- Registration ---

#[test]
fn register_with_the_right_password() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let port = free_port(1);
    let out = register(&k, ALICE, port, Transport::Udp, 3600, 200);
    let challenge = out.received_response(401).expect("401");
    let www = challenge.header("WWW-Authenticate").expect("challenge");
    let c = Challenge::parse(www).expect("Digest");
    assert_eq!((c.realm.as_str(), c.qop.as_slice(), c.algorithm), ("happ.test", &[Qop::Auth][..], Algorithm::Md5), "{www}");
    assert!(www.contains("algorithm=MD5"), "{www}");
    assert_eq!(k.registered("alice").expect("ul.lookup"), [contact("alice", port, Transport::Udp)]);
    assert!(k.registered("bob").expect("ul.lookup").is_empty());
}

#[test]
fn wrong_password_gets_a_new_challenge() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    register(&k, ("alice", "wrong"), free_port(1), Transport::Udp, 3600, 401);
    assert!(k.registered("alice").expect("ul.lookup").is_empty());
    assert!(k.log().contains("REGISTER from alice: authentication result -2"), "{}", k.log());
}

#[test]
fn users_not_listed_authenticate_with_the_password_prefix() {
    let k = kamailio(KamailioConfig { password_prefix: Some("pw-".into()), ..KamailioConfig::with_users(&[ALICE]) });
    let port = free_port(1);
    register(&k, ("u7", "pw-u7"), port, Transport::Udp, 3600, 200);
    assert_eq!(k.registered("u7").expect("ul.lookup"), [contact("u7", port, Transport::Udp)]);
    register(&k, ("u8", "pw-u7"), free_port(1), Transport::Udp, 3600, 401);
    // Listed users keep their own password.
    register(&k, ALICE, free_port(1), Transport::Udp, 3600, 200);
}

#[test]
fn wrong_password_gets_403_when_configured() {
    let k = kamailio(KamailioConfig { wrong_password: WrongPassword::Forbidden, ..KamailioConfig::with_users(&[ALICE]) });
    register(&k, ("alice", "wrong"), free_port(1), Transport::Udp, 3600, 403);
    assert!(k.registered("alice").expect("ul.lookup").is_empty());
}

#[test]
fn expires_below_the_minimum_gets_423_and_above_the_maximum_is_lowered() {
    let k = kamailio(KamailioConfig { min_expires: 120, max_expires: 1800, ..KamailioConfig::with_users(&[ALICE]) });
    let out = register(&k, ALICE, free_port(1), Transport::Udp, 30, 423);
    let brief = out.received_response(423).expect("423");
    assert_eq!(brief.header("Min-Expires"), Some("120"), "{}", out.report());
    assert!(k.registered("alice").expect("ul.lookup").is_empty());

    let port = free_port(1);
    let out = register(&k, ALICE, port, Transport::Udp, 99_999, 200);
    let ok = out.received_response(200).expect("200");
    assert_eq!(ok.header("Contact"), Some(format!("<{}>;expires=1800", contact("alice", port, Transport::Udp)).as_str()));

    // Expires: 0 unregisters, whatever the minimum.
    register(&k, ALICE, port, Transport::Udp, 0, 200);
    assert!(k.registered("alice").expect("ul.lookup").is_empty());
}

#[test]
fn registration_is_lost_on_restart() {
    let mut k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let addr = k.addr();
    let port = free_port(1);
    register(&k, ALICE, port, Transport::Udp, 3600, 200);
    assert_eq!(k.registered("alice").expect("ul.lookup").len(), 1);
    k.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.addr(), addr);
    assert!(k.registered("alice").expect("ul.lookup").is_empty());
    register(&k, ALICE, port, Transport::Tcp, 3600, 200);
    assert_eq!(k.registered("alice").expect("ul.lookup"), [contact("alice", port, Transport::Tcp)]);
}

/// SIPp 3.6 answers MD5 only, so SHA-256 is checked with a client written here.
#[test]
fn sha256_challenge_is_answered_with_sha256() {
    let k = kamailio(KamailioConfig { algorithm: Algorithm::Sha256, ..KamailioConfig::with_users(&[ALICE]) });
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let local = sock.local_addr().expect("addr");
    let uri = format!("sip:{}", k.addr());
    let register = |cseq: u32, auth: &str| {
        let msg = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-sha-{cseq};rport\r\n\
             From: <sip:alice@{addr}>;tag=sha\r\nTo: <sip:alice@{addr}>\r\nCall-ID: sha256@{local}\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:alice@{local}>\r\nExpires: 600\r\nMax-Forwards: 70\r\n{auth}\
             Content-Length: 0\r\n\r\n",
            addr = k.addr()
        );
        sock.send_to(msg.as_bytes(), k.addr()).expect("send");
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("a response");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let challenge = register(1, "");
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    let www = challenge.lines().find_map(|l| l.strip_prefix("WWW-Authenticate: ")).expect("challenge");
    let c = Challenge::parse(www).expect("Digest");
    assert_eq!((c.algorithm, c.qop.as_slice()), (Algorithm::Sha256, &[Qop::Auth][..]), "{www}");
    let answer = |password: &str, cnonce: &str| {
        let request = RequestParts { method: "REGISTER", uri: &uri, body: &[] };
        let credentials = DigestClient::new().respond(&c, &request, &Login { username: "alice", password }, cnonce).expect("answerable");
        format!("Authorization: {credentials}\r\n")
    };
    let wrong = register(2, &answer("wrong", "c1"));
    assert!(wrong.starts_with("SIP/2.0 401 "), "{wrong}");
    let ok = register(3, &answer(ALICE.1, "c2"));
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    assert_eq!(k.registered("alice").expect("ul.lookup"), [format!("sip:alice@{local}")]);

    // An MD5-only client (SIPp 3.6) cannot register there.
    let out =
        Sipp::scenario("uac_register.xml").placeholder("USER", "alice").credentials(ALICE.0, ALICE.1).remote(k.addr()).run().unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.succeeded() && out.received_statuses() == [401], "{}", out.report());
    assert!(out.errors.contains("authentication must use MD5"), "{}", out.report());
}

// --- Calls through the registrar ---

/// Starts `uas`, then registers `user` with it as the contact.
fn registered_uas(k: &Kamailio, user: (&str, &str), transport: Transport, uas: Sipp) -> SippHandle {
    let uas = spawn(uas.transport(transport));
    register(k, user, uas.local_addr().port(), transport, 3600, 200);
    uas
}

fn call_through_registrar(transport: Transport) {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let dir = tempfile::tempdir().expect("tempdir");
    let uas = registered_uas(&k, ALICE, transport, Sipp::scenario("uas_answer.xml"));
    let uas_port = uas.local_addr().port();
    let uac = Sipp::scenario("uac_call_pcap.xml").play_pcap(tone_pcap(dir.path(), 500)).expect("pcap");
    let uac = spawn(uac.remote(k.addr()).service("alice").transport(transport));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);

    // Record-routed by Kamailio: the caller's ACK and BYE carry the route to it.
    let rr = format!("<sip:{}{};lr=on>", k.addr(), if transport == Transport::Tcp { ";transport=tcp" } else { "" });
    let invite = uas.received_request("INVITE").expect("INVITE");
    assert_eq!(invite.header("Record-Route"), Some(rr.as_str()), "{}", uas.report());
    assert!(invite.start_line().starts_with(&format!("INVITE {}", contact("alice", uas_port, transport))), "{}", uas.report());
    let ok = uac.received_response(200).expect("200");
    assert_eq!(ok.header("Record-Route"), Some(rr.as_str()), "{}", uac.report());
    for method in ["ACK", "BYE"] {
        let sent = uac.traced().into_iter().find(|m| m.sent && m.method() == Some(method)).expect(method);
        assert_eq!(sent.header("Route"), Some(rr.as_str()), "{}", uac.report());
    }
    assert!(uas.received_request("BYE").is_some(), "{}", uas.report());
}

#[test]
fn call_through_the_registrar_is_record_routed() {
    call_through_registrar(Transport::Udp);
}

#[test]
fn call_through_the_registrar_over_tcp() {
    call_through_registrar(Transport::Tcp);
}

#[test]
fn callee_hangs_up_through_the_registrar() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let uas = registered_uas(&k, ALICE, Transport::Udp, Sipp::scenario("uas_answer.xml").placeholder("HANGUP_AFTER_MS", 300));
    let uac = spawn(Sipp::scenario("uac_wait_bye.xml").remote(k.addr()).service("alice"));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    let bye = uac.received_request("BYE").expect("BYE");
    assert!(bye.header("Via").is_some_and(|v| v.contains(&k.addr().to_string())), "BYE not through Kamailio:\n{}", uac.report());
}

#[test]
fn hold_through_the_registrar() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let uas = registered_uas(&k, ALICE, Transport::Udp, Sipp::scenario("uas_answer.xml"));
    let uac = spawn(Sipp::scenario("uac_hold.xml").remote(k.addr()).service("alice"));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    // Every in-dialog request went through Kamailio (its Via on top at the callee).
    let via = format!("SIP/2.0/UDP {};branch=", k.addr());
    let reinvites: Vec<_> = uas.traced().into_iter().filter(|m| !m.sent && m.method() == Some("INVITE")).collect();
    assert_eq!(reinvites.len(), 3, "{}", uas.report());
    for m in reinvites.iter().chain(uas.received_request("BYE").iter()) {
        assert!(m.header("Via").is_some_and(|v| v.starts_with(&via)), "{}", m.text);
    }
}

#[test]
fn cancel_through_the_registrar() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let uas = registered_uas(&k, ALICE, Transport::Udp, Sipp::scenario("uas_no_answer.xml"));
    let uac = spawn(Sipp::scenario("uac_cancel.xml").remote(k.addr()).service("alice"));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    // The callee's 487 (its To tag), not one Kamailio made up after its timer.
    let terminated = uac.received_response(487).expect("487");
    assert!(terminated.header("To").is_some_and(|t| t.contains("SIPpTag01")), "{}", uac.report());
}

#[test]
fn unknown_user_gets_404() {
    let k = kamailio(KamailioConfig::with_users(&[ALICE]));
    let uac = Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 404).remote(k.addr()).service("nobody");
    let uac = uac.run().unwrap_or_else(|e| panic!("{e}"));
    assert_succeeded(&[&uac]);
    // A known but unregistered user too.
    let uac = Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 404).remote(k.addr()).service("alice");
    assert_succeeded(&[&uac.run().unwrap_or_else(|e| panic!("{e}"))]);
}

#[test]
fn outbound_call_needs_proxy_authentication() {
    let pstn = spawn(Sipp::scenario("uas_answer.xml"));
    let k = kamailio(KamailioConfig { outbound_target: Some(pstn.local_addr()), ..KamailioConfig::with_users(&[GW]) });
    let dir = tempfile::tempdir().expect("tempdir");
    let uac = Sipp::scenario("uac_call_pcap.xml").play_pcap(tone_pcap(dir.path(), 300)).expect("pcap");
    let uac = spawn(uac.placeholder("FROM_USER", "gw").credentials(GW.0, GW.1).remote(k.addr()).service("4930123456"));
    let (uac, pstn) = (wait(uac), wait(pstn));
    assert_succeeded(&[&uac, &pstn]);
    let challenge = uac.received_response(407).expect("407");
    let c = Challenge::parse(challenge.header("Proxy-Authenticate").expect("challenge")).expect("Digest");
    assert_eq!((c.qop.as_slice(), c.algorithm), (&[Qop::Auth][..], Algorithm::Md5));
    let invite = pstn.received_request("INVITE").expect("INVITE");
    assert!(invite.start_line().starts_with("INVITE sip:4930123456@"), "{}", pstn.report());
    assert_eq!(invite.header("Proxy-Authorization"), None, "credentials consumed by the proxy");
    assert!(invite.header("Record-Route").is_some(), "{}", pstn.report());

    // A wrong password is challenged again, and the call never reaches the target.
    let uac = Sipp::scenario("uac_call_pcap.xml").play_pcap(tone_pcap(dir.path(), 300)).expect("pcap");
    let uac = uac.placeholder("FROM_USER", "gw").credentials(GW.0, "wrong").remote(k.addr()).service("4930123456");
    let uac = uac.run().unwrap_or_else(|e| panic!("{e}"));
    let again = uac.traced().into_iter().find(|m| !m.sent && m.header("CSeq") == Some("2 INVITE"));
    assert!(!uac.succeeded() && again.and_then(|m| m.status()) == Some(407), "{}", uac.report());
}

// --- SIPp against SIPp ---

#[test]
fn call_plays_the_pcap_to_the_callee() {
    // The callee's SDP names a port of this test, which counts the RTP the caller plays.
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    rtp.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let rtp_port = rtp.local_addr().expect("addr").port();
    let pcap = Path::new(SIPP_PCAP_DIR).join("g711a.pcap");
    let uas = spawn(Sipp::scenario("uas_answer.xml").placeholder("MEDIA_PORT", rtp_port));
    let uac = spawn(Sipp::scenario("uac_call_pcap.xml").play_pcap(&pcap).expect("pcap").remote(uas.local_addr()).service("callee"));
    let counter = thread::spawn(move || {
        let (mut packets, mut pcma) = (0, 0);
        let mut buf = [0u8; 2048];
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            match rtp.recv(&mut buf) {
                Ok(n) => {
                    packets += 1;
                    pcma += usize::from(RtpPacket::parse(&buf[..n]).is_ok_and(|p| p.payload_type() == 8));
                }
                Err(_) if packets > 0 => break,
                Err(_) => {}
            }
        }
        (packets, pcma)
    });
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    let (packets, pcma) = counter.join().expect("counter");
    assert_eq!((packets, pcma), (236, 236), "RTP packets of g711a.pcap received, and PCMA among them");
}

#[test]
fn cancel_of_a_ringing_call() {
    let uas = spawn(Sipp::scenario("uas_no_answer.xml"));
    let uac = spawn(Sipp::scenario("uac_cancel.xml").remote(uas.local_addr()));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    let statuses = uac.received_statuses();
    assert!(statuses.contains(&180) && statuses.contains(&487) && statuses.contains(&200), "{statuses:?}");
    assert!(uas.received_request("ACK").is_some());
}

#[test]
fn busy_callee_is_rejected_with_486() {
    let uas = spawn(Sipp::scenario("uas_busy.xml"));
    let uac = spawn(Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 486).remote(uas.local_addr()));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
}

#[test]
fn other_rejection_codes() {
    for (code, reason) in [(503, "Service Unavailable"), (488, "Not Acceptable Here")] {
        let uas = spawn(Sipp::scenario("uas_busy.xml").placeholder("CODE", code).placeholder("REASON", reason));
        let uac = spawn(Sipp::scenario("uac_expect_code.xml").placeholder("CODE", code).remote(uas.local_addr()));
        let (uac, uas) = (wait(uac), wait(uas));
        assert_succeeded(&[&uac, &uas]);
    }
    // Expecting another code than the one sent fails the caller.
    let uas = spawn(Sipp::scenario("uas_busy.xml"));
    let uac = spawn(Sipp::scenario("uac_expect_code.xml").placeholder("CODE", 503).remote(uas.local_addr()).timeout(Duration::from_secs(5)));
    let uac = wait(uac);
    assert!(!uac.succeeded() && uac.failed == 1, "{}", uac.report());
    drop(uas);
}

fn proxy_auth(password: &str) -> (SippOutcome, SippOutcome) {
    let dir = tempfile::tempdir().expect("tempdir");
    let uas = Sipp::scenario("uas_auth_407.xml").placeholder("USER", GW.0).placeholder("NONCE", "f84f1cec41e6cbe5aea9c8e88d359").expect_digest(GW.0, GW.1);
    let uas = spawn(uas);
    let uac = Sipp::scenario("uac_call_pcap.xml").play_pcap(tone_pcap(dir.path(), 200)).expect("pcap");
    let uac = spawn(uac.placeholder("FROM_USER", "gw").credentials(GW.0, password).remote(uas.local_addr()).service("4930123456"));
    (wait(uac), wait(uas))
}

#[test]
fn proxy_authentication_with_the_right_password() {
    let (uac, uas) = proxy_auth(GW.1);
    assert_succeeded(&[&uac, &uas]);
    assert_eq!(uac.received_statuses()[..1], [407]);
}

#[test]
fn proxy_authentication_with_a_wrong_password() {
    let (uac, uas) = proxy_auth("wrong");
    assert!(!uas.succeeded(), "{}", uas.report());
    assert_eq!(uas.digest_failures.len(), 1, "{}", uas.report());
    assert!(uas.digest_failures[0].contains("does not match the password of gw"), "{}", uas.report());
    drop(uac);
}

#[test]
fn hold_is_answered_recvonly_then_resumed() {
    let uas = spawn(Sipp::scenario("uas_answer.xml"));
    let uac = spawn(Sipp::scenario("uac_hold.xml").remote(uas.local_addr()));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    let directions: Vec<String> = uac
        .traced()
        .iter()
        .filter(|m| !m.sent && m.status() == Some(200) && !m.body().is_empty())
        .filter_map(|m| m.body().lines().find_map(|l| l.trim().strip_prefix("a=").filter(|d| d.ends_with("only") || *d == "sendrecv")).map(str::to_owned))
        .collect();
    assert_eq!(directions, ["sendrecv", "recvonly", "sendrecv"], "{}", uac.report());
}

#[test]
fn hold_answered_sendrecv_fails_the_caller() {
    // A callee that ignores hold: the caller's check must catch it.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(happ_testkit::sipp::scenario_dir().join("uas_answer.xml")).expect("scenario");
    let path = dir.path().join("uas_ignoring_hold.xml");
    std::fs::write(&path, text.replace("a=[$dir]", "a=sendrecv")).expect("write");
    let uas = spawn(Sipp::scenario_path(&path));
    let uac = spawn(Sipp::scenario("uac_hold.xml").remote(uas.local_addr()));
    let uac = wait(uac);
    assert!(!uac.succeeded() && uac.failed == 1, "{}", uac.report());
    assert!(uac.errors.contains("a=recvonly"), "{}", uac.report());
}

#[test]
fn hold_over_tcp() {
    let uas = spawn(Sipp::scenario("uas_answer.xml").transport(Transport::Tcp));
    let uac = spawn(Sipp::scenario("uac_hold.xml").remote(uas.local_addr()).transport(Transport::Tcp));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
}

#[test]
fn early_media_then_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = tone_pcap(dir.path(), 400);
    let uas = spawn(Sipp::scenario("uas_early_media.xml").play_pcap(&pcap).expect("pcap").placeholder("HANGUP_AFTER_MS", 200));
    let uac = spawn(Sipp::scenario("uac_wait_bye.xml").remote(uas.local_addr()));
    let (uac, uas) = (wait(uac), wait(uas));
    assert_succeeded(&[&uac, &uas]);
    assert_eq!(uac.received_statuses()[..3], [100, 183, 200], "{}", uac.report());
    assert!(!uac.received_response(183).expect("183").body().is_empty());
}

// --- The harness itself ---

#[test]
fn kamailio_start_failure_reports_its_log() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = Kamailio::start(KamailioConfig { port: Some(port), ..Default::default() }).expect_err("port taken");
    let text = err.to_string();
    assert!(matches!(err, kamailio::Error::Start { .. }), "{text}");
    assert!(text.contains("Address already in use"), "{text}");
}

#[test]
fn nothing_is_left_running_after_drop_or_panic() {
    let k = kamailio(KamailioConfig::default());
    let addr = k.addr();
    let uas = spawn(Sipp::scenario("uas_answer.xml"));
    let sipp_addr = uas.local_addr();
    let panicked = std::panic::catch_unwind(move || {
        let _k = k;
        let _uas = uas;
        panic!("a failing test");
    });
    assert!(panicked.is_err());
    // The ports are free again: the processes are gone.
    assert!(UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok(), "Kamailio still running on {addr}");
    assert!(UdpSocket::bind(sipp_addr).is_ok(), "SIPp still running on {sipp_addr}");
}

#[test]
fn scenario_errors_are_reported_before_running() {
    let err = Sipp::scenario("uac_expect_code.xml").spawn().expect_err("CODE missing");
    assert!(err.to_string().contains("no value for CODE"), "{err}");
    let err = Sipp::scenario("uas_busy.xml").placeholder("COD", 1).spawn().expect_err("misspelt");
    assert!(err.to_string().contains("no placeholder named COD"), "{err}");
}
