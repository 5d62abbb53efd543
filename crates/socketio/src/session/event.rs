//! What goes in and comes out of a session: frames, events, reasons, errors and counters.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::ProtocolError;

/// One WebSocket data frame from the server, borrowed from the driver's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text frame: one Engine.IO packet.
    Text(&'a str),
    /// A binary frame: a binary Engine.IO message (a Socket.IO attachment, unsupported here).
    Binary(&'a [u8]),
}

/// The id of an acknowledgement this client asked for ([`crate::Session::emit_with_ack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckId(pub u64);

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ack-{}", self.0)
    }
}

/// The id of an acknowledgement the server asked for with an event; answer it with
/// [`crate::Session::ack`] on the same connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerAck(pub u64);

/// Where a session is.
///
/// ```text
///   new ──► Connecting ──transport open──► Opening ──EIO open──► Open ──every CONNECT ack──► Connected
///               ▲                                                                              │
///               └───── Waiting (backoff) ◄── heartbeat / transport / server close, timeout ◄──┘
///   close(), a refused CONNECT or no attempts left ──► Closed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between connections, waiting out the backoff delay.
    Waiting,
    /// The driver was asked to open a WebSocket ([`Event::WantConnect`]).
    Connecting,
    /// The WebSocket is open; waiting for the Engine.IO open packet.
    Opening,
    /// The Engine.IO session is open; some namespaces are not connected yet.
    Open,
    /// Every namespace is connected.
    Connected,
    /// For good: after [`crate::Session::close`], a refused CONNECT or the last attempt.
    Closed,
}

/// Who ended a connection (STYLE.md rule 7: record who initiated a teardown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This side, through [`crate::Session::close`].
    Local,
    /// The server: a close or disconnect packet, a refused CONNECT, a protocol violation.
    Peer,
    /// A deadline: no heartbeat, or no connection in time.
    Timeout,
    /// The transport, as reported by the driver (refused, reset, closed).
    Transport,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DisconnectReason {
    /// [`crate::Session::close`] was called.
    ClientClose,
    /// The server closed the Engine.IO session (close packet `1`).
    ServerClose,
    /// The server disconnected one of our namespaces (Socket.IO DISCONNECT `41`).
    ServerDisconnect {
        /// The namespace.
        namespace: String,
    },
    /// The server refused a namespace (CONNECT_ERROR `44`), typically the auth.
    ConnectError {
        /// The namespace.
        namespace: String,
        /// The server's `message` (or the whole payload if it was a string).
        message: String,
        /// The server's `data`, if any.
        data: Option<Value>,
    },
    /// No ping from the server within `pingInterval + pingTimeout`.
    HeartbeatTimeout,
    /// The connection was not up (WebSocket, handshake and every CONNECT) within
    /// [`crate::SessionConfig::connect_timeout`].
    ConnectTimeout,
    /// The driver reported the transport failed or closed.
    Transport {
        /// What the driver said.
        message: String,
    },
    /// The server broke the protocol so that the connection cannot go on.
    Protocol(ProtocolError),
}

