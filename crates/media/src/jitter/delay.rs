//! The target playout delay, estimated from packet arrival times.
//!
//! Each packet's *raw delay* is its arrival time minus its RTP timestamp, in ticks. Its offset is
//! unknown (sender and receiver clocks share no origin) but constant, so the fastest packet of
//! the recent past (the minimum raw delay) marks "no queueing", and every packet's *relative
//! delay* above it is the jitter it suffered. The target is the 95th percentile of the relative
//! delays of the last [`WINDOW`] packets (about 5 s at 20 ms), plus a margin, within the
//! configured bounds:
//! - it rises at once when the jitter grows: as soon as two of the last [`RECENT`] packets exceed
//!   it (one alone is a spike and is ignored);
//! - it falls back when jitter subsides, as high delays leave the window.

/// Packets whose delays form the long-term percentile.
pub const WINDOW: usize = 256;
/// Packets watched for a sudden rise.
pub const RECENT: usize = 16;
/// Recompute the percentile (and the window minimum) this often.
const RECOMPUTE_EVERY: usize = 16;
/// Rank of the 95th percentile in a full window, counted from the top.
const TOP_RANK: usize = WINDOW / 20;

/// Estimates the playout delay, in RTP ticks.
#[derive(Clone)]
pub struct DelayEstimator {
    raw: Box<[i64; WINDOW]>,
    next: usize,
    filled: usize,
    since_recompute: usize,
    /// Minimum raw delay over the window: the zero of relative delays.
    min_raw: Option<i64>,
    /// The percentile part of the target, before margin and bounds.
    percentile: i64,
    target: i64,
    min: i64,
    max: i64,
    margin: i64,
}

impl DelayEstimator {
    /// An estimator bounded to `min..=max` ticks, starting at `initial`, adding `margin` ticks
    /// above the percentile.
    pub fn new(min: i64, max: i64, initial: i64, margin: i64) -> Self {
        let max = max.max(min);
        DelayEstimator {
            raw: Box::new([0; WINDOW]),
            next: 0,
            filled: 0,
            since_recompute: 0,
            min_raw: None,
            percentile: 0,
            target: initial.clamp(min, max),
            min,
            max,
            margin,
        }
    }

    /// Whether the bounds leave nothing to adapt (a fixed-delay buffer).
    pub fn is_fixed(&self) -> bool {
        self.min == self.max
    }

    /// Records a packet's raw delay (arrival ticks minus timestamp).
    pub fn on_arrival(&mut self, raw: i64) {
        self.raw[self.next] = raw;
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
        if self.min_raw.is_none_or(|m| raw < m) {
            self.min_raw = Some(raw);
        }
        self.since_recompute += 1;
        let relative = raw - self.min_raw.unwrap_or(raw);
        if self.since_recompute >= RECOMPUTE_EVERY {
            self.recompute();
        } else if relative + self.margin > self.target && self.recent_second_highest() + self.margin > self.target {
            // Fast attack: a second packet of the recent ones is over the target.
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        self.since_recompute = 0;
        let window = &self.raw[..self.filled];
        let min_raw = window.iter().copied().min().unwrap_or(0);
        self.min_raw = Some(min_raw);
        let rank = (self.filled / 20).clamp(1, TOP_RANK);
        let percentile = kth_largest(window, rank) - min_raw;
        let recent = self.recent_second_highest();
        self.percentile = percentile.max(recent);
        if self.is_fixed() {
            return;
        }
        // Until the window holds a few packets, do not go below the initial delay.
        let floor = if self.filled < RECENT { self.target } else { self.min };
        self.target = (self.percentile + self.margin).clamp(floor, self.max);
    }

    /// The second-highest relative delay of the last `RECENT` packets.
    fn recent_second_highest(&self) -> i64 {
        let n = self.filled.min(RECENT);
        if n < 2 {
            return 0;
        }
        let min_raw = self.min_raw.unwrap_or(0);
        let mut top = [i64::MIN; 2];
        for i in 0..n {
            let v = self.raw[(self.next + WINDOW - 1 - i) % WINDOW];
            if v > top[0] {
                top = [v, top[0]];
            } else if v > top[1] {
                top[1] = v;
            }
        }
        top[1] - min_raw
    }

    /// The target delay in ticks.
    pub fn target(&self) -> i64 {
        self.target
    }

    /// The minimum raw delay of the window, once a packet has arrived.
    pub fn min_raw(&self) -> Option<i64> {
        self.min_raw
    }

    /// The relative delay of a packet with raw delay `raw`.
    pub fn relative(&self, raw: i64) -> i64 {
        raw - self.min_raw.unwrap_or(raw)
    }

    /// Forgets all arrivals (a new stream or a timestamp discontinuity), keeping the target.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.next = 0;
        self.since_recompute = 0;
        self.min_raw = None;
    }
}

/// The `k`-th largest value (1-based) of `values`, in one pass with a small sorted array.
fn kth_largest(values: &[i64], k: usize) -> i64 {
    let mut top = [i64::MIN; TOP_RANK];
    let k = k.clamp(1, TOP_RANK);
    for &v in values {
        if v > top[k - 1] {
            // Insert keeping top[..k] sorted descending.
            let mut i = k - 1;
            while i > 0 && top[i - 1] < v {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = v;
        }
    }
    top[k - 1]
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn kth_largest_matches_sorting() {
        let values: Vec<i64> = (0..200).map(|i| (i * 7919) % 1000).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        for k in [1, 2, 5, 12] {
            assert_eq!(kth_largest(&values, k), sorted[k - 1]);
        }
    }

    #[test]
    fn steady_stream_settles_at_the_minimum() {
        let mut d = DelayEstimator::new(160, 1600, 320, 80);
        for i in 0..300 {
            d.on_arrival(1000 + (i % 3)); // 3 ticks of jitter
        }
        assert_eq!(d.target(), 160);
    }

    #[test]
    fn rises_fast_and_falls_slowly() {
        let mut d = DelayEstimator::new(160, 1600, 320, 80);
        for _ in 0..300 {
            d.on_arrival(1000);
        }
        assert_eq!(d.target(), 160);
        // One spike alone does not move the target.
        d.on_arrival(1800);
        assert_eq!(d.target(), 160);
        for _ in 0..20 {
            d.on_arrival(1000);
        }
        // Jitter of 400 ticks on every other packet: the second late one raises the target.
        d.on_arrival(1400);
        d.on_arrival(1000);
        d.on_arrival(1400);
        assert!(d.target() >= 400 + 80, "{}", d.target());
        for i in 0..WINDOW {
            d.on_arrival(if i % 2 == 0 { 1000 } else { 1400 });
        }
        assert_eq!(d.target(), 480);
        // Calm again: after a window the target returns to the minimum.
        for _ in 0..WINDOW + RECOMPUTE_EVERY {
            d.on_arrival(1000);
        }
        assert_eq!(d.target(), 160);
    }

    #[test]
    fn bounded_by_max() {
        let mut d = DelayEstimator::new(160, 1600, 320, 80);
        for i in 0..600 {
            d.on_arrival(if i % 2 == 0 { 0 } else { 10_000 });
        }
        assert_eq!(d.target(), 1600);
    }

    #[test]
    fn fixed_bounds_never_move() {
        let mut d = DelayEstimator::new(1600, 1600, 1600, 80);
        assert!(d.is_fixed());
        for i in 0..600 {
            d.on_arrival(i % 2 * 50);
        }
        assert_eq!(d.target(), 1600);
    }
}
