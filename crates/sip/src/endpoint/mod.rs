//! The SIP endpoint: one sans-IO object that owns every transaction, dialog and registration of
//! the gateway (the "transaction user" of RFC 3261).
//!
//! # Driving it
//! The driver owns the sockets (UDP and TCP on one address) and the clock. It calls
//! [`Endpoint::handle_message`] with every datagram or framed stream message,
//! [`Endpoint::handle_timeout`] when the instant from [`Endpoint::poll_timeout`] passes, and the
//! commands (add an account, answer, reject, invite, hang up); after each, it drains
//! [`Endpoint::poll_transmit`] (sending each, over UDP or the TCP connection to `dest`) and
//! [`Endpoint::poll_event`]. Nothing here blocks, reads a clock or touches a socket.
//!
//! # Routing
//! Responses go back where the request came from: over TCP on its connection, over UDP to the
//! source address, with the source port when the Via asked for `rport` (RFC 3581) and the Via's
//! port otherwise. Every request of an account leaves toward its proxy (registrar or outbound
//! proxy) from our single address, so a carrier sees calls come from where the phone registered.
//! In-dialog requests follow the route set and remote target when those are IP addresses, and
//! otherwise the address the dialog's messages came from.

mod auth;
mod build;
mod config;
mod events;
mod ids;
mod legs;
mod registration;
mod session_timer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub use config::{AccountConfig, EndpointConfig};
pub use events::{Ender, EndpointStats, Event, IncomingCall, RegistrationState, Transmit};
pub use ids::{AccountId, LegId};
pub use legs::OutboundCall;

use ids::Ids;
use legs::Leg;
use registration::Account;

use crate::message::{HeaderName, Message, Method, Request, Response, Transport, parse, reason_phrase};
use crate::transaction::{Action, ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, TxKey};

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No such call leg (it ended, or never was).
    #[error("unknown call leg {0}")]
    UnknownLeg(LegId),
    /// No such account.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// The leg is not in a state where this can be done.
    #[error("{what} is not possible now ({state})")]
    InvalidState {
        /// What was asked.
        what: &'static str,
        /// The leg's state.
        state: &'static str,
    },
    /// A status code outside what the command allows.
    #[error("status {0} is not allowed here")]
    Status(u16),
}

/// Who a transaction works for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Nobody,
    Registration(AccountId),
    Leg(LegId),
}

// The variants are named after the four machines of RFC 3261 §17.
#[allow(clippy::enum_variant_names)]
enum TxKind {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

struct TxEntry {
    key: TxKey,
    kind: TxKind,
    transport: Transport,
    dest: SocketAddr,
    /// The request, for client transactions to retransmit.
    request: Vec<u8>,
    method: Method,
    owner: Owner,
}

impl TxEntry {
    fn next_timeout(&self) -> Option<Instant> {
        match &self.kind {
            TxKind::ClientInvite(t) => t.next_timeout(),
            TxKind::ClientNonInvite(t) => t.next_timeout(),
            TxKind::ServerInvite(t) => t.next_timeout(),
            TxKind::ServerNonInvite(t) => t.next_timeout(),
        }
    }

    fn is_terminated(&self) -> bool {
        match &self.kind {
            TxKind::ClientInvite(t) => t.is_terminated(),
            TxKind::ClientNonInvite(t) => t.is_terminated(),
            TxKind::ServerInvite(t) => t.is_terminated(),
            TxKind::ServerNonInvite(t) => t.is_terminated(),
        }
    }

    fn last_response(&self) -> Option<&[u8]> {
        match &self.kind {
            TxKind::ServerInvite(t) => t.last_response(),
            TxKind::ServerNonInvite(t) => t.last_response(),
            _ => None,
        }
    }
}

/// What a wake-up is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    Tx(u64),
    Registration(AccountId),
    Keepalive(AccountId),
    Leg(LegId),
    Session(LegId),
}

