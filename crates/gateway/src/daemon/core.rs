//! The state of the SIP task: the endpoint, the phones and the call table, and the dispatch of
//! what happens to them (endpoint events, media notes, timeouts, control API requests).
//!
//! One task owns all of it; the control API and the media tasks reach it through channels. The
//! core does no I/O of its own beyond binding a call's port pair: every entry point takes the
//! time (`now` for deadlines, `wall` for the times it records), and what it wants done goes
//! out through the endpoint's `poll_*` and [`poll_media_start`](Core::poll_media_start), which
//! the driver drains after every input.
//!
//! The parts live by concern: [`admission`](super::admission) decides on new calls,
//! [`phones`](super::phones) serves the phones, [`media_setup`](super::media_setup) prepares
//! media tasks and follows the SDP exchanges of a call, [`views`](super::views) shows calls and
//! phones to the control API.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use happ_media::session::MediaStats;
use happ_sip::endpoint::{Endpoint, Event, IncomingCall, LegId, OutboundCall, RegistrationState};
use happ_sip::message::{HeaderName, Uri};
use happ_sip::sdp::{self, LocalMedia};
use tracing::{info, warn};

use super::admission::{self, Gate, Invite, Refusal, Verdict};
use super::call::{self, Call, CallState};
use super::channels::{MediaCommand, MediaNote};
use super::media::MediaStart;
use super::mirror::Mirror;
use super::phones::{Phone, Phones};
use crate::api::{ApiError, CallView, DialRequest, TranscriptLine};
use crate::assistant::driver::CallNote;
use crate::assistant::{Assistant, Engines};
use crate::config::{AssistantConfig, Config, Handler, PhoneConfig};
use crate::dns::Target;
use crate::metrics::{CallLabels, Metrics, RejectLabels, StateLabels};
use crate::pii::Masked;
use crate::platform::Catalog;
use crate::ports::PortPool;

/// Ended calls kept for `GET /calls`.
const RECENT: usize = 200;

/// The SIP task's state.
pub struct Core {
    /// The SIP endpoint.
    pub endpoint: Endpoint,
    pub(super) config: Config,
    pub(super) phones: Phones,
    pub(super) calls: HashMap<LegId, Call>,
    pub(super) by_id: HashMap<String, LegId>,
    pub(super) recent: VecDeque<CallView>,
    /// Ended legs and their call ids, for the statistics their media tasks send last.
    ended: VecDeque<(LegId, String)>,
    pub(super) ports: PortPool,
    pub(super) advertised: IpAddr,
    pub(super) metrics: Arc<Metrics>,
    /// Addresses INVITEs are taken from: every address our phones' registrars and trunks
    /// resolved to.
    pub(super) allowed: HashSet<IpAddr>,
    /// Media tasks prepared, for the driver to spawn.
    pub(super) media_starts: VecDeque<MediaStart>,
    next_call: u64,
    seed: u64,
    /// Set at shutdown: new calls are refused with 503.
    pub draining: bool,
    /// The phones of the configuration file, and the platform's last catalog (`[happ]`): the
    /// phones served are both, the file's winning for a number in both.
    pub(super) local_phones: Vec<PhoneConfig>,
    pub(super) platform: Option<Catalog>,
    /// Calls mirrored into Happ chats (with `[happ]`).
    mirror: Option<Mirror>,
    /// The speech engines of assistant calls, or why there are none.
    engines: Result<Arc<Engines>, String>,
    /// The assistants that can answer, by id.
    assistants: HashMap<String, Arc<Assistant>>,
    /// Ended calls whose media task still reports (the last transcript entries): their chat and
    /// the closing note that goes after those entries.
    closing: HashMap<LegId, (Option<String>, Option<String>)>,
}

