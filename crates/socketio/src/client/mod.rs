//! The tokio driver: one task owns the WebSocket and the [`Session`], and moves frames.
//!
//! [`connect`] checks the settings, spawns the task and returns at once with a [`Client`]
//! handle and the event receiver; the connection is made in the background. Emits made right
//! away wait in the session's queue and leave, in order, right after the Socket.IO CONNECT
//! reply.
//!
//! # Channels
//! * Commands (`Client` → task): bounded by [`ClientConfig::command_capacity`] (default 256).
//!   When full, the `Client` methods wait for room. Each method then waits for the task's answer
//!   (accepted or refused), which comes at once: the task never blocks on its event channel.
//! * Events (task → application): bounded by [`ClientConfig::event_capacity`] (default 1024).
//!   When full, the task keeps handling commands and timers but stops reading the WebSocket
//!   until the application takes events (backpressure: nothing is dropped; a consumer stalled
//!   longer than the server's heartbeat allows loses the connection, which then reconnects).
//!   If the receiver is dropped, events are discarded and the client keeps working.
//!
//! The task consumes [`Event::WantConnect`] and the acknowledgements of
//! [`Client::emit_with_ack`]; every other event reaches the receiver. It ends after
//! [`Event::Closed`]: after [`Client::close`], when every `Client` handle is dropped, after a
//! refused CONNECT, or when the reconnect attempts run out.

mod target;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::session::{AckFailure, AckId, ConfigError, DisconnectReason, EmitError, Event, Frame, PeerAck, Phase, Session, SessionConfig};
use target::Target;

/// How long a polite WebSocket close may take after [`Client::close`].
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Settings of a [`Client`].
#[derive(Clone)]
pub struct ClientConfig {
    /// The server: scheme (`ws`, `wss`, or `http`/`https` for the same) and authority, no path,
    /// e.g. `wss://api.happ.tools`.
    pub url: String,
    /// The Engine.IO path: `/socket.io/` by default, `/ws/` for the Happ platform. A trailing
    /// `/` is added if missing, as the reference client does.
    pub path: String,
    /// Extra query parameters (after `EIO=4&transport=websocket`), percent-encoded by the client.
    pub query: Vec<(String, String)>,
    /// Extra headers of the WebSocket handshake (e.g. `Authorization`). Marked sensitive.
    pub headers: Vec<(String, String)>,
    /// The protocol settings: namespaces, auth, timeouts, reconnect policy, queue bound.
    pub session: SessionConfig,
    /// The jitter seed; `None` draws one per client, so that many gateways do not reconnect in
    /// step.
    pub seed: Option<u64>,
    /// Events the application has not taken yet before the task stops reading the socket.
    pub event_capacity: usize,
    /// Commands (emits, acks, close) waiting for the task before `Client` calls wait.
    pub command_capacity: usize,
    /// The TLS settings for `wss`; `None` uses the webpki roots with the `ring` provider.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientConfig {
    /// Settings for `url` (`wss://api.happ.tools`) and an Engine.IO `path` (`/ws/`), with the
    /// defaults for the rest.
    pub fn new(url: impl Into<String>, path: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            session: SessionConfig::default(),
            seed: None,
            event_capacity: 1024,
            command_capacity: 256,
            tls: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    /// Prints names, never values, of query parameters and headers: they may hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("path", &self.path)
            .field("query_keys", &names(&self.query))
            .field("header_names", &names(&self.headers))
            .field("session", &self.session)
            .field("seed", &self.seed)
            .field("event_capacity", &self.event_capacity)
            .field("command_capacity", &self.command_capacity)
            .field("custom_tls", &self.tls.is_some())
            .finish()
    }
}

/// What can go wrong with a [`Client`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The session settings were refused.
    #[error("invalid session settings: {0}")]
    Config(#[from] ConfigError),
    /// The URL or path was refused.
    #[error("invalid URL: {0}")]
    Url(String),
    /// A header (named here; its value is never shown) was refused.
    #[error("invalid header {0:?}")]
    Header(String),
    /// A zero channel capacity.
    #[error("channel capacities must be at least 1")]
    Capacity,
    /// The TLS settings could not be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// `connect` was called outside a tokio runtime.
    #[error("connect must be called inside a tokio runtime")]
    NoRuntime,
    /// The session refused the emit or ack.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// The acknowledgement will not come.
    #[error(transparent)]
    Ack(#[from] AckFailure),
    /// The client task has ended (closed, refused, or out of reconnect attempts).
    #[error("client closed")]
    Closed,
}

/// A handle on the client task. Cheap to clone; the task closes the session when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    namespace: Arc<str>,
}

