//! A Socket.IO v5 client over Engine.IO v4, WebSocket transport only.
//!
//! Two layers, one crate:
//!
//! * [`Session`] is the sans-IO protocol core: the Engine.IO handshake and heartbeat, the
//!   Socket.IO namespace connections, events and acknowledgements, the emit queue and the
//!   reconnect backoff. It reads no clock and touches no socket: every entry takes
//!   `now: Instant`, and what to send, what happened and when to wake come out of
//!   [`Session::poll_transmit`], [`Session::poll_event`] and [`Session::poll_timeout`]. It is
//!   unit-tested in virtual time and fuzzed.
//! * [`Client`] (feature `client`, on by default) is the tokio driver: it owns the WebSocket
//!   (tokio-tungstenite, rustls with the `ring` provider for `wss`), feeds the session and
//!   exposes an async API.
//!
//! The client connects straight to `ws(s)://host/<path>/?EIO=4&transport=websocket` without a
//! long-polling phase. The Engine.IO path is configurable: `/socket.io/` is the Socket.IO
//! default, the Happ platform serves `wss://api.happ.tools/ws`.
//!
//! Binary attachments (`BINARY_EVENT`, `BINARY_ACK`) are not supported: such a packet and its
//! binary frames are skipped and reported as [`ProtocolError::BinaryUnsupported`]; the client
//! never sends binary frames.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod engineio;
mod error;
pub mod session;
pub mod socketio;

#[cfg(feature = "client")]
mod client;

pub use error::ProtocolError;
pub use session::{
    AckFailure, AckId, ConfigError, DisconnectReason, EmitError, Event, Frame, Initiator, PeerAck, Phase, ReconnectPolicy, Session, SessionConfig, SessionStats,
};

#[cfg(feature = "client")]
pub use client::{Client, ClientConfig, ClientError, connect};
