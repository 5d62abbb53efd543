//! The sans-IO Socket.IO session: one client connection, reconnected for as long as it lives.
//!
//! # Driving it
//! The driver owns the WebSocket and the clock. After [`Session::new`] and after **every** call
//! that takes `&mut self` (`handle_*`, `emit*`, `ack`, `close`), it drains, in this order:
//!
//! 1. [`Session::poll_transmit`] until `None`, sending each frame as a WebSocket text frame, in
//!    order (frames queued by [`Session::close`] must leave before the socket is closed);
//! 2. [`Session::poll_event`] until `None`, acting on [`Event::WantConnect`] (open a new
//!    WebSocket, then report [`Session::handle_transport_open`] or
//!    [`Session::handle_transport_closed`]) and [`Event::Disconnected`] (drop the current
//!    WebSocket or connect attempt at once, and feed nothing more from it);
//! 3. [`Session::poll_timeout`], calling [`Session::handle_timeout`] once that instant passes.
//!
//! Nothing here blocks, reads a clock, draws OS randomness or touches a socket; `now` is the
//! caller's, and the backoff jitter comes from a generator seeded by
//! [`SessionConfig::seed`].
//!
//! # Lifecycle
//! See [`Phase`] for the diagram. The session asks for its first connection at once
//! (`WantConnect { attempt: 0 }`). Once the WebSocket is open the server sends the Engine.IO
//! open packet; the session answers with a Socket.IO CONNECT (carrying
//! [`SessionConfig::auth`]) for each configured namespace, and each CONNECT reply gives an
//! [`Event::Connected`]. In Engine.IO v4 the server pings and the client answers: if no ping
//! arrives within `pingInterval + pingTimeout` of the open packet or the last ping, the
//! connection is dead ([`DisconnectReason::HeartbeatTimeout`]). The whole connection (WebSocket,
//! handshake, every namespace) must be up within [`SessionConfig::connect_timeout`].
//!
//! When a connection ends, the session reports [`Event::Disconnected`] and then either
//! [`Event::Reconnecting`] (the next `WantConnect` comes after the backoff delay, see
//! [`ReconnectPolicy`]) or [`Event::Closed`]. It closes for good after [`Session::close`], after
//! a CONNECT_ERROR unless [`SessionConfig::reconnect_on_connect_error`], and when
//! [`ReconnectPolicy::max_attempts`] attempts in a row failed. A server DISCONNECT of a
//! namespace is retried like a lost connection: a gateway wants its platform link back, and a
//! server that wants us gone refuses the CONNECT.
//!
//! # Emits
//! [`Session::emit`] and [`Session::emit_with_ack`] may be called in any phase but `Closed`.
//! An emit for a namespace that is not connected waits in a queue and goes out, in emit order,
//! right after that namespace's CONNECT reply, so nothing emitted before or during a
//! (re)connection is lost. Emits the driver has not yet taken with `poll_transmit` when a
//! connection ends go back to the front of that queue. Emits already taken are not repeated
//! (at most once): their pending acknowledgements fail with [`AckFailure::Disconnected`]. The
//! queue holds at most [`SessionConfig::max_queued`] emits; beyond that an emit is refused with
//! [`EmitError::QueueFull`] and the queued ones are kept, so what was accepted keeps its order.
//! [`Session::close`] sends what is queued for connected namespaces before the DISCONNECTs and
//! drops the rest.

mod backoff;
mod config;
mod event;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::mem;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use config::{ConfigError, MAX_DELAY, ReconnectPolicy, SessionConfig};
pub use event::{AckFailure, AckId, DisconnectReason, EmitError, Event, Frame, Initiator, PeerAck, Phase, SessionStats};

use crate::engineio::{self, Handshake};
use crate::error::ProtocolError;
use crate::socketio::{self, PacketKind, RESERVED_EVENTS};
use backoff::Rng;

