//! The SIP endpoint fed arbitrary datagrams and TCP bytes, with time passing between them: no
//! panic, and it keeps answering a valid OPTIONS afterwards.
//!
//! The input is split at `\0` into chunks; the first byte of each picks UDP or TCP framing and
//! how long to wait before it.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use happ_sip::endpoint::{AccountConfig, Endpoint, EndpointConfig};
use happ_sip::framing::{Frame, StreamDecoder};
use happ_sip::message::{Transport, Uri};
use libfuzzer_sys::fuzz_target;

const OPTIONS: &[u8] = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKprobe\r\nMax-Forwards: 70\r\n\
From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let local: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
    let peer: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
    let mut ep = Endpoint::new(EndpointConfig { local, seed: 7, ..EndpointConfig::default() });
    let account = AccountConfig {
        aor: Uri::parse("sip:1001@127.0.0.1:5070").expect("uri"),
        display_name: None,
        proxy: peer,
        transport: Transport::Udp,
        username: "1001".into(),
        password: "secret".into(),
        register: true,
        expires: 120,
        keepalive: Some(Duration::from_secs(25)),
        contact_user: "1001".into(),
    };
    ep.add_account(now, account);
    let mut tcp = StreamDecoder::new();
    let drain = |ep: &mut Endpoint| {
        let mut sent = 0;
        while let Some(t) = ep.poll_transmit() {
            sent += t.bytes.len();
        }
        while ep.poll_event().is_some() {}
        sent
    };
    drain(&mut ep);
    for chunk in data.split(|b| *b == 0) {
        let Some((&first, bytes)) = chunk.split_first() else { continue };
        now += Duration::from_millis(u64::from(first & 0x3F) * 50);
        if let Some(at) = ep.poll_timeout().filter(|at| *at <= now) {
            ep.handle_timeout(at.max(now));
        }
        if first & 0x80 == 0 {
            ep.handle_message(now, Transport::Udp, peer, bytes);
        } else {
            tcp.push(bytes);
            while let Ok(Some(frame)) = tcp.next_frame() {
                if let Frame::Message(m) = frame {
                    ep.handle_message(now, Transport::Tcp, peer, &m);
                }
            }
        }
        drain(&mut ep);
    }
    ep.handle_message(now, Transport::Udp, peer, OPTIONS);
    let mut answered = false;
    while let Some(t) = ep.poll_transmit() {
        answered |= t.bytes.starts_with(b"SIP/2.0 200 ");
    }
    assert!(answered, "a valid OPTIONS is still answered");
});
