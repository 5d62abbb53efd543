//! The session description model (RFC 8866 §5).
//!
//! What the gateway reads is typed; everything else is kept verbatim and in order, so that a
//! description survives a parse/print round trip.

use std::fmt;
use std::net::IpAddr;

use super::codec::static_encoding;
use super::direction::Direction;

/// A session description: the session-level lines, then one [`MediaDescription`] per `m=` line.
///
/// The protocol version (`v=`) is always [`SessionDescription::VERSION`]: parsing rejects any
/// other, printing always writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: who made the description, and its session id and version (RFC 8866 §5.2).
    pub origin: Origin,
    /// `s=`: the session name, `-` by convention in telephony (RFC 3264 §5).
    pub session_name: String,
    /// Session-level `c=`, the default for every media without its own (RFC 8866 §5.7).
    pub connection: Option<Address>,
    /// `t=` lines with their `r=` lines; `t=0 0` in telephony (RFC 3264 §5).
    pub timing: Vec<Timing>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i=`, `u=`, `e=`, `p=`, `b=`, `z=`, `k=`, unknown types), kept
    /// in the order of RFC 8866 §5; see [`Line`].
    pub lines: Vec<Line>,
    /// The media descriptions, in `m=` order (their index is their identity, RFC 3264 §6).
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// The only SDP protocol version (RFC 8866 §5.1).
    pub const VERSION: u32 = 0;

    /// A description with this origin, `s=-`, `t=0 0` and nothing else.
    pub fn new(origin: Origin) -> SessionDescription {
        SessionDescription {
            origin,
            session_name: "-".to_owned(),
            connection: None,
            timing: vec![Timing::default()],
            attributes: Vec::new(),
            lines: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The session-level direction attribute, if any (the last one wins, as for media).
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The connection address that applies to `media`: its own `c=`, else the session's.
    pub fn connection_of<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Address> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction the writer of this description declares for `media`: the media-level
    /// attribute, else the session-level one, else `sendrecv` (RFC 3264 §5.1). A connection
    /// address of 0.0.0.0 (or `::`) is a legacy hold (RFC 3264 §8.4): the writer does not want
    /// to receive, whatever the attribute says.
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        let declared = media.direction().or_else(|| self.direction()).unwrap_or_default();
        match self.connection_of(media) {
            Some(address) if address.is_unspecified() => declared.without_receive(),
            _ => declared,
        }
    }
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The user name, `-` when there is none. Never empty and without whitespace.
    pub username: String,
    /// The session id, constant for the session.
    pub session_id: u64,
    /// The version, incremented by one each time the description changes (RFC 3264 §8).
    pub session_version: u64,
    /// The address of the machine that made the description.
    pub address: Address,
}

/// The address type of `o=`, `c=` and `a=rtcp` (the network type is always `IN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddrType {
    /// The SDP token.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

/// An `IN IP4 <address>` or `IN IP6 <address>` triple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A literal IP address of the family the address type names.
    Ip(IpAddr),
    /// Anything else: a host name (RFC 8866 §5.7 allows one), a multicast address with its
    /// `/ttl` suffix, an IPv6 address with a zone. Kept verbatim; the gateway cannot send to it.
    Name {
        /// The address type it was given with.
        addr_type: AddrType,
        /// The text, never empty and without whitespace.
        name: String,
    },
}

impl Address {
    /// The address type.
    pub fn addr_type(&self) -> AddrType {
        match self {
            Address::Ip(IpAddr::V4(_)) => AddrType::Ip4,
            Address::Ip(IpAddr::V6(_)) => AddrType::Ip6,
            Address::Name { addr_type, .. } => *addr_type,
        }
    }

    /// The IP address, if this is a literal one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::Name { .. } => None,
        }
    }

    /// Whether this is 0.0.0.0 or `::`, the legacy way of putting a call on hold.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Address {
        Address::Ip(ip)
    }
}

impl fmt::Display for Address {
    /// Writes `IN <addrtype> <address>`, the form `o=`, `c=` and `a=rtcp` share.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "IN {} {ip}", self.addr_type().as_str()),
            Address::Name { addr_type, name } => write!(f, "IN {} {name}", addr_type.as_str()),
        }
    }
}

/// A `t=` line and the `r=` lines that follow it (RFC 8866 §5.9, §5.10).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Timing {
    /// Start time in NTP seconds; 0 for an unbounded session.
    pub start: u64,
    /// Stop time in NTP seconds; 0 for an unbounded session.
    pub stop: u64,
    /// The values of the `r=` lines, verbatim (the gateway has no use for repeat times).
    pub repeats: Vec<String>,
}

/// A line the model does not interpret: its type letter and its value, verbatim.
///
/// Parsing sorts these by their place in RFC 8866 §5 (session: `i u e p`, then after `c=`:
/// `b`, then after `t=`: `z k` and unknown types; media: `i` before `c=`, the rest after), which
/// is the order printing writes them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The type letter (an ASCII letter).
    pub kind: char,
    /// The value after `=`, without trailing whitespace.
    pub value: String,
}

