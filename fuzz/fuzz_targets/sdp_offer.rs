//! Any bytes parsed as an SDP offer and answered as the gateway answers: no panic; a parsed
//! description prints to text that parses to the same text, and an answer is itself valid SDP
//! that negotiates against our offer.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use happ_sip::sdp::{self, Codec, LocalMedia, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse_bytes(data) else { return };
    let printed = offer.to_string();
    let again = SessionDescription::parse(&printed).expect("a printed description parses");
    assert_eq!(again.to_string(), printed, "printing is stable");
    let mut local = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 20_000, Codec::Pcma, 1);
    local.fallback = true;
    local.telephone_event = true;
    local.comfort_noise = true;
    if let Ok(answer) = sdp::answer(&offer, &local) {
        let text = answer.sdp.to_string();
        SessionDescription::parse(&text).expect("our answer parses");
    }
    // The same bytes as the answer to an offer of ours.
    let _ = sdp::negotiate_answer(&sdp::offer(&local), &offer);
});
