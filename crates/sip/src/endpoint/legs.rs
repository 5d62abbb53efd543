//! Call legs: the dialogs of inbound (UAS) and outbound (UAC) calls (RFC 3261 §12-15).
//!
//! Inbound: the INVITE gets 100 Trying at once and becomes an [`Event::IncomingCall`]; the
//! gateway then rings, answers or rejects it. Our 2xx is retransmitted until its ACK comes
//! (§13.3.1.4); without an ACK after 64·T1 the call is ended with a BYE. A CANCEL before the
//! answer gets 200 and the INVITE 487. Outbound: the INVITE goes to the account's proxy;
//! digest challenges are answered with a new INVITE (CSeq + 1), provisional responses report
//! progress and early media, the 2xx is ACKed by us (and again for each retransmission), and a
//! hangup before the answer is a CANCEL, sent once a provisional response allows it (§9.1).
//! Once ended, a leg lingers for 64·T1 to answer retransmissions, then is forgotten.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::session_timer::SessionTimer;
use super::{AccountId, Ender, Endpoint, EndpointError, Event, IncomingCall, LegId, Owner, TxKind, Wake};
use crate::message::{HeaderName, Method, NameAddr, Request, Response, Transport, Uri, reason_phrase};
use crate::transaction::TxKey;

/// Most challenges answered for one request.
pub(crate) const MAX_AUTH_ROUNDS: u32 = 2;

/// A call to place.
#[derive(Clone, Debug)]
pub struct OutboundCall {
    /// The account (phone) calling: its identity, credentials and proxy.
    pub account: AccountId,
    /// The Request-URI (the number called at the provider).
    pub target: Uri,
    /// Our SDP offer.
    pub sdp: Vec<u8>,
    /// Extra headers for the INVITE.
    pub headers: Vec<(HeaderName, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Uas,
    Uac,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// UAS: INVITE received, no final response sent.
    Incoming,
    /// UAC: INVITE sent, no final response received.
    Calling,
    /// UAS: 2xx sent, waiting for the ACK.
    WaitingAck,
    /// Established.
    Confirmed,
    /// Over (lingering).
    Ended,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Incoming => "incoming, not answered",
            State::Calling => "calling, not answered",
            State::WaitingAck => "answered, waiting for the ACK",
            State::Confirmed => "established",
            State::Ended => "ended",
        }
    }
}

/// A 2xx we retransmit until its ACK arrives.
struct Pending2xx {
    bytes: Vec<u8>,
    transport: Transport,
    dest: SocketAddr,
    cseq: u32,
    interval: Duration,
    next: Instant,
    deadline: Instant,
}

/// One call leg.
pub(crate) struct Leg {
    role: Role,
    state: State,
    pub(crate) account: Option<AccountId>,
    transport: Transport,
    /// Where in-dialog requests go when the route set and target give no address.
    peer: SocketAddr,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our address (From of a UAC, To of a UAS), without tag.
    local: NameAddr,
    /// Theirs, without tag.
    remote: NameAddr,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    route_set: Vec<NameAddr>,
    remote_target: Option<Uri>,
    pub(crate) contact_user: String,
    /// The INVITE of the current INVITE transaction (received, or as we sent it).
    invite: Option<Request>,
    invite_tx: Option<u64>,
    pending_2xx: Option<Pending2xx>,
    /// The ACK we sent for the 2xx, sent again for every retransmission of it.
    ack: Option<Vec<u8>>,
    /// UAC: the user hung up before the answer; CANCEL when allowed.
    cancel_pending: bool,
    /// We hung up: later results are not reported again.
    pub(crate) local_hangup: bool,
    /// UAS: hung up before the ACK; BYE once it comes.
    bye_after_ack: bool,
    auth_rounds: u32,
    sent_credentials: bool,
    /// A peer's re-INVITE waiting for our answer.
    reinvite: Option<(u64, Request)>,
    ended_at: Option<Instant>,
    /// The session timer (RFC 4028), when one was agreed.
    pub(crate) timer: Option<SessionTimer>,
    /// The SDP we last sent, for a re-INVITE that refreshes the session without changing it.
    pub(crate) local_sdp: Option<Vec<u8>>,
    /// Whether the peer listed UPDATE in its Allow (refreshes then use UPDATE).
    pub(crate) peer_allows_update: bool,
    /// UAC: the Session-Expires of our INVITE, and whether a 422 raised it.
    session_expires: u32,
    session_raised: bool,
}

impl Leg {
    /// Whether the dialog is established (ACKed).
    pub(crate) fn is_established(&self) -> bool {
        self.state == State::Confirmed
    }
}

/// Whether a request or response lists `method` in its Allow header.
fn allows(headers: &crate::message::Headers, method: &str) -> bool {
    headers.get_all(&HeaderName::Allow).flat_map(|v| v.split(',')).any(|m| m.trim().eq_ignore_ascii_case(method))
}

