//! The media of one call leg, sans-IO.
//!
//! ```text
//!  handle_rtp ──> RTP parse ─┬─> jitter buffer ─> G.711 decode ─> PLC ─> resample ─> pull_pcm
//!                            └─> DTMF receiver ─────────────────────────────────────> poll_event
//!  push_pcm ──> resample ─> playback queue ─> G.711 encode ─> RTP ─┐
//!  send_dtmf ─> DTMF sender ───────────────────────────────────────┴─> poll_transmit (paced)
//!  handle_rtcp ─> RTT, peer's loss/jitter          reports ──────────> poll_transmit
//! ```
//!
//! # Driving it
//! The driver owns the sockets and the clock. After every `handle_*` call, and whenever the
//! instant returned by [`MediaSession::poll_timeout`] passes (then calling
//! [`MediaSession::handle_timeout`]), it drains:
//! - [`MediaSession::poll_transmit`] until `None`, sending each packet;
//! - [`MediaSession::pull_pcm`] until `None`, giving each frame to speech recognition;
//! - [`MediaSession::poll_event`] until `None`.
//!
//! Packets go out on a drift-free clock: the n-th packet is due at `start + n * ptime`, whatever
//! the latency of the wake-ups, and a packet goes out every packet time, silence when nothing is
//! queued, so providers never see a dead stream. Nothing here allocates after construction.

mod config;
mod events;
mod playback;
mod stats;

use std::time::{Duration, Instant};

pub use config::{Direction, SessionConfig};
pub use events::{MediaEvent, PacketKind, Pulled, Transmit};
pub use stats::MediaStats;

use events::EventQueue;
use playback::Playback;

use crate::cn;
use crate::dtmf::{Digit, DtmfEvent, DtmfQueueFull, DtmfReceiver, DtmfSender};
use crate::g711::Law;
use crate::jitter::{FrameKind, Incoming, JitterBuffer, PayloadKind};
use crate::resample::{ResampleError, Resampler};
use crate::rtp::reception::Reception;
use crate::rtp::rtcp::{RtcpPacket, RtcpWriter};
use crate::rtp::{RtcpError, RtpError, RtpHeader, RtpPacket};
use crate::units::{ClockRate, NtpTime, RtpTime, SeqExtender, SeqNo, Ssrc, TsExtender};

/// The narrowband clock of G.711 and of the frames inside the session.
const RATE: ClockRate = ClockRate::NARROWBAND;
/// Samples of a 20 ms frame at 8 kHz: the unit of playout.
const FRAME_8K: usize = 160;
/// Longest packet time we send or receive.
const MAX_PTIME: Duration = Duration::from_millis(120);
/// The smallest buffer [`MediaSession::poll_transmit`] writes into: an RTP header with 120 ms
/// of G.711, or the largest RTCP compound we send.
pub const MIN_TRANSMIT_BUFFER: usize = 1500;
/// Packet times the driver may fall behind before the missed ones are skipped, not burst out.
const MAX_BURST: u32 = 3;

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A pull or push rate cannot be resampled to 8 kHz.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The packet time is zero, above 120 ms, or not a whole number of milliseconds.
    #[error("unsupported packet time {0:?}")]
    Ptime(Duration),
}

/// Why a received RTP datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpDrop {
    /// Not valid RTP.
    #[error(transparent)]
    Malformed(#[from] RtpError),
    /// A payload type that was not negotiated.
    #[error("RTP payload type {0} was not negotiated")]
    PayloadType(u8),
    /// A packet from a source that has been replaced.
    #[error("RTP from replaced source {0}")]
    StaleSource(Ssrc),
    /// Receiving is off (hold).
    #[error("not receiving (media direction)")]
    NotReceiving,
}

/// Why a DTMF digit cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfSendError {
    /// The peer did not negotiate telephone-event.
    #[error("the peer did not negotiate telephone-event")]
    NotNegotiated,
    /// Too many digits are waiting.
    #[error(transparent)]
    QueueFull(#[from] DtmfQueueFull),
}

/// The remote source being received.
struct Remote {
    ssrc: Ssrc,
    seqs: SeqExtender,
    tss: TsExtender,
    reception: Reception,
}

impl Remote {
    fn new(ssrc: Ssrc) -> Self {
        Remote { ssrc, seqs: SeqExtender::default(), tss: TsExtender::default(), reception: Reception::new(ssrc) }
    }
}

/// The media of one call leg.
pub struct MediaSession {
    config: SessionConfig,
    epoch: Instant,
    now: Instant,
    direction: Direction,

