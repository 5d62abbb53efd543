//! Real-time events of the Happ platform over Socket.IO, with catch-up after reconnects.
//!
//! ```no_run
//! # async fn demo() -> Result<(), happ_client::realtime::RealtimeError> {
//! use happ_client::realtime::{Realtime, RealtimeConfig, RealtimeEvent};
//!
//! let (handle, mut events) = Realtime::connect(RealtimeConfig::new("https://api.happ.tools", "happ_your_token_here"))?;
//! handle.watch("the-call-chat-id".into()).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         RealtimeEvent::MessageCreated(m) => println!("{}: {}", m.chat_id, m.content),
//!         RealtimeEvent::ChatModeChanged { chat_id, is_under_ai_control: false, .. } => println!("{chat_id} handed to a human"),
//!         RealtimeEvent::Closed => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Protocol (assumptions)
//!
//! The API reference says: Socket.IO at `wss://api.happ.tools/ws`; after connecting,
//! authenticate with your token, join your company room, receive `MESSAGE_CREATED`,
//! `CHAT_MODE_CHANGED`, `CHAT_CREATED`. It names neither the events of the first two steps nor
//! any payload. This client assumes, and lets [`RealtimeConfig`] change every name:
//!
//! - Engine.IO v4 / Socket.IO v5 at `/ws/` on the API's host (`https` → `wss`), main namespace,
//!   with the CONNECT auth object `{"token": "…"}` ([`RealtimeConfig::token_in_connect_auth`]).
//! - Emit `authenticate` ([`RealtimeConfig::auth_event`]) with `{"token": "…"}`, expecting an
//!   acknowledgement `{"success": true, "companyId": "…"}`; `success: false` or an `error`
//!   (`{message, code}`) is a refusal.
//! - Emit `join` ([`RealtimeConfig::join_event`]) with `{"room": "company:<companyId>"}`
//!   ([`RealtimeConfig::room_template`]; [`RealtimeConfig::company_id`] when the
//!   acknowledgement does not say), expecting an acknowledgement of the same form.
//! - Events carry the REST object (the message, the chat) or
//!   `{chatId, isUnderAiControl, aiDisableReason}`, possibly inside `{"data": …}`.
//!
//! `happ-server` (the local Happ-compatible server) implements exactly this.
//!
//! # Connection life
//!
//! The Socket.IO session (`happ-socketio`) reconnects by itself with jittered exponential backoff
//! ([`RealtimeConfig::reconnect`]). After every (re)connection the task authenticates and joins
//! again, then sends [`RealtimeEvent::Connected`] and catches up the watched chats. A refusal
//! (a bad token at CONNECT or at `authenticate`, a refused room) or a handshake the server never
//! acknowledges is not retried: [`RealtimeEvent::HandshakeFailed`] then [`RealtimeEvent::Closed`].
//!
//! # Catch-up and duplicates
//!
//! For every watched chat ([`RealtimeHandle::watch`]) the task lists, after each join, the
//! messages after the last one it delivered (`HappClient::messages_since`) and delivers the
//! missed ones as [`RealtimeEvent::MessageCreated`], oldest first. While a catch-up runs, live
//! events wait (in order) and are released after it, so per chat the order is kept. A message
//! delivered once is not delivered again, whether it comes live and from a catch-up or twice
//! live ([`Tracker`]). A catch-up that fails after the REST client's retries is reported
//! ([`RealtimeEvent::CatchUpFailed`]) and tried again after [`RealtimeConfig::catch_up_retry`]
//! (a 4xx, such as an unknown chat, only at the next join or [`RealtimeHandle::catch_up`]).
//!
//! Limits: only messages are caught up (a `CHAT_MODE_CHANGED` or `CHAT_CREATED` sent while
//! disconnected is lost; list the chats if it matters); an event the server drops while the
//! connection stays up is noticed only if a later catch-up lists it, that is, if it is newer than
//! the last message delivered in that chat ([`RealtimeHandle::catch_up`] forces one).
//!
//! # Channels
//!
//! Events: bounded by [`RealtimeConfig::event_capacity`] (1024). When full, the task waits, which
//! stops it reading the Socket.IO session, which then stops reading the socket: nothing is
//! dropped. When the receiver is dropped the task closes the session and ends. Commands: the
//! handle's methods wait for room (capacity 64). When every handle is dropped the session is
//! closed, as in `happ-socketio`: keep a handle for as long as you want events.

