//! ITU-T G.711 A-law and µ-law, bit-exact with the ITU-T G.191 reference software (`g711.c`).
//!
//! The per-sample functions compute the segment and mantissa from the exponent and top mantissa
//! bits of the sample converted to `f32`, instead of a bit-scan loop or a table. That makes every
//! step an ordinary lane-wise operation, so the slice functions vectorise (SSE2 by default, AVX2
//! when the CPU has it, see [`crate::simd`]) and never branch on the data.
//!
//! Bit-exactness over all 65,536 inputs and all 256 codes of both laws is tested against a C
//! transcription of G.191 compiled and run by `tests/g711_reference.rs`.

use crate::simd::multiversion;

/// A G.711 companding law.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Law {
    /// A-law (PCMA, static RTP payload type 8), used outside North America and Japan.
    Alaw,
    /// µ-law (PCMU, static RTP payload type 0).
    Ulaw,
}

impl Law {
    /// The code of a zero sample: what a silent packet carries.
    pub const fn silence(self) -> u8 {
        match self {
            Law::Alaw => 0xD5,
            Law::Ulaw => 0xFF,
        }
    }

    /// The static RTP payload type (RFC 3551).
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Alaw => 8,
            Law::Ulaw => 0,
        }
    }

    /// The SDP encoding name (RFC 3551).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Law::Alaw => "PCMA",
            Law::Ulaw => "PCMU",
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(self, x: i16) -> u8 {
        match self {
            Law::Alaw => alaw_encode_sample(x),
            Law::Ulaw => ulaw_encode_sample(x),
        }
    }

    /// Decodes one code.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Law::Alaw => alaw_decode_sample(code),
            Law::Ulaw => ulaw_decode_sample(code),
        }
    }

    /// Encodes the common length of `pcm` and `out`; returns that length.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            Law::Alaw => alaw_encode(pcm, out),
            Law::Ulaw => ulaw_encode(pcm, out),
        }
    }

    /// Decodes the common length of `codes` and `out`; returns that length.
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> usize {
        match self {
            Law::Alaw => alaw_decode(codes, out),
            Law::Ulaw => ulaw_decode(codes, out),
        }
    }
}

impl std::str::FromStr for Law {
    type Err = UnknownLaw;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "alaw" | "a-law" | "pcma" => Ok(Law::Alaw),
            "ulaw" | "u-law" | "mulaw" | "µ-law" | "pcmu" => Ok(Law::Ulaw),
            _ => Err(UnknownLaw),
        }
    }
}

/// The error of parsing a [`Law`] from a name other than alaw/pcma or ulaw/pcmu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown G.711 law (expected alaw or ulaw)")]
pub struct UnknownLaw;

/// `(v as f32).to_bits() >> 19`: the biased exponent above the top four mantissa bits.
#[inline(always)]
fn exponent_and_mantissa(v: i32) -> i32 {
    ((v as f32).to_bits() >> 19) as i32
}

/// Builds `(1 + (2m + 1) / 32) * 2^(e + 7)` from its bits, as an integer: the decoded magnitude
/// that both laws share the shape of. Exact, since the value is an integer below 2^22.
#[inline(always)]
fn segment_value(e: i32, mant: i32) -> i32 {
    let bits = (((e + 134) << 23) | ((2 * mant + 1) << 18)) as u32;
    // Magic-number conversion, as in `simd::f32_to_i16`, for a vectorisable float-to-int.
    (f32::from_bits(bits) + 12_582_912.0).to_bits() as i32 - 0x4B40_0000
}

/// Encodes one sample to A-law (G.191 `alaw_compress`).
#[inline(always)]
pub fn alaw_encode_sample(x: i16) -> u8 {
    let x = i32::from(x);
    // One's complement of negatives, as G.191 does; 0 <= ix < 2048.
    let ix = (x ^ (x >> 31)) >> 4;
    // For ix >= 16: segment = exponent - 3 and the mantissa is the next four bits, which is
    // exactly the float exponent/mantissa pair minus the bias (127 + 3) << 4. Below 16 the code
    // is ix itself (segment 0).
    let seg_mant = exponent_and_mantissa(ix) - (130 << 4);
    let code = if ix < 16 { ix } else { seg_mant };
    let sign = !(x >> 31) & 0x80;
    ((code | sign) ^ 0x55) as u8
}

/// Decodes one A-law code (G.191 `alaw_expand`).
#[inline(always)]
pub fn alaw_decode_sample(code: u8) -> i16 {
    let a = i32::from(code ^ 0x55);
    let seg = (a >> 4) & 7;
    let mant = a & 0xF;
    // Segment 0 has no leading one: it is segment 1 shifted down by 256.
    let mag = segment_value(seg.max(1), mant) - if seg == 0 { 256 } else { 0 };
    // The sign bit set means positive.
    (if a & 0x80 != 0 { mag } else { -mag }) as i16
}

