//! What the SIP task and a call's media task say to each other, and the channels that carry it.
//!
//! Neither side may wait on the other: the SIP task serves every call and every phone, and a
//! media task's loop paces RTP every 20 ms. Neither side may lose a message either: a lost
//! `Stop` leaks a task and its ports, a lost `Hangup` leaves a dead call up until its maximum
//! duration. So:
//!
//! - **SIP task → media task** ([`MediaCommand`]): an unbounded channel per call. Its volume is
//!   bounded by the signalling that produces it: one command per re-INVITE (each a SIP
//!   transaction that waits for our answer) or platform event, and one `Stop`. The media task
//!   drains it every loop turn. Dropping the sender stops the task too, so a call forgotten by
//!   the SIP task cannot leave its media running.
//! - **media task → SIP task** ([`MediaNote`]): one bounded channel shared by every call
//!   ([`NOTES`] notes). A task never waits on it: [`Notes::push`] queues a note locally when the
//!   channel is full, logs that once, and [`Notes::send_pending`] (a branch of the task's
//!   `select!`) hands the queue over in order as room appears.
//!
//! A new message is a new variant of [`MediaCommand`] or [`MediaNote`]; the channels do not
//! change.

use std::collections::VecDeque;
use std::net::SocketAddr;

use happ_media::Law;
use happ_media::session::{Direction, MediaStats};
use happ_sip::endpoint::LegId;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::warn;

/// Capacity of the channel of notes from every media task to the SIP task. The SIP task reads it
/// between SIP messages, so it fills only when that task lags far behind; see [`Notes`].
pub const NOTES: usize = 1024;

/// Changes the SIP side makes to a running call (re-INVITE: hold, resume, codec change).
#[derive(Debug, Clone)]
pub enum MediaCommand {
    /// New remote addresses, codec or direction.
    Update {
        /// Remote RTP address from the new SDP.
        rtp: SocketAddr,
        /// Remote RTCP address.
        rtcp: SocketAddr,
        /// Codec we send.
        law: Law,
        /// Its payload type.
        payload_type: u8,
        /// Telephone-event payload type.
        telephone_event: Option<u8>,
        /// Media direction.
        direction: Direction,
    },
    /// The call was answered (an outbound call whose media started with early media): the
    /// conversation starts.
    Answered,
    /// A keypad digit sent by SIP INFO.
    Dtmf(char),
    /// End the task (sending an RTCP BYE).
    Stop,
}

/// What a media task tells the SIP task.
#[derive(Debug)]
pub enum MediaNote {
    /// The call should end, for this reason.
    Hangup {
        /// The call.
        leg: LegId,
        /// Why.
        reason: String,
    },
    /// What an assistant call reports: transcript entries, latencies, a hand-off, a provider
    /// failure. In order, and before the call's `Done`.
    Call {
        /// The call.
        leg: LegId,
        /// What happened.
        note: Box<crate::assistant::driver::CallNote>,
    },
    /// The task ended; its final statistics.
    Done {
        /// The call.
        leg: LegId,
        /// Statistics.
        stats: Box<MediaStats>,
    },
}

/// The SIP task's end of a call's commands.
pub type CommandSender = mpsc::UnboundedSender<MediaCommand>;
/// The media task's end of its commands.
pub type CommandReceiver = mpsc::UnboundedReceiver<MediaCommand>;

/// The channel of one call's commands (unbounded: see the module documentation).
pub fn commands() -> (CommandSender, CommandReceiver) {
    mpsc::unbounded_channel()
}

/// The channel of every media task's notes ([`NOTES`] notes).
pub fn notes() -> (mpsc::Sender<MediaNote>, mpsc::Receiver<MediaNote>) {
    mpsc::channel(NOTES)
}

/// A media task's sending end of the notes: never waits, never drops a note while the SIP task
/// listens.
pub struct Notes {
    tx: mpsc::Sender<MediaNote>,
    /// Notes the channel had no room for, oldest first.
    pending: VecDeque<MediaNote>,
    /// Whether the channel was ever found full (logged once per task).
    overflowed: bool,
}

