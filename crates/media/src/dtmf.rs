//! DTMF as RFC 4733 telephone-events, received and sent.
//!
//! On the wire an event is a run of packets sharing one timestamp (the event's start), the first
//! with the marker bit, each carrying the duration so far; the last carries the E bit and is
//! repeated (three times here) against loss. Events longer than the 16-bit duration allows are
//! split into segments, each starting where the previous ended (RFC 4733 §2.5.1.3).

use std::time::{Duration, Instant};

use crate::units::{ClockRate, RtpTime};

/// A telephone event code (RFC 4733 §3.2): 0–9, `*` (10), `#` (11), A–D (12–15), others.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Digit(pub u8);

impl Digit {
    /// The digit of a keypad character.
    pub fn from_char(c: char) -> Option<Digit> {
        let code = match c {
            '0'..='9' => c as u8 - b'0',
            '*' => 10,
            '#' => 11,
            'A'..='D' => c as u8 - b'A' + 12,
            'a'..='d' => c as u8 - b'a' + 12,
            _ => return None,
        };
        Some(Digit(code))
    }

    /// The keypad character, or `None` for event codes beyond the DTMF range (e.g. 16, flash).
    pub fn to_char(self) -> Option<char> {
        match self.0 {
            0..=9 => Some((b'0' + self.0) as char),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some((b'A' + self.0 - 12) as char),
            _ => None,
        }
    }
}

impl std::fmt::Display for Digit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_char() {
            Some(c) => write!(f, "{c}"),
            None => write!(f, "event {}", self.0),
        }
    }
}

/// A received DTMF event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DtmfEvent {
    /// A key went down (the first packet of an event).
    Start(Digit),
    /// A key went up, after this long; `ended` is false when the end packets were lost and the
    /// event timed out.
    End {
        /// The key.
        digit: Digit,
        /// How long it was held.
        duration: Duration,
        /// Whether an end packet was received.
        ended: bool,
    },
}

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("telephone-event payload of {0} bytes is shorter than 4")]
pub struct DtmfPayloadError(pub usize);

/// The fields of one telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPayload {
    /// The event.
    pub digit: Digit,
    /// End bit.
    pub end: bool,
    /// Volume in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parses the first four bytes (further events in the same packet, RFC 4733 §2.4, are
    /// ignored: DTMF sends one at a time).
    pub fn parse(payload: &[u8]) -> Result<EventPayload, DtmfPayloadError> {
        let p = payload.get(..4).ok_or(DtmfPayloadError(payload.len()))?;
        Ok(EventPayload { digit: Digit(p[0]), end: p[1] & 0x80 != 0, volume: p[1] & 0x3F, duration: u16::from_be_bytes([p[2], p[3]]) })
    }

    /// Writes the payload.
    pub fn write(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.digit.0, (u8::from(self.end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }
}

#[derive(Clone, Copy, Debug)]
struct Receiving {
    digit: Digit,
    /// Timestamp of the current segment.
    ts: RtpTime,
    /// Ticks of the segments before the current one.
    earlier: u64,
    /// Ticks of the current segment so far.
    duration: u64,
    last_packet: Instant,
    ended: bool,
}

/// Turns received telephone-event packets into [`DtmfEvent`]s.
#[derive(Clone, Debug)]
pub struct DtmfReceiver {
    rate: ClockRate,
    timeout: Duration,
    current: Option<Receiving>,
}

impl DtmfReceiver {
    /// A receiver for a telephone-event stream at `rate` (8000 Hz normally). An event with no
    /// packet for `timeout` is taken to have ended.
    pub fn new(rate: ClockRate, timeout: Duration) -> Self {
        DtmfReceiver { rate, timeout, current: None }
    }

    /// Handles one packet; returns up to two events (an unfinished previous event's end and
    /// this one's start, or a start and an end for a one-packet event).
    pub fn on_packet(&mut self, now: Instant, ts: RtpTime, payload: &[u8]) -> Result<[Option<DtmfEvent>; 2], DtmfPayloadError> {
        let p = EventPayload::parse(payload)?;
        let mut out = [None, None];
        let duration = u64::from(p.duration);
        if let Some(cur) = &mut self.current {
            if cur.ts == ts {
                // Same event (or its redundant end packets).
                cur.last_packet = now;
                if cur.ended {
                    return Ok(out);
                }
                cur.duration = cur.duration.max(duration);
                if p.end {
                    cur.ended = true;
                    out[0] = Some(self.end_event(true));
                }
                return Ok(out);
            }
            if ts < cur.ts {
                // A straggler of an older event.
                return Ok(out);
            }
            let continues = !cur.ended && p.digit == cur.digit && ts.since(cur.ts) == cur.duration as i64;
            if continues {
                // Next segment of a long event.
                cur.earlier += cur.duration;
                cur.ts = ts;
                cur.duration = duration;
                cur.last_packet = now;
                if p.end {
                    cur.ended = true;
                    out[0] = Some(self.end_event(true));
                }
                return Ok(out);
            }
            if !cur.ended {
                out[0] = Some(self.end_event(false));
            }
        }
        self.current = Some(Receiving { digit: p.digit, ts, earlier: 0, duration, last_packet: now, ended: p.end });
        let slot = usize::from(out[0].is_some());
        out[slot] = Some(DtmfEvent::Start(p.digit));
        if p.end && slot == 0 {
            out[1] = Some(self.end_event(true));
        }
        Ok(out)
    }

    fn end_event(&self, ended: bool) -> DtmfEvent {
        let cur = self.current.as_ref().expect("end_event is called with an event in progress");
        DtmfEvent::End { digit: cur.digit, duration: self.rate.duration(cur.earlier + cur.duration), ended }
    }

    /// Ends an event whose end packets never came.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DtmfEvent> {
        let cur = self.current.as_ref()?;
        if cur.ended || now < cur.last_packet + self.timeout {
            return None;
        }
        let event = self.end_event(false);
        if let Some(cur) = &mut self.current {
            cur.ended = true;
        }
        Some(event)
    }

    /// When [`DtmfReceiver::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.filter(|c| !c.ended).map(|c| c.last_packet + self.timeout)
    }
}