/// Encodes one sample to µ-law (G.191 `ulaw_compress`).
#[inline(always)]
pub fn ulaw_encode_sample(x: i16) -> u8 {
    let x = i32::from(x);
    // One's complement of negatives, 14-bit magnitude plus the bias of 33, limited to 0x1FFF.
    let absno = (((x ^ (x >> 31)) >> 2) + 33).min(0x1FFF);
    // With k = floor(log2(absno)) (5..=12) and m the next four bits, G.191 gives
    // ((12 - k) << 4) | (15 - m), which is 2239 - (((k + 127) << 4) | m).
    let code = 2239 - exponent_and_mantissa(absno);
    let sign = !(x >> 31) & 0x80;
    (code | sign) as u8
}

/// Decodes one µ-law code (G.191 `ulaw_expand`).
#[inline(always)]
pub fn ulaw_decode_sample(code: u8) -> i16 {
    let u = i32::from(!code);
    let exp = (u >> 4) & 7;
    let mant = u & 0xF;
    // ((mant << 3) + 0x84) << exp, less the bias.
    let mag = segment_value(exp, mant) - 0x84;
    (if code & 0x80 != 0 { mag } else { -mag }) as i16
}

multiversion! {
    /// Encodes `pcm` to A-law into `out`; returns the number of samples encoded.
    pub fn alaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &x) in out[..n].iter_mut().zip(&pcm[..n]) {
            *o = alaw_encode_sample(x);
        }
        n
    }
}

multiversion! {
    /// Decodes A-law `codes` into `out`; returns the number of samples decoded.
    pub fn alaw_decode(codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
            *o = alaw_decode_sample(c);
        }
        n
    }
}

multiversion! {
    /// Encodes `pcm` to µ-law into `out`; returns the number of samples encoded.
    pub fn ulaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &x) in out[..n].iter_mut().zip(&pcm[..n]) {
            *o = ulaw_encode_sample(x);
        }
        n
    }
}

multiversion! {
    /// Decodes µ-law `codes` into `out`; returns the number of samples decoded.
    pub fn ulaw_decode(codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
            *o = ulaw_decode_sample(c);
        }
        n
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn silence_codes_decode_to_near_zero() {
        assert_eq!(alaw_encode_sample(0), Law::Alaw.silence());
        assert_eq!(ulaw_encode_sample(0), Law::Ulaw.silence());
        assert_eq!(alaw_decode_sample(0xD5), 8);
        assert_eq!(ulaw_decode_sample(0xFF), 0);
    }

    #[test]
    fn extremes() {
        assert_eq!(alaw_decode_sample(alaw_encode_sample(i16::MAX)), 32_256);
        assert_eq!(alaw_decode_sample(alaw_encode_sample(i16::MIN)), -32_256);
        assert_eq!(ulaw_decode_sample(ulaw_encode_sample(i16::MAX)), 32_124);
        assert_eq!(ulaw_decode_sample(ulaw_encode_sample(i16::MIN)), -32_124);
    }

    #[test]
    fn slice_kernels_match_scalar_on_both_dispatch_paths() {
        let pcm: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let codes: Vec<u8> = (0..=255).collect();
        for simd in [false, true] {
            crate::simd::set_enabled(simd);
            for law in [Law::Alaw, Law::Ulaw] {
                let mut enc = vec![0u8; pcm.len()];
                assert_eq!(law.encode(&pcm, &mut enc), pcm.len());
                let mut dec = vec![0i16; 256];
                law.decode(&codes, &mut dec);
                assert!(pcm.iter().zip(&enc).all(|(&x, &c)| law.encode_sample(x) == c), "{law:?} encode simd={simd}");
                assert!(codes.iter().zip(&dec).all(|(&c, &x)| law.decode_sample(c) == x), "{law:?} decode simd={simd}");
            }
        }
        crate::simd::set_enabled(true);
    }

    #[test]
    fn decode_then_encode_is_identity_on_codes() {
        for c in 0..=255u8 {
            assert_eq!(alaw_encode_sample(alaw_decode_sample(c)), c);
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes to 0xFF.
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode_sample(ulaw_decode_sample(c)), expect);
        }
    }

    #[test]
    fn odd_lengths_process_the_common_prefix() {
        let mut out = [0u8; 3];
        assert_eq!(Law::Alaw.encode(&[0, 1, 2, 3, 4], &mut out), 3);
        let mut pcm = [0i16; 7];
        assert_eq!(Law::Ulaw.decode(&[0xFF; 2], &mut pcm), 2);
    }

    #[test]
    fn law_names_parse() {
        assert_eq!("PCMA".parse(), Ok(Law::Alaw));
        assert_eq!("ulaw".parse(), Ok(Law::Ulaw));
        assert_eq!("g729".parse::<Law>(), Err(UnknownLaw));
    }
}