impl Notes {
    /// Sends through `tx`.
    pub fn new(tx: mpsc::Sender<MediaNote>) -> Notes {
        Notes { tx, pending: VecDeque::new(), overflowed: false }
    }

    /// Sends `note` now if the channel has room (and nothing is queued before it), else queues
    /// it for [`send_pending`](Self::send_pending). A note for a SIP task that has stopped is
    /// dropped: nobody is left to act on it.
    pub fn push(&mut self, note: MediaNote) {
        if !self.pending.is_empty() {
            self.pending.push_back(note);
            return;
        }
        match self.tx.try_send(note) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(note)) => {
                if !self.overflowed {
                    self.overflowed = true;
                    warn!(capacity = NOTES, "the SIP task lags behind the media tasks: media notes queue in the call's task");
                }
                self.pending.push_back(note);
            }
        }
    }

    /// Whether notes wait for room in the channel.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Waits for room in the channel and sends the oldest queued note. Cancel-safe: a note
    /// leaves the queue only once it has its place in the channel, so this can be a branch of a
    /// `select!` that other branches win.
    pub async fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        match self.tx.reserve().await {
            Ok(permit) => {
                if let Some(note) = self.pending.pop_front() {
                    permit.send(note);
                }
            }
            // The SIP task has stopped.
            Err(_) => self.pending.clear(),
        }
    }

    /// Sends the queued notes, then `last`, waiting for room as long as it takes: for the end of
    /// the task, when there is no RTP left to pace.
    pub async fn finish(mut self, last: MediaNote) {
        self.pending.push_back(last);
        for note in self.pending.drain(..) {
            if self.tx.send(note).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hangup(n: u64) -> MediaNote {
        MediaNote::Hangup { leg: LegId(n), reason: format!("reason {n}") }
    }

    fn leg(note: &MediaNote) -> u64 {
        match note {
            MediaNote::Hangup { leg, .. } | MediaNote::Call { leg, .. } | MediaNote::Done { leg, .. } => leg.0,
        }
    }

    #[tokio::test]
    async fn a_full_channel_queues_notes_in_order_without_waiting() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut notes = Notes::new(tx);
        for n in 0..5 {
            notes.push(hangup(n));
        }
        assert!(notes.has_pending(), "three notes did not fit");
        let mut got = Vec::new();
        while notes.has_pending() {
            got.push(leg(&rx.recv().await.expect("a note")));
            notes.send_pending().await;
        }
        notes.push(hangup(5));
        // The end of the task waits for room: the SIP task reads meanwhile.
        let read = async {
            while let Some(note) = rx.recv().await {
                got.push(leg(&note));
            }
        };
        tokio::join!(notes.finish(MediaNote::Done { leg: LegId(6), stats: Box::default() }), read);
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6], "nothing lost, nothing reordered");
    }

    #[tokio::test]
    async fn a_cancelled_send_pending_keeps_its_note() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut notes = Notes::new(tx);
        notes.push(hangup(0));
        notes.push(hangup(1));
        // The channel is full: the send cannot complete, and is abandoned as a select! would.
        let abandoned = tokio::time::timeout(std::time::Duration::from_millis(10), notes.send_pending()).await;
        assert!(abandoned.is_err());
        assert_eq!(leg(&rx.recv().await.expect("first")), 0);
        notes.send_pending().await;
        assert_eq!(leg(&rx.recv().await.expect("second")), 1);
        assert!(!notes.has_pending());
    }

    #[tokio::test]
    async fn notes_to_a_stopped_sip_task_are_dropped() {
        let (tx, rx) = mpsc::channel(1);
        let mut notes = Notes::new(tx);
        notes.push(hangup(0));
        notes.push(hangup(1));
        drop(rx);
        notes.send_pending().await;
        assert!(!notes.has_pending());
        notes.push(hangup(2));
        assert!(!notes.has_pending());
    }

    #[tokio::test]
    async fn dropping_the_command_sender_ends_the_stream() {
        let (tx, mut rx) = commands();
        tx.send(MediaCommand::Stop).expect("open");
        drop(tx);
        assert!(matches!(rx.recv().await, Some(MediaCommand::Stop)));
        assert!(rx.recv().await.is_none(), "a media task sees the end and stops");
    }
}