impl Line {
    /// Where a session-level line goes: ranks 0-3 before `c=`, 4 between `c=` and `t=`, 5 and
    /// up after the `t=`/`r=` lines.
    pub(crate) fn session_rank(&self) -> u8 {
        match self.kind {
            'i' => 0,
            'u' => 1,
            'e' => 2,
            'p' => 3,
            'b' => 4,
            'z' => 5,
            'k' => 6,
            _ => 7,
        }
    }

    /// Where a media-level line goes: rank 0 before `c=`, the rest after.
    pub(crate) fn media_rank(&self) -> u8 {
        match self.kind {
            'i' => 0,
            'b' => 1,
            'k' => 2,
            _ => 3,
        }
    }
}

/// The media type of an `m=` line (RFC 8866 §5.14).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `text`.
    Text,
    /// `application`.
    Application,
    /// `message`.
    Message,
    /// `image` (T.38 fax).
    Image,
    /// Any other token, verbatim.
    Other(String),
}

impl MediaKind {
    /// The kind a token names (case-sensitive, like every SDP token).
    pub fn from_token(token: &str) -> MediaKind {
        match token {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            "image" => MediaKind::Image,
            other => MediaKind::Other(other.to_owned()),
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(token) => token,
        }
    }
}

/// One media description: the `m=` line and the lines up to the next one (RFC 8866 §5.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// The media type.
    pub kind: MediaKind,
    /// The transport port; 0 marks a rejected or disabled stream (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u16>,
    /// The transport protocol, such as `RTP/AVP` (RFC 3551) or `RTP/SAVP`, verbatim.
    pub protocol: String,
    /// The media formats: RTP payload types for RTP protocols, in preference order.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session's.
    pub connection: Option<Address>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Other media-level lines (`i=`, `b=`, `k=`, unknown types); see [`Line`].
    pub lines: Vec<Line>,
}

impl MediaDescription {
    /// A media description with no formats and no attributes.
    pub fn new(kind: MediaKind, port: u16, protocol: &str) -> MediaDescription {
        MediaDescription {
            kind,
            port,
            port_count: None,
            protocol: protocol.to_owned(),
            formats: Vec::new(),
            connection: None,
            attributes: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Whether the port is 0: the stream is rejected (in an answer) or disabled (in an offer).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Whether the transport is plain RTP with the audio/video profile (RFC 3551), the only one
    /// the gateway speaks (no SRTP, no AVPF feedback). Compared ignoring ASCII case, as some
    /// implementations write `rtp/avp`.
    pub fn is_rtp_avp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("RTP/AVP")
    }

    /// The formats that are RTP payload types (0-127), in `m=` order, each once.
    ///
    /// Skipping repeats bounds every search over a stream to 128 payload types, however many
    /// formats a hostile `m=` line lists.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        let mut seen = [false; 128];
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt <= 127)).filter(move |pt| !std::mem::replace(&mut seen[usize::from(*pt)], true))
    }

    /// The `a=rtpmap` entries, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = &RtpMap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::RtpMap(map) => Some(map),
            _ => None,
        })
    }

    /// The `a=rtpmap` entry of a payload type (the first, if there are several).
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == payload_type)
    }

    /// The encoding of a payload type: its `a=rtpmap`, else the static assignment of RFC 3551
    /// (an `a=rtpmap` may be left out for static types, RFC 8866 §6.6).
    pub fn encoding(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmap(payload_type).cloned().or_else(|| static_encoding(payload_type))
    }

    /// The `a=fmtp` parameters of a payload type (the first entry, if there are several).
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == payload_type => Some(f.params.as_str()),
            _ => None,
        })
    }

    /// The `a=ptime` value in milliseconds: the packet time the writer wants to receive.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// The `a=maxptime` value in milliseconds: the longest packet time the writer can receive.
    pub fn max_ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any. Several are invalid; the last one wins, as
    /// in common implementations. See [`SessionDescription::direction_of`] for the effective
    /// direction.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// Replaces every direction attribute with `direction`, in place of the first one (or at the
    /// end when there was none).
    pub fn set_direction(&mut self, direction: Direction) {
        let first = self.attributes.iter().position(|a| matches!(a, Attribute::Direction(_)));
        self.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
        let at = first.unwrap_or(self.attributes.len());
        self.attributes.insert(at, Attribute::Direction(direction));
    }

    /// The `a=rtcp` attribute (RFC 3605), if any.
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(rtcp) => Some(rtcp),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` (RFC 5761 §5.1.1) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.iter().any(|a| matches!(a, Attribute::RtcpMux))
    }
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().rev().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

/// An `a=` line (RFC 8866 §5.13, §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
    RtpMap(RtpMap),
    /// `a=fmtp:<payload type> <parameters>` (RFC 8866 §6.15).
    Fmtp(Fmtp),
    /// `a=ptime:<milliseconds>` (RFC 8866 §6.4).
    Ptime(u32),
    /// `a=maxptime:<milliseconds>` (RFC 8866 §6.5).
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive` (RFC 8866 §6.7).
    Direction(Direction),
    /// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605 §2.1).
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    /// Any other attribute, verbatim.
    Other {
        /// The name: the text before the first `:`.
        name: String,
        /// The text after the first `:`, or `None` for a property attribute (no `:`).
        value: Option<String>,
    },
}

