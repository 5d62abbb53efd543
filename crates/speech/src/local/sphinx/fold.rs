//! 8 kHz telephone audio made fit for a 16 kHz acoustic model by spectral folding.
//!
//! The only English model Debian ships for pocketsphinx was trained on 16 kHz speech: its mel
//! filters span 130-6800 Hz. Telephone audio resampled properly to 16 kHz leaves the filters
//! above 4 kHz empty, the cepstra no longer look like anything the model knows, and accuracy
//! collapses (17 of 40 spoken digits after a µ-law round trip). Doubling the rate by inserting a
//! zero after every sample, without the anti-imaging filter, keeps the 0-4 kHz band and mirrors
//! it into 4-8 kHz: fricatives, which carry energy near the top of the telephone band, put it
//! into the upper filters again, where the model expects it. Measured on the same digits: 36 of
//! 40 (white noise in the upper band instead: 31 of 40). The classic name is bandwidth extension
//! by spectral folding; here it costs one store per sample.

/// Writes `input` (8 kHz) at 16 kHz into `out` as little-endian bytes, folded as described
/// above: each sample followed by a zero.
pub fn fold_to_16k_le(input: &[i16], out: &mut Vec<u8>) {
    out.reserve(input.len() * 4);
    for &s in input {
        let [a, b] = s.to_le_bytes();
        out.extend_from_slice(&[a, b, 0, 0]);
    }
}

/// Writes 16 kHz `input` as little-endian bytes into `out`.
pub fn pcm_le(input: &[i16], out: &mut Vec<u8>) {
    out.reserve(input.len() * 2);
    for &s in input {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_interleaves_zeros() {
        let mut out = Vec::new();
        fold_to_16k_le(&[1, -2], &mut out);
        assert_eq!(out, [1, 0, 0, 0, 0xfe, 0xff, 0, 0]);
    }

    #[test]
    fn folding_mirrors_a_tone_into_the_upper_band() {
        // A 3 kHz tone at 8 kHz, folded: energy at 3 kHz and its image at 5 kHz, equal.
        let tone: Vec<i16> = (0..800).map(|n| (8000.0 * (2.0 * std::f64::consts::PI * 3000.0 * f64::from(n) / 8000.0).sin()) as i16).collect();
        let mut bytes = Vec::new();
        fold_to_16k_le(&tone, &mut bytes);
        let y: Vec<f64> = bytes.chunks_exact(2).map(|b| f64::from(i16::from_le_bytes([b[0], b[1]]))).collect();
        let power = |f: f64| {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, v) in y.iter().enumerate() {
                let w = 2.0 * std::f64::consts::PI * f * n as f64 / 16000.0;
                re += v * w.cos();
                im += v * w.sin();
            }
            re * re + im * im
        };
        let (p3, p5, p1) = (power(3000.0), power(5000.0), power(1000.0));
        assert!((p3 / p5 - 1.0).abs() < 0.01, "{p3} {p5}");
        assert!(p1 < p3 * 1e-6);
    }
}
