//! Voice activity detection on 20 ms frames of 8 kHz or 16 kHz speech, for turn-taking.
//!
//! Each frame gives three band levels (full band, a comb band without hum, a low band with
//! less white noise; see [`features`]), each compared with its own adaptive noise floor. The
//! largest of the three margins
//! above the floor makes the frame *voiced*, with hysteresis: [`VadConfig::start_db`] to become
//! voiced, [`VadConfig::stay_db`] to stay voiced. A voiced frame holds for [`FRAME_HOLD`] frames so
//! that the short dips between syllables read as speech.
//!
//! The turn is a state machine on top:
//!
//! ```text
//!            voiced                     voiced for min_speech
//!   Silence ───────▶ Onset ──────────────────────────────────▶ Speech   (emits SpeechStart)
//!      ▲               │ unvoiced for more than ONSET_GAP          │
//!      └───────────────┘                                           │ unvoiced for hangover
//!      ▲                                                           │ (emits SpeechEnd)
//!      └───────────────────────────────────────────────────────────┘
//! ```
//!
//! A cough or a click shorter than [`VadConfig::min_speech`] never takes the turn; a pause shorter
//! than [`VadConfig::hangover`] never ends it.
//!
//! The detector is sans-IO: frames in, decisions out, no clock, no allocation after
//! [`Vad::new`], no lock. The cost is a few vectorized passes over the frame and three logarithms.

pub mod eval;
mod features;

use std::time::Duration;

use features::{Bands, Floor, Levels};

/// The frame length the detector counts in.
pub const FRAME: Duration = Duration::from_millis(20);

/// Frames a voiced frame holds the frame decision after it (60 ms): bridges the dips between
/// syllables and stop closures, which are speech for turn-taking and for the labels alike.
pub const FRAME_HOLD: u32 = 3;

/// Unvoiced frames an onset survives (40 ms): a plosive's closure inside the first syllable
/// must not restart the count.
const ONSET_GAP: u32 = 2;

/// Weight of a frame in the running mean and mean square of the full-band level (about 200 ms).
const STEADY_WEIGHT: f32 = 0.1;

/// Variance of the full-band level (dB²) below which the signal is steady: stationary noise
/// varies by about 0.5 dB from frame to frame, speech by 5-10 dB at the syllable rate.
const STEADY_VARIANCE: f32 = 1.5 * 1.5;

/// How the detector decides. [`VadConfig::new`] gives the defaults for a sample rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VadConfig {
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Voice needed before [`VadEvent::SpeechStart`] (barge-in): long enough that a cough,
    /// a click or a door does not take the turn. Default 120 ms.
    pub min_speech: Duration,
    /// Silence needed before [`VadEvent::SpeechEnd`] (end of turn): longer than the pauses
    /// between a caller's phrases. Default 600 ms.
    pub hangover: Duration,
    /// dB above the noise floor for an unvoiced frame to become voiced. Default 6 dB: stationary
    /// noise varies by about 0.5 dB from frame to frame, so this is still far above its jitter.
    pub start_db: f32,
    /// dB above the noise floor for a voiced frame to stay voiced. Default 3 dB.
    pub stay_db: f32,
    /// Frames quieter than this (dBFS) are never voiced, however quiet the floor: G.711
    /// idle noise and dither are not speech. Default -60 dBFS.
    pub min_level_dbfs: f32,
    /// How fast the noise floor may rise, in dB per second, while the level moves like speech.
    /// Slow, so that long speech does not raise the floor into itself. Default 2.
    pub floor_rise_db_per_s: f32,
    /// How fast the noise floor may rise while the level is steady (its variance over about
    /// 200 ms under 1.5 dB²): a noise that got louder (a fan, a street) is taken in within a
    /// second or two instead of holding the turn. Default 10.
    pub steady_rise_db_per_s: f32,
}

impl VadConfig {
    /// The defaults at `sample_rate`.
    pub const fn new(sample_rate: u32) -> Self {
        VadConfig {
            sample_rate,
            min_speech: Duration::from_millis(120),
            hangover: Duration::from_millis(600),
            start_db: 6.0,
            stay_db: 3.0,
            min_level_dbfs: -60.0,
            floor_rise_db_per_s: 2.0,
            steady_rise_db_per_s: 10.0,
        }
    }
}