enum Command {
    Emit { namespace: String, event: String, args: Vec<Value>, reply: oneshot::Sender<Result<(), ClientError>> },
    EmitWithAck { namespace: String, event: String, args: Vec<Value>, timeout: Duration, reply: oneshot::Sender<Result<Vec<Value>, ClientError>> },
    Ack { namespace: String, id: PeerAck, args: Vec<Value>, reply: oneshot::Sender<Result<(), ClientError>> },
    Close { done: oneshot::Sender<()> },
}

/// Starts a client: checks `config`, spawns the task on the current tokio runtime and returns at
/// once, before the connection is made. See the module documentation for the channels.
pub fn connect(config: ClientConfig) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?;
    if config.event_capacity == 0 || config.command_capacity == 0 {
        return Err(ClientError::Capacity);
    }
    let target = Target::new(&config.url, &config.path, &config.query, &config.headers)?;
    let tls = if target.tls { Some(tls_config(config.tls)?) } else { None };
    let mut session_config = config.session;
    session_config.seed = config.seed.unwrap_or_else(random_seed);
    let namespace: Arc<str> = session_config.namespaces.first().map(|n| Arc::from(n.as_str())).ok_or(ConfigError::NoNamespace)?;
    let session = Session::new(session_config, now())?;
    let (commands_tx, commands) = mpsc::channel(config.command_capacity);
    let (events, events_rx) = mpsc::channel(config.event_capacity);
    let driver = Driver {
        session,
        target,
        tls,
        commands,
        commands_open: true,
        events,
        events_open: true,
        pending: VecDeque::new(),
        acks: HashMap::new(),
        closers: Vec::new(),
        ws: None,
        connecting: None,
        closed: false,
    };
    runtime.spawn(driver.run());
    Ok((Client { commands: commands_tx, namespace }, events_rx))
}

impl Client {
    /// The default namespace (the first configured).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether the task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Emits `event` with one argument in the default namespace. Returns once the session has
    /// queued it (it leaves as soon as the namespace is connected).
    pub async fn emit(&self, event: &str, data: Value) -> Result<(), ClientError> {
        self.emit_to(&self.namespace.clone(), event, vec![data]).await
    }

    /// Emits `event` with any number of arguments in `namespace`.
    pub async fn emit_to(&self, namespace: &str, event: &str, args: Vec<Value>) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Emit { namespace: namespace.to_owned(), event: event.to_owned(), args, reply }).await?;
        answer.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Emits `event` with one argument in the default namespace and waits for the server's
    /// acknowledgement (its arguments), at most `timeout` (queued time included).
    pub async fn emit_with_ack(&self, event: &str, data: Value, timeout: Duration) -> Result<Vec<Value>, ClientError> {
        self.emit_with_ack_to(&self.namespace.clone(), event, vec![data], timeout).await
    }

    /// Emits `event` with any number of arguments in `namespace` and waits for the
    /// acknowledgement.
    pub async fn emit_with_ack_to(&self, namespace: &str, event: &str, args: Vec<Value>, timeout: Duration) -> Result<Vec<Value>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::EmitWithAck { namespace: namespace.to_owned(), event: event.to_owned(), args, timeout, reply }).await?;
        answer.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Answers a server event that asked for an acknowledgement ([`Event::Event`] with `ack`).
    pub async fn ack(&self, namespace: &str, id: PeerAck, args: Vec<Value>) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Ack { namespace: namespace.to_owned(), id, args, reply }).await?;
        answer.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Closes the session (DISCONNECT, then a WebSocket close) and waits for the task to stop
    /// using the connection. Returns at once if it already ended.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Close { done }).await.is_ok() {
            let _ = finished.await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands.send(command).await.map_err(|_| ClientError::Closed)
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Opening = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

