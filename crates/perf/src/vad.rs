//! Voice activity detection: CPU per call-second on the speech fixtures, and accuracy on the
//! labelled scenes of [`happ_media::vad::eval`] (the same ones the tests check).

use std::hint::black_box;
use std::time::Duration;

use happ_media::vad::eval::{self, Noise, Scene};
use happ_media::vad::{Vad, VadConfig};
use serde::Serialize;

use crate::measure;

/// Seed of the scenes' gaps and noises.
const SEED: u64 = 0x0DAD_5EED;

/// Wall time the timed runs are spread over.
const SPREAD: Duration = Duration::from_millis(600);

/// One condition's scores.
#[derive(Clone, Debug, Serialize)]
pub struct VadCondition {
    /// Sample rate.
    pub rate: u32,
    /// `PCMU`, `PCMA` or `-` (no codec).
    pub codec: &'static str,
    /// `white` or `hum`.
    pub noise: &'static str,
    /// SNR against the active speech level; `None` is clean.
    pub snr_db: Option<f64>,
    /// Frame accuracy.
    pub accuracy_pct: f64,
    /// Clips whose onset gave no `SpeechStart`.
    pub missed_onsets: usize,
    /// `SpeechStart`s in the gaps between clips.
    pub false_starts: usize,
    /// Mean onset-to-`SpeechStart` latency.
    pub mean_latency_ms: f64,
    /// Longest onset-to-`SpeechStart` latency.
    pub max_latency_ms: f64,
}

/// The VAD benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct VadReport {
    /// CPU time per second of 8 kHz audio (50 frames), best run.
    pub vad_us_per_call_second: f64,
    /// The median run, under the machine's contention.
    pub median_vad_us_per_call_second: f64,
    /// CPU time per second of 16 kHz audio, best run.
    pub vad_16k_us_per_call_second: f64,
    /// Mean frame accuracy of the clean conditions.
    pub accuracy_clean_pct: f64,
    /// Mean frame accuracy at 20 dB SNR (white noise and hum, all rates and codecs).
    pub accuracy_20db_pct: f64,
    /// Mean frame accuracy at 10 dB SNR.
    pub accuracy_10db_pct: f64,
    /// Mean frame accuracy at 5 dB SNR.
    pub accuracy_5db_pct: f64,
    /// False starts per minute of stationary noise alone, at the level of the 20 dB mixes.
    pub false_starts_per_min: f64,
    /// Missed onsets over all conditions down to 10 dB.
    pub missed_onsets_10db: usize,
    /// Longest onset latency over all conditions down to 10 dB.
    pub max_onset_latency_10db_ms: f64,
    /// Clips per scene (the address excerpt and forty digits).
    pub utterances: usize,
    /// Every condition.
    pub conditions: Vec<VadCondition>,
    /// Runs; the best is reported.
    pub runs: usize,
}

/// The speech clips at `rate`: the address excerpt, then the forty digits.
pub fn clips(rate: u32) -> Vec<Vec<i16>> {
    let mut all = vec![happ_fixtures::jfk().resampled(rate).expect("8 and 16 kHz are supported").samples];
    for d in 0..10 {
        for s in 0..4 {
            all.push(happ_fixtures::digit(d, s).resampled(rate).expect("8 and 16 kHz are supported").samples);
        }
    }
    all
}

/// CPU ns per second of audio of a detector run over `signal`, best and median.
fn cost(rate: u32, signal: &[i16], runs: usize) -> (f64, f64) {
    let n = eval::frame_len(rate);
    let seconds = (signal.len() / n) as f64 / 50.0;
    let m = measure(runs, SPREAD, || {
        let mut vad = Vad::new(VadConfig::new(rate)).expect("the defaults are valid");
        for f in signal.chunks_exact(n) {
            black_box(vad.process(black_box(f)));
        }
    });
    (m.best as f64 / 1e3 / seconds, m.median as f64 / 1e3 / seconds)
}

/// Runs the VAD benchmark.
pub fn run(runs: usize) -> VadReport {
    let (c8, c16) = (clips(8_000), clips(16_000));
    let r8: Vec<&[i16]> = c8.iter().map(Vec::as_slice).collect();
    let r16: Vec<&[i16]> = c16.iter().map(Vec::as_slice).collect();
    let e = eval::evaluate(&r8, &r16, SEED).expect("the defaults are valid");
    // Timed on speech with 10 dB of white noise: speech, pauses and gaps as on a call.
    let s8 = Scene::new(&r8, 8_000, SEED).noisy(Noise::White, Some(10.0), None, SEED);
    let s16 = Scene::new(&r16, 16_000, SEED).noisy(Noise::White, Some(10.0), None, SEED);
    let (best, median) = cost(8_000, &s8, runs);
    let (best16, _) = cost(16_000, &s16, runs);
    let down_to_10 = |snr: Option<f64>| snr.is_none_or(|s| s >= 10.0);
    let conditions: Vec<VadCondition> = e
        .rows
        .iter()
        .map(|r| VadCondition {
            rate: r.condition.rate,
            codec: r.condition.law.map_or("-", |l| l.encoding_name()),
            noise: r.condition.noise.name(),
            snr_db: r.condition.snr_db,
            accuracy_pct: r.score.accuracy_pct(),
            missed_onsets: r.score.missed,
            false_starts: r.score.false_starts,
            mean_latency_ms: r.score.mean_latency().as_secs_f64() * 1e3,
            max_latency_ms: r.score.max_latency().as_secs_f64() * 1e3,
        })
        .collect();
    let near: Vec<&VadCondition> = conditions.iter().filter(|c| down_to_10(c.snr_db)).collect();
    VadReport {
        vad_us_per_call_second: best,
        median_vad_us_per_call_second: median,
        vad_16k_us_per_call_second: best16,
        accuracy_clean_pct: e.accuracy_pct(None),
        accuracy_20db_pct: e.accuracy_pct(Some(20.0)),
        accuracy_10db_pct: e.accuracy_pct(Some(10.0)),
        accuracy_5db_pct: e.accuracy_pct(Some(5.0)),
        false_starts_per_min: e.false_starts_per_min,
        missed_onsets_10db: near.iter().map(|c| c.missed_onsets).sum(),
        max_onset_latency_10db_ms: near.iter().map(|c| c.max_latency_ms).fold(0.0, f64::max),
        utterances: r8.len(),
        conditions,
        runs,
    }
}
