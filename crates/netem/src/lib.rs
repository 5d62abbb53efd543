//! A seeded, deterministic network emulator for packet traces, in virtual time.
//!
//! [`Netem`] decides each packet's fate (lost, delayed, duplicated) from a seeded generator, so a
//! trace is the same on every run and machine. [`Link`] queues packets by arrival time for a
//! simulation that advances its own clock. Models:
//! - loss: none, independent (Bernoulli), or bursty (a Gilbert–Elliott two-state chain with a
//!   given average rate and mean burst length);
//! - delay: a base delay plus jitter, uniform or exponential (long-tailed), optionally with
//!   periodic delay spikes, as on congested Wi-Fi or mobile links;
//! - reordering arises from jitter larger than the packet interval, and can be forced with a
//!   per-packet probability of an extra delay;
//! - duplication with a per-packet probability.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// How packets are lost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// No loss.
    None,
    /// Each packet lost independently with this probability.
    Random(f64),
    /// Losses in bursts: on average `rate` of packets lost, in runs of `mean_burst` packets.
    Bursty {
        /// Average loss probability.
        rate: f64,
        /// Mean length of a run of losses, in packets (>= 1).
        mean_burst: f64,
    },
}

/// The distribution of delay above the base delay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Jitter {
    /// No jitter.
    None,
    /// Uniform between zero and this.
    Uniform(Duration),
    /// Exponential with this mean, capped at ten times the mean (a long tail).
    Exponential(Duration),
}

/// Periodic congestion: every `every`, delays rise by up to `height` and drain linearly over
/// `length`, as a queue filling and emptying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spikes {
    /// Interval between spikes.
    pub every: Duration,
    /// Extra delay at the top of a spike.
    pub height: Duration,
    /// How long a spike takes to drain.
    pub length: Duration,
}

