//! Polyphase FIR resampling by an integer factor, streamed.
//!
//! The filter is a Kaiser-windowed sinc low-pass with its cutoff at the low rate's Nyquist
//! frequency, `TAPS_PER_PHASE * factor - 1` taps long (odd, so linear-phase with an integer
//! delay). Cut off at the low rate's Nyquist frequency, it is zero at every multiple of the
//! factor from its centre (a half-band filter for 2, an L-th band filter in general), so one
//! polyphase branch is a pure delay and costs a multiply per sample.
//!
//! The multiply-accumulate kernel is vectorised over 16 output samples at a time with the taps in
//! the inner loop (so the accumulators stay in registers), and compiled for both the baseline
//! target and AVX2+FMA (see [`crate::simd`]).

use crate::simd::{self, madd, multiversion};

/// Taps per polyphase branch: 47 taps at 16 kHz, 71 at 24 kHz, for about 70 dB of stopband
/// attenuation with a transition band of about 1.5 kHz centred on 4 kHz.
pub const TAPS_PER_PHASE: usize = 24;
/// Kaiser window shape parameter for ~70 dB stopband attenuation.
const BETA: f64 = 7.0;
/// Samples processed per kernel call; longer inputs are processed in pieces.
pub const CHUNK: usize = 480;
/// Largest factor supported.
pub const MAX_FACTOR: usize = 8;

/// Zeroth-order modified Bessel function of the first kind, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 1..64 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// The low-pass prototype for a rate change by `factor`, normalised to unity DC gain, padded
/// with one zero to `TAPS_PER_PHASE * factor` taps.
fn design(factor: usize) -> Vec<f64> {
    let n = TAPS_PER_PHASE * factor - 1;
    let centre = (n - 1) as f64 / 2.0;
    let mut h: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - centre;
            let sinc = if x == 0.0 {
                1.0
            } else {
                let a = std::f64::consts::PI * x / factor as f64;
                a.sin() / a
            };
            let r = x / centre;
            sinc * bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(BETA)
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= sum);
    h.push(0.0);
    h
}

