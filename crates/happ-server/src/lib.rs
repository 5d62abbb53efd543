//! A local Happ-compatible REST server, for tests and for development without an account.
//!
//! It serves every endpoint of the Happ API reference with the same envelopes, pagination
//! (`page`, `take`; `totalCount` and `page` in the answer) and error codes (`VALIDATION_ERROR`,
//! `NOT_FOUND`, `UNAUTHORIZED`, `CONFLICT`, …), behind `X-Access-Token`, from an in-memory
//! [`Store`] seeded from a JSON file ([`store`] documents the format). Beside the API:
//!
//! - **Faults** ([`faults`]): errors (429 with `Retry-After`, 5xx, plain-text proxy pages) and
//!   delays, by rule, set at start or at run time with `POST /_admin/faults`.
//! - **Statistics**: requests and answers per route at `GET /_admin/stats`, so tests can check
//!   that a client neither lost nor duplicated a write.
//! - **Events** ([`events`]): every store change the platform announces in real time goes out on
//!   a broadcast channel ([`AppState::events`]), which the Socket.IO endpoint forwards.
//! - `POST /_admin/chats/{chatId}/handoff`: the assistant's own hand-off (`turnOffAiMode`),
//!   `aiDisableReason: "auto"`.
//! - **Socket.IO** ([`realtime`]) at `/ws` on the same port: authenticate, join the company
//!   room, receive the events. Its fault switches, for tests of a real-time client:
//!   `GET /_admin/ws` (state and counters), `POST /_admin/ws/disconnect` (drop every socket),
//!   `POST`/`DELETE /_admin/ws/refuse` (answer new Engine.IO connections with 503, or not),
//!   `POST /_admin/ws/pause?mode=drop|hold` and `POST /_admin/ws/resume` (events dropped or held
//!   until delivery resumes; held ones are then sent first, in order).
//!
//! The admin endpoints need no token. The server is for loopback use only.
//!
//! ```no_run
//! # async fn demo() -> Result<(), happ_server::StartError> {
//! use happ_server::{HappServer, ServerConfig};
//! let server = HappServer::start(ServerConfig::new("happ_test_token")).await?;
//! println!("API at {}, Socket.IO at {}", server.base_url(), server.socket_url());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
pub mod error;
pub mod events;
pub mod faults;
pub mod realtime;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use happ_client::Secret;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use events::Event;
pub use faults::{FaultAction, FaultConfig, FaultRule, Stats};
pub use realtime::{Delivery, Hub, HubStatus, SocketConfig};
pub use store::{Seed, SeedError, Store};

/// Page sizes of the listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingConfig {
    /// `take` when the request has none. Default 20.
    pub default_take: u32,
    /// Largest `take` accepted; more is a 400. Default 100.
    pub max_take: u32,
}

