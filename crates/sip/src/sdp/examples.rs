//! Offers and answers as other software sends them, shared by the tests of this module, and the
//! tests that run over all of them: round trips and robustness against mutated input.
//!
//! They are written with LF line endings for readability; [`wire`] gives the CRLF form that
//! travels in SIP bodies.

use super::model::SessionDescription;

/// SIPp 3.6.1's built-in `uac` scenario (`sipp -sd uac`), fields filled in as SIPp does with its
/// default media port.
pub(super) const SIPP_UAC: &str = "\
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

/// SIPp 3.6.1's built-in `uac_pcap` scenario: A-law and telephone-events with a sparse event
/// list.
pub(super) const SIPP_UAC_PCAP: &str = "\
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
";

/// baresip 1.0.0's offer, captured from `baresip -e /dial ...` with the g711, g722, opus and gsm
/// modules loaded.
pub(super) const BARESIP: &str = "\
v=0
o=- 4125143160 60621363 IN IP4 192.0.2.2
s=-
c=IN IP4 192.0.2.2
t=0 0
a=tool:baresip 1.0.0
m=audio 19160 RTP/AVP 0 8 9 96 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:2645912256 cname:sip:gw@127.0.0.1
a=minptime:20
a=ptime:20
";

/// baresip 1.0.0's offer with `rtcp_mux yes` in its configuration.
pub(super) const BARESIP_MUX: &str = "\
v=0
o=- 1734535636 1351504343 IN IP4 192.0.2.2
s=-
c=IN IP4 192.0.2.2
t=0 0
a=tool:baresip 1.0.0
m=audio 3028 RTP/AVP 0 8 9 96 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:1339241176 cname:sip:gw@127.0.0.1
a=rtcp-mux
a=minptime:20
a=ptime:20
";

/// An Asterisk (chan_pjsip) offer: µ-law first, GSM, telephone-events 0-16, ptime and maxptime.
/// The carrier-side address is private: it must be reported as written.
pub(super) const ASTERISK: &str = "\
v=0
o=- 1804289383 1804289383 IN IP4 10.20.30.40
s=Asterisk
c=IN IP4 10.20.30.40
t=0 0
m=audio 17890 RTP/AVP 0 8 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
";

/// A FreeSWITCH offer: opus first, telephone-events at 48 kHz and 8 kHz, comfort noise, RTCP on
/// an explicit port and address (RFC 3605).
pub(super) const FREESWITCH: &str = "\
v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 203.0.113.20
s=FreeSWITCH
c=IN IP4 203.0.113.20
t=0 0
m=audio 24612 RTP/AVP 102 9 0 8 104 101 13
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:104 telephone-event/48000
a=fmtp:104 0-16
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
a=sendrecv
a=rtcp:24613 IN IP4 203.0.113.21
";

/// A softphone offering audio and video, with bandwidth lines, RTCP feedback and a media-level
/// connection for video; telephone-events on dynamic PT 96.
pub(super) const AUDIO_VIDEO: &str = "\
v=0
o=alice 3724394400 3724394405 IN IP4 198.51.100.7
s=Talk
c=IN IP4 198.51.100.7
b=AS:380
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 8 0 96
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
a=rtcp-fb:* trr-int 1000
m=video 9078 RTP/AVP 97
c=IN IP4 198.51.100.8
b=AS:300
a=rtpmap:97 VP8/90000
a=rtcp-fb:* nack
a=rtcp-fb:97 nack pli
";

/// Two audio streams: the first only over SRTP, the second plain; static types without rtpmap.
pub(super) const TWO_AUDIO: &str = "\
v=0
o=- 20518 0 IN IP4 192.0.2.30
s=-
c=IN IP4 192.0.2.30
t=0 0
m=audio 5004 RTP/SAVP 8 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32
m=audio 5006 RTP/AVP 3 0 8
";