/// End packets sent per event (RFC 4733 §2.5.1.4 recommends three).
const END_PACKETS: u8 = 3;
/// Digits that can wait in the send queue.
const QUEUE: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Sending {
    digit: Digit,
    start_ts: u32,
    total: u32,
    sent: u32,
    ends_left: u8,
}

/// What the sender wants sent at this packet time instead of audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// Timestamp (the event's start).
    pub ts: u32,
    /// Marker bit (first packet of the event).
    pub marker: bool,
    /// The payload.
    pub payload: [u8; 4],
    /// Whether this is the first packet of an event.
    pub started: Option<Digit>,
    /// Whether this is the last packet of an event.
    pub finished: Option<Digit>,
}

/// The send queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DTMF send queue is full ({QUEUE} digits)")]
pub struct DtmfQueueFull;

/// Sends queued digits as telephone-event packets, replacing audio while an event lasts.
#[derive(Clone, Debug)]
pub struct DtmfSender {
    rate: ClockRate,
    volume: u8,
    queue: [(Digit, u32); QUEUE],
    head: usize,
    len: usize,
    active: Option<Sending>,
    /// Audio must flow until this timestamp before the next digit (the inter-digit pause).
    resume_at: Option<u32>,
    gap: u32,
}

impl DtmfSender {
    /// A sender at `rate`, with `gap` of audio between digits and volume `volume` -dBm0.
    pub fn new(rate: ClockRate, gap: Duration, volume: u8) -> Self {
        DtmfSender { rate, volume: volume.min(63), queue: [(Digit(0), 0); QUEUE], head: 0, len: 0, active: None, resume_at: None, gap: rate.ticks(gap) as u32 }
    }

    /// Queues `digit`, held for `duration` (at least 40 ms, and under the 16-bit limit).
    pub fn queue(&mut self, digit: Digit, duration: Duration) -> Result<(), DtmfQueueFull> {
        if self.len == QUEUE {
            return Err(DtmfQueueFull);
        }
        let ticks = self.rate.ticks(duration.max(Duration::from_millis(40))).min(u64::from(u16::MAX)) as u32;
        self.queue[(self.head + self.len) % QUEUE] = (digit, ticks);
        self.len += 1;
        Ok(())
    }

    /// Whether an event is being sent or waiting.
    pub fn busy(&self) -> bool {
        self.active.is_some() || self.len > 0
    }

    /// Drops queued digits and cuts the event in progress short (its end packets still go out).
    pub fn cancel(&mut self) {
        self.len = 0;
        if let Some(s) = &mut self.active {
            s.total = s.sent.max(1);
        }
    }

