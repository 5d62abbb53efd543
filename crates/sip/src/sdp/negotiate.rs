//! The offer/answer model (RFC 3264) for a G.711 voice gateway.
//!
//! The gateway accepts exactly one audio stream over plain RTP (`RTP/AVP`), with one G.711 law,
//! RFC 4733 telephone-events when the peer offers them (losing them loses DTMF) and RFC 3389
//! comfort noise when the peer offers it. Every other stream is rejected with port 0, in place,
//! so the answer has as many `m=` lines as the offer (RFC 3264 §6).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::codec::{CN_PAYLOAD_TYPE, Codec, TELEPHONE_EVENT, TELEPHONE_EVENT_PAYLOAD_TYPE, is_comfort_noise, is_telephone_event};
use super::direction::Direction;
use super::model::{Address, Attribute, Fmtp, MediaDescription, MediaKind, Origin, RtpMap, SessionDescription};

/// The packet time when the peer states none (RFC 3551 §4.5: 20 ms is the default for G.711).
pub const DEFAULT_PTIME: Duration = Duration::from_millis(20);

/// The telephone-events we offer: the 16 DTMF events and flash (RFC 4733 §3.2).
const OFFERED_EVENTS: &str = "0-16";

/// Most encodings listed in an error: enough to diagnose, bounded for the logs.
const MAX_LISTED: usize = 16;

/// Our side of a negotiation: what goes into our offers and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address we receive RTP on, written in `o=` and `c=`: the public address when the
    /// gateway is behind NAT.
    pub address: IpAddr,
    /// The port we receive RTP on (RTCP on the next one unless RTCP multiplexing is agreed).
    pub rtp_port: u16,
    /// The codec configured for the phone, chosen whenever the peer offers it.
    pub codec: Codec,
    /// Whether the other G.711 law is acceptable when the peer does not offer `codec`.
    pub fallback: bool,
    /// Whether our offers include telephone-events. Answers always accept the peer's.
    pub telephone_event: bool,
    /// Whether our offers include comfort noise (PT 13). Answers always accept the peer's.
    pub comfort_noise: bool,
    /// Whether RTP and RTCP may share our port (RFC 5761): offered when set, and accepted in an
    /// answer only when set (the media driver must then demultiplex RTCP from RTP).
    pub rtcp_mux: bool,
    /// The packet time we want to receive, written as `a=ptime` in whole milliseconds.
    pub ptime: Duration,
    /// The direction we want (sendrecv, or sendonly while we hold the call); an answer narrows
    /// the offer's mirrored direction by it.
    pub direction: Direction,
    /// Our `o=` session id, constant for the dialog.
    pub session_id: u64,
    /// Our `o=` version: the caller increments it each time our description changes, so that
    /// answers to re-INVITEs carry version + 1 (RFC 3264 §8).
    pub session_version: u64,
}

impl LocalMedia {
    /// Local media with the usual settings: fallback to the other law allowed, telephone-events
    /// and comfort noise offered, no RTCP multiplexing, 20 ms, sendrecv, version 1.
    pub fn new(address: IpAddr, rtp_port: u16, codec: Codec, session_id: u64) -> LocalMedia {
        LocalMedia {
            address,
            rtp_port,
            codec,
            fallback: true,
            telephone_event: true,
            comfort_noise: true,
            rtcp_mux: false,
            ptime: DEFAULT_PTIME,
            direction: Direction::SendRecv,
            session_id,
            session_version: 1,
        }
    }

    /// The codecs we accept, best first.
    pub fn codecs(&self) -> impl Iterator<Item = Codec> {
        std::iter::once(self.codec).chain(self.fallback.then(|| self.codec.other_law()))
    }

    /// The session-level part of our descriptions.
    fn session(&self) -> SessionDescription {
        let address = Address::Ip(self.address);
        let mut sdp = SessionDescription::new(Origin {
            username: "-".to_owned(),
            session_id: self.session_id,
            session_version: self.session_version,
            address: address.clone(),
        });
        sdp.connection = Some(address);
        sdp
    }

    /// Our audio section: `codecs` in order, then telephone-events with their parameters, then
    /// comfort noise, each with an `a=rtpmap` (RFC 3264 §5.1 recommends one even for static
    /// types).
    fn audio(&self, protocol: &str, formats: &Formats, rtcp_mux: bool, direction: Direction) -> MediaDescription {
        let mut m = MediaDescription::new(MediaKind::Audio, self.rtp_port, protocol);
        for &(codec, pt) in &formats.codecs {
            m.formats.push(pt.to_string());
            m.attributes.push(Attribute::RtpMap(codec.rtpmap(pt)));
        }
        if let Some((pt, params)) = &formats.telephone_event {
            m.formats.push(pt.to_string());
            m.attributes.push(Attribute::RtpMap(RtpMap::new(*pt, TELEPHONE_EVENT, Codec::CLOCK_RATE)));
            if let Some(params) = params {
                m.attributes.push(Attribute::Fmtp(Fmtp { payload_type: *pt, params: params.clone() }));
            }
        }
        if let Some(pt) = formats.comfort_noise {
            m.formats.push(pt.to_string());
            m.attributes.push(Attribute::RtpMap(RtpMap::new(pt, super::codec::CN, Codec::CLOCK_RATE)));
        }
        let ms = u32::try_from(self.ptime.as_millis()).unwrap_or(u32::MAX);
        m.attributes.push(Attribute::Ptime(ms));
        if rtcp_mux {
            m.attributes.push(Attribute::RtcpMux);
        }
        m.attributes.push(Attribute::Direction(direction));
        m
    }
}

/// The payload types of an audio section we write.
struct Formats {
    codecs: Vec<(Codec, u8)>,
    /// Payload type and `a=fmtp` parameters.
    telephone_event: Option<(u8, Option<String>)>,
    comfort_noise: Option<u8>,
}