impl Default for VadConfig {
    /// The defaults at 8 kHz.
    fn default() -> Self {
        VadConfig::new(8_000)
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum VadError {
    /// Only 8 and 16 kHz are supported.
    #[error("unsupported sample rate {0} Hz: the detector runs at 8000 or 16000 Hz")]
    Rate(u32),
    /// `stay_db` above `start_db` would make the hysteresis oscillate.
    #[error("stay_db ({stay}) must not exceed start_db ({start})")]
    Hysteresis {
        /// The configured `start_db`.
        start: f32,
        /// The configured `stay_db`.
        stay: f32,
    },
    /// A threshold or rate is not a finite number, or a rise rate is negative.
    #[error("thresholds and the floor rise rate must be finite, the rise rate non-negative")]
    NotFinite,
}

/// A change of turn, reported by the frame that decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VadEvent {
    /// The caller started speaking; `since` is how long ago the voice began (at least
    /// `min_speech`), so a recorder can keep the onset.
    SpeechStart {
        /// Time from the first voiced frame of the onset to the end of this frame.
        since: Duration,
    },
    /// The caller stopped speaking: `silence` (the hangover) has passed since the last voice.
    SpeechEnd {
        /// Time from the end of the last voiced frame to the end of this frame.
        silence: Duration,
    },
}

/// The detector's verdict on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VadDecision {
    /// This frame is voice (with hysteresis and the [`FRAME_HOLD`] hold): the frame-level label.
    pub voice: bool,
    /// This frame itself cleared the threshold (no hold): where the voice really ended, for
    /// timing the silence after it.
    pub voiced: bool,
    /// The caller holds the turn (between `SpeechStart` and `SpeechEnd`).
    pub speaking: bool,
    /// The turn changed with this frame.
    pub event: Option<VadEvent>,
}

/// The turn state; each variant counts frames since its own start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    /// No speech.
    Silence,
    /// Voice began `frames` ago, `voiced` of them voiced, the last `gap` unvoiced.
    Onset { frames: u32, voiced: u32, gap: u32 },
    /// Speaking; the last `silent` frames were not voiced.
    Speech { silent: u32 },
}

/// A voice activity detector for one audio stream. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Vad {
    config: VadConfig,
    bands: Bands,
    full_floor: Floor,
    comb_floor: Floor,
    low_floor: Floor,
    rise_per_frame: f32,
    steady_rise_per_frame: f32,
    /// Running mean and mean square of the full-band level (`None` before the first frame).
    moments: Option<(f32, f32)>,
    min_speech_frames: u32,
    hangover_frames: u32,
    /// The last frame passed the voicing threshold (selects `stay_db` over `start_db`).
    voiced: bool,
    /// Frames left of the hold after the last voiced frame.
    hold: u32,
    turn: Turn,
}