    /// Called at each packet time with the audio timestamp `ts` and the packet time in ticks;
    /// returns the event packet to send instead of audio, if any.
    pub fn on_tick(&mut self, ts: u32, ptime: u32) -> Option<EventPacket> {
        if self.active.is_none() {
            if self.len == 0 || self.resume_at.is_some_and(|r| (ts.wrapping_sub(r) as i32) < 0) {
                return None;
            }
            let (digit, total) = self.queue[self.head];
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
            self.active = Some(Sending { digit, start_ts: ts, total, sent: 0, ends_left: END_PACKETS });
        }
        let s = self.active.as_mut()?;
        let marker = s.sent == 0;
        s.sent = (s.sent + ptime).min(s.total);
        let end = s.sent == s.total;
        let payload = EventPayload { digit: s.digit, end, volume: self.volume, duration: s.sent as u16 }.write();
        let packet = EventPacket { ts: s.start_ts, marker, payload, started: marker.then_some(s.digit), finished: None };
        if end {
            s.ends_left -= 1;
            if s.ends_left == 0 {
                let digit = s.digit;
                let resume = s.start_ts.wrapping_add(s.total).wrapping_add(self.gap);
                self.active = None;
                self.resume_at = Some(resume);
                return Some(EventPacket { finished: Some(digit), ..packet });
            }
        }
        Some(packet)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    const RATE: ClockRate = ClockRate::NARROWBAND;

    fn payload(digit: u8, end: bool, duration: u16) -> [u8; 4] {
        EventPayload { digit: Digit(digit), end, volume: 10, duration }.write()
    }

    #[test]
    fn digit_characters() {
        for c in "0123456789*#ABCD".chars() {
            assert_eq!(Digit::from_char(c).and_then(Digit::to_char), Some(c));
        }
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit(16).to_char(), None);
        assert_eq!(Digit(16).to_string(), "event 16");
    }

