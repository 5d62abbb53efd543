//! Packet loss concealment for 8 kHz G.711, after ITU-T G.711 Appendix I.
//!
//! The algorithm, as Appendix I describes it:
//! - keep a history of the output signal (48.75 ms);
//! - at the start of an erasure, estimate the pitch period (5–15 ms) by normalised
//!   cross-correlation of the last 20 ms against lagged copies, coarse then fine;
//! - synthesise by repeating the last pitch period, with the joint between repetitions smoothed
//!   by an overlap-add over a quarter period;
//! - after 10 ms of erasure repeat the last two periods, after 20 ms three, so that long losses
//!   sound less buzzy;
//! - from 10 ms on, attenuate by 20 % per 10 ms, reaching silence at 60 ms;
//! - at the first good samples, overlap-add the synthetic continuation into them over 4 ms, plus
//!   4 ms per further 10 ms of erasure, up to 10 ms.
//!
//! Unlike the appendix, the output is not delayed by 3.75 ms to smooth the start of an erasure:
//! the synthetic signal starts in phase with the history, which is continuous for voiced speech,
//! and a gateway's latency budget matters more than that first quarter period.

/// Shortest pitch period searched: 5 ms (200 Hz).
const PITCH_MIN: usize = 40;
/// Longest pitch period searched: 15 ms (66.7 Hz).
const PITCH_MAX: usize = 120;
/// Correlation window: 20 ms.
const CORR_LEN: usize = 160;
/// History: three longest periods plus the overlap of a quarter period.
const HISTORY: usize = 3 * PITCH_MAX + PITCH_MAX / 4;
/// 10 ms at 8 kHz, the appendix's unit of erasure.
const TEN_MS: usize = 80;
/// After this much erasure the output is silent.
const SILENT_AFTER: usize = 6 * TEN_MS;

/// Concealment state of one received stream.
#[derive(Clone)]
pub struct Plc {
    /// The last `HISTORY` output samples, oldest first.
    history: [i16; HISTORY],
    /// Samples concealed in the current erasure; 0 when not concealing.
    erased: usize,
    pitch: usize,
    periods: usize,
    /// The repeated segment (1–3 periods), joint pre-smoothed.
    cycle: [f32; 3 * PITCH_MAX],
    cycle_len: usize,
    pos: usize,
    /// Crossfade from the previous cycle after the number of periods changes.
    fade: [f32; PITCH_MAX / 4],
    fade_len: usize,
    fade_pos: usize,
}

impl Default for Plc {
    fn default() -> Self {
        Plc {
            history: [0; HISTORY],
            erased: 0,
            pitch: PITCH_MAX,
            periods: 1,
            cycle: [0.0; 3 * PITCH_MAX],
            cycle_len: PITCH_MAX,
            pos: 0,
            fade: [0.0; PITCH_MAX / 4],
            fade_len: 0,
            fade_pos: 0,
        }
    }
}

impl Plc {
    /// A concealer with a silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last samples produced were concealed.
    pub fn concealing(&self) -> bool {
        self.erased > 0
    }

    /// Passes good (decoded) samples through, smoothing the end of an erasure into them.
    pub fn good(&mut self, samples: &mut [i16]) {
        if self.erased > 0 {
            let ola = (4 * (1 + (self.erased - 1) / TEN_MS) * 8).min(TEN_MS).min(samples.len());
            for (i, s) in samples[..ola].iter_mut().enumerate() {
                let w = (i + 1) as f32 / (ola + 1) as f32;
                let synth = self.next_synthetic();
                *s = crate::simd::f32_to_i16(w * f32::from(*s) + (1.0 - w) * synth);
            }
            self.erased = 0;
        }
        self.remember(samples);
    }

    /// Fills `out` with concealment continuing the signal.
    pub fn conceal(&mut self, out: &mut [i16]) {
        if self.erased == 0 {
            self.start_erasure();
        }
        for s in out.iter_mut() {
            *s = crate::simd::f32_to_i16(self.next_synthetic());
        }
        self.remember(out);
    }

    /// Forgets the history, for a new stream.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    fn remember(&mut self, samples: &[i16]) {
        if samples.len() >= HISTORY {
            self.history.copy_from_slice(&samples[samples.len() - HISTORY..]);
        } else {
            self.history.copy_within(samples.len().., 0);
            self.history[HISTORY - samples.len()..].copy_from_slice(samples);
        }
    }

    fn start_erasure(&mut self) {
        self.pitch = find_pitch(&self.history);
        self.periods = 1;
        self.build_cycle();
        self.pos = 0;
        self.fade_len = 0;
    }

    /// Builds the repeated segment from the last `periods` pitch periods of the history, with
    /// the last quarter period crossfaded into the quarter period before the segment, so that
    /// each wrap from its end to its start is continuous.
    fn build_cycle(&mut self) {
        let len = self.periods * self.pitch;
        let ov = self.pitch / 4;
        let h = &self.history;
        let start = HISTORY - len;
        for (c, &x) in self.cycle[..len].iter_mut().zip(&h[start..]) {
            *c = f32::from(x);
        }
        for i in 0..ov {
            let w = (i + 1) as f32 / (ov + 1) as f32;
            let end = f32::from(h[HISTORY - ov + i]);
            let before = f32::from(h[start - ov + i]);
            self.cycle[len - ov + i] = (1.0 - w) * end + w * before;
        }
        self.cycle_len = len;
    }

    /// The next synthetic sample, with attenuation and period-count changes applied.
    fn next_synthetic(&mut self) -> f32 {
        let e = self.erased;
        if e == TEN_MS || e == 2 * TEN_MS {
            self.grow_cycle();
        }
        let mut v = self.cycle[self.pos];
        self.pos += 1;
        if self.pos == self.cycle_len {
            self.pos = 0;
        }
        if self.fade_pos < self.fade_len {
            let w = (self.fade_pos + 1) as f32 / (self.fade_len + 1) as f32;
            v = w * v + (1.0 - w) * self.fade[self.fade_pos];
            self.fade_pos += 1;
        }
        self.erased += 1;
        v * gain(e)
    }

    /// Switches to one more period, crossfading from the old cycle over a quarter period.
    fn grow_cycle(&mut self) {
        let ov = self.pitch / 4;
        for (i, f) in self.fade[..ov].iter_mut().enumerate() {
            *f = self.cycle[(self.pos + i) % self.cycle_len];
        }
        let phase = self.pos;
        self.periods += 1;
        self.build_cycle();
        // The old cycle was the last `periods - 1` periods; the same phase sits one period later
        // in the new one.
        self.pos = (phase + self.pitch) % self.cycle_len;
        self.fade_len = ov;
        self.fade_pos = 0;
    }
}

