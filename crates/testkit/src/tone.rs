//! Telling which tone a frame of audio carries: the scripted synthesisers of the call-bridge
//! tests speak each sentence or answer as a tone of its own, so every packet the caller receives
//! can be traced to what it came from.

/// The power of `freq` in `pcm` (8 kHz samples), by the Goertzel algorithm: compare it between
/// candidate frequencies, its scale is the frame's.
pub fn goertzel(pcm: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_present_is_the_strongest() {
        let pcm: Vec<i16> = (0..160).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin()) as i16).collect();
        assert!(goertzel(&pcm, 1000.0) > 100.0 * goertzel(&pcm, 440.0));
    }
}
