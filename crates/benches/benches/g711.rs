//! G.711 kernels against the classic implementations: a bit-scan encoder (the spandsp style) and
//! a 256-entry lookup-table decoder.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use happ_media::g711::{self, Law};

/// spandsp's `linear_to_alaw`, transcribed: find the segment by scanning for the top bit.
fn bitscan_alaw(linear: i16) -> u8 {
    let (mask, linear) = if linear >= 0 { (0xD5u8, i32::from(linear)) } else { (0x55u8, -i32::from(linear) - 1) };
    let seg = (31 - (linear | 0xFF).leading_zeros()) as i32 - 7;
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg > 0 { seg + 3 } else { 4 };
    (((seg << 4) | ((linear >> shift) & 0x0F)) as u8) ^ mask
}

fn frames() -> Vec<Vec<i16>> {
    happ_fixtures::speech_8k().chunks_exact(160).map(<[i16]>::to_vec).collect()
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let samples = (frames.len() * 160) as u64;
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(samples));
    let mut codes = vec![[0u8; 160]; frames.len()];
    let mut pcm = [0i16; 160];
    for (name, simd) in [("dispatched", true), ("baseline", false)] {
        happ_media::set_simd_enabled(simd);
        for law in [Law::Alaw, Law::Ulaw] {
            g.bench_function(format!("{law:?} encode ({name})"), |b| {
                b.iter(|| {
                    for (f, c) in frames.iter().zip(codes.iter_mut()) {
                        law.encode(black_box(f), c);
                    }
                })
            });
            g.bench_function(format!("{law:?} decode ({name})"), |b| {
                b.iter(|| {
                    for c in &codes {
                        law.decode(black_box(c), &mut pcm);
                        black_box(&pcm);
                    }
                })
            });
        }
    }
    happ_media::set_simd_enabled(true);
    g.bench_function("Alaw encode (bit-scan reference)", |b| {
        b.iter(|| {
            for (f, c) in frames.iter().zip(codes.iter_mut()) {
                for (o, &s) in c.iter_mut().zip(black_box(f)) {
                    *o = bitscan_alaw(s);
                }
            }
        })
    });
    let table: Vec<i16> = (0..=255u8).map(g711::alaw_decode_sample).collect();
    g.bench_function("Alaw decode (lookup-table reference)", |b| {
        b.iter(|| {
            for c in &codes {
                for (o, &x) in pcm.iter_mut().zip(black_box(c)) {
                    *o = table[usize::from(x)];
                }
                black_box(&pcm);
            }
        })
    });
    g.finish();
    assert!((i16::MIN..=i16::MAX).all(|x| bitscan_alaw(x) == g711::alaw_encode_sample(x)), "reference must agree");
}

criterion_group!(benches, bench);
criterion_main!(benches);
