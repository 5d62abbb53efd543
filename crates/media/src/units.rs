//! Protocol quantities as newtypes, so that raw wire counters are never ordered or mixed.
//!
//! RTP carries 16-bit sequence numbers and 32-bit timestamps that wrap. Everything above the
//! parser works on their *extended* forms ([`SeqNo`], [`RtpTime`]), obtained with an
//! [`Extender`] per stream, as RFC 3550 §A.1 recommends. Durations are [`std::time::Duration`];
//! RTP ticks are converted only through a [`ClockRate`].

use std::fmt;
use std::time::Duration;

/// Synchronisation source identifier (RFC 3550 §5.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ssrc(pub u32);

impl fmt::Debug for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssrc({:#010x})", self.0)
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// An extended RTP sequence number: the 16-bit wire value plus the count of wraps.
///
/// Extended values start one cycle up (at `1 << 16`), so that a packet reordered from before the
/// first one received still extends to a smaller value instead of underflowing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit value carried on the wire.
    pub fn wire(self) -> u16 {
        self.0 as u16
    }

    /// The next sequence number.
    #[must_use]
    pub fn next(self) -> SeqNo {
        SeqNo(self.0 + 1)
    }
}

/// An extended RTP timestamp in clock ticks: the 32-bit wire value plus the count of wraps.
///
/// Like [`SeqNo`], extended values start one cycle up (at `1 << 32`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RtpTime(pub u64);

impl RtpTime {
    /// The 32-bit value carried on the wire.
    pub fn wire(self) -> u32 {
        self.0 as u32
    }

    /// This time advanced by `ticks`.
    #[must_use]
    pub fn plus(self, ticks: u64) -> RtpTime {
        RtpTime(self.0 + ticks)
    }

    /// Signed distance `self - earlier` in ticks.
    pub fn since(self, earlier: RtpTime) -> i64 {
        self.0.wrapping_sub(earlier.0) as i64
    }
}

/// Extends a wrapping counter of `BITS` bits (16 for sequence numbers, 32 for timestamps).
///
/// Each new wire value is placed in the cycle that puts it closest to the highest value seen so
/// far, so reordering within half the counter range is handled and wraps are counted.
#[derive(Clone, Copy, Debug)]
pub struct Extender<const BITS: u32> {
    highest: Option<u64>,
}

impl<const BITS: u32> Default for Extender<BITS> {
    fn default() -> Self {
        Self { highest: None }
    }
}

impl<const BITS: u32> Extender<BITS> {
    const CYCLE: u64 = 1 << BITS;
    const HALF: u64 = 1 << (BITS - 1);

    /// Extends `wire`, updating the highest value seen when it is newer.
    pub fn extend(&mut self, wire: u64) -> u64 {
        let ext = self.peek(wire);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    /// Extends `wire` without recording it.
    pub fn peek(&self, wire: u64) -> u64 {
        let wire = wire & (Self::CYCLE - 1);
        let Some(highest) = self.highest else {
            return Self::CYCLE + wire;
        };
        let base = highest & !(Self::CYCLE - 1);
        let candidate = base | wire;
        if candidate > highest && candidate - highest > Self::HALF && base >= Self::CYCLE {
            // Closer to the highest when placed in the previous cycle: a late packet.
            candidate - Self::CYCLE
        } else if candidate < highest && highest - candidate > Self::HALF {
            // Closer when placed in the next cycle: the counter wrapped.
            candidate + Self::CYCLE
        } else {
            candidate
        }
    }

    /// The highest extended value seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Forgets the stream, for an SSRC change or a discontinuity.
    pub fn reset(&mut self) {
        self.highest = None;
    }
}

/// Extends 16-bit RTP sequence numbers.
pub type SeqExtender = Extender<16>;
/// Extends 32-bit RTP timestamps.
pub type TsExtender = Extender<32>;

/// An RTP clock rate in Hz, the only way RTP ticks and durations are converted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClockRate(pub u32);

impl ClockRate {
    /// The 8 kHz clock of G.711 and telephone-event.
    pub const NARROWBAND: ClockRate = ClockRate(8000);

    /// Ticks in `d`, rounded down.
    pub fn ticks(self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.0) / 1_000_000_000) as u64
    }

    /// The duration of `ticks`.
    pub fn duration(self, ticks: u64) -> Duration {
        Duration::from_nanos((u128::from(ticks) * 1_000_000_000 / u128::from(self.0)) as u64)
    }

    /// Signed ticks as signed microseconds.
    pub fn ticks_to_micros(self, ticks: i64) -> i64 {
        (i128::from(ticks) * 1_000_000 / i128::from(self.0)) as i64
    }

    /// Signed microseconds as signed ticks, rounded toward zero.
    pub fn micros_to_ticks(self, micros: i64) -> i64 {
        (i128::from(micros) * i128::from(self.0) / 1_000_000) as i64
    }
}

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the high half, fraction in the low.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
    pub const UNIX_OFFSET_SECS: u64 = 2_208_988_800;

    /// The NTP time of a duration since the Unix epoch.
    pub fn from_unix(since_epoch: Duration) -> NtpTime {
        let secs = since_epoch.as_secs() + Self::UNIX_OFFSET_SECS;
        let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// This time advanced by `d`.
    #[must_use]
    pub fn plus(self, d: Duration) -> NtpTime {
        let secs = d.as_secs() << 32;
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime(self.0.wrapping_add(secs).wrapping_add(frac))
    }

    /// The middle 32 bits, as carried in LSR fields and compared for round-trip time.
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// Converts a duration to the 1/65536-second units of RTCP's DLSR field, saturating.
pub fn to_short_ntp(d: Duration) -> u32 {
    let units = d.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// Converts 1/65536-second units (LSR/DLSR arithmetic) to a duration.
pub fn from_short_ntp(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn seq_extends_across_wrap_and_reorder() {
        let mut e = SeqExtender::default();
        let first = e.extend(65_534);
        assert_eq!(first, 65_536 + 65_534);
        assert_eq!(e.extend(65_535), first + 1);
        assert_eq!(e.extend(0), first + 2);
        assert_eq!(e.extend(1), first + 3);
        // A late packet from before the wrap stays in the old cycle.
        assert_eq!(e.extend(65_533), first - 1);
        assert_eq!(e.highest(), Some(first + 3));
    }

    #[test]
    fn seq_before_first_does_not_underflow() {
        let mut e = SeqExtender::default();
        let first = e.extend(3);
        assert_eq!(e.extend(65_533), first - 6);
    }

    #[test]
    fn ts_extends_across_wrap() {
        let mut e = TsExtender::default();
        let a = e.extend(u64::from(u32::MAX - 159));
        let b = e.extend(0);
        assert_eq!(b - a, 160);
    }

    #[test]
    fn many_wraps_count_cycles() {
        let mut e = SeqExtender::default();
        let start = e.extend(0);
        let mut wire: u16 = 0;
        for i in 1..=300_000u64 {
            wire = wire.wrapping_add(1);
            assert_eq!(e.extend(u64::from(wire)), start + i);
        }
    }

    #[test]
    fn clock_rate_conversions() {
        let r = ClockRate::NARROWBAND;
        assert_eq!(r.ticks(Duration::from_millis(20)), 160);
        assert_eq!(r.duration(160), Duration::from_millis(20));
        assert_eq!(r.ticks_to_micros(-80), -10_000);
        assert_eq!(r.micros_to_ticks(30_000), 240);
    }

    #[test]
    fn ntp_round_trip_units() {
        let t = NtpTime::from_unix(Duration::from_millis(1_500));
        assert_eq!(t.0 >> 32, NtpTime::UNIX_OFFSET_SECS + 1);
        assert_eq!((t.0 & 0xFFFF_FFFF) >> 31, 1); // half a second
        let later = t.plus(Duration::from_millis(250));
        let diff = later.middle().wrapping_sub(t.middle());
        assert_eq!(from_short_ntp(diff).as_millis(), 250);
        assert_eq!(to_short_ntp(Duration::from_secs(1)), 65_536);
    }
}
