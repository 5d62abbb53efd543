//! Settings of a media session, fixed when the call's SDP is negotiated.

use std::time::Duration;

use crate::g711::Law;
use crate::jitter::JitterConfig;
use crate::units::{NtpTime, Ssrc};

/// SDP media direction (RFC 3264 §5.1), seen from our side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// We send and receive.
    #[default]
    SendRecv,
    /// We only send (we hold the call, playing music or an announcement).
    SendOnly,
    /// We only receive (the peer is holding the call with `sendonly`).
    RecvOnly,
    /// Neither (`inactive`).
    Inactive,
}

impl Direction {
    /// Whether RTP goes out.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether RTP is expected in.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// Everything a [`crate::session::MediaSession`] needs to know.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Codec we send (both G.711 laws are always accepted on receive on their static payload
    /// types 0 and 8).
    pub law: Law,
    /// The payload type of `law` when the peer mapped G.711 to a dynamic one (RFC 3551 allows
    /// it); it is then both sent and accepted. `None`: the static payload type.
    pub payload_type: Option<u8>,
    /// Payload type of RFC 4733 telephone-events, when negotiated.
    pub telephone_event: Option<u8>,
    /// Packet time of what we send (the peer's `a=ptime`, 20 ms by default).
    pub ptime: Duration,
    /// Sample rate of the frames [`crate::session::MediaSession::pull_pcm`] gives (speech-to-text).
    pub pull_rate: u32,
    /// Sample rate of what [`crate::session::MediaSession::push_pcm`] takes (text-to-speech).
    pub push_rate: u32,
    /// Jitter buffer.
    pub jitter: JitterConfig,
    /// Our synchronisation source (random, chosen by the caller).
    pub ssrc: Ssrc,
    /// First sequence number we send (random).
    pub first_seq: u16,
    /// First timestamp we send (random).
    pub first_ts: u32,
    /// RTCP canonical name.
    pub cname: String,
    /// Mean interval between our RTCP reports (RFC 3550 recommends 5 s), randomised ±50 %.
    pub rtcp_interval: Duration,
    /// Report [`crate::session::MediaEvent::Inactive`] after this long without RTP, when receiving.
    pub inactivity: Option<Duration>,
    /// Most audio queued for playback; [`crate::session::MediaSession::push_pcm`] takes no more.
    pub playback_capacity: Duration,
    /// Fade-out applied when playback is flushed (barge-in), so the cut does not click.
    pub flush_fade: Duration,
    /// Silence between DTMF digits we send.
    pub dtmf_gap: Duration,
    /// Volume of the DTMF we send, -dBm0.
    pub dtmf_volume: u8,
    /// A received DTMF event with no packet for this long has ended.
    pub dtmf_timeout: Duration,
    /// Wall-clock (NTP) time at the moment the session is created, for RTCP sender reports.
    pub wallclock: NtpTime,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            law: Law::Alaw,
            payload_type: None,
            telephone_event: Some(101),
            ptime: Duration::from_millis(20),
            pull_rate: 16_000,
            push_rate: 16_000,
            jitter: JitterConfig::default(),
            ssrc: Ssrc(0x4A47_5731),
            first_seq: 1,
            first_ts: 0,
            cname: "happ-gateway".into(),
            rtcp_interval: Duration::from_secs(5),
            inactivity: Some(Duration::from_secs(30)),
            playback_capacity: Duration::from_secs(10),
            flush_fade: Duration::from_millis(4),
            dtmf_gap: Duration::from_millis(60),
            dtmf_volume: 10,
            dtmf_timeout: Duration::from_millis(300),
            wallclock: NtpTime::default(),
        }
    }
}
