//! Socket.IO on the local server: the store's [`Event`]s pushed to authenticated clients.
//!
//! socketioxide serves Engine.IO at [`SocketConfig::path`] (`/ws`, so the WebSocket URL is
//! `ws://HOST/ws/?EIO=4&transport=websocket`) on the same router and port as the REST API.
//!
//! # Protocol (an assumption)
//!
//! The API reference says only: connect with Socket.IO to `wss://api.happ.tools/ws`,
//! authenticate with your token, join your company room, receive `MESSAGE_CREATED`,
//! `CHAT_MODE_CHANGED` and `CHAT_CREATED`. The event names and payloads of the first two steps are
//! not documented; this server implements the following, and the real-time client makes every
//! name configurable:
//!
//! 1. CONNECT to the main namespace `/`, optionally with the auth object `{"token": "…"}`. A
//!    token that is present and wrong is refused at once (CONNECT_ERROR `invalid token`); no
//!    token, or the right one, is accepted.
//! 2. Emit `authenticate` ([`SocketConfig::auth_event`]) with `{"token": "…"}` and an ack:
//!    `{"success": true, "companyId": "…"}`, or `{"success": false, "error": {"message", "code":
//!    "UNAUTHORIZED"}}` after which the server disconnects the socket.
//! 3. Emit `join` ([`SocketConfig::join_event`]) with `{"room": "company:<companyId>"}` and an
//!    ack: `{"success": true, "room": "…"}`, or `{"success": false, "error": …}` (`UNAUTHORIZED`
//!    before step 2, `FORBIDDEN` for another room, `VALIDATION_ERROR` without a room).
//! 4. Receive every store [`Event`] as `event.name()` with `event.payload()` (the REST object, or
//!    `{chatId, isUnderAiControl, aiDisableReason}`), in the order of the store's changes. Only
//!    the company room gets them: a socket that has not authenticated and joined gets nothing.
//!
//! One company per server ([`SocketConfig::company_id`], `local-company` by default).
//!
//! # Faults, for tests
//!
//! [`Hub`] (behind the admin endpoints `/_admin/ws…`, see the crate doc) can disconnect every
//! socket, refuse new Engine.IO connections with 503, and pause delivery: events are then dropped
//! ([`Delivery::Drop`], as a server that lost them) or held and sent when delivery resumes
//! ([`Delivery::Hold`], as a late delivery that a client will also have caught up on).
//!
//! socketioxide answers the CONNECT and then spawns the connect handler; event handlers
//! registered there would miss an event sent right after the reply. The handlers are therefore
//! registered in a connect middleware, which runs before the reply.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use happ_client::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::events::Event;
use crate::lock;

/// Held events beyond this are dropped, oldest first (and counted as dropped).
const MAX_HELD: usize = 100_000;

/// Settings of the Socket.IO endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// The Engine.IO path. Default `/ws`, as on the platform.
    pub path: String,
    /// The one company of this server. Default `local-company`.
    pub company_id: String,
    /// The event that authenticates a socket. Default `authenticate`.
    pub auth_event: String,
    /// The event that joins a room. Default `join`.
    pub join_event: String,
    /// The company room, `{companyId}` replaced by the id. Default `company:{companyId}`.
    pub room_template: String,
    /// Engine.IO `pingInterval`. Default 25 s (the Socket.IO default).
    pub ping_interval: Duration,
    /// Engine.IO `pingTimeout`. Default 20 s.
    pub ping_timeout: Duration,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            path: "/ws".into(),
            company_id: "local-company".into(),
            auth_event: "authenticate".into(),
            join_event: "join".into(),
            room_template: "company:{companyId}".into(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
        }
    }
}

impl SocketConfig {
    /// The company room's name.
    pub fn room(&self) -> String {
        self.room_template.replace("{companyId}", &self.company_id)
    }
}

/// What happens to store events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Delivery {
    /// Sent to the company room as they happen.
    #[default]
    Live,
    /// Dropped: clients never see them (they must catch up through the REST API).
    Drop,
    /// Kept, in order, and sent when delivery turns [`Delivery::Live`] again.
    Hold,
}

/// The Socket.IO side at a glance (`GET /_admin/ws`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubStatus {
    /// What happens to store events now.
    pub delivery: Delivery,
    /// Whether new Engine.IO connections are refused with 503.
    pub refusing: bool,
    /// Sockets connected now.
    pub sockets: usize,
    /// Sockets in the company room now.
    pub joined: usize,
    /// Events held for later.
    pub held: usize,
    /// Counters since the start.
    #[serde(flatten)]
    pub counters: HubCounters,
}

/// Counters of the Socket.IO side, since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubCounters {
    /// Sockets accepted (CONNECT answered).
    pub connections: u64,
    /// Connections refused: a wrong token in the CONNECT auth, or a 503 while refusing.
    pub refused: u64,
    /// Successful authentications.
    pub authenticated: u64,
    /// Refused authentications.
    pub auth_failures: u64,
    /// Successful joins.
    pub joins: u64,
    /// Events sent to the company room.
    pub forwarded: u64,
    /// Events dropped (paused with [`Delivery::Drop`], hold queue overflow, lagging forwarder).
    pub dropped: u64,
}

