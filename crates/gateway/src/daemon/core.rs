//! The state of the SIP task: the endpoint, the phones, the calls, and what the gateway decides
//! for each call (who may call, which phone answers, with what codec and handler).
//!
//! One task owns all of it; the control API and the media tasks reach it through channels.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use happ_media::Law;
use happ_media::session::{Direction as MediaDirection, MediaSession, MediaStats, SessionConfig};
use happ_media::units::{NtpTime, Ssrc};
use happ_sip::endpoint::{AccountConfig, Endpoint, Event, IncomingCall, LegId, OutboundCall, RegistrationState};
use happ_sip::message::{HeaderName, Uri};
use happ_sip::sdp::{self, Codec, Direction as SdpDirection, LocalMedia, Negotiated, SessionDescription};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::media::{self, Handler as MediaHandler, MediaCommand, MediaNote, MediaSetup};
use super::mirror::Mirror;
use super::phones::{Phone, Phones};
use crate::api::{ApiError, CallView, DialRequest, PhoneView};
use crate::config::{Config, Handler, PhoneConfig, TelephonyUrl};
use crate::dns::Target;
use crate::metrics::{CallLabels, Metrics, RejectLabels, StateLabels};
use crate::pii::Masked;
use crate::platform::Catalog;
use crate::ports::PortPool;

/// Longest spread of the first registrations at start-up.
const START_SPREAD: Duration = Duration::from_secs(10);

/// Ended calls kept for `GET /calls`.
const RECENT: usize = 200;

/// What [`Core::apply_phones`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PhoneChanges {
    /// Phones new to the gateway.
    pub added: usize,
    /// Phones whose configuration changed.
    pub changed: usize,
    /// Phones no longer served.
    pub removed: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    Ringing,
    Answered,
}

struct Call {
    id: String,
    phone: usize,
    inbound: bool,
    remote: String,
    state: CallState,
    started: SystemTime,
    answered: Option<SystemTime>,
    rtp_port: u16,
    local: LocalMedia,
    /// Our offer (outbound calls, or an inbound INVITE without SDP).
    offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
    /// Sockets bound for the call, until its media task takes them.
    sockets: Option<(std::net::UdpSocket, std::net::UdpSocket)>,
    media: Option<mpsc::Sender<MediaCommand>>,
    ring_deadline: Option<Instant>,
    /// An inbound call ringing before it is answered (`answerDelayMs`): when, and the SDP
    /// answer (or offer) ready for the 200 with what it negotiated.
    answer_at: Option<(Instant, Vec<u8>, Option<Negotiated>)>,
    end_deadline: Instant,
    sip_call_id: String,
    status: Option<u16>,
    reason: Option<String>,
    /// The call's chat at the platform (its outbox key), once mirrored.
    chat: Option<String>,
    /// The call's tracing span: everything logged about the call, by the SIP task or its media
    /// task, carries its id and SIP Call-ID.
    span: tracing::Span,
}

/// The SIP task's state.
pub struct Core {
    /// The SIP endpoint.
    pub endpoint: Endpoint,
    config: Config,
    phones: Phones,
    calls: HashMap<LegId, Call>,
    by_id: HashMap<String, LegId>,
    recent: VecDeque<CallView>,
    /// Ended legs and their call ids, for the statistics their media tasks send last.
    ended: VecDeque<(LegId, String)>,
    ports: PortPool,
    advertised: IpAddr,
    notes: mpsc::Sender<MediaNote>,
    metrics: Arc<Metrics>,
    /// Addresses INVITEs are taken from: every address our phones' registrars and trunks
    /// resolved to.
    allowed: HashSet<IpAddr>,
    next_call: u64,
    seed: u64,
    /// Set at shutdown: new calls are refused with 503.
    pub draining: bool,
    /// The phones of the configuration file, and the platform's last catalog (`[happ]`): the
    /// phones served are both, the file's winning for a number in both.
    local_phones: Vec<PhoneConfig>,
    platform: Option<Catalog>,
    /// Calls mirrored into Happ chats (with `[happ]`).
    mirror: Option<Mirror>,
}

impl Core {
    /// The core for `config`, with phones resolved to `resolved` (same order).
    pub fn new(
        config: Config,
        endpoint: Endpoint,
        resolved: Vec<Result<Vec<Target>, String>>,
        advertised: IpAddr,
        notes: mpsc::Sender<MediaNote>,
        metrics: Arc<Metrics>,
        seed: u64,
    ) -> Result<Core, String> {
        let (first, last) = config.rtp.ports()?;
        let mut phones = Phones::default();
        for (p, targets) in config.phones.iter().zip(resolved) {
            let mut phone = Phone::new(p.clone())?;
            match targets {
                Ok(t) => phone.targets = t,
                Err(e) => phone.resolve_error = Some(e),
            }
            phones.insert(phone);
        }
        for state in ["registered", "registering", "failed", "unregistered", "trunk", "unresolved"] {
            let count = if state == "unresolved" { phones.len() as i64 } else { 0 };
            metrics.registrations.get_or_create(&StateLabels { state: state.into() }).set(count);
        }
        let allowed = phones.iter().flat_map(|(_, p)| p.targets.iter().map(|t| t.addr.ip())).collect();
        Ok(Core {
            endpoint,
            ports: PortPool::new(first, last),
            phones,
            calls: HashMap::new(),
            by_id: HashMap::new(),
            recent: VecDeque::new(),
            ended: VecDeque::new(),
            advertised,
            notes,
            metrics,
            allowed,
            next_call: 0,
            seed,
            draining: false,
            local_phones: config.phones.clone(),
            platform: None,
            mirror: None,
            config,
        })
    }