/// A legacy hold (RFC 2543 style): connection address 0.0.0.0, no direction attribute.
pub(super) const LEGACY_HOLD: &str = "\
v=0
o=- 1804289383 1804289384 IN IP4 10.20.30.40
s=Asterisk
c=IN IP4 0.0.0.0
t=0 0
m=audio 17890 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
";

/// A hold re-offer: `sendrecv` at session level, overridden by `sendonly` at media level.
pub(super) const SENDONLY_HOLD: &str = "\
v=0
o=- 1804289383 1804289385 IN IP4 10.20.30.40
s=-
c=IN IP4 10.20.30.40
t=0 0
a=sendrecv
m=audio 17890 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:30
a=sendonly
";

/// A hold re-offer with `inactive` at session level only.
pub(super) const INACTIVE_HOLD: &str = "\
v=0
o=- 1804289383 1804289386 IN IP4 10.20.30.40
s=-
c=IN IP4 10.20.30.40
t=0 0
a=inactive
m=audio 17890 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
";

/// A `recvonly` offer (the peer wants to listen only).
pub(super) const RECVONLY: &str = "\
v=0
o=- 7 7 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=audio 40000 RTP/AVP 0
a=recvonly
";

/// An IPv6 offer.
pub(super) const IPV6: &str = "\
v=0
o=- 13760799956958020 13760799956958020 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 49170 RTP/AVP 8 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtcp:49171 IN IP6 2001:db8::11
";

/// Opus and GSM only: nothing a G.711 gateway can accept.
pub(super) const OPUS_GSM: &str = "\
v=0
o=- 1 1 IN IP4 192.0.2.40
s=-
c=IN IP4 192.0.2.40
t=0 0
m=audio 30000 RTP/AVP 111 3 126
a=rtpmap:111 opus/48000/2
a=rtpmap:3 GSM/8000
a=rtpmap:126 telephone-event/8000
";

/// A T.38 fax re-offer: no audio at all.
pub(super) const FAX: &str = "\
v=0
o=- 1 2 IN IP4 192.0.2.50
s=-
c=IN IP4 192.0.2.50
t=0 0
m=image 6004 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
";

/// Every line type, in RFC 8866 §5 order, including one the RFC does not define (`y=`, used by
/// some surveillance equipment) and a media-level connection with a host name.
pub(super) const KITCHEN_SINK: &str = "\
v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
p=+1 617 555-6011
c=IN IP4 224.2.17.12/127
b=CT:128
t=2873397496 2873404696
r=7d 1h 0 25h
z=2882844526 -1h 2898848070 0
k=prompt
y=0100000001
a=recvonly
m=audio 49170/2 RTP/AVP 0
i=Speaker
c=IN IP4 media.example.com
b=AS:64
k=prompt
a=rtpmap:0 PCMU/8000/1
a=fmtp:0
a=orient
a=lang:
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
a=sctp-port:5000
";

/// Every example above.
pub(super) const ALL: [(&str, &str); 16] = [
    ("sipp-uac", SIPP_UAC),
    ("sipp-uac-pcap", SIPP_UAC_PCAP),
    ("baresip", BARESIP),
    ("baresip-mux", BARESIP_MUX),
    ("asterisk", ASTERISK),
    ("freeswitch", FREESWITCH),
    ("audio-video", AUDIO_VIDEO),
    ("two-audio", TWO_AUDIO),
    ("legacy-hold", LEGACY_HOLD),
    ("sendonly-hold", SENDONLY_HOLD),
    ("inactive-hold", INACTIVE_HOLD),
    ("recvonly", RECVONLY),
    ("ipv6", IPV6),
    ("opus-gsm", OPUS_GSM),
    ("fax", FAX),
    ("kitchen-sink", KITCHEN_SINK),
];

