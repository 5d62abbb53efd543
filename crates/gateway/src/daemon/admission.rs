//! Who may call and whether: the gateway's decisions on a new call, as pure functions of its
//! state, so that every refusal is tested without sockets or an endpoint.
//!
//! An INVITE passes, in this order: its source address (a registrar or trunk of ours, else 403),
//! shutdown (503), the number called (404), the gateway's call limit (503), the phone's (486),
//! the phone's handler (480 for `assistant`, not in this build), and its SDP (400 when
//! malformed). Then the core binds the call's ports (503 when none is free) and
//! [`answer_media`] settles the codec (488 when there is none in common). A call placed through
//! the control API passes [`Gate::dial`].

use std::collections::HashSet;
use std::net::IpAddr;

use happ_sip::endpoint::{AccountId, IncomingCall};
use happ_sip::sdp::{self, LocalMedia, Negotiated, SessionDescription};

use super::phones::{Phone, Phones};
use crate::api::{ApiError, DialRequest};
use crate::config::Handler;

/// What the gateway's state says about new calls, when one arrives.
pub struct Gate<'a> {
    /// Addresses INVITEs are taken from: every address our phones' registrars and trunks
    /// resolved to.
    pub allowed: &'a HashSet<IpAddr>,
    /// Shutting down: no new calls.
    pub draining: bool,
    /// The phones.
    pub phones: &'a Phones,
    /// Calls in progress.
    pub calls: usize,
    /// The most calls at once (`calls.max_concurrent`).
    pub max_calls: usize,
}

/// What admission reads of an INVITE.
pub struct Invite<'a> {
    /// Where it came from.
    pub source: IpAddr,
    /// The user parts of its Request-URI and To: the number called.
    pub users: [Option<&'a str>; 2],
    /// Its SDP offer, if any.
    pub sdp: Option<&'a [u8]>,
}

impl<'a> Invite<'a> {
    /// The parts of `call` admission reads.
    pub fn of(call: &'a IncomingCall) -> Invite<'a> {
        Invite { source: call.source.ip(), users: [call.request_uri.user.as_deref(), call.to.uri.user.as_deref()], sdp: call.sdp.as_deref() }
    }
}

/// The decision on an INVITE.
#[must_use]
#[derive(Debug)]
pub enum Verdict {
    /// Take the call on this phone (its slot), with this offer (none: we offer in the 200).
    Admit {
        /// The phone's slot.
        phone: usize,
        /// The caller's offer.
        offer: Option<SessionDescription>,
    },
    /// Refuse it.
    Refuse(Refusal),
}

/// A call refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The SIP status.
    pub status: u16,
    /// The reason phrase of the response.
    pub reason: String,
    /// Why, for the log.
    pub log: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>, log: impl Into<String>) -> Refusal {
        Refusal { status, reason: reason.into(), log: log.into() }
    }
}

/// A call the control API may place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial<'a> {
    /// The phone's slot.
    pub phone: usize,
    /// Its account at the endpoint.
    pub account: AccountId,
    /// The number to call.
    pub to: &'a str,
}