impl DisconnectReason {
    /// Who ended the connection.
    pub fn initiator(&self) -> Initiator {
        match self {
            DisconnectReason::ClientClose => Initiator::Local,
            DisconnectReason::ServerClose
            | DisconnectReason::ServerDisconnect { .. }
            | DisconnectReason::ConnectError { .. }
            | DisconnectReason::Protocol(_) => Initiator::Peer,
            DisconnectReason::HeartbeatTimeout | DisconnectReason::ConnectTimeout => Initiator::Timeout,
            DisconnectReason::Transport { .. } => Initiator::Transport,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ClientClose => write!(f, "closed by the client"),
            DisconnectReason::ServerClose => write!(f, "closed by the server"),
            DisconnectReason::ServerDisconnect { namespace } => write!(f, "the server disconnected namespace {namespace}"),
            DisconnectReason::ConnectError { namespace, message, .. } => write!(f, "the server refused namespace {namespace}: {message}"),
            DisconnectReason::HeartbeatTimeout => write!(f, "no heartbeat from the server"),
            DisconnectReason::ConnectTimeout => write!(f, "connection not established in time"),
            DisconnectReason::Transport { message } => write!(f, "transport: {message}"),
            DisconnectReason::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

/// Why an acknowledgement will never come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckFailure {
    /// The timeout given to [`crate::Session::emit_with_ack`] passed (the emit is dropped if it
    /// was still queued).
    #[error("acknowledgement timed out")]
    Timeout,
    /// The event left on a connection that then ended: the server may or may not have seen it.
    #[error("connection lost before the acknowledgement")]
    Disconnected,
    /// The session closed.
    #[error("session closed")]
    Closed,
}

/// Why an emit or ack was refused. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// A namespace the session was not configured with.
    #[error("unknown namespace {0:?}")]
    UnknownNamespace(String),
    /// An event name Socket.IO reserves (`connect`, `disconnect`, …).
    #[error("reserved event name {0:?}")]
    Reserved(String),
    /// [`crate::SessionConfig::max_queued`] emits are already waiting.
    #[error("emit queue full ({0} waiting)")]
    QueueFull(usize),
    /// The frame is larger than the server's `maxPayload`.
    #[error("frame of {len} bytes exceeds the server's limit of {max}")]
    TooLarge {
        /// The frame's size.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// An ack for a namespace that is not connected (the id belongs to a connection that ended).
    #[error("namespace {0:?} is not connected")]
    NotConnected(String),
}

/// What the session reports. See [`crate::Session`] for the order guarantees.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The driver must open a new WebSocket and then call
    /// [`crate::Session::handle_transport_open`] or [`crate::Session::handle_transport_closed`].
    /// Every `WantConnect` is followed by exactly one [`Event::Disconnected`] (possibly after
    /// [`Event::Connected`]), unless the session is dropped first.
    WantConnect {
        /// 0 for the first connection, then the reconnect attempt number.
        attempt: u32,
    },
    /// A namespace is connected; emits queued for it are now in the transmit queue.
    Connected {
        /// The namespace.
        namespace: String,
        /// The Socket.IO session id the server gave.
        sid: String,
        /// Whether an earlier connection of this session had reached every namespace.
        reconnected: bool,
    },
    /// An event from the server.
    Event {
        /// Its namespace.
        namespace: String,
        /// The event name.
        name: String,
        /// The arguments after the name (often one JSON object).
        args: Vec<Value>,
        /// Set when the server asks for an acknowledgement: answer with [`crate::Session::ack`].
        ack: Option<PeerAck>,
    },
    /// The server acknowledged an [`crate::Session::emit_with_ack`].
    Ack {
        /// The namespace.
        namespace: String,
        /// The id `emit_with_ack` returned.
        id: AckId,
        /// The acknowledgement's arguments.
        args: Vec<Value>,
    },
    /// An acknowledgement that will never come.
    AckFailed {
        /// The id `emit_with_ack` returned.
        id: AckId,
        /// Why.
        reason: AckFailure,
    },
    /// The connection ended; the driver must drop its WebSocket (or its connect attempt) now.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The session will ask for a new connection ([`Event::WantConnect`]) after `delay`.
    Reconnecting {
        /// The attempt number, from 1.
        attempt: u32,
        /// The backoff delay, jitter included.
        delay: Duration,
    },
    /// A frame was malformed or unexpected and was ignored.
    Malformed {
        /// What was wrong.
        error: ProtocolError,
    },
    /// The session is closed for good; nothing follows.
    Closed,
}

/// Counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames handed to [`crate::Session::handle_frame`].
    pub frames_in: u64,
    /// Frames taken with [`crate::Session::poll_transmit`].
    pub frames_out: u64,
    /// Frames reported as [`Event::Malformed`].
    pub malformed: u64,
    /// Frames that came while there was no open transport, and were ignored.
    pub stray_frames: u64,
    /// Pings answered.
    pub pings: u64,
    /// Connections asked of the driver ([`Event::WantConnect`]).
    pub connect_attempts: u64,
    /// Connections that reached every namespace.
    pub connections: u64,
    /// Connections that ended ([`Event::Disconnected`]).
    pub disconnects: u64,
    /// Emits refused because the queue was full.
    pub emits_refused: u64,
    /// Acknowledgements that timed out.
    pub ack_timeouts: u64,
    /// Acknowledgements from the server for no pending id (late, after a timeout, or bogus).
    pub unknown_acks: u64,
}