/// The CRLF form of an example, as it travels in a SIP body.
pub(super) fn wire(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Parses the wire form of an example, which must be valid.
pub(super) fn parsed(text: &str) -> SessionDescription {
    match SessionDescription::parse(&wire(text)) {
        Ok(sdp) => sdp,
        Err(e) => panic!("example does not parse: {e}\n{text}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::super::codec::Codec;
    use super::super::negotiate::{LocalMedia, answer, negotiate_answer, offer};
    use super::*;

    #[test]
    fn every_example_parses_and_round_trips() {
        for (name, text) in ALL {
            let sdp = parsed(text);
            let printed = sdp.to_string();
            let again = SessionDescription::parse(&printed).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(again, sdp, "{name}: parse(print(x)) == x");
            assert_eq!(again.to_string(), printed, "{name}: printing is stable");
        }
    }

    #[test]
    fn printing_reproduces_canonical_examples_byte_for_byte() {
        // The examples are written in RFC 8866 order with single spaces, so printing what was
        // parsed gives back exactly the wire text: nothing is lost or reordered.
        for (name, text) in ALL {
            assert_eq!(parsed(text).to_string(), wire(text), "{name}");
        }
    }

    /// A small deterministic generator (xorshift64*), so the mutations are the same every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter to the grammar, plus a few that should not appear at all.
    const INTERESTING: &[u8] = b"=:/ \t\r\n0123456789amcvotsIP46-.*\0\xff\xc3";

    fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(6) {
                0 if at < out.len() => out[at] = INTERESTING[rng.below(INTERESTING.len())],
                1 if at < out.len() => {
                    out.remove(at);
                }
                2 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
                3 => {
                    // Duplicate a slice somewhere else (whole lines, often).
                    let from = rng.below(out.len());
                    let len = rng.below(40).min(out.len() - from);
                    let chunk = out[from..from + len].to_vec();
                    let to = rng.below(out.len() + 1);
                    out.splice(to..to, chunk);
                }
                4 => out.truncate(at),
                _ => {
                    // Replace a number with an extreme one.
                    let big: &[u8] = [&b"99999999999999999999999"[..], b"65536", b"128", b"-1", b"0"][rng.below(5)];
                    out.splice(at..at, big.iter().copied());
                }
            }
        }
        out
    }

    /// Runs everything the gateway does with a peer's description; only panics matter.
    fn exercise(bytes: &[u8], local: &LocalMedia, our_offer: &SessionDescription) -> bool {
        let Ok(sdp) = SessionDescription::parse_bytes(bytes) else {
            return false;
        };
        let printed = sdp.to_string();
        assert_eq!(SessionDescription::parse(&printed).as_ref(), Ok(&sdp), "round trip of {printed:?}");
        if let Ok(a) = answer(&sdp, local) {
            assert_eq!(a.sdp.media.len(), sdp.media.len());
            // Our own answer must be readable by our offer side.
            let _ = negotiate_answer(&sdp, &a.sdp);
        }
        let _ = negotiate_answer(our_offer, &sdp);
        let _ = super::super::hold::is_hold(&sdp);
        let _ = super::super::hold::hold_offer(&sdp).to_string();
        true
    }

    #[test]
    fn no_input_panics_truncated_or_mutated() {
        let local = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 40000, Codec::Pcma, 7);
        let our_offer = offer(&local);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed_ok = 0;
        let mut total = 0;
        for (_, text) in ALL {
            let wire = wire(text);
            let bytes = wire.as_bytes();
            // Every truncation, at every byte (splitting UTF-8 and CRLF pairs too).
            for end in 0..=bytes.len() {
                total += 1;
                parsed_ok += usize::from(exercise(&bytes[..end], &local, &our_offer));
            }
            // Random mutations of the whole text.
            for _ in 0..1500 {
                total += 1;
                parsed_ok += usize::from(exercise(&mutate(&mut rng, bytes), &local, &our_offer));
            }
        }
        // Both outcomes must be well represented, or the mutations test nothing.
        assert!(parsed_ok > total / 10, "{parsed_ok} of {total} parsed");
        assert!(parsed_ok < total * 9 / 10, "{parsed_ok} of {total} parsed");
    }
}
