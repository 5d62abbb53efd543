//! Virtual-time simulation of a received RTP stream, for tests and benchmarks.
//!
//! [`generate`] turns a signal into a paced G.711 packet stream, passes it through a seeded
//! [`happ_netem::Netem`], and interleaves the arrivals with the receiver's frame clock into a
//! [`Trace`]. [`replay`] feeds a trace to a [`JitterBuffer`] exactly as a session would (extended
//! sequence numbers and timestamps, one pull per frame), so the same trace can be replayed
//! through differently configured buffers, and timed by a benchmark without the cost of making it.

use std::time::{Duration, Instant};

use happ_netem::{Netem, NetemConfig};

use crate::g711::Law;
use crate::jitter::{FrameKind, Incoming, Insert, JitterBuffer, JitterStats, PayloadKind};
use crate::units::{RtpTime, SeqExtender, SeqNo, TsExtender};

/// How the simulated sender behaves.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Codec of the payloads.
    pub law: Law,
    /// Packet time of the sender (the receiver's frame is always 20 ms).
    pub ptime: Duration,
    /// First sequence number (choose one near 65535 to test the wrap).
    pub first_seq: u16,
    /// First timestamp (choose one near 2^32 to test the wrap).
    pub first_ts: u32,
    /// How long the sender sends.
    pub duration: Duration,
    /// Talkspurts: talk for `.0`, then stay silent (send nothing, marker bit on resuming) for `.1`.
    pub talkspurts: Option<(Duration, Duration)>,
    /// At this time, the sender's timestamps jump forward by `.1` ticks (a restarted sender).
    pub ts_jump: Option<(Duration, u32)>,
    /// At this time, the sender's sequence numbers jump by `.1`.
    pub seq_jump: Option<(Duration, u16)>,
    /// The network.
    pub netem: NetemConfig,
    /// Later network conditions: from each time on, packets go through that emulator instead.
    pub phases: Vec<(Duration, NetemConfig)>,
    /// Offset of the receiver's frame clock from the sender's packet clock.
    pub pull_offset: Duration,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            law: Law::Alaw,
            ptime: Duration::from_millis(20),
            first_seq: 1,
            first_ts: 0,
            duration: Duration::from_secs(10),
            talkspurts: None,
            ts_jump: None,
            seq_jump: None,
            netem: NetemConfig::default(),
            phases: Vec::new(),
            pull_offset: Duration::from_millis(7),
        }
    }
}

/// A packet as it arrives.
#[derive(Clone, Debug)]
pub struct TracePacket {
    /// When the sender sent it.
    pub sent: Instant,
    /// Wire sequence number.
    pub seq: u16,
    /// Wire timestamp.
    pub ts: u32,
    /// Marker bit.
    pub marker: bool,
    /// G.711 payload.
    pub payload: Vec<u8>,
}

/// One event of a trace, in time order.
#[derive(Clone, Debug)]
pub enum TraceEvent {
    /// A packet arrives.
    Arrival(Instant, TracePacket),
    /// The receiver pulls a 20 ms frame.
    Pull(Instant),
}

/// A generated trace.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Start of the simulation.
    pub t0: Instant,
    /// Events in time order.
    pub events: Vec<TraceEvent>,
    /// Packets sent.
    pub sent: u64,
    /// Packets the network dropped.
    pub lost: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// The source signal (8 kHz) as the sender encoded it, one entry per packet sent, in order:
    /// `(timestamp, decoded samples)`; for checking what was played.
    pub sent_audio: Vec<(u32, Vec<i16>)>,
}

/// Frame length of the receiver: 20 ms at 8 kHz.
pub const FRAME: usize = 160;

