//! The benchmarks behind `happ-gateway bench`: workloads on the speech fixtures, measured in
//! thread CPU time, best of several runs. Tests never time anything; these print figures.
#![warn(missing_docs)]

pub mod codec;
pub mod cputime;
pub mod jitter;
pub mod pipeline;

/// The best (smallest) of `runs` measurements of `f`, in nanoseconds of thread CPU time.
pub fn best_of(runs: usize, mut f: impl FnMut()) -> u64 {
    (0..runs.max(1))
        .map(|_| {
            let start = cputime::now();
            f();
            cputime::now().saturating_sub(start)
        })
        .min()
        .unwrap_or(0)
}
