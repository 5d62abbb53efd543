//! A media session fed arbitrary datagrams (RTP or RTCP, chosen by a byte) at arbitrary times,
//! drained as a driver would: no panic, no runaway output.
#![no_main]

use std::time::{Duration, Instant};

use happ_media::session::{MediaSession, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let Ok(mut s) = MediaSession::new(SessionConfig::default(), t0) else { return };
    let mut now = t0;
    let mut buf = [0u8; 1500];
    let mut frame = [0i16; 640];
    // Records: [kind, delay_ms, len, bytes...]
    let mut rest = data;
    while rest.len() >= 3 {
        let (kind, delay, len) = (rest[0], rest[1], usize::from(rest[2]));
        rest = &rest[3..];
        let len = len.min(rest.len());
        let (datagram, tail) = rest.split_at(len);
        rest = tail;
        now += Duration::from_millis(u64::from(delay));
        match kind % 4 {
            0 | 1 => {
                let _ = s.handle_rtp(now, datagram);
            }
            2 => {
                let _ = s.handle_rtcp(now, datagram);
            }
            _ => {
                s.push_pcm(&[1000; 320]);
                if datagram.first().is_some_and(|b| b % 2 == 0) {
                    s.flush();
                }
            }
        }
        s.handle_timeout(now);
        let mut sent = 0;
        while s.poll_transmit(&mut buf).is_some() {
            sent += 1;
            assert!(sent < 64, "runaway transmit");
        }
        let mut pulled = 0;
        while s.pull_pcm(&mut frame).is_some() {
            pulled += 1;
            assert!(pulled < 64, "runaway pull");
        }
        while s.poll_event().is_some() {}
    }
});
