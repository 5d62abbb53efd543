//! The hot path allocates nothing: two sessions exchange a minute of audio both ways, with DTMF,
//! RTCP, a flush and network loss and reordering, under a counting allocator.
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

use std::time::{Duration, Instant};

use happ_media::dtmf::Digit;
use happ_media::session::{MediaSession, PacketKind, SessionConfig};
use happ_media::units::Ssrc;

mod alloc_count;

/// Moves one side's output into the other, dropping every 50th RTP packet and swapping every
/// 30th with the next (a small fixed-size reorder slot: no allocation in the harness either).
struct Wire {
    held: [u8; 1500],
    held_len: usize,
    count: u64,
}

impl Wire {
    fn carry(&mut self, from: &mut MediaSession, to: &mut MediaSession, now: Instant, buf: &mut [u8; 1500]) {
        while let Some(t) = from.poll_transmit(buf) {
            let bytes = &buf[..t.len];
            match t.kind {
                PacketKind::Rtcp => {
                    to.handle_rtcp(now, bytes).expect("valid RTCP");
                }
                PacketKind::Rtp => {
                    self.count += 1;
                    if self.count.is_multiple_of(50) {
                        continue;
                    }
                    if self.count.is_multiple_of(30) {
                        self.held[..t.len].copy_from_slice(bytes);
                        self.held_len = t.len;
                        continue;
                    }
                    let _ = to.handle_rtp(now, bytes);
                    if self.held_len > 0 {
                        let _ = to.handle_rtp(now, &self.held[..self.held_len]);
                        self.held_len = 0;
                    }
                }
            }
        }
    }
}

#[test]
fn steady_state_allocates_nothing() {
    let t0 = Instant::now();
    let config = |ssrc| SessionConfig { ssrc: Ssrc(ssrc), rtcp_interval: Duration::from_secs(2), ..SessionConfig::default() };
    let mut a = MediaSession::new(config(1), t0).expect("valid");
    let mut b = MediaSession::new(SessionConfig { push_rate: 24_000, ..config(2) }, t0).expect("valid");
    let tts16: Vec<i16> = (0..320).map(|i| ((i as f32 * 0.2).sin() * 9000.0) as i16).collect();
    let tts24: Vec<i16> = (0..480).map(|i| ((i as f32 * 0.13).sin() * 9000.0) as i16).collect();
    let mut buf = [0u8; 1500];
    let mut frame = [0i16; 640];
    let mut wire_ab = Wire { held: [0; 1500], held_len: 0, count: 0 };
    let mut wire_ba = Wire { held: [0; 1500], held_len: 0, count: 0 };
    let mut pulled = 0u64;
    let mut step = |i: u64, a: &mut MediaSession, b: &mut MediaSession| {
        let now = t0 + Duration::from_millis(20 * i);
        a.handle_timeout(now);
        b.handle_timeout(now);
        // Text-to-speech arrives in 20 ms pieces on both sides; A is interrupted now and then.
        a.push_pcm(&tts16);
        b.push_pcm(&tts24);
        if i % 500 == 250 {
            a.flush();
        }
        if i % 400 == 100 {
            a.send_dtmf(Digit(5), Duration::from_millis(80)).expect("room");
        }
        wire_ab.carry(a, b, now, &mut buf);
        wire_ba.carry(b, a, now, &mut buf);
        for s in [&mut *a, &mut *b] {
            while s.pull_pcm(&mut frame).is_some() {
                pulled += 1;
            }
            while s.poll_event().is_some() {}
        }
    };
    // Warm up: buffers reach their working sizes, the jitter buffer starts playing.
    for i in 0..250 {
        step(i, &mut a, &mut b);
    }
    let ((), allocations) = alloc_count::allocations(|| {
        for i in 250..3_250 {
            step(i, &mut a, &mut b);
        }
    });
    assert_eq!(allocations, 0, "allocations in 60 s of steady state");
    // And the minute did real work.
    assert!(pulled >= 2 * 3_000);
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.rtp_sent >= 3_000 && sb.rtp_received >= 2_900, "{sa:?} {sb:?}");
    assert!(sb.dtmf_received >= 7 && sa.rtcp_received > 20 && sa.flushed > Duration::ZERO);
}
