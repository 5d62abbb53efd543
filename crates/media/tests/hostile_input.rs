//! Malformed and hostile RTP/RTCP never panic a session, every datagram is accounted for, and a
//! good stream still plays in between. (Coverage-guided fuzzing of the same entry points lives in
//! `fuzz/`; this seeded run keeps the guarantee in every CI run.)
#![allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.

use std::time::{Duration, Instant};

use happ_media::rtp::{RtcpWriter, RtpHeader};
use happ_media::session::{MediaSession, SessionConfig};
use happ_media::units::{NtpTime, Ssrc};
use happ_netem::Rng;

fn valid_rtp(seq: u16, pt: u8) -> Vec<u8> {
    let mut p = vec![0xD5u8; 172];
    RtpHeader { marker: seq == 0, payload_type: pt, seq, timestamp: u32::from(seq) * 160, ssrc: Ssrc(77) }.write(&mut p);
    p
}

fn valid_rtcp() -> Vec<u8> {
    let mut buf = [0u8; 200];
    let mut w = RtcpWriter::new(&mut buf);
    w.sender_report(Ssrc(77), NtpTime(1 << 40), 0, 1, 160, &[]).expect("fits");
    w.cname(Ssrc(77), "peer").expect("fits");
    let n = w.len();
    buf[..n].to_vec()
}

/// Flips, truncates, extends or replaces bytes of `good`.
fn mutate(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let mut v = good.to_vec();
    match rng.next_u64() % 5 {
        0 => {
            for _ in 0..1 + rng.next_u64() % 4 {
                let i = (rng.next_u64() as usize) % v.len().max(1);
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
        }
        1 => v.truncate((rng.next_u64() as usize) % (v.len() + 1)),
        2 => v.extend((0..rng.next_u64() % 64).map(|_| rng.next_u64() as u8)),
        3 => {
            // Header fields that steer parsing: counts, lengths, padding.
            if !v.is_empty() {
                v[0] = rng.next_u64() as u8;
            }
            if v.len() > 3 {
                v[3] = rng.next_u64() as u8;
            }
            if let Some(last) = v.last_mut() {
                *last = rng.next_u64() as u8;
            }
        }
        _ => v = (0..rng.next_u64() % 300).map(|_| rng.next_u64() as u8).collect(),
    }
    v
}

#[test]
fn hostile_datagrams_are_counted_and_survived() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig::default(), t0).expect("valid");
    let mut rng = Rng::new(2024);
    let mut buf = [0u8; 1500];
    let mut frame = [0i16; 640];
    let good_rtcp = valid_rtcp();
    let (mut rtp_sent, mut rtcp_sent, mut good_accepted) = (0u64, 0u64, 0u64);
    let mut seq = 0u16;
    let mut audible_frames = 0;
    for step in 0..200_000u64 {
        let now = t0 + Duration::from_micros(step * 400);
        if step % 50 == 0 {
            // A good packet every 20 ms keeps a stream playing through the noise.
            if s.handle_rtp(now, &valid_rtp(seq, 8)).is_ok() {
                good_accepted += 1;
            }
            seq = seq.wrapping_add(1);
        } else if rng.chance(0.5) {
            let pt = [0, 8, 13, 101, 96][(rng.next_u64() % 5) as usize];
            let base = valid_rtp(rng.next_u64() as u16, pt);
            let _ = s.handle_rtp(now, &mutate(&mut rng, &base));
            rtp_sent += 1;
        } else {
            let _ = s.handle_rtcp(now, &mutate(&mut rng, &good_rtcp));
            rtcp_sent += 1;
        }
        s.handle_timeout(now);
        while s.poll_transmit(&mut buf).is_some() {}
        while let Some(p) = s.pull_pcm(&mut frame) {
            if frame[..p.len].iter().any(|&x| x != 0) {
                audible_frames += 1;
            }
        }
        while s.poll_event().is_some() {}
    }
    let st = s.stats();
    // Every RTP datagram is received, malformed, of an unknown type or from a stale source
    // (the hostile ones come from random sources, so some become the remote and are replaced).
    assert_eq!(st.rtp_received + st.rtp_malformed + st.unknown_payload_type + st.stale_ssrc, rtp_sent + 4_000, "{st:?}");
    assert_eq!(st.rtcp_received + st.rtcp_malformed, rtcp_sent);
    assert!(st.rtp_malformed > 1_000 && st.rtcp_malformed > 1_000, "{st:?}");
    assert!(good_accepted > 0 && audible_frames > 0);
}
