//! RTCP (RFC 3550 §6): compound packets parsed as borrowed views, and writers for the sender
//! report, receiver report, SDES CNAME and BYE that a telephony endpoint sends.

use crate::units::{NtpTime, Ssrc};

/// RTCP packet types (RFC 3550 §12.1).
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
}

const REPORT_BLOCK_LEN: usize = 24;

/// Why a datagram is not a valid RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than a 4-byte RTCP header, or not a multiple of 4 bytes.
    #[error("RTCP packet of {0} bytes is truncated")]
    Truncated(usize),
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    /// A packet's length field runs past the datagram.
    #[error("RTCP length field of {0} words overruns the datagram")]
    LengthOverrun(u16),
    /// A report claims more blocks than its length holds.
    #[error("RTCP report with {0} blocks does not fit its length")]
    ReportCount(u8),
    /// The padding count is invalid.
    #[error("RTCP padding is invalid")]
    Padding,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; negative with duplicates).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP ticks.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from that source, or 0.
    pub lsr: u32,
    /// Delay since that SR in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        // Sign-extend the 24-bit cumulative count.
        let cumulative_lost = (i32::from_be_bytes([b[5], b[6], b[7], 0])) >> 8;
        ReportBlock { ssrc: Ssrc(word(0)), fraction_lost: b[4], cumulative_lost, highest_seq: word(8), jitter: word(12), lsr: word(16), dlsr: word(20) }
    }

    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.ssrc.0.to_be_bytes());
        out[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF);
        out[5..8].copy_from_slice(&lost.to_be_bytes()[1..]);
        out[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.lsr.to_be_bytes());
        out[20..24].copy_from_slice(&self.dlsr.to_be_bytes());
    }
}

/// Report blocks of an SR or RR, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl<'a> ReportBlocks<'a> {
    /// Iterates the blocks.
    pub fn iter(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        self.0.chunks_exact(REPORT_BLOCK_LEN).map(ReportBlock::parse)
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / REPORT_BLOCK_LEN
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug)]
pub struct SenderReport<'a> {
    /// The sender.
    pub ssrc: Ssrc,
    /// Wallclock time of the report.
    pub ntp: NtpTime,
    /// The RTP timestamp corresponding to `ntp`.
    pub rtp_time: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
    /// Reception reports about other sources.
    pub blocks: ReportBlocks<'a>,
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Clone, Copy, Debug)]
pub struct ReceiverReport<'a> {
    /// The reporter.
    pub ssrc: Ssrc,
    /// Reception reports.
    pub blocks: ReportBlocks<'a>,
}

/// One packet of a compound RTCP datagram.
#[derive(Clone, Copy, Debug)]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport(SenderReport<'a>),
    /// RR.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES, with its raw chunks.
    SourceDescription(&'a [u8]),
    /// BYE, with the sources leaving.
    Bye(ByeSources<'a>),
    /// Any other type (APP, feedback, XR), skipped by this endpoint.
    Other {
        /// Packet type.
        packet_type: u8,
    },
}

/// The sources of a BYE packet.
#[derive(Clone, Copy, Debug)]
pub struct ByeSources<'a>(&'a [u8]);

impl<'a> ByeSources<'a> {
    /// Iterates the sources.
    pub fn iter(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.0.chunks_exact(4).map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }
}

/// Validates a compound RTCP datagram and iterates its packets.
///
/// The whole datagram is checked first, so iteration cannot fail half-way.
pub fn parse_compound(buf: &[u8]) -> Result<impl Iterator<Item = RtcpPacket<'_>>, RtcpError> {
    if buf.len() < 4 || !buf.len().is_multiple_of(4) {
        return Err(RtcpError::Truncated(buf.len()));
    }
    let mut pos = 0;
    while pos < buf.len() {
        let (_, next) = split_one(buf, pos)?;
        pos = next;
    }
    Ok(Compound { buf, pos: 0 })
}

struct Compound<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Compound<'a> {
    type Item = RtcpPacket<'a>;

    fn next(&mut self) -> Option<RtcpPacket<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        // Validated by `parse_compound`.
        let (packet, next) = split_one(self.buf, self.pos).ok()?;
        self.pos = next;
        Some(packet)
    }
}