mod tracker;
pub mod wire;

pub use happ_socketio::{DisconnectReason, ReconnectPolicy};
pub use tracker::{Tracker, TrackerLimits};

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use happ_socketio::{Client as SocketClient, ClientConfig as SocketConfig, ClientError, Event as SocketEvent, SessionConfig};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::client::{ClientConfig, Error, HappClient};
use crate::model::{AiDisableReason, Chat, ChatId, Message, MessageId};
use crate::secret::Secret;

/// How many handle commands may wait for the task.
const COMMAND_CAPACITY: usize = 64;

/// Settings of a [`Realtime`] connection.
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// The REST settings: `base_url` (the Socket.IO URL is derived from it) and `token` serve
    /// both sides; the rest (timeouts, retries) applies to the catch-up listings.
    pub rest: ClientConfig,
    /// The Engine.IO path on the API's host. Default `/ws/`.
    pub socket_path: String,
    /// The event that authenticates. Default `authenticate`.
    pub auth_event: String,
    /// The event that joins the company room. Default `join`.
    pub join_event: String,
    /// The room to join; `{companyId}` is replaced by the company id. Default
    /// `company:{companyId}`.
    pub room_template: String,
    /// The company id, if known. Default `None`: the one the authentication acknowledgement
    /// gives (`companyId`). When set, it wins over the acknowledgement.
    pub company_id: Option<String>,
    /// Whether the CONNECT packet carries `{"token": "…"}` too. Default true.
    pub token_in_connect_auth: bool,
    /// How long to wait for each handshake acknowledgement. Default 10 s.
    pub ack_timeout: Duration,
    /// How long a connection may take to be up (WebSocket, handshake, CONNECT). Default 20 s.
    pub connect_timeout: Duration,
    /// Reconnection backoff, passed to `happ-socketio`. Default 1 s doubling to 30 s, ±50 %, for
    /// ever.
    pub reconnect: ReconnectPolicy,
    /// The seed of the backoff jitter; `None` draws one per client.
    pub seed: Option<u64>,
    /// Events the application has not taken yet before the task waits. Default 1024.
    pub event_capacity: usize,
    /// Chats listed at once during a catch-up. Default 4.
    pub catch_up_concurrency: usize,
    /// How long after a failed catch-up it is tried again. Default 5 s.
    pub catch_up_retry: Duration,
    /// The memory of the duplicate filter.
    pub tracker: TrackerLimits,
}

impl RealtimeConfig {
    /// The defaults for the API at `base_url` (`https://api.happ.tools`) with `token`.
    pub fn new(base_url: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self::with_rest(ClientConfig::new(base_url, token))
    }

    /// The defaults around REST settings already made.
    pub fn with_rest(rest: ClientConfig) -> Self {
        Self {
            rest,
            socket_path: "/ws/".into(),
            auth_event: "authenticate".into(),
            join_event: "join".into(),
            room_template: "company:{companyId}".into(),
            company_id: None,
            token_in_connect_auth: true,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            reconnect: ReconnectPolicy::default(),
            seed: None,
            event_capacity: 1024,
            catch_up_concurrency: 4,
            catch_up_retry: Duration::from_secs(5),
            tracker: TrackerLimits::default(),
        }
    }
}

/// Which step of the handshake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The Socket.IO CONNECT (the token in the CONNECT auth object).
    Connect,
    /// The authentication event.
    Authenticate,
    /// The room join.
    Join,
}

/// Why the handshake failed. Each one ends the connection for good.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The server said no (a bad token, a room that is not ours).
    #[error("refused by the server: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        /// The server's message.
        message: String,
        /// The server's error code, if any.
        code: Option<String>,
    },
    /// No acknowledgement in time: most likely the server does not know the event name.
    #[error("no acknowledgement within {0:?}: does the server use this event name?")]
    NoAck(Duration),
    /// An acknowledgement this client cannot read.
    #[error("unreadable acknowledgement: {0}")]
    BadAck(String),
    /// The room template needs a company id that neither the settings nor the authentication
    /// acknowledgement give.
    #[error("the room template needs {{companyId}}, and neither the settings nor the authentication acknowledgement give one")]
    NoCompany,
    /// The session refused the emit (e.g. a reserved event name).
    #[error("cannot emit: {0}")]
    Emit(String),
}

