//! Reception statistics of one remote source (RFC 3550 §A.3 loss, §A.8 interarrival jitter) and
//! the reception report block built from them.

use std::time::{Duration, Instant};

use super::rtcp::ReportBlock;
use crate::units::{SeqNo, Ssrc, to_short_ntp};

/// What we know of the last sender report of the remote source, for LSR/DLSR.
#[derive(Clone, Copy, Debug)]
struct LastSr {
    ntp_middle: u32,
    received_at: Instant,
}

/// Loss and jitter of one remote source, as RFC 3550 defines them.
#[derive(Clone, Debug, Default)]
pub struct Reception {
    ssrc: Ssrc,
    base_seq: Option<SeqNo>,
    max_seq: Option<SeqNo>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in ticks, scaled by 16 (the integer method of §A.8).
    jitter_x16: u64,
    last_transit: Option<i64>,
    last_sr: Option<LastSr>,
}

impl Reception {
    /// Starts counting for `ssrc`.
    pub fn new(ssrc: Ssrc) -> Self {
        Reception { ssrc, ..Default::default() }
    }

    /// The source counted.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Counts a packet. `arrival_ticks` is the arrival time in RTP ticks on any fixed origin;
    /// `timestamp` is the packet's wire timestamp. `timing` is false for packets whose timestamp
    /// does not advance with their sending time (RFC 4733 events), which count for loss only.
    pub fn on_packet(&mut self, seq: SeqNo, arrival_ticks: u64, timestamp: u32, timing: bool) {
        self.received += 1;
        if self.base_seq.is_none_or(|b| seq < b) {
            self.base_seq = Some(seq);
        }
        if self.max_seq.is_none_or(|m| seq > m) {
            self.max_seq = Some(seq);
        }
        if timing {
            // Transit times in wrapping 32-bit tick arithmetic, as §A.8 computes them.
            let transit = i64::from((arrival_ticks as u32).wrapping_sub(timestamp) as i32);
            if let Some(last) = self.last_transit {
                let d = (transit - last).unsigned_abs();
                // J += (|D| - J) / 16, in fixed point.
                self.jitter_x16 = self.jitter_x16 + d - ((self.jitter_x16 + 8) >> 4);
            }
            self.last_transit = Some(transit);
        }
    }

    /// Forgets the timing reference (after a timestamp discontinuity) so that the jump is not
    /// counted as jitter.
    pub fn reset_timing(&mut self) {
        self.last_transit = None;
    }

    /// Records a sender report from this source, for the LSR and DLSR of our next report.
    pub fn on_sender_report(&mut self, ntp_middle: u32, now: Instant) {
        self.last_sr = Some(LastSr { ntp_middle, received_at: now });
    }

    /// Packets received, duplicates included (RFC 3550 counts them too).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the sequence number range.
    pub fn expected(&self) -> u64 {
        match (self.base_seq, self.max_seq) {
            (Some(b), Some(m)) => m.0 - b.0 + 1,
            _ => 0,
        }
    }

    /// Cumulative packets lost; negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in RTP ticks.
    pub fn jitter_ticks(&self) -> u32 {
        u32::try_from(self.jitter_x16 >> 4).unwrap_or(u32::MAX)
    }

    /// The report block for our next SR/RR, which also starts the next loss interval.
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 { 0 } else { ((lost_interval << 8) / expected_interval).min(255) as u8 };
        // The extended highest sequence number counts cycles from zero on the wire, while our
        // extended numbers start one cycle up.
        let highest_seq = self.max_seq.map_or(0, |m| (m.0 - (1 << 16)) as u32);
        let (lsr, dlsr) = match self.last_sr {
            Some(sr) => (sr.ntp_middle, to_short_ntp(now.saturating_duration_since(sr.received_at))),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq,
            jitter: self.jitter_ticks(),
            lsr,
            dlsr,
        }
    }
}

