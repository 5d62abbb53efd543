//! Session timers (RFC 4028): keeping a call alive only while both ends still know of it.
//!
//! A dialog whose BYE is lost (a carrier restart, a NAT binding gone) would otherwise hold a
//! call, its ports and its assistant forever. With a session timer one side, the *refresher*,
//! sends a refresh (an UPDATE without a body when the peer allows UPDATE, else a re-INVITE
//! with our current SDP unchanged) at half the session interval; the other side sends a BYE if
//! no refresh has come shortly before the interval ends (one third of it, at most 32 s, §10).
//!
//! - As UAS we accept `Require: timer`, answer a `Session-Expires` below our `Min-SE` with 422,
//!   and echo the interval with the refresher the caller asked for (or `uac` when it supports
//!   timers and left the choice to us, `uas` otherwise, §9). A caller that supports timers but
//!   asked for none gets our preferred interval, so that a lost BYE cannot leave a stuck call.
//! - As UAC we send `Supported: timer` and our preferred `Session-Expires`, raise it to the
//!   `Min-SE` of a 422 once, and take the refresher the 2xx names (§7).
//! - Refreshes of ours that get 408 or 481 (or time out) end the call with a BYE (§10); a 491
//!   is retried after 2.1–4 s (RFC 3261 §14.1); an UPDATE answered 405/501 is sent again as a
//!   re-INVITE; challenges are answered.
//! - Every 2xx to a refresh, ours or the peer's, starts a new interval with what it negotiated.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Ender, Endpoint, Event, LegId, Owner, Wake};
use crate::message::{HeaderName, Method, Request, Response};

/// Which end of a transaction refreshes the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refresher {
    /// The client of the INVITE or UPDATE that set the interval.
    Uac,
    /// Its server.
    Uas,
}

/// A `Session-Expires` value: the interval in seconds and, optionally, who refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionExpires {
    pub secs: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `1800;refresher=uac` (parameters other than `refresher` are ignored).
    pub(crate) fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';');
        let secs = parts.next()?.trim().parse().ok().filter(|s| *s > 0)?;
        let mut refresher = None;
        for p in parts {
            let (name, v) = p.split_once('=').unwrap_or((p, ""));
            if name.trim().eq_ignore_ascii_case("refresher") {
                refresher = match v.trim().to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => return None,
                };
            }
        }
        Some(SessionExpires { secs, refresher })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.secs)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac"),
            Some(Refresher::Uas) => f.write_str(";refresher=uas"),
            None => Ok(()),
        }
    }
}

/// What a received INVITE or UPDATE asks of the session timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// No timer for this session (the peer neither asked for one nor supports them).
    Off,
    /// The interval and refresher our 2xx will carry.
    Agreed(SessionExpires),
    /// The interval asked for is below our Min-SE: 422.
    TooSmall,
    /// An unreadable Session-Expires or Min-SE: 400.
    Malformed,
}

/// The session timer of an established dialog.
#[derive(Clone, Debug)]
pub(crate) struct SessionTimer {
    pub interval: Duration,
    /// Whether we are the refresher.
    pub we_refresh: bool,
    /// When the current interval started (the last 2xx to a refresh).
    pub since: Instant,
    /// The wake-up this timer waits for; earlier wakes in the queue are stale.
    pub next: Instant,
    /// A refresh of ours in progress.
    pub refreshing: Option<Refresh>,
}

/// A refresh request of ours.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refresh {
    pub tx: u64,
    pub update: bool,
    pub cseq: u32,
    pub auth_rounds: u32,
    pub interval_raised: bool,
}

impl SessionTimer {
    fn new(now: Instant, secs: u32, we_refresh: bool) -> SessionTimer {
        let interval = Duration::from_secs(u64::from(secs));
        let mut t = SessionTimer { interval, we_refresh, since: now, next: now, refreshing: None };
        t.next = t.due();
        t
    }

    /// When the session ends without a refresh.
    fn expiry(&self) -> Instant {
        self.since + self.interval
    }

