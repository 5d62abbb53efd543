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
            let taps: Vec<f32> = (0..TAPS_PER_PHASE).map(|k| (h[(TAPS_PER_PHASE - 1 - k) * factor + p] * gain) as f32).collect();
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

/// `out[n] += sum_k taps[k] * hist[n + k]` for a block of `B` outputs kept in registers while
/// the taps run in the inner loop. Each output is its own dependency chain of multiply-adds, so
/// the block must be wide enough to hide their latency: 64 outputs are 8 AVX registers.
#[inline(always)]
fn convolve_block<const FMA: bool, const B: usize>(taps: &[f32], window: &[f32], out: &mut [f32]) {
    let mut acc: [f32; B] = out[..B].try_into().expect("block of B outputs");
    for (j, &t) in taps.iter().enumerate() {
        let xs: &[f32; B] = window[j..j + B].try_into().expect("window holds B + k - 1 samples");
        for l in 0..B {
            acc[l] = madd::<FMA>(t, xs[l], acc[l]);
        }
    }
    out[..B].copy_from_slice(&acc);
}

/// `out[n] += sum_k taps[k] * hist[n + k]`, with `hist.len() >= out.len() + taps.len() - 1`:
/// blocks of 64 outputs, then of 16, then one at a time.
#[inline(always)]
fn convolve_add<const FMA: bool>(taps: &[f32], hist: &[f32], out: &mut [f32]) {
    let k = taps.len();
    let mut n = 0;
    while n + 64 <= out.len() {
        convolve_block::<FMA, 64>(taps, &hist[n..n + k - 1 + 64], &mut out[n..n + 64]);
        n += 64;
    }
    while n + 16 <= out.len() {
        convolve_block::<FMA, 16>(taps, &hist[n..n + k - 1 + 16], &mut out[n..n + 16]);
        n += 16;
    }
    for i in n..out.len() {
        let mut acc = out[i];
        for (j, &t) in taps.iter().enumerate() {
            acc = madd::<FMA>(t, hist[i + j], acc);
        }
        out[i] = acc;
    }
}

/// Adds one branch's contribution for `n` outputs to `out`.
#[inline(always)]
fn branch_add<const FMA: bool>(branch: &Branch, hist: &[f32], out: &mut [f32]) {
    match branch {
        Branch::Taps(taps) => convolve_add::<FMA>(taps, hist, out),
        Branch::Delay(j, g) => {
            let n = out.len();
            for (o, &x) in out.iter_mut().zip(&hist[*j..*j + n]) {
                *o = madd::<FMA>(*g, x, *o);
            }
        }
    }
}

multiversion! {
    /// One chunk of interpolation: `chunk` enters the history `hist` (whose first
    /// `TAPS_PER_PHASE - 1` samples are the previous inputs), each branch fills its part of
    /// `scratch`, and the branches are interleaved into `out` (`chunk.len() * factor` samples).
    fn interpolate(branches: &[Branch], chunk: &[i16], hist: &mut [f32], scratch: &mut [f32], out: &mut [i16]) {
        let k = TAPS_PER_PHASE;
        let n = chunk.len();
        let factor = branches.len();
        for (h, &s) in hist[k - 1..k - 1 + n].iter_mut().zip(chunk) {
            *h = f32::from(s);
        }
        for (p, branch) in branches.iter().enumerate() {
            let part = &mut scratch[p * n..(p + 1) * n];
            part.fill(0.0);
            branch_add::<FMA>(branch, &hist[..k - 1 + n], part);
        }
        let out = &mut out[..n * factor];
        match factor {
            2 => {
                let (a, b) = scratch[..2 * n].split_at(n);
                for ((o, &x), &y) in out.chunks_exact_mut(2).zip(a).zip(b) {
                    o[0] = simd::f32_to_i16(x);
                    o[1] = simd::f32_to_i16(y);
                }
            }
            3 => {
                let (a, rest) = scratch[..3 * n].split_at(n);
                let (b, c) = rest.split_at(n);
                for (((o, &x), &y), &z) in out.chunks_exact_mut(3).zip(a).zip(b).zip(c) {
                    o[0] = simd::f32_to_i16(x);
                    o[1] = simd::f32_to_i16(y);
                    o[2] = simd::f32_to_i16(z);
                }
            }
            _ => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = simd::f32_to_i16(scratch[(i % factor) * n + i / factor]);
                }
            }
        }
        hist.copy_within(n..n + k - 1, 0);
    }
}