/// The outcome of a negotiation: everything the media session of the call needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The index of the audio stream among the `m=` lines.
    pub media_index: usize,
    /// Where the peer's description says to send RTP. This may be a private or an unspecified
    /// (0.0.0.0, legacy hold) address: it is reported as written, and the driver sends to where
    /// the peer's packets come from once they do (symmetric RTP).
    pub rtp: SocketAddr,
    /// Where to send RTCP: the `a=rtcp` port and address (RFC 3605), the RTP address when RTCP
    /// is multiplexed (RFC 5761), else RTP port + 1 (RFC 3550 §11).
    pub rtcp: SocketAddr,
    /// Whether RTP and RTCP share one port in both directions.
    pub rtcp_mux: bool,
    /// The G.711 law of the call.
    pub codec: Codec,
    /// The payload type that carries it (0 or 8, unless the peer mapped it dynamically).
    pub payload_type: u8,
    /// The payload type of RFC 4733 telephone-events, when both sides have them.
    pub telephone_event: Option<u8>,
    /// The payload type of RFC 3389 comfort noise, when both sides have it.
    pub comfort_noise: Option<u8>,
    /// The packet time to send with: the peer's `a=ptime` (20 ms when absent or 0), never above
    /// its `a=maxptime` (RFC 8866 §6.4, §6.5).
    pub ptime: Duration,
    /// What we may do: send and/or receive.
    pub direction: Direction,
    /// Whether the peer does not want to receive media: it offered or answered `sendonly` or
    /// `inactive`, or a 0.0.0.0 connection address (RFC 3264 §8.4).
    pub peer_holds: bool,
}

/// An answer to an offer: the description to send and what it agrees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Our answer, to send in the response (or the ACK for an offerless INVITE).
    pub sdp: SessionDescription,
    /// What it agrees.
    pub negotiated: Negotiated,
}

/// Why an offer or an answer cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The peer's offer has no audio stream we can accept (answer 488 Not Acceptable Here).
    #[error("no common codec: {0}")]
    NoCommonCodec(Unacceptable),
    /// The chosen stream has no `c=` line at either level (malformed, RFC 8866 §5.7).
    #[error("media stream {media} has no connection address (c=)")]
    NoConnection {
        /// The stream's index among the `m=` lines.
        media: usize,
    },
    /// The chosen stream's connection address is a host name (or a multicast group): a sans-IO
    /// core cannot resolve it, and a telephony peer has no reason to send one.
    #[error("media stream {media} has connection address {name:?}, not an IP address")]
    NotAnIp {
        /// The stream's index among the `m=` lines.
        media: usize,
        /// The address as written (cut to 64 characters).
        name: String,
    },
    /// The answer does not have one `m=` line per offered one (RFC 3264 §6).
    #[error("the answer has {answered} media streams for {offered} offered")]
    MediaCount {
        /// `m=` lines in our offer.
        offered: usize,
        /// `m=` lines in the answer.
        answered: usize,
    },
    /// The answer rejects our audio stream (port 0, or another media type in its place).
    #[error("the answer rejects the audio stream {media}")]
    AnswerRejected {
        /// The stream's index among the `m=` lines.
        media: usize,
    },
    /// The answer's audio stream has none of the codecs we offered.
    #[error("the answer to audio stream {media} has none of our codecs, only {}", list(.answered))]
    AnswerCodec {
        /// The stream's index among the `m=` lines.
        media: usize,
        /// The encodings in the answer (the first 16).
        answered: Vec<String>,
    },
    /// Our own offer has no active `RTP/AVP` audio stream: a bug of the caller.
    #[error("our offer has no audio stream")]
    NoLocalAudio,
}

impl NegotiationError {
    /// The SIP status for an INVITE whose offer fails: 400 Bad Request when the description is
    /// malformed, else 488 Not Acceptable Here (RFC 3261 §21.4.26). For a failed answer the call
    /// is ended instead; the status can go in a Reason header.
    pub fn sip_status(&self) -> u16 {
        match self {
            NegotiationError::NoConnection { .. } => 400,
            _ => 488,
        }
    }
}

/// Why no stream of an offer is acceptable, most specific first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unacceptable {
    /// No `m=audio` line at all (video only, T.38 fax only...).
    #[error("the offer has no audio stream")]
    NoAudio,
    /// Every audio stream is disabled with port 0.
    #[error("every audio stream of the offer has port 0")]
    AudioDisabled,
    /// Audio only over a transport we do not speak, such as `RTP/SAVP` (SRTP); the first one.
    #[error("audio is offered over {0} only, we speak RTP/AVP")]
    Profile(String),
    /// Audio over RTP/AVP, but with none of our codecs.
    #[error("the offer has {}, we accept {}", list(.offered), list(.accepted))]
    Codecs {
        /// The offered encodings (`GSM/8000`, `opus/48000/2`...), or bare payload types that
        /// have no `a=rtpmap`; the first 16 distinct ones.
        offered: Vec<String>,
        /// The codecs we would have accepted.
        accepted: Vec<Codec>,
    },
}

fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "no codec".to_owned();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Answers a peer's offer (RFC 3264 §6): an INVITE's, or a re-INVITE's for hold, resume or a
/// codec change.
///
/// The first audio stream over `RTP/AVP` that has `local.codec` (or, when
/// `local.fallback`, the other law) is accepted; the preferred law wins even when the offer
/// lists the other first. The answer lists the codec with the offerer's payload type, the
/// offerer's telephone-event payload type and `a=fmtp`, comfort noise if offered, our
/// `a=ptime`, and the mirrored direction (RFC 3264 §6.1: `sendonly` is answered `recvonly`).
/// Every other stream is rejected with port 0 in its place.
///
/// # Errors
///
/// [`NegotiationError::NoCommonCodec`] when no audio stream is acceptable, with the reason
/// (answer 488); [`NegotiationError::NoConnection`] or [`NegotiationError::NotAnIp`] when the
/// chosen stream has no usable address.
pub fn answer(offer: &SessionDescription, local: &LocalMedia) -> Result<Answer, NegotiationError> {
    let accepted: Vec<Codec> = local.codecs().collect();
    let mut survey = Survey::default();
    let mut chosen = None;
    for (index, m) in offer.media.iter().enumerate() {
        if m.kind != MediaKind::Audio {
            continue;
        }
        survey.audio = true;
        if m.is_rejected() {
            continue;
        }
        if !m.is_rtp_avp() {
            survey.profile.get_or_insert_with(|| m.protocol.clone());
            continue;
        }
        survey.rtp_audio = true;
        if let Some(choice) = choose(m, &accepted) {
            chosen = Some((index, choice));
            break;
        }
        survey.note_formats(m);
    }
    let Some((index, (codec, payload_type))) = chosen else {
        return Err(NegotiationError::NoCommonCodec(survey.reason(accepted)));
    };
    let m = &offer.media[index];
    let telephone_event = find_payload_type(m, is_telephone_event);
    let comfort_noise = find_payload_type(m, is_comfort_noise);
    let rtcp_mux = local.rtcp_mux && m.rtcp_mux();
    let (rtp, rtcp) = remote(offer, index, rtcp_mux)?;
    let peer = offer.direction_of(m);
    let direction = peer.answer().intersect(local.direction);
    let negotiated = Negotiated {
        media_index: index,
        rtp,
        rtcp,
        rtcp_mux,
        codec,
        payload_type,
        telephone_event,
        comfort_noise,
        ptime: packet_time(offer, m),
        direction,
        peer_holds: !peer.receives(),
    };
    let formats =
        Formats { codecs: vec![(codec, payload_type)], telephone_event: telephone_event.map(|pt| (pt, m.fmtp(pt).map(str::to_owned))), comfort_noise };
    let mut sdp = local.session();
    for (i, offered) in offer.media.iter().enumerate() {
        if i == index {
            sdp.media.push(local.audio(&offered.protocol, &formats, rtcp_mux, direction));
        } else {
            sdp.media.push(rejected(offered));
        }
    }
    Ok(Answer { sdp, negotiated })
}

/// Our offer for an outbound call (RFC 3264 §5): one audio stream with `local.codec`, then the
/// other law if `local.fallback`, then telephone-events on payload type 101 with events 0-16 if
/// `local.telephone_event`, then comfort noise on 13 if `local.comfort_noise`, `a=ptime`,
/// `a=rtcp-mux` if `local.rtcp_mux`, and `local.direction`.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    let formats = Formats {
        codecs: local.codecs().map(|c| (c, c.payload_type())).collect(),
        telephone_event: local.telephone_event.then(|| (TELEPHONE_EVENT_PAYLOAD_TYPE, Some(OFFERED_EVENTS.to_owned()))),
        comfort_noise: local.comfort_noise.then_some(CN_PAYLOAD_TYPE),
    };
    let mut sdp = local.session();
    sdp.media.push(local.audio("RTP/AVP", &formats, local.rtcp_mux, local.direction));
    sdp
}

/// Reads the answer to our offer, from a 183 Session Progress (early media) or a 2xx.
///
/// The answer must have one `m=` line per offered one, accept our audio stream and pick one of
/// the codecs we offered; we send with the answer's payload types (RFC 3264 §6.1 lets the
/// answerer choose its own numbers). Telephone-events and comfort noise count only when both
/// sides list them. Our direction is the answer's, mirrored, within what we offered.
///
/// # Errors
///
/// [`NegotiationError::MediaCount`], [`NegotiationError::AnswerRejected`] or
/// [`NegotiationError::AnswerCodec`] when the answer does not fit the offer (end the call);
/// [`NegotiationError::NoConnection`] or [`NegotiationError::NotAnIp`] when it has no usable
/// address; [`NegotiationError::NoLocalAudio`] when `offer` was not one of ours.
pub fn negotiate_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<Negotiated, NegotiationError> {
    if offer.media.len() != answer.media.len() {
        return Err(NegotiationError::MediaCount { offered: offer.media.len(), answered: answer.media.len() });
    }
    let (index, ours) =
        offer.media.iter().enumerate().find(|(_, m)| m.kind == MediaKind::Audio && !m.is_rejected() && m.is_rtp_avp()).ok_or(NegotiationError::NoLocalAudio)?;
    let theirs = &answer.media[index];
    if theirs.kind != MediaKind::Audio || theirs.is_rejected() {
        return Err(NegotiationError::AnswerRejected { media: index });
    }
    let offered: Vec<Codec> = ours.payload_types().filter_map(|pt| ours.encoding(pt).as_ref().and_then(Codec::from_rtpmap)).collect();
    let (codec, payload_type) = theirs
        .payload_types()
        .find_map(|pt| {
            let codec = theirs.encoding(pt).as_ref().and_then(Codec::from_rtpmap)?;
            offered.contains(&codec).then_some((codec, pt))
        })
        .ok_or_else(|| NegotiationError::AnswerCodec { media: index, answered: encodings(theirs) })?;
    let both = |is: fn(&RtpMap) -> bool| find_payload_type(ours, is).and(find_payload_type(theirs, is));
    let rtcp_mux = ours.rtcp_mux() && theirs.rtcp_mux();
    let (rtp, rtcp) = remote(answer, index, rtcp_mux)?;
    let peer = answer.direction_of(theirs);
    Ok(Negotiated {
        media_index: index,
        rtp,
        rtcp,
        rtcp_mux,
        codec,
        payload_type,
        telephone_event: both(is_telephone_event),
        comfort_noise: both(is_comfort_noise),
        ptime: packet_time(answer, theirs),
        direction: peer.answer().intersect(offer.direction_of(ours)),
        peer_holds: !peer.receives(),
    })
}

/// What the audio streams of an unacceptable offer had, to say why precisely.
#[derive(Default)]
struct Survey {
    audio: bool,
    rtp_audio: bool,
    profile: Option<String>,
    offered: Vec<String>,
}

