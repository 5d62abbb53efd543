//! Timestamp jumps, sequence number restarts and talkspurts (marker bit, silence between).
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

mod common;

use std::time::Duration;

use common::*;
use happ_media::ClockRate;
use happ_media::jitter::JitterConfig;
use happ_media::sim::TraceConfig;
use happ_netem::{Jitter, NetemConfig};

fn jittery(seed: u64) -> NetemConfig {
    NetemConfig { seed, jitter: Jitter::Uniform(Duration::from_millis(20)), ..Default::default() }
}

#[test]
fn timestamp_jump_restarts_timing_and_playback_continues() {
    let config = TraceConfig {
        duration: Duration::from_secs(10),
        ts_jump: Some((Duration::from_secs(5), 800_000)), // 100 s ahead
        netem: jittery(1),
        ..Default::default()
    };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    let s = replay.stats;
    assert_eq!(s.discontinuities, 1, "{s:?}");
    assert!(p.in_order());
    // Only what was buffered at the jump (and any late packets) is lost.
    assert!(p.missing(trace.sent as usize) <= 8, "{} missing: {s:?}", p.missing(trace.sent as usize));
    assert!(p.packets.iter().any(|&i| i > 400), "packets after the jump play");
}

#[test]
fn sequence_restart_backwards_keeps_playing() {
    let config = TraceConfig {
        duration: Duration::from_secs(10),
        first_seq: 20_000,
        seq_jump: Some((Duration::from_secs(5), 45_536)), // 20,000 back
        netem: jittery(2),
        ..Default::default()
    };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    assert!(p.in_order());
    assert_eq!(replay.stats.discontinuities, 1);
    assert!(p.missing(trace.sent as usize) <= 4, "{} missing", p.missing(trace.sent as usize));
}

#[test]
fn sequence_jump_forward_keeps_playing() {
    let config = TraceConfig { duration: Duration::from_secs(10), seq_jump: Some((Duration::from_secs(5), 10_000)), netem: jittery(3), ..Default::default() };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    assert!(p.in_order());
    assert!(p.missing(trace.sent as usize) <= 4, "{} missing", p.missing(trace.sent as usize));
}

#[test]
fn talkspurts_play_whole_with_silence_between() {
    let config = TraceConfig {
        duration: Duration::from_secs(20),
        talkspurts: Some((Duration::from_secs(1), Duration::from_millis(600))),
        netem: jittery(4),
        ..Default::default()
    };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    let s = replay.stats;
    assert!(p.in_order());
    assert_eq!(s.late, 0, "{s:?}");
    assert_eq!(p.missing(trace.sent as usize), s.discarded as usize);
    assert!(s.discarded <= 2, "{s:?}");
    // Each 600 ms pause is 30 frames, all but the first three (concealment fading) silent.
    assert!(p.silent >= 12 * 25, "{} silent frames", p.silent);
    assert!(s.mean_delay(ClockRate::NARROWBAND) < Duration::from_millis(60));
}
