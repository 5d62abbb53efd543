//! Allocation of RTP/RTCP port pairs from `rtp.port_range`.
//!
//! Pairs are handed out round-robin, so a port freed by an ended call is the last to be reused:
//! late packets of the old call then find nobody, instead of a new call.

use std::collections::HashSet;

/// The pairs in use, and where the next search starts.
#[derive(Debug)]
pub struct PortPool {
    first: u16,
    pairs: u16,
    next: u16,
    used: HashSet<u16>,
}

impl PortPool {
    /// A pool of the pairs (even RTP port, odd RTCP port) in `first..=last`.
    pub fn new(first: u16, last: u16) -> Self {
        let first = first + first % 2;
        let pairs = last.saturating_sub(first).saturating_add(1) / 2;
        PortPool { first, pairs, next: 0, used: HashSet::new() }
    }

    /// An unused pair's RTP port, not yet bound: `accept` decides whether it can be (the OS may
    /// have given it to someone else). `None` when every pair is taken or refused.
    pub fn take(&mut self, mut accept: impl FnMut(u16) -> bool) -> Option<u16> {
        for _ in 0..self.pairs {
            let port = self.first + 2 * self.next;
            self.next = (self.next + 1) % self.pairs.max(1);
            if !self.used.contains(&port) && accept(port) {
                self.used.insert(port);
                return Some(port);
            }
        }
        None
    }

    /// Returns a pair.
    pub fn give_back(&mut self, port: u16) {
        self.used.remove(&port);
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// Pairs in all.
    pub fn capacity(&self) -> usize {
        usize::from(self.pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_even_ports() {
        let mut p = PortPool::new(20_001, 20_007);
        assert_eq!(p.capacity(), 3);
        let a = p.take(|_| true);
        let b = p.take(|_| true);
        assert_eq!((a, b), (Some(20_002), Some(20_004)));
        p.give_back(20_002);
        assert_eq!(p.take(|_| true), Some(20_006), "the freed pair is reused last");
        assert_eq!(p.take(|_| true), Some(20_002));
        assert_eq!(p.take(|_| true), None);
        assert_eq!(p.in_use(), 3);
    }

    #[test]
    fn refused_ports_are_skipped() {
        let mut p = PortPool::new(30_000, 30_009);
        assert_eq!(p.take(|port| port != 30_000), Some(30_002));
        assert_eq!(p.take(|_| false), None);
    }
}