    // Receive.
    remote: Option<Remote>,
    previous_ssrc: Option<Ssrc>,
    jitter: JitterBuffer,
    dtmf_rx: DtmfReceiver,
    up: Resampler,
    frame: Box<[i16]>,
    pulls: u64,
    last_rx: Option<Instant>,
    inactive: bool,

    // Send.
    down: Resampler,
    playback: Playback,
    scratch: Box<[i16]>,
    packet_pcm: Box<[i16]>,
    dtmf_tx: DtmfSender,
    law: Law,
    payload_type: u8,
    ptime_ticks: u32,
    tx_seq: u16,
    tx_ts: u32,
    ticks_sent: u64,
    marker_pending: bool,
    played_samples: u64,
    /// Playback is held (barge-in under review): packets carry silence, the queue is kept.
    paused: bool,
    /// Samples of fade still to apply when playback stops (pause) or starts again (resume).
    fade_out: bool,
    fade_in: bool,
    /// Mean square of the last audio packet sent (0 for silence and DTMF): what an echo of our
    /// own voice can sound like, for the caller's echo guard.
    last_sent_power: f32,

    // RTCP.
    next_rtcp: Instant,
    rtcp_rng: u32,
    sent_since_report: bool,
    bye_pending: bool,

    events: EventQueue,
    stats: MediaStats,
}

