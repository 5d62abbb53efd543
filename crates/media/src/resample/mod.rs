//! Sample-rate conversion between the 8 kHz of the phone line and the rates of speech engines,
//! streamed frame by frame with per-call state and no allocation per frame.
//!
//! - Integer ratios (8 ↔ 16 kHz, 8 ↔ 24 kHz, 16 ↔ 48 kHz...) use the polyphase FIR of [`fir`]:
//!   about 1.4 ms of delay, and measured here 6× cheaper than rubato's FFT resampler on 20 ms
//!   frames (`cargo bench -p happ-benches --bench resample`), which matters because every call
//!   resamples both ways all the time.
//! - Any other ratio (22.05 kHz from espeak-ng, 44.1 kHz WAV files) uses rubato's synchronous FFT
//!   resampler, which takes fixed input chunks: input is gathered until a chunk is complete.
//!
//! Either way [`Resampler::delay`] tells how far the output lags the input, so that timestamps
//! (of transcripts, of what was actually played) can be corrected.

pub mod fir;

use std::time::Duration;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::Resampler as _;

use fir::{Decimator, Interpolator};

/// Why a resampler could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    /// A rate is zero or above 384 kHz.
    #[error("unsupported sample rate {0} Hz")]
    Rate(u32),
    /// rubato refused the ratio.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Ratio {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// rubato's explanation.
        reason: String,
    },
}

/// Largest integer factor handled by the FIR.
const MAX_FIR_FACTOR: u32 = 6;

/// A streaming sample-rate converter for one direction of one call.
pub struct Resampler {
    from: u32,
    to: u32,
    engine: Engine,
}

enum Engine {
    Same,
    Up(Interpolator),
    Down(Decimator),
    Fft(Box<FftStream>),
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.engine {
            Engine::Same => "passthrough",
            Engine::Up(_) => "fir-up",
            Engine::Down(_) => "fir-down",
            Engine::Fft(_) => "rubato-fft",
        };
        write!(f, "Resampler({} -> {} Hz, {engine})", self.from, self.to)
    }
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        for rate in [from, to] {
            if rate == 0 || rate > 384_000 {
                return Err(ResampleError::Rate(rate));
            }
        }
        let engine = if from == to {
            Engine::Same
        } else if to.is_multiple_of(from) && to / from <= MAX_FIR_FACTOR {
            Engine::Up(Interpolator::new((to / from) as usize))
        } else if from.is_multiple_of(to) && from / to <= MAX_FIR_FACTOR {
            Engine::Down(Decimator::new((from / to) as usize))
        } else {
            Engine::Fft(Box::new(FftStream::new(from, to)?))
        };
        Ok(Resampler { from, to, engine })
    }

    /// Input and output rates.
    pub fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// The most samples [`Resampler::process`] writes for `input_len` input samples.
    pub fn max_output(&self, input_len: usize) -> usize {
        match &self.engine {
            Engine::Same => input_len,
            Engine::Up(_) => input_len * (self.to / self.from) as usize,
            Engine::Down(down) => down.max_output(input_len),
            Engine::Fft(fft) => fft.max_output(input_len),
        }
    }

    /// Converts `input`, writing to `output` (which must hold [`Resampler::max_output`]
    /// samples); returns the number written. All input is consumed: what does not yet make
    /// output is kept for the next call.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        debug_assert!(output.len() >= self.max_output(input.len()), "resampler output buffer too small");
        match &mut self.engine {
            Engine::Same => {
                let n = input.len().min(output.len());
                output[..n].copy_from_slice(&input[..n]);
                n
            }
            Engine::Up(up) => up.process(input, output),
            Engine::Down(down) => down.process(input, output),
            Engine::Fft(fft) => fft.process(input, output),
        }
    }

    /// How far the output lags the input.
    pub fn delay(&self) -> Duration {
        let (samples, rate) = match &self.engine {
            Engine::Same => (0, self.to),
            Engine::Up(up) => (up.delay(), self.to),
            Engine::Down(down) => (down.delay(), self.from),
            Engine::Fft(fft) => (fft.delay(), self.to),
        };
        Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(rate))
    }

    /// Forgets the signal history (for a new stream, or to cut playback short).
    pub fn reset(&mut self) {
        match &mut self.engine {
            Engine::Same => {}
            Engine::Up(up) => up.reset(),
            Engine::Down(down) => down.reset(),
            Engine::Fft(fft) => fft.reset(),
        }
    }
}