impl Survey {
    fn note_formats(&mut self, m: &MediaDescription) {
        for pt in m.payload_types() {
            if self.offered.len() >= MAX_LISTED {
                return;
            }
            let name = m.encoding(pt).map_or_else(|| pt.to_string(), |e| excerpt(&e.to_string()));
            if !self.offered.contains(&name) {
                self.offered.push(name);
            }
        }
    }

    fn reason(self, accepted: Vec<Codec>) -> Unacceptable {
        if self.rtp_audio {
            Unacceptable::Codecs { offered: self.offered, accepted }
        } else if let Some(profile) = self.profile {
            Unacceptable::Profile(excerpt(&profile))
        } else if self.audio {
            Unacceptable::AudioDisabled
        } else {
            Unacceptable::NoAudio
        }
    }
}

/// Peer text copied into an error, cut so that a hostile peer cannot fill the logs.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    text.chars().take(MAX_CHARS).collect()
}

/// The best of `accepted` that the stream offers, with the payload type it is offered on.
fn choose(m: &MediaDescription, accepted: &[Codec]) -> Option<(Codec, u8)> {
    accepted.iter().find_map(|&codec| m.payload_types().find(|&pt| m.encoding(pt).as_ref().and_then(Codec::from_rtpmap) == Some(codec)).map(|pt| (codec, pt)))
}

/// The first payload type of the stream whose encoding satisfies `is`.
fn find_payload_type(m: &MediaDescription, is: fn(&RtpMap) -> bool) -> Option<u8> {
    m.payload_types().find(|&pt| m.encoding(pt).is_some_and(|e| is(&e)))
}

/// The encodings of a stream, for an error (at most [`MAX_LISTED`]).
fn encodings(m: &MediaDescription) -> Vec<String> {
    m.payload_types().take(MAX_LISTED).map(|pt| m.encoding(pt).map_or_else(|| pt.to_string(), |e| excerpt(&e.to_string()))).collect()
}

/// Where to send RTP and RTCP for stream `index` of the peer's description.
fn remote(sdp: &SessionDescription, index: usize, rtcp_mux: bool) -> Result<(SocketAddr, SocketAddr), NegotiationError> {
    let m = &sdp.media[index];
    let address = sdp.connection_of(m).ok_or(NegotiationError::NoConnection { media: index })?;
    let ip = match address {
        Address::Ip(ip) => *ip,
        Address::Name { name, .. } => return Err(NegotiationError::NotAnIp { media: index, name: excerpt(name) }),
    };
    let rtp = SocketAddr::new(ip, m.port);
    let rtcp = match m.rtcp() {
        _ if rtcp_mux => rtp,
        // An a=rtcp address that is a host name cannot be used; the connection address is the
        // best guess.
        Some(r) => SocketAddr::new(r.address.as_ref().and_then(Address::ip).unwrap_or(ip), r.port),
        // Port 65535 has no successor; RTCP then shares it, which is what a peer that picked
        // such a port can expect at best.
        None => SocketAddr::new(ip, m.port.checked_add(1).unwrap_or(m.port)),
    };
    Ok((rtp, rtcp))
}

