//! Reordering, duplicates and sequence/timestamp wraps: every packet plays once, in order.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

mod common;

use std::time::Duration;

use common::*;
use happ_media::jitter::JitterConfig;
use happ_media::sim::TraceConfig;
use happ_netem::{Jitter, Loss, NetemConfig};

fn reordering(seed: u64, jitter_ms: u64, duplicate: f64) -> TraceConfig {
    TraceConfig {
        // Both counters wrap a few seconds in.
        first_seq: 65_400,
        first_ts: u32::MAX - 8_000 * 3,
        duration: Duration::from_secs(20),
        netem: NetemConfig { seed, jitter: Jitter::Uniform(Duration::from_millis(jitter_ms)), loss: Loss::None, duplicate, ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn fixed_buffer_plays_every_packet_once_in_order_through_reordering_and_wraps() {
    for (seed, jitter_ms) in [(1, 0), (2, 30), (3, 60), (4, 100)] {
        let trace = trace(&reordering(seed, jitter_ms, 0.05));
        let replay = run(&trace, &JitterConfig::fixed(200 * MS));
        let p = played(&trace, &replay);
        assert!(p.in_order(), "jitter {jitter_ms} ms");
        let s = replay.stats;
        assert_eq!(s.late, 0, "jitter {jitter_ms} ms");
        assert_eq!(s.duplicates, trace.duplicated, "jitter {jitter_ms} ms");
        // Nothing missing but what a compression dropped to follow the fastest path.
        assert_eq!(p.missing(trace.sent as usize), s.discarded as usize, "jitter {jitter_ms} ms: {s:?}");
        // Frames that are no packet are exactly the stretches.
        assert_eq!(p.interior(), s.expanded_frames as usize, "jitter {jitter_ms} ms");
    }
}

#[test]
fn adaptive_buffer_keeps_order_and_drops_no_duplicates_into_playout() {
    for (seed, jitter_ms) in [(5, 20), (6, 50), (7, 100)] {
        let trace = trace(&reordering(seed, jitter_ms, 0.1));
        let replay = run(&trace, &JitterConfig::default());
        let p = played(&trace, &replay);
        assert!(p.in_order(), "jitter {jitter_ms} ms");
        // A copy of a late packet is late too; every other copy is caught as a duplicate.
        let s = replay.stats;
        assert!(s.duplicates <= trace.duplicated && trace.duplicated - s.duplicates <= s.late, "{s:?}");
        assert_eq!(
            p.missing(trace.sent as usize),
            (s.late - (trace.duplicated - s.duplicates)) as usize + s.discarded as usize,
            "jitter {jitter_ms} ms: {s:?}"
        );
        // Late losses stay rare even with 100 ms of reordering jitter.
        let late_pct = 100.0 * replay.stats.late as f64 / trace.sent as f64;
        assert!(late_pct < 1.0, "jitter {jitter_ms} ms: {late_pct:.2} % late");
    }
}

#[test]
fn thirty_ms_packets_are_cut_into_twenty_ms_frames() {
    let config = TraceConfig { ptime: 30 * MS, ..reordering(8, 40, 0.0) };
    let trace = trace(&config);
    let replay = run(&trace, &JitterConfig::fixed(150 * MS));
    // Frames no longer line up with packets; compare the whole signal instead.
    let sent: Vec<i16> = trace.sent_audio.iter().flat_map(|(_, pcm)| pcm.iter().copied()).collect();
    let start = replay.output.iter().position(|&s| s != 0).expect("something played");
    let played = &replay.output[start..];
    let s = replay.stats;
    assert_eq!((s.late, s.compressed_frames, s.expanded_frames), (0, 0, 0), "{s:?}");
    assert_eq!(&played[..sent.len()], &sent[..]);
}