/// Attenuation after `erased` samples: none for 10 ms, then 20 % per 10 ms down to silence.
fn gain(erased: usize) -> f32 {
    if erased < TEN_MS {
        1.0
    } else if erased >= SILENT_AFTER {
        0.0
    } else {
        1.0 - 0.2 * (erased - TEN_MS) as f32 / TEN_MS as f32
    }
}

/// The pitch period (in samples) that maximises the normalised cross-correlation between the
/// last 20 ms of `history` and the same window `lag` samples earlier: a search at half
/// resolution over 5–15 ms, then a full-resolution search around the best lag.
fn find_pitch(history: &[i16; HISTORY]) -> usize {
    let end = HISTORY;
    let window = end - CORR_LEN;
    let score = |lag: usize, step: usize| -> f32 {
        let mut corr = 0.0f32;
        let mut energy = 0.0f32;
        let mut i = 0;
        while i < CORR_LEN {
            let a = f32::from(history[window + i]);
            let b = f32::from(history[window + i - lag]);
            corr += a * b;
            energy += b * b;
            i += step;
        }
        if energy <= 0.0 { 0.0 } else { corr / energy.sqrt() }
    };
    let mut best = PITCH_MAX;
    let mut best_score = f32::MIN;
    for lag in (PITCH_MIN..=PITCH_MAX).step_by(2) {
        let s = score(lag, 2);
        if s > best_score {
            best_score = s;
            best = lag;
        }
    }
    let coarse = best;
    best_score = f32::MIN;
    for lag in coarse.saturating_sub(1).max(PITCH_MIN)..=(coarse + 1).min(PITCH_MAX) {
        let s = score(lag, 1);
        if s > best_score {
            best_score = s;
            best = lag;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    fn tone(freq: f32, n: usize, offset: usize) -> Vec<i16> {
        (0..n).map(|i| ((2.0 * std::f32::consts::PI * freq * (i + offset) as f32 / 8000.0).sin() * 10_000.0) as i16).collect()
    }

    #[test]
    fn finds_the_period_of_a_voiced_tone() {
        let mut plc = Plc::new();
        plc.good(&mut tone(100.0, 400, 0)); // 80-sample period
        assert_eq!(find_pitch(&plc.history), 80);
        let mut plc = Plc::new();
        plc.good(&mut tone(160.0, 400, 0)); // 50-sample period
        assert_eq!(find_pitch(&plc.history), 50);
    }

    #[test]
    fn concealment_continues_a_periodic_signal() {
        let mut plc = Plc::new();
        plc.good(&mut tone(100.0, 400, 0));
        let mut out = [0i16; 80];
        plc.conceal(&mut out);
        let truth = tone(100.0, 80, 400);
        let err: f64 = out.iter().zip(&truth).map(|(&a, &b)| f64::from(a - b).powi(2)).sum::<f64>() / 80.0;
        let power: f64 = truth.iter().map(|&b| f64::from(b).powi(2)).sum::<f64>() / 80.0;
        let snr = 10.0 * (power / err).log10();
        assert!(snr > 20.0, "first 10 ms of concealment follow the tone: SNR {snr:.1} dB");
    }

    #[test]
    fn attenuates_to_silence_after_60_ms() {
        let mut plc = Plc::new();
        plc.good(&mut tone(120.0, 400, 0));
        let mut out = [0i16; 80];
        let mut peaks = Vec::new();
        for _ in 0..8 {
            plc.conceal(&mut out);
            peaks.push(out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0));
        }
        assert!(peaks[0] > 9_000, "{peaks:?}");
        assert!(peaks[1] < peaks[0] && peaks[3] < peaks[2] && peaks[4] < peaks[3], "{peaks:?}");
        assert_eq!(&peaks[6..], &[0, 0], "{peaks:?}");
    }

    #[test]
    fn recovery_is_smooth() {
        let mut plc = Plc::new();
        plc.good(&mut tone(100.0, 400, 0));
        let mut lost = [0i16; 160];
        plc.conceal(&mut lost);
        let mut next = tone(100.0, 160, 560);
        let raw = next.clone();
        plc.good(&mut next);
        assert!(plc.history.ends_with(&next[next.len() - 10..]));
        // Overlap-add over 8 ms (20 ms erasure) changes the start and leaves the rest.
        assert_ne!(next[..64], raw[..64]);
        assert_eq!(next[64..], raw[64..]);
        // No sample jumps by more than the tone's own largest step plus a margin.
        let max_step = next.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap_or(0);
        assert!(max_step < 1_500, "{max_step}");
    }

    #[test]
    fn silence_conceals_as_silence() {
        let mut plc = Plc::new();
        let mut out = [1i16; 160];
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