impl Gate<'_> {
    /// Whether to take an inbound call.
    pub fn inbound(&self, invite: &Invite) -> Verdict {
        if !self.allowed.contains(&invite.source) {
            let log = format!("INVITE from {} which is neither a registrar nor a trunk of ours", invite.source);
            return Verdict::Refuse(Refusal::new(403, "Forbidden", log));
        }
        if self.draining {
            return Verdict::Refuse(Refusal::new(503, "Service Unavailable", "shutting down"));
        }
        let Some((index, phone)) = self.phones.live().find(|(_, p)| invite.users.iter().flatten().any(|u| p.answers_to(u))) else {
            return Verdict::Refuse(Refusal::new(404, "Not Found", "no phone for the number called"));
        };
        if self.calls >= self.max_calls {
            return Verdict::Refuse(Refusal::new(503, "Service Unavailable", "at the gateway's call limit"));
        }
        if phone.config.max_calls.is_some_and(|m| phone.active >= m) {
            return Verdict::Refuse(Refusal::new(486, "Busy Here", "at the phone's call limit"));
        }
        // Where the call bridge plugs in: until then, refuse honestly.
        if phone.handler == Handler::Assistant {
            return Verdict::Refuse(Refusal::new(480, "Temporarily Unavailable", "the assistant handler is not available in this build"));
        }
        match invite.sdp.map(SessionDescription::parse_bytes) {
            Some(Err(e)) => Verdict::Refuse(Refusal::new(400, format!("Bad Request (SDP: {e})"), "malformed SDP offer")),
            Some(Ok(offer)) => Verdict::Admit { phone: index, offer: Some(offer) },
            None => Verdict::Admit { phone: index, offer: None },
        }
    }

    /// Whether the control API may place `request`; `state` names a phone's registration state
    /// (`registered`, `registering`...).
    pub fn dial<'r>(&self, request: &'r DialRequest, state: impl Fn(&Phone) -> &'static str) -> Result<Dial<'r>, ApiError> {
        if self.draining {
            return Err(ApiError::new(503, "shutting down"));
        }
        let to = request.to.trim();
        if to.is_empty() || !to.chars().all(|c| c.is_ascii_alphanumeric() || "+*#-.".contains(c)) {
            return Err(ApiError::new(400, format!("{to:?} is not a number to call")));
        }
        let (index, phone) = self
            .phones
            .live()
            .find(|(_, p)| p.config.phone_number == request.phone || p.config.sip_login == request.phone)
            .ok_or_else(|| ApiError::new(404, format!("no phone {:?}", request.phone)))?;
        let account = phone.account.ok_or_else(|| {
            ApiError::new(503, format!("phone {} has no reachable proxy: {}", request.phone, phone.resolve_error.clone().unwrap_or_default()))
        })?;
        let state = state(phone);
        if phone.config.register && state != "registered" {
            return Err(ApiError::new(503, format!("phone {} is not registered ({state})", request.phone)));
        }
        if self.calls >= self.max_calls {
            return Err(ApiError::new(503, "at the gateway's call limit"));
        }
        if phone.config.max_calls.is_some_and(|m| phone.active >= m) {
            return Err(ApiError::new(409, format!("phone {} is at its call limit", request.phone)));
        }
        Ok(Dial { phone: index, account, to })
    }
}

/// What we send in the 200 of an inbound call.
#[derive(Debug)]
pub struct MediaAnswer {
    /// The SDP of the 200: an answer, or our offer when the INVITE had none.
    pub sdp: SessionDescription,
    /// What the answer settles (none until the ACK answers our offer).
    pub negotiated: Option<Negotiated>,
    /// Our offer, when we made one.
    pub offer: Option<SessionDescription>,
}

/// Answers the caller's `offer` (or offers, without one) from `local`: refused (488, or 400 for
/// an offer without a connection address) when nothing in it is acceptable.
pub fn answer_media(offer: Option<&SessionDescription>, local: &LocalMedia) -> Result<MediaAnswer, Refusal> {
    match offer {
        Some(offer) => match sdp::answer(offer, local) {
            Ok(a) => Ok(MediaAnswer { sdp: a.sdp, negotiated: Some(a.negotiated), offer: None }),
            Err(e) => {
                let status = e.sip_status();
                Err(Refusal::new(status, format!("{} ({e})", happ_sip::message::reason_phrase(status)), "no acceptable media in the offer"))
            }
        },
        None => {
            let o = sdp::offer(local);
            Ok(MediaAnswer { sdp: o.clone(), negotiated: None, offer: Some(o) })
        }
    }
}

#[cfg(test)]
mod tests {
    use happ_sip::sdp::Codec;

    use super::*;
    use crate::config::PhoneConfig;