/// What the real-time connection reports.
#[derive(Clone, Debug)]
pub enum RealtimeEvent {
    /// Authenticated and joined; catch-up events (if any) follow, then live ones.
    Connected {
        /// Whether an earlier connection of this client had joined.
        reconnected: bool,
    },
    /// `MESSAGE_CREATED`, live or from a catch-up, once per message.
    MessageCreated(Message),
    /// `CHAT_CREATED`.
    ChatCreated(Chat),
    /// `CHAT_MODE_CHANGED`.
    ChatModeChanged {
        /// The chat.
        chat_id: ChatId,
        /// The new mode.
        is_under_ai_control: bool,
        /// Why the AI is off (`manual`, `auto`), if the server says.
        ai_disable_reason: Option<AiDisableReason>,
    },
    /// Any other server event, as sent.
    Other {
        /// The event name.
        name: String,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// A server event whose payload could not be read (`name` is empty for a frame that was not
    /// an event at all). It is skipped.
    Malformed {
        /// The event name.
        name: String,
        /// What is wrong.
        error: String,
    },
    /// A connection that had reached Socket.IO CONNECT ended; a reconnect follows unless the
    /// client is closing.
    Disconnected {
        /// Why, and who ended it ([`DisconnectReason::initiator`]).
        reason: DisconnectReason,
    },
    /// The next connection attempt, after `delay`.
    Reconnecting {
        /// The attempt number, from 1.
        attempt: u32,
        /// The backoff delay, jitter included.
        delay: Duration,
    },
    /// The catch-up of a watched chat failed after the REST client's retries; it is tried again
    /// after [`RealtimeConfig::catch_up_retry`] (a 4xx at the next join).
    CatchUpFailed {
        /// The chat.
        chat_id: ChatId,
        /// The REST error.
        error: Arc<Error>,
    },
    /// The handshake failed for good; [`RealtimeEvent::Closed`] follows.
    HandshakeFailed {
        /// Which step.
        stage: Stage,
        /// Why.
        error: HandshakeError,
    },
    /// The client is closed; nothing follows.
    Closed,
}

/// Counters, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealtimeStats {
    /// Handshakes completed (authenticated and joined).
    pub joins: u64,
    /// Of those, after an earlier one.
    pub rejoins: u64,
    /// Messages delivered from live events.
    pub live_messages: u64,
    /// Messages delivered from catch-up listings.
    pub caught_up_messages: u64,
    /// Messages not delivered because they already were.
    pub duplicates: u64,
    /// Catch-up rounds run (each over the chats that needed one).
    pub catch_ups: u64,
    /// Chat listings that failed.
    pub catch_up_failures: u64,
    /// Events reported as malformed.
    pub malformed: u64,
}

