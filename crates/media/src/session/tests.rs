use std::time::{Duration, Instant};

use happ_netem::{Jitter, Loss, NetemConfig};

use super::*;
use crate::dtmf::{Digit, DtmfEvent};
use crate::jitter::FrameKind;
use crate::sim::Pair;

const MS: Duration = Duration::from_millis(1);

fn config(ssrc: u32) -> SessionConfig {
    SessionConfig {
        ssrc: Ssrc(ssrc),
        first_seq: 65_000,
        first_ts: u32::MAX - 16_000,
        wallclock: NtpTime::from_unix(Duration::from_secs(1_800_000_000)),
        ..SessionConfig::default()
    }
}

fn link(seed: u64) -> NetemConfig {
    NetemConfig { seed, base_delay: 30 * MS, ..NetemConfig::default() }
}

fn pair() -> Pair {
    Pair::new(config(0xA), config(0xB), link(1), link(2), Instant::now()).expect("valid configs")
}

/// A 16 kHz chirp from 300 Hz to 3 kHz over `secs`: no two stretches alike, so alignment by
/// correlation is unambiguous.
fn chirp16(secs: f64) -> Vec<i16> {
    let n = (secs * 16_000.0) as usize;
    let rate = (3_000.0 - 300.0) / secs;
    (0..n)
        .map(|i| {
            let t = i as f64 / 16_000.0;
            (8_000.0 * (2.0 * std::f64::consts::PI * (300.0 * t + 0.5 * rate * t * t)).sin()) as i16
        })
        .collect()
}

/// A 16 kHz test tone, `secs` long.
fn tone16(freq: f64, secs: f64) -> Vec<i16> {
    (0..(secs * 16_000.0) as usize).map(|i| (8_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16_000.0).sin()) as i16).collect()
}

/// Signal-to-noise ratio of `got` against `want` after the best alignment within `max_lag`.
fn aligned_snr(want: &[i16], got: &[i16], max_lag: usize) -> (f64, usize) {
    let n = want.len().min(got.len().saturating_sub(max_lag));
    (0..max_lag)
        .map(|lag| {
            let (mut err, mut power) = (0.0, 0.0);
            for i in 0..n {
                let w = f64::from(want[i]);
                err += (f64::from(got[i + lag]) - w).powi(2);
                power += w * w;
            }
            (10.0 * (power / err.max(1e-9)).log10(), lag)
        })
        .fold((f64::MIN, 0), |best, x| if x.0 > best.0 { x } else { best })
}

#[test]
fn audio_pushed_on_one_side_is_pulled_on_the_other() {
    let mut p = pair();
    let tone = chirp16(2.0);
    assert_eq!(p.a.push_pcm(&tone), tone.len());
    p.run_for(Duration::from_secs(3));
    // The tone arrives after the network delay, the jitter buffer and both resamplers.
    let (snr, lag) = aligned_snr(&tone[1600..28_800], &p.rec_b.audio[1600..], 4_000);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    let delay_ms = lag as f64 / 16.0;
    assert!((50.0..=110.0).contains(&delay_ms), "mouth-to-ear {delay_ms} ms");
    // All of it was played out and counted.
    assert_eq!(p.a.queued(), Duration::ZERO);
    assert_eq!(p.a.played(), Duration::from_secs(2));
    let s = p.b.stats();
    // Everything arrived but the packets still in flight (30 ms of network at the end).
    assert!(p.a.stats().rtp_sent - s.rtp_received <= 2);
    assert_eq!(s.buffer.late, 0);
}

#[test]
fn packets_go_out_every_ptime_on_a_drift_free_clock() {
    let mut p = pair();
    p.run_for(Duration::from_secs(10));
    let sent = &p.rec_a.sent;
    // One packet per 20 ms from the start, none skipped or doubled.
    assert_eq!(sent.len(), 501);
    let t0 = sent[0].0;
    for (i, w) in sent.windows(2).enumerate() {
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence numbers step by one (and wrap)");
        assert_eq!(w[1].2, w[0].2.wrapping_add(160), "timestamps step by 160 (and wrap)");
        assert_eq!(w[1].0 - t0, 20 * MS * (i as u32 + 1), "packet {} on time", i + 1);
    }
    // Silence is sent when nothing is queued, marker bit on the very first packet only.
    assert!(sent[0].4 && sent[1..].iter().all(|s| !s.4));
    assert_eq!(sent[0].3, 8);
    assert_eq!(p.a.stats().silence_sent, 501);
}