multiversion! {
    /// One chunk of decimation: whole groups of `factor` samples from `input` are split into
    /// the branches' histories (`hist`, one stretch of `stride` per branch, branch q taking
    /// sample `factor - 1 - q` of each group), filtered and summed into `acc`, and written to
    /// `out` (`input.len() / factor` samples).
    fn decimate(branches: &[Branch], input: &[i16], hist: &mut [f32], stride: usize, acc: &mut [f32], out: &mut [i16]) {
        let k = TAPS_PER_PHASE;
        let m = branches.len();
        let n = input.len() / m;
        match m {
            2 => {
                let (h0, rest) = hist.split_at_mut(stride);
                let h1 = &mut rest[..stride];
                for ((pair, a), b) in input.chunks_exact(2).zip(&mut h0[k - 1..k - 1 + n]).zip(&mut h1[k - 1..k - 1 + n]) {
                    *a = f32::from(pair[1]);
                    *b = f32::from(pair[0]);
                }
            }
            _ => {
                for q in 0..m {
                    let h = &mut hist[q * stride + k - 1..q * stride + k - 1 + n];
                    for (g, v) in h.iter_mut().enumerate() {
                        *v = f32::from(input[g * m + (m - 1 - q)]);
                    }
                }
            }
        }
        let acc = &mut acc[..n];
        acc.fill(0.0);
        for (q, branch) in branches.iter().enumerate() {
            branch_add::<FMA>(branch, &hist[q * stride..q * stride + k - 1 + n], acc);
        }
        for (o, &v) in out[..n].iter_mut().zip(acc.iter()) {
            *o = simd::f32_to_i16(v);
        }
        for q in 0..m {
            hist.copy_within(q * stride + n..q * stride + n + k - 1, q * stride);
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
        Interpolator { factor, branches: branches(&h, factor, factor as f64), hist: vec![0.0; TAPS_PER_PHASE - 1 + CHUNK], scratch: vec![0.0; CHUNK * factor] }
    }

    /// Group delay, in output samples.
    pub fn delay(&self) -> usize {
        (TAPS_PER_PHASE * self.factor - 2) / 2
    }

    /// Resamples `input`, writing `input.len() * factor` samples to `output`.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        let mut produced = 0;
        for chunk in input.chunks(CHUNK) {
            let n = chunk.len() * self.factor;
            interpolate(&self.branches, chunk, &mut self.hist, &mut self.scratch, &mut output[produced..produced + n]);
            produced += n;
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
    /// Per branch, a stretch of `TAPS_PER_PHASE - 1 + CHUNK`: the last inputs of its stream,
    /// then the current chunk's.
    hist: Vec<f32>,
    /// Input samples of an incomplete group, kept for the next call.
    pending: [i16; MAX_FACTOR],
    pending_len: usize,
    acc: Vec<f32>,
}

impl Decimator {
    const STRIDE: usize = TAPS_PER_PHASE - 1 + CHUNK;

    /// A decimator by `factor` (2 to [`MAX_FACTOR`]).
    pub fn new(factor: usize) -> Self {
        assert!((2..=MAX_FACTOR).contains(&factor), "decimation factor {factor} out of range");
        let h = design(factor);
        Decimator {
            factor,
            branches: branches(&h, factor, 1.0),
            hist: vec![0.0; Self::STRIDE * factor],
            pending: [0; MAX_FACTOR],
            pending_len: 0,
            acc: vec![0.0; CHUNK],
        }
    }

    /// Group delay, in input samples.
    pub fn delay(&self) -> usize {
        (TAPS_PER_PHASE * self.factor - 2) / 2 - (self.factor - 1)
    }

    /// Most output samples `process` can write for `input_len` inputs.
    pub fn max_output(&self, input_len: usize) -> usize {
        (input_len + self.pending_len) / self.factor
    }

    /// Resamples `input`; returns the number of samples written (inputs that do not complete a
    /// group of `factor` are kept for the next call).
    pub fn process(&mut self, mut input: &[i16], output: &mut [i16]) -> usize {
        let m = self.factor;
        let mut produced = 0;
        if self.pending_len > 0 {
            let need = (m - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + need].copy_from_slice(&input[..need]);
            self.pending_len += need;
            input = &input[need..];
            if self.pending_len == m {
                self.pending_len = 0;
                let group = self.pending;
                produced += self.groups(&group[..m], &mut output[produced..]);
            }
        }
        let whole = input.len() / m * m;
        for chunk in input[..whole].chunks(CHUNK * m) {
            produced += self.groups(chunk, &mut output[produced..]);
        }
        let rest = &input[whole..];
        self.pending[self.pending_len..self.pending_len + rest.len()].copy_from_slice(rest);
        self.pending_len += rest.len();
        produced
    }

    /// Filters whole groups of `factor` samples (at most `CHUNK` groups).
    fn groups(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        decimate(&self.branches, input, &mut self.hist, Self::STRIDE, &mut self.acc, output);
        input.len() / self.factor
    }

    /// Clears the history and any pending samples.
    pub fn reset(&mut self) {
        self.hist.fill(0.0);
        self.pending_len = 0;
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
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
    fn both_kernels_agree() {
        let signal: Vec<i16> = (0..4000).map(|i| ((i as f32 * 0.21).sin() * 15_000.0) as i16).collect();
        let run = |simd: bool| {
            crate::simd::set_enabled(simd);
            let mut up = Interpolator::new(3);
            let mut a = vec![0i16; 12_000];
            up.process(&signal, &mut a);
            let mut down = Decimator::new(2);
            let mut b = vec![0i16; 2000];
            down.process(&signal, &mut b);
            crate::simd::set_enabled(true);
            (a, b)
        };
        let (a1, b1) = run(false);
        let (a2, b2) = run(true);
        // FMA rounds once instead of twice: at most one unit of difference.
        assert!(a1.iter().zip(&a2).all(|(x, y)| (x - y).abs() <= 1));
        assert!(b1.iter().zip(&b2).all(|(x, y)| (x - y).abs() <= 1));
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