impl MediaSession {
    /// A session starting at `now`: its first packet is due at once.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Self, SessionError> {
        let ptime_ms = config.ptime.as_millis();
        if config.ptime.is_zero() || config.ptime > MAX_PTIME || Duration::from_millis(ptime_ms as u64) != config.ptime {
            return Err(SessionError::Ptime(config.ptime));
        }
        let up = Resampler::new(RATE.0, config.pull_rate)?;
        let down = Resampler::new(config.push_rate, RATE.0)?;
        let ptime_ticks = RATE.ticks(config.ptime) as u32;
        let playback = RATE.ticks(config.playback_capacity) as usize;
        let rtcp_rng = config.ssrc.0 | 1;
        let mut session = MediaSession {
            epoch: now,
            now,
            direction: Direction::SendRecv,
            remote: None,
            previous_ssrc: None,
            jitter: JitterBuffer::new(&config.jitter),
            dtmf_rx: DtmfReceiver::new(RATE, config.dtmf_timeout),
            frame: vec![0; up.max_output(FRAME_8K)].into_boxed_slice(),
            up,
            pulls: 0,
            last_rx: None,
            inactive: false,
            scratch: vec![0; down.max_output(fir_chunk(config.push_rate)) + FRAME_8K].into_boxed_slice(),
            down,
            playback: Playback::new(playback),
            packet_pcm: vec![0; ptime_ticks as usize].into_boxed_slice(),
            dtmf_tx: DtmfSender::new(RATE, config.dtmf_gap, config.dtmf_volume),
            law: config.law,
            payload_type: config.payload_type.unwrap_or(config.law.payload_type()),
            ptime_ticks,
            tx_seq: config.first_seq,
            tx_ts: config.first_ts,
            ticks_sent: 0,
            marker_pending: true,
            played_samples: 0,
            paused: false,
            fade_out: false,
            fade_in: false,
            last_sent_power: 0.0,
            next_rtcp: now,
            rtcp_rng,
            sent_since_report: false,
            bye_pending: false,
            events: EventQueue::new(),
            stats: MediaStats::default(),
            config,
        };
        // The first report goes out after half an interval (RFC 3550 §6.2 allows sending early).
        session.next_rtcp = now + session.config.rtcp_interval / 2;
        Ok(session)
    }

    /// The session's settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Our synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        self.config.ssrc
    }

    /// The source we receive, once RTP has arrived.
    pub fn remote_ssrc(&self) -> Option<Ssrc> {
        self.remote.as_ref().map(|r| r.ssrc)
    }

    /// Changes the media direction (hold and resume). Going back to receiving clears the
    /// inactivity state.
    pub fn set_direction(&mut self, direction: Direction) {
        if !self.direction.receives() && direction.receives() {
            self.last_rx = Some(self.now);
            self.inactive = false;
        }
        self.direction = direction;
    }

    /// The media direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Changes the codec we send and its payload type (a re-INVITE changed it).
    pub fn set_law(&mut self, law: Law, payload_type: u8) {
        self.law = law;
        self.payload_type = payload_type;
    }

    /// Changes the negotiated telephone-event payload type.
    pub fn set_telephone_event(&mut self, payload_type: Option<u8>) {
        self.config.telephone_event = payload_type;
    }

    fn ticks_since_epoch(&self, now: Instant) -> u64 {
        RATE.ticks(now.saturating_duration_since(self.epoch))
    }

    // ---------------------------------------------------------------- receive

    /// Handles a datagram received on the RTP port.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtpDrop> {
        self.now = self.now.max(now);
        let packet = RtpPacket::parse(datagram).inspect_err(|_| self.stats.rtp_malformed += 1)?;
        let pt = packet.payload_type();
        enum Kind {
            Audio(Law),
            Noise,
            Event,
        }
        let kind = match pt {
            _ if Some(pt) == self.config.telephone_event => Kind::Event,
            _ if pt == self.payload_type => Kind::Audio(self.law),
            0 => Kind::Audio(Law::Ulaw),
            8 => Kind::Audio(Law::Alaw),
            cn::PAYLOAD_TYPE => Kind::Noise,
            _ => {
                self.stats.unknown_payload_type += 1;
                return Err(RtpDrop::PayloadType(pt));
            }
        };
        if !self.direction.receives() {
            return Err(RtpDrop::NotReceiving);
        }
        let ssrc = packet.ssrc();
        match &self.remote {
            None => {
                self.remote = Some(Remote::new(ssrc));
                self.events.push(MediaEvent::RemoteStarted(ssrc));
            }
            Some(remote) if remote.ssrc != ssrc => {
                if self.previous_ssrc == Some(ssrc) {
                    self.stats.stale_ssrc += 1;
                    return Err(RtpDrop::StaleSource(ssrc));
                }
                let old = remote.ssrc;
                self.previous_ssrc = Some(old);
                self.remote = Some(Remote::new(ssrc));
                self.jitter.reset();
                self.stats.ssrc_changes += 1;
                self.events.push(MediaEvent::SsrcChanged { old, new: ssrc });
            }
            Some(_) => {}
        }
        let arrival = self.ticks_since_epoch(now);
        let Some(remote) = self.remote.as_mut() else { unreachable!("set above") };
        let seq = SeqNo(remote.seqs.extend(u64::from(packet.seq())));
        let ts = RtpTime(remote.tss.extend(u64::from(packet.timestamp())));
        remote.reception.on_packet(seq, arrival, packet.timestamp(), !matches!(kind, Kind::Event));
        self.stats.rtp_received += 1;
        self.stats.rtp_bytes_received += packet.payload().len() as u64;
        self.last_rx = Some(now);
        if self.inactive {
            self.inactive = false;
            self.events.push(MediaEvent::Resumed);
        }
        match kind {
            Kind::Audio(law) => {
                self.jitter.insert(now, Incoming { seq, ts, kind: PayloadKind::Audio(law), payload: packet.payload() });
            }
            Kind::Noise => {
                let level = cn::level(packet.payload()).unwrap_or(127);
                self.jitter.insert(now, Incoming { seq, ts, kind: PayloadKind::ComfortNoise(level), payload: &[] });
            }
            Kind::Event => match self.dtmf_rx.on_packet(now, ts, packet.payload()) {
                Ok(events) => {
                    for e in events.into_iter().flatten() {
                        if let DtmfEvent::End { .. } = e {
                            self.stats.dtmf_received += 1;
                        }
                        self.events.push(MediaEvent::Dtmf(e));
                    }
                }
                Err(_) => self.stats.dtmf_malformed += 1,
            },
        }
        Ok(())
    }

    /// Gives the next frame for speech recognition once one is due: 20 ms at the pull rate,
    /// written to the start of `out` (which must hold that many samples).
    pub fn pull_pcm(&mut self, out: &mut [i16]) -> Option<Pulled> {
        let due = self.epoch + Duration::from_millis(20 * self.pulls);
        if self.now < due {
            return None;
        }
        self.pulls += 1;
        let mut frame8k = [0i16; FRAME_8K];
        // Pull at the frame's scheduled time: when the driver catches up on several frames at
        // once, the buffer must see them as on time, not as playing ahead of its target.
        let kind = self.jitter.pull(due, &mut frame8k);
        let len = self.up.process(&frame8k, &mut self.frame);
        let n = len.min(out.len());
        out[..n].copy_from_slice(&self.frame[..n]);
        let start = Duration::from_millis(20 * (self.pulls - 1));
        let waited = match kind {
            FrameKind::Silence => Duration::ZERO,
            FrameKind::Audio | FrameKind::Concealed => self.jitter.last_wait() + self.now.saturating_duration_since(due),
        };
        Some(Pulled { kind, len: n, at: start.saturating_sub(self.up.delay()), waited })
    }

    /// Samples in a frame given by [`MediaSession::pull_pcm`].
    pub fn pull_frame_len(&self) -> usize {
        self.up.max_output(FRAME_8K)
    }

    // ---------------------------------------------------------------- send

    /// Queues audio at the push rate for playback; returns how many samples were taken (fewer
    /// than offered when the queue is full: offer the rest later).
    pub fn push_pcm(&mut self, pcm: &[i16]) -> usize {
        let (from, _) = self.down.rates();
        let chunk = fir_chunk(from);
        let mut taken = 0;
        while taken < pcm.len() {
            // Room for the output of the next piece, at 8 kHz.
            let free_in = (self.playback.free().saturating_sub(FRAME_8K)) * from as usize / RATE.0 as usize;
            let n = (pcm.len() - taken).min(chunk).min(free_in);
            if n == 0 {
                break;
            }
            let written = self.down.process(&pcm[taken..taken + n], &mut self.scratch);
            self.playback.push(&self.scratch[..written]);
            taken += n;
        }
        taken
    }

    /// Audio sent from the playback queue since the session started (silence excluded).
    /// With [`MediaSession::queued`], this tells how much of an utterance the caller really
    /// heard when it is cut short.
    pub fn played(&self) -> Duration {
        RATE.duration(self.played_samples)
    }

    /// Audio queued for playback and not yet sent.
    pub fn queued(&self) -> Duration {
        RATE.duration(self.playback.len() as u64)
    }

    /// Holds playback at once, keeping what is queued: the next packet fades out the next
    /// [`SessionConfig::flush_fade`] of audio without consuming it, and silence follows until
    /// [`MediaSession::resume`]. What the caller heard ([`MediaSession::played`]) stops exactly at
    /// the paused sample. For a barge-in that may prove false (a cough): resume, or flush.
    pub fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            self.fade_out = self.playback.len() > 0;
            self.fade_in = false;
        }
    }

    /// Plays on from the sample where [`MediaSession::pause`] stopped, fading in over
    /// [`SessionConfig::flush_fade`].
    pub fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.fade_out = false;
            self.fade_in = self.playback.len() > 0;
        }
    }

    /// Whether playback is held.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Mean square (of full scale 32768², so 1.0 is a full-scale square wave) of the last audio
    /// packet sent: 0 after silence or DTMF. Read after each RTP transmit by an echo guard.
    pub fn last_sent_power(&self) -> f32 {
        self.last_sent_power
    }

    /// Drops queued playback at once (barge-in), keeping only a short fade-out (none while
    /// paused: the pause already faded out); returns how much audio was dropped. Playback is no
    /// longer paused afterwards.
    pub fn flush(&mut self) -> Duration {
        let keep = if self.paused { 0 } else { RATE.ticks(self.config.flush_fade) as usize };
        self.paused = false;
        self.fade_out = false;
        self.fade_in = false;
        let dropped = RATE.duration(self.playback.cut(keep) as u64);
        self.down.reset();
        self.stats.flushed += dropped;
        dropped
    }

    /// Queues a DTMF digit to send as an RFC 4733 event.
    pub fn send_dtmf(&mut self, digit: Digit, duration: Duration) -> Result<(), DtmfSendError> {
        if self.config.telephone_event.is_none() {
            return Err(DtmfSendError::NotNegotiated);
        }
        self.dtmf_tx.queue(digit, duration)?;
        Ok(())
    }

    /// Sends an RTCP BYE with the next transmit, and stops sending RTP.
    pub fn close(&mut self) {
        self.bye_pending = true;
        self.direction = Direction::Inactive;
    }

    // ---------------------------------------------------------------- timers and output

    /// Advances the session's clock: ends stale DTMF events, notices inactivity.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if let Some(e) = self.dtmf_rx.handle_timeout(now) {
            self.stats.dtmf_received += 1;
            self.events.push(MediaEvent::Dtmf(e));
        }
        if let (Some(limit), true, false) = (self.config.inactivity, self.direction.receives(), self.inactive) {
            let since = self.last_rx.unwrap_or(self.epoch);
            if now.saturating_duration_since(since) >= limit {
                self.inactive = true;
                self.events.push(MediaEvent::Inactive);
            }
        }
    }

    /// When [`MediaSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.epoch + Duration::from_millis(20 * self.pulls);
        if self.direction.sends() {
            next = next.min(self.next_send());
        }
        next = next.min(self.next_rtcp);
        if let Some(t) = self.dtmf_rx.poll_timeout() {
            next = next.min(t);
        }
        if let (Some(limit), true, false) = (self.config.inactivity, self.direction.receives(), self.inactive) {
            next = next.min(self.last_rx.unwrap_or(self.epoch) + limit);
        }
        Some(next)
    }

    fn next_send(&self) -> Instant {
        self.epoch + RATE.duration(self.ticks_sent * u64::from(self.ptime_ticks))
    }

    /// Writes the next due packet into `buf` (at least [`MIN_TRANSMIT_BUFFER`] bytes); `None`
    /// when nothing is due.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < MIN_TRANSMIT_BUFFER {
            debug_assert!(false, "poll_transmit needs a buffer of {MIN_TRANSMIT_BUFFER} bytes");
            return None;
        }
        if self.bye_pending {
            self.bye_pending = false;
            return self.rtcp(buf, true);
        }
        if self.direction.sends() && self.now >= self.next_send() {
            // Fallen far behind (a stalled driver): skip the missed packet times rather than
            // bursting them out, keeping timestamps true to the wall clock.
            let behind = (self.ticks_since_epoch(self.now) / u64::from(self.ptime_ticks)).saturating_sub(self.ticks_sent);
            if behind > u64::from(MAX_BURST) {
                let skip = behind - u64::from(MAX_BURST);
                self.ticks_sent += skip;
                self.tx_ts = self.tx_ts.wrapping_add((skip * u64::from(self.ptime_ticks)) as u32);
                self.stats.send_ticks_skipped += skip;
            }
            return self.rtp(buf);
        }
        if self.now >= self.next_rtcp {
            return self.rtcp(buf, false);
        }
        None
    }

    fn rtp(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let ts = self.tx_ts;
        self.ticks_sent += 1;
        self.tx_ts = ts.wrapping_add(self.ptime_ticks);
        let seq = self.tx_seq;
        let event = match self.config.telephone_event {
            Some(_) => self.dtmf_tx.on_tick(ts, self.ptime_ticks),
            None => None,
        };
        let (header, payload_len) = if let (Some(e), Some(pt)) = (event, self.config.telephone_event) {
            if let Some(d) = e.finished {
                self.stats.dtmf_sent += 1;
                self.events.push(MediaEvent::DtmfSent(d));
            }
            let header = RtpHeader { marker: e.marker, payload_type: pt, seq, timestamp: e.ts, ssrc: self.config.ssrc };
            buf.get_mut(12..16)?.copy_from_slice(&e.payload);
            (header, 4)
        } else {
            let n = self.packet_pcm.len();
            let fade = (RATE.ticks(self.config.flush_fade) as usize).clamp(1, n);
            let got = if self.paused {
                // Fade out what would have come next, without taking it: a resume plays it.
                let peeked = if std::mem::take(&mut self.fade_out) { self.playback.peek(&mut self.packet_pcm[..fade]) } else { 0 };
                ramp(&mut self.packet_pcm[..peeked], false);
                self.packet_pcm[peeked..].fill(0);
                0
            } else {
                let got = self.playback.pop(&mut self.packet_pcm);
                if std::mem::take(&mut self.fade_in) {
                    let n = fade.min(got);
                    ramp(&mut self.packet_pcm[..n], true);
                }
                self.packet_pcm[got..].fill(0);
                got
            };
            self.played_samples += got as u64;
            if got == 0 {
                self.stats.silence_sent += 1;
            }
            self.last_sent_power = mean_square(&self.packet_pcm);
            let payload = buf.get_mut(12..12 + n)?;
            self.law.encode(&self.packet_pcm, payload);
            let header =
                RtpHeader { marker: std::mem::take(&mut self.marker_pending), payload_type: self.payload_type, seq, timestamp: ts, ssrc: self.config.ssrc };
            (header, n)
        };
        header.write(buf)?;
        self.tx_seq = seq.wrapping_add(1);
        self.stats.rtp_sent += 1;
        self.stats.rtp_bytes_sent += payload_len as u64;
        self.sent_since_report = true;
        Some(Transmit { kind: PacketKind::Rtp, len: 12 + payload_len })
    }

    fn rtcp(&mut self, buf: &mut [u8], bye: bool) -> Option<Transmit> {
        let now = self.now;
        // Next interval: randomised over [0.5, 1.5] of the mean (RFC 3550 §6.3.1), from a
        // generator seeded by our (random) SSRC.
        self.rtcp_rng ^= self.rtcp_rng << 13;
        self.rtcp_rng ^= self.rtcp_rng >> 17;
        self.rtcp_rng ^= self.rtcp_rng << 5;
        let factor = 0.5 + f64::from(self.rtcp_rng) / f64::from(u32::MAX);
        self.next_rtcp = now + self.config.rtcp_interval.mul_f64(factor);

        let block = self.remote.as_mut().map(|r| r.reception.report_block(now));
        let blocks = block.as_slice();
        let ntp = self.ntp(now);
        let mut w = RtcpWriter::new(buf);
        if self.sent_since_report {
            // The RTP timestamp that corresponds to `now` on our sending clock.
            let elapsed = self.ticks_since_epoch(now);
            let rtp_time = self.config.first_ts.wrapping_add(elapsed as u32);
            let packets = self.stats.rtp_sent as u32;
            let octets = self.stats.rtp_bytes_sent as u32;
            w.sender_report(self.config.ssrc, ntp, rtp_time, packets, octets, blocks)?;
        } else {
            w.receiver_report(self.config.ssrc, blocks)?;
        }
        w.cname(self.config.ssrc, &self.config.cname)?;
        if bye {
            w.bye(self.config.ssrc)?;
        }
        self.sent_since_report = false;
        self.stats.rtcp_sent += 1;
        Some(Transmit { kind: PacketKind::Rtcp, len: w.len() })
    }

    fn ntp(&self, now: Instant) -> NtpTime {
        self.config.wallclock.plus(now.saturating_duration_since(self.epoch))
    }

    /// Handles a datagram received on the RTCP port (or demultiplexed from the RTP port).
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        self.now = self.now.max(now);
        let packets = crate::rtp::parse_compound(datagram).inspect_err(|_| self.stats.rtcp_malformed += 1)?;
        self.stats.rtcp_received += 1;
        let ours = self.config.ssrc;
        let arrival = self.ntp(now).middle();
        for packet in packets {
            let blocks = match packet {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(remote) = self.remote.as_mut().filter(|r| r.ssrc == sr.ssrc) {
                        remote.reception.on_sender_report(sr.ntp.middle(), now);
                    }
                    Some(sr.blocks)
                }
                RtcpPacket::ReceiverReport(rr) => Some(rr.blocks),
                RtcpPacket::Bye(sources) => {
                    if let Some(remote) = &self.remote
                        && sources.iter().any(|s| s == remote.ssrc)
                    {
                        self.events.push(MediaEvent::RemoteBye);
                    }
                    None
                }
                RtcpPacket::SourceDescription(_) | RtcpPacket::Other { .. } => None,
            };
            for block in blocks.iter().flat_map(|b| b.iter()).filter(|b| b.ssrc == ours) {
                if let Some(rtt) = crate::rtp::round_trip(&block, arrival) {
                    self.stats.rtt = Some(rtt);
                }
                self.stats.remote_fraction_lost = block.fraction_lost;
                self.stats.remote_lost = block.cumulative_lost;
                self.stats.remote_jitter = RATE.duration(u64::from(block.jitter));
            }
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stats;
        s.buffer = *self.jitter.stats();
        s.buffer_delay = self.jitter.target_delay();
        if let Some(r) = &self.remote {
            s.lost = r.reception.lost();
            s.jitter = RATE.duration(u64::from(r.reception.jitter_ticks()));
        }
        s.events_dropped = self.events.dropped;
        s.played = self.played();
        s
    }
}

/// A linear fade over `samples`: in (0 to 1) or out (1 to 0), never reaching the end points so
/// that a one-sample fade still changes the sample.
fn ramp(samples: &mut [i16], rising: bool) {
    let n = samples.len();
    for (i, s) in samples.iter_mut().enumerate() {
        let step = if rising { i + 1 } else { n - i };
        *s = crate::simd::f32_to_i16(f32::from(*s) * step as f32 / (n + 1) as f32);
    }
}

/// Mean square of `samples` relative to full scale (1.0: a full-scale square wave): the level
/// of a frame, as [`MediaSession::last_sent_power`] gives it.
pub fn mean_square(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f32 = samples.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
    sum / (samples.len() as f32 * 32_768.0 * 32_768.0)
}

/// Input samples processed per resampler call when queueing playback: 20 ms at `rate`.
fn fir_chunk(rate: u32) -> usize {
    (rate / 50) as usize
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests;