    const TRUNK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn phone(number: &str, login: &str, handler: &str, max_calls: Option<u32>) -> Phone {
        Phone::new(PhoneConfig {
            phone_number: number.into(),
            sip_login: login.into(),
            password: Default::default(),
            telephony_url: "192.0.2.1:5060".into(),
            codec: "alaw".into(),
            assistant_id: None,
            register: true,
            handler: handler.into(),
            max_calls,
            answer_delay_ms: 0,
            display_name: None,
        })
        .expect("a valid phone")
    }

    /// An echo phone (+15550001, login 1001, at most one call), an assistant phone
    /// (+15550002), and a phone with a call in progress (+15550003, at most one).
    fn phones() -> Phones {
        let mut phones = Phones::default();
        phones.insert(phone("+15550001", "1001", "echo", Some(1)));
        phones.insert(phone("+15550002", "1002", "assistant", None));
        let busy = phones.insert(phone("+15550003", "1003", "echo", Some(1)));
        phones[busy].active = 1;
        phones
    }

    fn gate<'a>(allowed: &'a HashSet<IpAddr>, phones: &'a Phones) -> Gate<'a> {
        Gate { allowed, draining: false, phones, calls: 0, max_calls: 10 }
    }

    const OFFER: &[u8] =
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    const G729_ONLY: &[u8] = b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";

    fn invite<'a>(user: &'a str, sdp: Option<&'a [u8]>) -> Invite<'a> {
        Invite { source: TRUNK, users: [Some(user), None], sdp }
    }

    fn refused(verdict: Verdict) -> (u16, String) {
        match verdict {
            Verdict::Refuse(r) => (r.status, r.reason),
            Verdict::Admit { phone, .. } => panic!("admitted on phone {phone}"),
        }
    }

    #[test]
    fn an_invite_for_a_phone_with_room_is_admitted() {
        let (allowed, phones) = (HashSet::from([TRUNK]), phones());
        match gate(&allowed, &phones).inbound(&invite("15550001", Some(OFFER))) {
            Verdict::Admit { phone, offer } => {
                assert_eq!(phones[phone].config.sip_login, "1001", "the number without its + names the phone");
                assert!(offer.is_some());
            }
            other => panic!("refused: {other:?}"),
        }
        let by_to = Invite { source: TRUNK, users: [Some("trunk-user"), Some("1001")], sdp: None };
        assert!(matches!(gate(&allowed, &phones).inbound(&by_to), Verdict::Admit { offer: None, .. }), "To names the phone too");
    }

    #[test]
    fn an_invite_from_an_unknown_address_is_forbidden() {
        let (allowed, phones) = (HashSet::from([IpAddr::from([192, 0, 2, 77])]), phones());
        assert_eq!(refused(gate(&allowed, &phones).inbound(&invite("1001", Some(OFFER)))), (403, "Forbidden".into()));
    }

    #[test]
    fn an_unknown_number_is_not_found() {
        let (allowed, phones) = (HashSet::from([TRUNK]), phones());
        assert_eq!(refused(gate(&allowed, &phones).inbound(&invite("999", Some(OFFER)))), (404, "Not Found".into()));
    }

    #[test]
    fn limits_and_shutdown_refuse_with_their_status() {
        let (allowed, phones) = (HashSet::from([TRUNK]), phones());
        let draining = Gate { draining: true, ..gate(&allowed, &phones) };
        assert_eq!(refused(draining.inbound(&invite("1001", Some(OFFER)))).0, 503);
        let full = Gate { calls: 10, ..gate(&allowed, &phones) };
        assert_eq!(refused(full.inbound(&invite("1001", Some(OFFER)))), (503, "Service Unavailable".into()));
        assert_eq!(refused(gate(&allowed, &phones).inbound(&invite("1003", Some(OFFER)))), (486, "Busy Here".into()));
        // The source is checked first, then shutdown, then the number.
        let nobody = HashSet::new();
        assert_eq!(refused(Gate { draining: true, ..gate(&nobody, &phones) }.inbound(&invite("999", None))).0, 403);
        assert_eq!(refused(draining.inbound(&invite("999", None))).0, 503);
    }

