//! The caller's side of the turn: their voice frame by frame, their words as the recogniser gives
//! them, their digits.

use std::time::{Duration, Instant};

use crate::keypad::Keypad;

/// The length of a frame.
pub(crate) const FRAME: Duration = Duration::from_millis(20);

/// Unvoiced time inside a burst of voice that does not end it (a stop consonant's closure; the
/// detector's own hold covers most of these).
const BURST_GAP: Duration = Duration::from_millis(40);

#[derive(Debug, Default)]
pub(crate) struct Caller {
    /// Voice (not echo) in the current burst.
    pub(crate) voiced_run: Duration,
    /// Unvoiced time since the last voiced frame.
    pub(crate) gap: Duration,
    /// The caller holds a turn: a burst reached the minimum speech.
    pub(crate) speaking: bool,
    pub(crate) last_voice: Option<Instant>,
    /// The end-of-speech mark was given for the current silence.
    pub(crate) end_of_speech_sent: bool,
    /// Voice was heard since the last turn: words without any voice are a recogniser's
    /// hallucination on line noise, not the caller.
    pub(crate) voiced_in_turn: bool,
    /// Final words of the turn so far.
    pub(crate) finals: String,
    /// The latest hypothesis after them.
    pub(crate) partial: String,
    pub(crate) last_final: Option<Instant>,
    /// The recogniser's endpointing said the turn ended.
    pub(crate) end_of_turn_hint: bool,
    /// Digits ended while the caller spoke: they join the spoken turn.
    pub(crate) digits: Vec<String>,
    pub(crate) keypad: Keypad,
}

impl Caller {
    /// A frame: voice (the detector's label, with its hold over syllable dips) and not our echo,
    /// or not; `heard` when the frame itself carried voice, with the time it arrived. Returns
    /// whether a turn began with it.
    pub(crate) fn frame(&mut self, voiced: bool, heard: Option<Instant>, min_speech: Duration) -> bool {
        if let Some(at) = heard {
            // The silence after the caller's last word is timed from the last frame that carried
            // voice, as it arrived: not from the end of the label's hold, nor from playout.
            self.last_voice = Some(self.last_voice.map_or(at, |v| v.max(at)));
        }
        if voiced {
            if self.gap > BURST_GAP {
                self.voiced_run = Duration::ZERO;
            }
            self.voiced_run += FRAME;
            self.gap = Duration::ZERO;
            self.end_of_speech_sent = false;
            self.voiced_in_turn = true;
            if !self.speaking && self.voiced_run >= min_speech {
                self.speaking = true;
                return true;
            }
        } else {
            self.gap += FRAME;
            if self.gap > BURST_GAP {
                self.voiced_run = Duration::ZERO;
            }
        }
        false
    }

    /// Words from the recogniser.
    pub(crate) fn words(&mut self, now: Instant, text: &str, is_final: bool, end_of_turn: bool) {
        if is_final {
            if !text.trim().is_empty() {
                if !self.finals.is_empty() {
                    self.finals.push(' ');
                }
                self.finals.push_str(text.trim());
            }
            self.partial.clear();
            self.last_final = Some(now);
            self.end_of_turn_hint |= end_of_turn;
        } else {
            text.trim().clone_into(&mut self.partial);
        }
    }

    /// Words of the turn so far: the finals, and the partial after them.
    pub(crate) fn text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.finals.is_empty() {
            parts.push(&self.finals);
        }
        if !self.partial.is_empty() {
            parts.push(&self.partial);
        }
        parts.join(" ")
    }

    /// Something of a turn is here: voice, words or digits.
    pub(crate) fn pending(&self) -> bool {
        self.speaking || !self.finals.is_empty() || !self.partial.is_empty() || !self.digits.is_empty()
    }

    /// The recogniser has given its final words for everything said so far.
    pub(crate) fn transcribed(&self) -> bool {
        self.end_of_turn_hint || matches!((self.last_final, self.last_voice), (Some(f), Some(v)) if f >= v)
    }

    /// Starts the next turn: the words and digits are taken; voice continues to be tracked.
    pub(crate) fn take_turn(&mut self) -> String {
        let mut text = self.text();
        for digits in self.digits.drain(..) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&crate::keypad::as_text(&digits));
        }
        self.finals.clear();
        self.partial.clear();
        self.end_of_turn_hint = false;
        self.speaking = false;
        self.voiced_in_turn = false;
        text
    }

    /// Voice was heard within `window` before `now`.
    pub(crate) fn voiced_within(&self, now: Instant, window: Duration) -> bool {
        self.last_voice.is_some_and(|v| now.saturating_duration_since(v) <= window)
    }

    /// Forgets the words heard so far (a backchannel, our own echo, a false interruption).
    pub(crate) fn forget_words(&mut self) {
        self.finals.clear();
        self.partial.clear();
        self.end_of_turn_hint = false;
    }
}
