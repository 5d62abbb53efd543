//! Loss: short gaps are concealed, long gaps fade to silence, and playback resumes cleanly.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

mod common;

use std::time::Duration;

use common::*;
use happ_media::jitter::JitterConfig;
use happ_media::sim::{TraceConfig, TraceEvent};
use happ_netem::{Jitter, Loss, NetemConfig};

/// A jitter-free trace with the packets of `lost` (send indices) removed.
fn with_losses(lost: &[usize]) -> happ_media::sim::Trace {
    let mut t = trace(&TraceConfig { duration: Duration::from_secs(4), ..Default::default() });
    let doomed: Vec<u16> = lost.iter().map(|&i| 1 + i as u16).collect();
    t.events.retain(|e| !matches!(e, TraceEvent::Arrival(_, p) if doomed.contains(&p.seq)));
    t
}

fn peak(frame: &[i16]) -> u16 {
    frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)
}

#[test]
fn single_loss_is_concealed_not_silenced() {
    // Packet 20 (0.4 s) is in the middle of a syllable of the test signal.
    let trace = with_losses(&[20]);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    assert!(p.in_order());
    assert_eq!(p.missing(trace.sent as usize), 1 + replay.stats.discarded as usize);
    assert!(!p.packets.contains(&20));
    // Each frame in the stream that is no packet is concealment, and audible.
    let frames: Vec<&[i16]> = replay.output.chunks_exact(160).collect();
    assert!(!p.interior_gaps().is_empty());
    for &g in p.interior_gaps() {
        assert!(peak(frames[g]) > 1_000, "frame {g} is concealed audibly");
    }
}

#[test]
fn long_burst_fades_to_silence_then_resumes() {
    // 200 ms lost within a syllable (2.9 s to 3.1 s): 60 ms of concealment fading out, then
    // silence, then the stream again.
    let lost: Vec<usize> = (145..155).collect();
    let trace = with_losses(&lost);
    let replay = run(&trace, &JitterConfig::default());
    let p = played(&trace, &replay);
    assert!(p.in_order());
    // Shrinks that drop a packet happen in pauses of the signal; any other shrink or stretch
    // changes the length of the gap.
    let s = replay.stats;
    assert_eq!(p.missing(trace.sent as usize), 10 + s.discarded as usize);
    let gap_shrinks = s.compressed_frames - s.discarded;
    assert_eq!(p.interior() as u64 + gap_shrinks - s.expanded_frames, 10, "{s:?}");
    let at = p.packets.iter().position(|&i| i == 144).expect("144 played");
    assert_eq!(p.packets[at + 1], 155, "playback resumes with the next packet");
    let frames: Vec<&[i16]> = replay.output.chunks_exact(160).collect();
    let gap = p.interior_gaps();
    assert!(peak(frames[gap[0]]) > 1_000, "first 20 ms concealed audibly");
    assert!(peak(frames[gap[2]]) < peak(frames[gap[0]]), "fading");
    assert!(gap[3..].iter().all(|&g| peak(frames[g]) == 0), "silent after 60 ms");
}

#[test]
fn random_and_bursty_loss_lose_only_what_the_network_lost() {
    for (seed, loss) in [
        (11, Loss::Random(0.05)),
        (12, Loss::Random(0.20)),
        (13, Loss::Bursty { rate: 0.10, mean_burst: 3.0 }),
        (14, Loss::Bursty { rate: 0.20, mean_burst: 5.0 }),
    ] {
        let config = TraceConfig {
            duration: Duration::from_secs(30),
            netem: NetemConfig { seed, loss, jitter: Jitter::Uniform(Duration::from_millis(30)), ..Default::default() },
            ..Default::default()
        };
        let trace = trace(&config);
        let replay = run(&trace, &JitterConfig::default());
        let p = played(&trace, &replay);
        let s = replay.stats;
        assert!(p.in_order(), "{loss:?}");
        assert_eq!(p.missing(trace.sent as usize) as u64, trace.lost + s.late + s.discarded, "{loss:?}: {s:?}");
        // Concealment covers the lost packets (plus any stretching and the end of the stream).
        assert!(s.concealed_samples >= 160 * trace.lost, "{loss:?}");
        let late_pct = 100.0 * s.late as f64 / trace.sent as f64;
        assert!(late_pct < 1.0, "{loss:?}: {late_pct:.2} % late");
    }
}