    /// When we act next: refresh at half the interval, or (not refreshing) give up a third of
    /// the interval, at most 32 s, before it ends (§10).
    fn due(&self) -> Instant {
        if self.we_refresh { self.since + self.interval / 2 } else { self.expiry() - (self.interval / 3).min(Duration::from_secs(32)) }
    }
}

/// Whether `request` says its sender supports `option` (Supported, compact `k`, or Require).
fn supports(request: &Request, option: &str) -> bool {
    [HeaderName::Supported, HeaderName::Require]
        .iter()
        .flat_map(|n| request.headers.get_all(n).flat_map(|v| v.split(',')).map(str::trim).collect::<Vec<_>>())
        .any(|o| o.eq_ignore_ascii_case(option))
}

/// The Min-SE of a message, when it has a readable one.
fn min_se(headers: &crate::message::Headers) -> Result<Option<u32>, ()> {
    match headers.get(&HeaderName::MinSe) {
        None => Ok(None),
        Some(v) => v.split(';').next().and_then(|s| s.trim().parse().ok()).map(Some).ok_or(()),
    }
}

impl Endpoint {
    /// What the session timer of a received INVITE or UPDATE comes to (RFC 4028 §9).
    pub(crate) fn negotiate_timer(&self, request: &Request) -> Negotiation {
        let Ok(their_min) = min_se(&request.headers) else { return Negotiation::Malformed };
        let ours = self.config.min_session_expires;
        match request.headers.get(&HeaderName::SessionExpires) {
            Some(value) => {
                let Some(se) = SessionExpires::parse(value) else { return Negotiation::Malformed };
                if se.secs < ours {
                    return Negotiation::TooSmall;
                }
                let refresher = se.refresher.unwrap_or(if supports(request, "timer") { Refresher::Uac } else { Refresher::Uas });
                Negotiation::Agreed(SessionExpires { secs: se.secs, refresher: Some(refresher) })
            }
            None if supports(request, "timer") && self.config.session_expires > 0 => {
                let secs = self.config.session_expires.max(ours).max(their_min.unwrap_or(0));
                Negotiation::Agreed(SessionExpires { secs, refresher: Some(Refresher::Uac) })
            }
            None => Negotiation::Off,
        }
    }

    /// Answers a received INVITE or UPDATE whose session timer we cannot take: 422 with our
    /// Min-SE below it (§9), 400 for an unreadable one. Whether it was refused.
    pub(crate) fn refuse_timer(&mut self, now: Instant, tx: u64, request: &Request) -> bool {
        match self.negotiate_timer(request) {
            Negotiation::TooSmall => self.reply_too_small(now, tx, request),
            Negotiation::Malformed => self.reply(now, tx, request, 400, Some("Bad Request (Session-Expires or Min-SE)")),
            Negotiation::Off | Negotiation::Agreed(_) => return false,
        }
        true
    }

    /// The 422 for a request whose Session-Expires is below our Min-SE (§9).
    fn reply_too_small(&mut self, now: Instant, tx: u64, request: &Request) {
        let tag = self.ids.tag();
        let mut r = Response::for_request(request, 422, crate::message::reason_phrase(422), Some(&tag));
        self.decorate(&mut r);
        r.headers.push(HeaderName::MinSe, self.config.min_session_expires.to_string());
        self.respond_tx(now, tx, &r);
    }

    /// Adds the session-timer headers to our 2xx for `request` (an INVITE or UPDATE).
    pub(crate) fn timer_headers_2xx(&self, request: &Request, response: &mut Response) {
        response.headers.push(HeaderName::Supported, super::build::SUPPORTED);
        if let Negotiation::Agreed(se) = self.negotiate_timer(request) {
            response.headers.push(HeaderName::SessionExpires, se.to_string());
            if se.refresher == Some(Refresher::Uac) {
                // The caller must refresh: it has to know (§9).
                response.headers.push(HeaderName::Require, "timer");
            }
        }
    }

    /// Our 2xx to the peer's INVITE or UPDATE has gone out: a new interval starts, or none.
    pub(crate) fn timer_answered(&mut self, now: Instant, id: LegId, request: &Request) {
        let timer = match self.negotiate_timer(request) {
            Negotiation::Agreed(se) => Some(SessionTimer::new(now, se.secs, se.refresher == Some(Refresher::Uas))),
            _ => None,
        };
        self.set_timer(id, timer);
    }