/// Emulator settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetemConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Fixed one-way delay.
    pub base_delay: Duration,
    /// Variable delay.
    pub jitter: Jitter,
    /// Delay spikes.
    pub spikes: Option<Spikes>,
    /// Loss model.
    pub loss: Loss,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay` (arriving after later ones).
    pub reorder: f64,
    /// Extra delay of a held-back packet.
    pub reorder_delay: Duration,
}

impl Default for NetemConfig {
    fn default() -> Self {
        NetemConfig {
            seed: 1,
            base_delay: Duration::from_millis(20),
            jitter: Jitter::None,
            spikes: None,
            loss: Loss::None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(50),
        }
    }
}

/// SplitMix64: small, fast, and stable across versions and platforms.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

/// The fate of one packet: up to two arrival times (two when duplicated), none when lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Arrival of the packet, unless lost.
    pub first: Option<Instant>,
    /// Arrival of a duplicate.
    pub duplicate: Option<Instant>,
}

impl Delivery {
    /// Arrival times, in no particular order.
    pub fn arrivals(&self) -> impl Iterator<Item = Instant> {
        self.first.into_iter().chain(self.duplicate)
    }
}

/// The emulator: decides the fate of each packet sent.
#[derive(Clone, Debug)]
pub struct Netem {
    config: NetemConfig,
    rng: Rng,
    in_burst: bool,
    origin: Option<Instant>,
}

impl Netem {
    /// An emulator with `config`.
    pub fn new(config: NetemConfig) -> Self {
        Netem { config, rng: Rng::new(config.seed), in_burst: false, origin: None }
    }

    /// The settings.
    pub fn config(&self) -> &NetemConfig {
        &self.config
    }

    fn lost(&mut self) -> bool {
        match self.config.loss {
            Loss::None => false,
            Loss::Random(p) => self.rng.chance(p),
            Loss::Bursty { rate, mean_burst } => {
                // Gilbert–Elliott with a lossless good state and a lossy bad state:
                // P(bad -> good) = 1/mean_burst; P(good -> bad) gives the average rate.
                let exit = 1.0 / mean_burst.max(1.0);
                let rate = rate.clamp(0.0, 0.99);
                let enter = rate * exit / (1.0 - rate);
                self.in_burst = if self.in_burst { !self.rng.chance(exit) } else { self.rng.chance(enter) };
                self.in_burst
            }
        }
    }

    fn delay(&mut self, sent: Instant) -> Duration {
        let jitter = match self.config.jitter {
            Jitter::None => Duration::ZERO,
            Jitter::Uniform(max) => max.mul_f64(self.rng.unit()),
            Jitter::Exponential(mean) => {
                let x = -(1.0 - self.rng.unit()).ln();
                mean.mul_f64(x.min(10.0))
            }
        };
        let spike = self.config.spikes.map_or(Duration::ZERO, |s| {
            let origin = *self.origin.get_or_insert(sent);
            let phase = sent.saturating_duration_since(origin).as_nanos() % s.every.as_nanos().max(1);
            let phase = Duration::from_nanos(phase as u64);
            if phase < s.length { s.height.mul_f64(1.0 - phase.as_secs_f64() / s.length.as_secs_f64()) } else { Duration::ZERO }
        });
        self.config.base_delay + jitter + spike
    }

    /// Decides the fate of a packet sent at `sent`.
    pub fn transmit(&mut self, sent: Instant) -> Delivery {
        self.origin.get_or_insert(sent);
        // Draw every random number in a fixed order so that changing one probability does not
        // reshuffle the rest of the trace.
        let lost = self.lost();
        let mut delay = self.delay(sent);
        if self.rng.chance(self.config.reorder) {
            delay += self.config.reorder_delay;
        }
        let duplicated = self.rng.chance(self.config.duplicate);
        let dup_delay = self.delay(sent);
        if lost {
            return Delivery::default();
        }
        Delivery { first: Some(sent + delay), duplicate: duplicated.then(|| sent + dup_delay) }
    }
}

/// A one-way link: packets go in at their send time and come out at their arrival time.
#[derive(Debug)]
pub struct Link<T> {
    netem: Netem,
    queue: BinaryHeap<Reverse<(Instant, u64, Queued<T>)>>,
    counter: u64,
}

#[derive(Debug)]
struct Queued<T>(T);

impl<T> PartialEq for Queued<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Queued<T> {}
impl<T> PartialOrd for Queued<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Queued<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T: Clone> Link<T> {
    /// A link through `netem`.
    pub fn new(netem: Netem) -> Self {
        Link { netem, queue: BinaryHeap::new(), counter: 0 }
    }

    /// Sends `packet` at `now`.
    pub fn send(&mut self, now: Instant, packet: T) -> Delivery {
        let delivery = self.netem.transmit(now);
        for at in delivery.arrivals() {
            self.counter += 1;
            self.queue.push(Reverse((at, self.counter, Queued(packet.clone()))));
        }
        delivery
    }

    /// The next packet that has arrived by `now`, in arrival order (ties in send order).
    pub fn recv(&mut self, now: Instant) -> Option<(Instant, T)> {
        match self.queue.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((at, _, Queued(p))) = self.queue.pop()?;
                Some((at, p))
            }
            _ => None,
        }
    }

    /// When the next packet arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    fn run(config: NetemConfig, n: usize) -> Vec<Delivery> {
        run_from(Instant::now(), config, n)
    }

    fn run_from(t0: Instant, config: NetemConfig, n: usize) -> Vec<Delivery> {
        let mut netem = Netem::new(config);
        (0..n).map(|i| netem.transmit(t0 + Duration::from_millis(20 * i as u64))).collect()
    }

    #[test]
    fn same_seed_same_trace() {
        let config = NetemConfig { jitter: Jitter::Uniform(Duration::from_millis(30)), loss: Loss::Random(0.1), duplicate: 0.05, ..Default::default() };
        let t0 = Instant::now();
        assert!(run_from(t0, config, 500) == run_from(t0, config, 500));
        assert!(run_from(t0, config, 500) != run_from(t0, NetemConfig { seed: 2, ..config }, 500));
    }

    #[test]
    fn random_loss_rate() {
        let d = run(NetemConfig { loss: Loss::Random(0.1), ..Default::default() }, 20_000);
        let lost = d.iter().filter(|d| d.first.is_none()).count() as f64 / 20_000.0;
        assert!((lost - 0.1).abs() < 0.01, "{lost}");
    }

    #[test]
    fn bursty_loss_rate_and_burst_length() {
        let d = run(NetemConfig { loss: Loss::Bursty { rate: 0.1, mean_burst: 4.0 }, ..Default::default() }, 50_000);
        let lost: Vec<bool> = d.iter().map(|d| d.first.is_none()).collect();
        let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count() as f64;
        let mean_burst = lost.iter().filter(|&&l| l).count() as f64 / bursts;
        assert!((rate - 0.1).abs() < 0.015, "{rate}");
        assert!((mean_burst - 4.0).abs() < 0.5, "{mean_burst}");
    }

    #[test]
    fn uniform_jitter_bounds_and_reordering() {
        let t0 = Instant::now();
        let config = NetemConfig { jitter: Jitter::Uniform(Duration::from_millis(60)), ..Default::default() };
        let mut link = Link::new(Netem::new(config));
        for i in 0..1000u32 {
            let sent = t0 + Duration::from_millis(20 * u64::from(i));
            let d = link.send(sent, i);
            let delay = d.first.expect("no loss") - sent;
            assert!(delay >= Duration::from_millis(20) && delay < Duration::from_millis(80));
        }
        let mut order = Vec::new();
        while let Some((_, i)) = link.recv(t0 + Duration::from_secs(60)) {
            order.push(i);
        }
        assert_eq!(order.len(), 1000);
        assert!(order.windows(2).any(|w| w[1] < w[0]), "60 ms jitter on 20 ms packets reorders");
    }

    #[test]
    fn duplicates_arrive_twice() {
        let d = run(NetemConfig { duplicate: 1.0, ..Default::default() }, 10);
        assert!(d.iter().all(|d| d.arrivals().count() == 2));
    }

    #[test]
    fn spikes_follow_the_period() {
        let spikes = Spikes { every: Duration::from_secs(1), height: Duration::from_millis(100), length: Duration::from_millis(200) };
        let t0 = Instant::now();
        let mut netem = Netem::new(NetemConfig { spikes: Some(spikes), ..Default::default() });
        let at = |netem: &mut Netem, ms| {
            let sent = t0 + Duration::from_millis(ms);
            netem.transmit(sent).first.expect("no loss") - sent
        };
        assert_eq!(at(&mut netem, 0), Duration::from_millis(120));
        assert_eq!(at(&mut netem, 100), Duration::from_millis(70));
        assert_eq!(at(&mut netem, 500), Duration::from_millis(20));
        assert_eq!(at(&mut netem, 1000), Duration::from_millis(120));
    }
}
