//! What a media session tells its driver: packets to send, frames, events.

use std::time::Duration;

use crate::dtmf::{Digit, DtmfEvent};
use crate::jitter::FrameKind;
use crate::units::Ssrc;

/// Whether a transmit is RTP or RTCP (they go to different ports unless multiplexed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// To the peer's RTP port.
    Rtp,
    /// To the peer's RTCP port.
    Rtcp,
}

/// A packet written into the caller's buffer by `poll_transmit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Which port it goes to.
    pub kind: PacketKind,
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

/// A frame given by `pull_pcm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// Whether it holds received audio, concealment or silence.
    pub kind: FrameKind,
    /// Samples written (a frame at the pull rate).
    pub len: usize,
    /// Media time of the frame's first sample since the session started, with the resampler's
    /// delay taken off: the time line for transcripts.
    pub at: Duration,
    /// How long the frame's audio has been here: from its packet's arrival to now (the jitter
    /// buffer's wait and the pull's lateness). Zero for silence.
    pub waited: Duration,
}

/// Something that happened in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF key went down or up.
    Dtmf(DtmfEvent),
    /// A DTMF digit we sent has been fully sent.
    DtmfSent(Digit),
    /// The first RTP packet arrived, from this source.
    RemoteStarted(Ssrc),
    /// The remote source changed (a re-INVITE to another media server, a transfer).
    SsrcChanged {
        /// The source before.
        old: Ssrc,
        /// The source now.
        new: Ssrc,
    },
    /// No RTP for the configured inactivity time while expecting it.
    Inactive,
    /// RTP is flowing again after [`MediaEvent::Inactive`].
    Resumed,
    /// The remote source sent an RTCP BYE.
    RemoteBye,
}

/// A bounded queue of events: when full, the oldest is dropped (and counted), since the newest
/// state matters more to a call than the history.
#[derive(Clone, Debug)]
pub(crate) struct EventQueue {
    items: [Option<MediaEvent>; Self::CAPACITY],
    head: usize,
    len: usize,
    pub(crate) dropped: u64,
}

impl EventQueue {
    const CAPACITY: usize = 32;

    pub(crate) fn new() -> Self {
        EventQueue { items: [None; Self::CAPACITY], head: 0, len: 0, dropped: 0 }
    }

    pub(crate) fn push(&mut self, e: MediaEvent) {
        if self.len == Self::CAPACITY {
            self.head = (self.head + 1) % Self::CAPACITY;
            self.len -= 1;
            self.dropped += 1;
        }
        self.items[(self.head + self.len) % Self::CAPACITY] = Some(e);
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<MediaEvent> {
        if self.len == 0 {
            return None;
        }
        let e = self.items[self.head].take();
        self.head = (self.head + 1) % Self::CAPACITY;
        self.len -= 1;
        e
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn events_stay_small() {
        // Events are copied around the driver loop; keep them at a few words.
        assert!(std::mem::size_of::<MediaEvent>() <= 24, "{}", std::mem::size_of::<MediaEvent>());
    }

    #[test]
    fn queue_drops_the_oldest_when_full() {
        let mut q = EventQueue::new();
        for i in 0..40u32 {
            q.push(MediaEvent::RemoteStarted(Ssrc(i)));
        }
        assert_eq!(q.dropped, 8);
        assert_eq!(q.pop(), Some(MediaEvent::RemoteStarted(Ssrc(8))));
        let rest = std::iter::from_fn(|| q.pop()).count();
        assert_eq!(rest, 31);
    }
}
