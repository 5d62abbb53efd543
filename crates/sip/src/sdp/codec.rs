//! The codecs the gateway speaks (G.711, RFC 3551 §4.5.14), RFC 4733 telephone-events and
//! RFC 3389 comfort noise, and the static payload types of RFC 3551 §6.

use std::fmt;

use super::model::RtpMap;

/// The clock rate of G.711, telephone-events and comfort noise in a narrowband call.
const NARROWBAND: u32 = 8000;

/// Payload type we offer telephone-events on: dynamic (RFC 3551 §3), 101 by wide convention.
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// Static payload type of comfort noise at 8 kHz (RFC 3389 §5, RFC 3551 table 4).
pub const CN_PAYLOAD_TYPE: u8 = 13;

/// Encoding name of RFC 4733 named events.
pub(crate) const TELEPHONE_EVENT: &str = "telephone-event";

/// Encoding name of RFC 3389 comfort noise.
pub(crate) const CN: &str = "CN";

/// An audio codec the gateway can negotiate: one of the two G.711 laws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, `PCMU/8000`, static payload type 0.
    Pcmu,
    /// G.711 A-law, `PCMA/8000`, static payload type 8.
    Pcma,
}

impl Codec {
    /// Both, µ-law first (their static payload type order).
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The clock rate in Hz.
    pub const CLOCK_RATE: u32 = NARROWBAND;

    /// The static payload type (RFC 3551 table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The other G.711 law.
    #[must_use]
    pub fn other_law(self) -> Codec {
        match self {
            Codec::Pcmu => Codec::Pcma,
            Codec::Pcma => Codec::Pcmu,
        }
    }

    /// The `a=rtpmap` entry for this codec on `payload_type`.
    pub fn rtpmap(self, payload_type: u8) -> RtpMap {
        RtpMap::new(payload_type, self.name(), Codec::CLOCK_RATE)
    }

    /// The codec an encoding names, if it is one of ours: encoding names are case-insensitive
    /// (RFC 4855 §3), the rate must be 8000 and the channels absent or 1 (RFC 3551 §4.5.14).
    pub fn from_rtpmap(map: &RtpMap) -> Option<Codec> {
        if map.clock_rate != Codec::CLOCK_RATE || !matches!(map.channels, None | Some(1)) {
            return None;
        }
        Codec::ALL.into_iter().find(|c| map.encoding.eq_ignore_ascii_case(c.name()))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an rtpmap is narrowband telephone-events, the ones usable beside G.711 (RFC 4733 §7.1.1:
/// the event clock is the audio clock).
pub(crate) fn is_telephone_event(map: &RtpMap) -> bool {
    map.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT) && map.clock_rate == NARROWBAND
}

/// Whether an rtpmap is narrowband comfort noise.
pub(crate) fn is_comfort_noise(map: &RtpMap) -> bool {
    map.encoding.eq_ignore_ascii_case(CN) && map.clock_rate == NARROWBAND
}

/// The encoding of a static audio payload type (RFC 3551 table 4), used when an offer lists a
/// static type without `a=rtpmap`, which RFC 8866 §6.6 allows.
pub fn static_encoding(payload_type: u8) -> Option<RtpMap> {
    let (name, rate, channels) = match payload_type {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => (CN, 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        16 => ("DVI4", 11025, None),
        17 => ("DVI4", 22050, None),
        18 => ("G729", 8000, None),
        _ => return None,
    };
    let mut map = RtpMap::new(payload_type, name, rate);
    map.channels = channels;
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_payload_types_and_names() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.to_string(), "PCMA");
        assert_eq!(Codec::Pcma.other_law(), Codec::Pcmu);
        assert_eq!(Codec::Pcmu.other_law(), Codec::Pcma);
        for codec in Codec::ALL {
            let map = static_encoding(codec.payload_type()).expect("G.711 is static");
            assert_eq!(Codec::from_rtpmap(&map), Some(codec));
            assert_eq!(codec.rtpmap(codec.payload_type()), map);
        }
    }

    #[test]
    fn encodings_match_case_insensitively_at_8000_mono_only() {
        let mut map = RtpMap::new(100, "pcma", 8000);
        assert_eq!(Codec::from_rtpmap(&map), Some(Codec::Pcma));
        map.channels = Some(1);
        assert_eq!(Codec::from_rtpmap(&map), Some(Codec::Pcma));
        map.channels = Some(2);
        assert_eq!(Codec::from_rtpmap(&map), None);
        assert_eq!(Codec::from_rtpmap(&RtpMap::new(0, "PCMU", 16000)), None);
        assert_eq!(Codec::from_rtpmap(&RtpMap::new(3, "GSM", 8000)), None);
    }

    #[test]
    fn telephone_event_and_cn_need_the_narrowband_clock() {
        assert!(is_telephone_event(&RtpMap::new(101, "telephone-event", 8000)));
        assert!(is_telephone_event(&RtpMap::new(96, "TELEPHONE-EVENT", 8000)));
        assert!(!is_telephone_event(&RtpMap::new(104, "telephone-event", 48000)));
        assert!(is_comfort_noise(&static_encoding(CN_PAYLOAD_TYPE).expect("13 is static")));
        assert!(!is_comfort_noise(&RtpMap::new(105, "CN", 16000)));
        assert_eq!(static_encoding(96), None);
        assert_eq!(static_encoding(10).and_then(|m| m.channels), Some(2));
    }
}
