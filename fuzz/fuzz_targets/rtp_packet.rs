//! Any datagram parsed as RTP: no panic, and a valid packet's parts lie within it.
#![no_main]

use happ_media::dtmf::EventPayload;
use happ_media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload().len() <= data.len());
        let _ = (p.seq(), p.timestamp(), p.ssrc(), p.marker(), p.payload_type(), p.extension());
        assert!(p.csrcs().count() <= 15);
        let _ = EventPayload::parse(p.payload());
    }
});
