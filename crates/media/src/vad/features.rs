//! Per-frame features of the detector: three band levels, each against its own noise floor.
//!
//! - The full band catches speech in any noise it rises above.
//! - The comb band, `x[n] - x[n-L]` with `L` spanning 250 µs (2 samples at 8 kHz, 4 at 16 kHz),
//!   has its gain peak at 2 kHz and zeros at 0 Hz and 4 kHz at both rates: it removes DC and
//!   mains hum (-25 dB at 50 Hz) while keeping the formants, so speech stands out of a hum that
//!   fills the full band.
//! - The low band, a moving sum over 500 µs (4 samples at 8 kHz, 8 at 16 kHz), keeps 0-1 kHz
//!   where voiced speech has most of its energy and drops the rest of a white noise: voiced frames
//!   gain about 5 dB of SNR in white or broadband noise.
//!
//! Each band is scaled to read the same as the full band on white noise. The filters run over a
//! fixed block buffer in passes over whole slices, and the sums run over eight independent `f32`
//! lanes, so the compiler vectorizes them (a single accumulator would be a serial chain, since
//! float addition is not reassociated).

/// Samples of the previous block kept for the filters' delays (at least the longest delay).
const HISTORY: usize = 8;

/// Samples filtered at once: a 20 ms frame at 16 kHz. Longer frames are taken in blocks.
const BLOCK: usize = 320;

/// Levels below this are clamped: digital silence has no meaningful decibel value.
const LEVEL_FLOOR_DBFS: f32 = -100.0;

/// Mean power of a full-scale square wave, the 0 dBFS reference.
const FULL_SCALE: f32 = 32768.0 * 32768.0;

/// The band levels of one frame, in dBFS.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Levels {
    /// Full band.
    pub full: f32,
    /// The comb band (hum and DC removed).
    pub comb: f32,
    /// The low band (0-1 kHz).
    pub low: f32,
}

/// Computes [`Levels`] frame after frame, remembering the last samples for the filters' delays.
#[derive(Clone, Debug)]
pub(super) struct Bands {
    /// The comb's delay.
    lag: usize,
    /// The low band's moving-sum length.
    taps: usize,
    /// `HISTORY` samples of the past, then the block being measured.
    buf: [f32; HISTORY + BLOCK],
    /// The low band's filter stages, aligned with `buf`.
    stage_a: [f32; HISTORY + BLOCK],
    stage_b: [f32; HISTORY + BLOCK],
}

/// Power sums of a block.
#[derive(Clone, Copy, Default)]
struct Sums {
    full: f32,
    comb: f32,
    low: f32,
}

impl Bands {
    /// `scale` is 1 at 8 kHz and 2 at 16 kHz (the caller checks the rate).
    pub fn new(scale: usize) -> Self {
        let scale = scale.clamp(1, 2);
        Bands { lag: 2 * scale, taps: 4 * scale, buf: [0.0; HISTORY + BLOCK], stage_a: [0.0; HISTORY + BLOCK], stage_b: [0.0; HISTORY + BLOCK] }
    }

    /// The levels of `frame`. An empty frame is silence.
    pub fn levels(&mut self, frame: &[i16]) -> Levels {
        let n = frame.len();
        if n == 0 {
            return Levels { full: LEVEL_FLOOR_DBFS, comb: LEVEL_FLOOR_DBFS, low: LEVEL_FLOOR_DBFS };
        }
        let mut total = Sums::default();
        for block in frame.chunks(BLOCK) {
            let s = self.block(block);
            total.full += s.full;
            total.comb += s.comb;
            total.low += s.low;
        }
        let per_sample = 1.0 / n as f32;
        // White-noise gains: the comb's power response 2 - 2cos(ωL) averages 2; the moving sum's
        // averages `taps`.
        Levels { full: dbfs(total.full * per_sample), comb: dbfs(total.comb * per_sample * 0.5), low: dbfs(total.low * per_sample / self.taps as f32) }
    }

