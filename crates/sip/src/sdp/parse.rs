//! Parsing session descriptions (RFC 8866 §5, §9).
//!
//! Lenient where real peers differ harmlessly from the grammar: LF-only line endings, trailing
//! whitespace or NULs, blank lines, a byte-order mark, unknown line types and attributes (kept
//! verbatim, RFC 8866 §5.13), lines out of order. Strict where a guess could send media to the
//! wrong place or with the wrong codec: the `v=`, `o=`, `s=`, `c=`, `t=` and `m=` lines and the
//! attributes the gateway interprets (`rtpmap`, `fmtp`, `ptime`, `maxptime`, `rtcp`) must be well
//! formed, and every error names the line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::direction::Direction;
use super::model::{AddrType, Address, Attribute, Fmtp, Line, MediaDescription, MediaKind, Origin, Rtcp, RtpMap, SessionDescription, Timing};

/// Longest excerpt of the offending line kept in a [`ParseError`], in characters: enough to
/// recognise the line in a log, bounded so a hostile peer cannot fill the log.
const EXCERPT: usize = 120;

/// Why a text is not a session description, with the line at fault.
///
/// A SIP user agent answers an INVITE whose SDP does not parse with 400 Bad Request
/// ([`ParseError::sip_status`]); the `Display` form fits a log line or a Warning header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line} {text:?}: {kind}")]
pub struct ParseError {
    /// The 1-based line number (blank lines count). For a missing line, the line where the
    /// session section ended: the first `m=` line, or one past the last line.
    pub line: usize,
    /// The offending line, without its line ending, cut to a bounded length.
    pub text: String,
    /// What is wrong with it.
    pub kind: ParseErrorKind,
}

impl ParseError {
    fn new(line: usize, text: &str, kind: ParseErrorKind) -> ParseError {
        ParseError { line, text: text.chars().take(EXCERPT).collect(), kind }
    }

    /// The SIP status for a request whose body fails to parse: 400 Bad Request (RFC 3261
    /// §21.4.1: malformed syntax), as opposed to the 488 of a well-formed offer we cannot accept.
    pub fn sip_status(&self) -> u16 {
        400
    }
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The text has no lines at all.
    #[error("empty session description")]
    Empty,
    /// Not `<letter>=<value>` (RFC 8866 §5).
    #[error("not a `<type>=<value>` line")]
    NotALine,
    /// The first line is not `v=` (RFC 8866 §5: "v=" comes first).
    #[error("a session description starts with v=0")]
    NoVersion,
    /// `v=` with a version other than 0.
    #[error("unsupported SDP version (only v=0 exists)")]
    Version,
    /// A line of a type that appears once, seen twice.
    #[error("duplicate {0}= line")]
    Duplicate(char),
    /// A required session-level line is missing.
    #[error("missing {0}= line")]
    Missing(char),
    /// An `r=` line before any `t=` line.
    #[error("r= line before any t= line")]
    RepeatWithoutTiming,
    /// A line whose value does not have the form its type requires.
    #[error("malformed {line_type}= line, expected {expected}")]
    Malformed {
        /// The type letter.
        line_type: char,
        /// The expected form.
        expected: &'static str,
    },
    /// An attribute the gateway interprets whose value does not have the required form.
    #[error("malformed a={name} attribute, expected {expected}")]
    Attribute {
        /// The attribute name.
        name: &'static str,
        /// The expected form.
        expected: &'static str,
    },
}

impl SessionDescription {
    /// Parses a session description (see the module documentation for what is accepted).
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming the first line that is malformed, or where a required line is
    /// missing.
    pub fn parse(text: &str) -> Result<SessionDescription, ParseError> {
        Parser::default().run(text)
    }

    /// Parses a message body. Invalid UTF-8 (a session name in Latin-1, say) is replaced by
    /// U+FFFD rather than refused: only free-text lines may hold non-ASCII text, and the gateway
    /// does not read them.
    ///
    /// # Errors
    ///
    /// As [`SessionDescription::parse`].
    pub fn parse_bytes(body: &[u8]) -> Result<SessionDescription, ParseError> {
        SessionDescription::parse(&String::from_utf8_lossy(body))
    }
}

impl FromStr for SessionDescription {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<SessionDescription, ParseError> {
        SessionDescription::parse(text)
    }
}

/// The session-level lines seen so far.
#[derive(Default)]
struct Parser {
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<Address>,
    timing: Vec<Timing>,
    attributes: Vec<Attribute>,
    lines: Vec<Line>,
    media: Vec<MediaDescription>,
}