    #[test]
    fn the_assistant_handler_is_not_available_yet() {
        let (allowed, phones) = (HashSet::from([TRUNK]), phones());
        assert_eq!(refused(gate(&allowed, &phones).inbound(&invite("1002", Some(OFFER)))).0, 480);
    }

    #[test]
    fn a_malformed_offer_is_a_bad_request() {
        let (allowed, phones) = (HashSet::from([TRUNK]), phones());
        let (status, reason) = refused(gate(&allowed, &phones).inbound(&invite("1001", Some(b"this is not SDP"))));
        assert_eq!(status, 400);
        assert!(reason.starts_with("Bad Request (SDP: "), "{reason}");
    }

    #[test]
    fn the_answer_settles_a_common_codec_or_refuses_488() {
        let local = LocalMedia::new(IpAddr::from([198, 51, 100, 1]), 20_000, Codec::Pcma, 7);
        let offer = SessionDescription::parse_bytes(OFFER).expect("valid SDP");
        let a = answer_media(Some(&offer), &local).expect("G.711 in common");
        let n = a.negotiated.expect("an answer settles the media");
        assert_eq!(n.codec, Codec::Pcma, "ours first among the offered");
        assert_eq!(n.rtp.port(), 4000);
        assert!(a.offer.is_none());
        assert!(a.sdp.to_string().contains("m=audio 20000 "));

        let g729 = SessionDescription::parse_bytes(G729_ONLY).expect("valid SDP");
        let r = answer_media(Some(&g729), &local).expect_err("no codec in common");
        assert_eq!(r.status, 488);
        assert!(r.reason.starts_with("Not Acceptable Here ("), "{}", r.reason);
    }

    #[test]
    fn without_an_offer_we_offer_in_the_200() {
        let local = LocalMedia::new(IpAddr::from([198, 51, 100, 1]), 20_000, Codec::Pcmu, 7);
        let a = answer_media(None, &local).expect("an offer");
        assert!(a.negotiated.is_none());
        assert_eq!(a.offer.as_ref().map(ToString::to_string), Some(a.sdp.to_string()));
    }

    fn dial(to: &str, phone: &str) -> DialRequest {
        DialRequest { to: to.into(), phone: phone.into(), assistant: None }
    }

    #[test]
    fn dialling_checks_the_number_the_phone_and_the_limits() {
        let allowed = HashSet::new();
        let mut phones = phones();
        let echo = phones.by_number("+15550001").expect("the echo phone");
        let busy = phones.by_number("+15550003").expect("the busy phone");
        phones.set_account(echo, Some(AccountId(1)));
        phones.set_account(busy, Some(AccountId(3)));
        let registered = |_: &Phone| "registered";
        let g = gate(&allowed, &phones);

        let request = dial(" 0442 ", "1001");
        let ok = g.dial(&request, registered).expect("allowed");
        assert_eq!(ok, Dial { phone: echo, account: AccountId(1), to: "0442" });
        let status = |r: Result<Dial, ApiError>| r.expect_err("refused").status;
        assert_eq!(status(g.dial(&dial("04;42", "1001"), registered)), 400);
        assert_eq!(status(g.dial(&dial("0442", "nobody"), registered)), 404);
        assert_eq!(status(g.dial(&dial("0442", "+15550002"), registered)), 503, "no account: unresolved");
        assert_eq!(status(g.dial(&dial("0442", "1001"), |_| "failed")), 503);
        assert_eq!(status(g.dial(&dial("0442", "1003"), registered)), 409);
        assert_eq!(status(Gate { calls: 10, ..gate(&allowed, &phones) }.dial(&dial("0442", "1001"), registered)), 503);
        assert_eq!(status(Gate { draining: true, ..gate(&allowed, &phones) }.dial(&dial("0442", "1001"), registered)), 503);
    }
}
