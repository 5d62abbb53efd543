//! Engine.IO protocol revision 4, as carried by the WebSocket transport.
//!
//! Over a WebSocket every Engine.IO packet is one frame. A text frame is the packet type digit
//! followed by the payload, with no length prefix and no separator:
//!
//! | type | name    | example                                                            |
//! |------|---------|--------------------------------------------------------------------|
//! | `0`  | open    | `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}` |
//! | `1`  | close   | `1`                                                                |
//! | `2`  | ping    | `2` (sent by the server in v4; `2probe` only during upgrades)      |
//! | `3`  | pong    | `3` (the client's answer, echoing the ping's data)                  |
//! | `4`  | message | `4hello` (here: a Socket.IO packet, `42["event",1]`)               |
//! | `5`  | upgrade | `5` (polling → WebSocket upgrades only; unused here)               |
//! | `6`  | noop    | `6`                                                                |
//!
//! A binary frame is a binary message, with no type byte.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ProtocolError;

/// The largest `pingInterval` or `pingTimeout` we accept from a server. Larger values are a
/// malformed handshake; the bound keeps every deadline we compute representable.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);

/// The maximum message size an Engine.IO server accepts when its handshake does not say
/// (the `maxHttpBufferSize` default of the reference server, 1 MB).
pub const DEFAULT_MAX_PAYLOAD: u64 = 1_000_000;

/// One Engine.IO packet of a text frame, borrowing its payload from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0`: the handshake, a JSON object (see [`Handshake`]).
    Open(&'a str),
    /// `1`: the server closes the session.
    Close,
    /// `2`: a heartbeat ping, with optional data to echo.
    Ping(&'a str),
    /// `3`: a heartbeat pong, with the echoed data.
    Pong(&'a str),
    /// `4`: a message; for Socket.IO, one Socket.IO packet.
    Message(&'a str),
    /// `5`: transport upgrade (long-polling only).
    Upgrade,
    /// `6`: no operation.
    Noop,
}

impl<'a> Packet<'a> {
    /// Parses one text frame. Any trailing data on close, upgrade and noop is ignored.
    pub fn parse(text: &'a str) -> Result<Packet<'a>, ProtocolError> {
        let mut chars = text.chars();
        let first = chars.next().ok_or(ProtocolError::Empty)?;
        let rest = chars.as_str();
        Ok(match first {
            '0' => Packet::Open(rest),
            '1' => Packet::Close,
            '2' => Packet::Ping(rest),
            '3' => Packet::Pong(rest),
            '4' => Packet::Message(rest),
            '5' => Packet::Upgrade,
            '6' => Packet::Noop,
            other => return Err(ProtocolError::EngineType(other)),
        })
    }

    /// Appends the frame text to `out`.
    pub fn encode(&self, out: &mut String) {
        let (digit, payload) = match *self {
            Packet::Open(p) => ('0', p),
            Packet::Close => ('1', ""),
            Packet::Ping(p) => ('2', p),
            Packet::Pong(p) => ('3', p),
            Packet::Message(p) => ('4', p),
            Packet::Upgrade => ('5', ""),
            Packet::Noop => ('6', ""),
        };
        out.push(digit);
        out.push_str(payload);
    }
}

/// The payload of the open packet: the session the server created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The Engine.IO session id.
    pub sid: String,
    /// Transports the session could upgrade to (empty over WebSocket).
    pub upgrades: Vec<String>,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long the server waits for our pong; with `ping_interval`, how long we wait for a ping.
    pub ping_timeout: Duration,
    /// The largest message the server accepts, in bytes.
    pub max_payload: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandshakeJson {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: Option<u64>,
}

impl Handshake {
    /// Parses the JSON payload of an open packet (`{"sid":…,"pingInterval":…,…}`). Unknown
    /// fields are ignored; `maxPayload` defaults to [`DEFAULT_MAX_PAYLOAD`]; a heartbeat longer
    /// than [`MAX_HEARTBEAT`] is refused.
    pub fn parse(json: &str) -> Result<Handshake, ProtocolError> {
        let h: HandshakeJson = serde_json::from_str(json).map_err(|e| ProtocolError::Handshake(e.to_string()))?;
        let ping_interval = Duration::from_millis(h.ping_interval);
        let ping_timeout = Duration::from_millis(h.ping_timeout);
        if ping_interval > MAX_HEARTBEAT || ping_timeout > MAX_HEARTBEAT {
            return Err(ProtocolError::Handshake("pingInterval or pingTimeout out of range".into()));
        }
        Ok(Handshake { sid: h.sid, upgrades: h.upgrades, ping_interval, ping_timeout, max_payload: h.max_payload.unwrap_or(DEFAULT_MAX_PAYLOAD) })
    }

    /// The JSON payload of an open packet for this handshake (what a server sends).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "sid": self.sid,
            "upgrades": self.upgrades,
            "pingInterval": self.ping_interval.as_millis() as u64,
            "pingTimeout": self.ping_timeout.as_millis() as u64,
            "maxPayload": self.max_payload,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_packet_type() {
        assert_eq!(Packet::parse("0{}"), Ok(Packet::Open("{}")));
        assert_eq!(Packet::parse("1"), Ok(Packet::Close));
        assert_eq!(Packet::parse("2"), Ok(Packet::Ping("")));
        assert_eq!(Packet::parse("2probe"), Ok(Packet::Ping("probe")));
        assert_eq!(Packet::parse("3probe"), Ok(Packet::Pong("probe")));
        assert_eq!(Packet::parse("42[\"a\"]"), Ok(Packet::Message("2[\"a\"]")));
        assert_eq!(Packet::parse("5"), Ok(Packet::Upgrade));
        assert_eq!(Packet::parse("6"), Ok(Packet::Noop));
        assert_eq!(Packet::parse(""), Err(ProtocolError::Empty));
        assert_eq!(Packet::parse("7"), Err(ProtocolError::EngineType('7')));
        assert_eq!(Packet::parse("é4"), Err(ProtocolError::EngineType('é')));
    }

    #[test]
    fn encodes_what_it_parses() {
        for text in ["0{}", "1", "2", "2probe", "3", "4hello", "5", "6"] {
            let mut out = String::new();
            Packet::parse(text).unwrap().encode(&mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn parses_a_handshake() {
        let h =
            Handshake::parse(r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000,"x":1}"#)
                .unwrap();
        assert_eq!(h.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(h.upgrades, ["websocket"]);
        assert_eq!(h.ping_interval, Duration::from_secs(25));
        assert_eq!(h.ping_timeout, Duration::from_secs(20));
        assert_eq!(h.max_payload, 1_000_000);
        assert_eq!(Handshake::parse(&h.to_json()), Ok(h));
    }

    #[test]
    fn refuses_bad_handshakes() {
        assert!(matches!(Handshake::parse("{}"), Err(ProtocolError::Handshake(_))));
        assert!(matches!(Handshake::parse("[1]"), Err(ProtocolError::Handshake(_))));
        assert!(matches!(Handshake::parse(r#"{"sid":"a","pingInterval":-1,"pingTimeout":1}"#), Err(ProtocolError::Handshake(_))));
        let huge = format!(r#"{{"sid":"a","pingInterval":{},"pingTimeout":1}}"#, u64::MAX);
        assert!(matches!(Handshake::parse(&huge), Err(ProtocolError::Handshake(_))));
        let h = Handshake::parse(r#"{"sid":"a","pingInterval":1,"pingTimeout":2}"#).unwrap();
        assert_eq!(h.max_payload, DEFAULT_MAX_PAYLOAD);
    }
}