impl Attribute {
    /// An attribute the model does not interpret.
    pub fn other(name: &str, value: Option<&str>) -> Attribute {
        Attribute::Other { name: name.to_owned(), value: value.map(str::to_owned) }
    }
}

/// An `a=rtpmap` entry: a payload type bound to an encoding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RtpMap {
    /// The RTP payload type (0-127).
    pub payload_type: u8,
    /// The encoding name as written (compare ignoring ASCII case, RFC 4855 §3).
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The number of audio channels, when written.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// A mono entry (no channel count).
    pub fn new(payload_type: u8, encoding: &str, clock_rate: u32) -> RtpMap {
        RtpMap { payload_type, encoding: encoding.to_owned(), clock_rate, channels: None }
    }
}

impl fmt::Display for RtpMap {
    /// Writes `<encoding>/<clock rate>[/<channels>]`, the form used in logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.encoding, self.clock_rate)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// An `a=fmtp` entry: format parameters of a payload type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmtp {
    /// The RTP payload type (0-127).
    pub payload_type: u8,
    /// The parameters, verbatim (`0-16` for telephone-events, RFC 4733 §7.1.1).
    pub params: String,
}

/// An `a=rtcp` attribute: where the writer receives RTCP when it is not on port + 1 (RFC 3605).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the connection address.
    pub address: Option<Address>,
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn audio() -> MediaDescription {
        let mut m = MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP");
        m.formats = ["0", "8", "101", "x", "200", "8"].map(str::to_owned).to_vec();
        m.attributes.push(Attribute::RtpMap(RtpMap::new(101, "telephone-event", 8000)));
        m.attributes.push(Attribute::Fmtp(Fmtp { payload_type: 101, params: "0-16".to_owned() }));
        m.attributes.push(Attribute::other("label", Some("1")));
        m
    }

    #[test]
    fn payload_types_skip_non_rtp_formats_and_repeats() {
        assert_eq!(audio().payload_types().collect::<Vec<_>>(), vec![0, 8, 101]);
    }

    #[test]
    fn encodings_come_from_rtpmap_or_the_static_table() {
        let m = audio();
        assert_eq!(m.encoding(0).map(|e| e.encoding), Some("PCMU".to_owned()));
        assert_eq!(m.encoding(101).map(|e| e.to_string()), Some("telephone-event/8000".to_owned()));
        assert_eq!(m.encoding(96), None);
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.fmtp(0), None);
    }

    #[test]
    fn set_direction_replaces_in_place() {
        let mut m = audio();
        m.set_direction(Direction::SendOnly);
        assert_eq!(m.attributes.last(), Some(&Attribute::Direction(Direction::SendOnly)));
        m.attributes.push(Attribute::RtcpMux);
        m.attributes.push(Attribute::Direction(Direction::Inactive));
        m.set_direction(Direction::SendRecv);
        let directions: Vec<_> = m.attributes.iter().filter(|a| matches!(a, Attribute::Direction(_))).collect();
        assert_eq!(directions, vec![&Attribute::Direction(Direction::SendRecv)]);
        assert_eq!(m.attributes[3], Attribute::Direction(Direction::SendRecv));
    }

    #[test]
    fn effective_direction_and_legacy_hold() {
        let origin = Origin { username: "-".to_owned(), session_id: 1, session_version: 1, address: Address::Ip(Ipv4Addr::LOCALHOST.into()) };
        let mut sdp = SessionDescription::new(origin);
        sdp.connection = Some(Address::Ip(Ipv4Addr::new(192, 0, 2, 1).into()));
        sdp.attributes.push(Attribute::Direction(Direction::RecvOnly));
        sdp.media.push(audio());
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::RecvOnly, "session level applies");
        sdp.media[0].set_direction(Direction::SendRecv);
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendRecv, "media level overrides");
        sdp.media[0].connection = Some(Address::Ip(Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendOnly, "legacy hold");
        sdp.media[0].connection = Some(Address::Ip(Ipv6Addr::UNSPECIFIED.into()));
        assert_eq!(sdp.direction_of(&sdp.media[0]), Direction::SendOnly, "IPv6 legacy hold");
    }

    #[test]
    fn addresses_print_with_their_type() {
        assert_eq!(Address::Ip(Ipv6Addr::LOCALHOST.into()).to_string(), "IN IP6 ::1");
        let name = Address::Name { addr_type: AddrType::Ip4, name: "pbx.example.com".to_owned() };
        assert_eq!(name.to_string(), "IN IP4 pbx.example.com");
        assert_eq!(name.ip(), None);
        assert!(!name.is_unspecified());
        assert_eq!(MediaKind::from_token("image"), MediaKind::Image);
        assert_eq!(MediaKind::from_token("Audio").as_str(), "Audio");
    }
}
