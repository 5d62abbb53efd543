//! What the server sent that the client could not use.

use crate::socketio::PacketKind;

/// A frame from the server that could not be parsed, or that made no sense where it came.
///
/// These are the peer's fault. The session reports each one as [`crate::Event::Malformed`]
/// and counts it in [`crate::SessionStats::malformed`]; it ignores the frame and carries on,
/// except where the connection cannot go on (a Socket.IO CONNECT reply without a session id),
/// which ends it with [`crate::DisconnectReason::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An empty text frame.
    #[error("empty frame")]
    Empty,
    /// A text frame whose first character is not an Engine.IO packet type (`0`–`6`).
    #[error("unknown Engine.IO packet type {0:?}")]
    EngineType(char),
    /// An Engine.IO message whose first character is not a Socket.IO packet type (`0`–`6`).
    #[error("unknown Socket.IO packet type {0:?}")]
    SocketType(char),
    /// A binary packet without a valid `<count>-` attachment prefix.
    #[error("bad binary attachment count")]
    Attachments,
    /// An acknowledgement id that is not a number we can hold (`u64`).
    #[error("bad acknowledgement id")]
    AckId,
    /// A payload that is not valid JSON.
    #[error("invalid JSON payload: {0}")]
    Json(String),
    /// A payload of the wrong shape for its packet type (for example an EVENT that is not a
    /// non-empty array starting with the event name, or that uses a reserved event name).
    #[error("{0:?} packet with an invalid payload")]
    Payload(PacketKind),
    /// An Engine.IO open packet that does not describe a session.
    #[error("invalid Engine.IO handshake: {0}")]
    Handshake(String),
    /// A Socket.IO CONNECT reply without the session id that protocol v5 requires.
    #[error("CONNECT reply without a session id (a Socket.IO v2 server?)")]
    MissingSid,
    /// A binary packet or attachment: this client does not support binary data.
    #[error("binary attachments are not supported")]
    BinaryUnsupported,
    /// A binary frame that no binary packet announced.
    #[error("unexpected binary frame")]
    UnexpectedBinary,
    /// A packet that is valid but not in this state (a second open, a message before the open,
    /// a packet for a namespace we did not ask for, an ACK without an id).
    #[error("unexpected packet: {0}")]
    Unexpected(&'static str),
}