/// What woke the task.
enum Wake {
    Permit(Option<mpsc::OwnedPermit<Event>>),
    Command(Option<Command>),
    Opened(Result<Box<Ws>, String>),
    Message(Option<Result<Message, tungstenite::Error>>),
    Timeout,
}

struct Driver {
    session: Session,
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    events: mpsc::Sender<Event>,
    events_open: bool,
    /// Events waiting for room in `events`; while any wait, the socket is not read.
    pending: VecDeque<Event>,
    acks: HashMap<AckId, oneshot::Sender<Result<Vec<Value>, ClientError>>>,
    closers: Vec<oneshot::Sender<()>>,
    ws: Option<Ws>,
    connecting: Option<Opening>,
    closed: bool,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.drain().await;
            if self.closed {
                break;
            }
            let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
            let wake = tokio::select! {
                permit = self.events.clone().reserve_owned(), if !self.pending.is_empty() => Wake::Permit(permit.ok()),
                command = self.commands.recv(), if self.commands_open => Wake::Command(command),
                opened = poll_opening(&mut self.connecting), if self.connecting.is_some() => Wake::Opened(opened.map(Box::new)),
                message = next_message(&mut self.ws), if self.ws.is_some() && self.pending.is_empty() => Wake::Message(message),
                () = sleep_until(deadline) => Wake::Timeout,
            };
            self.wake(wake);
        }
        for done in self.closers.drain(..) {
            let _ = done.send(());
        }
        // The final events (Disconnected, Closed) reach a receiver that still listens.
        if self.events_open {
            for event in self.pending.drain(..) {
                if self.events.send(event).await.is_err() {
                    break;
                }
            }
        }
    }

    fn wake(&mut self, wake: Wake) {
        let now = now();
        match wake {
            Wake::Permit(Some(permit)) => {
                if let Some(event) = self.pending.pop_front() {
                    permit.send(event);
                }
            }
            Wake::Permit(None) => {
                self.events_open = false;
                self.pending.clear();
            }
            Wake::Command(Some(command)) => self.command(now, command),
            Wake::Command(None) => {
                // Every handle is gone: nobody can emit or close any more.
                self.commands_open = false;
                self.session.close(now);
            }
            Wake::Opened(result) => {
                self.connecting = None;
                match result {
                    Ok(ws) => {
                        self.ws = Some(*ws);
                        self.session.handle_transport_open(now);
                    }
                    Err(e) => self.session.handle_transport_closed(now, e),
                }
            }
            Wake::Message(Some(Ok(message))) => match message {
                Message::Text(text) => self.session.handle_frame(now, Frame::Text(text.as_str())),
                Message::Binary(data) => self.session.handle_frame(now, Frame::Binary(&data)),
                Message::Close(frame) => {
                    self.ws = None;
                    let why =
                        frame.map(|f| format!("closed by the server ({} {})", u16::from(f.code), f.reason)).unwrap_or_else(|| "closed by the server".into());
                    self.session.handle_transport_closed(now, why);
                }
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            },
            Wake::Message(Some(Err(e))) => {
                self.ws = None;
                self.session.handle_transport_closed(now, e.to_string());
            }
            Wake::Message(None) => {
                self.ws = None;
                self.session.handle_transport_closed(now, "connection closed");
            }
            Wake::Timeout => self.session.handle_timeout(now),
        }
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Emit { namespace, event, args, reply } => {
                let _ = reply.send(self.session.emit(now, &namespace, &event, &args).map_err(ClientError::from));
            }
            Command::EmitWithAck { namespace, event, args, timeout, reply } => match self.session.emit_with_ack(now, &namespace, &event, &args, timeout) {
                Ok(id) => {
                    self.acks.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::Ack { namespace, id, args, reply } => {
                let _ = reply.send(self.session.ack(now, &namespace, id, &args).map_err(ClientError::from));
            }
            Command::Close { done } => {
                self.closers.push(done);
                self.session.close(now);
            }
        }
    }

    /// The drain contract of [`Session`]: frames first, then events, until both are empty.
    async fn drain(&mut self) {
        loop {
            let mut progress = false;
            let mut fed = false;
            while let Some(frame) = self.session.poll_transmit() {
                progress = true;
                // Frames exist only while a transport is open; without one there is nobody to
                // send to, and the session already counts the connection as gone.
                let Some(ws) = self.ws.as_mut() else { continue };
                if let Err(e) = ws.feed(Message::text(frame)).await {
                    self.ws = None;
                    self.session.handle_transport_closed(now(), e.to_string());
                } else {
                    fed = true;
                }
            }
            if fed
                && let Some(ws) = self.ws.as_mut()
                && let Err(e) = ws.flush().await
            {
                self.ws = None;
                self.session.handle_transport_closed(now(), e.to_string());
            }
            while let Some(event) = self.session.poll_event() {
                progress = true;
                self.route(event).await;
            }
            if !progress {
                return;
            }
        }
    }

    async fn route(&mut self, event: Event) {
        match event {
            Event::WantConnect { attempt } => {
                self.ws = None;
                match self.target.request() {
                    Ok(request) => {
                        tracing::debug!(target = %self.target.display, attempt, "socket.io: connecting");
                        self.connecting = Some(Box::pin(open(request, self.tls.clone())));
                    }
                    Err(e) => self.session.handle_transport_closed(now(), e.to_string()),
                }
            }
            Event::Disconnected { reason } => {
                self.connecting = None;
                // A connection we close ourselves gets a polite close frame; a dead one is dropped.
                let ws = self.ws.take();
                if let Some(mut ws) = ws.filter(|_| reason == DisconnectReason::ClientClose) {
                    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
                }
                tracing::debug!(target = %self.target.display, %reason, "socket.io: disconnected");
                self.forward(Event::Disconnected { reason });
            }
            Event::Ack { namespace, id, args } => match self.acks.remove(&id) {
                Some(reply) => {
                    let _ = reply.send(Ok(args));
                }
                None => self.forward(Event::Ack { namespace, id, args }),
            },
            Event::AckFailed { id, reason } => match self.acks.remove(&id) {
                Some(reply) => {
                    let _ = reply.send(Err(reason.into()));
                }
                None => self.forward(Event::AckFailed { id, reason }),
            },
            Event::Closed => {
                debug_assert_eq!(self.session.phase(), Phase::Closed);
                self.closed = true;
                // Refuse commands before the application can see `Closed`: once it has, every
                // `Client` call fails with `ClientError::Closed`.
                self.commands.close();
                self.connecting = None;
                if let Some(mut ws) = self.ws.take() {
                    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
                }
                self.forward(Event::Closed);
            }
            other => self.forward(other),
        }
    }

    fn forward(&mut self, event: Event) {
        if !self.events_open {
            return;
        }
        if !self.pending.is_empty() {
            self.pending.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.pending.push_back(event),
            Err(mpsc::error::TrySendError::Closed(_)) => self.events_open = false,
        }
    }
}