#[test]
fn a_late_driver_catches_up_without_bursting_or_drifting() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(1), t0).expect("valid");
    let mut buf = [0u8; 1500];
    let mut sent = Vec::new();
    // Wake up late by an irregular amount each time, and once stall for 300 ms.
    let mut now = t0;
    for i in 0..200u32 {
        now += Duration::from_micros(20_000 + u64::from(i % 7) * 900);
        if i == 100 {
            now += 300 * MS;
        }
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(&mut buf) {
            if t.kind == PacketKind::Rtp {
                let p = RtpPacket::parse(&buf[..t.len]).expect("valid");
                sent.push((now, p.timestamp()));
            }
        }
    }
    // The timestamp of every packet matches the wall clock it was due at: no drift.
    let elapsed = now - t0;
    let last_ts = sent.last().expect("sent").1.wrapping_sub(config(1).first_ts);
    let due = RATE.ticks(elapsed);
    assert!(due - u64::from(last_ts) < 160, "last timestamp {last_ts} vs due {due}");
    // The 300 ms stall was skipped, except for a burst of at most 3 packets.
    assert!(s.stats().send_ticks_skipped >= 10, "{:?}", s.stats());
    let per_wakeup = sent.chunk_by(|a, b| a.0 == b.0).map(<[_]>::len).max().unwrap_or(0);
    assert!(per_wakeup <= 4, "burst of {per_wakeup}");
}

#[test]
fn flush_cuts_playback_within_one_packet_with_a_fade() {
    let mut p = pair();
    p.a.push_pcm(&tone16(300.0, 3.0));
    p.run_for(Duration::from_millis(500));
    let queued = p.a.queued();
    assert!(queued > Duration::from_secs(2));
    let dropped = p.a.flush();
    assert!(dropped + 4 * MS >= queued && dropped <= queued, "{dropped:?} of {queued:?}");
    let played_before = p.a.played();
    p.run_for(Duration::from_millis(100));
    // At most the 4 ms fade was played after the flush; then silence.
    assert!(p.a.played() - played_before <= 4 * MS);
    assert_eq!(p.a.queued(), Duration::ZERO);
    assert!(p.a.stats().flushed >= dropped);
}

