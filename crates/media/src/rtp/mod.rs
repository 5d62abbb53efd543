//! RTP and RTCP on the wire (RFC 3550) and the statistics RTCP reports.

pub mod packet;
pub mod reception;
pub mod rtcp;

pub use packet::{HEADER_LEN, RtpError, RtpHeader, RtpPacket, is_rtcp};
pub use reception::{Reception, round_trip};
pub use rtcp::{ReportBlock, RtcpError, RtcpPacket, RtcpWriter, parse_compound};