impl Parser {
    fn run(mut self, text: &str) -> Result<SessionDescription, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut version_seen = false;
        let mut last = 0;
        // Where the session section ended: the first m= line, by number and text.
        let mut session_end: Option<(usize, &str)> = None;
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = raw.trim_end_matches(|c: char| c.is_whitespace() || c == '\0');
            if line.is_empty() {
                continue;
            }
            last = number;
            let at = |kind| ParseError::new(number, line, kind);
            let (kind, value) = split_line(line).ok_or_else(|| at(ParseErrorKind::NotALine))?;
            if !version_seen {
                if kind != 'v' {
                    return Err(at(ParseErrorKind::NoVersion));
                }
                let version: u32 = value.trim().parse().map_err(|_| at(ParseErrorKind::Malformed { line_type: 'v', expected: "`v=0`" }))?;
                if version != SessionDescription::VERSION {
                    return Err(at(ParseErrorKind::Version));
                }
                version_seen = true;
                continue;
            }
            if kind == 'm' && session_end.is_none() {
                session_end = Some((number, line));
            }
            self.line(kind, value).map_err(at)?;
        }
        if !version_seen {
            return Err(ParseError::new(1, "", ParseErrorKind::Empty));
        }
        let (end_line, end_text) = session_end.unwrap_or((last + 1, ""));
        self.finish().map_err(|kind| ParseError::new(end_line, end_text, kind))
    }

    /// One line after `v=`.
    fn line(&mut self, kind: char, value: &str) -> Result<(), ParseErrorKind> {
        if let Some(media) = self.media.last_mut() {
            // Inside a media section every type but m=, c= and a= is kept verbatim.
            match kind {
                'm' => self.media.push(parse_media(value)?),
                'c' if media.connection.is_some() => return Err(ParseErrorKind::Duplicate('c')),
                'c' => media.connection = Some(parse_connection(value)?),
                'a' => media.attributes.push(parse_attribute(value)?),
                _ => media.lines.push(Line { kind, value: value.to_owned() }),
            }
            return Ok(());
        }
        match kind {
            'v' => return Err(ParseErrorKind::Duplicate('v')),
            'o' if self.origin.is_some() => return Err(ParseErrorKind::Duplicate('o')),
            'o' => self.origin = Some(parse_origin(value)?),
            's' if self.session_name.is_some() => return Err(ParseErrorKind::Duplicate('s')),
            's' => self.session_name = Some(value.to_owned()),
            'c' if self.connection.is_some() => return Err(ParseErrorKind::Duplicate('c')),
            'c' => self.connection = Some(parse_connection(value)?),
            't' => self.timing.push(parse_timing(value)?),
            'r' => {
                let timing = self.timing.last_mut().ok_or(ParseErrorKind::RepeatWithoutTiming)?;
                timing.repeats.push(value.to_owned());
            }
            'a' => self.attributes.push(parse_attribute(value)?),
            'm' => self.media.push(parse_media(value)?),
            _ => self.lines.push(Line { kind, value: value.to_owned() }),
        }
        Ok(())
    }

    /// Checks the lines RFC 8866 §5 requires in every description and builds it.
    fn finish(mut self) -> Result<SessionDescription, ParseErrorKind> {
        let origin = self.origin.ok_or(ParseErrorKind::Missing('o'))?;
        let session_name = self.session_name.ok_or(ParseErrorKind::Missing('s'))?;
        if self.timing.is_empty() {
            return Err(ParseErrorKind::Missing('t'));
        }
        // Printing writes the verbatim lines in RFC 8866 §5 order; sort them the same way here
        // (stably) so that parsing what was printed gives back the same model.
        self.lines.sort_by_key(Line::session_rank);
        for media in &mut self.media {
            media.lines.sort_by_key(Line::media_rank);
        }
        Ok(SessionDescription {
            origin,
            session_name,
            connection: self.connection,
            timing: self.timing,
            attributes: self.attributes,
            lines: self.lines,
            media: self.media,
        })
    }
}

/// Splits `<letter>=<value>`.
fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next().filter(char::is_ascii_alphabetic)?;
    let value = chars.as_str().strip_prefix('=')?;
    Some((kind, value))
}

fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split_ascii_whitespace()
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(value: &str) -> Result<Origin, ParseErrorKind> {
    const EXPECTED: ParseErrorKind =
        ParseErrorKind::Malformed { line_type: 'o', expected: "`<username> <session id> <version> IN IP4|IP6 <address>` with 64-bit numbers" };
    let w: Vec<&str> = words(value).collect();
    let [username, id, version, net, addr_type, address] = w[..] else {
        return Err(EXPECTED);
    };
    Ok(Origin {
        username: username.to_owned(),
        session_id: id.parse().map_err(|_| EXPECTED)?,
        session_version: version.parse().map_err(|_| EXPECTED)?,
        address: parse_address(net, addr_type, address).ok_or(EXPECTED)?,
    })
}

