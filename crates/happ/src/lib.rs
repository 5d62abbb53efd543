//! The Happ platform's REST API: typed models and an async client.
//!
//! - [`model`]: serde types of every object, request body and envelope of the API reference,
//!   tolerant of fields and enum values added later. Always built.
//! - [`HappClient`] (feature `client`, on by default): `reqwest`-based client with per-request
//!   timeouts, retries with jittered exponential backoff and `Retry-After`, typed errors by blame,
//!   and pagination that a misbehaving server cannot turn into an endless loop. With feature
//!   `rustls` (default) it speaks HTTPS.
//! - [`realtime`] (feature `realtime`, on by default): the platform's Socket.IO events
//!   (`MESSAGE_CREATED`, `CHAT_CREATED`, `CHAT_MODE_CHANGED`) with authentication, room join,
//!   reconnects and catch-up of missed messages through the REST client, without duplicates.
//! - [`Secret`]: the redacting wrapper of tokens and passwords.
//!
//! The retry decision ([`client::retry::decide`]) and the pagination state machine
//! ([`client::paging::Paginator`]) are pure: they read no clock and draw no randomness.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod model;
mod secret;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "outbox")]
pub mod outbox;
#[cfg(feature = "realtime")]
pub mod realtime;

#[cfg(feature = "client")]
pub use client::{ClientConfig, Error, HappClient, Page, PageRequest, PagingLimits, Replay, RetryConfig};
pub use secret::Secret;

/// The header that carries the access token.
pub const ACCESS_TOKEN_HEADER: &str = "X-Access-Token";
