//! Counters of a media session, sampled by the driver for metrics and call records.

use std::time::Duration;

use crate::jitter::JitterStats;

/// A snapshot of a session's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets received (valid ones).
    pub rtp_received: u64,
    /// RTP payload bytes received.
    pub rtp_bytes_received: u64,
    /// Datagrams that were not valid RTP.
    pub rtp_malformed: u64,
    /// RTP packets with a payload type we do not take.
    pub unknown_payload_type: u64,
    /// Packets of a previous source, dropped after it changed.
    pub stale_ssrc: u64,
    /// Changes of the remote source.
    pub ssrc_changes: u64,
    /// Packets lost, as RFC 3550 counts them (expected minus received).
    pub lost: i64,
    /// Interarrival jitter (RFC 3550 §6.4.1).
    pub jitter: Duration,
    /// The jitter buffer's counters.
    pub buffer: JitterStats,
    /// The jitter buffer's current target delay.
    pub buffer_delay: Duration,
    /// RTCP datagrams received (valid ones).
    pub rtcp_received: u64,
    /// Datagrams that were not valid RTCP.
    pub rtcp_malformed: u64,
    /// DTMF digits received.
    pub dtmf_received: u64,
    /// Telephone-event payloads that were malformed.
    pub dtmf_malformed: u64,
    /// DTMF digits sent.
    pub dtmf_sent: u64,
    /// RTP packets sent.
    pub rtp_sent: u64,
    /// RTP payload bytes sent.
    pub rtp_bytes_sent: u64,
    /// Of those, packets of silence (nothing queued to play).
    pub silence_sent: u64,
    /// Packet times skipped because the driver fell behind by more than a few packets.
    pub send_ticks_skipped: u64,
    /// RTCP datagrams sent.
    pub rtcp_sent: u64,
    /// Round-trip time from the latest RTCP report about our stream.
    pub rtt: Option<Duration>,
    /// Fraction of our packets the peer lost in its latest report, in 1/256.
    pub remote_fraction_lost: u8,
    /// Our packets the peer has lost in all.
    pub remote_lost: i32,
    /// The jitter the peer measures on our stream.
    pub remote_jitter: Duration,
    /// Audio sent from the playback queue (silence excluded).
    pub played: Duration,
    /// Audio dropped from the playback queue by flushes.
    pub flushed: Duration,
    /// Events dropped because the driver did not drain them.
    pub events_dropped: u64,
}