    /// Adds every resolved phone's account to the endpoint: registration starts for those
    /// that register, spread over up to [`START_SPREAD`] (1 ms per phone) so that thousands of
    /// phones do not send their REGISTERs in one burst. The others wait for
    /// [`resolved`](Self::resolved).
    pub fn start(&mut self, now: Instant) {
        let spread = START_SPREAD.min(Duration::from_millis(self.phones.len() as u64));
        let indices: Vec<usize> = self.phones.iter().map(|(i, _)| i).collect();
        for index in indices {
            let Some(phone) = self.phones.get(index) else { continue };
            if phone.targets.is_empty() {
                warn!(phone = %Masked(&phone.config.phone_number), error = ?phone.resolve_error, "phone not started yet: its telephonyUrl did not resolve");
            } else {
                let delay = spread.mul_f64((self.random() >> 11) as f64 / (1u64 << 53) as f64);
                self.start_phone(now, index, delay);
            }
        }
    }

    fn start_phone(&mut self, now: Instant, index: usize, delay: Duration) {
        let keepalive = (self.config.sip.keepalive_secs > 0).then(|| Duration::from_secs(self.config.sip.keepalive_secs));
        let expires = self.config.sip.registration_expires;
        let Some(phone) = self.phones.get(index) else { return };
        let Some(target) = phone.targets.first() else { return };
        let aor = Uri::sip(Some(&phone.config.sip_login), phone.url.host.clone(), phone.url.port);
        let account = AccountConfig {
            aor,
            display_name: phone.config.display_name.clone(),
            proxy: target.addr,
            transport: target.transport.clone(),
            username: phone.config.sip_login.clone(),
            password: phone.config.password.expose().to_owned(),
            register: phone.config.register,
            expires,
            keepalive: keepalive.filter(|_| phone.config.register),
            contact_user: phone.config.sip_login.clone(),
        };
        info!(phone = %Masked(&phone.config.phone_number), registrar = %target.addr, transport = %target.transport, register = phone.config.register, "phone started");
        let id = self.endpoint.add_account_after(now, account, delay);
        self.phones.set_account(index, Some(id));
        self.recount(index);
    }

    /// The phones whose telephonyUrl has not resolved yet, to look up again.
    pub fn unresolved(&self) -> Vec<(usize, TelephonyUrl)> {
        self.phones.live().filter(|(_, p)| p.account.is_none()).map(|(i, p)| (i, p.url.clone())).collect()
    }

    /// The outcome of looking phone `index` up again: started when it resolved.
    pub fn resolved(&mut self, now: Instant, index: usize, url: &TelephonyUrl, result: Result<Vec<Target>, String>) {
        let Some(phone) = self.phones.get_mut(index) else { return };
        // The slot may have been given to another phone while the lookup ran.
        if phone.account.is_some() || phone.retired || phone.url != *url {
            return;
        }
        match result {
            Ok(targets) if !targets.is_empty() => {
                self.allowed.extend(targets.iter().map(|t| t.addr.ip()));
                phone.targets = targets;
                phone.resolve_error = None;
                self.start_phone(now, index, Duration::ZERO);
            }
            Ok(_) => phone.resolve_error = Some("no address".into()),
            Err(e) => {
                warn!(phone = %Masked(&phone.config.phone_number), error = %e, "telephonyUrl still does not resolve");
                phone.resolve_error = Some(e);
            }
        }
    }

    /// Serves `configs` from now on (a reloaded configuration, or the Happ platform's phones):
    /// new phones are set up (and looked up in DNS by the driver: see [`unresolved`](Self::unresolved)),
    /// removed ones unregister, phones whose SIP identity or registrar changed register anew, and
    /// other changes (assistant, handler, codec, limits) apply to the next calls. Calls in
    /// progress keep the phone they started with. A phone that cannot be set up (an unreadable
    /// `play:` file) changes nothing at all.
    pub fn apply_phones(&mut self, now: Instant, configs: Vec<PhoneConfig>) -> Result<PhoneChanges, String> {
        enum Plan {
            Keep,
            Update(usize, PhoneConfig),
            Replace(usize, Phone),
            Add(Phone),
        }
        let mut plans = Vec::new();
        let mut seen = HashSet::new();
        for config in configs {
            if !seen.insert(config.phone_number.clone()) {
                return Err(format!("phone {} is listed twice", Masked(&config.phone_number)));
            }
            let number = config.phone_number.clone();
            let plan = match self.phones.by_number(&config.phone_number) {
                Some(i) if self.phones[i].config == config => Plan::Keep,
                Some(i) if self.phones[i].needs_new_account(&config) => Plan::Replace(i, Phone::new(config)?),
                Some(i) => {
                    Phone::new(config.clone())?;
                    Plan::Update(i, config)
                }
                None => Plan::Add(Phone::new(config).map_err(|e| format!("phone {}: {e}", Masked(&number)))?),
            };
            plans.push(plan);
        }
        let mut changes = PhoneChanges::default();
        let gone: Vec<usize> = self.phones.live().filter(|(_, p)| !seen.contains(&p.config.phone_number)).map(|(i, _)| i).collect();
        for index in gone {
            info!(phone = %Masked(&self.phones[index].config.phone_number), "phone removed");
            self.retire(now, index);
            changes.removed += 1;
        }
        for plan in plans {
            match plan {
                Plan::Keep => {}
                Plan::Update(index, config) => {
                    info!(phone = %Masked(&config.phone_number), assistant = ?config.assistant_id, handler = %config.handler, "phone changed; next calls use the change");
                    self.phones[index].update(config)?;
                    changes.changed += 1;
                }
                Plan::Replace(index, phone) => {
                    info!(phone = %Masked(&phone.config.phone_number), "phone's SIP account changed; registering anew");
                    self.retire(now, index);
                    self.add_phone(phone);
                    changes.changed += 1;
                }
                Plan::Add(phone) => {
                    info!(phone = %Masked(&phone.config.phone_number), "phone added");
                    self.add_phone(phone);
                    changes.added += 1;
                }
            }
        }
        self.allowed = self.phones.iter().flat_map(|(_, p)| p.targets.iter().map(|t| t.addr.ip())).collect();
        Ok(changes)
    }

