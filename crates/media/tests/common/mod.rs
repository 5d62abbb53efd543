//! Helpers shared by the jitter-buffer scenarios.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use happ_media::g711::Law;
use happ_media::jitter::{JitterBuffer, JitterConfig};
use happ_media::sim::{self, FRAME, Replay, Trace, TraceConfig};

/// What the played frames were, matched against the packets sent.
#[derive(Debug, Default)]
pub struct Played {
    /// Index (in send order) of the packet each matched frame came from.
    pub packets: Vec<usize>,
    /// Frames that match no packet (concealment, silence, comfort noise).
    pub unmatched: usize,
    /// Of the unmatched, those that were all zero.
    pub silent: usize,
    /// Unmatched frames before the first packet played (buffering).
    pub leading: usize,
    /// Unmatched frames after the last packet played (the stream ended).
    pub trailing: usize,
    /// Output frame index of each unmatched frame.
    pub gaps: Vec<usize>,
}

impl Played {
    /// Packets sent that never played.
    pub fn missing(&self, sent: usize) -> usize {
        sent - self.packets.len()
    }

    /// Unmatched frames while the stream was playing.
    pub fn interior(&self) -> usize {
        self.unmatched - self.leading - self.trailing
    }

    /// Output frame indices of the unmatched frames while the stream was playing.
    pub fn interior_gaps(&self) -> &[usize] {
        &self.gaps[self.leading..self.gaps.len() - self.trailing]
    }

    /// Whether packets played in send order, each at most once.
    pub fn in_order(&self) -> bool {
        self.packets.windows(2).all(|w| w[0] < w[1])
    }
}

/// The untouched part of a frame: concealment's overlap-add changes at most the first 10 ms of
/// the first good frame after a gap.
const KEY: std::ops::Range<usize> = FRAME / 2..FRAME;

/// Matches each 20 ms output frame against the packets sent (whose 20 ms payloads line up with
/// the frames, since playout starts on a packet boundary).
pub fn played(trace: &Trace, replay: &Replay) -> Played {
    let index: HashMap<&[i16], usize> = trace.sent_audio.iter().enumerate().map(|(i, (_, pcm))| (&pcm[KEY], i)).collect();
    assert_eq!(index.len(), trace.sent_audio.len(), "packet payloads must be unique");
    let mut p = Played::default();
    for (n, frame) in replay.output.chunks_exact(FRAME).enumerate() {
        match index.get(&frame[KEY]) {
            Some(&i) => {
                p.packets.push(i);
                p.trailing = 0;
            }
            None => {
                p.gaps.push(n);
                p.unmatched += 1;
                p.trailing += 1;
                if p.packets.is_empty() {
                    p.leading += 1;
                }
                if frame.iter().all(|&s| s == 0) {
                    p.silent += 1;
                }
            }
        }
    }
    p
}

/// A trace of `config` over a unique (non-repeating) signal.
pub fn trace(config: &TraceConfig) -> Trace {
    let seconds = config.duration.as_secs() as u32 + 1;
    sim::generate(std::time::Instant::now(), config, &sim::speechlike(seconds.max(2)))
}

/// Replays `trace` through a buffer made with `jitter`.
pub fn run(trace: &Trace, jitter: &JitterConfig) -> Replay {
    let mut jb = JitterBuffer::new(jitter);
    sim::replay(trace, &mut jb, Law::Alaw, true)
}

pub const MS: Duration = Duration::from_millis(1);