impl Vad {
    /// A detector; all its memory is allocated here.
    ///
    /// The noise floors start at the first frame's levels, so a caller who speaks from the very
    /// first frame is heard from the first dip between syllables on; a noisy line never starts
    /// with a false turn.
    pub fn new(config: VadConfig) -> Result<Vad, VadError> {
        let scale = match config.sample_rate {
            8_000 => 1,
            16_000 => 2,
            other => return Err(VadError::Rate(other)),
        };
        let finite =
            [config.start_db, config.stay_db, config.min_level_dbfs, config.floor_rise_db_per_s, config.steady_rise_db_per_s].iter().all(|x| x.is_finite());
        if !finite || config.floor_rise_db_per_s < 0.0 || config.steady_rise_db_per_s < 0.0 {
            return Err(VadError::NotFinite);
        }
        if config.stay_db > config.start_db {
            return Err(VadError::Hysteresis { start: config.start_db, stay: config.stay_db });
        }
        Ok(Vad {
            config,
            bands: Bands::new(scale),
            full_floor: Floor::new(),
            comb_floor: Floor::new(),
            low_floor: Floor::new(),
            rise_per_frame: config.floor_rise_db_per_s * FRAME.as_secs_f32(),
            steady_rise_per_frame: config.steady_rise_db_per_s * FRAME.as_secs_f32(),
            moments: None,
            min_speech_frames: frames(config.min_speech).max(1),
            hangover_frames: frames(config.hangover).max(1),
            voiced: false,
            hold: 0,
            turn: Turn::Silence,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Whether the caller holds the turn.
    pub fn speaking(&self) -> bool {
        matches!(self.turn, Turn::Speech { .. })
    }

    /// The full-band noise floor in dBFS, once a frame was seen (for diagnostics).
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        self.full_floor.level()
    }

    /// Forgets the noise floor and the turn, as for a new call.
    pub fn reset(&mut self) {
        // Invariant: the configuration was validated by `new`.
        *self = Vad::new(self.config).expect("a configuration accepted once is accepted again");
    }

    /// Decides on one 20 ms frame (160 samples at 8 kHz, 320 at 16 kHz). Frames of another
    /// length are measured all the same but still count as 20 ms in the durations; an empty frame
    /// is silence.
    #[must_use]
    pub fn process(&mut self, frame: &[i16]) -> VadDecision {
        let levels = self.bands.levels(frame);
        let voiced = self.classify(levels);
        let voice = if voiced {
            self.hold = FRAME_HOLD;
            true
        } else if self.hold > 0 {
            self.hold -= 1;
            true
        } else {
            false
        };
        let event = self.advance(voiced);
        VadDecision { voice, voiced, speaking: self.speaking(), event }
    }

    /// Whether the frame clears the floor by the threshold, updating both floors.
    fn classify(&mut self, l: Levels) -> bool {
        let (mean, square) = self.moments.unwrap_or((l.full, l.full * l.full));
        let (mean, square) = (mean + STEADY_WEIGHT * (l.full - mean), square + STEADY_WEIGHT * (l.full * l.full - square));
        self.moments = Some((mean, square));
        let rise = if square - mean * mean < STEADY_VARIANCE { self.steady_rise_per_frame } else { self.rise_per_frame };
        let full = self.full_floor.update(l.full, rise);
        let comb = self.comb_floor.update(l.comb, rise);
        let low = self.low_floor.update(l.low, rise);
        let threshold = if self.voiced { self.config.stay_db } else { self.config.start_db };
        self.voiced = l.full >= self.config.min_level_dbfs && full.max(comb).max(low) >= threshold;
        self.voiced
    }

    /// One step of the turn machine on the frame's raw verdict (the hold is for frame labels;
    /// the hangover already bridges pauses).
    fn advance(&mut self, voiced: bool) -> Option<VadEvent> {
        let (turn, event) = match self.turn {
            Turn::Silence if voiced => self.onset(1, 1, 0),
            Turn::Silence => (Turn::Silence, None),
            Turn::Onset { frames, voiced: v, .. } if voiced => self.onset(frames + 1, v + 1, 0),
            Turn::Onset { gap, .. } if gap >= ONSET_GAP => (Turn::Silence, None),
            Turn::Onset { frames, voiced: v, gap } => (Turn::Onset { frames: frames + 1, voiced: v, gap: gap + 1 }, None),
            Turn::Speech { .. } if voiced => (Turn::Speech { silent: 0 }, None),
            Turn::Speech { silent } if silent + 1 >= self.hangover_frames => (Turn::Silence, Some(VadEvent::SpeechEnd { silence: FRAME * (silent + 1) })),
            Turn::Speech { silent } => (Turn::Speech { silent: silent + 1 }, None),
        };
        self.turn = turn;
        event
    }

    /// An onset of `frames` frames, `voiced` of them voiced: speech once enough are voiced.
    fn onset(&self, frames: u32, voiced: u32, gap: u32) -> (Turn, Option<VadEvent>) {
        if voiced >= self.min_speech_frames {
            (Turn::Speech { silent: 0 }, Some(VadEvent::SpeechStart { since: FRAME * frames }))
        } else {
            (Turn::Onset { frames, voiced, gap }, None)
        }
    }
}

/// Whole frames in `d`, rounded up, saturating.
fn frames(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(FRAME.as_millis())).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, amp: f32, n: usize, phase: usize) -> Vec<i16> {
        (phase..phase + n).map(|i| (amp * (std::f32::consts::TAU * 440.0 * i as f32 / rate as f32).sin()) as i16).collect()
    }