/// Generates a trace of `config.duration` from `signal` (8 kHz, looped), starting at `t0`.
pub fn generate(t0: Instant, config: &TraceConfig, signal: &[i16]) -> Trace {
    assert!(!signal.is_empty(), "a trace needs a signal");
    let mut netem = Netem::new(config.netem);
    let samples = (config.ptime.as_nanos() * 8000 / 1_000_000_000) as usize;
    let mut events = Vec::new();
    let (mut sent, mut lost, mut duplicated) = (0, 0, 0);
    let mut sent_audio = Vec::new();
    let mut seq = config.first_seq;
    let mut ts = config.first_ts;
    let mut pos = 0usize;
    let mut marker = true;
    let mut ts_jumped = false;
    let mut seq_jumped = false;
    let mut elapsed = Duration::ZERO;
    let mut phases = config.phases.iter().peekable();
    while elapsed < config.duration {
        if let Some((_, next)) = phases.next_if(|(at, _)| elapsed >= *at) {
            netem = Netem::new(*next);
        }
        let talking = config.talkspurts.is_none_or(|(talk, silence)| {
            let cycle = (talk + silence).as_nanos();
            elapsed.as_nanos() % cycle < talk.as_nanos()
        });
        if let Some((at, jump)) = config.ts_jump
            && !ts_jumped
            && elapsed >= at
        {
            ts = ts.wrapping_add(jump);
            ts_jumped = true;
        }
        if let Some((at, jump)) = config.seq_jump
            && !seq_jumped
            && elapsed >= at
        {
            seq = seq.wrapping_add(jump);
            seq_jumped = true;
        }
        if talking {
            let mut pcm = vec![0i16; samples];
            for s in pcm.iter_mut() {
                *s = signal[pos % signal.len()];
                pos += 1;
            }
            let mut payload = vec![0u8; samples];
            config.law.encode(&pcm, &mut payload);
            let mut decoded = vec![0i16; samples];
            config.law.decode(&payload, &mut decoded);
            sent_audio.push((ts, decoded));
            let at = t0 + elapsed;
            let packet = TracePacket { sent: at, seq, ts, marker, payload };
            let delivery = netem.transmit(at);
            sent += 1;
            if delivery.first.is_none() {
                lost += 1;
            }
            if delivery.duplicate.is_some() {
                duplicated += 1;
            }
            for arrival in delivery.arrivals() {
                events.push(TraceEvent::Arrival(arrival, packet.clone()));
            }
            seq = seq.wrapping_add(1);
            marker = false;
        } else {
            marker = true;
        }
        ts = ts.wrapping_add(samples as u32);
        elapsed += config.ptime;
    }
    // The receiver keeps pulling until everything in flight could have played.
    let end = config.duration + Duration::from_secs(2);
    let mut pull = config.pull_offset;
    while pull < end {
        events.push(TraceEvent::Pull(t0 + pull));
        pull += Duration::from_millis(20);
    }
    // Stable sort: at equal times, arrivals (pushed first) come before pulls.
    events.sort_by_key(|e| match e {
        TraceEvent::Arrival(at, _) | TraceEvent::Pull(at) => *at,
    });
    Trace { t0, events, sent, lost, duplicated, sent_audio }
}

/// What a replay produced.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The played signal, when kept.
    pub output: Vec<i16>,
    /// Frames by kind: audio, concealed, silence.
    pub frames: [u64; 3],
    /// The buffer's counters at the end.
    pub stats: JitterStats,
    /// Insert outcomes: stored, duplicate, late, too large.
    pub inserts: [u64; 4],
    /// Target delay after each pull, when kept.
    pub targets: Vec<Duration>,
}

/// Feeds `trace` through `jb`. With `keep`, the played signal and the target delay after each
/// pull are recorded (the benchmark leaves them out).
pub fn replay(trace: &Trace, jb: &mut JitterBuffer, law: Law, keep: bool) -> Replay {
    let mut seqs = SeqExtender::default();
    let mut tss = TsExtender::default();
    let mut frame = [0i16; FRAME];
    let mut r = Replay::default();
    if keep {
        r.output.reserve(trace.events.len() * FRAME / 2);
    }
    for event in &trace.events {
        match event {
            TraceEvent::Arrival(at, p) => {
                let seq = SeqNo(seqs.extend(u64::from(p.seq)));
                let ts = RtpTime(tss.extend(u64::from(p.ts)));
                let outcome = jb.insert(*at, Incoming { seq, ts, kind: PayloadKind::Audio(law), payload: &p.payload });
                r.inserts[match outcome {
                    Insert::Stored => 0,
                    Insert::Duplicate => 1,
                    Insert::Late => 2,
                    Insert::TooLarge => 3,
                }] += 1;
            }
            TraceEvent::Pull(at) => {
                let kind = jb.pull(*at, &mut frame);
                r.frames[match kind {
                    FrameKind::Audio => 0,
                    FrameKind::Concealed => 1,
                    FrameKind::Silence => 2,
                }] += 1;
                if keep {
                    r.output.extend_from_slice(&frame);
                    r.targets.push(jb.target_delay());
                }
            }
        }
    }
    r.stats = *jb.stats();
    r
}

/// A test signal like speech: 200 Hz voiced syllables that swell and fade, separated by pauses
/// (0.7 Hz, half the time voiced), over low noise so that no two packets are alike and no
/// played sample is exactly zero (so silence inserted by the buffer can be told apart).
pub fn speechlike(seconds: u32) -> Vec<i16> {
    let mut noise = happ_netem::Rng::new(7);
    (0..seconds * 8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            let envelope = (2.0 * std::f64::consts::PI * 0.7 * t).sin().max(0.0);
            let tone = envelope * 12_000.0 * (2.0 * std::f64::consts::PI * 200.0 * t).sin();
            (tone + 400.0 * (noise.unit() - 0.5)) as i16
        })
        .collect()
}

/// One side of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first session.
    A,
    /// The second session.
    B,
}