/// Round-trip time from a report block about our stream (RFC 3550 §6.4.1): the arrival time
/// minus LSR minus DLSR, all in middle-32-bit NTP units. `None` without an SR to refer to, or
/// when the result is negative (clock skew or a bogus block).
pub fn round_trip(block: &ReportBlock, arrival_ntp_middle: u32) -> Option<Duration> {
    if block.lsr == 0 {
        return None;
    }
    let rtt = arrival_ntp_middle.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
    // A wrapped (negative) value shows up as more than half the 16.16 range.
    (rtt < 0x8000_0000).then(|| crate::units::from_short_ntp(rtt))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;
    use crate::units::NtpTime;

    #[test]
    fn loss_fraction_and_cumulative() {
        let mut r = Reception::new(Ssrc(5));
        let now = Instant::now();
        // 10 packets expected, 8 received (seq 3 and 7 lost).
        for s in (0..10u64).filter(|s| *s != 3 && *s != 7) {
            r.on_packet(SeqNo((1 << 16) + s), s * 160, (s * 160) as u32, true);
        }
        assert_eq!((r.expected(), r.received(), r.lost()), (10, 8, 2));
        let b = r.report_block(now);
        assert_eq!(b.fraction_lost, (2 * 256 / 10) as u8);
        assert_eq!(b.cumulative_lost, 2);
        assert_eq!(b.highest_seq, 9);
        assert_eq!(b.jitter, 0, "perfectly paced packets have no jitter");
        // The next interval has no loss.
        r.on_packet(SeqNo((1 << 16) + 10), 1600, 1600, true);
        assert_eq!(r.report_block(now).fraction_lost, 0);
    }

    #[test]
    fn duplicates_make_loss_negative() {
        let mut r = Reception::new(Ssrc(5));
        for _ in 0..3 {
            r.on_packet(SeqNo(1 << 16), 0, 0, true);
        }
        assert_eq!(r.lost(), -2);
        assert_eq!(r.report_block(Instant::now()).cumulative_lost, -2);
    }

    #[test]
    fn jitter_converges_to_the_rfc_estimate() {
        let mut r = Reception::new(Ssrc(5));
        // Alternate transit delays of 0 and 80 ticks: |D| is always 80, so J tends to 80.
        for s in 0..2000u64 {
            let arrival = s * 160 + if s % 2 == 0 { 0 } else { 80 };
            r.on_packet(SeqNo((1 << 16) + s), arrival, (s * 160) as u32, true);
        }
        assert!((79..=80).contains(&r.jitter_ticks()), "{}", r.jitter_ticks());
    }

    #[test]
    fn timestamps_wrapping_do_not_disturb_jitter() {
        let mut r = Reception::new(Ssrc(5));
        let start = u32::MAX - 800;
        for s in 0..20u32 {
            let ts = start.wrapping_add(s * 160);
            r.on_packet(SeqNo((1 << 16) + u64::from(s)), u64::from(s) * 160 + 12_345, ts, true);
        }
        assert_eq!(r.jitter_ticks(), 0);
    }

    #[test]
    fn lsr_dlsr_and_round_trip() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(5));
        let sr_ntp = NtpTime::from_unix(Duration::from_secs(1_000));
        r.on_sender_report(sr_ntp.middle(), t0);
        let block = r.report_block(t0 + Duration::from_millis(500));
        assert_eq!(block.lsr, sr_ntp.middle());
        assert_eq!(block.dlsr, 32_768);
        // The remote receives our block 120 ms of network round trip after it sent its SR,
        // plus the 500 ms we held it.
        let arrival = sr_ntp.plus(Duration::from_millis(620)).middle();
        let rtt = round_trip(&block, arrival).expect("rtt");
        assert!((rtt.as_secs_f64() - 0.120).abs() < 0.001, "{rtt:?}");
        assert_eq!(round_trip(&ReportBlock::default(), arrival), None);
    }
}
