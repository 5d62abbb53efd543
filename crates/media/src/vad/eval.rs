//! Labelled test signals and the scoring of a [`Vad`] on them, shared by the tests and by
//! `happ-gateway bench vad`.
//!
//! A [`Scene`] places speech clips one after the other with seeded silent gaps (1.0-1.8 s, longer
//! than the default hangover, so each clip is a new turn), each clip scaled to the same active
//! speech level, [`SPEECH_DBFS`] (as ITU-T P.56 levels test speech; the recordings differ by
//! 20 dB, and one SNR for the scene would otherwise bury the quiet speakers). The reference labels come from where
//! the clips were placed, refined inside each clip by the clean signal's energy: a frame is speech
//! when its level is within [`LABEL_RANGE_DB`] of the clip's loudest frame (and above -60 dBFS),
//! and speech frames hold the label for [`FRAME_HOLD`] frames after them, as the detector does.
//! So the pauses inside a sentence and a recording's own quiet lead-in are labelled silence.
//!
//! Noise ([`Noise::White`], [`Noise::Hum`]) is added over the whole scene, gaps included, at a
//! power set by the SNR against the active speech level (the mean power of the speech frames of
//! the clean scene). Optionally the noisy signal goes through a G.711 round trip.
//!
//! Scoring runs the detector frame by frame: frame accuracy against the labels; for each clip its
//! onset (first labelled frame) and the `SpeechStart` that follows within the clip, if any
//! (latency counted to the end of the deciding frame); `SpeechStart`s outside every clip are false
//! starts.

use std::time::Duration;

use happ_netem::Rng;

use super::{FRAME, FRAME_HOLD, Vad, VadConfig, VadError, VadEvent};
use crate::g711::Law;

/// Frames within this many dB of a clip's loudest frame are labelled speech.
pub const LABEL_RANGE_DB: f64 = 30.0;

/// The active speech level every clip is scaled to: -26 dBov, the usual level of test speech.
pub const SPEECH_DBFS: f64 = -26.0;

/// Frames below this level are never labelled speech (the recordings' own hiss).
const LABEL_MIN_DBFS: f64 = -60.0;

/// Shortest and longest gap between clips, in seconds.
const GAP_S: (f64, f64) = (1.0, 1.8);

/// One clip's place in a [`Scene`], in frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utterance {
    /// The frame where the clip begins.
    pub start: usize,
    /// The frame after the clip ends.
    pub end: usize,
    /// The clip's first labelled frame: its onset.
    pub onset: usize,
}

/// Speech clips with silent gaps, and the reference labels.
#[derive(Clone, Debug)]
pub struct Scene {
    /// Sample rate.
    pub rate: u32,
    /// The clean signal, a whole number of 20 ms frames.
    pub clean: Vec<i16>,
    /// Whether each frame is speech.
    pub labels: Vec<bool>,
    /// Where the clips are.
    pub utterances: Vec<Utterance>,
    /// Mean power of the labelled speech frames (sample units squared): the active speech level.
    pub speech_power: f64,
}

/// Samples per 20 ms frame at `rate`.
pub fn frame_len(rate: u32) -> usize {
    rate as usize / 50
}

impl Scene {
    /// `clips` (at `rate`) one after the other, with seeded gaps before, between and after.
    pub fn new(clips: &[&[i16]], rate: u32, seed: u64) -> Scene {
        let n = frame_len(rate);
        let mut rng = Rng::new(seed);
        let mut clean = Vec::new();
        let mut spans = Vec::new();
        let gap = |rng: &mut Rng| ((GAP_S.0 + (GAP_S.1 - GAP_S.0) * rng.unit()) * f64::from(rate)) as usize;
        for clip in clips {
            clean.resize(clean.len() + gap(&mut rng), 0);
            spans.push((clean.len(), clean.len() + clip.len()));
            let gain = (dbfs_power(SPEECH_DBFS) / active_power(clip, n)).sqrt();
            clean.extend(clip.iter().map(|&x| (f64::from(x) * gain).round().clamp(-32768.0, 32767.0) as i16));
        }
        clean.resize((clean.len() + gap(&mut rng)).div_ceil(n) * n, 0);
        let levels: Vec<f64> = clean.chunks_exact(n).map(power).collect();
        let mut raw = vec![false; levels.len()];
        let mut utterances = Vec::new();
        for (a, b) in spans {
            let (start, end) = (a / n, b.div_ceil(n));
            let loudest = levels[start..end].iter().fold(0.0f64, |m, &p| m.max(p));
            let threshold = label_threshold(loudest);
            for i in start..end {
                raw[i] = levels[i] >= threshold;
            }
            let onset = (start..end).find(|&i| raw[i]).unwrap_or(start);
            utterances.push(Utterance { start, end, onset });
        }
        let (mut sum, mut count) = (0.0, 0usize);
        for (&r, &p) in raw.iter().zip(&levels) {
            if r {
                sum += p;
                count += 1;
            }
        }
        let mut labels = raw.clone();
        for (i, &r) in raw.iter().enumerate() {
            if r {
                for l in labels.iter_mut().skip(i + 1).take(FRAME_HOLD as usize) {
                    *l = true;
                }
            }
        }
        Scene { rate, clean, labels, utterances, speech_power: sum / count.max(1) as f64 }
    }