#[test]
fn dtmf_both_ways() {
    let mut p = pair();
    for c in "1#9".chars() {
        p.a.send_dtmf(Digit::from_char(c).expect("digit"), 100 * MS).expect("negotiated");
    }
    p.b.send_dtmf(Digit::from_char('*').expect("digit"), 200 * MS).expect("negotiated");
    p.run_for(Duration::from_secs(2));
    let ends = |rec: &crate::sim::Recorded| -> Vec<(char, Duration)> {
        rec.events
            .iter()
            .filter_map(|(_, e)| match e {
                MediaEvent::Dtmf(DtmfEvent::End { digit, duration, ended: true }) => Some((digit.to_char()?, *duration)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(ends(&p.rec_b), vec![('1', 100 * MS), ('#', 100 * MS), ('9', 100 * MS)]);
    assert_eq!(ends(&p.rec_a), vec![('*', 200 * MS)]);
    assert_eq!(p.a.stats().dtmf_sent, 3);
    assert_eq!(p.b.stats().dtmf_received, 3);
    assert!(p.rec_a.events.iter().filter(|(_, e)| matches!(e, MediaEvent::DtmfSent(_))).count() == 3);
    // Events use the negotiated payload type, with the marker on each event's first packet.
    let events: Vec<_> = p.rec_a.sent.iter().filter(|s| s.3 == 101).collect();
    assert_eq!(events.iter().filter(|s| s.4).count(), 3);
}

#[test]
fn dtmf_without_telephone_event_is_refused() {
    let mut s = MediaSession::new(SessionConfig { telephone_event: None, ..config(1) }, Instant::now()).expect("valid");
    assert_eq!(s.send_dtmf(Digit(1), 100 * MS), Err(DtmfSendError::NotNegotiated));
}

#[test]
fn rtcp_reports_measure_round_trip_loss_and_jitter() {
    let ab = NetemConfig { loss: Loss::Random(0.05), jitter: Jitter::Uniform(20 * MS), ..link(3) };
    let mut p = Pair::new(config(0xA), config(0xB), ab, link(4), Instant::now()).expect("valid");
    p.a.push_pcm(&tone16(500.0, 20.0));
    p.run_for(Duration::from_secs(30));
    let (a, b) = (p.a.stats(), p.b.stats());
    assert!(a.rtcp_sent >= 4 && b.rtcp_sent >= 4, "{} {}", a.rtcp_sent, b.rtcp_sent);
    // Round trip: 30 ms each way plus up to 20 ms of jitter on the way out.
    let rtt = a.rtt.expect("A measured the round trip").as_millis();
    assert!((55..=90).contains(&rtt), "rtt {rtt} ms");
    assert!(b.rtt.is_some());
    // A learns what B measured of its stream (as of B's last report): about 5 % lost, jitter.
    assert!(a.remote_lost > 0 && i64::from(a.remote_lost) <= b.lost, "{} vs {}", a.remote_lost, b.lost);
    assert!(b.lost - i64::from(a.remote_lost) < 25, "{} vs {}", a.remote_lost, b.lost);
    assert!(b.jitter > Duration::ZERO && a.remote_jitter > Duration::ZERO);
    let loss_pct = 100.0 * b.lost as f64 / a.rtp_sent as f64;
    assert!((3.0..7.0).contains(&loss_pct), "{loss_pct}");
}

#[test]
fn remote_source_change_is_followed() {
    let mut p = pair();
    p.a.push_pcm(&tone16(700.0, 4.0));
    p.switch_a_ssrc_at = Some((p.now() + Duration::from_secs(2), Ssrc(0xBEEF)));
    p.run_for(Duration::from_secs(4));
    let events: Vec<MediaEvent> = p.rec_b.events.iter().map(|(_, e)| *e).collect();
    assert!(events.contains(&MediaEvent::RemoteStarted(Ssrc(0xA))));
    assert!(events.contains(&MediaEvent::SsrcChanged { old: Ssrc(0xA), new: Ssrc(0xBEEF) }));
    assert_eq!(p.b.remote_ssrc(), Some(Ssrc(0xBEEF)));
    // Audio keeps flowing after the switch (a brief rebuffering at most).
    let after = &p.rec_b.audio[16_000 * 5 / 2..16_000 * 7 / 2];
    assert!(after.iter().filter(|s| s.unsigned_abs() > 1000).count() > after.len() / 2);
}

#[test]
fn inactivity_is_reported_and_resumption_too() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig { inactivity: Some(Duration::from_secs(5)), ..config(1) }, t0).expect("valid");
    s.handle_timeout(t0 + Duration::from_secs(4));
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout().map(|t| t <= t0 + Duration::from_secs(5)), Some(true));
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(s.poll_event(), Some(MediaEvent::Inactive));
    s.handle_timeout(t0 + Duration::from_secs(6));
    assert_eq!(s.poll_event(), None, "reported once");
    let mut pkt = [0u8; 172];
    RtpHeader { marker: true, payload_type: 8, seq: 1, timestamp: 0, ssrc: Ssrc(9) }.write(&mut pkt);
    s.handle_rtp(t0 + Duration::from_secs(7), &pkt).expect("valid");
    assert_eq!(s.poll_event(), Some(MediaEvent::RemoteStarted(Ssrc(9))));
    assert_eq!(s.poll_event(), Some(MediaEvent::Resumed));
}

#[test]
fn hold_stops_sending_and_expecting_media() {
    let mut p = pair();
    p.run_for(Duration::from_secs(1));
    let before = p.rec_a.sent.len();
    p.a.set_direction(Direction::RecvOnly);
    p.b.set_direction(Direction::SendOnly);
    p.run_for(Duration::from_secs(40));
    assert_eq!(p.rec_a.sent.len(), before, "A sends no RTP while held");
    assert!(p.b.stats().rtcp_sent > 4, "RTCP continues");
    assert!(!p.rec_b.events.iter().any(|(_, e)| *e == MediaEvent::Inactive), "B expects nothing");
    p.a.set_direction(Direction::SendRecv);
    p.b.set_direction(Direction::SendRecv);
    p.run_for(Duration::from_secs(1));
    assert!(p.rec_a.sent.len() >= before + 49);
}

#[test]
fn bad_packets_are_counted_and_dropped() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(1), t0).expect("valid");
    assert!(matches!(s.handle_rtp(t0, &[0x80, 8, 0]), Err(RtpDrop::Malformed(_))));
    let mut pkt = [0u8; 20];
    RtpHeader { marker: false, payload_type: 18, seq: 1, timestamp: 0, ssrc: Ssrc(9) }.write(&mut pkt);
    assert_eq!(s.handle_rtp(t0, &pkt), Err(RtpDrop::PayloadType(18)));
    assert!(s.handle_rtcp(t0, &[0x80, 201, 0, 9]).is_err());
    // A telephone-event packet too short to hold an event.
    RtpHeader { marker: true, payload_type: 101, seq: 2, timestamp: 0, ssrc: Ssrc(9) }.write(&mut pkt);
    s.handle_rtp(t0, &pkt[..14]).expect("valid RTP");
    let st = s.stats();
    assert_eq!((st.rtp_malformed, st.unknown_payload_type, st.rtcp_malformed, st.dtmf_malformed), (1, 1, 1, 1));
}

