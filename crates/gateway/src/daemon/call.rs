//! A call as the SIP task holds it: its leg's state, its media, its deadlines, and what the
//! control API shows of it.

use std::time::{Instant, SystemTime};

use happ_sip::sdp::{LocalMedia, Negotiated, SessionDescription};

use super::channels::CommandSender;
use super::media_setup::Sockets;

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Inbound: not answered yet; outbound: no final answer yet.
    Ringing,
    /// Answered (a 200 sent or received).
    Answered,
}

/// A call in progress.
pub struct Call {
    /// Our identifier (the control API's).
    pub id: String,
    /// The slot of its phone (kept while the call lasts, even if the phone is removed).
    pub phone: usize,
    /// Whether the peer called us.
    pub inbound: bool,
    /// The other party's number or URI.
    pub remote: String,
    /// Ringing or answered.
    pub state: CallState,
    /// When the call started (INVITE received or sent).
    pub started: SystemTime,
    /// When it was answered.
    pub answered: Option<SystemTime>,
    /// The RTP port of its pair in the pool.
    pub rtp_port: u16,
    /// Our side of the SDP.
    pub local: LocalMedia,
    /// Our offer (outbound calls, or an inbound INVITE without SDP).
    pub offer: Option<SessionDescription>,
    /// What the offer/answer settled.
    pub negotiated: Option<Negotiated>,
    /// Sockets bound for the call, until its media task takes them.
    pub sockets: Option<Sockets>,
    /// Commands to its media task, once started.
    pub media: Option<CommandSender>,
    /// When an unanswered outbound call gives up.
    pub ring_deadline: Option<Instant>,
    /// An inbound call ringing before it is answered (`answerDelayMs`): when, and the SDP
    /// answer (or offer) ready for the 200 with what it negotiated.
    pub answer_at: Option<(Instant, Vec<u8>, Option<Negotiated>)>,
    /// When the call is hung up whatever happens (`calls.max_duration_secs`).
    pub end_deadline: Instant,
    /// The SIP Call-ID.
    pub sip_call_id: String,
    /// The SIP status of a call that failed.
    pub status: Option<u16>,
    /// Why it ended or failed.
    pub reason: Option<String>,
    /// The call's chat at the platform (its outbox key), once mirrored.
    pub chat: Option<String>,
    /// The call's tracing span: everything logged about the call, by the SIP task or its media
    /// task, carries its id and SIP Call-ID.
    pub span: tracing::Span,
}

impl Call {
    /// `inbound` or `outbound`, as metrics and the control API name it.
    #[must_use]
    pub fn direction(&self) -> &'static str {
        if self.inbound { "inbound" } else { "outbound" }
    }

    /// The next instant the call needs attention: a delayed answer, a ring timeout, its maximum
    /// duration.
    #[must_use]
    pub fn next_deadline(&self) -> Instant {
        [self.ring_deadline, self.answer_at.as_ref().map(|a| a.0)].into_iter().flatten().fold(self.end_deadline, Instant::min)
    }
}

/// The outcome counted for a call that ends without a failure status: `answered` once it was,
/// else `cancelled` (also for a call no longer known).
#[must_use]
pub fn outcome(call: Option<&Call>) -> &'static str {
    if call.is_some_and(|c| c.state == CallState::Answered) { "answered" } else { "cancelled" }
}