/// The SIP endpoint. See the module documentation for how to drive it.
pub struct Endpoint {
    config: EndpointConfig,
    ids: Ids,
    next_id: u64,
    txs: HashMap<u64, TxEntry>,
    tx_index: HashMap<TxKey, u64>,
    wakes: BinaryHeap<Reverse<(Instant, Wake)>>,
    accounts: HashMap<AccountId, Account>,
    legs: HashMap<LegId, Leg>,
    /// (Call-ID, our tag) → leg, for requests inside dialogs.
    dialogs: HashMap<(String, String), LegId>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with no accounts and no calls.
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            ids: Ids::new(config.seed),
            config,
            next_id: 1,
            txs: HashMap::new(),
            tx_index: HashMap::new(),
            wakes: BinaryHeap::new(),
            accounts: HashMap::new(),
            legs: HashMap::new(),
            dialogs: HashMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakes.peek().map(|Reverse((at, _))| *at)
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        let mut s = self.stats;
        s.transactions = self.txs.len() as u64;
        s.legs = self.legs.len() as u64;
        s
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        self.outbox.push_back(Transmit { transport, dest, bytes });
    }

    fn schedule(&mut self, wake: Wake, at: Option<Instant>) {
        if let Some(at) = at {
            self.wakes.push(Reverse((at, wake)));
        }
    }

    // ------------------------------------------------------------------ transactions

    /// Starts a client transaction for `request` toward `dest` and sends it.
    fn start_client(&mut self, now: Instant, request: Request, transport: Transport, dest: SocketAddr, owner: Owner) -> u64 {
        let branch = request.headers.top_via().ok().and_then(|v| v.branch().map(str::to_owned)).unwrap_or_default();
        let key = TxKey::client(&branch, &request.method);
        let bytes = request.encode();
        let reliable = transport.is_reliable();
        let method = request.method.clone();
        let kind = if method == Method::Invite {
            TxKind::ClientInvite(ClientInvite::new(now, request, reliable, self.config.timers))
        } else {
            TxKind::ClientNonInvite(ClientNonInvite::new(now, reliable, self.config.timers))
        };
        let id = self.next_id();
        self.send(transport.clone(), dest, bytes.clone());
        let entry = TxEntry { key: key.clone(), kind, transport, dest, request: bytes, method, owner };
        let at = entry.next_timeout();
        self.txs.insert(id, entry);
        self.tx_index.insert(key, id);
        self.schedule(Wake::Tx(id), at);
        id
    }

    /// Sends a response through the server transaction `id`.
    fn respond_tx(&mut self, now: Instant, id: u64, response: &Response) {
        let bytes = response.encode();
        let Some(tx) = self.txs.get_mut(&id) else { return };
        let action = match &mut tx.kind {
            TxKind::ServerInvite(t) => t.respond(now, response.status, bytes),
            TxKind::ServerNonInvite(t) => t.respond(now, response.status, bytes),
            _ => None,
        };
        if let Some(Action::Send(b)) = action {
            let (transport, dest) = (tx.transport.clone(), tx.dest);
            let at = tx.next_timeout();
            self.send(transport, dest, b);
            self.schedule(Wake::Tx(id), at);
        }
    }

    fn drop_tx(&mut self, id: u64) {
        if let Some(tx) = self.txs.remove(&id) {
            self.tx_index.remove(&tx.key);
        }
    }

    fn tx_timeouts(&mut self, now: Instant, id: u64) {
        loop {
            let Some(tx) = self.txs.get_mut(&id) else { return };
            if tx.next_timeout().is_none_or(|at| at > now) {
                break;
            }
            let action = match &mut tx.kind {
                TxKind::ClientInvite(t) => t.on_timeout(now),
                TxKind::ClientNonInvite(t) => t.on_timeout(now),
                TxKind::ServerInvite(t) => t.on_timeout(now),
                TxKind::ServerNonInvite(t) => {
                    t.on_timeout(now);
                    None
                }
            };
            match action {
                Some(Action::Retransmit) => {
                    let bytes = match tx.last_response() {
                        Some(r) => r.to_vec(),
                        None => tx.request.clone(),
                    };
                    let (transport, dest) = (tx.transport.clone(), tx.dest);
                    self.stats.retransmissions += 1;
                    self.send(transport, dest, bytes);
                }
                Some(Action::Timeout) => {
                    self.stats.timeouts += 1;
                    let (owner, method) = (tx.owner, tx.method.clone());
                    self.on_tx_failed(now, owner, &method, 408, "no response (timeout)");
                }
                _ => {}
            }
        }
        let Some(tx) = self.txs.get(&id) else { return };
        if tx.is_terminated() {
            self.drop_tx(id);
        } else {
            let at = tx.next_timeout();
            self.schedule(Wake::Tx(id), at);
        }
    }

    /// A TCP connection to `dest` could not be opened or broke: its client transactions fail.
    pub fn handle_transport_error(&mut self, now: Instant, transport: &Transport, dest: SocketAddr) {
        let ids: Vec<u64> = self.txs.iter().filter(|(_, t)| &t.transport == transport && t.dest == dest).map(|(id, _)| *id).collect();
        for id in ids {
            let Some(tx) = self.txs.get_mut(&id) else { continue };
            let failed = match &mut tx.kind {
                TxKind::ClientInvite(t) => t.on_transport_error() == Action::Timeout,
                TxKind::ClientNonInvite(t) => t.on_transport_error() == Action::Timeout,
                TxKind::ServerInvite(t) => t.on_transport_error() == Action::Timeout,
                TxKind::ServerNonInvite(_) => false,
            };
            let (owner, method) = (tx.owner, tx.method.clone());
            self.drop_tx(id);
            if failed {
                self.on_tx_failed(now, owner, &method, 503, "transport error");
            }
        }
    }

    fn on_tx_failed(&mut self, now: Instant, owner: Owner, method: &Method, status: u16, reason: &str) {
        match owner {
            Owner::Registration(account) => self.registration_failed(now, account, None, reason),
            Owner::Leg(leg) => self.leg_tx_failed(now, leg, method, status, reason),
            Owner::Nobody => {}
        }
    }

    // ------------------------------------------------------------------ timers

    /// Runs everything due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, wake))) = self.wakes.peek() {
            if at > now {
                break;
            }
            self.wakes.pop();
            match wake {
                Wake::Tx(id) => self.tx_timeouts(now, id),
                Wake::Registration(account) => self.registration_timeout(now, account),
                Wake::Keepalive(account) => self.keepalive(now, account),
                Wake::Leg(leg) => self.leg_timeout(now, leg),
                Wake::Session(leg) => self.session_timeout(now, leg),
            }
        }
    }

    // ------------------------------------------------------------------ incoming

    /// Handles a datagram (UDP) or a framed message (TCP) from `source`.
    pub fn handle_message(&mut self, now: Instant, transport: Transport, source: SocketAddr, bytes: &[u8]) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            // A keep-alive (CRLF, RFC 5626) on UDP: nothing to do.
            return;
        }
        let message = match parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                if let Some(head) = e.request_head()
                    && head.method != Method::Ack
                    && let Ok(via) = head.headers.top_via()
                {
                    // Only the body is wrong: a request gets a 400 (RFC 3261 §18.3).
                    self.stats.bad_requests += 1;
                    let dest = response_destination(&transport, source, &via);
                    let mut response = Response::for_request(head, 400, &format!("Bad Request ({})", e.reason()), Some(&self.ids.tag()));
                    self.decorate(&mut response);
                    self.send(transport, dest, response.encode());
                    return;
                }
                // Without a parseable message there is no Via to answer to (RFC 3261 §18.3).
                self.stats.unparseable += 1;
                return;
            }
        };
        self.stats.received += 1;
        match message {
            Message::Response(r) => self.handle_response(now, r),
            Message::Request(r) => self.handle_request(now, transport, source, r),
        }
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        let (Ok(via), Ok(cseq)) = (response.headers.top_via(), response.headers.cseq()) else {
            self.stats.stray_responses += 1;
            return;
        };
        let key = TxKey::client(via.branch().unwrap_or(""), &cseq.method);
        let Some(&id) = self.tx_index.get(&key) else {
            // A 2xx to an INVITE retransmitted after its transaction ended: the dialog's ACK
            // must go again (RFC 3261 §13.2.2.4).
            if cseq.method == Method::Invite && (200..300).contains(&response.status) && self.leg_stray_2xx(now, &response) {
                return;
            }
            self.stats.stray_responses += 1;
            return;
        };
        let Some(tx) = self.txs.get_mut(&id) else { return };
        let actions = match &mut tx.kind {
            TxKind::ClientInvite(t) => t.on_response(now, &response),
            TxKind::ClientNonInvite(t) => vec![t.on_response(now, response.status)],
            _ => vec![Action::Absorb],
        };
        let (transport, dest, owner) = (tx.transport.clone(), tx.dest, tx.owner);
        let at = tx.next_timeout();
        self.schedule(Wake::Tx(id), at);
        for action in actions {
            match action {
                Action::Send(bytes) => self.send(transport.clone(), dest, bytes),
                Action::Deliver => match owner {
                    Owner::Registration(account) => self.registration_response(now, account, &response),
                    Owner::Leg(leg) => self.leg_response(now, leg, id, &response),
                    Owner::Nobody => {}
                },
                _ => {}
            }
        }
        if self.txs.get(&id).is_some_and(TxEntry::is_terminated) {
            self.drop_tx(id);
        }
    }

    fn handle_request(&mut self, now: Instant, transport: Transport, source: SocketAddr, mut request: Request) {
        // Record where the request came from in its top Via (RFC 3261 §18.2.1, RFC 3581), so
        // that the responses we build from it carry `received` and `rport`.
        let Ok(mut via) = request.headers.top_via() else {
            self.stats.unparseable += 1;
            return;
        };
        let dest = response_destination(&transport, source, &via);
        if via.host.ip() != Some(source.ip()) {
            via.params.set("received", Some(&source.ip().to_string()));
        }
        if via.rport().is_some() {
            via.params.set("rport", Some(&source.port().to_string()));
        }
        request.headers.set_top_via(&via);

        if let Err(e) = request.validate() {
            self.stats.bad_requests += 1;
            if request.method != Method::Ack {
                let mut response = Response::for_request(&request, 400, &format!("Bad Request ({})", e.reason()), Some(&self.ids.tag()));
                self.decorate(&mut response);
                self.send(transport, dest, response.encode());
            }
            return;
        }
        let branch = via.branch().unwrap_or("").to_owned();
        let key = TxKey::server(&branch, &request.method);

        // Retransmissions and ACKs of existing server transactions.
        if let Some(&id) = self.tx_index.get(&key) {
            let Some(tx) = self.txs.get_mut(&id) else { return };
            let action = match (&mut tx.kind, &request.method) {
                (TxKind::ServerInvite(t), Method::Ack) => t.on_ack(now),
                (TxKind::ServerInvite(t), _) => t.on_invite(),
                (TxKind::ServerNonInvite(t), _) => t.on_request(),
                _ => Action::Absorb,
            };
            let at = tx.next_timeout();
            let resend = (action == Action::Retransmit).then(|| tx.last_response().map(<[u8]>::to_vec)).flatten();
            let (t, d) = (tx.transport.clone(), tx.dest);
            self.schedule(Wake::Tx(id), at);
            if let Some(bytes) = resend {
                self.stats.retransmissions += 1;
                self.send(t, d, bytes);
            } else if action == Action::Deliver && request.method == Method::Ack {
                self.leg_ack(now, &request);
            }
            return;
        }
        if request.method == Method::Ack {
            // The ACK of a 2xx: a transaction of its own, handled by the dialog.
            self.leg_ack(now, &request);
            return;
        }
        let reliable = transport.is_reliable();
        let id = self.next_id();
        let kind = if request.method == Method::Invite {
            TxKind::ServerInvite(ServerInvite::new(reliable, self.config.timers))
        } else {
            TxKind::ServerNonInvite(ServerNonInvite::new(reliable, self.config.timers))
        };
        self.txs.insert(
            id,
            TxEntry { key: key.clone(), kind, transport: transport.clone(), dest, request: Vec::new(), method: request.method.clone(), owner: Owner::Nobody },
        );
        self.tx_index.insert(key, id);
        self.dispatch_request(now, id, transport, source, request);
        if self.txs.get(&id).is_some_and(TxEntry::is_terminated) {
            self.drop_tx(id);
        }
    }

    /// Gives a new request to the part of the endpoint it is for.
    fn dispatch_request(&mut self, now: Instant, tx: u64, transport: Transport, source: SocketAddr, request: Request) {
        let in_dialog = request.headers.to().ok().and_then(|t| t.tag().map(str::to_owned));
        match (&request.method, in_dialog) {
            (Method::Invite, None) => self.incoming_invite(now, tx, transport, source, request),
            (Method::Cancel, _) => self.incoming_cancel(now, tx, &request),
            (Method::Options, None) => {
                let response = self.options_response(&request);
                self.respond_tx(now, tx, &response);
            }
            (_, Some(tag)) => self.in_dialog_request(now, tx, source, &tag, request),
            (Method::Register, None) => self.reply(now, tx, &request, 405, None),
            (Method::Bye, None) | (Method::Info, None) | (Method::Update, None) => self.reply(now, tx, &request, 481, None),
            _ => self.reply(now, tx, &request, 405, None),
        }
    }

    /// Answers a request statelessly through its transaction with `status`.
    fn reply(&mut self, now: Instant, tx: u64, request: &Request, status: u16, reason: Option<&str>) {
        let tag = self.ids.tag();
        let mut response = Response::for_request(request, status, reason.unwrap_or(reason_phrase(status)), Some(&tag));
        self.decorate(&mut response);
        if status == 405 || status == 200 && request.method == Method::Options {
            response.headers.push(HeaderName::Allow, build::ALLOW);
        }
        self.respond_tx(now, tx, &response);
    }

    fn options_response(&mut self, request: &Request) -> Response {
        let tag = self.ids.tag();
        let mut response = Response::for_request(request, 200, "OK", Some(&tag));
        self.decorate(&mut response);
        response.headers.push(HeaderName::Allow, build::ALLOW);
        response.headers.push(HeaderName::Accept, "application/sdp");
        response
    }

    /// Adds the headers every response of ours carries.
    fn decorate(&self, response: &mut Response) {
        response.headers.push(HeaderName::Server, self.config.user_agent.clone());
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4).
fn response_destination(transport: &Transport, source: SocketAddr, via: &crate::message::Via) -> SocketAddr {
    if transport.is_reliable() || via.rport().is_some() {
        return source;
    }
    SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
}

#[cfg(test)]
mod tests;
