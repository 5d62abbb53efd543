//! Socket.IO protocol revision 5 packets, carried in Engine.IO messages.
//!
//! The encoding (socket.io-protocol v5, "Encoding format"):
//!
//! ```text
//! <packet type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON-stringified payload]
//! ```
//!
//! The namespace is written only when it is not the main namespace `/`. Inside an Engine.IO
//! message (prefix `4`), as they appear on the wire:
//!
//! | packet                          | frame                                  |
//! |---------------------------------|----------------------------------------|
//! | CONNECT `/` with auth           | `40{"token":"123"}`                    |
//! | CONNECT reply                   | `40{"sid":"wZX3oN0bSVIhsaknAAAI"}`     |
//! | CONNECT `/admin`                | `40/admin,`                            |
//! | CONNECT_ERROR                   | `44{"message":"Not authorized"}`       |
//! | DISCONNECT `/admin`             | `41/admin,`                            |
//! | EVENT                           | `42["hello",1]`                        |
//! | EVENT `/admin` with ack id 13   | `42/admin,13["project:delete",123]`    |
//! | ACK 13                          | `4313["ok"]`                           |
//! | BINARY_EVENT                    | `451-["b",{"_placeholder":true,"num":0}]` + one binary frame |
//!
//! The parser follows the reference parser (socket.io-parser `decodeString` and
//! `isPayloadValid`): a namespace runs from `/` to the first `,` (or the end), an ack id is the
//! run of digits that follows, the rest is one JSON value whose shape must suit the type.

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::ProtocolError;

/// Event names the Socket.IO API reserves; they never travel in an EVENT packet.
pub const RESERVED_EVENTS: [&str; 6] = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// The main namespace.
pub const MAIN_NAMESPACE: &str = "/";

