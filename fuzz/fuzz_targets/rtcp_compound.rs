//! Any datagram parsed as a compound RTCP packet: no panic, every packet readable.
#![no_main]

use happ_media::rtp::rtcp::{RtcpPacket, sdes_cname};
use happ_media::rtp::parse_compound;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = parse_compound(data) {
        for p in packets {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    let _ = sr.blocks.iter().count();
                }
                RtcpPacket::ReceiverReport(rr) => {
                    let _ = rr.blocks.iter().count();
                }
                RtcpPacket::SourceDescription(body) => {
                    let _ = sdes_cname(body);
                }
                RtcpPacket::Bye(b) => {
                    let _ = b.iter().count();
                }
                RtcpPacket::Other { .. } => {}
            }
        }
    }
});