    /// Power sums of one block of at most `BLOCK` samples; keeps its tail as the next history.
    fn block(&mut self, block: &[i16]) -> Sums {
        let n = block.len();
        let end = HISTORY + n;
        for (b, &x) in self.buf[HISTORY..end].iter_mut().zip(block) {
            *b = f32::from(x);
        }
        let now = &self.buf[HISTORY..end];
        let full = sum_squares(now);
        let comb = sum_diff_squares(now, &self.buf[HISTORY - self.lag..end - self.lag]);
        // The moving sum as a cascade of pair sums, (1 + z⁻¹)(1 + z⁻²)(1 + z⁻⁴) = Σ z⁻ᵏ for
        // k < 8: log₂(taps) passes instead of taps. Each stage starts early enough to feed the
        // next one's delay from the history.
        let (a, b) = (&mut self.stage_a, &mut self.stage_b);
        pair_sum(&mut a[1..end], &self.buf[1..end], &self.buf[..end - 1]);
        pair_sum(&mut b[3..end], &a[3..end], &a[1..end - 2]);
        let low = if self.taps == 8 {
            pair_sum(&mut a[HISTORY..end], &b[HISTORY..end], &b[HISTORY - 4..end - 4]);
            &a[HISTORY..end]
        } else {
            &b[HISTORY..end]
        };
        let low = sum_squares(low);
        self.buf.copy_within(n..end, 0);
        Sums { full, comb, low }
    }
}

/// `out[i] = x[i] + y[i]`.
fn pair_sum(out: &mut [f32], x: &[f32], y: &[f32]) {
    for (o, (a, b)) in out.iter_mut().zip(x.iter().zip(y)) {
        *o = a + b;
    }
}

/// Σ(x - y)² over slices of the same length, in eight lanes.
fn sum_diff_squares(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (cx, rx) = x.as_chunks::<8>();
    let (cy, ry) = y.as_chunks::<8>();
    for (a, b) in cx.iter().zip(cy) {
        for i in 0..8 {
            lanes[i] += (a[i] - b[i]) * (a[i] - b[i]);
        }
    }
    lanes.iter().sum::<f32>() + rx.iter().zip(ry).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
}

/// Σx², in eight lanes.
fn sum_squares(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (chunks, rest) = x.as_chunks::<8>();
    for c in chunks {
        for i in 0..8 {
            lanes[i] += c[i] * c[i];
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|v| v * v).sum::<f32>()
}

/// A mean power in dBFS, clamped at [`LEVEL_FLOOR_DBFS`].
fn dbfs(power: f32) -> f32 {
    if power.is_nan() || power <= 0.0 { LEVEL_FLOOR_DBFS } else { (10.0 * std::f32::consts::LOG10_2 * log2(power / FULL_SCALE)).max(LEVEL_FLOOR_DBFS) }
}

/// log₂ of a positive normal `x` to within 2e-5 (0.0001 dB): the exponent from the bits, the
/// mantissa's logarithm from the series ln m = 2 artanh t, t = (m - 1) / (m + 1) < 1/3, to t⁷.
/// Three of these per frame cost less than one `log10`.
fn log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let ln = 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0))));
    exponent as f32 + ln * std::f32::consts::LOG2_E
}

/// A noise floor in dB that follows dips at once and rises slowly, so it settles on the level
/// between syllables (minimum tracking) and follows a noise that gets louder within seconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Floor {
    level: Option<f32>,
}

/// Weight of a new frame when the level dips below the floor: fast, yet one quiet frame of
/// random noise does not pull the floor to its minimum.
const FALL: f32 = 0.3;

impl Floor {
    pub const fn new() -> Self {
        Floor { level: None }
    }

