//! Handles and the identifiers we put on the wire (tags, branches, Call-IDs, cnonces), drawn
//! from a generator seeded by the caller so that a run is reproducible in tests.

use std::fmt;

use crate::transaction::BRANCH_COOKIE;

/// A call leg of the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// An account (a phone's SIP identity) of the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account-{}", self.0)
    }
}

/// Identifiers and jitter from a generator seeded by the caller (the daemon seeds it from the OS;
/// tests with a constant). `fastrand`'s wyrand: small, fast, and reproducible per seed.
#[derive(Clone, Debug)]
pub(crate) struct Ids {
    rng: fastrand::Rng,
}

impl Ids {
    pub(crate) fn new(seed: u64) -> Self {
        Ids { rng: fastrand::Rng::with_seed(seed) }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.rng.u64(..)
    }

    /// A number in [0, 1), for jitter.
    pub(crate) fn unit(&mut self) -> f64 {
        self.rng.f64()
    }

    /// A tag for From or To (64 random bits).
    pub(crate) fn tag(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A branch with the RFC 3261 magic cookie.
    pub(crate) fn branch(&mut self) -> String {
        format!("{BRANCH_COOKIE}{:016x}", self.next_u64())
    }

    /// A Call-ID, unique across restarts given an OS-seeded generator.
    pub(crate) fn call_id(&mut self, host: &str) -> String {
        format!("{:016x}{:08x}@{host}", self.next_u64(), self.next_u64() as u32)
    }

    /// A client nonce for digest authentication.
    pub(crate) fn cnonce(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_unique_and_well_formed() {
        let mut ids = Ids::new(7);
        let b = ids.branch();
        assert!(b.starts_with("z9hG4bK") && b.len() == 23);
        let tags: std::collections::HashSet<String> = (0..1000).map(|_| ids.tag()).collect();
        assert_eq!(tags.len(), 1000);
        assert!(ids.call_id("10.0.0.1").ends_with("@10.0.0.1"));
        let u = ids.unit();
        assert!((0.0..1.0).contains(&u));
        // Same seed, same sequence.
        assert_eq!(Ids::new(7).tag(), Ids::new(7).tag());
    }
}
