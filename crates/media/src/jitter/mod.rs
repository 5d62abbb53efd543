//! The adaptive jitter buffer: packets in by extended sequence number, 8 kHz PCM out on the
//! frame clock, with loss concealment.
//!
//! - **Storage** is a fixed ring of preallocated slots indexed by extended sequence number
//!   ([`SeqNo`] modulo the slot count), so reordering costs nothing and nothing is allocated
//!   per packet. Duplicates (of stored or of already played packets) and packets whose time has
//!   passed are dropped and counted.
//! - **Timing**: sample `ts` is due at local time `ts + min_raw + target` (in ticks), where
//!   `min_raw` is the fastest arrival of the recent past and `target` the adaptive delay of
//!   [`DelayEstimator`]. [`JitterBuffer::pull`] is called once per frame; it plays the frame at the
//!   playout point, and when the playout point drifts a frame or more from the due time it
//!   *compresses* (drops a frame) or *expands* (conceals a frame without advancing), preferably
//!   where the signal is quiet, as talkspurt boundaries are.
//! - **Gaps** (lost or not yet arrived packets) are concealed with [`Plc`], which fades to silence
//!   after 60 ms; after a comfort-noise packet they are filled with noise at its level.
//! - **Discontinuities**: a timestamp jump far beyond any plausible jitter (a restarted sender)
//!   resets the timing; [`JitterBuffer::reset`] is for SSRC changes.

mod delay;

use std::time::{Duration, Instant};

pub use delay::DelayEstimator;

use crate::cn::NoiseGenerator;
use crate::g711::Law;
use crate::plc::Plc;
use crate::units::{ClockRate, RtpTime, SeqNo};

/// Jitter buffer settings.
#[derive(Clone, Debug)]
pub struct JitterConfig {
    /// The RTP clock of the stream (8 kHz for G.711).
    pub clock_rate: ClockRate,
    /// Smallest target delay.
    pub min_delay: Duration,
    /// Largest target delay.
    pub max_delay: Duration,
    /// Target delay before any jitter has been measured.
    pub initial_delay: Duration,
    /// Added above the measured 95th percentile of the jitter.
    pub margin: Duration,
    /// Number of packet slots (rounded up to a power of two).
    pub slots: usize,
    /// Largest payload a slot holds, in bytes (480 = 60 ms of G.711).
    pub max_payload: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: ClockRate::NARROWBAND,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(40),
            margin: Duration::from_millis(10),
            slots: 64,
            max_payload: 480,
        }
    }
}

impl JitterConfig {
    /// A non-adaptive buffer that holds every packet for `delay`, as the fixed buffers of
    /// Asterisk and GStreamer do (200 ms by default there).
    pub fn fixed(delay: Duration) -> Self {
        JitterConfig { min_delay: delay, max_delay: delay, initial_delay: delay, ..Self::default() }
    }
}

/// What a stored payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// G.711 audio of the given law.
    Audio(Law),
    /// RFC 3389 comfort noise at a level in -dBov.
    ComfortNoise(u8),
}

/// A packet offered to the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// Extended sequence number.
    pub seq: SeqNo,
    /// Extended timestamp.
    pub ts: RtpTime,
    /// How to decode the payload.
    pub kind: PayloadKind,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// What happened to an inserted packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Stored for playout.
    Stored,
    /// A copy of a stored or played packet: dropped.
    Duplicate,
    /// Arrived after its playout time: dropped.
    Late,
    /// Payload larger than a slot: dropped.
    TooLarge,
}

/// What a pulled frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Decoded audio only.
    Audio,
    /// Audio with concealed (synthesised) parts.
    Concealed,
    /// Silence (or comfort noise): nothing was received for it.
    Silence,
}

/// Counters of the buffer, for statistics and RTCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets stored.
    pub stored: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped for arriving after their playout time.
    pub late: u64,
    /// Packets dropped because their payload exceeds a slot.
    pub too_large: u64,
    /// Packets evicted because the sequence window overflowed.
    pub overflow: u64,
    /// Stored packets not played: dropped by a compression, passed over, or flushed by a reset.
    pub discarded: u64,
    /// Frames pulled.
    pub frames: u64,
    /// Frames of silence while waiting for the first packet.
    pub buffering_frames: u64,
    /// Samples synthesised by concealment.
    pub concealed_samples: u64,
    /// Frames dropped to shrink the delay.
    pub compressed_frames: u64,
    /// Frames inserted to grow the delay.
    pub expanded_frames: u64,
    /// Timing resets caused by timestamp jumps.
    pub discontinuities: u64,
    /// Sum over audio frames of their buffering delay, in ticks (for the mean).
    pub delay_ticks_sum: u64,
    /// Audio frames counted in `delay_ticks_sum`.
    pub delay_frames: u64,
}

