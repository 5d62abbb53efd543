//! A small streaming polyphase resampler for rational ratios (espeak-ng's 22,050 Hz to the 16 kHz
//! or 8 kHz the bridge takes), with a Blackman-windowed sinc low-pass.
//!
//! Output sample `n` sits at input time `n · down / up` (the rates divided by their greatest
//! common divisor). Its value is the input convolved with the low-pass kernel centred on that
//! instant; the fractional offset `(n · down mod up) / up` picks one of `up` precomputed rows of
//! taps (the polyphase bank), so each output costs one dot product of `2 · half` taps.
//!
//! The cutoff sits at 90 % of the lower Nyquist frequency, leaving a transition band for the
//! window, and each row is normalised to unit DC gain. With 16 zero crossings each side of the
//! kernel the stop band is about 60 dB down (measured in the tests below), well beyond what a
//! telephone line resolves.

/// Zero crossings of the sinc on each side of the kernel's centre.
const ZERO_CROSSINGS: f64 = 16.0;
/// The cutoff as a fraction of the lower Nyquist frequency.
const CUTOFF: f64 = 0.9;

/// A resampler from one rate to another, fed in chunks of any size.
#[derive(Debug, Clone)]
pub(crate) struct Resampler {
    up: u64,
    down: u64,
    /// Taps on each side of the centre, in input samples.
    half: usize,
    /// `up` rows of `2 · half` taps.
    taps: Vec<f32>,
    /// Input not yet consumed; `history[0]` is input sample `start` (negative at first: the
    /// zeros that let the first output be centred on input sample 0).
    history: Vec<f32>,
    start: i64,
    /// Real input samples received (the zero padding excluded).
    received: i64,
    /// The next output sample's index.
    next: u64,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz; both must be non-zero.
    pub(crate) fn new(from: u32, to: u32) -> Self {
        let g = gcd(u64::from(from), u64::from(to)).max(1);
        let (up, down) = (u64::from(to) / g, u64::from(from) / g);
        // The cutoff in cycles per input sample.
        let fc = CUTOFF * 0.5 * (f64::from(to) / f64::from(from)).min(1.0);
        let half = (ZERO_CROSSINGS / (2.0 * fc)).ceil() as usize;
        let width = 2 * half;
        let mut taps = Vec::with_capacity(up as usize * width);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let row: Vec<f64> = (0..width)
                .map(|k| {
                    // Tap k multiplies input sample i - half + 1 + k, at this distance from the
                    // output instant i + frac.
                    let t = k as f64 - half as f64 + 1.0 - frac;
                    let x = 2.0 * fc * t;
                    let sinc = if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                    sinc * blackman(t / half as f64)
                })
                .collect();
            let sum: f64 = row.iter().sum();
            taps.extend(row.iter().map(|v| (v / sum) as f32));
        }
        let pad = half - 1;
        Self { up, down, half, taps, history: vec![0.0; pad], start: -(pad as i64), received: 0, next: 0 }
    }

    /// Resamples `input`, appending what can be computed to `out`; the rest waits for more input
    /// (about `half` input samples, a millisecond at 22 kHz) or [`flush`](Self::flush).
    pub(crate) fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        self.received += input.len() as i64;
        self.drain(out, i64::MAX);
    }

    /// The input ended: computes the remaining output, as if silence followed, up to the instant of
    /// the last input sample.
    pub(crate) fn flush(&mut self, out: &mut Vec<i16>) {
        self.history.extend(std::iter::repeat_n(0.0, self.half));
        let received = self.received;
        self.drain(out, received);
        self.history.clear();
    }

    /// Computes outputs whose kernel is covered by the history and whose instant lies before
    /// input sample `limit`.
    fn drain(&mut self, out: &mut Vec<i16>, limit: i64) {
        let width = 2 * self.half;
        let end = self.start + self.history.len() as i64;
        loop {
            let pos = self.next * self.down;
            let centre = (pos / self.up) as i64;
            let phase = (pos % self.up) as usize;
            let first = centre - self.half as i64 + 1;
            if centre >= limit || first + width as i64 > end {
                break;
            }
            let offset = (first - self.start) as usize;
            let row = &self.taps[phase * width..(phase + 1) * width];
            let acc: f32 = row.iter().zip(&self.history[offset..offset + width]).map(|(t, x)| t * x).sum();
            out.push(acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            self.next += 1;
        }
        // Keep only what the next output's kernel still needs.
        let needed = (self.next * self.down / self.up) as i64 - self.half as i64 + 1;
        let drop = (needed - self.start).clamp(0, self.history.len() as i64) as usize;
        self.history.drain(..drop);
        self.start += drop as i64;
    }
}

/// The Blackman window on `[-1, 1]`.
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (x + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples).map(|n| (amplitude * (2.0 * std::f64::consts::PI * hz * n as f64 / f64::from(rate)).sin()).round() as i16).collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn resample_all(from: u32, to: u32, input: &[i16], chunk: usize) -> Vec<i16> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            r.process(part, &mut out);
        }
        r.flush(&mut out);
        out
    }

    #[test]
    fn output_length_follows_the_ratio() {
        let input = tone(22_050, 440.0, 22_050, 8000.0);
        assert_eq!(resample_all(22_050, 16_000, &input, 441).len(), 16_000);
        assert_eq!(resample_all(22_050, 8_000, &input, 1000).len(), 8_000);
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = tone(22_050, 1000.0, 5_000, 10_000.0);
        let whole = resample_all(22_050, 16_000, &input, input.len());
        for chunk in [1, 7, 160, 441, 4096] {
            assert_eq!(resample_all(22_050, 16_000, &input, chunk), whole, "chunks of {chunk}");
        }
    }

    /// A tone well inside the pass band comes out as the same tone, sample for sample.
    #[test]
    fn passes_speech_band_tones() {
        for (to, hz) in [(16_000, 1000.0), (16_000, 3000.0), (8_000, 1000.0), (8_000, 3000.0)] {
            let out = resample_all(22_050, to, &tone(22_050, hz, 22_050, 10_000.0), 512);
            let expected = tone(to, hz, out.len(), 10_000.0);
            // Skip the edges, where the kernel reaches into the zero padding.
            let skip = 100;
            let worst = out[skip..out.len() - skip].iter().zip(&expected[skip..]).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max().expect("samples");
            assert!(worst < 100, "{hz} Hz to {to} Hz: worst error {worst} of 10000");
        }
    }

    /// A tone above the output's Nyquist frequency must not fold back into the band.
    #[test]
    fn rejects_what_would_alias() {
        for (to, hz) in [(16_000, 9_500.0), (8_000, 5_000.0)] {
            let out = resample_all(22_050, to, &tone(22_050, hz, 22_050, 10_000.0), 512);
            let attenuation = 20.0 * (rms(&out[100..out.len() - 100]) / (10_000.0 / 2f64.sqrt())).log10();
            assert!(attenuation < -55.0, "{hz} Hz to {to} Hz: only {attenuation:.1} dB down");
        }
    }
}