/// Parses the packet at `pos`; returns it and the offset of the next.
fn split_one(buf: &[u8], pos: usize) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let head = buf.get(pos..pos + 4).ok_or(RtcpError::Truncated(buf.len() - pos))?;
    let version = head[0] >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    let count = head[0] & 0x1F;
    let packet_type = head[1];
    let words = u16::from_be_bytes([head[2], head[3]]);
    let end = pos + 4 + 4 * usize::from(words);
    if end > buf.len() {
        return Err(RtcpError::LengthOverrun(words));
    }
    let mut body = &buf[pos + 4..end];
    if head[0] & 0x20 != 0 {
        // Padding is only valid in the last packet of a compound (RFC 3550 §6.4.1).
        let pad = usize::from(*body.last().ok_or(RtcpError::Padding)?);
        if end != buf.len() || pad == 0 || pad > body.len() {
            return Err(RtcpError::Padding);
        }
        body = &body[..body.len() - pad];
    }
    let word = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let blocks = |b: &'_ [u8], at: usize| -> Result<(), RtcpError> {
        if b.len() < at + usize::from(count) * REPORT_BLOCK_LEN {
            return Err(RtcpError::ReportCount(count));
        }
        Ok(())
    };
    let packet = match packet_type {
        packet_type::SR => {
            blocks(body, 24)?;
            let ntp = (u64::from(word(body, 4)) << 32) | u64::from(word(body, 8));
            RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(word(body, 0)),
                ntp: NtpTime(ntp),
                rtp_time: word(body, 12),
                packet_count: word(body, 16),
                octet_count: word(body, 20),
                blocks: ReportBlocks(&body[24..24 + usize::from(count) * REPORT_BLOCK_LEN]),
            })
        }
        packet_type::RR => {
            blocks(body, 4)?;
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc: Ssrc(word(body, 0)), blocks: ReportBlocks(&body[4..4 + usize::from(count) * REPORT_BLOCK_LEN]) })
        }
        packet_type::SDES => RtcpPacket::SourceDescription(body),
        packet_type::BYE => {
            if body.len() < 4 * usize::from(count) {
                return Err(RtcpError::ReportCount(count));
            }
            RtcpPacket::Bye(ByeSources(&body[..4 * usize::from(count)]))
        }
        other => RtcpPacket::Other { packet_type: other },
    };
    Ok((packet, end))
}

/// Writes RTCP packets one after the other into a caller buffer, forming a compound packet.
pub struct RtcpWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> RtcpWriter<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        RtcpWriter { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn header(&mut self, count: u8, packet_type: u8, body_len: usize) -> Option<&mut [u8]> {
        let total = 4 + body_len;
        debug_assert_eq!(total % 4, 0);
        let out = self.buf.get_mut(self.len..self.len + total)?;
        out[0] = 0x80 | (count & 0x1F);
        out[1] = packet_type;
        out[2..4].copy_from_slice(&(((total / 4) - 1) as u16).to_be_bytes());
        self.len += total;
        Some(&mut out[4..])
    }

