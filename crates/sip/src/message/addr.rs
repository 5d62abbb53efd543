//! Typed values of the headers a user agent reads: name-addr (From, To, Contact, Route,
//! Record-Route), Via, CSeq, and methods.

use std::fmt;

use super::ParseError;
use super::text::{Params, quote, split_top, unquote};
use super::uri::{Host, Uri, split_host_port};

/// A SIP method (RFC 3261 and extensions). Methods are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// REFER (RFC 3515).
    Refer,
    /// NOTIFY (RFC 6665).
    Notify,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// MESSAGE (RFC 3428).
    Message,
    /// Any other method.
    Other(String),
}

impl Method {
    /// The method as written.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }

    /// Parses a method token.
    pub fn parse(s: &str) -> Result<Method, ParseError> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            other if super::text::is_token(other) => Method::Other(other.to_owned()),
            other => return Err(ParseError::new(format!("bad method {other:?}"))),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `name-addr` or `addr-spec` with header parameters: the value of From, To, Contact,
/// Route and Record-Route entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`...).
    pub params: Params,
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::new() }
    }

    /// Parses one entry.
    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim();
        if let Some(open) = find_angle(s) {
            let close = s[open..].find('>').map(|c| open + c).ok_or_else(|| ParseError::new(format!("unclosed '<' in {s:?}")))?;
            let display = s[..open].trim();
            let display = (!display.is_empty()).then(|| unquote(display));
            let uri = Uri::parse(&s[open + 1..close])?;
            let params = Params::parse(&s[close + 1..]);
            return Ok(NameAddr { display, uri, params });
        }
        // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
        let parts = split_top(s, ';');
        let uri = Uri::parse(parts[0])?;
        let params = Params::parse(&s[parts[0].len()..]);
        Ok(NameAddr { display: None, uri, params })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

/// The position of the `<` of a name-addr, outside any quoted display name.
fn find_angle(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '<' {
            return Some(i);
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A transport protocol of a Via or a URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket.
    Ws,
    /// Secure WebSocket.
    Wss,
    /// Anything else.
    Other(String),
}

impl Transport {
    /// Parses a transport token, case-insensitively.
    pub fn parse(s: &str) -> Transport {
        match s.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            _ => Transport::Other(s.to_owned()),
        }
    }

    /// The token as written in a Via.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }

    /// Whether the transport is reliable (no retransmissions of requests and responses).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The transport.
    pub transport: Transport,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`...).
    pub params: Params,
}

impl Via {
    /// Parses one Via entry (`SIP/2.0/UDP host:port;params`).
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let s = s.trim();
        let bad = || ParseError::new(format!("bad Via {s:?}"));
        // sent-protocol: "SIP" SLASH "2.0" SLASH transport, whitespace allowed around the slashes.
        let mut rest = s;
        let mut fields = Vec::with_capacity(3);
        for _ in 0..2 {
            let (a, b) = rest.split_once('/').ok_or_else(bad)?;
            fields.push(a.trim());
            rest = b.trim_start();
        }
        if !fields[0].eq_ignore_ascii_case("SIP") || fields[1] != "2.0" {
            return Err(ParseError::new(format!("unsupported Via protocol {}/{}", fields[0], fields[1])));
        }
        let end = rest.find(|c: char| c.is_whitespace()).ok_or_else(bad)?;
        let transport = Transport::parse(&rest[..end]);
        let rest = rest[end..].trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by)?;
        Ok(Via { transport, host, port, params: Params::parse(params) })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The `rport` parameter: `Some(None)` when present without a value (a request asking for
    /// it, RFC 3581), `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A CSeq value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1 INVITE`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let mut it = s.split_whitespace();
        let bad = || ParseError::new(format!("bad CSeq {s:?}"));
        let seq = it.next().ok_or_else(bad)?.parse::<u32>().map_err(|_| bad())?;
        let method = Method::parse(it.next().ok_or_else(bad)?)?;
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(r#""Alice \"A\" Smith" <sip:alice@atlanta.com;transport=tcp>;tag=1928301774"#).expect("valid");
        assert_eq!(a.display.as_deref(), Some(r#"Alice "A" Smith"#));
        assert_eq!(a.uri.transport().as_deref(), Some("tcp"));
        assert_eq!(a.tag(), Some("1928301774"));
        let b = NameAddr::parse("Bob Jones <sip:bob@biloxi.com>").expect("valid");
        assert_eq!(b.display.as_deref(), Some("Bob Jones"));
        // addr-spec: the parameter is the header's, not the URI's.
        let c = NameAddr::parse("sip:carol@chicago.com;tag=xyz").expect("valid");
        assert_eq!((c.tag(), c.uri.params.is_empty()), (Some("xyz"), true));
        let d = NameAddr::parse("<tel:+380501234567>;tag=1").expect("valid");
        assert_eq!(d.uri.user.as_deref(), Some("+380501234567"));
        assert_eq!(a.to_string(), r#""Alice \"A\" Smith" <sip:alice@atlanta.com;transport=tcp>;tag=1928301774"#);
        // A '<' inside a quoted display name does not start the address.
        let e = NameAddr::parse(r#""a<b" <sip:e@x>"#).expect("valid");
        assert_eq!(e.display.as_deref(), Some("a<b"));
    }

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP / 2.0 / udp  10.0.0.1:5070 ;branch=z9hG4bK776;rport;received=1.2.3.4").expect("valid");
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!((v.host.clone(), v.port), (Host::V4("10.0.0.1".parse().expect("ip")), Some(5070)));
        assert_eq!((v.branch(), v.received(), v.rport()), (Some("z9hG4bK776"), Some("1.2.3.4"), Some(None)));
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1;rport=40000").expect("valid");
        assert_eq!((v6.port, v6.rport()), (Some(5060), Some(Some(40000))));
        assert_eq!(v6.to_string(), "SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1;rport=40000");
        assert!(Via::parse("SIP/3.0/UDP x").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn cseq_and_methods() {
        assert_eq!(CSeq::parse(" 4711   INVITE ").expect("valid"), CSeq { seq: 4711, method: Method::Invite });
        assert_eq!(CSeq::parse("1 FOO").expect("valid").method, Method::Other("FOO".into()));
        for bad in ["", "INVITE", "x INVITE", "1 INVITE extra", "99999999999 BYE", "1 IN VITE"] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Method::parse("invite").is_ok_and(|m| m == Method::Other("invite".into())));
    }
}
