//! G.711 throughput on 20 ms frames of the speech fixtures at 8 kHz.

use std::hint::black_box;

use happ_media::g711::Law;
use serde::Serialize;

use crate::best_of;

/// Wall time each function's runs are spread over.
const SPREAD: std::time::Duration = std::time::Duration::from_millis(400);

/// Nanoseconds per sample of each G.711 function.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CodecFigures {
    /// A-law encoding.
    pub alaw_encode_ns: f64,
    /// A-law decoding.
    pub alaw_decode_ns: f64,
    /// µ-law encoding.
    pub ulaw_encode_ns: f64,
    /// µ-law decoding.
    pub ulaw_decode_ns: f64,
}

/// The codec benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct CodecReport {
    /// With the kernels this CPU runs by default.
    #[serde(flatten)]
    pub figures: CodecFigures,
    /// Whether those are the AVX2 kernels.
    pub simd: bool,
    /// With the baseline x86-64 (SSE2) kernels, for comparison.
    pub baseline: CodecFigures,
    /// Samples per run.
    pub samples: usize,
    /// Runs; the best is reported.
    pub runs: usize,
}

fn measure(frames: &[&[i16]], runs: usize) -> CodecFigures {
    let samples: usize = frames.iter().map(|f| f.len()).sum();
    let mut codes = vec![[0u8; 160]; frames.len()];
    let mut pcm = [0i16; 160];
    let per_sample = |ns: u64| ns as f64 / samples as f64;
    let encode = |law: Law, codes: &mut Vec<[u8; 160]>| {
        per_sample(best_of(runs, SPREAD, || {
            for (f, c) in frames.iter().zip(codes.iter_mut()) {
                law.encode(black_box(f), c);
            }
            black_box(&codes);
        }))
    };
    let alaw_encode_ns = encode(Law::Alaw, &mut codes);
    let alaw_codes = codes.clone();
    let ulaw_encode_ns = encode(Law::Ulaw, &mut codes);
    let ulaw_codes = codes;
    let mut decode = |law: Law, codes: &[[u8; 160]]| {
        per_sample(best_of(runs, SPREAD, || {
            for c in codes {
                law.decode(black_box(c), &mut pcm);
                black_box(&pcm);
            }
        }))
    };
    CodecFigures { alaw_encode_ns, alaw_decode_ns: decode(Law::Alaw, &alaw_codes), ulaw_encode_ns, ulaw_decode_ns: decode(Law::Ulaw, &ulaw_codes) }
}

/// Runs the codec benchmark.
pub fn run(runs: usize) -> CodecReport {
    let speech = happ_fixtures::speech_8k();
    let frames: Vec<&[i16]> = speech.chunks_exact(160).collect();
    happ_media::set_simd_enabled(true);
    let simd = happ_media::simd_enabled();
    let figures = measure(&frames, runs);
    happ_media::set_simd_enabled(false);
    let baseline = measure(&frames, runs);
    happ_media::set_simd_enabled(true);
    CodecReport { figures, simd, baseline, samples: frames.len() * 160, runs }
}
