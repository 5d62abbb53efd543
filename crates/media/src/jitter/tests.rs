use super::*;

fn incoming(seq: u64, ts: u64, payload: &[u8]) -> Incoming<'_> {
    Incoming { seq: SeqNo(seq), ts: RtpTime(ts), kind: PayloadKind::Audio(Law::Alaw), payload }
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn buffers_then_plays_in_order() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(&JitterConfig::default());
    let a = [Law::Alaw.silence(); 160];
    let loud = [0xAA; 160];
    // Packet 101 arrives 1 ms before packet 100 (which is thus 21 ms late).
    assert_eq!(jb.insert(t0 + 15 * MS, incoming(101, 1160, &loud)), Insert::Stored);
    assert_eq!(jb.insert(t0 + 16 * MS, incoming(100, 1000, &a)), Insert::Stored);
    let mut out = [0i16; 160];
    // The initial delay is 40 ms: nothing plays before.
    assert_eq!(jb.pull(t0 + 10 * MS, &mut out), FrameKind::Silence);
    assert!(!jb.playing());
    assert_eq!(jb.pull(t0 + 40 * MS, &mut out), FrameKind::Audio);
    assert!(out.iter().all(|&s| s == 8));
    assert_eq!(jb.pull(t0 + 60 * MS, &mut out), FrameKind::Audio);
    assert!(out.iter().all(|&s| s == Law::Alaw.decode_sample(0xAA)));
    assert_eq!(jb.stats().stored, 2);
}

#[test]
fn duplicates_and_late_packets_are_counted() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(&JitterConfig::default());
    let p = [0xD5; 160];
    assert_eq!(jb.insert(t0, incoming(10, 0, &p)), Insert::Stored);
    assert_eq!(jb.insert(t0, incoming(10, 0, &p)), Insert::Duplicate);
    let mut out = [0i16; 160];
    jb.pull(t0 + 40 * MS, &mut out);
    // Played already: a copy is a duplicate; the packet before it is late.
    assert_eq!(jb.insert(t0 + 45 * MS, incoming(10, 0, &p)), Insert::Duplicate);
    assert_eq!(jb.insert(t0 + 45 * MS, incoming(9, 0, &p)), Insert::Late);
    let s = jb.stats();
    assert_eq!((s.duplicates, s.late), (2, 1));
}

#[test]
fn oversized_payload_is_rejected() {
    let mut jb = JitterBuffer::new(&JitterConfig { max_payload: 160, ..Default::default() });
    assert_eq!(jb.insert(Instant::now(), incoming(1, 0, &[0; 161])), Insert::TooLarge);
    assert_eq!(jb.stats().too_large, 1);
}

#[test]
fn sequence_window_overflow_evicts_the_oldest() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(&JitterConfig { slots: 8, ..Default::default() });
    for i in 0..8 {
        assert_eq!(jb.insert(t0, incoming(100 + i, 160 * i, &[0xD5; 160])), Insert::Stored);
    }
    // Seq 110 needs the window to start at 103 at least.
    assert_eq!(jb.insert(t0, incoming(110, 1600, &[0xD5; 160])), Insert::Stored);
    assert_eq!(jb.stats().overflow, 3);
}