/// The session's timers: an index into [`Timers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The end of the backoff delay: ask for the next connection.
    Reconnect,
    /// The connection must be up (every namespace connected) by then.
    Connect,
    /// The next server ping must have come by then.
    Heartbeat,
}

/// The timer table (STYLE.md rule 3): one deadline per [`Timer`], no tasks.
#[derive(Debug, Default)]
struct Timers([Option<Instant>; 3]);

impl Timers {
    fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    /// Whether `timer` was due at `now`; a due timer is stopped.
    fn expired(&mut self, timer: Timer, now: Instant) -> bool {
        let due = self.0[timer as usize].is_some_and(|at| at <= now);
        if due {
            self.stop(timer);
        }
        due
    }

    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

/// An open Engine.IO session and our namespaces on it.
#[derive(Debug)]
struct Link {
    /// The Engine.IO session id.
    sid: String,
    /// `pingInterval + pingTimeout`: the longest silence between pings.
    heartbeat: Duration,
    /// The Socket.IO session id of each configured namespace, once connected.
    namespaces: Vec<Option<String>>,
}

/// The connection state; the variants own what exists in them.
#[derive(Debug)]
enum State {
    /// Waiting out the backoff before attempt `attempt`.
    Waiting { attempt: u32 },
    /// `WantConnect` was issued.
    Connecting { attempt: u32 },
    /// The WebSocket is open, the Engine.IO open packet not yet here.
    Opening { attempt: u32 },
    /// The Engine.IO session is open, some namespaces not connected yet.
    Open { attempt: u32, link: Link },
    /// Every namespace is connected.
    Connected { link: Link },
    /// For good.
    Closed,
}

/// An emit in the queue: which namespace, which acknowledgement.
#[derive(Debug, Clone, Copy)]
struct Emitted {
    ns: usize,
    ack: Option<AckId>,
}

/// A frame to send; `emit` is set for user emits (which survive a lost connection) and unset
/// for control frames (pong, CONNECT, acks, DISCONNECT), which belong to one connection.
#[derive(Debug)]
struct Outgoing {
    frame: String,
    emit: Option<Emitted>,
}

#[derive(Debug)]
struct PendingAck {
    ns: usize,
    deadline: Instant,
    /// Whether the driver took the frame (so a lost connection may have lost it).
    sent: bool,
}

/// A Socket.IO v5 client session over Engine.IO v4. See the module documentation for how to
/// drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    timers: Timers,
    rng: Rng,
    /// Frames for the driver, in order.
    outbox: VecDeque<Outgoing>,
    /// Emits for namespaces that are not connected, in emit order.
    waiting: VecDeque<Outgoing>,
    /// Emits in `waiting` and `outbox` together.
    queued_emits: usize,
    acks: BTreeMap<AckId, PendingAck>,
    ack_deadlines: BTreeSet<(Instant, AckId)>,
    next_ack: u64,
    events: VecDeque<Event>,
    /// Binary frames still to skip after an unsupported binary packet.
    skip_attachments: u32,
    /// The server's limit, from its handshake (or the configured default before one).
    max_payload: u64,
    /// Whether a connection of this session ever reached every namespace.
    ever_connected: bool,
    stats: SessionStats,
}

