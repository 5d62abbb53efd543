//! Reconnect delays: exponential backoff with jitter drawn from a seeded generator.

use std::time::Duration;

use super::config::ReconnectPolicy;

/// The jitter generator, seeded by the caller so that a run is reproducible in tests
/// (`fastrand`'s wyrand, as the SIP core uses).
#[derive(Clone, Debug)]
pub(crate) struct Rng(fastrand::Rng);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0.f64()
    }
}

impl ReconnectPolicy {
    /// The delay without jitter before attempt `attempt` (1, 2, …): `min(cap, base · 2^(attempt-1))`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self.base.as_nanos().saturating_mul(u128::from(factor));
        // Below `cap`, so it fits in a u64 of nanoseconds.
        if nanos >= self.cap.as_nanos() { self.cap } else { Duration::from_nanos(nanos as u64) }
    }

    /// The jitter, forced into [0, 1] for a policy that was never validated.
    fn spread(&self) -> f64 {
        if self.jitter.is_nan() { 0.0 } else { self.jitter.clamp(0.0, 1.0) }
    }

    /// The bounds of the delay before attempt `attempt`, jitter included.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let (d, j) = (self.nominal(attempt).as_secs_f64(), self.spread());
        (Duration::from_secs_f64(d * (1.0 - j)), Duration::from_secs_f64((d * (1.0 + j)).min(self.cap.as_secs_f64())))
    }

    /// The delay before attempt `attempt`, jitter drawn from `rng`.
    pub(crate) fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let d = self.nominal(attempt).as_secs_f64();
        let spread = 1.0 + self.spread() * (2.0 * rng.unit() - 1.0);
        // Finite and non-negative: d ≤ cap ≤ a day, spread in [0, 2].
        Duration::from_secs_f64((d * spread).clamp(0.0, self.cap.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let p = ReconnectPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(1), jitter: 0.0, max_attempts: None };
        let delays: Vec<u128> = (1..=7).map(|n| p.nominal(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(p.nominal(u32::MAX), Duration::from_secs(1));
        assert_eq!(p.nominal(0), Duration::from_millis(100));
        let mut rng = Rng::new(1);
        assert_eq!(p.delay(3, &mut rng), Duration::from_millis(400));
    }

    #[test]
    fn jitter_stays_in_bounds_and_spreads() {
        let p = ReconnectPolicy { base: Duration::from_millis(100), cap: Duration::from_secs(10), jitter: 0.5, max_attempts: None };
        let mut rng = Rng::new(7);
        for attempt in 1..=12 {
            let (lo, hi) = p.bounds(attempt);
            let draws: Vec<Duration> = (0..200).map(|_| p.delay(attempt, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d >= lo && *d <= hi), "attempt {attempt}: {draws:?} outside {lo:?}..{hi:?}");
            let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
            // At the cap the upper half of the draws clamps to the cap itself.
            assert!(distinct.len() > 50, "jitter should spread the delays");
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let p = ReconnectPolicy::default();
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for n in 1..20 {
            assert_eq!(p.delay(n, &mut a), p.delay(n, &mut b));
        }
    }
}