/// The Socket.IO endpoint and its fault switches. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    io: SocketIo,
    layer: SocketIoLayer,
    shared: Arc<HubShared>,
}

/// What the Socket.IO handlers share. It holds no [`SocketIo`] (the handlers live inside it) and
/// only a weak sender of the events, so dropping the server's state ends the forwarder.
struct HubShared {
    config: SocketConfig,
    room: String,
    tokens: Vec<Secret>,
    events: broadcast::WeakSender<Event>,
    forwarder_started: AtomicBool,
    refusing: AtomicBool,
    /// Taken by the forwarder for each event and by `resume` for its flush, so a flush is never
    /// overtaken by a newer event. An async mutex: it is held across the (async) room emit.
    delivery: tokio::sync::Mutex<DeliveryState>,
    counters: Mutex<HubCounters>,
}

#[derive(Debug, Default)]
struct DeliveryState {
    mode: Delivery,
    held: VecDeque<Event>,
}

/// The marker of an authenticated socket (a socket extension).
#[derive(Clone, Debug)]
struct Authenticated;

/// The error of the CONNECT middleware: its text is the CONNECT_ERROR message.
#[derive(Debug)]
struct Refusal(&'static str);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub").field("config", &self.shared.config).field("room", &self.shared.room).finish_non_exhaustive()
    }
}

impl Hub {
    /// The endpoint for `config`, accepting `tokens`, forwarding what `events` sends.
    pub(crate) fn new(config: &SocketConfig, tokens: Vec<Secret>, events: &broadcast::Sender<Event>) -> Self {
        let (layer, io) = SocketIo::builder().req_path(config.path.clone()).ping_interval(config.ping_interval).ping_timeout(config.ping_timeout).build_layer();
        let shared = Arc::new(HubShared {
            room: config.room(),
            config: config.clone(),
            tokens,
            events: events.downgrade(),
            forwarder_started: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            delivery: tokio::sync::Mutex::new(DeliveryState::default()),
            counters: Mutex::new(HubCounters::default()),
        });
        let handlers = Arc::clone(&shared);
        let register = async move |socket: SocketRef| {
            register_handlers(&socket, &handlers);
            Ok::<(), Refusal>(())
        };
        let gate = Arc::clone(&shared);
        let check = async move |socket: SocketRef, io: SocketIo, Data(auth): Data<Value>| {
            let token_ok = match auth.get("token") {
                None | Some(Value::Null) => true,
                Some(Value::String(token)) => gate.token_ok(token),
                Some(_) => false,
            };
            if !token_ok {
                lock(&gate.counters).refused += 1;
                tracing::debug!(sid = %socket.id, "Socket.IO CONNECT refused: invalid token");
                return Err(Refusal("invalid token"));
            }
            start_forwarder(&gate, io);
            Ok(())
        };
        let connected = Arc::clone(&shared);
        let on_connect = async move |socket: SocketRef| {
            lock(&connected.counters).connections += 1;
            tracing::debug!(sid = %socket.id, "Socket.IO socket connected");
        };
        // `with` puts a middleware in front: the token check runs first, then the handlers are
        // registered, then the CONNECT is answered.
        io.ns("/", on_connect.with(register).with(check));
        Self { io, layer, shared }
    }

    /// `router` with the Socket.IO endpoint in front, and the 503 gate in front of that.
    pub(crate) fn mount(&self, router: Router) -> Router {
        router.layer(self.layer.clone()).layer(middleware::from_fn_with_state(self.clone(), gate))
    }

    /// The settings.
    pub fn config(&self) -> &SocketConfig {
        &self.shared.config
    }

    /// The company room's name.
    pub fn room(&self) -> &str {
        &self.shared.room
    }

    /// The socketioxide handle, for anything the switches below do not cover.
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// Disconnects every socket (a Socket.IO DISCONNECT, as `socket.disconnect()` on the
    /// server); returns how many there were. Clients may reconnect at once unless
    /// [`Hub::set_refusing`] is on.
    pub async fn disconnect_all(&self) -> usize {
        let Some(ns) = self.io.of("/") else { return 0 };
        let count = ns.clone().sockets().len();
        if let Err(e) = ns.disconnect().await {
            tracing::warn!(error = %e, "disconnecting the Socket.IO sockets failed");
        }
        count
    }

    /// Refuses (`true`) or accepts again (`false`) new Engine.IO connections; refused ones get a
    /// 503 before the WebSocket upgrade. Sockets already connected stay.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Sets what happens to store events from now on. Turning [`Delivery::Live`] sends the held
    /// events first, in order, before any newer one.
    pub async fn set_delivery(&self, mode: Delivery) {
        let mut delivery = self.shared.delivery.lock().await;
        delivery.mode = mode;
        if mode == Delivery::Live {
            while let Some(event) = delivery.held.pop_front() {
                self.shared.emit(&self.io, &event).await;
            }
        }
    }