/// Why [`Realtime::connect`] or a handle method failed.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The settings are unusable.
    #[error("invalid real-time settings: {0}")]
    Config(String),
    /// The REST client could not be built.
    #[error(transparent)]
    Rest(#[from] Error),
    /// The Socket.IO client could not be started.
    #[error("Socket.IO: {0}")]
    Socket(#[from] ClientError),
    /// The client has closed.
    #[error("the real-time client is closed")]
    Closed,
}

/// The entry point.
#[derive(Debug)]
pub struct Realtime;

impl Realtime {
    /// Checks `config`, starts the Socket.IO session and the task that runs the handshake and
    /// the catch-ups, and returns at once (inside a tokio runtime), before the connection is up.
    pub fn connect(config: RealtimeConfig) -> Result<(RealtimeHandle, mpsc::Receiver<RealtimeEvent>), RealtimeError> {
        validate(&config)?;
        let (url, path) = wire::socket_target(&config.rest.base_url, &config.socket_path).map_err(RealtimeError::Config)?;
        let rest = HappClient::new(config.rest.clone())?;
        let token = config.rest.token.clone();
        let mut socket_config = SocketConfig::new(url, path);
        socket_config.session = SessionConfig {
            auth: config.token_in_connect_auth.then(|| token_object(&token)),
            connect_timeout: config.connect_timeout,
            reconnect: config.reconnect.clone(),
            ..SessionConfig::default()
        };
        socket_config.seed = config.seed;
        let (socket, socket_events) = happ_socketio::connect(socket_config)?;
        let (commands_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
        let (out, events) = mpsc::channel(config.event_capacity);
        let stats = Arc::new(Mutex::new(RealtimeStats::default()));
        let task = Task {
            handshake: Handshake {
                socket: socket.clone(),
                token,
                auth_event: config.auth_event.clone(),
                join_event: config.join_event.clone(),
                room_template: config.room_template.clone(),
                company_id: config.company_id.clone(),
                ack_timeout: config.ack_timeout,
            },
            tracker: Tracker::new(config.tracker),
            config,
            socket,
            socket_events,
            rest,
            commands,
            commands_open: true,
            out,
            stats: Arc::clone(&stats),
            socket_up: false,
            joined: false,
            ever_joined: false,
            closing: false,
            pending_handshake: None,
            catch_up: None,
            due: BTreeSet::new(),
            retry: BTreeSet::new(),
            retry_at: None,
        };
        tokio::spawn(task.run());
        Ok((RealtimeHandle { commands: commands_tx, stats }, events))
    }
}

fn validate(config: &RealtimeConfig) -> Result<(), RealtimeError> {
    for (what, name) in [("auth_event", &config.auth_event), ("join_event", &config.join_event)] {
        if name.is_empty() || happ_socketio::socketio::RESERVED_EVENTS.contains(&name.as_str()) {
            return Err(RealtimeError::Config(format!("{what} {name:?} is empty or reserved by Socket.IO")));
        }
    }
    if config.room_template.is_empty() {
        return Err(RealtimeError::Config("room_template is empty".into()));
    }
    if config.event_capacity == 0 || config.catch_up_concurrency == 0 {
        return Err(RealtimeError::Config("event_capacity and catch_up_concurrency must be at least 1".into()));
    }
    if config.ack_timeout.is_zero() || config.catch_up_retry.is_zero() {
        return Err(RealtimeError::Config("ack_timeout and catch_up_retry must not be zero".into()));
    }
    Ok(())
}

fn token_object(token: &Secret) -> Map<String, Value> {
    let mut auth = Map::new();
    auth.insert("token".into(), Value::String(token.expose().to_owned()));
    auth
}

/// A handle on the real-time task. Cheap to clone; the session closes when the last handle is
/// dropped.
#[derive(Clone, Debug)]
pub struct RealtimeHandle {
    commands: mpsc::Sender<Command>,
    stats: Arc<Mutex<RealtimeStats>>,
}

#[derive(Debug)]
enum Command {
    Watch { chat: ChatId, after: Option<MessageId> },
    Unwatch(ChatId),
    CatchUp,
    Close,
}

impl RealtimeHandle {
    /// Watches `chat`: its messages are caught up after every reconnect, and at once if
    /// connected. A chat not seen before is caught up from its first message (right for a chat
    /// this process just created); see [`RealtimeHandle::watch_after`] otherwise. Watching a
    /// watched chat changes nothing.
    pub async fn watch(&self, chat: ChatId) -> Result<(), RealtimeError> {
        self.send(Command::Watch { chat, after: None }).await
    }

    /// Watches `chat`, whose messages up to `last_seen` the caller already has.
    pub async fn watch_after(&self, chat: ChatId, last_seen: MessageId) -> Result<(), RealtimeError> {
        self.send(Command::Watch { chat, after: Some(last_seen) }).await
    }

    /// Stops catching up `chat` (its live events still come).
    pub async fn unwatch(&self, chat: ChatId) -> Result<(), RealtimeError> {
        self.send(Command::Unwatch(chat)).await
    }

    /// Catches up every watched chat now (if connected; otherwise the next join does).
    pub async fn catch_up(&self) -> Result<(), RealtimeError> {
        self.send(Command::CatchUp).await
    }

    /// Closes the connection; [`RealtimeEvent::Closed`] follows. Returns once the task has the
    /// command.
    pub async fn close(&self) {
        let _ = self.send(Command::Close).await;
    }

    /// Whether the task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// The counters so far.
    pub fn stats(&self) -> RealtimeStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn send(&self, command: Command) -> Result<(), RealtimeError> {
        self.commands.send(command).await.map_err(|_| RealtimeError::Closed)
    }
}

/// The handshake's settings, cloned into each attempt.
#[derive(Clone)]
struct Handshake {
    socket: SocketClient,
    token: Secret,
    auth_event: String,
    join_event: String,
    room_template: String,
    company_id: Option<String>,
    ack_timeout: Duration,
}

/// How a handshake attempt ended.
enum Outcome {
    /// Joined this room.
    Joined(String),
    /// Refused or not understood: the client closes.
    Failed(Stage, HandshakeError),
    /// The connection dropped meanwhile: the next one tries again.
    Lost,
}

impl Handshake {
    async fn run(self) -> Outcome {
        let ack = match self.ask(&self.auth_event, json!({"token": self.token.expose()})).await {
            Ok(ack) => ack,
            Err(Some(e)) => return Outcome::Failed(Stage::Authenticate, e),
            Err(None) => return Outcome::Lost,
        };
        let company = self.company_id.clone().or_else(|| wire::company_id(&ack));
        let room = match company {
            Some(company) => self.room_template.replace("{companyId}", &company),
            None if self.room_template.contains("{companyId}") => return Outcome::Failed(Stage::Join, HandshakeError::NoCompany),
            None => self.room_template.clone(),
        };
        match self.ask(&self.join_event, json!({"room": room})).await {
            Ok(_) => Outcome::Joined(room),
            Err(Some(e)) => Outcome::Failed(Stage::Join, e),
            Err(None) => Outcome::Lost,
        }
    }

    /// Emits `event` and reads its acknowledgement: `Err(None)` when the connection was lost
    /// meanwhile.
    async fn ask(&self, event: &str, data: Value) -> Result<Value, Option<HandshakeError>> {
        match self.socket.emit_with_ack(event, data, self.ack_timeout).await {
            Ok(args) => wire::read_ack(&args).cloned().map_err(Some),
            Err(ClientError::Ack(happ_socketio::AckFailure::Timeout)) => Err(Some(HandshakeError::NoAck(self.ack_timeout))),
            Err(ClientError::Ack(_) | ClientError::Closed) => Err(None),
            Err(e) => Err(Some(HandshakeError::Emit(e.to_string()))),
        }
    }
}

type Listing = (ChatId, Result<Vec<Message>, Error>);

/// The task: owns the Socket.IO client's events, the tracker and the in-flight handshake and
/// catch-up; one `select!` loop, so no locks besides the stats.
struct Task {
    config: RealtimeConfig,
    handshake: Handshake,
    socket: SocketClient,
    socket_events: mpsc::Receiver<SocketEvent>,
    rest: HappClient,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    out: mpsc::Sender<RealtimeEvent>,
    stats: Arc<Mutex<RealtimeStats>>,
    tracker: Tracker,
    /// Socket.IO CONNECT answered on the current connection.
    socket_up: bool,
    /// Authenticated and joined on the current connection.
    joined: bool,
    ever_joined: bool,
    closing: bool,
    pending_handshake: Option<BoxFuture<'static, Outcome>>,
    /// The catch-up in flight. While it runs, Socket.IO events are not read (they wait in order).
    catch_up: Option<BoxFuture<'static, Vec<Listing>>>,
    /// Watched chats that need a catch-up as soon as none is in flight.
    due: BTreeSet<ChatId>,
    /// Chats whose catch-up failed, due again at `retry_at`.
    retry: BTreeSet<ChatId>,
    retry_at: Option<tokio::time::Instant>,
}

enum Wake {
    Handshake(Outcome),
    CatchUp(Vec<Listing>),
    Command(Option<Command>),
    Socket(Option<SocketEvent>),
    Retry,
}

/// The receiver of events is gone: the task stops.
struct Gone;

impl Task {
    async fn run(mut self) {
        if self.run_loop().await.is_err() {
            tracing::debug!("real-time event receiver dropped; closing");
        }
        self.socket.close().await;
    }

    async fn run_loop(&mut self) -> Result<(), Gone> {
        loop {
            if self.catch_up.is_none() && self.joined && !self.closing && !self.due.is_empty() {
                self.start_catch_up();
            }
            // Biased, handshake first: an acknowledgement that arrived before a DISCONNECT (a
            // refusal followed by the server's disconnect) is read before the disconnect is.
            let wake = tokio::select! {
                biased;
                outcome = poll_slot(&mut self.pending_handshake), if self.pending_handshake.is_some() => Wake::Handshake(outcome),
                listings = poll_slot(&mut self.catch_up), if self.catch_up.is_some() => Wake::CatchUp(listings),
                command = self.commands.recv(), if self.commands_open => Wake::Command(command),
                event = self.socket_events.recv(), if self.catch_up.is_none() => Wake::Socket(event),
                () = sleep_until(self.retry_at), if self.retry_at.is_some() => Wake::Retry,
            };
            match wake {
                Wake::Handshake(outcome) => {
                    self.pending_handshake = None;
                    self.on_handshake(outcome).await?;
                }
                Wake::CatchUp(listings) => {
                    self.catch_up = None;
                    self.on_listings(listings).await?;
                }
                Wake::Command(Some(command)) => self.on_command(command).await,
                Wake::Command(None) => {
                    // Every handle is gone: nobody can watch or close any more.
                    self.commands_open = false;
                    self.close().await;
                }
                Wake::Socket(None | Some(SocketEvent::Closed)) => {
                    self.emit(RealtimeEvent::Closed).await?;
                    return Ok(());
                }
                Wake::Socket(Some(event)) => self.on_socket(event).await?,
                Wake::Retry => {
                    self.retry_at = None;
                    let retry = std::mem::take(&mut self.retry);
                    self.due.extend(retry.into_iter().filter(|c| self.tracker.is_watched(c)));
                }
            }
        }
    }

    async fn on_socket(&mut self, event: SocketEvent) -> Result<(), Gone> {
        match event {
            SocketEvent::Connected { .. } => {
                self.socket_up = true;
                self.joined = false;
                if !self.closing {
                    self.pending_handshake = Some(Box::pin(self.handshake.clone().run()));
                }
            }
            SocketEvent::Event { name, args, .. } => {
                // The server's acknowledgement requests (if any) are not answered: the protocol
                // has none.
                match wire::translate(name, args) {
                    RealtimeEvent::MessageCreated(message) => {
                        if self.tracker.live(&message) {
                            self.count(|s| s.live_messages += 1);
                            self.emit(RealtimeEvent::MessageCreated(message)).await?;
                        } else {
                            self.count(|s| s.duplicates += 1);
                        }
                    }
                    malformed @ RealtimeEvent::Malformed { .. } => {
                        self.count(|s| s.malformed += 1);
                        self.emit(malformed).await?;
                    }
                    other => self.emit(other).await?,
                }
            }
            SocketEvent::Disconnected { reason } => {
                self.pending_handshake = None;
                self.joined = false;
                let was_up = std::mem::replace(&mut self.socket_up, false);
                if let DisconnectReason::ConnectError { message, data, .. } = &reason {
                    let code = data.as_ref().and_then(|d| d.get("code")).and_then(Value::as_str).map(str::to_owned);
                    let error = HandshakeError::Refused { message: message.clone(), code };
                    self.emit(RealtimeEvent::HandshakeFailed { stage: Stage::Connect, error }).await?;
                } else if was_up {
                    self.emit(RealtimeEvent::Disconnected { reason }).await?;
                }
            }
            SocketEvent::Reconnecting { attempt, delay } => self.emit(RealtimeEvent::Reconnecting { attempt, delay }).await?,
            SocketEvent::Malformed { error } => {
                self.count(|s| s.malformed += 1);
                self.emit(RealtimeEvent::Malformed { name: String::new(), error: error.to_string() }).await?;
            }
            // Consumed by the Socket.IO driver; listed for exhaustiveness.
            SocketEvent::WantConnect { .. } | SocketEvent::Ack { .. } | SocketEvent::AckFailed { .. } => {}
            // Handled by the caller.
            SocketEvent::Closed => {}
        }
        Ok(())
    }

    async fn on_handshake(&mut self, outcome: Outcome) -> Result<(), Gone> {
        match outcome {
            Outcome::Joined(room) => {
                tracing::debug!(%room, "real-time: joined");
                self.joined = true;
                let reconnected = std::mem::replace(&mut self.ever_joined, true);
                self.count(|s| {
                    s.joins += 1;
                    s.rejoins += u64::from(reconnected);
                });
                self.emit(RealtimeEvent::Connected { reconnected }).await?;
                // Whatever happened while disconnected: every watched chat is due.
                self.due.extend(self.tracker.watched());
                self.retry.clear();
                self.retry_at = None;
            }
            Outcome::Failed(stage, error) => {
                tracing::warn!(?stage, %error, "real-time handshake failed; closing");
                self.emit(RealtimeEvent::HandshakeFailed { stage, error }).await?;
                self.close().await;
            }
            Outcome::Lost => {}
        }
        Ok(())
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Watch { chat, after } => {
                if self.tracker.watch(chat.clone(), after) {
                    self.due.insert(chat);
                }
            }
            Command::Unwatch(chat) => {
                self.tracker.unwatch(&chat);
                self.due.remove(&chat);
                self.retry.remove(&chat);
            }
            Command::CatchUp => self.due.extend(self.tracker.watched()),
            Command::Close => self.close().await,
        }
    }

    fn start_catch_up(&mut self) {
        let chats: Vec<(ChatId, Option<MessageId>)> = std::mem::take(&mut self.due)
            .into_iter()
            .filter(|c| self.tracker.is_watched(c))
            .map(|c| (c.clone(), self.tracker.last_seen(&c).cloned()))
            .collect();
        if chats.is_empty() {
            return;
        }
        self.count(|s| s.catch_ups += 1);
        let rest = self.rest.clone();
        let concurrency = self.config.catch_up_concurrency;
        self.catch_up = Some(Box::pin(async move {
            // `buffered` keeps the order of the chats while listing several at once.
            futures_util::stream::iter(chats)
                .map(|(chat, last)| {
                    let rest = rest.clone();
                    async move {
                        let listing = rest.messages_since(&chat, last.as_ref()).await;
                        (chat, listing)
                    }
                })
                .buffered(concurrency)
                .collect::<Vec<_>>()
                .await
        }));
    }

    async fn on_listings(&mut self, listings: Vec<Listing>) -> Result<(), Gone> {
        for (chat, listing) in listings {
            if !self.tracker.is_watched(&chat) {
                continue;
            }
            match listing {
                Ok(listing) => {
                    let listed = listing.len();
                    let fresh = self.tracker.caught_up(&chat, listing);
                    let fresh_count = fresh.len();
                    self.count(|s| {
                        s.caught_up_messages += fresh_count as u64;
                        s.duplicates += (listed - fresh_count) as u64;
                    });
                    for message in fresh {
                        self.emit(RealtimeEvent::MessageCreated(message)).await?;
                    }
                }
                Err(error) => {
                    self.count(|s| s.catch_up_failures += 1);
                    // A 4xx (no such chat, not ours) will not pass by itself: it waits for the
                    // next join or `catch_up()`. Anything else is tried again soon.
                    if matches!(error, Error::Api { .. }) {
                        tracing::warn!(chat = %chat, %error, "real-time catch-up refused by the API");
                    } else {
                        tracing::warn!(chat = %chat, %error, "real-time catch-up failed; will retry");
                        self.retry.insert(chat.clone());
                        self.retry_at = Some(tokio::time::Instant::now() + self.config.catch_up_retry);
                    }
                    self.emit(RealtimeEvent::CatchUpFailed { chat_id: chat, error: Arc::new(error) }).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts closing: no more handshakes or catch-ups; the Socket.IO session's `Closed` ends
    /// the loop.
    async fn close(&mut self) {
        self.closing = true;
        self.pending_handshake = None;
        self.catch_up = None;
        self.retry_at = None;
        self.socket.close().await;
    }

    // `&mut`: a `&Task` held across the await would need `Task: Sync`, which its futures are not.
    async fn emit(&mut self, event: RealtimeEvent) -> Result<(), Gone> {
        self.out.send(event).await.map_err(|_| Gone)
    }

    fn count(&self, f: impl FnOnce(&mut RealtimeStats)) {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

async fn poll_slot<T>(slot: &mut Option<Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match slot {
        Some(future) => future.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_token() {
        let config = RealtimeConfig::new("https://api.happ.tools", "happ_very_secret");
        let text = format!("{config:?}");
        assert!(!text.contains("very_secret"), "{text}");
        assert!(text.contains("authenticate") && text.contains("company:{companyId}"));
    }

    #[test]
    fn settings_are_checked() {
        let good = RealtimeConfig::new("https://api.happ.tools", "t");
        assert!(validate(&good).is_ok());
        let mut bad = good.clone();
        bad.join_event = "disconnect".into();
        assert!(matches!(validate(&bad), Err(RealtimeError::Config(m)) if m.contains("join_event")));
        let mut bad = good.clone();
        bad.catch_up_concurrency = 0;
        assert!(validate(&bad).is_err());
        let mut bad = good;
        bad.ack_timeout = Duration::ZERO;
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn connect_needs_a_runtime() {
        let err = Realtime::connect(RealtimeConfig::new("http://127.0.0.1:1", "t")).expect_err("no runtime");
        assert!(matches!(err, RealtimeError::Socket(ClientError::NoRuntime)), "{err:?}");
    }
}