    /// Updates the floor with one frame's level; `rise` is the most it climbs per frame, in dB.
    /// Returns the level above the floor as it stood before this frame.
    pub fn update(&mut self, level: f32, rise: f32) -> f32 {
        let Some(floor) = self.level else {
            self.level = Some(level);
            return 0.0;
        };
        let above = level - floor;
        let next = if above < 0.0 { floor + FALL * above } else { floor + rise.min(above) };
        self.level = Some(next);
        above
    }

    /// The current floor, if a frame was seen.
    pub fn level(&self) -> Option<f32> {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: f32, amp: f32, n: usize, start: usize) -> Vec<i16> {
        (start..start + n).map(|i| (amp * (std::f32::consts::TAU * freq * i as f32 / rate).sin()) as i16).collect()
    }

    #[test]
    fn comb_removes_hum_and_keeps_formants() {
        for (rate, scale) in [(8_000.0, 1), (16_000.0, 2)] {
            let n = (rate / 50.0) as usize;
            let mut b = Bands::new(scale);
            let hum = tone(60.0, rate, 10_000.0, n, 0);
            b.levels(&hum);
            let l = b.levels(&tone(60.0, rate, 10_000.0, n, n));
            assert!(l.full - l.comb > 18.0, "{rate}: {l:?}");
            let mut b = Bands::new(scale);
            let f1 = tone(1_000.0, rate, 10_000.0, n, 0);
            b.levels(&f1);
            let l = b.levels(&tone(1_000.0, rate, 10_000.0, n, n));
            assert!((l.full - l.comb).abs() < 3.5, "{rate}: {l:?}");
            // A full-scale sine is -3 dBFS.
            let full = b.levels(&tone(1_000.0, rate, 32_767.0, n, 2 * n)).full;
            assert!((full + 3.0).abs() < 0.1, "{full}");
        }
    }

    #[test]
    fn low_band_lifts_voiced_energy_out_of_white_noise() {
        for (rate, scale) in [(8_000.0, 1), (16_000.0, 2)] {
            let n = (rate / 50.0) as usize;
            let mut b = Bands::new(scale);
            b.levels(&tone(300.0, rate, 10_000.0, n, 0));
            let l = b.levels(&tone(300.0, rate, 10_000.0, n, n));
            assert!(l.low - l.full > 4.0, "{rate}: {l:?}");
            let mut rng = happ_netem::Rng::new(1);
            let mut noise = || (0..n).map(|_| ((rng.unit() - 0.5) * 20_000.0) as i16).collect::<Vec<_>>();
            b.levels(&noise());
            let l = b.levels(&noise());
            assert!((l.low - l.full).abs() < 1.0 && (l.comb - l.full).abs() < 1.0, "{rate}: {l:?}");
        }
    }

    #[test]
    fn short_and_empty_frames_are_handled() {
        let mut b = Bands::new(2);
        assert_eq!(b.levels(&[]).full, LEVEL_FLOOR_DBFS);
        let l = b.levels(&[1000, -1000]);
        assert!(l.full > -40.0 && l.comb > -40.0, "{l:?}");
        assert_eq!(b.levels(&[0; 160]).full, LEVEL_FLOOR_DBFS);
    }

    #[test]
    fn fast_log_is_accurate() {
        for i in 0..10_000 {
            let x = 1e-12f32 * 1.0045f32.powi(i);
            assert!((log2(x) - x.log2()).abs() < 2e-4, "{x}");
        }
        assert_eq!(dbfs(0.0), LEVEL_FLOOR_DBFS);
        assert_eq!(dbfs(f32::NAN), LEVEL_FLOOR_DBFS);
    }

    #[test]
    fn floor_falls_fast_and_rises_slowly() {
        let mut f = Floor::new();
        assert_eq!(f.update(-30.0, 0.1), 0.0);
        assert_eq!(f.update(-20.0, 0.1), 10.0);
        assert!((f.level().unwrap_or(0.0) + 29.9).abs() < 1e-4);
        for _ in 0..20 {
            f.update(-60.0, 0.1);
        }
        assert!(f.level().unwrap_or(0.0) < -59.0);
    }
}
