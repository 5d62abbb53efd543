//! The jitter buffer on the main network trace, and the whole media session of a call.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use happ_media::Law;
use happ_media::jitter::{JitterBuffer, JitterConfig};
use happ_media::sim::{self, TraceConfig};
use happ_perf::pipeline::{self, Load};

fn bench(c: &mut Criterion) {
    let speech = happ_fixtures::speech_8k();
    let trace = sim::generate(
        std::time::Instant::now(),
        &TraceConfig { duration: Duration::from_secs(20), netem: happ_perf::jitter::main_trace_netem(), ..TraceConfig::default() },
        &speech,
    );
    c.bench_function("jitter buffer: 20 s trace (1000 packets, ±30 ms, 1 % loss)", |b| {
        b.iter(|| {
            let mut jb = JitterBuffer::new(&JitterConfig::default());
            sim::replay(&trace, &mut jb, Law::Alaw, false)
        })
    });
    let call = pipeline::prepare(10);
    c.bench_function("media session: 10 s of call, both ways, 16 kHz", |b| b.iter(|| pipeline::call(&call, Load::Both)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
