//! The sans-IO media core of happ-gateway.
//!
//! Everything here takes bytes, samples and [`std::time::Instant`]s from its caller and returns
//! what to send and when to wake; nothing reads a clock, touches a socket or spawns a task.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cn;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod plc;
pub mod resample;
pub mod rtp;
pub mod session;
pub mod sim;
pub(crate) mod simd;
pub mod units;
pub mod vad;

pub use g711::Law;
pub use simd::{enabled as simd_enabled, set_enabled as set_simd_enabled};
pub use units::{ClockRate, NtpTime, RtpTime, SeqNo, Ssrc};
