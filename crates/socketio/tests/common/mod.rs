//! A real Socket.IO server (socketioxide on axum) at a custom path, a cuttable TCP proxy, and
//! helpers to wait for client events. Deadlines here only stop a hung test; no test asserts a
//! duration.
#![allow(dead_code)] // Each test file uses part of this.
#![allow(clippy::unwrap_used)] // Test support: a failed setup panics, as in a test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use happ_socketio::{ClientConfig, Event, ReconnectPolicy};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// The token the server accepts.
pub const TOKEN: &str = "good-token";
/// The Engine.IO path, as on the Happ platform.
pub const PATH: &str = "/ws";
/// How long a test waits for something before it fails as hung.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What the server saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A client connected to a namespace.
    Connected(String),
    /// A "msg" event and its data.
    Msg(String, Value),
    /// The answer to a "question" the server asked (the client's ack).
    Answer(Value),
}

/// A socketioxide server on a local port.
pub struct Server {
    pub addr: SocketAddr,
    pub io: SocketIo,
    task: JoinHandle<()>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

#[derive(Debug)]
struct AuthError(&'static str);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn check_token(Data(auth): Data<Value>) -> Result<(), AuthError> {
    if auth.get("token").and_then(Value::as_str) == Some(TOKEN) { Ok(()) } else { Err(AuthError("invalid token")) }
}

impl Server {
    /// A server on a fresh port.
    pub async fn start() -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    /// A server on `listener`, with short heartbeats, namespaces `/` and `/admin`, both behind
    /// the token check. On connect it emits "welcome"; it records "msg" events, echoes "echo"
    /// as an ack, asks the client a "question" when told "ask", disconnects the socket on "kick"
    /// and emits "tick" on "tick-me".
    pub async fn on(listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let (layer, io) = SocketIo::builder().req_path(PATH).ping_interval(Duration::from_millis(300)).ping_timeout(Duration::from_millis(300)).build_layer();
        let (tx, seen) = mpsc::unbounded_channel();
        for ns in ["/", "/admin"] {
            // socketioxide sends the CONNECT reply and then spawns the connect handler, so events
            // that arrive right after the reply would find no `socket.on` handler and be dropped
            // (a server-side race). Registering the handlers in a middleware, which runs before
            // the reply, closes it.
            let handlers_tx = tx.clone();
            let register = async move |socket: SocketRef| {
                let msg_tx = handlers_tx.clone();
                socket.on("msg", async move |socket: SocketRef, Data(data): Data<Value>| {
                    let _ = msg_tx.send(Seen::Msg(socket.ns().to_owned(), data));
                });
                socket.on("echo", async |Data(data): Data<Value>, ack: AckSender| {
                    ack.send(&data).ok();
                });
                let answer_tx = handlers_tx.clone();
                socket.on("ask", async move |socket: SocketRef, Data(data): Data<Value>| {
                    if let Ok(answer) = socket.emit_with_ack::<_, Value>("question", &data) {
                        let answer = answer.await.map_err(|e| e.to_string());
                        let _ = answer_tx.send(Seen::Answer(answer.unwrap_or_else(|e| json!({"error": e}))));
                    }
                });
                socket.on("kick", async |socket: SocketRef| {
                    socket.disconnect().ok();
                });
                socket.on("tick-me", async |socket: SocketRef, Data(data): Data<Value>| {
                    socket.emit("tick", &data).ok();
                });
                Ok::<(), std::convert::Infallible>(())
            };
            let connect_tx = tx.clone();
            let on_connect = async move |socket: SocketRef| {
                let _ = connect_tx.send(Seen::Connected(socket.ns().to_owned()));
                socket.emit("welcome", &json!({"ns": socket.ns()})).ok();
            };
            // `with` puts a middleware in front: the token check runs first.
            io.ns(ns, on_connect.with(register).with(check_token));
        }
        let app = axum::Router::new().route("/", axum::routing::get(async || "ok")).layer(layer);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, io, task, seen }
    }

    /// `ws://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Disconnects every socket and stops listening, freeing the port.
    pub async fn stop(self) -> SocketAddr {
        self.io.close().await;
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }

    /// The next thing the server saw.
    pub async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.seen.recv()).await.expect("server saw nothing in time").expect("server gone")
    }
}

/// Client settings for `url` with the right token, short backoff and a fixed seed.
pub fn client_config(url: &str) -> ClientConfig {
    let mut config = ClientConfig::new(url, PATH);
    config.session.auth = Some(auth(TOKEN));
    config.session.connect_timeout = Duration::from_secs(5);
    config.session.reconnect = ReconnectPolicy { base: Duration::from_millis(20), cap: Duration::from_millis(200), jitter: 0.5, max_attempts: None };
    config.seed = Some(1);
    config
}

/// An auth object `{"token": token}`.
pub fn auth(token: &str) -> serde_json::Map<String, Value> {
    let mut auth = serde_json::Map::new();
    auth.insert("token".into(), json!(token));
    auth
}

/// Waits for the first event that `pick` accepts, skipping the others; fails on a hang.
pub async fn wait_for<T>(events: &mut mpsc::Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let found = tokio::time::timeout(PATIENCE, async move {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
            log.lock().unwrap().push(event);
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("the client ended first; skipped {:?}", seen.lock().unwrap()),
        Err(_) => panic!("nothing matched in time; skipped {:?}", seen.lock().unwrap()),
    }
}

/// Waits for the next `Connected` of `namespace`; returns its `reconnected` flag.
pub async fn connected(events: &mut mpsc::Receiver<Event>, namespace: &str) -> bool {
    wait_for(events, |e| match e {
        Event::Connected { namespace: ns, reconnected, .. } if ns == namespace => Some(*reconnected),
        _ => None,
    })
    .await
}

/// Waits for the next server event called `name`; returns its arguments.
pub async fn event(events: &mut mpsc::Receiver<Event>, name: &str) -> Vec<Value> {
    wait_for(events, |e| match e {
        Event::Event { name: n, args, .. } if n == name => Some(args.clone()),
        _ => None,
    })
    .await
}

/// A TCP proxy in front of `upstream` whose connections can be cut at once, as a network
/// failure would.
pub struct Proxy {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(conn);
            }
        });
        Proxy { addr, conns, accept }
    }

    /// Drops every proxied connection (both sockets close).
    pub fn cut(&self) {
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// What the fake server does after the Socket.IO CONNECT reply.
#[derive(Clone, Copy)]
pub enum Script {
    /// Nothing: no ping ever.
    Silent,
    /// `n` pings, 20 ms apart, then nothing.
    Ping(usize),
}

/// What the fake saw: the request line and headers, and the frames after the handshake.
#[derive(Debug)]
pub enum Saw {
    Request { uri: String, authorization: Option<String> },
    Frame(String),
}

/// A raw WebSocket server speaking just enough Engine.IO/Socket.IO: the open packet, a CONNECT
/// reply, the script, then it only reads. Returns its URL and what it saw.
pub async fn fake_server(ping_interval_ms: u64, ping_timeout_ms: u64, script: Script) -> (String, mpsc::UnboundedReceiver<Saw>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (saw, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((stream, _)) = listener.accept().await {
            conn += 1;
            let saw = saw.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)] // The error type is tungstenite's.
                let callback = |req: &Request, resp: Response| {
                    let authorization = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
                    let _ = saw.send(Saw::Request { uri: req.uri().to_string(), authorization });
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                let open =
                    format!(r#"0{{"sid":"fake-{conn}","upgrades":[],"pingInterval":{ping_interval_ms},"pingTimeout":{ping_timeout_ms},"maxPayload":100000}}"#);
                ws.send(Message::text(open)).await.unwrap();
                let Some(Ok(Message::Text(connect))) = ws.next().await else { return };
                assert!(connect.starts_with("40"), "{connect}");
                ws.send(Message::text(format!(r#"40{{"sid":"sio-{conn}"}}"#))).await.unwrap();
                if let Script::Ping(n) = script {
                    for _ in 0..n {
                        ws.send(Message::text("2")).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                // Then silence: read (and report) whatever comes until the client leaves.
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        let _ = saw.send(Saw::Frame(text.to_string()));
                    }
                }
            });
        }
    });
    (url, seen)
}
