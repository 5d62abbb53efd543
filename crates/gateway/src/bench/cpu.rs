//! CPU time of this process's threads, grouped by thread name, read from `/proc/self/task`:
//! each thread's `schedstat` (nanoseconds on a CPU), or its `stat` (user and system clock ticks)
//! where the kernel keeps no scheduler statistics. Another thread's CPU clock needs `unsafe`
//! through libc; `/proc` needs none.

use std::fs;

/// CPU time used so far by the threads whose names start with each of the given prefixes, and
/// by the whole process, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// One per prefix, in order.
    pub named: Vec<u64>,
    /// Every thread of the process.
    pub total: u64,
}

impl Sample {
    /// Reads the threads now. Threads that end while they are read are skipped.
    pub fn take(prefixes: &[&str]) -> Result<Sample, String> {
        let tasks = fs::read_dir("/proc/self/task").map_err(|e| format!("cannot read /proc/self/task for thread CPU times: {e}"))?;
        let mut sample = Sample { named: vec![0; prefixes.len()], total: 0 };
        for task in tasks.flatten() {
            let dir = task.path();
            let Ok(name) = fs::read_to_string(dir.join("comm")) else { continue };
            let Some(ns) = thread_ns(&dir) else { continue };
            sample.total += ns;
            if let Some(i) = prefixes.iter().position(|p| name.trim_end().starts_with(p)) {
                sample.named[i] += ns;
            }
        }
        Ok(sample)
    }

    /// The CPU time used between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Sample) -> Sample {
        Sample { named: self.named.iter().zip(&earlier.named).map(|(a, b)| a.saturating_sub(*b)).collect(), total: self.total.saturating_sub(earlier.total) }
    }
}

/// Nanoseconds on a CPU of the thread whose `/proc` directory is `dir`.
fn thread_ns(dir: &std::path::Path) -> Option<u64> {
    if let Ok(s) = fs::read_to_string(dir.join("schedstat"))
        && let Some(ns) = s.split_whitespace().next().and_then(|f| f.parse().ok())
    {
        return Some(ns);
    }
    // utime and stime are the 14th and 15th fields; the name (2nd) may hold spaces, so count
    // from the parenthesis that closes it. Ticks are USER_HZ, 100 per second on Linux.
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_named_thread_is_counted_under_its_name() {
        let worker = std::thread::Builder::new()
            .name("cpu-probe-busy".into())
            .spawn(|| {
                let before = Sample::take(&["cpu-probe-busy"]).expect("readable");
                let mut x = 0u64;
                for i in 0..20_000_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
                std::hint::black_box(x);
                Sample::take(&["cpu-probe-busy"]).expect("readable").since(&before)
            })
            .expect("a thread");
        let used = worker.join().expect("no panic");
        assert!(used.named[0] > 0, "{used:?}");
        assert!(used.total >= used.named[0]);
    }
}