/// What one side of a [`Pair`] produced.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Every pulled frame, concatenated (at the pull rate).
    pub audio: Vec<i16>,
    /// Frames pulled, by kind: audio, concealed, silence.
    pub frames: [u64; 3],
    /// Events with the time they were polled.
    pub events: Vec<(Instant, crate::session::MediaEvent)>,
    /// RTP packets sent, as (time, sequence number, timestamp, payload type, marker).
    pub sent: Vec<(Instant, u16, u32, u8, bool)>,
}

/// Two media sessions talking over emulated links, in virtual time: the two-party harness of
/// the session tests and benchmarks.
pub struct Pair {
    /// The first session.
    pub a: crate::session::MediaSession,
    /// The second session.
    pub b: crate::session::MediaSession,
    ab: happ_netem::Link<(crate::session::PacketKind, Vec<u8>)>,
    ba: happ_netem::Link<(crate::session::PacketKind, Vec<u8>)>,
    now: Instant,
    /// What A produced.
    pub rec_a: Recorded,
    /// What B produced.
    pub rec_b: Recorded,
    /// When set, A's RTP leaves from a new source from this time on (a media server switch).
    pub switch_a_ssrc_at: Option<(Instant, crate::units::Ssrc)>,
    buf: Vec<u8>,
    frame: Vec<i16>,
}

impl Pair {
    /// Sessions made from `a` and `b`, starting at `t0`, linked through `ab` and `ba`.
    pub fn new(
        a: crate::session::SessionConfig,
        b: crate::session::SessionConfig,
        ab: NetemConfig,
        ba: NetemConfig,
        t0: Instant,
    ) -> Result<Self, crate::session::SessionError> {
        Ok(Pair {
            a: crate::session::MediaSession::new(a, t0)?,
            b: crate::session::MediaSession::new(b, t0)?,
            ab: happ_netem::Link::new(Netem::new(ab)),
            ba: happ_netem::Link::new(Netem::new(ba)),
            now: t0,
            rec_a: Recorded::default(),
            rec_b: Recorded::default(),
            switch_a_ssrc_at: None,
            buf: vec![0; 2048],
            frame: vec![0; 2048],
        })
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Runs both sessions until `until`.
    pub fn run_until(&mut self, until: Instant) {
        use crate::session::PacketKind;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout(), self.ab.next_arrival(), self.ba.next_arrival()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until)
                .max(self.now);
            if next > until {
                self.now = until;
                return;
            }
            self.now = next;
            let now = self.now;
            while let Some((_, (kind, bytes))) = self.ab.recv(now) {
                let _ = match kind {
                    PacketKind::Rtp => self.b.handle_rtp(now, &bytes).map_err(|_| ()),
                    PacketKind::Rtcp => self.b.handle_rtcp(now, &bytes).map_err(|_| ()),
                };
            }
            while let Some((_, (kind, bytes))) = self.ba.recv(now) {
                let _ = match kind {
                    PacketKind::Rtp => self.a.handle_rtp(now, &bytes).map_err(|_| ()),
                    PacketKind::Rtcp => self.a.handle_rtcp(now, &bytes).map_err(|_| ()),
                };
            }
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
            let switch = self.switch_a_ssrc_at.filter(|(at, _)| now >= *at).map(|(_, s)| s);
            drain(&mut self.a, now, &mut self.ab, &mut self.rec_a, &mut self.buf, &mut self.frame, switch);
            drain(&mut self.b, now, &mut self.ba, &mut self.rec_b, &mut self.buf, &mut self.frame, None);
        }
    }

    /// Runs both sessions for `d`.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }
}

fn drain(
    s: &mut crate::session::MediaSession,
    now: Instant,
    link: &mut happ_netem::Link<(crate::session::PacketKind, Vec<u8>)>,
    rec: &mut Recorded,
    buf: &mut [u8],
    frame: &mut [i16],
    ssrc: Option<crate::units::Ssrc>,
) {
    use crate::session::PacketKind;
    while let Some(t) = s.poll_transmit(buf) {
        let bytes = &mut buf[..t.len];
        if t.kind == PacketKind::Rtp {
            if let Some(ssrc) = ssrc {
                bytes[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
            }
            if let Ok(p) = crate::rtp::RtpPacket::parse(bytes) {
                rec.sent.push((now, p.seq(), p.timestamp(), p.payload_type(), p.marker()));
            }
        }
        link.send(now, (t.kind, bytes.to_vec()));
    }
    while let Some(p) = s.pull_pcm(frame) {
        rec.audio.extend_from_slice(&frame[..p.len]);
        rec.frames[match p.kind {
            FrameKind::Audio => 0,
            FrameKind::Concealed => 1,
            FrameKind::Silence => 2,
        }] += 1;
    }
    while let Some(e) = s.poll_event() {
        rec.events.push((now, e));
    }
}