/// `c=<nettype> <addrtype> <connection-address>`.
fn parse_connection(value: &str) -> Result<Address, ParseErrorKind> {
    const EXPECTED: ParseErrorKind = ParseErrorKind::Malformed { line_type: 'c', expected: "`IN IP4|IP6 <address>`" };
    let w: Vec<&str> = words(value).collect();
    let [net, addr_type, address] = w[..] else {
        return Err(EXPECTED);
    };
    parse_address(net, addr_type, address).ok_or(EXPECTED)
}

/// The `IN IP4|IP6 <address>` triple. A literal of the other family is an error (it would send
/// media to an address the peer did not mean); anything that is not a literal is kept as a name.
fn parse_address(net: &str, addr_type: &str, address: &str) -> Option<Address> {
    if net != "IN" {
        return None;
    }
    let addr_type = match addr_type {
        "IP4" => AddrType::Ip4,
        "IP6" => AddrType::Ip6,
        _ => return None,
    };
    let v4 = address.parse::<Ipv4Addr>().ok();
    let v6 = address.parse::<Ipv6Addr>().ok();
    match (addr_type, v4, v6) {
        (AddrType::Ip4, Some(ip), _) => Some(Address::Ip(IpAddr::V4(ip))),
        (AddrType::Ip6, _, Some(ip)) => Some(Address::Ip(IpAddr::V6(ip))),
        (_, Some(_), _) | (_, _, Some(_)) => None,
        _ => Some(Address::Name { addr_type, name: address.to_owned() }),
    }
}