impl Default for PagingConfig {
    fn default() -> Self {
        Self { default_take: 20, max_take: 100 }
    }
}

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:0` (a free port; see [`ServerHandle::addr`]).
    pub listen: SocketAddr,
    /// Accepted access tokens. With none, every `/api` request is refused.
    pub tokens: Vec<Secret>,
    /// Initial data.
    pub seed: Seed,
    /// Fault rules in force from the start.
    pub faults: FaultConfig,
    /// Seed of the id generator (ids are reproducible from run to run).
    pub id_seed: u64,
    /// Page sizes.
    pub paging: PagingConfig,
    /// Capacity of the event channel; a subscriber that falls further behind loses the oldest
    /// events (`RecvError::Lagged`). Default 1024.
    pub event_capacity: usize,
    /// The Socket.IO endpoint: path, company, event names, heartbeat.
    pub socket: SocketConfig,
}

impl ServerConfig {
    /// Loopback on a free port, accepting `token`, empty store, no faults.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec![token.into()],
            seed: Seed::default(),
            faults: FaultConfig::default(),
            id_seed: 1,
            paging: PagingConfig::default(),
            event_capacity: 1024,
            socket: SocketConfig::default(),
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The seed is inconsistent.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The state shared by the handlers: store, faults, statistics, event channel. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    faults: Mutex<faults::Faults>,
    stats: Mutex<Stats>,
    events: broadcast::Sender<Event>,
    tokens: Vec<Secret>,
    paging: PagingConfig,
    hub: Hub,
}

/// Locks a mutex; a poisoned one (a handler panicked while holding it) is used as is, since every
/// change to the guarded data is completed before anything that could panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AppState {
    /// State for `config` (the seed is checked here).
    pub fn new(config: &ServerConfig) -> Result<Self, SeedError> {
        let store = Store::new(config.seed.clone(), config.id_seed)?;
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let hub = Hub::new(&config.socket, config.tokens.clone(), &events);
        Ok(Self {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                faults: Mutex::new(faults::Faults::new(config.faults.clone())),
                stats: Mutex::new(Stats::default()),
                events,
                tokens: config.tokens.clone(),
                paging: config.paging,
                hub,
            }),
        })
    }

    /// Runs `f` on the store.
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&lock(&self.shared.store))
    }

    /// Runs `f` on the store and publishes the events its changes queued, in order, before the
    /// lock is released (so events of concurrent writes are never reordered).
    pub fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = lock(&self.shared.store);
        let result = f(&mut store);
        for event in store.take_events() {
            // No subscriber is not an error: events are only for whoever listens.
            let _ = self.shared.events.send(event);
        }
        result
    }

    /// A new subscription to the store's events, from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The Socket.IO endpoint and its fault switches.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// The request statistics so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Sets every counter to zero.
    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// Replaces the fault rules (counters restart).
    pub fn set_faults(&self, config: FaultConfig) {
        *lock(&self.shared.faults) = faults::Faults::new(config);
    }

    /// The fault rules with their counters.
    pub fn fault_status(&self) -> Vec<faults::RuleStatus> {
        lock(&self.shared.faults).status()
    }

    fn paging(&self) -> PagingConfig {
        self.shared.paging
    }

    fn token_ok(&self, token: &[u8]) -> bool {
        self.shared.tokens.iter().any(|t| t.expose().as_bytes() == token)
    }

    /// Counts a request under `key` and decides its faults.
    fn plan(&self, key: &str, method: &str, route: &str, path: &str) -> faults::Plan {
        let plan = lock(&self.shared.faults).plan(method, route, path);
        let mut stats = lock(&self.shared.stats);
        stats.total += 1;
        let entry = stats.routes.entry(key.to_owned()).or_default();
        entry.requests += 1;
        if plan.is_fault() {
            entry.faults += 1;
        }
        plan
    }

    fn count_status(&self, key: &str, status: u16) {
        *lock(&self.shared.stats).routes.entry(key.to_owned()).or_default().statuses.entry(status).or_default() += 1;
    }
}

/// The server's entry points.
pub struct HappServer;

impl HappServer {
    /// The router (REST API, admin endpoints and Socket.IO) and its state, for serving it
    /// yourself or adding routes and layers. Serve it on a tokio runtime: the Socket.IO side
    /// spawns its event forwarder with the first connection.
    pub fn build(config: &ServerConfig) -> Result<(Router, AppState), SeedError> {
        let state = AppState::new(config)?;
        let router = state.hub().mount(api::router(state.clone()));
        Ok((router, state))
    }

    /// Binds `config.listen` and serves in a background task until the handle is shut down or
    /// dropped.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, StartError> {
        let (router, state) = Self::build(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // Either a shutdown request or the handle being dropped.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(ServerHandle { addr, state, stop: Some(stop), task: Some(task) })
    }
}

/// A running server. Dropping it stops the server (without waiting).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR/ws/`, the Socket.IO endpoint (the Engine.IO path with its trailing `/`).
    pub fn socket_url(&self) -> String {
        format!("ws://{}{}/", self.addr, self.state.hub().config().path.trim_end_matches('/'))
    }

    /// The server's state: store, faults, statistics, events.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A new subscription to the store's events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.state.events()
    }

    /// Stops accepting, lets open requests finish, waits for the server task, then closes the
    /// Socket.IO connections (upgraded connections outlive the HTTP server otherwise). Closing
    /// last means a client that reconnects meanwhile finds the port closed, as after a restart.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.hub().close().await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // As in `shutdown`, without waiting; outside a runtime the sockets' tasks are gone anyway.
        if let (Some(task), Ok(runtime)) = (self.task.take(), tokio::runtime::Handle::try_current()) {
            let hub = self.state.hub().clone();
            runtime.spawn(async move {
                let _ = task.await;
                hub.close().await;
            });
        }
    }
}