    /// A sender report with up to 31 report blocks.
    pub fn sender_report(&mut self, ssrc: Ssrc, ntp: NtpTime, rtp_time: u32, packet_count: u32, octet_count: u32, blocks: &[ReportBlock]) -> Option<()> {
        let blocks = &blocks[..blocks.len().min(31)];
        let body = self.header(blocks.len() as u8, packet_type::SR, 24 + REPORT_BLOCK_LEN * blocks.len())?;
        body[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        body[4..12].copy_from_slice(&ntp.0.to_be_bytes());
        body[12..16].copy_from_slice(&rtp_time.to_be_bytes());
        body[16..20].copy_from_slice(&packet_count.to_be_bytes());
        body[20..24].copy_from_slice(&octet_count.to_be_bytes());
        for (b, out) in blocks.iter().zip(body[24..].chunks_exact_mut(REPORT_BLOCK_LEN)) {
            b.write(out);
        }
        Some(())
    }

    /// A receiver report with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: Ssrc, blocks: &[ReportBlock]) -> Option<()> {
        let blocks = &blocks[..blocks.len().min(31)];
        let body = self.header(blocks.len() as u8, packet_type::RR, 4 + REPORT_BLOCK_LEN * blocks.len())?;
        body[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        for (b, out) in blocks.iter().zip(body[4..].chunks_exact_mut(REPORT_BLOCK_LEN)) {
            b.write(out);
        }
        Some(())
    }

    /// An SDES packet with one chunk carrying the CNAME (truncated to 255 bytes).
    pub fn cname(&mut self, ssrc: Ssrc, cname: &str) -> Option<()> {
        let name = &cname.as_bytes()[..cname.len().min(255)];
        // SSRC, CNAME item (type, length, text), then at least one null octet to end the item
        // list, padded to a 32-bit boundary.
        let used = 4 + 2 + name.len() + 1;
        let body_len = used.div_ceil(4) * 4;
        let body = self.header(1, packet_type::SDES, body_len)?;
        body[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        body[4] = 1;
        body[5] = name.len() as u8;
        body[6..6 + name.len()].copy_from_slice(name);
        body[6 + name.len()..].fill(0);
        Some(())
    }

    /// A BYE for one source.
    pub fn bye(&mut self, ssrc: Ssrc) -> Option<()> {
        let body = self.header(1, packet_type::BYE, 4)?;
        body.copy_from_slice(&ssrc.0.to_be_bytes());
        Some(())
    }
}

/// Extracts the CNAME of the first chunk of an SDES body, if any.
pub fn sdes_cname(body: &[u8]) -> Option<&[u8]> {
    let mut pos = 4;
    while pos + 2 <= body.len() {
        let (kind, len) = (body[pos], usize::from(body[pos + 1]));
        if kind == 0 {
            return None;
        }
        let text = body.get(pos + 2..pos + 2 + len)?;
        if kind == 1 {
            return Some(text);
        }
        pos += 2 + len;
    }
    None
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    fn block() -> ReportBlock {
        ReportBlock { ssrc: Ssrc(0x1234_5678), fraction_lost: 64, cumulative_lost: -3, highest_seq: 0x0001_0005, jitter: 77, lsr: 0xAABB_CCDD, dlsr: 65_536 }
    }

    #[test]
    fn compound_sr_sdes_bye_round_trip() {
        let mut buf = [0u8; 256];
        let mut w = RtcpWriter::new(&mut buf);
        w.sender_report(Ssrc(1), NtpTime(0x0102_0304_0506_0708), 160, 10, 1600, &[block()]).expect("fits");
        w.cname(Ssrc(1), "gw@example").expect("fits");
        w.bye(Ssrc(1)).expect("fits");
        let n = w.len();
        let packets: Vec<_> = parse_compound(&buf[..n]).expect("valid").collect();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::SenderReport(sr) = packets[0] else { panic!("SR first") };
        assert_eq!((sr.ssrc, sr.ntp, sr.rtp_time, sr.packet_count, sr.octet_count), (Ssrc(1), NtpTime(0x0102_0304_0506_0708), 160, 10, 1600));
        assert_eq!(sr.blocks.iter().collect::<Vec<_>>(), vec![block()]);
        let RtcpPacket::SourceDescription(sdes) = packets[1] else { panic!("SDES second") };
        assert_eq!(sdes_cname(sdes), Some(&b"gw@example"[..]));
        let RtcpPacket::Bye(bye) = packets[2] else { panic!("BYE third") };
        assert_eq!(bye.iter().collect::<Vec<_>>(), vec![Ssrc(1)]);
    }

    #[test]
    fn receiver_report_round_trip() {
        let mut buf = [0u8; 64];
        let mut w = RtcpWriter::new(&mut buf);
        w.receiver_report(Ssrc(9), &[block()]).expect("fits");
        let n = w.len();
        assert_eq!(n, 32);
        let RtcpPacket::ReceiverReport(rr) = parse_compound(&buf[..n]).expect("valid").next().expect("one") else { panic!("RR") };
        assert_eq!(rr.ssrc, Ssrc(9));
        assert_eq!(rr.blocks.iter().next(), Some(block()));
    }

    #[test]
    fn writer_reports_a_short_buffer() {
        let mut buf = [0u8; 20];
        assert!(RtcpWriter::new(&mut buf).receiver_report(Ssrc(1), &[block()]).is_none());
    }

    #[test]
    fn malformed_compounds_are_rejected() {
        assert_eq!(parse_compound(&[0x80, 201, 0]).err(), Some(RtcpError::Truncated(3)));
        assert_eq!(parse_compound(&[0x40, 201, 0, 0]).err(), Some(RtcpError::Version(1)));
        assert_eq!(parse_compound(&[0x80, 201, 0, 5, 0, 0, 0, 0]).err(), Some(RtcpError::LengthOverrun(5)));
        // RR claiming one block with only the SSRC present.
        assert_eq!(parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]).err(), Some(RtcpError::ReportCount(1)));
        // Padding on a packet that is not the last.
        let mut two = vec![0xA0, 201, 0, 1, 0, 0, 0, 4];
        two.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 1]);
        assert_eq!(parse_compound(&two).err(), Some(RtcpError::Padding));
        // Unknown types are skipped, not rejected.
        let app = [0x80, 204, 0, 1, 0, 0, 0, 1];
        assert!(matches!(parse_compound(&app).expect("valid").next(), Some(RtcpPacket::Other { packet_type: 204 })));
    }
}