/// `t=<start-time> <stop-time>`.
fn parse_timing(value: &str) -> Result<Timing, ParseErrorKind> {
    const EXPECTED: ParseErrorKind = ParseErrorKind::Malformed { line_type: 't', expected: "`<start> <stop>` (`t=0 0`)" };
    let w: Vec<&str> = words(value).collect();
    let [start, stop] = w[..] else {
        return Err(EXPECTED);
    };
    Ok(Timing { start: start.parse().map_err(|_| EXPECTED)?, stop: stop.parse().map_err(|_| EXPECTED)?, repeats: Vec::new() })
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`. An empty format list is accepted
/// (RFC 8866 requires one, but nothing is gained by refusing it: such a stream cannot be chosen).
fn parse_media(value: &str) -> Result<MediaDescription, ParseErrorKind> {
    const EXPECTED: ParseErrorKind =
        ParseErrorKind::Malformed { line_type: 'm', expected: "`<media> <port>[/<count>] <protocol> <formats>` with 16-bit ports" };
    let mut w = words(value);
    let (Some(kind), Some(port), Some(protocol)) = (w.next(), w.next(), w.next()) else {
        return Err(EXPECTED);
    };
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count.parse().map_err(|_| EXPECTED)?)),
        None => (port, None),
    };
    let mut media = MediaDescription::new(MediaKind::from_token(kind), port.parse().map_err(|_| EXPECTED)?, protocol);
    media.port_count = port_count;
    media.formats = w.map(str::to_owned).collect();
    Ok(media)
}

/// `a=<name>[:<value>]`: typed for the attributes the gateway reads, verbatim otherwise.
fn parse_attribute(value: &str) -> Result<Attribute, ParseErrorKind> {
    let (name, val) = match value.split_once(':') {
        Some((name, val)) => (name, Some(val)),
        None => (value, None),
    };
    let attribute = match (name, val) {
        ("rtpmap", _) => Attribute::RtpMap(parse_rtpmap(val.unwrap_or(""))?),
        ("fmtp", _) => Attribute::Fmtp(parse_fmtp(val.unwrap_or(""))?),
        ("ptime", _) => Attribute::Ptime(parse_millis(val, "ptime")?),
        ("maxptime", _) => Attribute::MaxPtime(parse_millis(val, "maxptime")?),
        ("rtcp", _) => Attribute::Rtcp(parse_rtcp(val.unwrap_or(""))?),
        ("rtcp-mux", None) => Attribute::RtcpMux,
        (name, None) => match Direction::from_name(name) {
            Some(direction) => Attribute::Direction(direction),
            None => Attribute::other(name, None),
        },
        (name, Some(val)) => Attribute::other(name, Some(val)),
    };
    Ok(attribute)
}

/// A payload type: a number from 0 to 127 (RFC 3550 §5.1, 7 bits).
fn parse_payload_type(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

/// `<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
fn parse_rtpmap(value: &str) -> Result<RtpMap, ParseErrorKind> {
    const EXPECTED: ParseErrorKind = ParseErrorKind::Attribute { name: "rtpmap", expected: "`<payload type 0-127> <encoding>/<clock rate>[/<channels>]`" };
    let (pt, encoding) = value.trim_start().split_once(|c: char| c.is_ascii_whitespace()).ok_or(EXPECTED)?;
    let mut parts = encoding.trim_start().split('/');
    let (Some(name), Some(rate), channels, None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(EXPECTED);
    };
    if name.is_empty() {
        return Err(EXPECTED);
    }
    Ok(RtpMap {
        payload_type: parse_payload_type(pt).ok_or(EXPECTED)?,
        encoding: name.to_owned(),
        clock_rate: rate.parse().map_err(|_| EXPECTED)?,
        channels: channels.map(|c| c.parse().map_err(|_| EXPECTED)).transpose()?,
    })
}

/// `<payload type> <format specific parameters>`; the parameters may be empty.
fn parse_fmtp(value: &str) -> Result<Fmtp, ParseErrorKind> {
    const EXPECTED: ParseErrorKind = ParseErrorKind::Attribute { name: "fmtp", expected: "`<payload type 0-127> <parameters>`" };
    let value = value.trim_start();
    let (pt, params) = value.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((value, ""));
    Ok(Fmtp { payload_type: parse_payload_type(pt).ok_or(EXPECTED)?, params: params.trim_start().to_owned() })
}

/// A whole number of milliseconds (`a=ptime`, `a=maxptime`).
fn parse_millis(value: Option<&str>, name: &'static str) -> Result<u32, ParseErrorKind> {
    value.and_then(|v| v.trim().parse().ok()).ok_or(ParseErrorKind::Attribute { name, expected: "a whole number of milliseconds" })
}

/// `<port> [IN IP4|IP6 <address>]` (RFC 3605 §2.1).
fn parse_rtcp(value: &str) -> Result<Rtcp, ParseErrorKind> {
    const EXPECTED: ParseErrorKind = ParseErrorKind::Attribute { name: "rtcp", expected: "`<port> [IN IP4|IP6 <address>]`" };
    let w: Vec<&str> = words(value).collect();
    let (port, address) = match w[..] {
        [port] => (port, None),
        [port, net, addr_type, address] => (port, Some(parse_address(net, addr_type, address).ok_or(EXPECTED)?)),
        _ => return Err(EXPECTED),
    };
    Ok(Rtcp { port: port.parse().map_err(|_| EXPECTED)?, address })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::super::examples::{self, parsed, wire};
    use super::*;

    fn ip4(a: u8, b: u8, c: u8, d: u8) -> Address {
        Address::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn sipp_uac_offer() {
        let sdp = parsed(examples::SIPP_UAC);
        let origin = Origin { username: "user1".to_owned(), session_id: 53_655_765, session_version: 2_353_687_637, address: ip4(127, 0, 0, 1) };
        assert_eq!(sdp.origin, origin);
        assert_eq!(sdp.session_name, "-");
        assert_eq!(sdp.connection, Some(ip4(127, 0, 0, 1)));
        assert_eq!(sdp.timing, vec![Timing { start: 0, stop: 0, repeats: vec![] }]);
        assert!(sdp.attributes.is_empty() && sdp.lines.is_empty());
        let [m] = &sdp.media[..] else { panic!("one m= line") };
        assert_eq!((&m.kind, m.port, m.port_count, m.protocol.as_str()), (&MediaKind::Audio, 6000, None, "RTP/AVP"));
        assert_eq!(m.formats, vec!["0"]);
        assert_eq!(m.attributes, vec![Attribute::RtpMap(RtpMap::new(0, "PCMU", 8000))]);
        assert_eq!(m.connection, None);
    }

    #[test]
    fn baresip_offer_keeps_every_attribute_in_order() {
        let sdp = parsed(examples::BARESIP);
        assert_eq!(sdp.attributes, vec![Attribute::other("tool", Some("baresip 1.0.0"))]);
        let m = &sdp.media[0];
        assert_eq!(m.formats, vec!["0", "8", "9", "96", "3", "101"]);
        assert_eq!(m.rtpmap(96), Some(&RtpMap { channels: Some(2), ..RtpMap::new(96, "opus", 48000) }));
        assert_eq!(m.fmtp(96), Some("stereo=1;sprop-stereo=1"));
        assert_eq!(m.fmtp(101), Some("0-15"));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
        assert_eq!(m.ptime(), Some(20));
        assert!(!m.rtcp_mux());
        let tail: Vec<String> = m.attributes[8..].iter().map(ToString::to_string).collect();
        assert_eq!(tail, vec!["sendrecv", "label:1", "rtcp-rsize", "ssrc:2645912256 cname:sip:gw@127.0.0.1", "minptime:20", "ptime:20"]);
        // The value is everything after the first colon.
        assert_eq!(m.attributes[11], Attribute::other("ssrc", Some("2645912256 cname:sip:gw@127.0.0.1")));
        assert!(parsed(examples::BARESIP_MUX).media[0].rtcp_mux());
    }

    #[test]
    fn asterisk_offer() {
        let sdp = parsed(examples::ASTERISK);
        assert_eq!(sdp.session_name, "Asterisk");
        assert_eq!(sdp.connection, Some(ip4(10, 20, 30, 40)));
        let m = &sdp.media[0];
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![0, 8, 3, 101]);
        assert_eq!(m.encoding(3).map(|e| e.to_string()), Some("GSM/8000".to_owned()));
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!((m.ptime(), m.max_ptime()), (Some(20), Some(150)));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
    }

    #[test]
    fn freeswitch_offer_with_rtcp_address() {
        let sdp = parsed(examples::FREESWITCH);
        assert_eq!(sdp.origin.username, "FreeSWITCH");
        assert_eq!(sdp.origin.session_version, 1_700_000_001);
        let m = &sdp.media[0];
        assert_eq!(m.rtcp(), Some(&Rtcp { port: 24613, address: Some(ip4(203, 0, 113, 21)) }));
        assert_eq!(m.rtpmap(104).map(|r| r.clock_rate), Some(48000));
        assert_eq!(m.rtpmap(13).map(|r| r.encoding.as_str()), Some("CN"));
        assert!(m.fmtp(102).is_some_and(|p| p.starts_with("useinbandfec=1; ") && p.ends_with("maxptime=40")));
    }

    #[test]
    fn ipv6_offer() {
        let sdp = parsed(examples::IPV6);
        let ip: Ipv6Addr = "2001:db8::10".parse().expect("literal");
        assert_eq!(sdp.origin.address, Address::Ip(ip.into()));
        assert_eq!(sdp.origin.address.addr_type(), AddrType::Ip6);
        assert_eq!(sdp.origin.session_id, 13_760_799_956_958_020);
        assert_eq!(sdp.connection, Some(Address::Ip(ip.into())));
        let rtcp_ip: Ipv6Addr = "2001:db8::11".parse().expect("literal");
        assert_eq!(sdp.media[0].rtcp(), Some(&Rtcp { port: 49171, address: Some(Address::Ip(rtcp_ip.into())) }));
    }

    #[test]
    fn lf_only_trailing_whitespace_blank_lines_and_bom_parse_the_same() {
        let reference = parsed(examples::ASTERISK);
        assert_eq!(SessionDescription::parse(examples::ASTERISK), Ok(reference.clone()), "LF only");
        let messy: String = examples::ASTERISK.lines().map(|l| format!("{l} \t\r\n\r\n")).collect();
        assert_eq!(SessionDescription::parse(&messy), Ok(reference.clone()), "whitespace and blank lines");
        let padded = format!("\u{feff}{}\r\n\0", wire(examples::ASTERISK));
        assert_eq!(SessionDescription::parse(&padded), Ok(reference.clone()), "BOM and trailing NUL");
        assert_eq!(SessionDescription::parse_bytes(padded.as_bytes()), Ok(reference.clone()));
        assert_eq!(wire(examples::ASTERISK).parse::<SessionDescription>(), Ok(reference));
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = parsed(examples::TWO_AUDIO);
        let m = &sdp.media[1];
        assert!(m.attributes.is_empty());
        assert_eq!(m.rtpmap(0), None);
        assert_eq!(m.encoding(0), Some(RtpMap::new(0, "PCMU", 8000)));
        assert_eq!(m.encoding(8), Some(RtpMap::new(8, "PCMA", 8000)));
        assert_eq!(m.encoding(3), Some(RtpMap::new(3, "GSM", 8000)));
        assert_eq!(sdp.media[0].protocol, "RTP/SAVP");
        assert!(matches!(&sdp.media[0].attributes[0], Attribute::Other { name, .. } if name == "crypto"));
    }

    #[test]
    fn dynamic_telephone_event_on_any_payload_type() {
        for pt in [96u8, 101, 110, 127] {
            for events in ["0-15", "0-16", "0-11,16"] {
                let text = format!(
                    "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0 {pt}\n\
                     a=rtpmap:{pt} telephone-event/8000\na=fmtp:{pt} {events}\n"
                );
                let sdp = SessionDescription::parse(&text).expect("valid");
                let m = &sdp.media[0];
                assert_eq!(m.rtpmap(pt), Some(&RtpMap::new(pt, "telephone-event", 8000)));
                assert_eq!(m.fmtp(pt), Some(events));
            }
        }
    }

    #[test]
    fn audio_and_video_sections() {
        let sdp = parsed(examples::AUDIO_VIDEO);
        assert_eq!(sdp.media.iter().map(|m| m.kind.clone()).collect::<Vec<_>>(), vec![MediaKind::Audio, MediaKind::Video]);
        assert_eq!(sdp.lines, vec![Line { kind: 'b', value: "AS:380".to_owned() }]);
        assert_eq!(sdp.attributes, vec![Attribute::other("rtcp-xr", Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics"))]);
        let video = &sdp.media[1];
        assert_eq!(video.connection, Some(ip4(198, 51, 100, 8)));
        assert_eq!(video.lines, vec![Line { kind: 'b', value: "AS:300".to_owned() }]);
        assert_eq!(video.rtpmap(97).map(|m| m.clock_rate), Some(90000));
        assert_eq!(sdp.connection_of(video), Some(&ip4(198, 51, 100, 8)));
        assert_eq!(sdp.connection_of(&sdp.media[0]), Some(&ip4(198, 51, 100, 7)));
    }

    #[test]
    fn media_direction_overrides_session_direction() {
        let sdp = parsed(examples::SENDONLY_HOLD);
        assert_eq!(sdp.direction(), Some(Direction::SendRecv));
        assert_eq!(sdp.media[0].direction(), Some(Direction::SendOnly));
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendOnly);
        let sdp = parsed(examples::INACTIVE_HOLD);
        assert_eq!(sdp.media[0].direction(), None);
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::Inactive);
        let sdp = parsed(examples::SIPP_UAC);
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendRecv, "default");
    }

    #[test]
    fn legacy_hold_is_an_unspecified_connection() {
        let sdp = parsed(examples::LEGACY_HOLD);
        assert_eq!(sdp.connection, Some(ip4(0, 0, 0, 0)));
        assert!(sdp.connection.as_ref().is_some_and(Address::is_unspecified));
        assert_eq!(sdp.media[0].direction(), None);
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendOnly);
    }

    #[test]
    fn unknown_lines_and_attributes_are_kept() {
        let sdp = parsed(examples::KITCHEN_SINK);
        let kinds: String = sdp.lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, "iuepbzky");
        assert_eq!(sdp.lines[7].value, "0100000001");
        assert_eq!(sdp.timing, vec![Timing { start: 2_873_397_496, stop: 2_873_404_696, repeats: vec!["7d 1h 0 25h".to_owned()] }]);
        assert_eq!(sdp.connection, Some(Address::Name { addr_type: AddrType::Ip4, name: "224.2.17.12/127".to_owned() }));
        assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
        let m = &sdp.media[0];
        assert_eq!(m.port_count, Some(2));
        assert_eq!(m.connection, Some(Address::Name { addr_type: AddrType::Ip4, name: "media.example.com".to_owned() }));
        assert_eq!(m.lines.iter().map(|l| l.kind).collect::<String>(), "ibk");
        assert_eq!(m.rtpmap(0).and_then(|r| r.channels), Some(1));
        assert_eq!(m.fmtp(0), Some(""));
        assert_eq!(m.attributes[2..], [Attribute::other("orient", None), Attribute::other("lang", Some(""))]);
        let app = &sdp.media[1];
        assert_eq!(app.kind, MediaKind::Application);
        assert_eq!(app.formats, vec!["webrtc-datachannel"]);
        assert_eq!(app.payload_types().count(), 0);
    }

    #[test]
    fn lines_out_of_order_are_sorted_into_rfc_order() {
        let text = "v=0\r\nk=clear:x\r\nb=AS:64\r\no=- 1 1 IN IP4 192.0.2.1\r\ny=7\r\ni=info\r\ns=-\r\n\
                    t=0 0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\nb=AS:64\r\na=sendrecv\r\n\
                    c=IN IP4 192.0.2.2\r\ni=voice\r\n";
        let sdp = SessionDescription::parse(text).expect("valid");
        assert_eq!(sdp.lines.iter().map(|l| l.kind).collect::<String>(), "ibky");
        assert_eq!(sdp.media[0].lines.iter().map(|l| l.kind).collect::<String>(), "ib");
        assert_eq!(SessionDescription::parse(&sdp.to_string()), Ok(sdp));
    }

    #[test]
    fn session_lines_after_the_first_media_belong_to_it() {
        let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.1\n\
                    s=late\nv=0\n";
        let sdp = SessionDescription::parse(text).expect("kept verbatim");
        assert_eq!(sdp.session_name, "-");
        assert_eq!(sdp.media[0].lines.iter().map(|l| l.kind).collect::<String>(), "sv");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let mut body = wire(examples::SIPP_UAC).into_bytes();
        let at = body.windows(3).position(|w| w == b"s=-").expect("s= line") + 2;
        body[at] = 0xE4; // "ä" in Latin-1
        let sdp = SessionDescription::parse_bytes(&body).expect("valid");
        assert_eq!(sdp.session_name, "\u{fffd}");
    }

    /// Session lines valid up to and including `t=`.
    const HEAD: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";

    /// A malformed-line kind; the `expected` prose is not compared (see [`same_kind`]).
    fn malformed(line_type: char) -> ParseErrorKind {
        ParseErrorKind::Malformed { line_type, expected: "" }
    }

    /// A malformed-attribute kind; the `expected` prose is not compared.
    fn attribute(name: &'static str) -> ParseErrorKind {
        ParseErrorKind::Attribute { name, expected: "" }
    }

    /// Kinds are the same, ignoring the `expected` prose, which every test would otherwise repeat.
    fn same_kind(a: &ParseErrorKind, b: &ParseErrorKind) -> bool {
        use ParseErrorKind::{Attribute, Malformed};
        match (a, b) {
            (Malformed { line_type: x, expected: e }, Malformed { line_type: y, .. }) => x == y && !e.is_empty(),
            (Attribute { name: x, expected: e }, Attribute { name: y, .. }) => x == y && !e.is_empty(),
            _ => a == b,
        }
    }

    #[test]
    fn every_error_names_its_line_and_text() {
        let cases: Vec<(String, usize, &str, ParseErrorKind)> = vec![
            ("".into(), 1, "", ParseErrorKind::Empty),
            ("\r\n\n  \n".into(), 1, "", ParseErrorKind::Empty),
            ("o=- 1 1 IN IP4 192.0.2.1\n".into(), 1, "o=- 1 1 IN IP4 192.0.2.1", ParseErrorKind::NoVersion),
            ("v=1\n".into(), 1, "v=1", ParseErrorKind::Version),
            ("v=zero\n".into(), 1, "v=zero", malformed('v')),
            ("v=0\nhello\n".into(), 2, "hello", ParseErrorKind::NotALine),
            ("v=0\n=x\n".into(), 2, "=x", ParseErrorKind::NotALine),
            ("v=0\n1=x\n".into(), 2, "1=x", ParseErrorKind::NotALine),
            ("v=0\n a=x\n".into(), 2, " a=x", ParseErrorKind::NotALine),
            ("v=0\nv=0\n".into(), 2, "v=0", ParseErrorKind::Duplicate('v')),
            ("v=0\no=- 1 IN IP4 192.0.2.1\n".into(), 2, "o=- 1 IN IP4 192.0.2.1", malformed('o')),
            ("v=0\no=- 1 99999999999999999999 IN IP4 h\n".into(), 2, "o=- 1 99999999999999999999 IN IP4 h", malformed('o')),
            ("v=0\no=- 1 1 TN IP4 192.0.2.1\n".into(), 2, "o=- 1 1 TN IP4 192.0.2.1", malformed('o')),
            ("v=0\n\n\no=- x 1 IN IP4 192.0.2.1\n".into(), 4, "o=- x 1 IN IP4 192.0.2.1", malformed('o')),
            (format!("{HEAD}o=- 1 1 IN IP4 192.0.2.1\n"), 5, "o=- 1 1 IN IP4 192.0.2.1", ParseErrorKind::Duplicate('o')),
            (format!("{HEAD}s=again\n"), 5, "s=again", ParseErrorKind::Duplicate('s')),
            (format!("{HEAD}c=IN IP4 ::1\n"), 5, "c=IN IP4 ::1", malformed('c')),
            (format!("{HEAD}c=IN IP6 192.0.2.1\n"), 5, "c=IN IP6 192.0.2.1", malformed('c')),
            (format!("{HEAD}c=IN IP7 host\n"), 5, "c=IN IP7 host", malformed('c')),
            (format!("{HEAD}c=IN IP4\n"), 5, "c=IN IP4", malformed('c')),
            (format!("{HEAD}c=IN IP4 a\nc=IN IP4 b\n"), 6, "c=IN IP4 b", ParseErrorKind::Duplicate('c')),
            (format!("{HEAD}t=0\n"), 5, "t=0", malformed('t')),
            (format!("{HEAD}t=now 0\n"), 5, "t=now 0", malformed('t')),
            ("v=0\nr=7d 1h 0\n".into(), 2, "r=7d 1h 0", ParseErrorKind::RepeatWithoutTiming),
            ("v=0\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n".into(), 4, "m=audio 4000 RTP/AVP 0", ParseErrorKind::Missing('o')),
            ("v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n".into(), 4, "", ParseErrorKind::Missing('s')),
            ("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n\n".into(), 4, "", ParseErrorKind::Missing('t')),
            (format!("{HEAD}m=audio\n"), 5, "m=audio", malformed('m')),
            (format!("{HEAD}m=audio 70000 RTP/AVP 0\n"), 5, "m=audio 70000 RTP/AVP 0", malformed('m')),
            (format!("{HEAD}m=audio -2 RTP/AVP 0\n"), 5, "m=audio -2 RTP/AVP 0", malformed('m')),
            (format!("{HEAD}m=audio 4000/x RTP/AVP 0\n"), 5, "m=audio 4000/x RTP/AVP 0", malformed('m')),
            (format!("{HEAD}m=audio 4000 RTP/AVP 0\nc=IN IP4 a\nc=IN IP4 b\n"), 7, "c=IN IP4 b", ParseErrorKind::Duplicate('c')),
            (format!("{HEAD}a=rtpmap:128 PCMU/8000\n"), 5, "a=rtpmap:128 PCMU/8000", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:0 PCMU\n"), 5, "a=rtpmap:0 PCMU", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:0 PCMU/8000/1/2\n"), 5, "a=rtpmap:0 PCMU/8000/1/2", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:0 /8000\n"), 5, "a=rtpmap:0 /8000", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:x PCMU/8000\n"), 5, "a=rtpmap:x PCMU/8000", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:0\n"), 5, "a=rtpmap:0", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap\n"), 5, "a=rtpmap", attribute("rtpmap")),
            (format!("{HEAD}a=rtpmap:96 opus/48000/two\n"), 5, "a=rtpmap:96 opus/48000/two", attribute("rtpmap")),
            (format!("{HEAD}a=fmtp:abc 0-15\n"), 5, "a=fmtp:abc 0-15", attribute("fmtp")),
            (format!("{HEAD}a=fmtp:200 0-15\n"), 5, "a=fmtp:200 0-15", attribute("fmtp")),
            (format!("{HEAD}a=fmtp\n"), 5, "a=fmtp", attribute("fmtp")),
            (format!("{HEAD}a=ptime:20.5\n"), 5, "a=ptime:20.5", attribute("ptime")),
            (format!("{HEAD}a=ptime\n"), 5, "a=ptime", attribute("ptime")),
            (format!("{HEAD}a=maxptime:-1\n"), 5, "a=maxptime:-1", attribute("maxptime")),
            (format!("{HEAD}a=rtcp:port\n"), 5, "a=rtcp:port", attribute("rtcp")),
            (format!("{HEAD}a=rtcp:70000\n"), 5, "a=rtcp:70000", attribute("rtcp")),
            (format!("{HEAD}a=rtcp:5001 IN IP4\n"), 5, "a=rtcp:5001 IN IP4", attribute("rtcp")),
            (format!("{HEAD}m=audio 4000 RTP/AVP 0\r\na=ptime:x  \r\n"), 6, "a=ptime:x", attribute("ptime")),
        ];
        for (input, line, text, kind) in cases {
            let err = SessionDescription::parse(&input).expect_err(&input);
            assert_eq!((err.line, err.text.as_str()), (line, text), "{input:?}");
            assert!(same_kind(&err.kind, &kind), "{input:?}: {:?} is not {kind:?}", err.kind);
            assert!(err.to_string().starts_with(&format!("SDP line {line} ")), "{err}");
            assert_eq!(err.sip_status(), 400);
        }
    }

    #[test]
    fn error_messages_read_well_and_stay_bounded() {
        let err = SessionDescription::parse("v=0\nc=IN IP4 ::1\n").expect_err("mismatched family");
        assert_eq!(err.to_string(), "SDP line 2 \"c=IN IP4 ::1\": malformed c= line, expected `IN IP4|IP6 <address>`");
        let long = format!("v=0\no={}\n", "x".repeat(10_000));
        let err = SessionDescription::parse(&long).expect_err("malformed o=");
        assert_eq!(err.text.chars().count(), EXCERPT);
    }

    #[test]
    fn lenient_forms_that_are_accepted() {
        // Extra spaces between fields, leading zeros, case-insensitive encodings, a format list
        // without rtpmap, an empty format list, attribute values with extra colons.
        let text = format!(
            "{HEAD}m=audio  4000   RTP/AVP   08 101\na=rtpmap:101   telephone-event/8000\n\
             a=fmtp:101\t0-16\na=ptime: 30\na=x-custom:a:b:c\nm=video 0 RTP/AVP\n"
        );
        let sdp = SessionDescription::parse(&text).expect("valid");
        let m = &sdp.media[0];
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![8, 101]);
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.ptime(), Some(30));
        assert_eq!(m.attributes[3], Attribute::other("x-custom", Some("a:b:c")));
        assert!(sdp.media[1].formats.is_empty());
    }
}