impl Session {
    /// A session that asks for its first connection at once: drain [`Session::poll_event`] for
    /// the [`Event::WantConnect`].
    pub fn new(config: SessionConfig, now: Instant) -> Result<Session, ConfigError> {
        config.validate()?;
        let mut session = Session {
            rng: Rng::new(config.seed),
            max_payload: config.max_payload,
            config,
            state: State::Closed,
            timers: Timers::default(),
            outbox: VecDeque::new(),
            waiting: VecDeque::new(),
            queued_emits: 0,
            acks: BTreeMap::new(),
            ack_deadlines: BTreeSet::new(),
            next_ack: 0,
            events: VecDeque::new(),
            skip_attachments: 0,
            ever_connected: false,
            stats: SessionStats::default(),
        };
        session.start_attempt(now, 0);
        Ok(session)
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Waiting { .. } => Phase::Waiting,
            State::Connecting { .. } => Phase::Connecting,
            State::Opening { .. } => Phase::Opening,
            State::Open { .. } => Phase::Open,
            State::Connected { .. } => Phase::Connected,
            State::Closed => Phase::Closed,
        }
    }

    /// Whether `namespace` is connected now.
    pub fn is_connected(&self, namespace: &str) -> bool {
        self.namespace_index(namespace).is_some_and(|ns| self.ns_connected(ns))
    }

    /// The Engine.IO session id of the open connection.
    pub fn engine_sid(&self) -> Option<&str> {
        self.link().map(|l| l.sid.as_str())
    }

    /// How many emits wait (for a connection, or for the driver).
    pub fn queued(&self) -> usize {
        self.queued_emits
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Replaces the auth object for the CONNECTs of later connections (a refreshed token).
    pub fn set_auth(&mut self, auth: Option<serde_json::Map<String, Value>>) {
        self.config.auth = auth;
    }

    /// The next frame to send as a WebSocket text frame.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<String> {
        let out = self.outbox.pop_front()?;
        if let Some(emitted) = out.emit {
            self.queued_emits = self.queued_emits.saturating_sub(1);
            if let Some(pending) = emitted.ack.and_then(|id| self.acks.get_mut(&id)) {
                pending.sent = true;
            }
        }
        self.stats.frames_out += 1;
        Some(out.frame)
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called; `None` when nothing is timed
    /// (only when closed).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self.ack_deadlines.first().map(|(at, _)| *at);
        match (self.timers.next(), ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The WebSocket the driver opened after [`Event::WantConnect`] is up. Ignored in any other
    /// phase than `Connecting`.
    pub fn handle_transport_open(&mut self, _now: Instant) {
        if let State::Connecting { attempt } = self.state {
            self.state = State::Opening { attempt };
        }
    }

    /// The WebSocket (or the attempt to open it) failed or closed. Ignored when there is no
    /// connection (`Waiting`, `Closed`).
    pub fn handle_transport_closed(&mut self, now: Instant, reason: impl Into<String>) {
        self.teardown(now, DisconnectReason::Transport { message: reason.into() });
    }

    /// One frame from the WebSocket. Never panics: a malformed frame is reported as
    /// [`Event::Malformed`] and ignored.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame<'_>) {
        self.stats.frames_in += 1;
        if !matches!(self.state, State::Opening { .. } | State::Open { .. } | State::Connected { .. }) {
            self.stats.stray_frames += 1;
            return;
        }
        match frame {
            Frame::Binary(_) if self.skip_attachments > 0 => self.skip_attachments -= 1,
            Frame::Binary(_) => self.malformed(ProtocolError::UnexpectedBinary),
            Frame::Text(text) => match engineio::Packet::parse(text) {
                Ok(packet) => self.on_engine(now, packet),
                Err(e) => self.malformed(e),
            },
        }
    }

    /// Time passed: heartbeat, connect and ack deadlines, the end of a backoff delay.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expired(Timer::Heartbeat, now) {
            self.teardown(now, DisconnectReason::HeartbeatTimeout);
        }
        if self.timers.expired(Timer::Connect, now) {
            self.teardown(now, DisconnectReason::ConnectTimeout);
        }
        if self.timers.expired(Timer::Reconnect, now)
            && let State::Waiting { attempt } = self.state
        {
            self.start_attempt(now, attempt);
        }
        while let Some(&(at, id)) = self.ack_deadlines.first() {
            if at > now {
                break;
            }
            self.ack_deadlines.pop_first();
            self.stats.ack_timeouts += 1;
            if self.acks.get(&id).is_some_and(|p| !p.sent) {
                self.unqueue(id);
            }
            self.fail_ack(id, AckFailure::Timeout);
        }
    }

    /// Emits `event` with `args` (usually one JSON object) in `namespace`. Queued until the
    /// namespace is connected; see the module documentation.
    pub fn emit(&mut self, _now: Instant, namespace: &str, event: &str, args: &[Value]) -> Result<(), EmitError> {
        self.push_emit(namespace, event, args, None)
    }

    /// Emits `event` and asks the server for an acknowledgement: [`Event::Ack`] with the
    /// returned id, or [`Event::AckFailed`] when `timeout` (counted from now, queued time
    /// included, at most [`MAX_DELAY`]) passes or the connection is lost after the frame left.
    pub fn emit_with_ack(&mut self, now: Instant, namespace: &str, event: &str, args: &[Value], timeout: Duration) -> Result<AckId, EmitError> {
        let id = AckId(self.next_ack);
        self.push_emit(namespace, event, args, Some((id, now + timeout.min(MAX_DELAY))))?;
        self.next_ack += 1;
        Ok(id)
    }

    /// Answers a server event that asked for an acknowledgement ([`Event::Event`] with `ack`).
    /// Only on the connection the event came on: [`EmitError::NotConnected`] otherwise.
    pub fn ack(&mut self, _now: Instant, namespace: &str, id: PeerAck, args: &[Value]) -> Result<(), EmitError> {
        if matches!(self.state, State::Closed) {
            return Err(EmitError::Closed);
        }
        let ns = self.namespace_index(namespace).ok_or_else(|| EmitError::UnknownNamespace(namespace.to_owned()))?;
        if !self.ns_connected(ns) {
            return Err(EmitError::NotConnected(namespace.to_owned()));
        }
        let mut frame = String::from("4");
        socketio::encode_ack(&mut frame, namespace, id.0, args);
        self.check_size(&frame)?;
        self.outbox.push_back(Outgoing { frame, emit: None });
        Ok(())
    }

    /// Closes the session for good: a DISCONNECT for each connected namespace (after the emits
    /// queued for it), then [`Event::Disconnected`] (if a connection was under way),
    /// [`Event::AckFailed`] for pending acknowledgements and [`Event::Closed`]. The driver sends
    /// the frames, then closes the WebSocket.
    pub fn close(&mut self, _now: Instant) {
        match mem::replace(&mut self.state, State::Closed) {
            State::Closed => return,
            State::Waiting { .. } => {}
            State::Connecting { .. } | State::Opening { .. } => self.disconnected(DisconnectReason::ClientClose),
            State::Open { link, .. } | State::Connected { link } => {
                for (ns, sid) in link.namespaces.iter().enumerate() {
                    if sid.is_some() {
                        let mut frame = String::from("4");
                        let packet =
                            socketio::Packet { kind: PacketKind::Disconnect, namespace: &self.config.namespaces[ns], id: None, attachments: 0, data: None };
                        packet.encode(&mut frame);
                        self.outbox.push_back(Outgoing { frame, emit: None });
                    }
                }
                self.disconnected(DisconnectReason::ClientClose);
            }
        }
        self.shut();
    }

    // ---- transitions -------------------------------------------------------------------

    fn start_attempt(&mut self, now: Instant, attempt: u32) {
        self.state = State::Connecting { attempt };
        self.timers.set(Timer::Connect, now + self.config.connect_timeout);
        self.stats.connect_attempts += 1;
        self.events.push_back(Event::WantConnect { attempt });
    }

    fn on_engine(&mut self, now: Instant, packet: engineio::Packet<'_>) {
        match packet {
            engineio::Packet::Open(json) => self.on_open(now, json),
            engineio::Packet::Close => self.teardown(now, DisconnectReason::ServerClose),
            engineio::Packet::Ping(data) => {
                let Some(heartbeat) = self.link().map(|l| l.heartbeat) else {
                    return self.malformed(ProtocolError::Unexpected("ping before the open packet"));
                };
                self.stats.pings += 1;
                let mut frame = String::with_capacity(1 + data.len());
                engineio::Packet::Pong(data).encode(&mut frame);
                self.outbox.push_back(Outgoing { frame, emit: None });
                self.timers.set(Timer::Heartbeat, now + heartbeat);
            }
            // In v4 over a WebSocket the client never pings, and upgrades are for long-polling.
            engineio::Packet::Pong(_) | engineio::Packet::Upgrade | engineio::Packet::Noop => {}
            engineio::Packet::Message(text) => {
                if self.link().is_some() {
                    self.on_socket(now, text);
                } else {
                    self.malformed(ProtocolError::Unexpected("message before the open packet"));
                }
            }
        }
    }

    fn on_open(&mut self, now: Instant, json: &str) {
        let State::Opening { attempt } = self.state else {
            return self.malformed(ProtocolError::Unexpected("second open packet"));
        };
        let handshake = match Handshake::parse(json) {
            Ok(h) => h,
            Err(e) => return self.teardown(now, DisconnectReason::Protocol(e)),
        };
        self.max_payload = handshake.max_payload;
        let heartbeat = handshake.ping_interval + handshake.ping_timeout;
        self.timers.set(Timer::Heartbeat, now + heartbeat);
        let link = Link { sid: handshake.sid, heartbeat, namespaces: vec![None; self.config.namespaces.len()] };
        self.state = State::Open { attempt, link };
        for namespace in &self.config.namespaces {
            let mut frame = String::from("4");
            let data = self.config.auth.clone().map(Value::Object);
            socketio::Packet { kind: PacketKind::Connect, namespace, id: None, attachments: 0, data }.encode(&mut frame);
            self.outbox.push_back(Outgoing { frame, emit: None });
        }
    }

    fn on_socket(&mut self, now: Instant, text: &str) {
        let packet = match socketio::Packet::parse(text) {
            Ok(p) => p,
            Err(e) => return self.malformed(e),
        };
        let ns = self.namespace_index(packet.namespace);
        match (packet.kind, ns) {
            (PacketKind::BinaryEvent | PacketKind::BinaryAck, _) => {
                self.skip_attachments = packet.attachments;
                self.malformed(ProtocolError::BinaryUnsupported);
            }
            (_, None) => self.malformed(ProtocolError::Unexpected("packet for a namespace we did not join")),
            (PacketKind::Connect, Some(ns)) => self.on_connect(now, ns, packet.data),
            (PacketKind::ConnectError, Some(ns)) => {
                let (message, data) = match packet.data {
                    Some(Value::String(message)) => (message, None),
                    Some(Value::Object(mut fields)) => {
                        let message = match fields.remove("message") {
                            Some(Value::String(m)) => m,
                            Some(other) => other.to_string(),
                            None => String::new(),
                        };
                        (message, fields.remove("data"))
                    }
                    other => (other.map(|v| v.to_string()).unwrap_or_default(), None),
                };
                let namespace = self.config.namespaces[ns].clone();
                self.teardown(now, DisconnectReason::ConnectError { namespace, message, data });
            }
            (PacketKind::Disconnect, Some(ns)) => {
                let namespace = self.config.namespaces[ns].clone();
                self.teardown(now, DisconnectReason::ServerDisconnect { namespace });
            }
            (PacketKind::Event, Some(ns)) => {
                if !self.ns_connected(ns) {
                    return self.malformed(ProtocolError::Unexpected("event before the namespace's CONNECT reply"));
                }
                // The parser guarantees a non-empty array starting with a string or a number.
                let Some(Value::Array(items)) = packet.data else {
                    return self.malformed(ProtocolError::Payload(PacketKind::Event));
                };
                let mut items = items.into_iter();
                let name = match items.next() {
                    Some(Value::String(name)) => name,
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return self.malformed(ProtocolError::Payload(PacketKind::Event)),
                };
                let namespace = self.config.namespaces[ns].clone();
                self.events.push_back(Event::Event { namespace, name, args: items.collect(), ack: packet.id.map(PeerAck) });
            }
            (PacketKind::Ack, Some(ns)) => {
                let Some(id) = packet.id.map(AckId) else {
                    return self.malformed(ProtocolError::Unexpected("ACK without an id"));
                };
                if !self.acks.get(&id).is_some_and(|p| p.sent && p.ns == ns) {
                    self.stats.unknown_acks += 1;
                    return;
                }
                if let Some(pending) = self.acks.remove(&id) {
                    self.ack_deadlines.remove(&(pending.deadline, id));
                }
                let args = match packet.data {
                    Some(Value::Array(args)) => args,
                    _ => Vec::new(),
                };
                self.events.push_back(Event::Ack { namespace: self.config.namespaces[ns].clone(), id, args });
            }
        }
    }

    fn on_connect(&mut self, now: Instant, ns: usize, data: Option<Value>) {
        let sid = match data {
            Some(Value::Object(mut fields)) => match fields.remove("sid") {
                Some(Value::String(sid)) => Some(sid),
                _ => None,
            },
            _ => None,
        };
        let Some(sid) = sid else {
            return self.teardown(now, DisconnectReason::Protocol(ProtocolError::MissingSid));
        };
        let State::Open { link, .. } = &mut self.state else {
            return self.malformed(ProtocolError::Unexpected("CONNECT reply out of turn"));
        };
        if link.namespaces[ns].is_some() {
            return self.malformed(ProtocolError::Unexpected("second CONNECT reply"));
        }
        link.namespaces[ns] = Some(sid.clone());
        let all = link.namespaces.iter().all(Option::is_some);
        self.events.push_back(Event::Connected { namespace: self.config.namespaces[ns].clone(), sid, reconnected: self.ever_connected });
        // The namespace's queued emits go out now, in emit order, ahead of anything emitted later.
        let mut rest = VecDeque::with_capacity(self.waiting.len());
        for out in self.waiting.drain(..) {
            if out.emit.is_some_and(|e| e.ns == ns) {
                self.outbox.push_back(out);
            } else {
                rest.push_back(out);
            }
        }
        self.waiting = rest;
        if all {
            self.state = match mem::replace(&mut self.state, State::Closed) {
                State::Open { link, .. } => State::Connected { link },
                other => other,
            };
            self.timers.stop(Timer::Connect);
            self.ever_connected = true;
            self.stats.connections += 1;
        }
    }

    /// The connection ended: report it, keep the emits, then back off or close.
    fn teardown(&mut self, now: Instant, reason: DisconnectReason) {
        let attempt = match self.state {
            State::Connecting { attempt } | State::Opening { attempt } | State::Open { attempt, .. } => attempt,
            State::Connected { .. } => 0,
            State::Waiting { .. } | State::Closed => return,
        };
        self.timers.stop(Timer::Connect);
        self.timers.stop(Timer::Heartbeat);
        self.skip_attachments = 0;
        // Control frames belong to the dead connection; emits the driver has not taken go back
        // to the front of the queue, in order.
        let mut requeued: VecDeque<Outgoing> = self.outbox.drain(..).filter(|o| o.emit.is_some()).collect();
        requeued.append(&mut self.waiting);
        self.waiting = requeued;
        let reconnect = match reason {
            DisconnectReason::ClientClose => false,
            DisconnectReason::ConnectError { .. } => self.config.reconnect_on_connect_error,
            _ => true,
        };
        self.disconnected(reason);
        let lost: Vec<AckId> = self.acks.iter().filter(|(_, p)| p.sent).map(|(id, _)| *id).collect();
        for id in lost {
            self.fail_ack(id, AckFailure::Disconnected);
        }
        let next = attempt.saturating_add(1);
        if reconnect && self.config.reconnect.max_attempts.is_none_or(|max| next <= max) {
            let delay = self.config.reconnect.delay(next, &mut self.rng);
            self.timers.set(Timer::Reconnect, now + delay);
            self.state = State::Waiting { attempt: next };
            self.events.push_back(Event::Reconnecting { attempt: next, delay });
        } else {
            self.state = State::Closed;
            self.shut();
        }
    }

    /// The end: every pending acknowledgement fails, waiting emits are dropped, frames already
    /// in the outbox (the DISCONNECTs of `close`) stay for the driver.
    fn shut(&mut self) {
        self.state = State::Closed;
        self.timers = Timers::default();
        let dropped = self.waiting.len();
        self.waiting.clear();
        self.queued_emits = self.queued_emits.saturating_sub(dropped);
        let ids: Vec<AckId> = self.acks.keys().copied().collect();
        for id in ids {
            self.fail_ack(id, AckFailure::Closed);
        }
        self.events.push_back(Event::Closed);
    }

    // ---- helpers -----------------------------------------------------------------------

    fn push_emit(&mut self, namespace: &str, event: &str, args: &[Value], ack: Option<(AckId, Instant)>) -> Result<(), EmitError> {
        if matches!(self.state, State::Closed) {
            return Err(EmitError::Closed);
        }
        let ns = self.namespace_index(namespace).ok_or_else(|| EmitError::UnknownNamespace(namespace.to_owned()))?;
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::Reserved(event.to_owned()));
        }
        if self.queued_emits >= self.config.max_queued {
            self.stats.emits_refused += 1;
            return Err(EmitError::QueueFull(self.queued_emits));
        }
        let mut frame = String::from("4");
        socketio::encode_event(&mut frame, namespace, ack.map(|(id, _)| id.0), event, args);
        self.check_size(&frame)?;
        if let Some((id, deadline)) = ack {
            self.acks.insert(id, PendingAck { ns, deadline, sent: false });
            self.ack_deadlines.insert((deadline, id));
        }
        let out = Outgoing { frame, emit: Some(Emitted { ns, ack: ack.map(|(id, _)| id) }) };
        if self.ns_connected(ns) {
            self.outbox.push_back(out);
        } else {
            self.waiting.push_back(out);
        }
        self.queued_emits += 1;
        Ok(())
    }

    fn check_size(&self, frame: &str) -> Result<(), EmitError> {
        if frame.len() as u64 > self.max_payload {
            return Err(EmitError::TooLarge { len: frame.len(), max: self.max_payload });
        }
        Ok(())
    }

    /// Removes the queued emit that carries acknowledgement `id`.
    fn unqueue(&mut self, id: AckId) {
        let carries = |o: &Outgoing| o.emit.is_some_and(|e| e.ack == Some(id));
        for queue in [&mut self.waiting, &mut self.outbox] {
            if let Some(at) = queue.iter().position(carries) {
                queue.remove(at);
                self.queued_emits = self.queued_emits.saturating_sub(1);
                return;
            }
        }
    }

    fn fail_ack(&mut self, id: AckId, reason: AckFailure) {
        if let Some(pending) = self.acks.remove(&id) {
            self.ack_deadlines.remove(&(pending.deadline, id));
            self.events.push_back(Event::AckFailed { id, reason });
        }
    }

    fn disconnected(&mut self, reason: DisconnectReason) {
        self.stats.disconnects += 1;
        self.events.push_back(Event::Disconnected { reason });
    }

    fn malformed(&mut self, error: ProtocolError) {
        self.stats.malformed += 1;
        self.events.push_back(Event::Malformed { error });
    }

    fn link(&self) -> Option<&Link> {
        match &self.state {
            State::Open { link, .. } | State::Connected { link } => Some(link),
            _ => None,
        }
    }

    fn namespace_index(&self, namespace: &str) -> Option<usize> {
        self.config.namespaces.iter().position(|n| n == namespace)
    }

    fn ns_connected(&self, ns: usize) -> bool {
        self.link().is_some_and(|l| l.namespaces.get(ns).is_some_and(Option::is_some))
    }
}