/// The packet time the writer of `sdp` wants to receive on `m`: its `a=ptime` (media level, else
/// session level; 20 ms when absent or 0), capped by its `a=maxptime`.
fn packet_time(sdp: &SessionDescription, m: &MediaDescription) -> Duration {
    let session = |pick: fn(&Attribute) -> Option<u32>| sdp.attributes.iter().find_map(pick);
    let ptime = m.ptime().or_else(|| {
        session(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    });
    let max = m.max_ptime().or_else(|| {
        session(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    });
    let ptime = ptime.filter(|ms| *ms > 0).map_or(DEFAULT_PTIME, |ms| Duration::from_millis(u64::from(ms)));
    match max.filter(|ms| *ms > 0) {
        Some(max) => ptime.min(Duration::from_millis(u64::from(max))),
        None => ptime,
    }
}

/// A rejected stream in an answer: port 0, the offered type, protocol and formats (RFC 3264 §6
/// requires at least one format; they are ignored), nothing else.
fn rejected(offered: &MediaDescription) -> MediaDescription {
    let mut m = MediaDescription::new(offered.kind.clone(), 0, &offered.protocol);
    m.formats = offered.formats.clone();
    m
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::super::examples::{self, parsed, wire};
    use super::*;

    const OURS: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

    fn local(codec: Codec) -> LocalMedia {
        LocalMedia::new(IpAddr::V4(OURS), 40000, codec, 42)
    }

    fn answered(text: &str, local: &LocalMedia) -> Answer {
        answer(&parsed(text), local).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn at(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
    }

    /// The lines of our answer's accepted audio section, without the `m=` line.
    fn audio_attributes(a: &Answer) -> Vec<String> {
        a.sdp.media[a.negotiated.media_index].attributes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn sipp_uac_is_answered_with_the_fallback_law() {
        let a = answered(examples::SIPP_UAC, &local(Codec::Pcma));
        assert_eq!(
            a.negotiated,
            Negotiated {
                media_index: 0,
                rtp: at([127, 0, 0, 1], 6000),
                rtcp: at([127, 0, 0, 1], 6001),
                rtcp_mux: false,
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event: None,
                comfort_noise: None,
                ptime: DEFAULT_PTIME,
                direction: Direction::SendRecv,
                peer_holds: false,
            }
        );
        let expected = "v=0\no=- 42 1 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n\
                        m=audio 40000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=ptime:20\na=sendrecv\n";
        assert_eq!(a.sdp.to_string(), wire(expected));
    }

    #[test]
    fn preferred_law_wins_over_the_offer_order() {
        // Asterisk lists µ-law first; a phone configured for A-law still gets A-law.
        let a = answered(examples::ASTERISK, &local(Codec::Pcma));
        assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (Codec::Pcma, 8));
        assert_eq!(a.sdp.media[0].formats, vec!["8", "101"]);
        // FreeSWITCH lists opus, G.722 and µ-law before A-law.
        let a = answered(examples::FREESWITCH, &local(Codec::Pcma));
        assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (Codec::Pcma, 8));
        // And the other way round.
        let a = answered(examples::SIPP_UAC_PCAP, &local(Codec::Pcmu));
        assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (Codec::Pcma, 8), "fallback");
        let a = answered(examples::ASTERISK, &local(Codec::Pcmu));
        assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (Codec::Pcmu, 0));
    }

    #[test]
    fn without_fallback_the_other_law_is_not_acceptable() {
        let strict = LocalMedia { fallback: false, ..local(Codec::Pcma) };
        let err = answer(&parsed(examples::SIPP_UAC), &strict).expect_err("µ-law only");
        assert_eq!(err, NegotiationError::NoCommonCodec(Unacceptable::Codecs { offered: vec!["PCMU/8000".to_owned()], accepted: vec![Codec::Pcma] }));
        assert_eq!(err.sip_status(), 488);
        assert_eq!(err.to_string(), "no common codec: the offer has PCMU/8000, we accept PCMA");
    }

    #[test]
    fn opus_and_gsm_only_is_488_with_what_was_offered() {
        let err = answer(&parsed(examples::OPUS_GSM), &local(Codec::Pcma)).expect_err("no G.711");
        assert_eq!(
            err,
            NegotiationError::NoCommonCodec(Unacceptable::Codecs {
                offered: vec!["opus/48000/2".into(), "GSM/8000".into(), "telephone-event/8000".into()],
                accepted: vec![Codec::Pcma, Codec::Pcmu],
            })
        );
        assert_eq!(err.sip_status(), 488);
        assert!(err.to_string().contains("opus/48000/2, GSM/8000"), "{err}");
    }

    #[test]
    fn dynamic_payload_types_without_rtpmap_are_named_by_number() {
        let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 97 3\n";
        let err = answer(&parsed(text), &local(Codec::Pcma)).expect_err("no G.711");
        let NegotiationError::NoCommonCodec(Unacceptable::Codecs { offered, .. }) = err else { panic!("{err}") };
        assert_eq!(offered, vec!["97", "GSM/8000"]);
    }

    #[test]
    fn telephone_event_is_echoed_with_the_offerers_payload_type_and_fmtp() {
        let cases = [
            (examples::ASTERISK, 101, Some("0-16")),
            (examples::AUDIO_VIDEO, 96, Some("0-15")),
            (examples::SIPP_UAC_PCAP, 101, Some("0-11,16")),
            (examples::BARESIP, 101, Some("0-15")),
            // Two telephone-event entries: the 8 kHz one goes with G.711, not the 48 kHz one.
            (examples::FREESWITCH, 101, Some("0-16")),
            // No fmtp means events 0-15 (RFC 4733 §7.1.1); nothing is added.
            (examples::INACTIVE_HOLD, 101, None),
        ];
        for (text, pt, fmtp) in cases {
            // Even when we would not offer telephone-events ourselves: dropping them loses DTMF.
            let quiet = LocalMedia { telephone_event: false, ..local(Codec::Pcma) };
            let a = answered(text, &quiet);
            assert_eq!(a.negotiated.telephone_event, Some(pt));
            let m = &a.sdp.media[a.negotiated.media_index];
            assert_eq!(m.formats.get(1), Some(&pt.to_string()));
            assert_eq!(m.rtpmap(pt), Some(&RtpMap::new(pt, "telephone-event", 8000)));
            assert_eq!(m.fmtp(pt), fmtp);
        }
        let a = answered(examples::SIPP_UAC, &local(Codec::Pcmu));
        assert_eq!(a.negotiated.telephone_event, None);
        assert_eq!(a.sdp.media[0].formats, vec!["0"], "nothing that was not offered");
    }

    #[test]
    fn comfort_noise_is_echoed_when_offered() {
        let quiet = LocalMedia { comfort_noise: false, ..local(Codec::Pcma) };
        let a = answered(examples::FREESWITCH, &quiet);
        assert_eq!(a.negotiated.comfort_noise, Some(CN_PAYLOAD_TYPE));
        assert_eq!(a.sdp.media[0].formats, vec!["8", "101", "13"]);
        assert_eq!(
            audio_attributes(&a),
            vec!["rtpmap:8 PCMA/8000", "rtpmap:101 telephone-event/8000", "fmtp:101 0-16", "rtpmap:13 CN/8000", "ptime:20", "sendrecv"]
        );
        assert_eq!(answered(examples::ASTERISK, &local(Codec::Pcma)).negotiated.comfort_noise, None);
    }

    #[test]
    fn video_is_rejected_with_port_0_in_its_place() {
        let a = answered(examples::AUDIO_VIDEO, &local(Codec::Pcma));
        assert_eq!(a.sdp.media.len(), 2);
        assert_eq!((a.negotiated.media_index, a.sdp.media[0].port), (0, 40000));
        let video = &a.sdp.media[1];
        assert_eq!((&video.kind, video.port, video.protocol.as_str()), (&MediaKind::Video, 0, "RTP/AVP"));
        assert_eq!(video.formats, vec!["97"]);
        assert!(video.attributes.is_empty() && video.connection.is_none());
        assert_eq!(a.negotiated.rtp, at([198, 51, 100, 7], 7078), "session-level c= for audio");

        // Video first: the audio answer moves to index 1, the rejection stays at 0.
        let mut offer = parsed(examples::AUDIO_VIDEO);
        offer.media.swap(0, 1);
        let a = answer(&offer, &local(Codec::Pcma)).expect("audio offered");
        assert_eq!(a.negotiated.media_index, 1);
        assert_eq!((a.sdp.media[0].kind.clone(), a.sdp.media[0].port), (MediaKind::Video, 0));
        assert_eq!((a.sdp.media[1].kind.clone(), a.sdp.media[1].port), (MediaKind::Audio, 40000));
        assert!(a.sdp.to_string().contains("m=video 0 RTP/AVP 97\r\nm=audio 40000 RTP/AVP 8 96\r\n"));
    }

    #[test]
    fn the_first_acceptable_audio_stream_is_chosen_and_others_rejected() {
        let a = answered(examples::TWO_AUDIO, &local(Codec::Pcma));
        assert_eq!(a.negotiated.media_index, 1);
        assert_eq!(a.negotiated.rtp, at([192, 0, 2, 30], 5006));
        // A static type offered without rtpmap is answered with one.
        assert_eq!(audio_attributes(&a)[0], "rtpmap:8 PCMA/8000");
        let srtp = &a.sdp.media[0];
        assert_eq!((srtp.port, srtp.protocol.as_str(), srtp.formats.len()), (0, "RTP/SAVP", 2));

        // Two acceptable audio streams: only the first is accepted.
        let mut offer = parsed(examples::ASTERISK);
        offer.media.push(offer.media[0].clone());
        let a = answer(&offer, &local(Codec::Pcma)).expect("audio");
        assert_eq!(a.sdp.media.iter().map(|m| m.port).collect::<Vec<_>>(), vec![40000, 0]);
    }

    #[test]
    fn g711_on_a_dynamic_payload_type_keeps_that_type() {
        let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
                    m=audio 4000 RTP/AVP 100\na=rtpmap:100 pcmu/8000\n";
        let a = answered(text, &local(Codec::Pcma));
        assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (Codec::Pcmu, 100));
        assert_eq!(audio_attributes(&a)[0], "rtpmap:100 PCMU/8000");
    }

    #[test]
    fn direction_is_answered_per_rfc3264_for_every_case() {
        let cases = [
            (examples::ASTERISK, Direction::SendRecv, Direction::SendRecv, false),
            (examples::SENDONLY_HOLD, Direction::SendRecv, Direction::RecvOnly, true),
            (examples::RECVONLY, Direction::SendRecv, Direction::SendOnly, false),
            (examples::INACTIVE_HOLD, Direction::SendRecv, Direction::Inactive, true),
            (examples::LEGACY_HOLD, Direction::SendRecv, Direction::RecvOnly, true),
            // While we hold, a sendrecv offer is answered sendonly, and a recvonly one inactive.
            (examples::ASTERISK, Direction::SendOnly, Direction::SendOnly, false),
            (examples::RECVONLY, Direction::RecvOnly, Direction::Inactive, false),
        ];
        for (text, ours, expected, peer_holds) in cases {
            let a = answered(text, &LocalMedia { direction: ours, ..local(Codec::Pcma) });
            assert_eq!(a.negotiated.direction, expected, "{text}");
            assert_eq!(a.negotiated.peer_holds, peer_holds, "{text}");
            let m = &a.sdp.media[0];
            assert_eq!(m.direction(), Some(expected), "{text}");
            assert_eq!(a.sdp.direction_of(m), expected, "our answer says exactly that");
        }
    }

    #[test]
    fn legacy_hold_reports_the_address_as_written() {
        let a = answered(examples::LEGACY_HOLD, &local(Codec::Pcma));
        assert_eq!(a.negotiated.rtp, at([0, 0, 0, 0], 17890));
        assert!(a.sdp.to_string().contains("a=recvonly\r\n"));
    }

    #[test]
    fn private_addresses_are_reported_as_written() {
        let a = answered(examples::ASTERISK, &local(Codec::Pcma));
        assert_eq!(a.negotiated.rtp, at([10, 20, 30, 40], 17890));
        assert_eq!(a.negotiated.rtcp, at([10, 20, 30, 40], 17891));
    }

    #[test]
    fn rtcp_port_and_address_rules() {
        // a=rtcp with an address (RFC 3605).
        let a = answered(examples::FREESWITCH, &local(Codec::Pcma));
        assert_eq!((a.negotiated.rtp, a.negotiated.rtcp), (at([203, 0, 113, 20], 24612), at([203, 0, 113, 21], 24613)));
        // rtcp-mux offered and accepted: one port, and the answer says so.
        let mux = LocalMedia { rtcp_mux: true, ..local(Codec::Pcma) };
        let a = answered(examples::BARESIP_MUX, &mux);
        assert!(a.negotiated.rtcp_mux);
        assert_eq!(a.negotiated.rtcp, a.negotiated.rtp);
        assert!(a.sdp.media[0].rtcp_mux());
        // rtcp-mux offered, but our media driver does not demultiplex: port + 1, no a=rtcp-mux.
        let a = answered(examples::BARESIP_MUX, &local(Codec::Pcma));
        assert!(!a.negotiated.rtcp_mux && !a.sdp.media[0].rtcp_mux());
        assert_eq!(a.negotiated.rtcp, at([192, 0, 2, 2], 3029));
        // We accept mux, the peer does not offer it.
        let a = answered(examples::BARESIP, &mux);
        assert!(!a.negotiated.rtcp_mux && !a.sdp.media[0].rtcp_mux());
        // a=rtcp without an address uses the connection address.
        let text = examples::SIPP_UAC.replace("a=rtpmap:0 PCMU/8000\n", "a=rtpmap:0 PCMU/8000\na=rtcp:7000\n");
        assert_eq!(answered(&text, &mux).negotiated.rtcp, at([127, 0, 0, 1], 7000));
        // The highest port has no successor.
        let text = examples::SIPP_UAC.replace("6000", "65535");
        assert_eq!(answered(&text, &mux).negotiated.rtcp, at([127, 0, 0, 1], 65535));
    }

    #[test]
    fn packet_time_follows_ptime_and_maxptime() {
        let ms = |text: &str| answered(text, &local(Codec::Pcma)).negotiated.ptime.as_millis();
        assert_eq!(ms(examples::SENDONLY_HOLD), 30);
        assert_eq!(ms(examples::ASTERISK), 20);
        assert_eq!(ms(examples::SIPP_UAC), 20, "default");
        assert_eq!(ms(&examples::ASTERISK.replace("a=maxptime:150", "a=maxptime:10")), 10);
        assert_eq!(ms(&examples::ASTERISK.replace("a=ptime:20", "a=ptime:0")), 20);
        assert_eq!(ms(&examples::SIPP_UAC.replace("t=0 0\n", "t=0 0\na=ptime:40\n")), 40, "session level");
        let slow = LocalMedia { ptime: Duration::from_millis(30), ..local(Codec::Pcma) };
        assert!(answered(examples::ASTERISK, &slow).sdp.to_string().contains("a=ptime:30\r\n"));
    }

    #[test]
    fn ipv6_offer_and_answer() {
        let ours: Ipv6Addr = "2001:db8::1".parse().expect("literal");
        let six = LocalMedia::new(IpAddr::V6(ours), 40000, Codec::Pcma, 42);
        let a = answered(examples::IPV6, &six);
        let peer: Ipv6Addr = "2001:db8::10".parse().expect("literal");
        let rtcp: Ipv6Addr = "2001:db8::11".parse().expect("literal");
        assert_eq!(a.negotiated.rtp, SocketAddr::new(peer.into(), 49170));
        assert_eq!(a.negotiated.rtcp, SocketAddr::new(rtcp.into(), 49171));
        let text = a.sdp.to_string();
        assert!(text.contains("o=- 42 1 IN IP6 2001:db8::1\r\n") && text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
    }

    #[test]
    fn offers_without_usable_audio_say_why() {
        let reason = |text: &str| match answer(&parsed(text), &local(Codec::Pcma)) {
            Err(NegotiationError::NoCommonCodec(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(examples::FAX), Unacceptable::NoAudio);
        assert_eq!(reason(&examples::SIPP_UAC.replace("m=audio 6000", "m=audio 0")), Unacceptable::AudioDisabled);
        let srtp_only = examples::TWO_AUDIO.replace("m=audio 5006", "m=audio 0");
        assert_eq!(reason(&srtp_only), Unacceptable::Profile("RTP/SAVP".to_owned()));
        let video_only = examples::AUDIO_VIDEO.replace("m=audio 7078", "m=audio 0");
        assert_eq!(reason(&video_only), Unacceptable::AudioDisabled);
        // A plain stream with the wrong codecs says more than a disabled or SRTP one.
        let mixed = examples::TWO_AUDIO.replace("RTP/AVP 3 0 8", "RTP/AVP 3");
        assert!(matches!(reason(&mixed), Unacceptable::Codecs { .. }));
        for text in [examples::FAX, &srtp_only] {
            let err = answer(&parsed(text), &local(Codec::Pcma)).expect_err("unacceptable");
            assert_eq!(err.sip_status(), 488);
        }
        assert_eq!(
            NegotiationError::NoCommonCodec(Unacceptable::Profile("RTP/SAVP".into())).to_string(),
            "no common codec: audio is offered over RTP/SAVP only, we speak RTP/AVP"
        );
    }

    #[test]
    fn hostile_offers_give_bounded_errors() {
        // A 64 KB-class offer: thousands of repeated formats, long encoding names, many streams.
        let mut text = String::from("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n");
        for stream in 0..50 {
            let formats: Vec<String> = (0..2000).map(|i| (96 + i % 32).to_string()).collect();
            text.push_str(&format!("m=audio {} RTP/AVP {}\n", 4000 + stream, formats.join(" ")));
            for pt in 96..128 {
                text.push_str(&format!("a=rtpmap:{pt} s{stream}p{pt}{}/8000\n", "x".repeat(300)));
            }
        }
        let err = answer(&parsed(&text), &local(Codec::Pcma)).expect_err("no G.711");
        let NegotiationError::NoCommonCodec(Unacceptable::Codecs { offered, .. }) = &err else { panic!("{err}") };
        assert_eq!(offered.len(), 16);
        assert!(offered.iter().all(|name| name.chars().count() <= 64));
        assert!(err.to_string().len() < 16 * 70 + 100, "{} bytes", err.to_string().len());

        let long_host = examples::SIPP_UAC.replace("c=IN IP4 127.0.0.1", &format!("c=IN IP4 {}", "h".repeat(5000)));
        let err = answer(&parsed(&long_host), &local(Codec::Pcma)).expect_err("host name");
        assert!(err.to_string().len() < 200);
    }

    #[test]
    fn unusable_connection_addresses() {
        let no_c = examples::SIPP_UAC.replace("c=IN IP4 127.0.0.1\n", "");
        let err = answer(&parsed(&no_c), &local(Codec::Pcma)).expect_err("no c=");
        assert_eq!((err.clone(), err.sip_status()), (NegotiationError::NoConnection { media: 0 }, 400));
        let named = examples::SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 media.example.com");
        let err = answer(&parsed(&named), &local(Codec::Pcma)).expect_err("host name");
        assert_eq!(err, NegotiationError::NotAnIp { media: 0, name: "media.example.com".to_owned() });
        assert_eq!(err.sip_status(), 488);
    }

    #[test]
    fn answer_origin_carries_the_callers_id_and_version() {
        let mut ours = local(Codec::Pcma);
        let mut versions = Vec::new();
        for offer in [examples::ASTERISK, examples::SENDONLY_HOLD, examples::ASTERISK] {
            let a = answered(offer, &ours);
            versions.push((a.sdp.origin.session_id, a.sdp.origin.session_version));
            ours.session_version += 1;
        }
        assert_eq!(versions, vec![(42, 1), (42, 2), (42, 3)]);
    }

    #[test]
    fn our_offer_lists_preferred_law_fallback_events_and_cn() {
        let expected = "v=0\no=- 42 1 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n\
                        m=audio 40000 RTP/AVP 8 0 101 13\na=rtpmap:8 PCMA/8000\na=rtpmap:0 PCMU/8000\n\
                        a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=rtpmap:13 CN/8000\n\
                        a=ptime:20\na=sendrecv\n";
        assert_eq!(offer(&local(Codec::Pcma)).to_string(), wire(expected));
        let minimal =
            LocalMedia { fallback: false, telephone_event: false, comfort_noise: false, rtcp_mux: true, direction: Direction::SendOnly, ..local(Codec::Pcmu) };
        let expected = "v=0\no=- 42 1 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n\
                        m=audio 40000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=ptime:20\na=rtcp-mux\na=sendonly\n";
        assert_eq!(offer(&minimal).to_string(), wire(expected));
    }

    #[test]
    fn reads_sipps_uas_answer() {
        // `sipp -sd uas` answers µ-law only, with no telephone-events.
        let ours = offer(&local(Codec::Pcma));
        let n = negotiate_answer(&ours, &parsed(examples::SIPP_UAC)).expect("valid answer");
        assert_eq!((n.codec, n.payload_type, n.telephone_event, n.comfort_noise), (Codec::Pcmu, 0, None, None));
        assert_eq!((n.rtp, n.rtcp), (at([127, 0, 0, 1], 6000), at([127, 0, 0, 1], 6001)));
        assert_eq!((n.direction, n.peer_holds), (Direction::SendRecv, false));
    }

    #[test]
    fn reads_an_early_media_answer_with_events_and_its_own_payload_types() {
        // A 183 from a carrier that renumbers telephone-events (RFC 3264 §6.1 allows it): we send
        // on the answerer's numbers.
        let ours = offer(&local(Codec::Pcma));
        let answer_183 = "v=0\no=carrier 9 9 IN IP4 198.51.100.20\ns=-\nc=IN IP4 198.51.100.20\nt=0 0\n\
                          m=audio 31000 RTP/AVP 8 100\na=rtpmap:8 PCMA/8000\na=rtpmap:100 telephone-event/8000\n\
                          a=fmtp:100 0-15\na=ptime:30\na=sendrecv\n";
        let n = negotiate_answer(&ours, &parsed(answer_183)).expect("valid answer");
        assert_eq!((n.codec, n.payload_type, n.telephone_event), (Codec::Pcma, 8, Some(100)));
        assert_eq!(n.ptime, Duration::from_millis(30));
        assert_eq!(n.rtp, at([198, 51, 100, 20], 31000));
    }

    #[test]
    fn bad_answers_are_errors() {
        let ours = offer(&LocalMedia { fallback: false, ..local(Codec::Pcma) });
        let two = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
                   m=audio 4000 RTP/AVP 8\nm=video 0 RTP/AVP 97\n";
        assert_eq!(negotiate_answer(&ours, &parsed(two)), Err(NegotiationError::MediaCount { offered: 1, answered: 2 }));
        let rejected = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 0 RTP/AVP 8\n";
        assert_eq!(negotiate_answer(&ours, &parsed(rejected)), Err(NegotiationError::AnswerRejected { media: 0 }));
        let video = rejected.replace("m=audio 0 RTP/AVP 8", "m=video 4000 RTP/AVP 8");
        assert_eq!(negotiate_answer(&ours, &parsed(&video)), Err(NegotiationError::AnswerRejected { media: 0 }));
        // µ-law was not offered (no fallback), GSM never is.
        let other = rejected.replace("m=audio 0 RTP/AVP 8", "m=audio 4000 RTP/AVP 0 3");
        let err = negotiate_answer(&ours, &parsed(&other)).expect_err("not offered");
        assert_eq!(err, NegotiationError::AnswerCodec { media: 0, answered: vec!["PCMU/8000".into(), "GSM/8000".into()] });
        assert_eq!(err.to_string(), "the answer to audio stream 0 has none of our codecs, only PCMU/8000, GSM/8000");
        let mut no_audio = ours.clone();
        no_audio.media[0].port = 0;
        assert_eq!(negotiate_answer(&no_audio, &parsed(rejected)), Err(NegotiationError::NoLocalAudio));
    }

    #[test]
    fn offer_answer_loop_agrees_on_both_sides() {
        for (caller_codec, callee_codec, expected) in
            [(Codec::Pcma, Codec::Pcma, Codec::Pcma), (Codec::Pcmu, Codec::Pcma, Codec::Pcma), (Codec::Pcmu, Codec::Pcmu, Codec::Pcmu)]
        {
            let caller = LocalMedia { rtcp_mux: true, ..local(caller_codec) };
            let callee = LocalMedia { rtcp_mux: true, ..LocalMedia::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 50000, callee_codec, 9) };
            let o = offer(&caller);
            let a = answer(&parsed(&o.to_string()), &callee).expect("compatible");
            let n = negotiate_answer(&o, &parsed(&a.sdp.to_string())).expect("compatible");
            assert_eq!((n.codec, a.negotiated.codec), (expected, expected));
            assert_eq!((n.telephone_event, a.negotiated.telephone_event), (Some(101), Some(101)));
            assert_eq!((n.comfort_noise, a.negotiated.comfort_noise), (Some(13), Some(13)));
            assert_eq!(n.rtp, at([198, 51, 100, 2], 50000));
            assert_eq!(a.negotiated.rtp, at([203, 0, 113, 1], 40000));
            assert!(n.rtcp_mux && a.negotiated.rtcp_mux);
            assert_eq!((n.direction, a.negotiated.direction), (Direction::SendRecv, Direction::SendRecv));
        }
    }

    #[test]
    fn a_sendonly_answer_means_we_only_receive() {
        let ours = offer(&local(Codec::Pcma));
        let text = examples::SENDONLY_HOLD;
        let n = negotiate_answer(&ours, &parsed(text)).expect("valid");
        assert_eq!((n.direction, n.peer_holds), (Direction::RecvOnly, true));
    }
}
