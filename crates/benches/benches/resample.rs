//! Resampling 20 ms frames: our polyphase FIR against rubato's FFT resampler (the fastest of
//! rubato's on this job), both directions.
#![allow(missing_docs)]

use std::hint::black_box;

use audioadapter_buffers::direct::InterleavedSlice;
use criterion::{Criterion, criterion_group, criterion_main};
use happ_media::resample::Resampler;
use rubato::Resampler as _;

fn bench(c: &mut Criterion) {
    let speech16 = happ_fixtures::jfk().samples;
    let speech8 = happ_fixtures::speech_8k();
    let mut g = c.benchmark_group("resample one 20 ms frame");
    for (from, to, input) in [(8_000u32, 16_000u32, &speech8), (16_000, 8_000, &speech16), (24_000, 8_000, &speech16)] {
        let chunk = (from / 50) as usize;
        let frames: Vec<&[i16]> = input.chunks_exact(chunk).take(200).collect();
        let mut ours = Resampler::new(from, to).expect("supported");
        let mut out = vec![0i16; ours.max_output(chunk) + 8];
        let mut i = 0;
        g.bench_function(format!("happ-media FIR {from}->{to}"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(ours.process(black_box(frames[i]), &mut out))
            })
        });
        let mut rubato = rubato::Fft::<f32>::new(from as usize, to as usize, chunk, 1, rubato::FixedSync::Input).expect("rubato");
        let floats: Vec<Vec<f32>> = frames.iter().map(|f| f.iter().map(|&s| f32::from(s)).collect()).collect();
        let mut fout = vec![0f32; rubato.output_frames_max()];
        let cap = fout.len();
        g.bench_function(format!("rubato Fft {from}->{to}"), |b| {
            b.iter(|| {
                i = (i + 1) % floats.len();
                let input = InterleavedSlice::new(&floats[i][..], 1, chunk).expect("adapter");
                let mut output = InterleavedSlice::new_mut(&mut fout[..], 1, cap).expect("adapter");
                black_box(rubato.process_into_buffer(&input, &mut output, None).expect("process"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