impl Core {
    /// The core for `config`, with phones resolved to `resolved` (same order).
    pub fn new(
        config: Config,
        endpoint: Endpoint,
        resolved: Vec<Result<Vec<Target>, String>>,
        advertised: IpAddr,
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
            metrics,
            allowed,
            media_starts: VecDeque::new(),
            next_call: 0,
            seed,
            draining: false,
            local_phones: config.phones.clone(),
            platform: None,
            mirror: None,
            engines: Err("the speech engines are not started".into()),
            assistants: HashMap::new(),
            closing: HashMap::new(),
            config,
        })
    }

    fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The next instant a call needs attention (ring timeout, maximum duration).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.calls.values().map(Call::next_deadline).min()
    }

    fn new_id(&mut self) -> String {
        self.next_call += 1;
        let random = (self.random() >> 32) as u32;
        format!("c{}-{random:08x}", self.next_call)
    }

    pub(super) fn random(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.seed ^ (self.seed >> 29)
    }

    /// The span of the call on `leg` (none when there is no such call).
    fn span(&self, leg: LegId) -> tracing::Span {
        self.calls.get(&leg).map_or_else(tracing::Span::none, |c| c.span.clone())
    }

    /// The outcome of the call on `leg` if it ends now without a failure.
    fn outcome(&self, leg: LegId) -> &'static str {
        call::outcome(self.calls.get(&leg))
    }

    /// Mirrors calls into Happ chats through `mirror` from now on.
    pub fn set_mirror(&mut self, mirror: Mirror) {
        self.mirror = Some(mirror);
    }

    /// The mirror, to close at shutdown.
    pub fn take_mirror(&mut self) -> Option<Mirror> {
        self.mirror.take()
    }

    /// The speech engines of assistant calls (or why they could not start).
    pub fn set_engines(&mut self, engines: Result<Arc<Engines>, String>) {
        self.engines = engines;
    }

    /// Builds the assistants of the configuration and of the platform's catalog (start-up,
    /// reload, each new catalog): their next calls use them, calls in progress keep theirs.
    pub fn refresh_assistants(&mut self) {
        let platform: Vec<AssistantConfig> = self.platform.as_ref().map(|c| c.assistants.iter().map(|a| a.config.clone()).collect()).unwrap_or_default();
        self.assistants = crate::assistant::assistants(&self.config, &platform);
    }

    /// Whether the assistant `id` can answer a call now, or why not.
    fn answering(&self, id: Option<&str>) -> Result<(), String> {
        self.engines.as_ref().map_err(Clone::clone)?;
        let id = id.ok_or("the phone has no assistantId")?;
        self.assistants.get(id).map(|_| ()).ok_or_else(|| format!("no assistant {id:?} is configured or could be set up"))
    }

    fn gate<'a>(&'a self, answering: &'a dyn Fn(Option<&str>) -> Result<(), String>) -> Gate<'a> {
        Gate {
            allowed: &self.allowed,
            draining: self.draining,
            phones: &self.phones,
            calls: self.active_calls(),
            max_calls: self.config.calls.max_concurrent as usize,
            answering,
        }
    }

    // ---------------------------------------------------------------- endpoint events

    /// Handles one event of the endpoint.
    pub fn handle_event(&mut self, now: Instant, wall: SystemTime, event: Event) {
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
            Event::IncomingCall(call) => self.incoming_call(now, wall, *call),
            Event::CallProgress { leg, status, sdp, .. } => {
                if let Some(body) = sdp {
                    self.remote_sdp(now, wall, leg, &body, false);
                }
                info!(%leg, status, "call progress");
            }
            Event::CallAnswered { leg, sdp } => {
                if let Some(body) = sdp {
                    self.remote_sdp(now, wall, leg, &body, true);
                }
                self.answered(wall, leg);
            }
            Event::CallConfirmed { leg, sdp } => {
                if let Some(body) = sdp {
                    // The answer to the offer we made in our 200 (an INVITE without SDP).
                    self.remote_sdp(now, wall, leg, &body, true);
                }
            }
            Event::ReInvite { leg, sdp } => self.reinvite(now, wall, leg, sdp),
            Event::CallFailed { leg, status, reason } => self.end_call(wall, leg, "failed", Some(status), reason),
            Event::CallCancelled { leg } => self.end_call(wall, leg, "cancelled", None, "cancelled by the caller".into()),
            Event::CallEnded { leg, by, reason } => {
                let outcome = self.outcome(leg);
                self.end_call(wall, leg, outcome, None, format!("{reason} ({})", if by == happ_sip::endpoint::Ender::Local { "local" } else { "remote" }));
            }
            Event::Info { leg, content_type, body } => match info_digit(content_type.as_deref(), &body) {
                Some(digit) => {
                    if let Some(tx) = self.calls.get(&leg).and_then(|c| c.media.as_ref()) {
                        let _ = tx.send(MediaCommand::Dtmf(digit));
                    }
                }
                None => info!(%leg, content_type = ?content_type, "INFO in call"),
            },
        }
    }

    fn reject(&mut self, now: Instant, leg: LegId, refusal: &Refusal) {
        let Refusal { status, reason, log } = refusal;
        info!(%leg, status, "{log}");
        self.metrics.rejected.get_or_create(&RejectLabels { status: status.to_string() }).inc();
        self.metrics.calls.get_or_create(&CallLabels { direction: "inbound".into(), outcome: "rejected".into() }).inc();
        let headers = if *status == 503 { vec![(HeaderName::RetryAfter, "10".to_owned())] } else { vec![] };
        let _ = self.endpoint.reject(now, leg, *status, Some(reason), &headers);
    }

    fn incoming_call(&mut self, now: Instant, wall: SystemTime, call: IncomingCall) {
        let leg = call.leg;
        let answering = |id: Option<&str>| self.answering(id);
        let verdict = self.gate(&answering).inbound(&Invite::of(&call));
        let (index, offer) = match verdict {
            Verdict::Admit { phone, offer } => (phone, offer),
            Verdict::Refuse(refusal) => return self.reject(now, leg, &refusal),
        };
        let Some((port, sockets)) = self.bind_ports() else {
            return self.reject(now, leg, &Refusal { status: 503, reason: "Service Unavailable".into(), log: "no free RTP port".into() });
        };
        let session_id = self.random() >> 1;
        let local = LocalMedia::new(self.advertised, port, self.phones[index].codec, session_id);
        let media = match admission::answer_media(offer.as_ref(), &local) {
            Ok(m) => m,
            Err(refusal) => {
                self.ports.give_back(port);
                return self.reject(now, leg, &refusal);
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
                started: wall,
                answered: None,
                rtp_port: port,
                local,
                offer: media.offer,
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
                assistant: self.assistant_of(index, None),
                transcript: Vec::new(),
            },
        );
        self.by_id.insert(id, leg);
        self.metrics.active_calls.set(self.active_calls() as i64);
        let _ = self.endpoint.ring(now, leg, None);
        let delay = Duration::from_millis(self.phones[index].config.answer_delay_ms);
        let body = media.sdp.to_string().into_bytes();
        if delay.is_zero() {
            self.answer(now, wall, leg, &body, media.negotiated);
        } else if let Some(c) = self.calls.get_mut(&leg) {
            c.answer_at = Some((now + delay, body, media.negotiated));
        }
    }

    /// Sends the 200 of an inbound call and starts its media.
    fn answer(&mut self, now: Instant, wall: SystemTime, leg: LegId, sdp: &[u8], negotiated: Option<sdp::Negotiated>) {
        if let Err(e) = self.endpoint.answer(now, leg, sdp) {
            warn!(%leg, error = %e, "cannot answer");
            return;
        }
        self.answered(wall, leg);
        // Media flows from the 200 OK on (not from the ACK).
        if let Some(n) = negotiated {
            self.start_media(now, wall, leg, n);
        }
    }

    fn answered(&mut self, wall: SystemTime, leg: LegId) {
        let Some(call) = self.calls.get_mut(&leg) else { return };
        if call.state == CallState::Answered {
            return;
        }
        call.state = CallState::Answered;
        call.answered = Some(wall);
        call.ring_deadline = None;
        info!(%leg, call = %call.id, "answered");
        if let Some(tx) = &call.media {
            // Media started with early media: the conversation starts now.
            let _ = tx.send(MediaCommand::Answered);
        }
        // Mirrored into a chat of the call's assistant (the phone's, or the one dialled with).
        let Some(phone) = self.phones.get(call.phone) else { return };
        let assistant = call.assistant.as_ref().map(|a| a.config.id.clone()).or_else(|| phone.config.assistant_id.clone());
        if let (Some(mirror), Some(assistant)) = (&self.mirror, &assistant) {
            let text = if call.inbound {
                format!("Inbound call from {} to {}, answered.", call.remote, phone.config.phone_number)
            } else {
                format!("Outbound call from {} to {}, answered.", phone.config.phone_number, call.remote)
            };
            mirror.opened(&call.id, assistant, text);
            call.chat = Some(call.id.clone());
        }
    }

    /// Forgets a call: stops its media, frees its ports, records how it ended (at `wall`).
    pub(super) fn end_call(&mut self, wall: SystemTime, leg: LegId, outcome: &str, status: Option<u16>, reason: String) {
        let Some(mut call) = self.calls.remove(&leg) else { return };
        self.by_id.remove(&call.id);
        if let Some(tx) = call.media.take() {
            // Dropping the sender stops the task as well; the explicit Stop comes first.
            let _ = tx.send(MediaCommand::Stop);
        }
        self.ports.give_back(call.rtp_port);
        if let Some(phone) = self.phones.get_mut(call.phone) {
            phone.active = phone.active.saturating_sub(1);
            if phone.retired && phone.active == 0 {
                self.retire_done(call.phone);
            }
        }
        let codec = call.negotiated.as_ref().map(|n| format!(" ({})", n.codec.name())).unwrap_or_default();
        let closing_note = call.answered.map(|answered| {
            let secs = wall.duration_since(answered).unwrap_or_default().as_secs();
            format!("Call ended after {secs} s{codec}: {reason}.")
        });
        if call.media.is_some() || call.assistant.is_some() && call.answered.is_some() {
            // The media task reports the last words said before it stops: the closing note
            // follows them.
            self.closing.insert(leg, (call.chat.clone(), closing_note));
        } else if let (Some(mirror), Some(chat), Some(note)) = (&self.mirror, &call.chat, closing_note) {
            mirror.note(chat, note);
        }
        call.status = status;
        call.reason = Some(reason.clone());
        info!(%leg, call = %call.id, outcome, status = ?status, %reason, "call ended");
        self.metrics.calls.get_or_create(&CallLabels { direction: call.direction().into(), outcome: outcome.into() }).inc();
        self.metrics.active_calls.set(self.active_calls() as i64);
        self.metrics.rtp_ports_in_use.set(self.ports.in_use() as i64);
        let view = self.view(&call, Some(wall));
        self.recent.push_front(view);
        self.recent.truncate(RECENT);
        self.ended.push_front((leg, call.id.clone()));
        self.ended.truncate(RECENT);
    }

    // ---------------------------------------------------------------- media tasks

    /// Handles a note of a media task.
    pub fn handle_note(&mut self, now: Instant, wall: SystemTime, note: MediaNote) {
        match note {
            MediaNote::Hangup { leg, reason } => {
                let _ = self.endpoint.hangup(now, leg);
                let outcome = self.outcome(leg);
                self.end_call(wall, leg, outcome, None, reason);
            }
            MediaNote::Call { leg, note } => self.call_note(now, wall, leg, *note),
            MediaNote::Done { leg, stats } => {
                self.metrics.add_media(&stats);
                self.record_stats(leg, &stats);
                if let Some((Some(chat), Some(note))) = self.closing.remove(&leg)
                    && let Some(mirror) = &self.mirror
                {
                    mirror.note(&chat, note);
                }
            }
        }
    }

    /// What an assistant call reports.
    fn call_note(&mut self, now: Instant, wall: SystemTime, leg: LegId, note: CallNote) {
        // The call may have ended already: its last entries still belong to it.
        let chat = match self.calls.get(&leg) {
            Some(call) => call.chat.clone(),
            None => self.closing.get(&leg).and_then(|c| c.0.clone()),
        };
        match note {
            CallNote::Entry(entry) => {
                if let (Some(mirror), Some(chat)) = (&self.mirror, &chat) {
                    mirror.entry(chat, &entry);
                }
                let Some(line) = TranscriptLine::of(&entry) else { return };
                info!(%leg, role = line.role, text = %line.text, interrupted = line.interrupted, "said");
                if let Some(call) = self.calls.get_mut(&leg) {
                    call.transcript.push(line);
                } else if let Some((_, id)) = self.ended.iter().find(|(l, _)| *l == leg)
                    && let Some(view) = self.recent.iter_mut().find(|v| v.id == *id)
                {
                    view.transcript.push(line);
                }
            }
            CallNote::Latency(latency) => self.metrics.turn(&latency),
            CallNote::AiControl(on) => {
                info!(%leg, on, "AI control of the call's chat changed");
                if let (Some(mirror), Some(chat)) = (&self.mirror, &chat) {
                    mirror.ai_control(chat, on);
                }
            }
            CallNote::ProviderFailed { kind, provider, .. } => self.metrics.provider_failed(kind, &provider),
            CallNote::Over(stats) => self.metrics.conversation(&stats),
            CallNote::Hangup(reason) => self.handle_note(now, wall, MediaNote::Hangup { leg, reason }),
        }
    }

    /// The assistant of a call on phone `index`: `requested` (a dial-out's), else the phone's
    /// when its handler is the assistant.
    fn assistant_of(&self, index: usize, requested: Option<&str>) -> Option<Arc<Assistant>> {
        let phone = self.phones.get(index)?;
        let id = match requested {
            Some(id) => id,
            None if phone.handler == Handler::Assistant => phone.config.assistant_id.as_deref()?,
            None => return None,
        };
        self.assistants.get(id).cloned()
    }

    /// The speech engines, when they are up.
    pub(super) fn engines(&self) -> Option<Arc<Engines>> {
        self.engines.as_ref().ok().cloned()
    }

    fn record_stats(&mut self, leg: LegId, stats: &MediaStats) {
        let Some((_, id)) = self.ended.iter().find(|(l, _)| *l == leg) else { return };
        if let Some(v) = self.recent.iter_mut().find(|v| v.id == *id) {
            v.packets_lost = Some(stats.lost);
            v.jitter_ms = Some(stats.jitter.as_secs_f64() * 1000.0);
        }
    }

    // ---------------------------------------------------------------- timers

    /// Delayed answers, ring timeouts and maximum durations.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        let answers: Vec<LegId> = self.calls.iter().filter(|(_, c)| c.answer_at.as_ref().is_some_and(|a| a.0 <= now)).map(|(leg, _)| *leg).collect();
        for leg in answers {
            let span = self.span(leg);
            let _in_call = span.enter();
            if let Some((_, sdp, negotiated)) = self.calls.get_mut(&leg).and_then(|c| c.answer_at.take()) {
                self.answer(now, wall, leg, &sdp, negotiated);
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
                self.end_call(wall, leg, "failed", Some(408), "no answer within the ring timeout".into());
            } else {
                self.end_call(wall, leg, "answered", None, "maximum call duration reached".into());
            }
        }
    }

    // ---------------------------------------------------------------- control API

    /// Places a call.
    pub fn dial(&mut self, now: Instant, wall: SystemTime, request: DialRequest) -> Result<CallView, ApiError> {
        let none = |_: Option<&str>| Ok(());
        let dial = self.gate(&none).dial(&request, |p| self.phone_state(p).0)?;
        let (index, account, to) = (dial.phone, dial.account, dial.to.to_owned());
        // The request's assistant, else the phone's when its handler is the assistant.
        if let Some(id) = &request.assistant {
            self.answering(Some(id)).map_err(|e| ApiError::new(if self.assistants.contains_key(id) { 503 } else { 404 }, e))?;
        } else if self.phones[index].handler == Handler::Assistant {
            self.answering(self.phones[index].config.assistant_id.as_deref()).map_err(|e| ApiError::new(503, e))?;
        }
        let assistant = self.assistant_of(index, request.assistant.as_deref());
        let phone = &self.phones[index];
        let target = Uri::sip(Some(&to), phone.url.host.clone(), phone.url.port);
        let codec = phone.codec;
        let (port, sockets) = self.bind_ports().ok_or_else(|| ApiError::new(503, "no free RTP port"))?;
        let session_id = self.random() >> 1;
        let local = LocalMedia::new(self.advertised, port, codec, session_id);
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
        info!(%leg, call = %id, to = %Masked(&to), phone = %Masked(&self.phones[index].config.phone_number), "outbound call");
        self.phones[index].active += 1;
        let call = Call {
            id: id.clone(),
            phone: index,
            inbound: false,
            remote: to,
            state: CallState::Ringing,
            started: wall,
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
            assistant,
            transcript: Vec::new(),
        };
        let view = self.view(&call, None);
        self.calls.insert(leg, call);
        self.by_id.insert(id, leg);
        self.metrics.active_calls.set(self.active_calls() as i64);
        Ok(view)
    }

    /// Hangs up a call by id.
    pub fn hangup(&mut self, now: Instant, wall: SystemTime, id: &str) -> Result<(), ApiError> {
        let leg = *self.by_id.get(id).ok_or_else(|| ApiError::new(404, format!("no call {id:?} in progress")))?;
        let span = self.span(leg);
        let _in_call = span.enter();
        self.endpoint.hangup(now, leg).map_err(|e| ApiError::new(409, e.to_string()))?;
        let outcome = self.outcome(leg);
        self.end_call(wall, leg, outcome, None, "hung up through the control API".into());
        Ok(())
    }

    /// Hangs up every call (end of the drain).
    pub fn hangup_all(&mut self, now: Instant, wall: SystemTime, reason: &str) {
        let legs: Vec<LegId> = self.calls.keys().copied().collect();
        for leg in legs {
            let _ = self.endpoint.hangup(now, leg);
            self.end_call(wall, leg, "answered", None, reason.to_owned());
        }
    }
}

/// The keypad digit of a SIP INFO: `application/dtmf-relay` (`Signal=5`) or `application/dtmf`
/// (`5`).
fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    let value = match content_type?.split(';').next()?.trim().to_ascii_lowercase().as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let mut chars = value.chars();
    let c = chars.next()?;
    (chars.next().is_none() && happ_media::dtmf::Digit::from_char(c).is_some()).then_some(c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::info_digit;

    #[test]
    fn info_digits() {
        assert_eq!(info_digit(Some("application/dtmf-relay"), b"Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(info_digit(Some("application/dtmf-relay"), b"Signal= #\r\n"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"*"), Some('*'));
        assert_eq!(info_digit(Some("application/dtmf-relay"), b"Signal=12"), None);
        assert_eq!(info_digit(Some("text/plain"), b"5"), None);
        assert_eq!(info_digit(None, b"5"), None);
    }
}
