//! Telling the assistant's own voice, echoed back by the caller's phone, from the caller's
//! speech, using what the gateway itself sent.
//!
//! A phone returns some of what it plays: the line's hybrid (typically 15-30 dB down, G.168
//! requires at least 6 dB), a speakerphone's loudspeaker into its microphone (often much less
//! attenuated when the phone has no echo canceller). A voice detector hears that echo as speech,
//! and an assistant that takes it for a barge-in interrupts itself every couple of seconds
//! (pipecat#1771, #1626).
//!
//! The gateway owns the send clock, so it knows the level of every frame it sent and when. The
//! guard keeps the levels of the last [`EchoGuard::TAIL`] of sent frames; the loudest of them is
//! the most an echo can carry now (whatever the echo path's delay within the tail). A heard
//! frame is echo-like when it is no louder than that maximum plus the echo path's gain plus
//! [`EchoGuard::MARGIN_DB`]: a frame-level double-talk detector in the manner of Geigel's (which
//! compares against the recent maximum with a fixed 6 dB), with the gain learned per call:
//!
//! - while frames are echo-like, the gain follows a high quantile of their heard-minus-sent
//!   differences (the caller is silent most of the time the assistant speaks), coming down
//!   faster the farther below it they are (a line without echo is learned in under a second);
//!   frames judged to be the caller do not move it, so double talk cannot teach the guard to
//!   ignore the caller;
//! - an echo louder than the assumed gain allows (a speakerphone without echo cancelling) makes
//!   a barge-in that no words confirm: the conversation resumes playback and calls
//!   [`EchoGuard::learn_false_interruption`], which raises the gain to what those frames
//!   measured, so the same echo does not interrupt again.
//!
//! It costs a few comparisons per 20 ms frame.

/// Frames of 20 ms.
const FRAME_MS: usize = 20;

/// Levels in dB relative to full scale power.
fn db(power: f32) -> f32 {
    10.0 * power.max(1e-10).log10()
}

/// The echo guard of one call; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct EchoGuard {
    /// dB levels of the last sent frames, a ring.
    sent: [f32; EchoGuard::TAIL_FRAMES],
    head: usize,
    /// Learned echo gain: heard level minus the recent sent maximum, dB.
    gain_db: f32,
    /// Frames updated the gain with.
    learned: u32,
    /// Frames heard in a row while something was sent.
    sending: u32,
    /// The largest heard-minus-sent difference of the frames judged to be the caller, over the
    /// last [`EchoGuard::TAIL_FRAMES`] frames: what an echo that caused a false barge-in measured.
    loud: [f32; EchoGuard::TAIL_FRAMES],
    /// dB levels of the echo-like frames heard over the tail (`f32::MIN` for the others).
    heard: [f32; EchoGuard::TAIL_FRAMES],
    loud_head: usize,
}

impl Default for EchoGuard {
    fn default() -> Self {
        EchoGuard {
            sent: [Self::SILENT_DB; Self::TAIL_FRAMES],
            head: 0,
            gain_db: Self::INITIAL_GAIN_DB,
            learned: 0,
            sending: 0,
            loud: [f32::MIN; Self::TAIL_FRAMES],
            heard: [f32::MIN; Self::TAIL_FRAMES],
            loud_head: 0,
        }
    }
}

impl EchoGuard {
    /// Frames of sent audio remembered: an echo path up to 500 ms long (mobile networks and
    /// VoIP legs add 100-300 ms of delay to the acoustic path).
    pub const TAIL_FRAMES: usize = 25;
    /// [`Self::TAIL_FRAMES`] as a duration.
    pub const TAIL: std::time::Duration = std::time::Duration::from_millis((Self::TAIL_FRAMES * FRAME_MS) as u64);
    /// Sent frames quieter than this (dBFS) cannot make an audible echo.
    const SILENT_DB: f32 = -55.0;
    /// Assumed echo gain before anything is learned: a line echo is typically 15-30 dB down;
    /// with the margin, a caller 6 dB below the assistant's loudest recent frame still barges in.
    const INITIAL_GAIN_DB: f32 = -12.0;
    /// A frame louder than the predicted echo by more than this is the caller.
    pub const MARGIN_DB: f32 = 6.0;
    /// The quantile of heard-minus-sent differences the gain follows, and its step.
    const QUANTILE: f32 = 0.9;
    const STEP_DB: f32 = 0.5;

    /// Records the level (mean square of full scale, as
    /// `happ_media::session::MediaSession::last_sent_power` gives it) of a frame just sent.
    pub fn on_sent(&mut self, power: f32) {
        self.sent[self.head] = db(power);
        self.head = (self.head + 1) % Self::TAIL_FRAMES;
    }

    /// The loudest sent frame within the tail, dBFS.
    fn reference_db(&self) -> f32 {
        self.sent.iter().copied().fold(f32::MIN, f32::max)
    }