#[test]
fn comfort_noise_fills_the_silence_at_its_level() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig { pull_rate: 8_000, ..config(1) }, t0).expect("valid");
    let mut pkt = [0xD5u8; 172];
    let mut seq = 1u16;
    let mut now = t0;
    let mut out = vec![0i16; 160];
    let mut levels = Vec::new();
    for i in 0..100u32 {
        // One second of speech packets, then a CN packet at -40 dBov and nothing more.
        if i < 50 {
            RtpHeader { marker: i == 0, payload_type: 8, seq, timestamp: i * 160, ssrc: Ssrc(9) }.write(&mut pkt);
            pkt[12..].fill(0xAA);
            s.handle_rtp(now, &pkt).expect("valid");
            seq += 1;
        } else if i == 50 {
            RtpHeader { marker: false, payload_type: 13, seq, timestamp: i * 160, ssrc: Ssrc(9) }.write(&mut pkt);
            s.handle_rtp(now, &[&pkt[..12], &[40u8][..]].concat()).expect("valid");
        }
        s.handle_timeout(now);
        while let Some(p) = s.pull_pcm(&mut out) {
            levels.push((p.kind, crate::cn::level_of(&out[..p.len])));
        }
        now += 20 * MS;
    }
    let tail = &levels[levels.len() - 20..];
    assert!(tail.iter().all(|&(kind, level)| kind == FrameKind::Silence && level.abs_diff(40) <= 2), "{tail:?}");
}

#[test]
fn thirty_ms_packets_in_twenty_ms_frames_out() {
    let b = SessionConfig { ptime: 30 * MS, ..config(0xB) };
    let mut p = Pair::new(config(0xA), b, link(5), link(6), Instant::now()).expect("valid");
    let tone = chirp16(2.0);
    p.b.push_pcm(&tone);
    p.run_for(Duration::from_secs(3));
    let (snr, _) = aligned_snr(&tone[1600..28_800], &p.rec_a.audio[1600..], 4_000);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    let sent = &p.rec_b.sent;
    assert!(sent.windows(2).all(|w| w[1].2.wrapping_sub(w[0].2) == 240));
}