    /// The scene with `noise` at `snr_db` below the active speech level (`None`: clean), then
    /// through a G.711 round trip if `law` is given.
    pub fn noisy(&self, noise: Noise, snr_db: Option<f64>, law: Option<Law>, seed: u64) -> Vec<i16> {
        let mut out = self.clean.clone();
        if let Some(snr) = snr_db {
            let added = noise.generate(self.rate, out.len(), self.speech_power / 10f64.powf(snr / 10.0), seed);
            for (s, a) in out.iter_mut().zip(added) {
                *s = (f64::from(*s) + a).round().clamp(-32768.0, 32767.0) as i16;
            }
        }
        if let Some(law) = law {
            round_trip(&mut out, law);
        }
        out
    }
}

/// The power (sample units squared) of a level in dBFS.
fn dbfs_power(db: f64) -> f64 {
    32768.0 * 32768.0 * 10f64.powf(db / 10.0)
}

/// Frames at or above this power are speech, in a clip whose loudest frame has power `loudest`.
fn label_threshold(loudest: f64) -> f64 {
    (loudest * 10f64.powf(-LABEL_RANGE_DB / 10.0)).max(dbfs_power(LABEL_MIN_DBFS))
}

/// Mean power of a clip's speech frames (as labelled), at least a tiny positive power.
fn active_power(clip: &[i16], n: usize) -> f64 {
    let levels: Vec<f64> = clip.chunks(n).map(power).collect();
    let loudest = levels.iter().fold(0.0f64, |m, &p| m.max(p));
    let threshold = loudest * 10f64.powf(-LABEL_RANGE_DB / 10.0);
    let active: Vec<f64> = levels.into_iter().filter(|&p| p >= threshold).collect();
    (active.iter().sum::<f64>() / active.len().max(1) as f64).max(1.0)
}

/// Mean power of a frame.
fn power(frame: &[i16]) -> f64 {
    frame.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / frame.len().max(1) as f64
}

/// Encodes and decodes `pcm` in place.
pub fn round_trip(pcm: &mut [i16], law: Law) {
    for s in pcm {
        *s = law.decode_sample(law.encode_sample(*s));
    }
}

/// A stationary background noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Gaussian white noise.
    White,
    /// Mains hum: 50 Hz with its 3rd and 5th harmonics, at random phases.
    Hum,
}

impl Noise {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Noise::White => "white",
            Noise::Hum => "hum",
        }
    }

    /// `len` samples of this noise at mean power `power`.
    pub fn generate(self, rate: u32, len: usize, power: f64, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        match self {
            Noise::White => {
                let sigma = power.sqrt();
                (0..len)
                    .map(|_| {
                        // Box-Muller: `1 - unit()` is in (0, 1], so the logarithm is finite.
                        let (u, v) = (1.0 - rng.unit(), rng.unit());
                        sigma * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                    })
                    .collect()
            }
            Noise::Hum => {
                let parts = [(50.0, 1.0), (150.0, 0.3), (250.0, 0.1)];
                let phases: Vec<f64> = parts.iter().map(|_| std::f64::consts::TAU * rng.unit()).collect();
                // A sine of amplitude a has power a²/2.
                let scale = (2.0 * power / parts.iter().map(|(_, a)| a * a).sum::<f64>()).sqrt();
                (0..len)
                    .map(|i| {
                        let t = i as f64 / f64::from(rate);
                        parts.iter().zip(&phases).map(|((f, a), p)| a * (std::f64::consts::TAU * f * t + p).sin()).sum::<f64>() * scale
                    })
                    .collect()
            }
        }
    }
}

/// How a detector did on one signal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Frames scored.
    pub frames: usize,
    /// Frames where `voice` matched the label.
    pub correct: usize,
    /// Clips.
    pub onsets: usize,
    /// Clips without a `SpeechStart`.
    pub missed: usize,
    /// Onset-to-`SpeechStart` latency of each detected clip.
    pub latencies: Vec<Duration>,
    /// `SpeechStart`s outside every clip.
    pub false_starts: usize,
}

impl Score {
    /// Frame accuracy in percent.
    pub fn accuracy_pct(&self) -> f64 {
        100.0 * self.correct as f64 / self.frames.max(1) as f64
    }