    /// The current state and counters.
    pub async fn status(&self) -> HubStatus {
        let (delivery, held) = {
            let d = self.shared.delivery.lock().await;
            (d.mode, d.held.len())
        };
        let sockets = self.io.of("/").map_or(0, |ns| ns.sockets().len());
        let joined = self.io.of("/").map_or(0, |ns| ns.to(self.shared.room.clone()).sockets().len());
        HubStatus { delivery, refusing: self.shared.refusing.load(Ordering::SeqCst), sockets, joined, held, counters: *lock(&self.shared.counters) }
    }

    /// Disconnects every socket and removes the namespaces (socketioxide's `close`); later
    /// connections are refused. For the server's shutdown.
    pub(crate) async fn close(&self) {
        self.io.close().await;
    }
}

impl HubShared {
    fn token_ok(&self, token: &str) -> bool {
        self.tokens.iter().any(|t| t.expose() == token)
    }

    /// Emits `event` to the company room.
    async fn emit(&self, io: &SocketIo, event: &Event) {
        let Some(ns) = io.of("/") else { return };
        match ns.to(self.room.clone()).emit(event.name(), &event.payload()).await {
            Ok(()) => lock(&self.counters).forwarded += 1,
            Err(e) => {
                tracing::warn!(event = event.name(), error = %e, "Socket.IO emit to the company room failed");
                lock(&self.counters).dropped += 1;
            }
        }
    }

    /// Sends, drops or holds one event, as the delivery mode says.
    async fn deliver(&self, io: &SocketIo, event: Event) {
        let mut delivery = self.delivery.lock().await;
        match delivery.mode {
            Delivery::Live => self.emit(io, &event).await,
            Delivery::Drop => lock(&self.counters).dropped += 1,
            Delivery::Hold => {
                if delivery.held.len() >= MAX_HELD {
                    delivery.held.pop_front();
                    lock(&self.counters).dropped += 1;
                }
                delivery.held.push_back(event);
            }
        }
    }
}

/// Starts, once, the task that forwards store events to the company room. It starts with the
/// first connection, which comes before any socket can join the room, so no event a client could
/// receive is missed; it ends when the server's state (the event sender) is dropped.
fn start_forwarder(shared: &Arc<HubShared>, io: SocketIo) {
    if shared.forwarder_started.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(sender) = shared.events.upgrade() else { return };
    let mut events = sender.subscribe();
    drop(sender);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => shared.deliver(&io, event).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "the Socket.IO forwarder fell behind the store's events");
                    lock(&shared.counters).dropped += n;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// The `authenticate` and `join` handlers of one socket.
fn register_handlers(socket: &SocketRef, shared: &Arc<HubShared>) {
    let auth = Arc::clone(shared);
    socket.on(shared.config.auth_event.clone(), async move |socket: SocketRef, Data(data): Data<Value>, ack: AckSender| {
        let answer = match data.get("token").and_then(Value::as_str) {
            Some(token) if auth.token_ok(token) => Ok(()),
            Some(_) => Err("invalid access token"),
            None => Err("a token is required: {\"token\": \"…\"}"),
        };
        match answer {
            Ok(()) => {
                socket.extensions.insert(Authenticated);
                lock(&auth.counters).authenticated += 1;
                ack.send(&json!({"success": true, "companyId": auth.config.company_id})).ok();
            }
            Err(message) => {
                lock(&auth.counters).auth_failures += 1;
                tracing::debug!(sid = %socket.id, message, "Socket.IO authentication refused");
                // The ack is queued before the DISCONNECT on the same socket, so the client
                // reads the reason first.
                ack.send(&refusal("UNAUTHORIZED", message)).ok();
                socket.disconnect().ok();
            }
        }
    });
    let join = Arc::clone(shared);
    socket.on(shared.config.join_event.clone(), async move |socket: SocketRef, Data(data): Data<Value>, ack: AckSender| {
        let answer = if socket.extensions.get::<Authenticated>().is_none() {
            refusal("UNAUTHORIZED", &format!("authenticate first (event {:?})", join.config.auth_event))
        } else {
            match data.get("room").and_then(Value::as_str) {
                None => refusal("VALIDATION_ERROR", "a room is required: {\"room\": \"…\"}"),
                Some(room) if room != join.room => refusal("FORBIDDEN", &format!("room {room:?} is not your company's")),
                Some(room) => {
                    socket.join(room.to_owned());
                    lock(&join.counters).joins += 1;
                    json!({"success": true, "room": room})
                }
            }
        };
        ack.send(&answer).ok();
    });
}

/// An ack in the API's error envelope.
fn refusal(code: &str, message: &str) -> Value {
    json!({"success": false, "error": {"message": message, "code": code}})
}

/// Answers Engine.IO requests with 503 while the hub refuses connections.
async fn gate(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let base = hub.shared.config.path.trim_end_matches('/');
    let ours = path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if ours && hub.shared.refusing.load(Ordering::SeqCst) {
        lock(&hub.shared.counters).refused += 1;
        let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        return ApiError { status, code: ApiError::code_for(status), message: "Socket.IO connections are refused for now".into() }.into_response();
    }
    next.run(req).await
}