#[test]
fn pulled_frames_carry_their_media_time() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(1), t0).expect("valid");
    let mut out = vec![0i16; s.pull_frame_len()];
    assert_eq!(out.len(), 320);
    s.handle_timeout(t0 + 100 * MS);
    let times: Vec<Duration> = std::iter::from_fn(|| s.pull_pcm(&mut out)).map(|p| p.at).collect();
    // Five frames due by 100 ms (0, 20, .. 80 ms), each earlier by the resampler's delay.
    assert_eq!(times.len(), 6);
    let delay = s.up.delay();
    assert!(delay > Duration::ZERO);
    assert_eq!(times[1], 20 * MS - delay);
}

#[test]
fn bad_configuration_is_refused() {
    let t0 = Instant::now();
    assert!(matches!(MediaSession::new(SessionConfig { ptime: 25 * MS / 10, ..config(1) }, t0), Err(SessionError::Ptime(_))));
    assert!(matches!(MediaSession::new(SessionConfig { ptime: 200 * MS, ..config(1) }, t0), Err(SessionError::Ptime(_))));
    assert!(matches!(MediaSession::new(SessionConfig { pull_rate: 0, ..config(1) }, t0), Err(SessionError::Resample(_))));
}

#[test]
fn close_sends_a_bye() {
    let mut p = pair();
    p.run_for(Duration::from_secs(1));
    p.a.close();
    p.run_for(Duration::from_millis(100));
    assert!(p.rec_b.events.iter().any(|(_, e)| *e == MediaEvent::RemoteBye));
}

#[test]
fn dynamic_payload_type_for_g711_is_sent_and_accepted() {
    // A peer that mapped PCMU to PT 100 (RFC 3551 allows it).
    let a = SessionConfig { law: Law::Ulaw, payload_type: Some(100), ..config(0xA) };
    let b = SessionConfig { law: Law::Ulaw, payload_type: Some(100), ..config(0xB) };
    let mut p = Pair::new(a, b, link(7), link(8), Instant::now()).expect("valid");
    p.a.push_pcm(&tone16(500.0, 1.0));
    p.run_for(Duration::from_millis(1500));
    assert!(p.rec_a.sent.iter().all(|s| s.3 == 100));
    assert_eq!(p.b.stats().unknown_payload_type, 0);
    assert!(p.rec_b.frames[0] > 40, "audio played: {:?}", p.rec_b.frames);
    // Switching codec mid-call (a re-INVITE).
    p.a.set_law(Law::Alaw, 8);
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.rec_a.sent.last().map(|s| s.3), Some(8));
}

#[test]
fn pause_holds_playback_and_resume_plays_on_from_the_same_sample() {
    let mut p = pair();
    // A ramp of distinct values, so the position in it is readable from any sample.
    let ramp: Vec<i16> = (0..16_000).map(|i| (i % 8_000) as i16).collect();
    p.a.push_pcm(&ramp);
    p.run_for(Duration::from_millis(300));
    let queued = p.a.queued();
    p.a.pause();
    let played = p.a.played();
    p.run_for(Duration::from_millis(500));
    // Nothing more was taken from the queue while paused.
    assert_eq!(p.a.played(), played);
    assert_eq!(p.a.queued(), queued);
    assert!(p.a.paused());
    p.a.resume();
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.a.played() + p.a.queued(), played + queued, "nothing lost or repeated");
    assert!(p.a.played() > played);
    // Flushing while paused drops everything: no fade of the old audio is heard later.
    p.a.pause();
    let at_pause = p.a.played();
    let dropped = p.a.flush();
    assert_eq!(dropped + at_pause, played + queued);
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.a.played(), at_pause);
    assert!(!p.a.paused());
}

#[test]
fn last_sent_power_follows_the_audio() {
    let mut p = pair();
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.a.last_sent_power(), 0.0);
    p.a.push_pcm(&tone16(440.0, 1.0));
    p.run_for(Duration::from_millis(200));
    // A sine of amplitude 8000: mean square (8000/32768)^2 / 2 ≈ 0.0298.
    let power = p.a.last_sent_power();
    assert!((0.02..0.04).contains(&power), "{power}");
}
