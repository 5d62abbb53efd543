//! RTP packets (RFC 3550 §5.1): a validated view over the caller's buffer, and a header writer.
//!
//! Parsing borrows: [`RtpPacket::parse`] checks the fixed header, CSRC list, header extension and
//! padding against the buffer length and keeps offsets, so reading the payload costs nothing and
//! allocates nothing. (The webrtc-rs `rtp` crate copies every payload into a new `Bytes`; see
//! `cargo bench -p happ-benches --bench rtp` for the comparison.)

use crate::units::Ssrc;

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the fixed header.
    #[error("RTP packet of {0} bytes is shorter than the 12-byte header")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// The CSRC list runs past the end of the packet.
    #[error("RTP CSRC list of {0} entries overruns the packet")]
    CsrcOverrun(u8),
    /// The header extension's length runs past the end of the packet.
    #[error("RTP header extension overruns the packet")]
    ExtensionOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding of {0} bytes is invalid")]
    Padding(u8),
}

/// A parsed RTP packet borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    payload_start: usize,
    payload_end: usize,
    extension: Option<(u16, usize, usize)>,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let csrc_count = buf[0] & 0x0F;
        let mut pos = HEADER_LEN + 4 * usize::from(csrc_count);
        if pos > buf.len() {
            return Err(RtpError::CsrcOverrun(csrc_count));
        }
        let mut extension = None;
        if buf[0] & 0x10 != 0 {
            if pos + 4 > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
            let profile = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
            let words = usize::from(u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]));
            let start = pos + 4;
            let end = start + 4 * words;
            if end > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
            extension = Some((profile, start, end));
            pos = end;
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let pad = buf[buf.len() - 1];
            if pad == 0 || usize::from(pad) > end - pos {
                return Err(RtpError::Padding(pad));
            }
            end -= usize::from(pad);
        }
        Ok(RtpPacket { buf, payload_start: pos, payload_end: end, extension })
    }

    /// The marker bit: the first packet of a talkspurt for audio (RFC 3551 §4.1).
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }

    /// The 16-bit sequence number.
    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// The 32-bit timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]))
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + 'a {
        let n = usize::from(self.buf[0] & 0x0F);
        self.buf[HEADER_LEN..HEADER_LEN + 4 * n].chunks_exact(4).map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The header extension: its profile-defined identifier and data.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        self.extension.map(|(profile, start, end)| (profile, &self.buf[start..end]))
    }

    /// The payload, without header, extension or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
}

/// The fields of an RTP header we send: no CSRCs, no extension, no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: Ssrc,
}

impl RtpHeader {
    /// Writes the 12-byte header at the start of `buf`; returns [`HEADER_LEN`], or `None` when
    /// `buf` is too short.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..HEADER_LEN)?;
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        Some(HEADER_LEN)
    }
}

/// Whether a datagram on a multiplexed RTP/RTCP port is RTCP (RFC 5761 §4: payload type byte
/// 192..=223 with version 2).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    fn packet(first: u8, extra: &[u8]) -> Vec<u8> {
        let mut v = vec![first, 0x88, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn round_trip_header() {
        let h = RtpHeader { marker: true, payload_type: 8, seq: 0xFFFF, timestamp: 0xFFFF_FFF0, ssrc: Ssrc(7) };
        let mut buf = [0u8; 20];
        assert_eq!(h.write(&mut buf), Some(12));
        buf[12..].copy_from_slice(&[0xD5; 8]);
        let p = RtpPacket::parse(&buf).expect("valid");
        assert!(p.marker());
        assert_eq!((p.payload_type(), p.seq(), p.timestamp(), p.ssrc()), (8, 0xFFFF, 0xFFFF_FFF0, Ssrc(7)));
        assert_eq!(p.payload(), &[0xD5; 8]);
        assert!(h.write(&mut [0u8; 11]).is_none());
    }

    #[test]
    fn csrc_extension_and_padding() {
        // CC=1, X=1, P=1: one CSRC, a one-word extension, 2 payload bytes, 3 bytes of padding.
        let mut extra = vec![0, 0, 0, 9];
        extra.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
        extra.extend_from_slice(&[0xAA, 0xBB, 0, 0, 3]);
        let buf = packet(0x80 | 0x20 | 0x10 | 1, &extra);
        let p = RtpPacket::parse(&buf).expect("valid");
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![Ssrc(9)]);
        assert_eq!(p.extension(), Some((0xBEDE, &[1u8, 2, 3, 4][..])));
        assert_eq!(p.payload(), &[0xAA, 0xBB]);
    }

    #[test]
    fn malformed_packets_are_rejected() {
        assert_eq!(RtpPacket::parse(&[0x80; 5]).unwrap_err(), RtpError::TooShort(5));
        assert_eq!(RtpPacket::parse(&packet(0x40, &[])).unwrap_err(), RtpError::Version(1));
        assert_eq!(RtpPacket::parse(&packet(0x83, &[0; 8])).unwrap_err(), RtpError::CsrcOverrun(3));
        assert_eq!(RtpPacket::parse(&packet(0x90, &[0, 0, 0, 2, 0])).unwrap_err(), RtpError::ExtensionOverrun);
        assert_eq!(RtpPacket::parse(&packet(0x90, &[0, 0])).unwrap_err(), RtpError::ExtensionOverrun);
        assert_eq!(RtpPacket::parse(&packet(0xA0, &[1, 0])).unwrap_err(), RtpError::Padding(0));
        assert_eq!(RtpPacket::parse(&packet(0xA0, &[9])).unwrap_err(), RtpError::Padding(9));
        // Padding that eats exactly the payload is valid and leaves it empty.
        assert_eq!(RtpPacket::parse(&packet(0xA0, &[0, 2])).expect("valid").payload(), &[] as &[u8]);
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200]));
        assert!(is_rtcp(&[0x81, 201]));
        assert!(!is_rtcp(&[0x80, 8]));
        assert!(!is_rtcp(&[0x80, 0x88]));
        assert!(!is_rtcp(&[0x80]));
    }
}