    /// The longest onset latency.
    pub fn max_latency(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    /// The mean onset latency.
    pub fn mean_latency(&self) -> Duration {
        self.latencies.iter().sum::<Duration>() / u32::try_from(self.latencies.len().max(1)).unwrap_or(u32::MAX)
    }
}

/// Runs a fresh detector over `signal` (the scene's length, after noise) and scores it.
pub fn score(config: VadConfig, scene: &Scene, signal: &[i16]) -> Result<Score, VadError> {
    let mut vad = Vad::new(config)?;
    let n = frame_len(scene.rate);
    let mut s = Score { onsets: scene.utterances.len(), ..Score::default() };
    let mut detected = vec![None; scene.utterances.len()];
    for (i, (frame, &label)) in signal.chunks_exact(n).zip(&scene.labels).enumerate() {
        let d = vad.process(frame);
        s.frames += 1;
        s.correct += usize::from(d.voice == label);
        if let Some(VadEvent::SpeechStart { .. }) = d.event {
            match scene.utterances.iter().position(|u| (u.start..u.end).contains(&i)) {
                Some(u) if detected[u].is_none() => detected[u] = Some(i),
                Some(_) => {}
                None => s.false_starts += 1,
            }
        }
    }
    for (u, d) in scene.utterances.iter().zip(&detected) {
        match d {
            Some(i) => s.latencies.push(FRAME * u32::try_from((i + 1).saturating_sub(u.onset)).unwrap_or(u32::MAX)),
            None => s.missed += 1,
        }
    }
    Ok(s)
}

/// `SpeechStart`s in `seconds` of `noise` alone at mean power `power` (at 8 kHz through a
/// µ-law round trip, as on a phone line).
pub fn false_starts(config: VadConfig, noise: Noise, power: f64, seconds: u32, seed: u64) -> Result<usize, VadError> {
    let mut vad = Vad::new(config)?;
    let n = frame_len(config.sample_rate);
    let mut signal: Vec<i16> = noise.generate(config.sample_rate, n * 50 * seconds as usize, power, seed).iter().map(|&x| x.round() as i16).collect();
    if config.sample_rate == 8_000 {
        round_trip(&mut signal, Law::Ulaw);
    }
    Ok(signal.chunks_exact(n).filter(|f| matches!(vad.process(f).event, Some(VadEvent::SpeechStart { .. }))).count())
}

/// One test condition: a rate, a codec, a noise and an SNR.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    /// Sample rate.
    pub rate: u32,
    /// A G.711 round trip after the noise, if any.
    pub law: Option<Law>,
    /// The noise.
    pub noise: Noise,
    /// SNR against the active speech level; `None` is clean.
    pub snr_db: Option<f64>,
}

/// SNRs of the standard evaluation; `None` is clean.
pub const SNRS: [Option<f64>; 4] = [None, Some(20.0), Some(10.0), Some(5.0)];

/// The standard conditions: 8 kHz, 8 kHz through µ-law and A-law, 16 kHz; each clean and with
/// white noise and hum at each SNR.
pub fn conditions() -> Vec<Condition> {
    let mut all = Vec::new();
    for (rate, law) in [(8_000, None), (8_000, Some(Law::Ulaw)), (8_000, Some(Law::Alaw)), (16_000, None)] {
        for snr in SNRS {
            let noises: &[Noise] = if snr.is_none() { &[Noise::White] } else { &[Noise::White, Noise::Hum] };
            for &noise in noises {
                all.push(Condition { rate, law, noise, snr_db: snr });
            }
        }
    }
    all
}

/// Scores of the default detector in each of [`conditions`], on scenes built from `clips_8k`
/// and `clips_16k` (the same speech at both rates), seeded by `seed`.
pub fn evaluate(clips_8k: &[&[i16]], clips_16k: &[&[i16]], seed: u64) -> Result<Evaluation, VadError> {
    let scenes = [Scene::new(clips_8k, 8_000, seed), Scene::new(clips_16k, 16_000, seed)];
    let mut rows = Vec::new();
    for (k, c) in conditions().into_iter().enumerate() {
        let scene = &scenes[usize::from(c.rate == 16_000)];
        let signal = scene.noisy(c.noise, c.snr_db, c.law, seed.wrapping_add(k as u64));
        rows.push(Row { condition: c, score: score(VadConfig::new(c.rate), scene, &signal)? });
    }
    // Noise alone at the level of the 20 dB mix, a minute of each noise at each rate.
    let mut noise_starts = 0;
    let mut minutes = 0;
    for scene in &scenes {
        for noise in [Noise::White, Noise::Hum] {
            noise_starts += false_starts(VadConfig::new(scene.rate), noise, scene.speech_power / 100.0, 60, seed ^ 0x5eed)?;
            minutes += 1;
        }
    }
    Ok(Evaluation { rows, false_starts_per_min: noise_starts as f64 / f64::from(minutes) })
}

/// The scores of [`evaluate`].
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// One score per condition.
    pub rows: Vec<Row>,
    /// False starts per minute of stationary noise alone (white and hum, both rates) at the
    /// level of the 20 dB mixes.
    pub false_starts_per_min: f64,
}

impl Evaluation {
    /// Mean frame accuracy (percent) over the conditions at `snr_db` (`None`: clean).
    pub fn accuracy_pct(&self, snr_db: Option<f64>) -> f64 {
        let at: Vec<f64> = self.rows.iter().filter(|r| r.condition.snr_db == snr_db).map(|r| r.score.accuracy_pct()).collect();
        at.iter().sum::<f64>() / at.len().max(1) as f64
    }
}

/// One condition and the detector's score in it.
#[derive(Clone, Debug)]
pub struct Row {
    /// The condition.
    pub condition: Condition,
    /// The score.
    pub score: Score,
}
