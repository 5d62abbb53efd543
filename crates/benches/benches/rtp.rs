//! Parsing an RTP packet: our borrowing view against the webrtc-rs `rtp` crate, which copies the
//! payload into a new `Bytes` for every packet.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use happ_media::rtp::{RtpHeader, RtpPacket};
use happ_media::units::Ssrc;
use rtp::packet::Packet;
use webrtc_util::marshal::Unmarshal;

fn packet() -> Vec<u8> {
    let mut buf = vec![0xD5u8; 172];
    RtpHeader { marker: false, payload_type: 8, seq: 4242, timestamp: 123_456, ssrc: Ssrc(7) }.write(&mut buf);
    buf
}

fn bench(c: &mut Criterion) {
    let buf = packet();
    let mut g = c.benchmark_group("rtp parse (172-byte G.711 packet)");
    g.bench_function("happ-media RtpPacket::parse", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&buf)).expect("valid");
            black_box((p.seq(), p.timestamp(), p.payload().len()))
        })
    });
    g.bench_function("webrtc-rs rtp Packet::unmarshal", |b| {
        b.iter(|| {
            let mut bytes: &[u8] = black_box(&buf);
            let p = Packet::unmarshal(&mut bytes).expect("valid");
            black_box((p.header.sequence_number, p.header.timestamp, p.payload.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
