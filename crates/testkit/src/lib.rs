//! Test support: pcap files (to feed SIPp and to check captures), the fixture captures, the real
//! peers of the tests (Kamailio, SIPp, a DNS server), and a scripted OpenAI-compatible provider
//! server for tests of the call bridge.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod captures;
pub mod dns;
pub mod kamailio;
pub mod pcap;
pub mod ports;
pub mod providers;
pub mod sipp;
pub mod tone;

use std::path::PathBuf;

/// The workspace's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}