    /// Takes a reloaded configuration: its phones (see [`apply_phones`](Self::apply_phones)) and
    /// assistants. The other sections (addresses, ports, limits) need a restart; what differs
    /// there is returned, for the log.
    pub fn reload(&mut self, now: Instant, config: Config) -> Result<(PhoneChanges, Vec<&'static str>), String> {
        self.local_phones = config.phones.clone();
        let changes = self.apply_phones(now, self.merged_phones())?;
        let old = &self.config;
        let ignored: Vec<&'static str> = [
            ("sip", old.sip != config.sip),
            ("rtp", old.rtp != config.rtp),
            ("control", old.control != config.control),
            ("calls", old.calls != config.calls),
            ("log", old.log != config.log),
            ("happ", old.happ != config.happ),
            ("speech", old.speech != config.speech),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        let phones = config.phones.clone();
        self.config.phones = phones;
        self.config.assistants = config.assistants;
        Ok((changes, ignored))
    }

    /// Takes the platform's catalog: its phones are served (with the file's), its assistants
    /// answer them.
    pub fn set_platform(&mut self, now: Instant, catalog: Catalog) -> Result<PhoneChanges, String> {
        let previous = self.platform.replace(catalog);
        match self.apply_phones(now, self.merged_phones()) {
            Ok(changes) => Ok(changes),
            Err(e) => {
                self.platform = previous;
                Err(e)
            }
        }
    }

    /// The platform's phones, then the file's (a number in both is the file's).
    fn merged_phones(&self) -> Vec<PhoneConfig> {
        crate::platform::merge_phones(self.platform.as_ref().map_or(&[], |c| &c.phones), &self.local_phones)
    }

    /// A new phone, counted as unresolved until the driver has looked it up.
    fn add_phone(&mut self, phone: Phone) {
        let index = self.phones.insert(phone);
        self.metrics.registrations.get_or_create(&StateLabels { state: "unresolved".into() }).inc();
        self.recount(index);
    }

    /// Takes phone `index` out of service: no new calls, its account unregistered and removed;
    /// its slot is freed when its last call ends.
    fn retire(&mut self, now: Instant, index: usize) {
        let Some(phone) = self.phones.get_mut(index) else { return };
        phone.retired = true;
        let account = phone.account;
        if let Some(account) = account {
            let _ = self.endpoint.remove_account(now, account);
        }
        self.phones.set_account(index, None);
        self.recount(index);
        if self.phones.get(index).is_some_and(|p| p.active == 0) {
            self.retire_done(index);
        }
    }

    /// Frees the slot of a retired phone whose calls are over.
    fn retire_done(&mut self, index: usize) {
        if self.phones.remove(index).is_some() {
            self.metrics.registrations.get_or_create(&StateLabels { state: "retired".into() }).dec();
        }
    }

    /// Moves phone `index` in the `phones` gauge from the state it was counted in to its
    /// current one: O(1) per registration event, whatever the number of phones.
    fn recount(&mut self, index: usize) {
        let Some(phone) = self.phones.get(index) else { return };
        let now = if phone.retired { "retired" } else { self.phone_state(phone).0 };
        let Some(phone) = self.phones.get_mut(index) else { return };
        let before = std::mem::replace(&mut phone.counted, now);
        if before != now {
            self.metrics.registrations.get_or_create(&StateLabels { state: before.into() }).dec();
            self.metrics.registrations.get_or_create(&StateLabels { state: now.into() }).inc();
        }
    }

