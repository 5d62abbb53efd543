//! The RTP captures of `fixtures/rtp/` (see `fixtures/SOURCES.md`), made from the speech fixtures.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use happ_media::Law;
use happ_media::rtp::RtpHeader;
use happ_media::units::Ssrc;

use crate::pcap::PcapWriter;

/// Source of the captured RTP.
pub const SRC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000);
/// Destination of the captured RTP.
pub const DST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40_002);
/// SSRC of the captured RTP ("HAPP").
pub const SSRC: Ssrc = Ssrc(0x4841_5050);
/// First sequence number.
pub const FIRST_SEQ: u16 = 1000;
/// Capture time of the first packet (a fixed date, so the files are reproducible).
pub const START: Duration = Duration::from_secs(1_767_225_600);

/// 8 kHz audio as 20 ms G.711 packets (the last one padded with silence), paced 20 ms apart.
pub fn rtp_capture(law: Law, pcm: &[i16]) -> Vec<u8> {
    let mut w = PcapWriter::new();
    let mut payload = [0u8; 160];
    for (i, frame) in pcm.chunks(160).enumerate() {
        let mut padded = [0i16; 160];
        padded[..frame.len()].copy_from_slice(frame);
        law.encode(&padded, &mut payload);
        let mut packet = [0u8; 172];
        RtpHeader { marker: i == 0, payload_type: law.payload_type(), seq: FIRST_SEQ.wrapping_add(i as u16), timestamp: (i * 160) as u32, ssrc: SSRC }
            .write(&mut packet);
        packet[12..].copy_from_slice(&payload);
        w.udp(START + Duration::from_millis(20 * i as u64), SRC, DST, &packet);
    }
    w.finish()
}

/// The address excerpt at 8 kHz.
pub fn jfk_8k() -> Vec<i16> {
    happ_fixtures::jfk().resampled(8_000).expect("16 kHz to 8 kHz is supported").samples
}

/// Digits 0-9 by the first speaker, each followed by 300 ms of silence.
pub fn digits_8k() -> Vec<i16> {
    let mut all = Vec::new();
    for d in 0..10 {
        all.extend_from_slice(&happ_fixtures::digit(d, 0).samples);
        all.extend(std::iter::repeat_n(0, 2_400));
    }
    all
}

/// Every fixture capture: file name under `fixtures/rtp/`, and its bytes.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let jfk = jfk_8k();
    vec![
        ("jfk_pcma.pcap", rtp_capture(Law::Alaw, &jfk)),
        ("jfk_pcmu.pcap", rtp_capture(Law::Ulaw, &jfk)),
        ("digits_pcma.pcap", rtp_capture(Law::Alaw, &digits_8k())),
    ]
}