    #[test]
    fn rejects_bad_configs() {
        assert_eq!(Vad::new(VadConfig::new(44_100)).err(), Some(VadError::Rate(44_100)));
        let c = VadConfig { stay_db: 10.0, ..VadConfig::new(8_000) };
        assert!(matches!(Vad::new(c), Err(VadError::Hysteresis { .. })));
        let c = VadConfig { start_db: f32::NAN, ..VadConfig::new(8_000) };
        assert_eq!(Vad::new(c).err(), Some(VadError::NotFinite));
        let c = VadConfig { steady_rise_db_per_s: -1.0, ..VadConfig::new(8_000) };
        assert_eq!(Vad::new(c).err(), Some(VadError::NotFinite));
    }

    #[test]
    fn a_noise_that_gets_louder_gives_the_turn_back_soon() {
        // White noise at -50 dBFS for 5 s, then 15 dB louder for 10 s.
        let mut rng = happ_netem::Rng::new(9);
        let mut vad = Vad::new(VadConfig::new(8_000)).expect("valid");
        let mut frame = [0i16; 160];
        let (mut start, mut end) = (None, None);
        for i in 0..750 {
            let amp = if i < 250 { 103.0 } else { 580.0 };
            for s in &mut frame {
                *s = ((rng.unit() - 0.5) * amp * 3.46) as i16;
            }
            match vad.process(&frame).event {
                Some(VadEvent::SpeechStart { .. }) => start = start.or(Some(i)),
                Some(VadEvent::SpeechEnd { .. }) => end = end.or(Some(i)),
                None => {}
            }
        }
        // The step may take the turn, but gives it back within three seconds (at the 2 dB/s of speech, 7).
        if let Some(s) = start {
            let e = end.expect("the turn ends");
            assert!(e > s && e - 250 <= 150, "{s} {e}");
        }
        assert!(!vad.speaking());
    }

    #[test]
    fn a_tone_burst_takes_the_turn_and_gives_it_back() {
        let rate = 8_000;
        let mut vad = Vad::new(VadConfig::new(rate)).expect("valid");
        let quiet = vec![0i16; 160];
        let mut events = Vec::new();
        for i in 0..150 {
            let frame = if (50..100).contains(&i) { sine(rate, 8_000.0, 160, i * 160) } else { quiet.clone() };
            if let Some(e) = vad.process(&frame).event {
                events.push((i, e));
            }
        }
        // Six voiced frames (120 ms) take the turn; 30 unvoiced frames (600 ms) end it.
        assert_eq!(
            events,
            vec![(55, VadEvent::SpeechStart { since: Duration::from_millis(120) }), (129, VadEvent::SpeechEnd { silence: Duration::from_millis(600) })]
        );
    }

    #[test]
    fn a_cough_does_not_take_the_turn() {
        let mut vad = Vad::new(VadConfig::new(16_000)).expect("valid");
        let quiet = vec![0i16; 320];
        for i in 0..100 {
            let frame = if (50..55).contains(&i) { sine(16_000, 20_000.0, 320, i * 320) } else { quiet.clone() };
            let d = vad.process(&frame);
            assert_eq!(d.event, None, "frame {i}");
            assert_eq!(d.voice, (50..58).contains(&i), "frame {i}");
        }
    }

    #[test]
    fn reset_forgets_the_turn() {
        let mut vad = Vad::new(VadConfig::new(8_000)).expect("valid");
        let _ = vad.process(&[0; 160]);
        for i in 0..20 {
            let _ = vad.process(&sine(8_000, 8_000.0, 160, i * 160));
        }
        let _ = vad.process(&[]);
        assert!(vad.speaking());
        vad.reset();
        assert!(!vad.speaking() && vad.noise_floor_dbfs().is_none());
    }
}
