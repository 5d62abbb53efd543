//! The delay adapts: it starts low, follows the 95th percentile of the jitter up at once and back
//! down when the jitter subsides, keeping late losses under 1 % with 30 ms of jitter, far below
//! the delay of a fixed 200 ms buffer.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

mod common;

use std::time::Duration;

use common::*;
use happ_media::ClockRate;
use happ_media::jitter::JitterConfig;
use happ_media::sim::TraceConfig;
use happ_netem::{Jitter, Loss, NetemConfig, Spikes};

fn netem(seed: u64, jitter: Jitter, loss: Loss) -> NetemConfig {
    NetemConfig { seed, base_delay: Duration::from_millis(50), jitter, loss, ..Default::default() }
}

/// netem's `delay 50ms 30ms loss 1%`: ±30 ms uniform around the base delay.
fn thirty_ms_jitter(seed: u64) -> TraceConfig {
    TraceConfig { duration: Duration::from_secs(60), netem: netem(seed, Jitter::Uniform(Duration::from_millis(60)), Loss::Random(0.01)), ..Default::default() }
}

#[test]
fn thirty_ms_jitter_stays_under_one_percent_late_at_a_fraction_of_the_fixed_delay() {
    for seed in [1, 2, 3] {
        let trace = trace(&thirty_ms_jitter(seed));
        let adaptive = run(&trace, &JitterConfig::default());
        let fixed = run(&trace, &JitterConfig::fixed(Duration::from_millis(200)));
        let late_pct = 100.0 * adaptive.stats.late as f64 / trace.sent as f64;
        assert!(late_pct < 1.0, "seed {seed}: {late_pct:.2} % late");
        let rate = ClockRate::NARROWBAND;
        let (a, f) = (adaptive.stats.mean_delay(rate), fixed.stats.mean_delay(rate));
        assert!(a < Duration::from_millis(100), "seed {seed}: adaptive mean delay {a:?}");
        assert!(f >= Duration::from_millis(200), "seed {seed}: fixed mean delay {f:?}");
        assert_eq!(fixed.stats.late, 0);
        // The target starts at 40 ms and settles at the percentile plus margin (~67 ms).
        assert!(adaptive.targets[0] <= Duration::from_millis(40));
        let settled = *adaptive.targets.last().expect("pulled");
        assert!((55..=80).contains(&settled.as_millis()), "seed {seed}: {settled:?}");
    }
}

#[test]
fn rises_at_once_with_jitter_and_falls_back_when_it_subsides() {
    let calm = netem(4, Jitter::Uniform(Duration::from_millis(5)), Loss::None);
    let rough = netem(5, Jitter::Uniform(Duration::from_millis(100)), Loss::None);
    let config = TraceConfig {
        duration: Duration::from_secs(60),
        netem: calm,
        phases: vec![(Duration::from_secs(20), rough), (Duration::from_secs(30), calm)],
        ..Default::default()
    };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    // One target per 20 ms pull.
    let at = |secs: f64| replay.targets[(secs * 50.0) as usize].as_millis();
    assert!(at(19.5) <= 25, "calm: {}", at(19.5));
    assert!(at(20.5) >= 90, "500 ms into the rough phase: {}", at(20.5));
    assert!(at(29.5) >= 100, "rough: {}", at(29.5));
    assert!(at(40.0) <= 25, "10 s after it calmed down: {}", at(40.0));
    // The rise costs a few late packets at the onset only.
    assert!(replay.stats.late < 15, "{:?}", replay.stats);
}

#[test]
fn delay_spikes_raise_the_target_and_are_survived() {
    let spikes = Spikes { every: Duration::from_secs(4), height: Duration::from_millis(150), length: Duration::from_millis(300) };
    let config = TraceConfig {
        duration: Duration::from_secs(40),
        netem: NetemConfig { spikes: Some(spikes), ..netem(6, Jitter::Uniform(Duration::from_millis(10)), Loss::None) },
        ..Default::default()
    };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    assert!(p.in_order());
    // The first spike hurts; the target then covers the next ones.
    let late_pct = 100.0 * replay.stats.late as f64 / trace.sent as f64;
    assert!(late_pct < 3.0, "{late_pct:.2} % late");
    assert!(replay.targets.iter().max().expect("pulled") >= &Duration::from_millis(100));
}

#[test]
fn a_fixed_buffer_holds_its_delay() {
    let trace = trace(&thirty_ms_jitter(7));
    let replay = run(&trace, &JitterConfig::fixed(Duration::from_millis(120)));
    let mean = replay.stats.mean_delay(ClockRate::NARROWBAND).as_millis();
    assert!((120..=145).contains(&mean), "{mean} ms");
    assert!(replay.targets.iter().all(|t| *t == Duration::from_millis(120)));
}