    fn phone_state<'a>(&'a self, phone: &Phone) -> (&'static str, Option<&'a RegistrationState>) {
        let Some(account) = phone.account else { return ("unresolved", None) };
        if !phone.config.register {
            return ("trunk", None);
        }
        let state = self.endpoint.registration(account);
        let name = match state {
            Some(RegistrationState::Registered { .. }) => "registered",
            Some(RegistrationState::Failed { .. }) => "failed",
            Some(RegistrationState::Unregistered) => "unregistered",
            _ => "registering",
        };
        (name, state)
    }

    fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The next instant a call needs attention (ring timeout, maximum duration).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.calls.values().flat_map(|c| [c.ring_deadline, c.answer_at.as_ref().map(|a| a.0), Some(c.end_deadline)]).flatten().min()
    }

    fn new_id(&mut self) -> String {
        self.next_call += 1;
        let random = (self.random() >> 32) as u32;
        format!("c{}-{random:08x}", self.next_call)
    }

    fn random(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.seed ^ (self.seed >> 29)
    }

    // ---------------------------------------------------------------- endpoint events

    /// Handles one event of the endpoint.
    pub fn handle_event(&mut self, now: Instant, event: Event) {
        let leg = match &event {
            Event::CallProgress { leg, .. }
            | Event::CallAnswered { leg, .. }
            | Event::CallConfirmed { leg, .. }
            | Event::ReInvite { leg, .. }
            | Event::CallFailed { leg, .. }
            | Event::CallCancelled { leg }
            | Event::CallEnded { leg, .. }
            | Event::Info { leg, .. } => Some(*leg),
            _ => None,
        };
        let span = leg.map_or_else(tracing::Span::none, |l| self.span(l));
        let _in_call = span.enter();
        match event {
            Event::Registration { account, state } => {
                let Some(index) = self.phones.by_account(account) else { return };
                if let Some(phone) = self.phones.get(index) {
                    let number = Masked(&phone.config.phone_number);
                    match &state {
                        RegistrationState::Registered { expires, .. } => info!(phone = %number, expires = expires.as_secs(), "registered"),
                        RegistrationState::Failed { status, reason, retry_in } => {
                            warn!(phone = %number, status = ?status, %reason, retry_in = retry_in.as_secs(), "registration failed")
                        }
                        other => info!(phone = %number, state = ?other, "registration"),
                    }
                }
                self.recount(index);
            }
            Event::Challenged { account, method, status, realm, algorithm, stale } => {
                if let Some(phone) = self.phones.by_account(account).and_then(|i| self.phones.get(i)) {
                    info!(phone = %Masked(&phone.config.phone_number), %method, status, %realm, %algorithm, stale, "authentication challenge");
                }
            }
            Event::IncomingCall(call) => self.incoming_call(now, *call),
            Event::CallProgress { leg, status, sdp, .. } => {
                if let Some(body) = sdp {
                    self.remote_sdp(now, leg, &body, false);
                }
                info!(%leg, status, "call progress");
            }
            Event::CallAnswered { leg, sdp } => {
                if let Some(body) = sdp {
                    self.remote_sdp(now, leg, &body, true);
                }
                self.answered(leg);
            }
            Event::CallConfirmed { leg, sdp } => {
                if let Some(body) = sdp {
                    // The answer to the offer we made in our 200 (an INVITE without SDP).
                    self.remote_sdp(now, leg, &body, true);
                }
            }
            Event::ReInvite { leg, sdp } => self.reinvite(now, leg, sdp),
            Event::CallFailed { leg, status, reason } => self.end_call(leg, "failed", Some(status), reason),
            Event::CallCancelled { leg } => self.end_call(leg, "cancelled", None, "cancelled by the caller".into()),
            Event::CallEnded { leg, by, reason } => {
                let outcome = if self.calls.get(&leg).is_some_and(|c| c.state == CallState::Answered) { "answered" } else { "cancelled" };
                self.end_call(leg, outcome, None, format!("{reason} ({})", if by == happ_sip::endpoint::Ender::Local { "local" } else { "remote" }));
            }
            Event::Info { leg, content_type, .. } => info!(%leg, content_type = ?content_type, "INFO in call"),
        }
    }

    fn reject(&mut self, now: Instant, leg: LegId, status: u16, reason: &str, log: &str) {
        info!(%leg, status, "{log}");
        self.metrics.rejected.get_or_create(&RejectLabels { status: status.to_string() }).inc();
        self.metrics.calls.get_or_create(&CallLabels { direction: "inbound".into(), outcome: "rejected".into() }).inc();
        let headers = if status == 503 { vec![(HeaderName::RetryAfter, "10".to_owned())] } else { vec![] };
        let _ = self.endpoint.reject(now, leg, status, Some(reason), &headers);
    }

    fn incoming_call(&mut self, now: Instant, call: IncomingCall) {
        let leg = call.leg;
        if !self.allowed.contains(&call.source.ip()) {
            self.reject(now, leg, 403, "Forbidden", &format!("INVITE from {} which is neither a registrar nor a trunk of ours", call.source.ip()));
            return;
        }
        if self.draining {
            self.reject(now, leg, 503, "Service Unavailable", "shutting down");
            return;
        }
        let users = [call.request_uri.user.clone(), call.to.uri.user.clone()];
        let Some(index) = self.phones.live().find(|(_, p)| users.iter().flatten().any(|u| p.answers_to(u))).map(|(i, _)| i) else {
            self.reject(now, leg, 404, "Not Found", "no phone for the number called");
            return;
        };
        if self.active_calls() >= self.config.calls.max_concurrent as usize {
            self.reject(now, leg, 503, "Service Unavailable", "at the gateway's call limit");
            return;
        }
        let Some(phone) = self.phones.get(index) else { return };
        if phone.config.max_calls.is_some_and(|m| phone.active >= m) {
            self.reject(now, leg, 486, "Busy Here", "at the phone's call limit");
            return;
        }
        if phone.handler == Handler::Assistant {
            // The assistant bridge is not part of this build yet: refuse honestly.
            self.reject(now, leg, 480, "Temporarily Unavailable", "the assistant handler is not available in this build");
            return;
        }
        let offer = match call.sdp.as_deref().map(SessionDescription::parse_bytes) {
            Some(Err(e)) => {
                self.reject(now, leg, 400, &format!("Bad Request (SDP: {e})"), "malformed SDP offer");
                return;
            }
            Some(Ok(o)) => Some(o),
            None => None,
        };
        let Some((port, sockets)) = self.bind_ports() else {
            self.reject(now, leg, 503, "Service Unavailable", "no free RTP port");
            return;
        };
        let session_id = self.random() >> 1;
        let mut local = LocalMedia::new(self.advertised, port, self.phones[index].codec, session_id);
        local.fallback = true;
        local.telephone_event = true;
        local.comfort_noise = true;
        let (our_sdp, negotiated, offer_sent) = match &offer {
            Some(offer) => match sdp::answer(offer, &local) {
                Ok(a) => (a.sdp, Some(a.negotiated), None),
                Err(e) => {
                    self.ports.give_back(port);
                    let status = e.sip_status();
                    self.reject(now, leg, status, &format!("{} ({e})", happ_sip::message::reason_phrase(status)), "no acceptable media in the offer");
                    return;
                }
            },
            None => {
                let o = sdp::offer(&local);
                (o.clone(), None, Some(o))
            }
        };
        let id = self.new_id();
        let remote = call.from.uri.user.clone().unwrap_or_else(|| call.from.uri.to_string());
        let span = tracing::info_span!("call", id = %id, sip_call_id = %call.call_id, direction = "inbound");
        let _in_call = span.enter();
        info!(%leg, call = %id, from = %Masked(&remote), phone = %Masked(&self.phones[index].config.phone_number), "inbound call");
        self.phones[index].active += 1;
        self.calls.insert(
            leg,
            Call {
                id: id.clone(),
                phone: index,
                inbound: true,
                remote,
                state: CallState::Ringing,
                started: SystemTime::now(),
                answered: None,
                rtp_port: port,
                local,
                offer: offer_sent,
                negotiated: None,
                sockets: Some(sockets),
                media: None,
                ring_deadline: None,
                answer_at: None,
                end_deadline: now + Duration::from_secs(self.config.calls.max_duration_secs),
                sip_call_id: call.call_id.clone(),
                span: span.clone(),
                status: None,
                reason: None,
                chat: None,
            },
        );
        self.by_id.insert(id, leg);
        self.metrics.active_calls.set(self.active_calls() as i64);
        let _ = self.endpoint.ring(now, leg, None);
        let delay = Duration::from_millis(self.phones[index].config.answer_delay_ms);
        let body = our_sdp.to_string().into_bytes();
        if delay.is_zero() {
            self.answer(now, leg, &body, negotiated);
        } else if let Some(c) = self.calls.get_mut(&leg) {
            c.answer_at = Some((now + delay, body, negotiated));
        }
    }

    /// Sends the 200 of an inbound call and starts its media.
    fn answer(&mut self, now: Instant, leg: LegId, sdp: &[u8], negotiated: Option<Negotiated>) {
        if let Err(e) = self.endpoint.answer(now, leg, sdp) {
            warn!(%leg, error = %e, "cannot answer");
            return;
        }
        self.answered(leg);
        // Media flows from the 200 OK on (not from the ACK).
        if let Some(n) = negotiated {
            self.start_media(leg, n);
        }
    }

    /// Binds an RTP/RTCP socket pair from the pool.
    fn bind_ports(&mut self) -> Option<(u16, (std::net::UdpSocket, std::net::UdpSocket))> {
        let bind = self.config.rtp.bind;
        let in_use = self.ports.in_use() + 1;
        self.metrics.rtp_ports_in_use.set(in_use as i64);
        self.metrics.rtp_ports_capacity.set(self.ports.capacity() as i64);
        let mut bound = None;
        let port = self.ports.take(|port| {
            let rtp = std::net::UdpSocket::bind(SocketAddr::new(bind, port));
            let rtcp = std::net::UdpSocket::bind(SocketAddr::new(bind, port + 1));
            match (rtp, rtcp) {
                (Ok(a), Ok(b)) => {
                    bound = Some((a, b));
                    true
                }
                _ => false,
            }
        })?;
        Some((port, bound?))
    }

    fn answered(&mut self, leg: LegId) {
        let Some(call) = self.calls.get_mut(&leg) else { return };
        if call.state == CallState::Answered {
            return;
        }
        call.state = CallState::Answered;
        call.answered = Some(SystemTime::now());
        call.ring_deadline = None;
        info!(%leg, call = %call.id, "answered");
        // Mirrored into a chat of the phone's assistant.
        let Some(phone) = self.phones.get(call.phone) else { return };
        if let (Some(mirror), Some(assistant)) = (&self.mirror, &phone.config.assistant_id) {
            let text = if call.inbound {
                format!("Inbound call from {} to {}, answered.", call.remote, phone.config.phone_number)
            } else {
                format!("Outbound call from {} to {}, answered.", phone.config.phone_number, call.remote)
            };
            mirror.opened(&call.id, assistant, text);
            call.chat = Some(call.id.clone());
        }
    }

    /// The span of the call on `leg` (none when there is no such call).
    fn span(&self, leg: LegId) -> tracing::Span {
        self.calls.get(&leg).map_or_else(tracing::Span::none, |c| c.span.clone())
    }

    /// Mirrors calls into Happ chats through `mirror` from now on.
    pub fn set_mirror(&mut self, mirror: Mirror) {
        self.mirror = Some(mirror);
    }

    /// The mirror, to close at shutdown.
    pub fn take_mirror(&mut self) -> Option<Mirror> {
        self.mirror.take()
    }

    /// Takes the peer's SDP (an answer to our offer, or early media) and starts or updates media.
    fn remote_sdp(&mut self, now: Instant, leg: LegId, body: &[u8], final_answer: bool) {
        let Some(call) = self.calls.get(&leg) else { return };
        let Some(offer) = call.offer.clone() else { return };
        let result =
            SessionDescription::parse_bytes(body).map_err(|e| e.to_string()).and_then(|a| sdp::negotiate_answer(&offer, &a).map_err(|e| e.to_string()));
        match result {
            Ok(n) => {
                if self.calls.get(&leg).is_some_and(|c| c.media.is_some()) {
                    self.update_media(leg, &n);
                } else {
                    self.start_media(leg, n);
                }
            }
            Err(e) if final_answer => {
                warn!(%leg, error = %e, "unusable SDP answer: hanging up");
                let _ = self.endpoint.hangup(now, leg);
                self.end_call(leg, "failed", Some(488), format!("unusable SDP answer: {e}"));
            }
            Err(e) => warn!(%leg, error = %e, "unusable early-media SDP: ignored"),
        }
    }

    fn media_config(&mut self, n: &Negotiated) -> SessionConfig {
        let law = law_of(n.codec);
        let wallclock = NtpTime::from_unix(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
        let r = self.random();
        SessionConfig {
            law,
            payload_type: Some(n.payload_type),
            telephone_event: n.telephone_event,
            ptime: n.ptime,
            pull_rate: 8_000,
            push_rate: 8_000,
            ssrc: Ssrc(r as u32),
            first_seq: (r >> 32) as u16,
            first_ts: (r >> 16) as u32,
            cname: format!("happ-gateway@{}", self.advertised),
            inactivity: (self.config.rtp.inactivity_secs > 0).then(|| Duration::from_secs(self.config.rtp.inactivity_secs)),
            wallclock,
            ..SessionConfig::default()
        }
    }

    fn start_media(&mut self, leg: LegId, n: Negotiated) {
        let config = self.media_config(&n);
        let Some(call) = self.calls.get_mut(&leg) else { return };
        let Some((rtp, rtcp)) = call.sockets.take() else { return };
        let phone = &self.phones[call.phone];
        let handler = match (&phone.handler, &phone.play) {
            (Handler::Echo, _) => MediaHandler::Echo,
            (Handler::Play(_), Some(samples)) => MediaHandler::Play { samples: samples.clone(), position: 0 },
            _ => MediaHandler::Silence,
        };
        let mut session = match MediaSession::new(config, Instant::now()) {
            Ok(s) => s,
            Err(e) => {
                warn!(%leg, error = %e, "cannot start media");
                return;
            }
        };
        session.set_direction(direction_of(n.direction));
        let (Ok(rtp), Ok(rtcp)) = (
            rtp.set_nonblocking(true).and_then(|()| tokio::net::UdpSocket::from_std(rtp)),
            rtcp.set_nonblocking(true).and_then(|()| tokio::net::UdpSocket::from_std(rtcp)),
        ) else {
            warn!(%leg, "cannot register RTP sockets with the runtime");
            return;
        };
        let (tx, rx) = mpsc::channel(8);
        let setup = MediaSetup { leg, rtp, rtcp, remote_rtp: n.rtp, remote_rtcp: n.rtcp, session, handler };
        tokio::spawn(tracing::Instrument::instrument(media::run(setup, rx, self.notes.clone()), call.span.clone()));
        info!(%leg, call = %call.id, codec = n.codec.name(), remote = %n.rtp, ptime = n.ptime.as_millis() as u64, "media started");
        call.media = Some(tx);
        call.negotiated = Some(n);
    }

    fn update_media(&mut self, leg: LegId, n: &Negotiated) {
        let Some(call) = self.calls.get_mut(&leg) else { return };
        if let Some(tx) = &call.media {
            let _ = tx.try_send(MediaCommand::Update {
                rtp: n.rtp,
                rtcp: n.rtcp,
                law: law_of(n.codec),
                payload_type: n.payload_type,
                telephone_event: n.telephone_event,
                direction: direction_of(n.direction),
            });
        }
        call.negotiated = Some(n.clone());
    }

    fn reinvite(&mut self, now: Instant, leg: LegId, sdp: Option<Vec<u8>>) {
        let Some(call) = self.calls.get_mut(&leg) else {
            let _ = self.endpoint.reject(now, leg, 481, None, &[]);
            return;
        };
        let Some(body) = sdp else {
            // An offer-less re-INVITE: offer what we have (RFC 3264 §8).
            call.local.session_version += 1;
            let offer = sdp::offer(&call.local);
            call.offer = Some(offer.clone());
            let _ = self.endpoint.answer(now, leg, offer.to_string().as_bytes());
            return;
        };
        // Keep the codec in use first, when the new offer still has it.
        if let Some(n) = &call.negotiated {
            call.local.codec = n.codec;
        }
        call.local.session_version += 1;
        let result = SessionDescription::parse_bytes(&body)
            .map_err(|e| (400, e.to_string()))
            .and_then(|o| sdp::answer(&o, &call.local).map_err(|e| (e.sip_status(), e.to_string())));
        match result {
            Ok(a) => {
                let holds = a.negotiated.peer_holds;
                info!(%leg, hold = holds, direction = ?a.negotiated.direction, codec = a.negotiated.codec.name(), "re-INVITE");
                let _ = self.endpoint.answer(now, leg, a.sdp.to_string().as_bytes());
                if call.media.is_some() {
                    self.update_media(leg, &a.negotiated);
                } else {
                    self.start_media(leg, a.negotiated);
                }
            }
            Err((status, e)) => {
                call.local.session_version -= 1;
                warn!(%leg, status, error = %e, "re-INVITE refused; the call goes on");
                let _ = self.endpoint.reject(now, leg, status, None, &[]);
            }
        }
    }

    /// Forgets a call: stops its media, frees its ports, records how it ended.
    fn end_call(&mut self, leg: LegId, outcome: &str, status: Option<u16>, reason: String) {
        let Some(mut call) = self.calls.remove(&leg) else { return };
        self.by_id.remove(&call.id);
        if let Some(tx) = call.media.take() {
            let _ = tx.try_send(MediaCommand::Stop);
        }
        self.ports.give_back(call.rtp_port);
        if let Some(phone) = self.phones.get_mut(call.phone) {
            phone.active = phone.active.saturating_sub(1);
            if phone.retired && phone.active == 0 {
                self.retire_done(call.phone);
            }
        }
        if let (Some(mirror), Some(chat), Some(answered)) = (&self.mirror, &call.chat, call.answered) {
            let secs = SystemTime::now().duration_since(answered).unwrap_or_default().as_secs();
            mirror.note(chat, format!("Call ended after {secs} s: {reason}."));
        }
        call.status = status;
        call.reason = Some(reason.clone());
        info!(%leg, call = %call.id, outcome, status = ?status, %reason, "call ended");
        let direction = if call.inbound { "inbound" } else { "outbound" };
        self.metrics.calls.get_or_create(&CallLabels { direction: direction.into(), outcome: outcome.into() }).inc();
        self.metrics.active_calls.set(self.active_calls() as i64);
        self.metrics.rtp_ports_in_use.set(self.ports.in_use() as i64);
        let mut view = self.view(&call, true);
        view.status = status;
        self.recent.push_front(view);
        self.recent.truncate(RECENT);
        self.ended.push_front((leg, call.id.clone()));
        self.ended.truncate(RECENT);
    }

    /// Handles a note of a media task.
    pub fn handle_note(&mut self, now: Instant, note: MediaNote) {
        match note {
            MediaNote::Hangup { leg, reason } => {
                let _ = self.endpoint.hangup(now, leg);
                let outcome = if self.calls.get(&leg).is_some_and(|c| c.state == CallState::Answered) { "answered" } else { "cancelled" };
                self.end_call(leg, outcome, None, reason);
            }
            MediaNote::Done { leg, stats } => {
                self.metrics.add_media(&stats);
                self.record_stats(leg, &stats);
            }
        }
    }

    fn record_stats(&mut self, leg: LegId, stats: &MediaStats) {
        let Some((_, id)) = self.ended.iter().find(|(l, _)| *l == leg) else { return };
        if let Some(v) = self.recent.iter_mut().find(|v| v.id == *id) {
            v.packets_lost = Some(stats.lost);
            v.jitter_ms = Some(stats.jitter.as_secs_f64() * 1000.0);
        }
    }

    /// Ring timeouts and maximum durations.
    pub fn handle_timeout(&mut self, now: Instant) {
        let answers: Vec<LegId> = self.calls.iter().filter(|(_, c)| c.answer_at.as_ref().is_some_and(|a| a.0 <= now)).map(|(leg, _)| *leg).collect();
        for leg in answers {
            let span = self.span(leg);
            let _in_call = span.enter();
            if let Some((_, sdp, negotiated)) = self.calls.get_mut(&leg).and_then(|c| c.answer_at.take()) {
                self.answer(now, leg, &sdp, negotiated);
            }
        }
        let due: Vec<(LegId, bool)> = self
            .calls
            .iter()
            .filter_map(|(leg, c)| {
                if c.ring_deadline.is_some_and(|d| d <= now) {
                    Some((*leg, true))
                } else if c.end_deadline <= now {
                    Some((*leg, false))
                } else {
                    None
                }
            })
            .collect();
        for (leg, ringing) in due {
            let span = self.span(leg);
            let _in_call = span.enter();
            let _ = self.endpoint.hangup(now, leg);
            if ringing {
                self.end_call(leg, "failed", Some(408), "no answer within the ring timeout".into());
            } else {
                self.end_call(leg, "answered", None, "maximum call duration reached".into());
            }
        }
    }

    // ---------------------------------------------------------------- control API

    /// Places a call.
    pub fn dial(&mut self, now: Instant, request: DialRequest) -> Result<CallView, ApiError> {
        if self.draining {
            return Err(ApiError::new(503, "shutting down"));
        }
        let to = request.to.trim();
        if to.is_empty() || !to.chars().all(|c| c.is_ascii_alphanumeric() || "+*#-.".contains(c)) {
            return Err(ApiError::new(400, format!("{to:?} is not a number to call")));
        }
        let index = self
            .phones
            .live()
            .find(|(_, p)| p.config.phone_number == request.phone || p.config.sip_login == request.phone)
            .map(|(i, _)| i)
            .ok_or_else(|| ApiError::new(404, format!("no phone {:?}", request.phone)))?;
        let phone = &self.phones[index];
        let account = phone.account.ok_or_else(|| {
            ApiError::new(503, format!("phone {} has no reachable proxy: {}", request.phone, phone.resolve_error.clone().unwrap_or_default()))
        })?;
        let (state, _) = self.phone_state(phone);
        if phone.config.register && state != "registered" {
            return Err(ApiError::new(503, format!("phone {} is not registered ({state})", request.phone)));
        }
        if self.active_calls() >= self.config.calls.max_concurrent as usize {
            return Err(ApiError::new(503, "at the gateway's call limit"));
        }
        if phone.config.max_calls.is_some_and(|m| phone.active >= m) {
            return Err(ApiError::new(409, format!("phone {} is at its call limit", request.phone)));
        }
        let target = Uri::sip(Some(to), phone.url.host.clone(), phone.url.port);
        let codec = phone.codec;
        let (port, sockets) = self.bind_ports().ok_or_else(|| ApiError::new(503, "no free RTP port"))?;
        let session_id = self.random() >> 1;
        let mut local = LocalMedia::new(self.advertised, port, codec, session_id);
        local.fallback = true;
        local.telephone_event = true;
        let offer = sdp::offer(&local);
        let leg = match self.endpoint.invite(now, OutboundCall { account, target, sdp: offer.to_string().into_bytes(), headers: vec![] }) {
            Ok(leg) => leg,
            Err(e) => {
                self.ports.give_back(port);
                return Err(ApiError::new(500, e.to_string()));
            }
        };
        let id = self.new_id();
        let span = tracing::info_span!("call", id = %id, sip_call_id = %self.endpoint.leg_call_id(leg).unwrap_or_default(), direction = "outbound");
        let _in_call = span.enter();
        info!(%leg, call = %id, to = %Masked(to), phone = %Masked(&self.phones[index].config.phone_number), "outbound call");
        self.phones[index].active += 1;
        let call = Call {
            id: id.clone(),
            phone: index,
            inbound: false,
            remote: to.to_owned(),
            state: CallState::Ringing,
            started: SystemTime::now(),
            answered: None,
            rtp_port: port,
            local,
            offer: Some(offer),
            negotiated: None,
            sockets: Some(sockets),
            media: None,
            ring_deadline: Some(now + Duration::from_secs(self.config.calls.ring_timeout_secs)),
            answer_at: None,
            end_deadline: now + Duration::from_secs(self.config.calls.max_duration_secs),
            sip_call_id: self.endpoint.leg_call_id(leg).unwrap_or_default().to_owned(),
            span: span.clone(),
            status: None,
            reason: None,
            chat: None,
        };
        let view = self.view(&call, false);
        self.calls.insert(leg, call);
        self.by_id.insert(id, leg);
        self.metrics.active_calls.set(self.active_calls() as i64);
        Ok(view)
    }

    /// Hangs up a call by id.
    pub fn hangup(&mut self, now: Instant, id: &str) -> Result<(), ApiError> {
        let leg = *self.by_id.get(id).ok_or_else(|| ApiError::new(404, format!("no call {id:?} in progress")))?;
        let span = self.span(leg);
        let _in_call = span.enter();
        self.endpoint.hangup(now, leg).map_err(|e| ApiError::new(409, e.to_string()))?;
        let outcome = if self.calls.get(&leg).is_some_and(|c| c.state == CallState::Answered) { "answered" } else { "cancelled" };
        self.end_call(leg, outcome, None, "hung up through the control API".into());
        Ok(())
    }

    /// Hangs up every call (end of the drain).
    pub fn hangup_all(&mut self, now: Instant, reason: &str) {
        let legs: Vec<LegId> = self.calls.keys().copied().collect();
        for leg in legs {
            let _ = self.endpoint.hangup(now, leg);
            self.end_call(leg, "answered", None, reason.to_owned());
        }
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    fn view(&self, call: &Call, ended: bool) -> CallView {
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        CallView {
            id: call.id.clone(),
            direction: if call.inbound { "inbound" } else { "outbound" }.into(),
            phone: self.phones.get(call.phone).map(|p| p.config.phone_number.clone()).unwrap_or_default(),
            remote: call.remote.clone(),
            state: if ended {
                "ended"
            } else if call.state == CallState::Answered {
                "answered"
            } else {
                "ringing"
            }
            .into(),
            started_at: secs(call.started),
            answered_at: call.answered.map(secs),
            ended_at: ended.then(|| secs(SystemTime::now())),
            codec: call.negotiated.as_ref().map(|n| n.codec.name().to_owned()),
            status: call.status,
            reason: call.reason.clone(),
            sip_call_id: Some(call.sip_call_id.clone()),
            packets_lost: None,
            jitter_ms: None,
        }
    }

    /// Calls in progress, then recently ended ones.
    pub fn calls_view(&self) -> Vec<CallView> {
        let mut out: Vec<CallView> = self.calls.values().map(|c| self.view(c, false)).collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        out.extend(self.recent.iter().cloned());
        out
    }

    /// One call.
    pub fn call_view(&self, id: &str) -> Option<CallView> {
        if let Some(leg) = self.by_id.get(id) {
            return self.calls.get(leg).map(|c| self.view(c, false));
        }
        self.recent.iter().find(|v| v.id == id).cloned()
    }

    /// The phones and their registration.
    pub fn phones_view(&self) -> Vec<PhoneView> {
        self.phones
            .live()
            .map(|(_, p)| {
                let (state, reg) = self.phone_state(p);
                let mut v = PhoneView {
                    phone_number: p.config.phone_number.clone(),
                    sip_login: p.config.sip_login.clone(),
                    telephony_url: p.config.telephony_url.clone(),
                    targets: p.targets.iter().map(|t| format!("{} ({})", t.addr, t.transport)).collect(),
                    state: state.into(),
                    expires: None,
                    contact: None,
                    last_status: None,
                    last_error: p.resolve_error.clone(),
                    retry_in: None,
                    active_calls: p.active,
                    handler: p.config.handler.clone(),
                    assistant_id: p.config.assistant_id.clone(),
                    source: if self.local_phones.iter().any(|l| l.phone_number == p.config.phone_number) { "config" } else { "happ" }.into(),
                };
                match reg {
                    Some(RegistrationState::Registered { expires, contact }) => {
                        v.expires = Some(expires.as_secs());
                        v.contact = Some(contact.clone());
                    }
                    Some(RegistrationState::Failed { status, reason, retry_in }) => {
                        v.last_status = *status;
                        v.last_error = Some(reason.clone());
                        v.retry_in = Some(retry_in.as_secs());
                    }
                    _ => {}
                }
                v
            })
            .collect()
    }
}

fn law_of(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Ulaw,
        Codec::Pcma => Law::Alaw,
    }
}

fn direction_of(d: SdpDirection) -> MediaDirection {
    match d {
        SdpDirection::SendRecv => MediaDirection::SendRecv,
        SdpDirection::SendOnly => MediaDirection::SendOnly,
        SdpDirection::RecvOnly => MediaDirection::RecvOnly,
        SdpDirection::Inactive => MediaDirection::Inactive,
    }
}