impl Endpoint {
    fn leg(&self, id: LegId) -> Result<&Leg, EndpointError> {
        self.legs.get(&id).ok_or(EndpointError::UnknownLeg(id))
    }

    fn leg_mut(&mut self, id: LegId) -> Result<&mut Leg, EndpointError> {
        self.legs.get_mut(&id).ok_or(EndpointError::UnknownLeg(id))
    }

    /// The Call-ID of a leg.
    pub fn leg_call_id(&self, id: LegId) -> Option<&str> {
        self.legs.get(&id).map(|l| l.call_id.as_str())
    }

    /// Whether a leg exists and has not ended.
    pub fn leg_active(&self, id: LegId) -> bool {
        self.legs.get(&id).is_some_and(|l| l.state != State::Ended)
    }

    pub(crate) fn end_leg(&mut self, now: Instant, id: LegId) {
        let linger = self.config.timers.timeout();
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.state = State::Ended;
            leg.ended_at = Some(now);
            leg.pending_2xx = None;
        }
        self.schedule(Wake::Leg(id), Some(now + linger));
    }

    // ---------------------------------------------------------------- inbound

    pub(crate) fn incoming_invite(&mut self, now: Instant, tx: u64, transport: Transport, source: SocketAddr, request: Request) {
        // Extensions we were required to support, and do not (we support none: RFC 3261 §8.2.2.3).
        let required: Vec<String> = request
            .headers
            .get_all(&HeaderName::Require)
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("timer"))
            .collect();
        if !required.is_empty() {
            let tag = self.ids.tag();
            let mut r = Response::for_request(&request, 420, reason_phrase(420), Some(&tag));
            self.decorate(&mut r);
            r.headers.push(HeaderName::Unsupported, required.join(", "));
            self.respond_tx(now, tx, &r);
            return;
        }
        if !request.body.is_empty() && request.headers.content_type().is_some_and(|t| t != "application/sdp") {
            let tag = self.ids.tag();
            let mut r = Response::for_request(&request, 415, reason_phrase(415), Some(&tag));
            self.decorate(&mut r);
            r.headers.push(HeaderName::Accept, "application/sdp");
            self.respond_tx(now, tx, &r);
            return;
        }
        if self.refuse_timer(now, tx, &request) {
            return;
        }
        let (Ok(from), Ok(to), Ok(call_id), Ok(cseq)) = (request.headers.from(), request.headers.to(), request.headers.call_id(), request.headers.cseq())
        else {
            return;
        };
        let id = LegId(self.next_id());
        let local_tag = self.ids.tag();
        let mut local = to.clone();
        local.params.remove("tag");
        let mut remote = from.clone();
        remote.params.remove("tag");
        let contact_user = request.uri.user.clone().or_else(|| to.uri.user.clone()).unwrap_or_else(|| "gateway".into());
        let leg = Leg {
            role: Role::Uas,
            state: State::Incoming,
            account: None,
            transport: transport.clone(),
            peer: source,
            call_id: call_id.to_owned(),
            local_tag: local_tag.clone(),
            remote_tag: from.tag().map(str::to_owned),
            local,
            remote,
            local_cseq: 0,
            remote_cseq: Some(cseq.seq),
            route_set: request.headers.name_addrs(&HeaderName::RecordRoute).unwrap_or_default(),
            remote_target: request.headers.name_addrs(&HeaderName::Contact).ok().and_then(|c| c.into_iter().next()).map(|c| c.uri),
            contact_user,
            invite: Some(request.clone()),
            invite_tx: Some(tx),
            pending_2xx: None,
            ack: None,
            cancel_pending: false,
            local_hangup: false,
            bye_after_ack: false,
            auth_rounds: 0,
            sent_credentials: false,
            reinvite: None,
            ended_at: None,
            timer: None,
            local_sdp: None,
            peer_allows_update: allows(&request.headers, "UPDATE"),
            session_expires: 0,
            session_raised: false,
        };
        self.legs.insert(id, leg);
        self.dialogs.insert((call_id.to_owned(), local_tag), id);
        if let Some(t) = self.txs.get_mut(&tx) {
            t.owner = Owner::Leg(id);
        }
        // 100 Trying at once stops the caller's retransmissions (§17.2.1).
        let trying = self.uas_response(id, &request, 100, None, None);
        self.respond_tx(now, tx, &trying);
        let sdp = (!request.body.is_empty()).then(|| request.body.clone());
        self.events.push_back(Event::IncomingCall(Box::new(IncomingCall {
            leg: id,
            request_uri: request.uri.clone(),
            from,
            to,
            source,
            transport,
            call_id: call_id.to_owned(),
            sdp,
            headers: request.headers,
        })));
    }

    /// A response of ours to the leg's request `request`, with our tag, Contact and Record-Route
    /// when it makes or confirms a dialog, and `sdp` as the body.
    fn uas_response(&mut self, id: LegId, request: &Request, status: u16, reason: Option<&str>, sdp: Option<&[u8]>) -> Response {
        let Some(leg) = self.legs.get(&id) else { return Response::for_request(request, status, reason_phrase(status), None) };
        let (tag, user, transport) = (leg.local_tag.clone(), leg.contact_user.clone(), leg.transport.clone());
        let mut r = Response::for_request(request, status, reason.unwrap_or(reason_phrase(status)), Some(&tag));
        if (101..300).contains(&status) {
            for rr in request.headers.get_all(&HeaderName::RecordRoute) {
                r.headers.push(HeaderName::RecordRoute, rr);
            }
            let contact = self.contact(&user, self.advertised(), &transport);
            r.headers.push(HeaderName::Contact, contact.to_string());
        }
        if (200..300).contains(&status) {
            r.headers.push(HeaderName::Allow, super::build::ALLOW);
            if matches!(request.method, Method::Invite | Method::Update) {
                self.timer_headers_2xx(request, &mut r);
            }
        }
        self.decorate(&mut r);
        if let Some(body) = sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = body.to_vec();
        }
        r
    }

    /// Rings an inbound call: 180 Ringing, or 183 Session Progress with early-media SDP.
    pub fn ring(&mut self, now: Instant, id: LegId, sdp: Option<&[u8]>) -> Result<(), EndpointError> {
        let leg = self.leg(id)?;
        if leg.state != State::Incoming {
            return Err(EndpointError::InvalidState { what: "ringing", state: leg.state.name() });
        }
        let (Some(tx), Some(invite)) = (leg.invite_tx, leg.invite.clone()) else {
            return Err(EndpointError::InvalidState { what: "ringing", state: leg.state.name() });
        };
        let status = if sdp.is_some() { 183 } else { 180 };
        let r = self.uas_response(id, &invite, status, None, sdp);
        self.respond_tx(now, tx, &r);
        Ok(())
    }

    /// Answers an inbound call (or the peer's re-INVITE) with 200 OK and our SDP.
    pub fn answer(&mut self, now: Instant, id: LegId, sdp: &[u8]) -> Result<(), EndpointError> {
        let leg = self.leg(id)?;
        let (tx, request) = match (leg.state, &leg.reinvite) {
            (State::Incoming, _) => match (leg.invite_tx, &leg.invite) {
                (Some(tx), Some(invite)) => (tx, invite.clone()),
                _ => return Err(EndpointError::InvalidState { what: "answering", state: leg.state.name() }),
            },
            (State::Confirmed | State::WaitingAck, Some((tx, request))) => (*tx, request.clone()),
            (state, _) => return Err(EndpointError::InvalidState { what: "answering", state: state.name() }),
        };
        let r = self.uas_response(id, &request, 200, None, Some(sdp));
        self.respond_tx(now, tx, &r);
        let (transport, dest) = match self.txs.get(&tx) {
            Some(t) => (t.transport.clone(), t.dest),
            None => return Err(EndpointError::InvalidState { what: "answering", state: "transaction gone" }),
        };
        let t1 = self.config.timers.t1;
        let deadline = now + self.config.timers.timeout();
        let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let leg = self.leg_mut(id)?;
        leg.pending_2xx = Some(Pending2xx { bytes: r.encode(), transport: transport.clone(), dest, cseq, interval: t1, next: now + t1, deadline });
        if leg.state == State::Incoming {
            leg.state = State::WaitingAck;
        }
        leg.reinvite = None;
        leg.local_sdp = Some(sdp.to_vec());
        // Over a reliable transport the 2xx is not retransmitted, but its ACK is still awaited.
        let next = if transport.is_reliable() { deadline } else { now + t1 };
        self.schedule(Wake::Leg(id), Some(next));
        self.timer_answered(now, id, &request);
        Ok(())
    }

    /// Rejects an inbound call before it is answered (any status 300-699), or the peer's
    /// re-INVITE (e.g. 488), keeping the call. `headers` are added (Retry-After, Warning...).
    pub fn reject(&mut self, now: Instant, id: LegId, status: u16, reason: Option<&str>, headers: &[(HeaderName, String)]) -> Result<(), EndpointError> {
        if !(300..=699).contains(&status) {
            return Err(EndpointError::Status(status));
        }
        let leg = self.leg(id)?;
        let (tx, request, ends) = match (leg.state, &leg.reinvite) {
            (State::Incoming, _) => match (leg.invite_tx, &leg.invite) {
                (Some(tx), Some(invite)) => (tx, invite.clone(), true),
                _ => return Err(EndpointError::InvalidState { what: "rejecting", state: leg.state.name() }),
            },
            (State::Confirmed | State::WaitingAck, Some((tx, request))) => (*tx, request.clone(), false),
            (state, _) => return Err(EndpointError::InvalidState { what: "rejecting", state: state.name() }),
        };
        let mut r = self.uas_response(id, &request, status, reason, None);
        for (name, value) in headers {
            r.headers.push(name.clone(), value.clone());
        }
        self.respond_tx(now, tx, &r);
        if ends {
            self.end_leg(now, id);
        } else if let Ok(leg) = self.leg_mut(id) {
            leg.reinvite = None;
        }
        Ok(())
    }

    /// Ends a call from our side: BYE when established, CANCEL before an outbound call is
    /// answered, 480 before an inbound call is answered.
    pub fn hangup(&mut self, now: Instant, id: LegId) -> Result<(), EndpointError> {
        let leg = self.leg(id)?;
        match leg.state {
            State::Ended => Ok(()),
            State::Incoming => self.reject(now, id, 480, None, &[]),
            State::Calling => {
                let can_cancel = leg.invite_tx.and_then(|t| self.txs.get(&t)).is_some_and(|t| matches!(&t.kind, TxKind::ClientInvite(c) if c.has_response()));
                let leg = self.leg_mut(id)?;
                leg.local_hangup = true;
                if can_cancel {
                    self.send_cancel(now, id);
                } else {
                    leg.cancel_pending = true;
                }
                self.events.push_back(Event::CallEnded { leg: id, by: Ender::Local, reason: "cancelled before answer".into() });
                Ok(())
            }
            State::WaitingAck => {
                // No BYE before the ACK (§15): it goes out when the ACK arrives.
                let leg = self.leg_mut(id)?;
                leg.local_hangup = true;
                leg.bye_after_ack = true;
                self.events.push_back(Event::CallEnded { leg: id, by: Ender::Local, reason: "hung up".into() });
                Ok(())
            }
            State::Confirmed => {
                self.leg_mut(id)?.local_hangup = true;
                self.send_bye(now, id);
                self.end_leg(now, id);
                self.events.push_back(Event::CallEnded { leg: id, by: Ender::Local, reason: "hung up".into() });
                Ok(())
            }
        }
    }

    pub(crate) fn incoming_cancel(&mut self, now: Instant, tx: u64, cancel: &Request) {
        let branch = cancel.headers.top_via().ok().and_then(|v| v.branch().map(str::to_owned)).unwrap_or_default();
        let invite_tx = self.tx_index.get(&TxKey::server(&branch, &Method::Invite)).copied();
        let Some(invite_tx) = invite_tx else {
            self.reply(now, tx, cancel, 481, None);
            return;
        };
        self.reply(now, tx, cancel, 200, None);
        let Some(Owner::Leg(id)) = self.txs.get(&invite_tx).map(|t| t.owner) else { return };
        let pending = self.legs.get(&id).is_some_and(|l| l.state == State::Incoming);
        if !pending {
            // Already answered or rejected: the CANCEL has no effect (§9.2).
            return;
        }
        if let Some(invite) = self.legs.get(&id).and_then(|l| l.invite.clone()) {
            let r = self.uas_response(id, &invite, 487, None, None);
            self.respond_tx(now, invite_tx, &r);
        }
        self.end_leg(now, id);
        self.events.push_back(Event::CallCancelled { leg: id });
    }

    pub(crate) fn in_dialog_request(&mut self, now: Instant, tx: u64, source: SocketAddr, tag: &str, request: Request) {
        let call_id = request.headers.call_id().unwrap_or("").to_owned();
        let Some(&id) = self.dialogs.get(&(call_id, tag.to_owned())) else {
            self.reply(now, tx, &request, 481, None);
            return;
        };
        let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(leg) = self.legs.get_mut(&id) else { return };
        // Requests inside a dialog come in CSeq order (§12.2.2).
        if leg.remote_cseq.is_some_and(|r| cseq < r) {
            self.reply(now, tx, &request, 500, Some("Server Internal Error (CSeq out of order)"));
            return;
        }
        leg.remote_cseq = Some(cseq);
        if leg.state != State::Ended {
            leg.peer = source;
        }
        if let Some(t) = self.txs.get_mut(&tx) {
            t.owner = Owner::Leg(id);
        }
        let ended = leg.state == State::Ended;
        match request.method {
            Method::Bye => {
                self.reply(now, tx, &request, 200, None);
                if !ended {
                    let reported = self.legs.get(&id).is_some_and(|l| l.local_hangup);
                    self.end_leg(now, id);
                    if !reported {
                        self.events.push_back(Event::CallEnded { leg: id, by: Ender::Remote, reason: "BYE".into() });
                    }
                }
            }
            Method::Invite if ended => self.reply(now, tx, &request, 481, None),
            Method::Invite => {
                // Glare with a transaction of ours (a pending ACK, or our refresh re-INVITE) gets 491.
                let busy = self.legs.get(&id).is_some_and(|l| {
                    l.reinvite.is_some() || l.state == State::WaitingAck || l.timer.as_ref().and_then(|t| t.refreshing).is_some_and(|r| !r.update)
                });
                if busy {
                    self.reply(now, tx, &request, 491, None);
                    return;
                }
                if self.refuse_timer(now, tx, &request) {
                    return;
                }
                let trying = self.uas_response(id, &request, 100, None, None);
                self.respond_tx(now, tx, &trying);
                if let Some(leg) = self.legs.get_mut(&id) {
                    if let Some(target) = request.headers.name_addrs(&HeaderName::Contact).ok().and_then(|c| c.into_iter().next()) {
                        leg.remote_target = Some(target.uri);
                    }
                    leg.reinvite = Some((tx, request.clone()));
                }
                let sdp = (!request.body.is_empty()).then(|| request.body.clone());
                self.events.push_back(Event::ReInvite { leg: id, sdp });
            }
            Method::Info if !ended => {
                self.reply(now, tx, &request, 200, None);
                self.events.push_back(Event::Info { leg: id, content_type: request.headers.content_type(), body: request.body });
            }
            Method::Options => {
                let response = self.options_response(&request);
                self.respond_tx(now, tx, &response);
            }
            // A session refresh without an offer (RFC 4028 §7.2 via UPDATE).
            Method::Update if request.body.is_empty() && !ended => {
                if !self.refuse_timer(now, tx, &request) {
                    let ok = self.uas_response(id, &request, 200, None, None);
                    self.respond_tx(now, tx, &ok);
                    self.timer_answered(now, id, &request);
                }
            }
            Method::Update if !ended => self.reply(now, tx, &request, 488, None),
            _ if ended => self.reply(now, tx, &request, 481, None),
            _ => self.reply(now, tx, &request, 501, None),
        }
    }

    pub(crate) fn leg_ack(&mut self, now: Instant, ack: &Request) {
        let (Ok(call_id), Ok(to)) = (ack.headers.call_id(), ack.headers.to()) else { return };
        let Some(tag) = to.tag() else { return };
        let Some(&id) = self.dialogs.get(&(call_id.to_owned(), tag.to_owned())) else { return };
        let cseq = ack.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if leg.pending_2xx.as_ref().is_none_or(|p| p.cseq != cseq) {
            return;
        }
        leg.pending_2xx = None;
        let first = leg.state == State::WaitingAck;
        if first {
            leg.state = State::Confirmed;
        }
        if leg.bye_after_ack {
            leg.bye_after_ack = false;
            self.send_bye(now, id);
            self.end_leg(now, id);
            return;
        }
        if first {
            let sdp = (!ack.body.is_empty()).then(|| ack.body.clone());
            self.events.push_back(Event::CallConfirmed { leg: id, sdp });
        }
    }

    pub(crate) fn leg_timeout(&mut self, now: Instant, id: LegId) {
        let t2 = self.config.timers.t2;
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if let Some(at) = leg.ended_at {
            if now >= at + self.config.timers.timeout() {
                let key = (leg.call_id.clone(), leg.local_tag.clone());
                self.legs.remove(&id);
                self.dialogs.remove(&key);
            }
            return;
        }
        let Some(p) = leg.pending_2xx.as_mut() else { return };
        if now >= p.deadline {
            // No ACK for our 2xx: the call is not confirmed; end it (§13.3.1.4).
            leg.pending_2xx = None;
            let reported = leg.local_hangup;
            self.send_bye(now, id);
            self.end_leg(now, id);
            if !reported {
                self.events.push_back(Event::CallEnded { leg: id, by: Ender::Local, reason: "no ACK for our 200 OK".into() });
            }
            return;
        }
        if p.transport.is_reliable() {
            let at = p.deadline;
            self.schedule(Wake::Leg(id), Some(at));
            return;
        }
        if now >= p.next {
            let (t, d, b) = (p.transport.clone(), p.dest, p.bytes.clone());
            p.interval = (p.interval * 2).min(t2);
            p.next = now + p.interval;
            let at = p.next.min(p.deadline);
            self.stats.retransmissions += 1;
            self.send(t, d, b);
            self.schedule(Wake::Leg(id), Some(at));
        } else {
            let at = p.next.min(p.deadline);
            self.schedule(Wake::Leg(id), Some(at));
        }
    }

    // ---------------------------------------------------------------- outbound

    /// Places a call through an account: sends the INVITE to its proxy.
    pub fn invite(&mut self, now: Instant, call: OutboundCall) -> Result<LegId, EndpointError> {
        let account = self.accounts.get(&call.account).ok_or(EndpointError::UnknownAccount(call.account))?;
        let config = account.config.clone();
        let host = config.aor.host.as_ref().map(ToString::to_string).unwrap_or_default();
        let call_id = self.ids.call_id(&host);
        let local_tag = self.ids.tag();
        let mut local = NameAddr::new(config.aor.clone());
        local.display = config.display_name.clone();
        let remote = NameAddr::new(call.target.clone());
        let id = LegId(self.next_id());
        let leg = Leg {
            role: Role::Uac,
            state: State::Calling,
            account: Some(call.account),
            transport: config.transport.clone(),
            peer: config.proxy,
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: None,
            local,
            remote,
            local_cseq: 0,
            remote_cseq: None,
            route_set: Vec::new(),
            remote_target: None,
            contact_user: config.contact_user.clone(),
            invite: None,
            invite_tx: None,
            pending_2xx: None,
            ack: None,
            cancel_pending: false,
            local_hangup: false,
            bye_after_ack: false,
            auth_rounds: 0,
            sent_credentials: false,
            reinvite: None,
            ended_at: None,
            timer: None,
            local_sdp: None,
            peer_allows_update: false,
            session_expires: self.config.session_expires,
            session_raised: false,
        };
        self.legs.insert(id, leg);
        self.dialogs.insert((call_id, local_tag), id);
        self.send_invite(now, id, call.target, call.sdp, &call.headers);
        Ok(id)
    }

    /// Sends (or sends again, after a challenge) the INVITE of an outbound leg.
    fn send_invite(&mut self, now: Instant, id: LegId, target: Uri, sdp: Vec<u8>, extra: &[(HeaderName, String)]) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        leg.local_cseq += 1;
        let (cseq, account, transport, proxy) = (leg.local_cseq, leg.account, leg.transport.clone(), leg.peer);
        let mut from = leg.local.clone();
        from.params.set("tag", Some(&leg.local_tag));
        let to = leg.remote.clone();
        let (call_id, user) = (leg.call_id.clone(), leg.contact_user.clone());
        let contact_at = account.and_then(|a| self.accounts.get(&a)).map(|a| self.contact_address(a)).unwrap_or_else(|| self.advertised());
        let sent_by = self.advertised();
        let via = self.via(&transport, sent_by);
        let mut request = self.request(Method::Invite, target, &via, &from, &to, &call_id, cseq);
        request.headers.push(HeaderName::Contact, self.contact(&user, contact_at, &transport).to_string());
        request.headers.push(HeaderName::Allow, super::build::ALLOW);
        request.headers.push(HeaderName::Supported, super::build::SUPPORTED);
        if let Some(leg) = self.legs.get(&id)
            && leg.session_expires > 0
        {
            request.headers.push(HeaderName::SessionExpires, leg.session_expires.to_string());
            if leg.session_raised {
                request.headers.push(HeaderName::MinSe, leg.session_expires.to_string());
            }
        }
        for (name, value) in extra {
            request.headers.push(name.clone(), value.clone());
        }
        if !sdp.is_empty() {
            request.headers.push(HeaderName::ContentType, "application/sdp");
            request.body = sdp;
        }
        let credentials = account.and_then(|a| self.credentials_for(a, &request));
        if let Some(c) = &credentials {
            request.headers.push(c.name.clone(), c.value.clone());
        }
        let tx = self.start_client(now, request.clone(), transport, proxy, Owner::Leg(id));
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.local_sdp = (!request.body.is_empty()).then(|| request.body.clone());
            leg.invite = Some(request);
            leg.invite_tx = Some(tx);
            leg.sent_credentials = credentials.is_some_and(|c| c.fresh);
        }
    }

    fn send_cancel(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        leg.cancel_pending = false;
        let Some(invite) = leg.invite.clone() else { return };
        let (transport, proxy) = (leg.transport.clone(), leg.peer);
        // CANCEL (§9.1): the INVITE's Request-URI, top Via (same branch), From, To, Call-ID,
        // CSeq number and Route set.
        let mut headers = crate::message::Headers::new();
        if let Ok(via) = invite.headers.top_via() {
            headers.push(HeaderName::Via, via.to_string());
        }
        headers.push(HeaderName::MaxForwards, "70");
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            if let Some(v) = invite.headers.get(&name) {
                headers.push(name, v);
            }
        }
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
        for route in invite.headers.get_all(&HeaderName::Route) {
            headers.push(HeaderName::Route, route);
        }
        headers.push(HeaderName::UserAgent, self.config.user_agent.clone());
        let cancel = Request { method: Method::Cancel, uri: invite.uri.clone(), headers, body: Vec::new() };
        self.start_client(now, cancel, transport, proxy, Owner::Leg(id));
    }

    /// Where the leg's in-dialog requests go: the first route when it is an address, else the
    /// remote target when it is one, else the dialog's peer.
    fn next_hop(leg: &Leg) -> SocketAddr {
        let default_port = if leg.transport == Transport::Tls { 5061 } else { 5060 };
        if let Some(first) = leg.route_set.first() {
            return first.uri.socket_addr(default_port).unwrap_or(leg.peer);
        }
        leg.remote_target.as_ref().and_then(|t| t.socket_addr(default_port)).unwrap_or(leg.peer)
    }

    /// A request inside the leg's dialog (loose routing, §12.2.1.1).
    pub(crate) fn dialog_request(&mut self, id: LegId, method: Method) -> Option<(Request, Transport, SocketAddr)> {
        let leg = self.legs.get_mut(&id)?;
        if method != Method::Ack {
            leg.local_cseq += 1;
        }
        let cseq = if method == Method::Ack {
            leg.invite.as_ref().and_then(|i| i.headers.cseq().ok()).map(|c| c.seq).unwrap_or(leg.local_cseq)
        } else {
            leg.local_cseq
        };
        let mut from = leg.local.clone();
        from.params.set("tag", Some(&leg.local_tag));
        let mut to = leg.remote.clone();
        if let Some(tag) = &leg.remote_tag {
            to.params.set("tag", Some(tag));
        }
        let uri = leg.remote_target.clone().unwrap_or_else(|| leg.remote.uri.clone());
        let route_set = leg.route_set.clone();
        let (transport, call_id) = (leg.transport.clone(), leg.call_id.clone());
        let dest = Self::next_hop(leg);
        let sent_by = self.advertised();
        let via = self.via(&transport, sent_by);
        let mut request = self.request(method, uri, &via, &from, &to, &call_id, cseq);
        for route in route_set {
            request.headers.push(HeaderName::Route, route.to_string());
        }
        Some((request, transport, dest))
    }

    pub(crate) fn send_bye(&mut self, now: Instant, id: LegId) {
        let Some((mut bye, transport, dest)) = self.dialog_request(id, Method::Bye) else { return };
        let account = self.legs.get(&id).and_then(|l| l.account);
        if let Some(c) = account.and_then(|a| self.credentials_for(a, &bye)) {
            bye.headers.push(c.name, c.value);
        }
        self.start_client(now, bye, transport, dest, Owner::Leg(id));
    }

    /// The ACK of a 2xx to our INVITE, or (`cseq`) to our re-INVITE with that CSeq.
    pub(crate) fn send_ack_2xx(&mut self, id: LegId, cseq: Option<u32>) {
        let Some((mut ack, transport, dest)) = self.dialog_request(id, Method::Ack) else { return };
        if let Some(seq) = cseq {
            ack.headers.set(HeaderName::CSeq, format!("{seq} ACK"));
        }
        let bytes = ack.encode();
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.ack = Some(bytes.clone());
        }
        self.send(transport, dest, bytes);
    }

    pub(crate) fn leg_response(&mut self, now: Instant, id: LegId, tx: u64, response: &Response) {
        let Ok(cseq) = response.headers.cseq() else { return };
        if self.is_refresh(id, tx) {
            self.refresh_response(now, id, response);
            return;
        }
        if cseq.method == Method::Invite && (200..300).contains(&response.status) && self.legs.get(&id).is_some_and(|l| l.invite_tx != Some(tx)) {
            // A retransmitted 2xx to a refresh re-INVITE of ours that was answered: ACK it again.
            self.resend_ack(id);
            return;
        }
        match cseq.method {
            Method::Invite => self.invite_response(now, id, tx, response),
            Method::Bye if matches!(response.status, 401 | 407) => {
                let account = self.legs.get(&id).and_then(|l| l.account);
                let rounds = self.legs.get_mut(&id).map(|l| {
                    l.auth_rounds += 1;
                    l.auth_rounds
                });
                if let Some(account) = account
                    && rounds.is_some_and(|r| r <= MAX_AUTH_ROUNDS)
                    && self.take_challenge(account, response).is_ok()
                {
                    self.send_bye(now, id);
                }
            }
            _ => {}
        }
    }

    fn invite_response(&mut self, now: Instant, id: LegId, tx: u64, response: &Response) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if leg.role != Role::Uac || leg.invite_tx != Some(tx) {
            return;
        }
        let status = response.status;
        let to_tag = response.headers.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let sdp = (!response.body.is_empty()).then(|| response.body.clone());
        match status {
            100 => {}
            101..=199 => {
                if let Some(tag) = to_tag {
                    leg.remote_tag = Some(tag);
                    if let Some(c) = response.headers.name_addrs(&HeaderName::Contact).ok().and_then(|c| c.into_iter().next()) {
                        leg.remote_target = Some(c.uri);
                    }
                }
                if leg.cancel_pending {
                    self.send_cancel(now, id);
                } else if !leg.local_hangup {
                    self.events.push_back(Event::CallProgress { leg: id, status, reason: response.reason.clone(), sdp });
                }
            }
            200..=299 => {
                if leg.state == State::Confirmed || leg.state == State::Ended {
                    if leg.remote_tag == to_tag {
                        // A retransmitted 2xx: our ACK was lost.
                        self.resend_ack(id);
                    }
                    return;
                }
                leg.remote_tag = to_tag;
                if let Some(c) = response.headers.name_addrs(&HeaderName::Contact).ok().and_then(|c| c.into_iter().next()) {
                    leg.remote_target = Some(c.uri);
                }
                let mut routes = response.headers.name_addrs(&HeaderName::RecordRoute).unwrap_or_default();
                routes.reverse();
                leg.route_set = routes;
                leg.state = State::Confirmed;
                let hung_up = leg.local_hangup;
                leg.peer_allows_update = allows(&response.headers, "UPDATE");
                self.send_ack_2xx(id, None);
                if hung_up {
                    // Answered after we cancelled: the call must still be ended (§15).
                    self.send_bye(now, id);
                    self.end_leg(now, id);
                } else {
                    self.timer_from_2xx(now, id, response);
                    self.events.push_back(Event::CallAnswered { leg: id, sdp });
                }
            }
            401 | 407 => {
                leg.auth_rounds += 1;
                let (rounds, sent, account) = (leg.auth_rounds, leg.sent_credentials, leg.account);
                let invite = leg.invite.clone();
                let Some(account) = account else { return };
                let challenge = self.take_challenge(account, response);
                match (challenge, invite) {
                    (Ok(ch), Some(invite)) if (!sent || ch.stale) && rounds <= MAX_AUTH_ROUNDS && !self.legs.get(&id).is_some_and(|l| l.local_hangup) => {
                        self.resend_invite(now, id, &invite);
                    }
                    (challenge, _) => {
                        let reason = match challenge {
                            Ok(ch) if sent && !ch.stale => format!("the proxy rejected our credentials (realm {:?}): wrong username or password", ch.realm),
                            Ok(_) => "too many authentication challenges".to_owned(),
                            Err(e) => format!("cannot answer the challenge: {e}"),
                        };
                        self.call_failed(now, id, status, reason);
                    }
                }
            }
            422 if !leg.session_raised && !leg.local_hangup => {
                // Our Session-Expires is below the callee's Min-SE: ask again with its value (RFC 4028 §7.4).
                let wanted = response.headers.get(&HeaderName::MinSe).and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok());
                match (wanted, leg.invite.clone()) {
                    (Some(secs), Some(invite)) if secs > leg.session_expires => {
                        leg.session_expires = secs;
                        leg.session_raised = true;
                        self.resend_invite(now, id, &invite);
                    }
                    _ => self.call_failed(now, id, status, "session interval too small, and no usable Min-SE".to_owned()),
                }
            }
            _ => {
                let reason = if response.reason.is_empty() { reason_phrase(status).to_owned() } else { response.reason.clone() };
                self.call_failed(now, id, status, reason);
            }
        }
    }

    /// Sends the INVITE again (CSeq + 1) with the caller's own headers, after a challenge or a 422.
    fn resend_invite(&mut self, now: Instant, id: LegId, invite: &Request) {
        let extra: Vec<(HeaderName, String)> = invite
            .headers
            .iter()
            .filter(|h| {
                !matches!(
                    h.name,
                    HeaderName::Via
                        | HeaderName::MaxForwards
                        | HeaderName::From
                        | HeaderName::To
                        | HeaderName::CallId
                        | HeaderName::CSeq
                        | HeaderName::UserAgent
                        | HeaderName::Contact
                        | HeaderName::Allow
                        | HeaderName::Supported
                        | HeaderName::SessionExpires
                        | HeaderName::MinSe
                        | HeaderName::ContentType
                        | HeaderName::ContentLength
                        | HeaderName::Authorization
                        | HeaderName::ProxyAuthorization
                )
            })
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        self.send_invite(now, id, invite.uri.clone(), invite.body.clone(), &extra);
    }

    fn call_failed(&mut self, now: Instant, id: LegId, status: u16, reason: String) {
        let reported = self.legs.get(&id).is_some_and(|l| l.local_hangup);
        self.end_leg(now, id);
        if !reported {
            self.events.push_back(Event::CallFailed { leg: id, status, reason });
        }
    }

    pub(crate) fn leg_stray_2xx(&mut self, _now: Instant, response: &Response) -> bool {
        let (Ok(call_id), Ok(from)) = (response.headers.call_id(), response.headers.from()) else { return false };
        let Some(tag) = from.tag() else { return false };
        let Some(&id) = self.dialogs.get(&(call_id.to_owned(), tag.to_owned())) else { return false };
        let to_tag = response.headers.to().ok().and_then(|t| t.tag().map(str::to_owned));
        // Our INVITE (a UAC's first, or a refresh re-INVITE of either side) was answered again.
        self.legs.get(&id).is_some_and(|l| l.remote_tag == to_tag) && self.resend_ack(id)
    }

    /// Sends again the ACK of the leg's last answered INVITE (its 2xx came again: the ACK was
    /// lost); false when the leg has sent none.
    fn resend_ack(&mut self, id: LegId) -> bool {
        let Some(leg) = self.legs.get(&id) else { return false };
        let Some(ack) = leg.ack.clone() else { return false };
        let (t, d) = (leg.transport.clone(), Self::next_hop(leg));
        self.send(t, d, ack);
        true
    }

    pub(crate) fn leg_tx_failed(&mut self, now: Instant, id: LegId, method: &Method, status: u16, reason: &str) {
        let Some(leg) = self.legs.get(&id) else { return };
        let refresh = leg.timer.as_ref().and_then(|t| t.refreshing).is_some_and(|r| r.update == (*method == Method::Update));
        if *method == Method::Invite && leg.role == Role::Uac && leg.state == State::Calling {
            self.call_failed(now, id, status, reason.to_owned());
        } else if refresh && leg.state == State::Confirmed && matches!(method, Method::Invite | Method::Update) {
            self.refresh_failed(now, id);
        }
    }
}