async fn open(request: tungstenite::handshake::client::Request, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Ws, String> {
    let connector = tls.map(Connector::Rustls);
    let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector).await.map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn poll_opening(opening: &mut Option<Opening>) -> Result<Ws, String> {
    match opening {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn next_message(ws: &mut Option<Ws>) -> Option<Result<Message, tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The driver's clock: tokio's, so that tests with a paused runtime clock stay consistent.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A per-client seed for the backoff jitter, from the standard library's random hasher keys.
fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

/// TLS for `wss`: the given settings, or the webpki roots with the `ring` provider (explicit,
/// so no process-wide default provider is needed even if another crate enables a second one).
fn tls_config(custom: Option<Arc<rustls::ClientConfig>>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    if let Some(config) = custom {
        return Ok(config);
    }
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_needs_a_runtime() {
        let err = connect(ClientConfig::new("ws://127.0.0.1:1", "/ws")).unwrap_err();
        assert_eq!(err, ClientError::NoRuntime);
    }

    #[test]
    fn the_default_tls_config_builds() {
        let config = tls_config(None).unwrap();
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = ClientConfig::new("wss://api.happ.tools", "/ws/");
        config.query.push(("token".into(), "q-secret".into()));
        config.headers.push(("Authorization".into(), "Bearer h-secret".into()));
        let text = format!("{config:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("token") && text.contains("Authorization"));
    }
}