/// rubato's FFT resampler fed by fixed input chunks of about 20 ms.
struct FftStream {
    inner: rubato::Fft<f32>,
    chunk_in: usize,
    input: Vec<f32>,
    gathered: usize,
    out: Vec<f32>,
}

impl FftStream {
    fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let wanted = (from / 50) as usize;
        let inner = rubato::Fft::<f32>::new(from as usize, to as usize, wanted, 1, rubato::FixedSync::Input).map_err(|e| ResampleError::Ratio {
            from,
            to,
            reason: e.to_string(),
        })?;
        let chunk_in = inner.input_frames_next();
        let out_max = inner.output_frames_max();
        Ok(FftStream { inner, chunk_in, input: vec![0.0; chunk_in], gathered: 0, out: vec![0.0; out_max] })
    }

    fn max_output(&self, input_len: usize) -> usize {
        (self.gathered + input_len) / self.chunk_in * self.inner.output_frames_max()
    }

    fn delay(&self) -> usize {
        self.inner.output_delay()
    }

    fn process(&mut self, mut input: &[i16], output: &mut [i16]) -> usize {
        let mut produced = 0;
        while !input.is_empty() {
            let take = (self.chunk_in - self.gathered).min(input.len());
            for (d, &s) in self.input[self.gathered..self.gathered + take].iter_mut().zip(input) {
                *d = f32::from(s);
            }
            self.gathered += take;
            input = &input[take..];
            if self.gathered < self.chunk_in {
                break;
            }
            self.gathered = 0;
            let capacity = self.out.len();
            let written = match (InterleavedSlice::new(&self.input[..], 1, self.chunk_in), InterleavedSlice::new_mut(&mut self.out[..], 1, capacity)) {
                (Ok(i), Ok(mut o)) => self.inner.process_into_buffer(&i, &mut o, None).map_or(0, |(_, w)| w),
                // Both buffers are sized from the resampler's own figures at construction.
                _ => 0,
            };
            for (d, &v) in output[produced..produced + written].iter_mut().zip(&self.out) {
                *d = crate::simd::f32_to_i16(v);
            }
            produced += written;
        }
        produced
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.gathered = 0;
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize, amplitude: f64) -> Vec<i16> {
        (0..n).map(|i| (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    /// Power of `signal` at `freq` relative to a full-amplitude tone, by correlation, in dB.
    fn level_at(signal: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in signal.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate);
            re += f64::from(s) * a.cos();
            im += f64::from(s) * a.sin();
        }
        let amplitude = 2.0 * (re * re + im * im).sqrt() / signal.len() as f64;
        20.0 * (amplitude / 10_000.0).log10()
    }

    fn run(r: &mut Resampler, input: &[i16], frame: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = vec![0i16; r.max_output(frame) + 16];
        for piece in input.chunks(frame) {
            let n = r.process(piece, &mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn engines_by_ratio() {
        assert_eq!(format!("{:?}", Resampler::new(8000, 16000).expect("ok")), "Resampler(8000 -> 16000 Hz, fir-up)");
        assert_eq!(format!("{:?}", Resampler::new(24000, 8000).expect("ok")), "Resampler(24000 -> 8000 Hz, fir-down)");
        assert_eq!(format!("{:?}", Resampler::new(22050, 8000).expect("ok")), "Resampler(22050 -> 8000 Hz, rubato-fft)");
        assert_eq!(Resampler::new(0, 8000).err(), Some(ResampleError::Rate(0)));
    }

    #[test]
    fn passband_kept_and_images_rejected_upsampling() {
        for to in [16000, 24000] {
            let mut r = Resampler::new(8000, to).expect("ok");
            let out = run(&mut r, &tone(1000.0, 8000, 16000, 10_000.0), 160);
            assert_eq!(out.len(), 16000 * (to / 8000) as usize);
            let steady = &out[out.len() / 4..];
            assert!(level_at(steady, 1000.0, to).abs() < 0.1, "{to}: 1 kHz level");
            // The image of 1 kHz sits at 7 kHz.
            assert!(level_at(steady, 7000.0, to) < -60.0, "{to}: image {}", level_at(steady, 7000.0, to));
        }
    }

    #[test]
    fn passband_kept_and_aliases_rejected_downsampling() {
        for from in [16000u32, 24000] {
            let mut r = Resampler::new(from, 8000).expect("ok");
            let n = from as usize * 2;
            let out = run(&mut r, &tone(1000.0, from, n, 10_000.0), (from / 50) as usize);
            assert!(level_at(&out[4000..], 1000.0, 8000).abs() < 0.1, "{from}");
            // 6 kHz would alias to 2 kHz.
            let mut r = Resampler::new(from, 8000).expect("ok");
            let out = run(&mut r, &tone(6000.0, from, n, 10_000.0), (from / 50) as usize);
            assert!(level_at(&out[4000..], 2000.0, 8000) < -60.0, "{from}: alias {}", level_at(&out[4000..], 2000.0, 8000));
        }
    }

    #[test]
    fn delay_is_what_is_reported() {
        // An impulse comes out `delay` later.
        for (from, to) in [(8000u32, 16000u32), (16000, 8000), (8000, 24000), (24000, 8000)] {
            let mut r = Resampler::new(from, to).expect("ok");
            let mut input = vec![0i16; from as usize / 10];
            input[from as usize / 50] = 20_000;
            let out = run(&mut r, &input, (from / 50) as usize);
            let peak = out.iter().enumerate().max_by_key(|(_, s)| s.unsigned_abs()).map(|(i, _)| i).expect("output");
            let expected = (from as usize / 50) * to as usize / from as usize;
            let delay = (r.delay().as_secs_f64() * f64::from(to)).round() as usize;
            assert!(peak.abs_diff(expected + delay) <= 1, "{from}->{to}: peak {peak}, expected {expected} + {delay}");
        }
    }

    #[test]
    fn rubato_handles_odd_ratios_with_its_delay_reported() {
        let mut r = Resampler::new(22050, 8000).expect("ok");
        let out = run(&mut r, &tone(500.0, 22050, 22050 * 2, 10_000.0), 441);
        assert_eq!(out.len(), 16000);
        assert!(level_at(&out[4000..], 500.0, 8000).abs() < 0.2);
        assert!(r.delay() > Duration::ZERO && r.delay() < Duration::from_millis(50), "{:?}", r.delay());
    }

    #[test]
    fn matches_rubato_in_the_passband() {
        // Our FIR and rubato's FFT resampler agree on band-limited speech-like content, once
        // each is aligned by its own reported delay.
        let input: Vec<i16> = (0..32000)
            .map(|i| {
                let t = f64::from(i) / 8000.0;
                (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + 3000.0 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin()) as i16
            })
            .collect();
        let mut ours = Resampler::new(8000, 16000).expect("ok");
        let a = run(&mut ours, &input, 160);
        let mut theirs = FftStream::new(8000, 16000).expect("ok");
        let mut b = vec![0i16; 70000];
        let mut nb = 0;
        for piece in input.chunks(160) {
            nb += theirs.process(piece, &mut b[nb..]);
        }
        let (da, db) = (ours.delay().as_secs_f64() * 16000.0, theirs.delay() as f64);
        let (da, db) = (da.round() as usize, db.round() as usize);
        let n = 40000;
        let err: f64 = (0..n).map(|i| (f64::from(a[i + da + 8000]) - f64::from(b[i + db + 8000])).powi(2)).sum();
        let power: f64 = (0..n).map(|i| f64::from(b[i + db + 8000]).powi(2)).sum();
        let snr = 10.0 * (power / err).log10();
        assert!(snr > 40.0, "SNR against rubato {snr:.1} dB");
    }

    #[test]
    fn reset_clears_history() {
        let mut r = Resampler::new(16000, 8000).expect("ok");
        let mut out = [0i16; 160];
        r.process(&[10_000; 320], &mut out);
        r.reset();
        let n = r.process(&[0; 320], &mut out);
        assert_eq!(n, 160);
        assert!(out.iter().all(|&s| s == 0));
    }
}
