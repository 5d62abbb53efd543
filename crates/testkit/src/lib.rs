//! Test support: pcap files (to feed SIPp and to check captures) and the fixture captures.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod captures;
pub mod kamailio;
pub mod pcap;
pub mod ports;
pub mod sipp;

use std::path::PathBuf;

/// The workspace's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}
