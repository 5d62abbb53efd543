//! Comfort noise (RFC 3389): the noise level of a CN payload, and white noise at that level.
//!
//! A CN packet's first byte is the noise level in -dBov (0..=127); spectral coefficients may
//! follow and are ignored here (white noise at the right level is what G.711 peers expect; the
//! spectral shape matters only for wideband codecs).

/// Static RTP payload type of comfort noise at 8 kHz (RFC 3551).
pub const PAYLOAD_TYPE: u8 = 13;

/// The level byte of a CN payload, or `None` for an empty one.
pub fn level(payload: &[u8]) -> Option<u8> {
    payload.first().map(|l| l & 0x7F)
}

/// Root-mean-square amplitude of `level` -dBov, with 0 dBov a full-scale sine (RMS 32767/√2).
pub fn rms(level: u8) -> f32 {
    32_767.0 * std::f32::consts::FRAC_1_SQRT_2 * 10f32.powf(-f32::from(level) / 20.0)
}

/// The -dBov level of a frame, for sending CN (clamped to 0..=127).
pub fn level_of(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let power: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    if power <= 0.0 {
        return 127;
    }
    let full = f64::from(rms(0));
    let db = 20.0 * (power.sqrt() / full).log10();
    (-db).round().clamp(0.0, 127.0) as u8
}

/// A deterministic white-noise generator.
#[derive(Clone, Debug)]
pub struct NoiseGenerator {
    state: u32,
}

impl Default for NoiseGenerator {
    fn default() -> Self {
        NoiseGenerator { state: 0x9E37_79B9 }
    }
}

impl NoiseGenerator {
    /// Fills `out` with uniform white noise at `level` -dBov.
    pub fn fill(&mut self, level: u8, out: &mut [i16]) {
        // Uniform noise in [-a, a] has an RMS of a/√3.
        let a = rms(level) * 3f32.sqrt();
        for s in out.iter_mut() {
            // xorshift32
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.state = x;
            let unit = (x as f32 / u32::MAX as f32) * 2.0 - 1.0;
            *s = crate::simd::f32_to_i16(unit * a);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn generated_noise_has_the_requested_level() {
        let mut g = NoiseGenerator::default();
        let mut frame = vec![0i16; 8000];
        for level in [30u8, 50, 70] {
            g.fill(level, &mut frame);
            let measured = level_of(&frame);
            assert!(measured.abs_diff(level) <= 1, "asked {level}, measured {measured}");
        }
        assert_eq!(level_of(&[0; 160]), 127);
    }

    #[test]
    fn payload_level() {
        assert_eq!(level(&[40, 1, 2]), Some(40));
        assert_eq!(level(&[]), None);
    }
}