    #[test]
    fn start_continuation_and_redundant_ends() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        let ts = RtpTime(1 << 32);
        assert_eq!(rx.on_packet(t0, ts, &payload(5, false, 160)), Ok([Some(DtmfEvent::Start(Digit(5))), None]));
        assert_eq!(rx.on_packet(t0, ts, &payload(5, false, 320)), Ok([None, None]));
        let end = DtmfEvent::End { digit: Digit(5), duration: Duration::from_millis(100), ended: true };
        assert_eq!(rx.on_packet(t0, ts, &payload(5, true, 800)), Ok([Some(end), None]));
        // The two redundant end packets change nothing.
        assert_eq!(rx.on_packet(t0, ts, &payload(5, true, 800)), Ok([None, None]));
        assert_eq!(rx.on_packet(t0, ts, &payload(5, true, 800)), Ok([None, None]));
        assert_eq!(rx.poll_timeout(), None);
    }

    #[test]
    fn lost_end_is_closed_by_the_next_event_or_a_timeout() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        rx.on_packet(t0, RtpTime(1000), &payload(1, false, 400)).expect("valid");
        let [a, b] = rx.on_packet(t0, RtpTime(5000), &payload(2, false, 160)).expect("valid");
        assert_eq!(a, Some(DtmfEvent::End { digit: Digit(1), duration: Duration::from_millis(50), ended: false }));
        assert_eq!(b, Some(DtmfEvent::Start(Digit(2))));
        assert_eq!(rx.handle_timeout(t0 + Duration::from_millis(299)), None);
        assert_eq!(rx.poll_timeout(), Some(t0 + Duration::from_millis(300)));
        let timed_out = rx.handle_timeout(t0 + Duration::from_millis(300));
        assert_eq!(timed_out, Some(DtmfEvent::End { digit: Digit(2), duration: Duration::from_millis(20), ended: false }));
        assert_eq!(rx.handle_timeout(t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn only_the_end_packet_arrived() {
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        let [a, b] = rx.on_packet(Instant::now(), RtpTime(0), &payload(11, true, 960)).expect("valid");
        assert_eq!(a, Some(DtmfEvent::Start(Digit(11))));
        assert_eq!(b, Some(DtmfEvent::End { digit: Digit(11), duration: Duration::from_millis(120), ended: true }));
    }

    #[test]
    fn long_event_segments_join() {
        let t0 = Instant::now();
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        rx.on_packet(t0, RtpTime(0), &payload(0, false, 65_535)).expect("valid");
        // The next segment starts where the first ended: no new Start.
        assert_eq!(rx.on_packet(t0, RtpTime(65_535), &payload(0, false, 800)), Ok([None, None]));
        let [end, _] = rx.on_packet(t0, RtpTime(65_535), &payload(0, true, 1600)).expect("valid");
        assert_eq!(end, Some(DtmfEvent::End { digit: Digit(0), duration: RATE.duration(65_535 + 1600), ended: true }));
    }

    #[test]
    fn short_payload_is_an_error() {
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        assert_eq!(rx.on_packet(Instant::now(), RtpTime(0), &[1, 2]), Err(DtmfPayloadError(2)));
    }

    #[test]
    fn sender_packets_follow_rfc4733() {
        let mut tx = DtmfSender::new(RATE, Duration::from_millis(60), 10);
        tx.queue(Digit(9), Duration::from_millis(100)).expect("room");
        tx.queue(Digit(1), Duration::from_millis(50)).expect("room");
        let mut ts = 8000u32;
        let mut packets = Vec::new();
        for _ in 0..20 {
            packets.push(tx.on_tick(ts, 160));
            ts += 160;
        }
        let first: Vec<EventPacket> = packets[..7].iter().map(|p| p.expect("event")).collect();
        assert!(first[0].marker && first[0].started == Some(Digit(9)));
        assert!(first.iter().all(|p| p.ts == 8000));
        let parsed: Vec<EventPayload> = first.iter().map(|p| EventPayload::parse(&p.payload).expect("valid")).collect();
        assert_eq!(parsed.iter().map(|p| p.duration).collect::<Vec<_>>(), vec![160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(parsed.iter().map(|p| p.end).collect::<Vec<_>>(), vec![false, false, false, false, true, true, true]);
        assert_eq!(first[6].finished, Some(Digit(9)));
        // 60 ms between the tones in media time: the event covered 8000..8800, the next starts at
        // 9280; in between, the end packets and one audio packet go out.
        assert!(packets[7].is_none());
        let second = packets[8].expect("second digit");
        assert_eq!((second.ts, second.marker), (9280, true));
        // 50 ms: durations 160, 320, then 400 three times with the E bit.
        let run: Vec<EventPacket> = packets[8..].iter().map_while(|p| *p).collect();
        assert_eq!(run.len(), 5);
        assert_eq!(run[4].finished, Some(Digit(1)));
        assert!(!tx.busy());
    }

    #[test]
    fn sent_events_are_received_as_sent() {
        let t0 = Instant::now();
        let mut tx = DtmfSender::new(RATE, Duration::from_millis(40), 10);
        let mut rx = DtmfReceiver::new(RATE, Duration::from_millis(300));
        for c in "1234567890*#ABCD".chars() {
            tx.queue(Digit::from_char(c).expect("digit"), Duration::from_millis(120)).expect("room");
        }
        let mut got = String::new();
        let mut ts = 0u32;
        for _ in 0..400 {
            if let Some(p) = tx.on_tick(ts, 160) {
                for e in rx.on_packet(t0, RtpTime((1 << 32) + u64::from(p.ts)), &p.payload).expect("valid").into_iter().flatten() {
                    if let DtmfEvent::End { digit, duration, ended } = e {
                        assert!(ended);
                        assert_eq!(duration, Duration::from_millis(120));
                        got.push(digit.to_char().expect("dtmf"));
                    }
                }
            }
            ts += 160;
        }
        assert_eq!(got, "1234567890*#ABCD");
    }

    #[test]
    fn queue_limit_and_cancel() {
        let mut tx = DtmfSender::new(RATE, Duration::from_millis(40), 10);
        for _ in 0..QUEUE {
            tx.queue(Digit(1), Duration::from_millis(100)).expect("room");
        }
        assert_eq!(tx.queue(Digit(1), Duration::from_millis(100)), Err(DtmfQueueFull));
        let first = tx.on_tick(0, 160).expect("event");
        assert!(first.marker);
        tx.cancel();
        // The event in progress ends at once with its end packets; nothing else follows.
        let ends: Vec<_> = (1..=3).map(|i| tx.on_tick(160 * i, 160).expect("end")).collect();
        assert!(ends.iter().all(|p| EventPayload::parse(&p.payload).expect("valid").end));
        assert!(!tx.busy());
        assert_eq!(tx.on_tick(2000, 160), None);
    }
}