    /// Judges a frame heard from the caller (mean square of full scale): `true` when it may be
    /// the echo of what was sent and nothing louder.
    pub fn on_heard(&mut self, power: f32) -> bool {
        let reference = self.reference_db();
        if reference <= Self::SILENT_DB {
            self.sending = 0;
            // Nothing sent lately: the record of loud frames stays as it was for
            // `learn_false_interruption` (playback is paused while a barge-in is reviewed).
            return false;
        }
        self.loud_head = (self.loud_head + 1) % Self::TAIL_FRAMES;
        self.loud[self.loud_head] = f32::MIN;
        self.heard[self.loud_head] = f32::MIN;
        self.sending = self.sending.saturating_add(1);
        let heard = db(power);
        let difference = heard - reference;
        let echo_like = difference <= self.gain_db + Self::MARGIN_DB;
        // The echo path's gain is measured window against window: the loudest echo-like frame
        // heard over the tail against the loudest frame sent. Frame against frame would see the
        // quiet echo of the gaps between words and learn an echo far weaker than the words'.
        self.heard[self.loud_head] = if echo_like { heard } else { f32::MIN };
        if echo_like {
            let estimate = self.heard.iter().copied().fold(f32::MIN, f32::max) - reference;
            if estimate > self.gain_db {
                self.gain_db += Self::STEP_DB * Self::QUANTILE;
            } else if self.sending >= Self::TAIL_FRAMES as u32 {
                // Far below, with audio sent for longer than any echo takes to come back (a line
                // with little or no echo): come down fast, since a guard that assumes a loud echo
                // keeps a quiet caller from barging in.
                self.gain_db -= (Self::STEP_DB * (1.0 - Self::QUANTILE)).max((self.gain_db - estimate) * 0.05);
            } else {
                self.gain_db -= Self::STEP_DB * (1.0 - Self::QUANTILE);
            }
            self.gain_db = self.gain_db.clamp(-60.0, 6.0);
            self.learned += 1;
        } else {
            self.loud[self.loud_head] = difference;
        }
        echo_like
    }

    /// A barge-in decided on the frames just heard proved false (no words followed): if they
    /// were loud only relative to what was being sent, take them for echo from now on.
    pub fn learn_false_interruption(&mut self) {
        let loudest = self.loud.iter().copied().fold(f32::MIN, f32::max);
        if loudest > f32::MIN {
            self.gain_db = self.gain_db.max(loudest - Self::MARGIN_DB + 1.0).min(6.0);
        }
    }

    /// The learned echo gain, dB (negative: the echo is that much below what was sent).
    pub fn gain_db(&self) -> f32 {
        self.gain_db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_sent_means_nothing_is_echo() {
        let mut g = EchoGuard::default();
        assert!(!g.on_heard(0.01));
        g.on_sent(0.0);
        assert!(!g.on_heard(0.0001));
    }

    #[test]
    fn an_echo_is_recognised_and_a_louder_caller_is_not() {
        let mut g = EchoGuard::default();
        // 2 s of our speech at -20 dBFS, its echo 12 dB down with 100 ms delay.
        let ours = |i: usize| if (i / 10) % 3 == 2 { 0.0 } else { 0.01 };
        let mut echo_frames = 0;
        for i in 0..100 {
            g.on_sent(ours(i));
            let echo = if i >= 5 { ours(i - 5) * 0.063 } else { 0.0 };
            if g.on_heard(echo + 1e-7) {
                echo_frames += 1;
            }
        }
        assert!(echo_frames > 60, "{echo_frames}");
        assert!(g.gain_db() < -6.0, "learned {}", g.gain_db());
        // The caller speaking at our level over the echo is not echo, and does not move the
        // learned gain.
        let learned = g.gain_db();
        for _ in 0..30 {
            g.on_sent(0.01);
            assert!(!g.on_heard(0.01 + 0.0006));
        }
        assert_eq!(g.gain_db(), learned);
    }

    #[test]
    fn a_line_without_echo_is_learned_quickly() {
        let mut g = EchoGuard::default();
        for _ in 0..50 {
            g.on_sent(0.06);
            g.on_heard(1e-9);
        }
        assert!(g.gain_db() < -40.0, "{}", g.gain_db());
        // A quiet caller (26 dB below what is sent) then counts as the caller.
        g.on_sent(0.06);
        assert!(!g.on_heard(0.00015));
    }

    #[test]
    fn a_loud_echo_is_learned_from_a_false_interruption() {
        let mut g = EchoGuard::default();
        // A speakerphone: the echo 2 dB below what was sent.
        let mut caller_like = 0;
        for _ in 0..20 {
            g.on_sent(0.01);
            if !g.on_heard(0.0063) {
                caller_like += 1;
            }
        }
        assert_eq!(caller_like, 20, "an unknown loud echo sounds like the caller");
        g.learn_false_interruption();
        for _ in 0..20 {
            g.on_sent(0.01);
            assert!(g.on_heard(0.0063));
        }
    }
}
