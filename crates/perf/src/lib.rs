//! The benchmarks behind `happ-gateway bench`: workloads on the speech fixtures, measured in
//! thread CPU time, best of several runs. Tests never time anything; these print figures.
#![warn(missing_docs)]

pub mod codec;
pub mod cputime;
pub mod jitter;
pub mod pipeline;
pub mod vad;

use std::time::{Duration, Instant};

/// Measurements of one workload, in nanoseconds of thread CPU time.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// The fastest run: the cost of the work itself.
    pub best: u64,
    /// The median run: what contention for the CPU made of it.
    pub median: u64,
}

/// Runs `f` at least `runs` times and over at least `spread` of wall time, with pauses between
/// runs. On a shared (virtual) machine the CPU is slower while the host runs other work, in
/// stretches of seconds; runs spread out reach the quiet moments that the best run stands for.
pub fn measure(runs: usize, spread: Duration, mut f: impl FnMut()) -> Measured {
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < runs.max(1) || started.elapsed() < spread {
        // After the pause, caches and clock speed are cold: warm them with an untimed run.
        f();
        let start = cputime::now();
        f();
        times.push(cputime::now().saturating_sub(start));
        std::thread::sleep(Duration::from_millis(20));
    }
    times.sort_unstable();
    Measured { best: times[0], median: times[times.len() / 2] }
}

/// The best (smallest) of [`measure`]'s runs of `f`.
pub fn best_of(runs: usize, spread: Duration, f: impl FnMut()) -> u64 {
    measure(runs, spread, f).best
}
