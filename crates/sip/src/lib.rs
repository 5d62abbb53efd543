//! The sans-IO SIP core of happ-gateway.
//!
//! Everything here takes bytes, events and [`std::time::Instant`]s and returns what to send and
//! when to wake; the gateway's drivers own sockets, DNS and clocks.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod sdp;
pub mod transaction;