impl JitterStats {
    /// Mean buffering delay of played audio: from the earliest possible arrival (the fastest
    /// packet's path) to playout.
    pub fn mean_delay(&self, rate: ClockRate) -> Duration {
        if self.delay_frames == 0 {
            return Duration::ZERO;
        }
        rate.duration(self.delay_ticks_sum / self.delay_frames)
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    seq: u64,
    ts: u64,
    len: u16,
    kind: PayloadKind,
    used: bool,
}

impl Slot {
    const EMPTY: Slot = Slot { seq: 0, ts: 0, len: 0, kind: PayloadKind::ComfortNoise(127), used: false };

    /// Samples the payload covers (G.711: one per byte; CN: until the next packet).
    fn samples(&self) -> u64 {
        match self.kind {
            PayloadKind::Audio(_) => u64::from(self.len),
            PayloadKind::ComfortNoise(_) => 0,
        }
    }
}

/// A frame whose mean absolute amplitude is under this is quiet enough to drop or stretch
/// without an audible artefact (about -45 dBov), whatever the noise floor.
const QUIET_MEAN_ABS: f32 = 150.0;
/// Nothing louder than this (about -30 dBov, the level of soft speech) counts as quiet, however
/// high the floor: a steady loud signal (a tone, music) is not a pause.
const QUIET_CEILING: f32 = 700.0;

/// Tracks the noise floor of the played signal, so that pauses are recognised in noisy calls
/// too: a frame is quiet when it is within 6 dB of the floor. The floor follows a quieter frame
/// at once and rises slowly (about 2 s time constant at 50 frames per second), so speech does
/// not lift it.
#[derive(Clone, Copy, Debug)]
struct NoiseFloor {
    floor: f32,
}

impl NoiseFloor {
    const RISE: f32 = 0.01;

    /// Updates the floor with a frame and tells whether the frame is quiet.
    fn quiet(&mut self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return true;
        }
        let sum: u32 = frame.iter().map(|&s| u32::from(s.unsigned_abs())).sum();
        let level = sum as f32 / frame.len() as f32;
        if level < self.floor {
            self.floor = level;
        } else {
            self.floor += (level - self.floor) * Self::RISE;
        }
        level <= QUIET_MEAN_ABS.max(2.0 * self.floor).min(QUIET_CEILING)
    }
}

/// A packet this far behind the last one played, but not late by its timestamp, comes from a
/// sender that restarted its sequence numbers.
const SEQUENCE_RESTART: u64 = 1000;

/// Raw-delay changes beyond this many seconds are a restarted timestamp, not jitter.
const DISCONTINUITY_SECS: u64 = 2;