/// The Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0`: connect to a namespace (client: with an optional auth object; server: `{"sid":…}`).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args…]`.
    Event,
    /// `3`: an acknowledgement, `[args…]`, with the id of the event it answers.
    Ack,
    /// `4`: the server refused a namespace connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketKind {
    fn from_digit(c: char) -> Option<PacketKind> {
        Some(match c {
            '0' => PacketKind::Connect,
            '1' => PacketKind::Disconnect,
            '2' => PacketKind::Event,
            '3' => PacketKind::Ack,
            '4' => PacketKind::ConnectError,
            '5' => PacketKind::BinaryEvent,
            '6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    /// The type digit on the wire.
    pub fn digit(self) -> char {
        match self {
            PacketKind::Connect => '0',
            PacketKind::Disconnect => '1',
            PacketKind::Event => '2',
            PacketKind::Ack => '3',
            PacketKind::ConnectError => '4',
            PacketKind::BinaryEvent => '5',
            PacketKind::BinaryAck => '6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// One Socket.IO packet. The namespace borrows from the parsed text.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet<'a> {
    /// The packet type.
    pub kind: PacketKind,
    /// The namespace, `/` when the packet names none.
    pub namespace: &'a str,
    /// The acknowledgement id, on an EVENT that wants an answer and on an ACK.
    pub id: Option<u64>,
    /// The number of binary frames that follow (binary packets only).
    pub attachments: u32,
    /// The payload.
    pub data: Option<Value>,
}

impl<'a> Packet<'a> {
    /// Parses the Socket.IO packet of one Engine.IO message (the text after the `4`).
    pub fn parse(text: &'a str) -> Result<Packet<'a>, ProtocolError> {
        let first = text.chars().next().ok_or(ProtocolError::Empty)?;
        let kind = PacketKind::from_digit(first).ok_or(ProtocolError::SocketType(first))?;
        let b = text.as_bytes();
        // Every index below stops on an ASCII byte or the end, so slices fall on char boundaries;
        // `get` keeps that a checked claim rather than a panic.
        let slice = |from: usize, to: usize| text.get(from..to).ok_or(ProtocolError::Unexpected("split inside a character"));
        let mut i = 1;
        let mut attachments = 0;
        if kind.is_binary() {
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start || b.get(i) != Some(&b'-') {
                return Err(ProtocolError::Attachments);
            }
            attachments = slice(start, i)?.parse::<u32>().map_err(|_| ProtocolError::Attachments)?;
            i += 1;
        }
        let mut namespace = MAIN_NAMESPACE;
        if b.get(i) == Some(&b'/') {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            namespace = slice(start, i)?;
            if i < b.len() {
                i += 1; // the ','
            }
        }
        let mut id = None;
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            id = Some(slice(start, i)?.parse::<u64>().map_err(|_| ProtocolError::AckId)?);
        }
        let rest = slice(i, b.len())?;
        let data = if rest.is_empty() { None } else { Some(serde_json::from_str::<Value>(rest).map_err(|e| ProtocolError::Json(e.to_string()))?) };
        if !payload_valid(kind, data.as_ref()) {
            return Err(ProtocolError::Payload(kind));
        }
        Ok(Packet { kind, namespace, id, attachments, data })
    }

    /// Appends the packet's text to `out` (without the Engine.IO `4`).
    pub fn encode(&self, out: &mut String) {
        out.push(self.kind.digit());
        if self.kind.is_binary() {
            let _ = write!(out, "{}-", self.attachments);
        }
        push_namespace(out, self.namespace);
        if let Some(id) = self.id {
            let _ = write!(out, "{id}");
        }
        if let Some(data) = &self.data {
            // `Value`'s Display writes compact JSON and cannot fail; writing to a String neither.
            let _ = write!(out, "{data}");
        }
    }
}

/// Appends an EVENT packet `2[/ns,][id]["name",args…]` to `out`, without building a `Value` for
/// the array.
pub fn encode_event(out: &mut String, namespace: &str, id: Option<u64>, name: &str, args: &[Value]) {
    out.push(PacketKind::Event.digit());
    push_namespace(out, namespace);
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    out.push('[');
    push_json_string(out, name);
    for arg in args {
        let _ = write!(out, ",{arg}");
    }
    out.push(']');
}

/// Appends an ACK packet `3[/ns,]id[args…]` to `out`.
pub fn encode_ack(out: &mut String, namespace: &str, id: u64, args: &[Value]) {
    out.push(PacketKind::Ack.digit());
    push_namespace(out, namespace);
    let _ = write!(out, "{id}[");
    for (n, arg) in args.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{arg}");
    }
    out.push(']');
}

/// Whether `namespace` can be written in a packet: it starts with `/` and holds no `,`.
pub fn namespace_valid(namespace: &str) -> bool {
    namespace.starts_with('/') && !namespace.contains(',')
}

fn push_namespace(out: &mut String, namespace: &str) {
    if namespace != MAIN_NAMESPACE {
        out.push_str(namespace);
        out.push(',');
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The payload shapes the reference parser accepts for each type.
fn payload_valid(kind: PacketKind, data: Option<&Value>) -> bool {
    match kind {
        PacketKind::Connect => data.is_none_or(Value::is_object),
        PacketKind::Disconnect => data.is_none(),
        PacketKind::ConnectError => data.is_some_and(|d| d.is_object() || d.is_string()),
        PacketKind::Event | PacketKind::BinaryEvent => match data {
            Some(Value::Array(items)) => match items.first() {
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                Some(Value::Number(_)) => true,
                _ => false,
            },
            _ => false,
        },
        PacketKind::Ack | PacketKind::BinaryAck => data.is_some_and(Value::is_array),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn packet(kind: PacketKind, namespace: &str, id: Option<u64>, data: Option<Value>) -> Packet<'_> {
        Packet { kind, namespace, id, attachments: 0, data }
    }

    #[test]
    fn parses_the_spec_examples() {
        assert_eq!(Packet::parse("0"), Ok(packet(PacketKind::Connect, "/", None, None)));
        assert_eq!(Packet::parse(r#"0{"token":"123"}"#), Ok(packet(PacketKind::Connect, "/", None, Some(json!({"token": "123"})))));
        assert_eq!(
            Packet::parse(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            Ok(packet(PacketKind::Connect, "/admin", None, Some(json!({"sid": "oSO0OpakMV_3jnilAAAA"}))))
        );
        assert_eq!(Packet::parse("1/admin,"), Ok(packet(PacketKind::Disconnect, "/admin", None, None)));
        assert_eq!(Packet::parse("1/admin"), Ok(packet(PacketKind::Disconnect, "/admin", None, None)));
        assert_eq!(Packet::parse(r#"2["hello",1]"#), Ok(packet(PacketKind::Event, "/", None, Some(json!(["hello", 1])))));
        assert_eq!(
            Packet::parse(r#"2/admin,456["project:delete",123]"#),
            Ok(packet(PacketKind::Event, "/admin", Some(456), Some(json!(["project:delete", 123]))))
        );
        assert_eq!(Packet::parse("3/admin,456[]"), Ok(packet(PacketKind::Ack, "/admin", Some(456), Some(json!([])))));
        assert_eq!(Packet::parse(r#"313["ok"]"#), Ok(packet(PacketKind::Ack, "/", Some(13), Some(json!(["ok"])))));
        assert_eq!(
            Packet::parse(r#"4{"message":"Not authorized"}"#),
            Ok(packet(PacketKind::ConnectError, "/", None, Some(json!({"message": "Not authorized"}))))
        );
        assert_eq!(Packet::parse(r#"4/admin,"Not authorized""#), Ok(packet(PacketKind::ConnectError, "/admin", None, Some(json!("Not authorized")))));
        let binary = Packet::parse(r#"51-["hello",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((binary.kind, binary.attachments), (PacketKind::BinaryEvent, 1));
        let binary = Packet::parse(r#"61-/admin,456[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((binary.kind, binary.attachments, binary.namespace, binary.id), (PacketKind::BinaryAck, 1, "/admin", Some(456)));
    }

    #[test]
    fn refuses_malformed_packets() {
        assert_eq!(Packet::parse(""), Err(ProtocolError::Empty));
        assert_eq!(Packet::parse("7"), Err(ProtocolError::SocketType('7')));
        assert_eq!(Packet::parse("x"), Err(ProtocolError::SocketType('x')));
        assert!(matches!(Packet::parse("2[\"a\""), Err(ProtocolError::Json(_))));
        assert!(matches!(Packet::parse("2{}"), Err(ProtocolError::Payload(PacketKind::Event))));
        assert!(matches!(Packet::parse("2[]"), Err(ProtocolError::Payload(PacketKind::Event))));
        assert!(matches!(Packet::parse("2[null]"), Err(ProtocolError::Payload(PacketKind::Event))));
        assert!(matches!(Packet::parse(r#"2["connect"]"#), Err(ProtocolError::Payload(PacketKind::Event))));
        assert!(matches!(Packet::parse("2"), Err(ProtocolError::Payload(PacketKind::Event))));
        assert!(matches!(Packet::parse("1{}"), Err(ProtocolError::Payload(PacketKind::Disconnect))));
        assert!(matches!(Packet::parse("0[]"), Err(ProtocolError::Payload(PacketKind::Connect))));
        assert!(matches!(Packet::parse("3{}"), Err(ProtocolError::Payload(PacketKind::Ack))));
        assert!(matches!(Packet::parse("4"), Err(ProtocolError::Payload(PacketKind::ConnectError))));
        assert_eq!(Packet::parse("5[\"a\"]"), Err(ProtocolError::Attachments));
        assert_eq!(Packet::parse("5x-[\"a\"]"), Err(ProtocolError::Attachments));
        assert_eq!(Packet::parse("599999999999-[\"a\"]"), Err(ProtocolError::Attachments));
        assert_eq!(Packet::parse("399999999999999999999999[]"), Err(ProtocolError::AckId));
        assert!(Packet::parse("2/é,[\"a\"]").is_ok());
    }

    #[test]
    fn numeric_event_names_are_accepted() {
        assert_eq!(Packet::parse("2[1,2]").unwrap().data, Some(json!([1, 2])));
    }

    #[test]
    fn encodes_what_it_parses() {
        for text in [
            "0",
            r#"0{"token":"123"}"#,
            "0/admin,",
            "1/admin,",
            r#"2["hello",1]"#,
            r#"2/admin,456["project:delete",123]"#,
            "3/admin,456[]",
            r#"313["ok"]"#,
            r#"4{"message":"Not authorized"}"#,
            r#"51-["hello",{"_placeholder":true,"num":0}]"#,
        ] {
            let mut out = String::new();
            Packet::parse(text).unwrap().encode(&mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn encodes_events_and_acks() {
        let mut out = String::new();
        encode_event(&mut out, "/", None, "hello", &[json!({"a": 1}), json!("x")]);
        assert_eq!(out, r#"2["hello",{"a":1},"x"]"#);
        out.clear();
        encode_event(&mut out, "/admin", Some(13), "x", &[]);
        assert_eq!(out, r#"2/admin,13["x"]"#);
        out.clear();
        encode_event(&mut out, "/", Some(0), "quote\"back\\slash\n\u{1}é", &[]);
        let parsed = Packet::parse(&out).unwrap();
        assert_eq!(parsed.data, Some(json!(["quote\"back\\slash\n\u{1}é"])));
        out.clear();
        encode_ack(&mut out, "/", 13, &[json!("ok"), json!(2)]);
        assert_eq!(out, r#"313["ok",2]"#);
        out.clear();
        encode_ack(&mut out, "/admin", 7, &[]);
        assert_eq!(out, "3/admin,7[]");
    }

    #[test]
    fn namespace_rules() {
        assert!(namespace_valid("/"));
        assert!(namespace_valid("/admin"));
        assert!(!namespace_valid("admin"));
        assert!(!namespace_valid("/a,b"));
        assert!(!namespace_valid(""));
    }
}
