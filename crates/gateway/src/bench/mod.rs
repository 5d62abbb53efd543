//! Benchmarks that run the gateway's own call code (the figures of `happ-gateway bench` that
//! `happ_perf` cannot give, because they need the daemon's media tasks).
//!
//! - [`turn`]: the gateway's share of voice-to-voice latency on real RTP streams, at 1, 100 and
//!   500 concurrent calls, and its CPU per conversational call-second.
//! - [`instant`]: the zero-delay recogniser, LLM and synthesiser it answers with.
//! - [`cpu`]: CPU time of this process's threads by name.

pub mod cpu;
pub mod instant;
pub mod turn;