/// Splits the prototype into `factor` branches with taps reversed for a forward dot product:
/// `branch[p][k] = h[(K - 1 - k) * factor + p] * gain`. A branch with a single non-zero tap is
/// returned as `(index, coefficient)` instead, to be computed as a scaled delay.
fn branches(h: &[f64], factor: usize, gain: f64) -> Vec<Branch> {
    (0..factor)
        .map(|p| {
            let taps: Vec<f32> =
                (0..TAPS_PER_PHASE).map(|k| (h[(TAPS_PER_PHASE - 1 - k) * factor + p] * gain) as f32).collect();
            let nonzero: Vec<usize> = (0..TAPS_PER_PHASE).filter(|&k| taps[k].abs() > 1e-9).collect();
            if let [only] = nonzero[..] { Branch::Delay(only, taps[only]) } else { Branch::Taps(taps) }
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Branch {
    Taps(Vec<f32>),
    Delay(usize, f32),
}

multiversion! {
    /// `out[n] = sum_k taps[k] * hist[n + k]`, with `hist.len() >= out.len() + taps.len() - 1`.
    fn convolve(taps: &[f32], hist: &[f32], out: &mut [f32]) {
        const B: usize = 16;
        let k = taps.len();
        let blocks = out.len() / B;
        for (b, block) in out[..blocks * B].chunks_exact_mut(B).enumerate() {
            let mut acc = [0f32; B];
            let window = &hist[b * B..b * B + k - 1 + B];
            for (j, &t) in taps.iter().enumerate() {
                let xs: &[f32; B] = window[j..j + B].try_into().expect("window holds B + k - 1 samples");
                for l in 0..B {
                    acc[l] = madd::<FMA>(t, xs[l], acc[l]);
                }
            }
            block.copy_from_slice(&acc);
        }
        for n in blocks * B..out.len() {
            let mut acc = 0f32;
            for (j, &t) in taps.iter().enumerate() {
                acc = madd::<FMA>(t, hist[n + j], acc);
            }
            out[n] = acc;
        }
    }
}

multiversion! {
    /// Widens samples to `f32`.
    fn widen(input: &[i16], out: &mut [f32]) {
        for (o, &s) in out.iter_mut().zip(input) {
            *o = f32::from(s);
        }
    }
}

multiversion! {
    /// Narrows to `i16`, rounding and saturating, writing every `stride`-th output sample.
    fn narrow(input: &[f32], out: &mut [i16], stride: usize) {
        if stride == 1 {
            for (o, &v) in out.iter_mut().zip(input) {
                *o = simd::f32_to_i16(v);
            }
        } else {
            for (o, &v) in out.iter_mut().step_by(stride).zip(input) {
                *o = simd::f32_to_i16(v);
            }
        }
    }
}

/// Upsampling by an integer factor.
#[derive(Clone, Debug)]
pub struct Interpolator {
    factor: usize,
    branches: Vec<Branch>,
    /// The last `TAPS_PER_PHASE - 1` inputs, then the current chunk.
    hist: Vec<f32>,
    scratch: Vec<f32>,
}

impl Interpolator {
    /// An interpolator by `factor` (2 to [`MAX_FACTOR`]).
    pub fn new(factor: usize) -> Self {
        assert!((2..=MAX_FACTOR).contains(&factor), "interpolation factor {factor} out of range");
        let h = design(factor);
        Interpolator {
            factor,
            branches: branches(&h, factor, factor as f64),
            hist: vec![0.0; TAPS_PER_PHASE - 1 + CHUNK],
            scratch: vec![0.0; CHUNK],
        }
    }

    /// Group delay, in output samples.
    pub fn delay(&self) -> usize {
        (TAPS_PER_PHASE * self.factor - 2) / 2
    }

    /// Resamples `input`, writing `input.len() * factor` samples to `output`.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let mut produced = 0;
        for chunk in input.chunks(CHUNK) {
            let n = chunk.len();
            let out = &mut output[produced..produced + n * self.factor];
            let k = TAPS_PER_PHASE;
            widen(chunk, &mut self.hist[k - 1..k - 1 + n]);
            for (p, branch) in self.branches.iter().enumerate() {
                let phase_out = &mut self.scratch[..n];
                match branch {
                    Branch::Taps(taps) => convolve(taps, &self.hist[..k - 1 + n], phase_out),
                    Branch::Delay(j, g) => {
                        for (o, &x) in phase_out.iter_mut().zip(&self.hist[*j..*j + n]) {
                            *o = g * x;
                        }
                    }
                }
                narrow(phase_out, &mut out[p..], self.factor);
            }
            self.hist.copy_within(n..n + k - 1, 0);
            produced += n * self.factor;
        }
        produced
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.hist.fill(0.0);
    }
}

/// Downsampling by an integer factor.
#[derive(Clone, Debug)]
pub struct Decimator {
    factor: usize,
    branches: Vec<Branch>,
    /// Per branch: the last `TAPS_PER_PHASE - 1` samples of its input stream, then the chunk's.
    hist: Vec<Vec<f32>>,
    /// Input samples of an incomplete group, kept for the next call.
    pending: Vec<i16>,
    wide: Vec<f32>,
    acc: Vec<f32>,
    scratch: Vec<f32>,
}

impl Decimator {
    /// A decimator by `factor` (2 to [`MAX_FACTOR`]).
    pub fn new(factor: usize) -> Self {
        assert!((2..=MAX_FACTOR).contains(&factor), "decimation factor {factor} out of range");
        let h = design(factor);
        Decimator {
            factor,
            branches: branches(&h, factor, 1.0),
            hist: vec![vec![0.0; TAPS_PER_PHASE - 1 + CHUNK]; factor],
            pending: Vec::with_capacity(factor),
            wide: vec![0.0; CHUNK * factor],
            acc: vec![0.0; CHUNK],
            scratch: vec![0.0; CHUNK],
        }
    }

    /// Group delay, in input samples.
    pub fn delay(&self) -> usize {
        (TAPS_PER_PHASE * self.factor - 2) / 2 - (self.factor - 1)
    }

    /// Most output samples `process` can write for `input_len` inputs.
    pub fn max_output(&self, input_len: usize) -> usize {
        (input_len + self.pending.len()) / self.factor
    }

    /// Resamples `input`; returns the number of samples written (inputs that do not complete a
    /// group of `factor` are kept for the next call).
    pub fn process(&mut self, mut input: &[i16], output: &mut [i16]) -> usize {
        let m = self.factor;
        let mut produced = 0;
        // Complete a pending group first.
        if !self.pending.is_empty() {
            let need = (m - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..need]);
            input = &input[need..];
            if self.pending.len() == m {
                let mut group = [0i16; MAX_FACTOR];
                group[..m].copy_from_slice(&self.pending);
                self.pending.clear();
                produced += self.groups(&group[..m], &mut output[produced..]);
            }
        }
        let whole = input.len() / m * m;
        for chunk in input[..whole].chunks(CHUNK * m) {
            produced += self.groups(chunk, &mut output[produced..]);
        }
        self.pending.extend_from_slice(&input[whole..]);
        produced
    }

    /// Filters whole groups of `factor` samples (at most `CHUNK` groups).
    fn groups(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let m = self.factor;
        let k = TAPS_PER_PHASE;
        let n = input.len() / m;
        widen(input, &mut self.wide[..input.len()]);
        // Branch q reads sample m-1-q of each group (see the module notes on alignment).
        for (q, hist) in self.hist.iter_mut().enumerate() {
            for (g, h) in hist[k - 1..k - 1 + n].iter_mut().enumerate() {
                *h = self.wide[g * m + (m - 1 - q)];
            }
        }
        self.acc[..n].fill(0.0);
        for (branch, hist) in self.branches.iter().zip(&self.hist) {
            match branch {
                Branch::Taps(taps) => {
                    convolve(taps, &hist[..k - 1 + n], &mut self.scratch[..n]);
                    for (a, &s) in self.acc[..n].iter_mut().zip(&self.scratch[..n]) {
                        *a += s;
                    }
                }
                Branch::Delay(j, g) => {
                    for (a, &x) in self.acc[..n].iter_mut().zip(&hist[*j..*j + n]) {
                        *a += g * x;
                    }
                }
            }
        }
        narrow(&self.acc[..n], &mut output[..n], 1);
        for hist in &mut self.hist {
            hist.copy_within(n..n + k - 1, 0);
        }
        n
    }

    /// Clears the history and any pending samples.
    pub fn reset(&mut self) {
        for h in &mut self.hist {
            h.fill(0.0);
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_branch_through_the_centre_is_a_pure_delay() {
        // A sinc cut off at the low rate's Nyquist frequency is zero at every multiple of the
        // factor from its centre (an L-th band filter), so one branch is a scaled delay.
        for factor in [2, 3, 6] {
            let b = branches(&design(factor), factor, factor as f64);
            let delays: Vec<f32> = b.iter().filter_map(|b| if let Branch::Delay(_, g) = b { Some(*g) } else { None }).collect();
            assert_eq!(delays.len(), 1, "factor {factor}");
            assert!((delays[0] - 1.0).abs() < 0.01, "factor {factor}: gain {}", delays[0]);
        }
    }

    #[test]
    fn prototype_is_symmetric_with_unity_gain() {
        for factor in [2, 3] {
            let h = design(factor);
            let n = h.len() - 1;
            assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for i in 0..n {
                assert!((h[i] - h[n - 1 - i]).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn dc_passes_at_unity_gain() {
        let mut up = Interpolator::new(2);
        let mut out = vec![0i16; 640];
        up.process(&[1000; 320], &mut out);
        assert!(out[100..].iter().all(|&s| (s - 1000).abs() <= 1), "{:?}", &out[100..110]);
        let mut down = Decimator::new(3);
        let mut out = vec![0i16; 160];
        assert_eq!(down.process(&[-2000; 480], &mut out), 160);
        assert!(out[40..].iter().all(|&s| (s + 2000).abs() <= 1));
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let signal: Vec<i16> = (0..3000).map(|i| ((i as f32 * 0.37).sin() * 9000.0) as i16).collect();
        let mut whole = Decimator::new(2);
        let mut a = vec![0i16; 1500];
        let n = whole.process(&signal, &mut a);
        let mut pieces = Decimator::new(2);
        let mut b = vec![0i16; 1500];
        let mut m = 0;
        for piece in signal.chunks(7) {
            m += pieces.process(piece, &mut b[m..]);
        }
        assert_eq!((n, m), (1500, 1500));
        assert_eq!(a, b);
        let mut up1 = Interpolator::new(3);
        let mut up2 = Interpolator::new(3);
        let mut c = vec![0i16; 9000];
        let mut d = vec![0i16; 9000];
        up1.process(&signal, &mut c);
        let mut m = 0;
        for piece in signal.chunks(161) {
            m += up2.process(piece, &mut d[m..]);
        }
        assert_eq!(c, d);
    }
}