    /// The 2xx to our INVITE or refresh: the interval and refresher it names (§7.2), or none.
    pub(crate) fn timer_from_2xx(&mut self, now: Instant, id: LegId, response: &Response) {
        let timer = response
            .headers
            .get(&HeaderName::SessionExpires)
            .and_then(SessionExpires::parse)
            .map(|se| SessionTimer::new(now, se.secs, se.refresher != Some(Refresher::Uas)));
        self.set_timer(id, timer);
    }

    fn set_timer(&mut self, id: LegId, timer: Option<SessionTimer>) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let at = timer.as_ref().map(|t| t.next);
        leg.timer = timer;
        self.schedule(Wake::Session(id), at);
    }

    /// The session timer's wake-up: refresh, or end a session nobody refreshed.
    pub(crate) fn session_timeout(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if !leg.is_established() {
            return;
        }
        let Some(timer) = leg.timer.as_mut() else { return };
        if now < timer.next {
            return; // A stale wake-up: the timer was reset since.
        }
        if now >= timer.expiry() || !timer.we_refresh {
            let reason = if timer.we_refresh { "session refresh failed: interval expired" } else { "session expired: no refresh from the peer (RFC 4028)" };
            self.end_dialog(now, id, reason.to_owned());
            return;
        }
        // Refresh; if it gets no answer, the session ends at expiry.
        timer.next = timer.expiry();
        let (at, busy) = (timer.next, timer.refreshing.is_some());
        let update = leg.peer_allows_update;
        self.schedule(Wake::Session(id), Some(at));
        if !busy {
            self.send_refresh(now, id, update, 0, false);
        }
    }

    /// Sends a session refresh of ours: an UPDATE without a body, or a re-INVITE with our SDP.
    fn send_refresh(&mut self, now: Instant, id: LegId, update: bool, auth_rounds: u32, interval_raised: bool) {
        let method = if update { Method::Update } else { Method::Invite };
        let Some((mut request, transport, dest)) = self.dialog_request(id, method) else { return };
        let Some(leg) = self.legs.get(&id) else { return };
        let Some(timer) = leg.timer.as_ref() else { return };
        let secs = u32::try_from(timer.interval.as_secs()).unwrap_or(u32::MAX);
        let (user, account, sdp) = (leg.contact_user.clone(), leg.account, leg.local_sdp.clone());
        let contact_at = account.and_then(|a| self.accounts.get(&a)).map(|a| self.contact_address(a)).unwrap_or_else(|| self.advertised());
        request.headers.push(HeaderName::Contact, self.contact(&user, contact_at, &transport).to_string());
        request.headers.push(HeaderName::Supported, super::build::SUPPORTED);
        request.headers.push(HeaderName::SessionExpires, SessionExpires { secs, refresher: Some(Refresher::Uac) }.to_string());
        if interval_raised {
            request.headers.push(HeaderName::MinSe, secs.to_string());
        }
        if !update {
            request.headers.push(HeaderName::Allow, super::build::ALLOW);
            if let Some(sdp) = sdp {
                // Our current description, unchanged and with the same version (RFC 3264 §8).
                request.headers.push(HeaderName::ContentType, "application/sdp");
                request.body = sdp;
            }
        }
        if let Some(c) = account.and_then(|a| self.credentials_for(a, &request)) {
            request.headers.push(c.name, c.value);
        }
        let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let tx = self.start_client(now, request, transport, dest, Owner::Leg(id));
        if let Some(timer) = self.legs.get_mut(&id).and_then(|l| l.timer.as_mut()) {
            timer.refreshing = Some(Refresh { tx, update, cseq, auth_rounds, interval_raised });
        }
    }

    /// Whether `tx` is the leg's refresh in progress.
    pub(crate) fn is_refresh(&self, id: LegId, tx: u64) -> bool {
        self.legs.get(&id).and_then(|l| l.timer.as_ref()).and_then(|t| t.refreshing).is_some_and(|r| r.tx == tx)
    }

    /// A response to our refresh.
    pub(crate) fn refresh_response(&mut self, now: Instant, id: LegId, response: &Response) {
        let Some(refresh) = self.legs.get(&id).and_then(|l| l.timer.as_ref()).and_then(|t| t.refreshing) else { return };
        let status = response.status;
        if status < 200 {
            return;
        }
        if let Some(timer) = self.legs.get_mut(&id).and_then(|l| l.timer.as_mut()) {
            timer.refreshing = None;
        }
        match status {
            200..=299 => {
                if !refresh.update {
                    self.send_ack_2xx(id, Some(refresh.cseq));
                }
                self.timer_from_2xx(now, id, response);
            }
            401 | 407 if refresh.auth_rounds < super::legs::MAX_AUTH_ROUNDS => {
                let account = self.legs.get(&id).and_then(|l| l.account);
                if let Some(account) = account
                    && self.take_challenge(account, response).is_ok()
                {
                    self.send_refresh(now, id, refresh.update, refresh.auth_rounds + 1, refresh.interval_raised);
                }
            }
            422 if !refresh.interval_raised => {
                let wanted = min_se(&response.headers).ok().flatten();
                if let (Some(secs), Some(timer)) = (wanted, self.legs.get_mut(&id).and_then(|l| l.timer.as_mut())) {
                    timer.interval = timer.interval.max(Duration::from_secs(u64::from(secs)));
                    self.send_refresh(now, id, refresh.update, refresh.auth_rounds, true);
                }
            }
            405 | 501 if refresh.update => {
                // The peer listed UPDATE but does not take it: refresh with a re-INVITE.
                if let Some(leg) = self.legs.get_mut(&id) {
                    leg.peer_allows_update = false;
                }
                self.send_refresh(now, id, false, refresh.auth_rounds, refresh.interval_raised);
            }
            408 | 481 => self.end_dialog(now, id, format!("session refresh failed: {status} {}", response.reason)),
            491 => {
                // Glare with a request of the peer's: try again after 2.1-4 s (RFC 3261 §14.1).
                let wait = Duration::from_millis(2100 + (self.ids.unit() * 1900.0) as u64);
                self.retry_refresh_at(id, now + wait);
            }
            _ => {
                // The session goes on; try once more halfway to its end.
                let half = self.legs.get(&id).and_then(|l| l.timer.as_ref()).map(|t| now + t.expiry().saturating_duration_since(now) / 2);
                if let Some(at) = half {
                    self.retry_refresh_at(id, at);
                }
            }
        }
    }

    fn retry_refresh_at(&mut self, id: LegId, at: Instant) {
        let Some(timer) = self.legs.get_mut(&id).and_then(|l| l.timer.as_mut()) else { return };
        if at < timer.expiry() {
            timer.next = at;
            self.schedule(Wake::Session(id), Some(at));
        }
    }

    /// Our refresh got no response at all: the peer is gone (§10).
    pub(crate) fn refresh_failed(&mut self, now: Instant, id: LegId) {
        self.end_dialog(now, id, "session refresh failed: no response".to_owned());
    }

    /// Ends an established dialog from our side for `reason`: BYE, and the call is reported ended.
    fn end_dialog(&mut self, now: Instant, id: LegId, reason: String) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let reported = leg.local_hangup;
        leg.local_hangup = true;
        leg.timer = None;
        self.send_bye(now, id);
        self.end_leg(now, id);
        if !reported {
            self.events.push_back(Event::CallEnded { leg: id, by: Ender::Local, reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_values() {
        assert_eq!(SessionExpires::parse("1800"), Some(SessionExpires { secs: 1800, refresher: None }));
        assert_eq!(SessionExpires::parse(" 90 ; refresher = UAS"), Some(SessionExpires { secs: 90, refresher: Some(Refresher::Uas) }));
        assert_eq!(SessionExpires::parse("600;x=1;refresher=uac").map(|s| s.to_string()), Some("600;refresher=uac".to_owned()));
        for bad in ["", "abc", "0", "-5", "90;refresher=both", "99999999999"] {
            assert_eq!(SessionExpires::parse(bad), None, "{bad:?}");
        }
    }
}