/// The adaptive jitter buffer of one received stream.
pub struct JitterBuffer {
    rate: ClockRate,
    slots: Box<[Slot]>,
    data: Box<[u8]>,
    max_payload: usize,
    mask: u64,
    lowest: Option<u64>,
    highest: u64,
    /// Highest sequence number played, and which of the 64 below it were.
    played: Option<u64>,
    played_mask: u64,
    estimator: DelayEstimator,
    epoch: Option<Instant>,
    /// Timestamp of the next sample to play, once playout has started.
    playout: Option<u64>,
    staged: Box<[i16]>,
    staged_ts: u64,
    staged_len: usize,
    plc: Plc,
    noise: NoiseGenerator,
    comfort_noise: Option<u8>,
    last_quiet: bool,
    /// Ticks the last frame of audio played had waited since its packet arrived (at the
    /// stream's fastest transit).
    last_wait: u64,
    noise_floor: NoiseFloor,
    discontinuity_ticks: i64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with all its memory allocated now.
    pub fn new(config: &JitterConfig) -> Self {
        let slots = config.slots.max(4).next_power_of_two();
        let rate = config.clock_rate;
        let ticks = |d: Duration| rate.ticks(d) as i64;
        JitterBuffer {
            rate,
            slots: vec![Slot::EMPTY; slots].into_boxed_slice(),
            data: vec![0; slots * config.max_payload].into_boxed_slice(),
            max_payload: config.max_payload,
            mask: slots as u64 - 1,
            lowest: None,
            highest: 0,
            played: None,
            played_mask: 0,
            estimator: DelayEstimator::new(ticks(config.min_delay), ticks(config.max_delay), ticks(config.initial_delay), ticks(config.margin)),
            epoch: None,
            playout: None,
            staged: vec![0; config.max_payload].into_boxed_slice(),
            staged_ts: 0,
            staged_len: 0,
            plc: Plc::new(),
            noise: NoiseGenerator::default(),
            comfort_noise: None,
            last_quiet: true,
            last_wait: 0,
            noise_floor: NoiseFloor { floor: QUIET_MEAN_ABS },
            discontinuity_ticks: rate.ticks(Duration::from_secs(DISCONTINUITY_SECS)) as i64,
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// How long the audio of the last frame played had waited since its packet arrived (had it
    /// come at the stream's fastest transit): the time from a word's arrival to its playout.
    pub fn last_wait(&self) -> Duration {
        self.rate.duration(self.last_wait)
    }

    /// The current target delay.
    pub fn target_delay(&self) -> Duration {
        self.rate.duration(self.estimator.target().max(0) as u64)
    }

    /// Whether playout has started.
    pub fn playing(&self) -> bool {
        self.playout.is_some()
    }

    fn ticks(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        self.rate.ticks(now.saturating_duration_since(epoch)) as i64
    }

    /// Offers a received packet.
    pub fn insert(&mut self, now: Instant, p: Incoming<'_>) -> Insert {
        let now_ticks = self.ticks(now);
        if p.payload.len() > self.max_payload {
            self.stats.too_large += 1;
            return Insert::TooLarge;
        }
        let seq = p.seq.0;
        if self.is_duplicate(seq) {
            self.stats.duplicates += 1;
            return Insert::Duplicate;
        }
        let raw = now_ticks - p.ts.0 as i64;
        if self.estimator.min_raw().is_some_and(|_| self.estimator.relative(raw).abs() > self.discontinuity_ticks) {
            self.restart_timing();
            self.stats.discontinuities += 1;
        }
        // Every arrival informs the delay, late ones most of all.
        self.estimator.on_arrival(raw);

        let samples = match p.kind {
            PayloadKind::Audio(_) => p.payload.len() as u64,
            PayloadKind::ComfortNoise(_) => 0,
        };
        if self.played.is_some_and(|played| seq + SEQUENCE_RESTART < played) && self.playout.is_some_and(|playout| p.ts.0 >= playout) {
            // Far behind what was played, yet timely: the sender restarted its numbering.
            self.restart_sequence();
        }
        let played_past = self.played.is_some_and(|played| seq <= played);
        let time_past = self.playout.is_some_and(|playout| if samples == 0 { p.ts.0 < playout } else { p.ts.0 + samples <= playout });
        if played_past || time_past {
            self.stats.late += 1;
            return Insert::Late;
        }

        // Keep the stored range within the ring: evict the oldest packets if needed.
        if let Some(lowest) = self.lowest {
            if seq < lowest && self.highest - seq > self.mask {
                // Older than the whole window allows: cannot be placed.
                self.stats.late += 1;
                return Insert::Late;
            }
            while let Some(low) = self.lowest {
                if seq.max(self.highest) - seq.min(low) <= self.mask {
                    break;
                }
                self.stats.overflow += 1;
                self.remove(low);
            }
        }
        let index = (seq & self.mask) as usize;
        self.slots[index] = Slot { seq, ts: p.ts.0, len: p.payload.len() as u16, kind: p.kind, used: true };
        let start = index * self.max_payload;
        self.data[start..start + p.payload.len()].copy_from_slice(p.payload);
        match self.lowest {
            None => {
                self.lowest = Some(seq);
                self.highest = seq;
            }
            Some(low) => {
                self.lowest = Some(low.min(seq));
                self.highest = self.highest.max(seq);
            }
        }
        self.stats.stored += 1;
        Insert::Stored
    }

    fn is_duplicate(&self, seq: u64) -> bool {
        if let Some(played) = self.played
            && seq <= played
        {
            let back = played - seq;
            return back < 64 && self.played_mask & (1 << back) != 0;
        }
        let slot = &self.slots[(seq & self.mask) as usize];
        slot.used && slot.seq == seq
    }

    /// Removes the packet `seq` (which must be stored) and moves `lowest` past it if needed.
    fn remove(&mut self, seq: u64) {
        let index = (seq & self.mask) as usize;
        self.slots[index].used = false;
        if self.lowest == Some(seq) {
            self.lowest = (seq + 1..=self.highest).find(|&s| {
                let slot = &self.slots[(s & self.mask) as usize];
                slot.used && slot.seq == s
            });
        }
    }

    /// Removes the lowest packet as played.
    fn pop(&mut self, seq: u64) {
        self.remove(seq);
        match self.played {
            Some(played) if seq <= played => {
                let back = played - seq;
                if back < 64 {
                    self.played_mask |= 1 << back;
                }
            }
            Some(played) => {
                let shift = seq - played;
                self.played_mask = if shift >= 64 { 0 } else { self.played_mask << shift };
                self.played_mask |= 1;
                self.played = Some(seq);
            }
            None => {
                self.played = Some(seq);
                self.played_mask = 1;
            }
        }
    }

    fn front(&self) -> Option<Slot> {
        self.lowest.map(|s| self.slots[(s & self.mask) as usize])
    }

    /// Forgets the stream entirely: stored packets, timing and concealment (an SSRC change).
    pub fn reset(&mut self) {
        while let Some(low) = self.lowest {
            self.stats.discarded += 1;
            self.remove(low);
        }
        self.played = None;
        self.played_mask = 0;
        self.restart_timing();
        self.plc.reset();
        self.comfort_noise = None;
    }

    /// Forgets sequence numbering (the sender restarted it), keeping timing and playout.
    fn restart_sequence(&mut self) {
        while let Some(low) = self.lowest {
            self.stats.discarded += 1;
            self.remove(low);
        }
        self.played = None;
        self.played_mask = 0;
        self.stats.discontinuities += 1;
    }

    /// Restarts timing after a timestamp discontinuity: stored packets belong to the old
    /// timeline and are discarded; playout rebuffers.
    fn restart_timing(&mut self) {
        while let Some(low) = self.lowest {
            self.stats.discarded += 1;
            self.remove(low);
        }
        self.estimator.reset();
        self.playout = None;
        self.staged_len = 0;
    }

    /// The playout point's lag behind where the target delay puts it, in ticks: positive when
    /// the buffer holds more than the target.
    fn lag(&self, now_ticks: i64, playout: u64) -> i64 {
        let min_raw = self.estimator.min_raw().unwrap_or(0);
        (now_ticks - min_raw - self.estimator.target()) - playout as i64
    }

    /// Plays one frame (`out.len()` samples at the stream's clock rate) into `out`.
    pub fn pull(&mut self, now: Instant, out: &mut [i16]) -> FrameKind {
        let now_ticks = self.ticks(now);
        self.stats.frames += 1;
        let frame = out.len() as i64;
        let Some(playout) = self.playout.or_else(|| self.start(now_ticks)) else {
            out.fill(0);
            self.stats.buffering_frames += 1;
            return FrameKind::Silence;
        };
        // Keep the playout point in [target, target + frame): the target is a floor, since
        // playing earlier than it is what makes packets late.
        let lag = self.lag(now_ticks, playout);
        let slack = frame / 8;
        if lag < -slack && (self.last_quiet || lag < -frame / 2) {
            // Stretch: one frame of concealment without advancing. In speech, only when the
            // shortfall is large; otherwise wait for a pause.
            self.stats.expanded_frames += 1;
            let kind = self.fill_gap(out);
            self.last_quiet = self.noise_floor.quiet(out);
            return kind;
        }
        let mut frame_start = playout;
        let (mut kind, mut audio, decoded) = self.produce(out);
        let quiet = self.noise_floor.quiet(out);
        if lag >= frame + slack && (kind == FrameKind::Silence || quiet || lag >= 3 * frame) {
            // Shrink: drop the frame just made and play the next.
            self.stats.compressed_frames += 1;
            self.stats.discarded += decoded;
            frame_start = playout + out.len() as u64;
            (kind, audio, _) = self.produce(out);
        }
        if audio {
            let min_raw = self.estimator.min_raw().unwrap_or(0);
            self.last_wait = (now_ticks - min_raw - frame_start as i64).max(0) as u64;
            self.stats.delay_ticks_sum += self.last_wait;
            self.stats.delay_frames += 1;
        }
        self.last_quiet = self.noise_floor.quiet(out);
        kind
    }

    /// Starts playout once the first stored packet is due.
    fn start(&mut self, now_ticks: i64) -> Option<u64> {
        let front = self.front()?;
        let min_raw = self.estimator.min_raw()?;
        if now_ticks - min_raw - self.estimator.target() < front.ts as i64 {
            return None;
        }
        self.playout = Some(front.ts);
        Some(front.ts)
    }

    /// Produces the frame at the playout point and advances it; tells whether any of it was
    /// decoded audio, and how many packets were decoded for it.
    fn produce(&mut self, out: &mut [i16]) -> (FrameKind, bool, u64) {
        let Some(playout) = self.playout else {
            out.fill(0);
            return (FrameKind::Silence, false, 0);
        };
        let mut decoded = 0;
        let frame = out.len() as u64;
        let mut filled = 0usize;
        let mut good = 0usize;
        let mut audible_concealment = false;
        while (filled as u64) < frame {
            let t = playout + filled as u64;
            let remaining = out.len() - filled;
            if self.staged_len > 0 && self.staged_ts <= t && t < self.staged_ts + self.staged_len as u64 {
                let offset = (t - self.staged_ts) as usize;
                let n = (self.staged_len - offset).min(remaining);
                let dst = &mut out[filled..filled + n];
                dst.copy_from_slice(&self.staged[offset..offset + n]);
                self.plc.good(dst);
                filled += n;
                good += n;
                continue;
            }
            match self.front() {
                Some(slot) if slot.samples() > 0 && slot.ts + slot.samples() <= t => {
                    // Its time passed while skipping ahead.
                    self.stats.discarded += 1;
                    self.pop(slot.seq);
                }
                Some(slot) if slot.ts <= t => {
                    self.pop(slot.seq);
                    let start = (slot.seq & self.mask) as usize * self.max_payload;
                    let payload = &self.data[start..start + usize::from(slot.len)];
                    match slot.kind {
                        PayloadKind::Audio(law) => {
                            decoded += 1;
                            self.staged_len = law.decode(payload, &mut self.staged);
                            self.staged_ts = slot.ts;
                            self.comfort_noise = None;
                        }
                        PayloadKind::ComfortNoise(level) => {
                            self.comfort_noise = Some(level);
                            self.staged_len = 0;
                        }
                    }
                }
                next => {
                    let gap_end = next.map_or(u64::MAX, |s| s.ts).min(playout + frame);
                    let n = ((gap_end - t) as usize).min(remaining);
                    let dst = &mut out[filled..filled + n];
                    if let Some(level) = self.comfort_noise {
                        self.noise.fill(level, dst);
                        self.plc.good(dst);
                    } else {
                        self.plc.conceal(dst);
                        self.stats.concealed_samples += n as u64;
                        audible_concealment |= dst.iter().any(|&s| s != 0);
                    }
                    filled += n;
                }
            }
        }
        self.playout = Some(playout + frame);
        let kind = if good == out.len() {
            FrameKind::Audio
        } else if good > 0 || audible_concealment {
            FrameKind::Concealed
        } else {
            FrameKind::Silence
        };
        (kind, good > 0, decoded)
    }

    /// Fills a frame that does not advance playout: noise in comfort-noise mode, else
    /// concealment (which continues speech, or silence in a pause).
    fn fill_gap(&mut self, out: &mut [i16]) -> FrameKind {
        if let Some(level) = self.comfort_noise {
            self.noise.fill(level, out);
            self.plc.good(out);
            return FrameKind::Silence;
        }
        self.plc.conceal(out);
        self.stats.concealed_samples += out.len() as u64;
        if out.iter().any(|&s| s != 0) { FrameKind::Concealed } else { FrameKind::Silence }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests;
