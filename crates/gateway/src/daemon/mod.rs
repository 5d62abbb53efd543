//! The daemon: the SIP task that owns the endpoint and the calls, its sockets, the control API,
//! and shutdown.
//!
//! One task (this loop) owns the SIP endpoint and all call state, so nothing here takes a lock:
//! sockets, media tasks, TCP connections and the control API talk to it through bounded
//! channels, and it drains the endpoint's output after every input.
//!
//! Shutdown (SIGTERM or SIGINT, or the `stop` future of [`run_until`]): new calls get 503 and
//! `/readyz` says no; calls in progress may finish for `calls.drain_secs`, then are hung up;
//! every phone is unregistered (Expires: 0) and the daemon waits up to five seconds for the
//! registrars' answers before exiting.

mod admission;
mod assistant_media;
mod call;
pub(crate) mod channels;
pub mod core;
pub mod media;
pub(crate) mod media_setup;
pub mod mirror;
pub mod phones;
mod tcp;
mod views;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use happ_sip::endpoint::{Endpoint, EndpointConfig};
use happ_sip::message::Transport;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::{ControlCommand, Shared};
use crate::config::{Config, TelephonyUrl};
use crate::dns::{Dns, Target};
use crate::metrics::Metrics;
use crate::platform::Catalog;
use channels::MediaNote;
use core::Core;
use tcp::{Connections, TcpIn};

/// How long unregistration may take at shutdown.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);

/// First and longest wait before looking up again a telephonyUrl that did not resolve (DNS
/// down at start-up must not leave a phone dead until a restart).
const RESOLVE_RETRY: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

/// A random seed from the OS.
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Without an OS source, the clock still differs between runs.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

/// Resolves every phone's telephonyUrl (concurrently).
pub async fn resolve_phones(config: &Config, dns: &Dns) -> Vec<Result<Vec<Target>, String>> {
    let lookups = config.phones.iter().map(|p| async move {
        let url = TelephonyUrl::parse(&p.telephony_url)?;
        dns.resolve(&url).await
    });
    futures_util::future::join_all(lookups).await
}

/// The address to advertise: the configured public one, the listen address when it is
/// specific, else the address that routes toward the first registrar.
fn advertised_ip(config: &Config, resolved: &[Result<Vec<Target>, String>]) -> IpAddr {
    if let Some(ip) = config.sip.public_address {
        return ip;
    }
    if !config.sip.listen.ip().is_unspecified() {
        return config.sip.listen.ip();
    }
    let toward = resolved.iter().flatten().flatten().next().map(|t| t.addr);
    toward
        .and_then(|addr| {
            let probe =
                std::net::UdpSocket::bind(SocketAddr::new(if addr.is_ipv6() { IpAddr::from([0u16; 8]) } else { IpAddr::from([0, 0, 0, 0]) }, 0)).ok()?;
            probe.connect(addr).ok()?;
            probe.local_addr().ok().map(|a| a.ip())
        })
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the phones and assistants of the
/// configuration file at `path`. `serve_control` serves the control API (see [`run_until`]).
pub async fn run<C, F>(config: Config, path: &std::path::Path, serve_control: C) -> Result<(), String>
where
    C: FnOnce(TcpListener, Shared, String) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    run_until(config, path, serve_control, terminated()).await
}

/// Resolves at SIGTERM or SIGINT. The handlers are installed when it is first polled: by the
/// daemon's loop, once the daemon is up.
async fn terminated() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot catch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs the daemon until `stop` resolves, then shuts down as at SIGTERM: no new calls, the calls
/// in progress drained, the phones unregistered. SIGHUP reloads the phones and assistants of
/// the configuration file at `path`.
///
/// With `[control]`, the control API's listener is bound once the SIP side is up and handed to
/// `serve_control` (the HTTP server, `control::serve`: the daemon does not depend on it) with
/// what the daemon shares and the API's token; the future it returns is spawned.
pub async fn run_until<C, F>(config: Config, path: &std::path::Path, serve_control: C, stop: impl Future<Output = ()>) -> Result<(), String>
where
    C: FnOnce(TcpListener, Shared, String) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let seed = seed();
    let dns = Arc::new(Dns::new(&config.sip.dns_servers)?);
    let resolved = resolve_phones(&config, &dns).await;
    for (p, r) in config.phones.iter().zip(&resolved) {
        if let Err(e) = r {
            warn!(phone = %crate::pii::Masked(&p.phone_number), error = %e, "cannot resolve the phone's telephonyUrl");
        }
    }
    let advertised = advertised_ip(&config, &resolved);
    let udp = UdpSocket::bind(config.sip.listen).await.map_err(|e| format!("cannot listen for SIP on UDP {}: {e}", config.sip.listen))?;
    let local = udp.local_addr().map_err(|e| e.to_string())?;
    let tcp = TcpListener::bind(local).await.map_err(|e| format!("cannot listen for SIP on TCP {local}: {e}"))?;
    info!(%local, %advertised, "SIP listening on UDP and TCP");

    let endpoint = Endpoint::new(EndpointConfig {
        local: SocketAddr::new(advertised, local.port()),
        public: config.sip.public_address,
        user_agent: config.sip.user_agent.clone().unwrap_or_else(|| concat!("happ-gateway/", env!("CARGO_PKG_VERSION")).into()),
        seed,
        session_expires: config.sip.session_expires,
        min_session_expires: config.sip.min_session_expires,
        ..EndpointConfig::default()
    });
    let metrics = Arc::new(Metrics::new());
    let (notes_tx, mut notes) = channels::notes();
    let (commands_tx, mut commands) = mpsc::channel::<ControlCommand>(64);
    let (tcp_tx, mut tcp_in) = mpsc::channel::<TcpIn>(1024);
    let (lookups_tx, mut lookups) = mpsc::channel::<(usize, TelephonyUrl, Result<Vec<Target>, String>)>(64);
    let mut core = Core::new(config.clone(), endpoint, resolved, advertised, metrics.clone(), seed ^ 0x5851_F42D_4C95_7F2D)?;
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(settings) = &config.control {
        let shared = Shared { commands: commands_tx.clone(), metrics: metrics.clone(), ready: ready.clone() };
        let listener =
            tokio::net::TcpListener::bind(settings.listen).await.map_err(|e| format!("cannot listen for the control API on {}: {e}", settings.listen))?;
        info!(listen = %settings.listen, "control API listening");
        tokio::spawn(serve_control(listener, shared, settings.token.expose().to_owned()));
    }
    // The speech engines of assistant calls: a failure (an engine not installed, a bad key) is
    // logged, and the assistant phones' calls are refused with 480 until it is mended.
    match crate::assistant::Engines::new(&config.speech).await {
        Ok(engines) => core.set_engines(Ok(Arc::new(engines))),
        Err(e) => {
            warn!(error = %e, "speech engines not available: assistant calls are refused");
            core.set_engines(Err(format!("the speech engines did not start: {e}")));
        }
    }
    core.refresh_assistants();
    core.start(Instant::now());
    ready.store(true, Ordering::Relaxed);
    // With [happ], the platform's phones and assistants join the file's as they are read.
    let (catalogs_tx, mut catalogs) = mpsc::channel::<Catalog>(4);
    if let Some(happ) = &config.happ {
        let client = crate::platform::client(happ)?;
        info!(base_url = %happ.base_url, sync_secs = happ.sync_secs, "reading phones and assistants from the Happ platform");
        tokio::spawn(crate::platform::sync(client.clone(), Duration::from_secs(happ.sync_secs), catalogs_tx, metrics.clone()));
        // What the gateway writes to the platform goes through the outbox, delivered from here.
        let outbox = happ_client::outbox::Outbox::open(&happ.outbox).map_err(|e| e.to_string())?;
        let pending = outbox.stats().map(|s| s.pending).unwrap_or(0);
        info!(path = %happ.outbox.display(), pending, "Happ outbox open");
        core.set_mirror(mirror::Mirror::start(outbox.clone())?);
        tokio::spawn(async move {
            if let Err(e) = outbox.run(client).await {
                tracing::error!(error = %e, "the Happ outbox stopped: writes to the platform wait until a restart");
            }
        });
    } else {
        drop(catalogs_tx);
    }

    tokio::pin!(stop);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut conns = Connections::default();
    let mut buf = vec![0u8; 65_536];
    let mut drain_until: Option<Instant> = None;
    let mut unregister_until: Option<Instant> = None;
    let mut resolve_delay = RESOLVE_RETRY.0;
    let mut resolve_at = (!core.unresolved().is_empty()).then(|| Instant::now() + resolve_delay);
    let mut lookups_in_flight = 0usize;
    pump(&mut core, &udp, &mut conns, &tcp_tx, &notes_tx).await;
    loop {
        let deadlines = [core.endpoint.poll_timeout(), core.next_deadline(), drain_until, unregister_until, resolve_at];
        let wake = deadlines.into_iter().flatten().min().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => core.endpoint.handle_message(Instant::now(), Transport::Udp, from, &buf[..n]),
                Err(e) => warn!(error = %e, "SIP UDP receive error"),
            },
            r = tcp.accept() => match r {
                Ok((stream, peer)) => conns.accepted(stream, peer, &tcp_tx),
                Err(e) => warn!(error = %e, "SIP TCP accept error"),
            },
            Some(msg) = tcp_in.recv() => match msg {
                TcpIn::Message { peer, bytes } => core.endpoint.handle_message(Instant::now(), Transport::Tcp, peer, &bytes),
                TcpIn::Closed { peer, error } => {
                    conns.closed(peer);
                    if let Some(e) = error {
                        warn!(%peer, error = %e, "SIP TCP connection failed");
                        core.endpoint.handle_transport_error(Instant::now(), &Transport::Tcp, peer);
                    }
                }
            },
            Some(note) = notes.recv() => core.handle_note(Instant::now(), SystemTime::now(), note),
            Some((index, url, result)) = lookups.recv() => {
                lookups_in_flight -= 1;
                core.resolved(Instant::now(), index, &url, result);
                if lookups_in_flight == 0 && !core.unresolved().is_empty() {
                    resolve_delay = (resolve_delay * 2).min(RESOLVE_RETRY.1);
                    resolve_at = Some(Instant::now() + resolve_delay);
                }
            }
            Some(command) = commands.recv() => control(&mut core, command),
            Some(catalog) = catalogs.recv(), if drain_until.is_none() => {
                match core.set_platform(Instant::now(), catalog) {
                    Ok(changes) => info!(added = changes.added, changed = changes.changed, removed = changes.removed, "platform phones applied"),
                    Err(e) => warn!(error = %e, "platform phones not applied"),
                }
                if !core.unresolved().is_empty() {
                    resolve_delay = RESOLVE_RETRY.0;
                    resolve_at = Some(Instant::now());
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                core.endpoint.handle_timeout(now);
                core.handle_timeout(now, SystemTime::now());
                if resolve_at.is_some_and(|at| at <= now) {
                    resolve_at = None;
                    for (index, url) in core.unresolved() {
                        lookups_in_flight += 1;
                        let (dns, tx) = (dns.clone(), lookups_tx.clone());
                        tokio::spawn(async move {
                            let result = dns.resolve(&url).await;
                            let _ = tx.send((index, url, result)).await;
                        });
                    }
                }
            }
            _ = hangup.recv(), if drain_until.is_none() => {
                if reload(&mut core, path) {
                    // New phones are looked up at once.
                    resolve_delay = RESOLVE_RETRY.0;
                    resolve_at = Some(Instant::now());
                }
            }
            // Polled until it resolves, never after: draining does not end.
            () = &mut stop, if drain_until.is_none() => {
                drain_until = Some(start_drain(&mut core, &config, &ready));
            }
        }
        pump(&mut core, &udp, &mut conns, &tcp_tx, &notes_tx).await;
        metrics.sample_endpoint(core.endpoint.stats());
        let now = Instant::now();
        if let Some(until) = drain_until
            && unregister_until.is_none()
            && (core.call_count() == 0 || now >= until)
        {
            if core.call_count() > 0 {
                warn!(calls = core.call_count(), "drain time over: hanging up the calls left");
            }
            core.hangup_all(now, SystemTime::now(), "gateway shutting down");
            core.endpoint.unregister_all(now);
            unregister_until = Some(now + UNREGISTER_WAIT);
            pump(&mut core, &udp, &mut conns, &tcp_tx, &notes_tx).await;
        }
        if let Some(until) = unregister_until
            && (!core.endpoint.registrations_pending() || now >= until)
        {
            if let Some(mirror) = core.take_mirror() {
                tokio::task::block_in_place(|| mirror.close());
            }
            info!("stopped");
            return Ok(());
        }
    }
}

/// Reloads the configuration file (SIGHUP); a file that does not load changes nothing. Returns
/// whether phones wait for a DNS lookup.
fn reload(core: &mut Core, path: &std::path::Path) -> bool {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "configuration not reloaded");
            return false;
        }
    };
    match core.reload(Instant::now(), config) {
        Ok((changes, ignored)) => {
            info!(added = changes.added, changed = changes.changed, removed = changes.removed, "configuration reloaded");
            if !ignored.is_empty() {
                warn!(sections = ?ignored, "these sections changed and take effect at the next restart");
            }
        }
        Err(e) => warn!(error = %e, "configuration not reloaded"),
    }
    !core.unresolved().is_empty()
}

fn start_drain(core: &mut Core, config: &Config, ready: &AtomicBool) -> Instant {
    info!(calls = core.call_count(), drain_secs = config.calls.drain_secs, "shutting down: no new calls, draining");
    core.draining = true;
    ready.store(false, Ordering::Relaxed);
    Instant::now() + Duration::from_secs(config.calls.drain_secs)
}

fn control(core: &mut Core, command: ControlCommand) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match command {
        ControlCommand::Dial(request, reply) => {
            let _ = reply.send(core.dial(now, wall, request));
        }
        ControlCommand::Hangup(id, reply) => {
            let _ = reply.send(core.hangup(now, wall, &id));
        }
        ControlCommand::Calls(reply) => {
            let _ = reply.send(core.calls_view());
        }
        ControlCommand::Call(id, reply) => {
            let _ = reply.send(core.call_view(&id));
        }
        ControlCommand::Phones(reply) => {
            let _ = reply.send(core.phones_view());
        }
    }
}

/// Sends what the endpoint has to send and hands its events to the core, until both are empty
/// (handling an event can produce more of either); then spawns the media tasks the core
/// prepared meanwhile. Called after every input the core takes.
async fn pump(core: &mut Core, udp: &UdpSocket, conns: &mut Connections, tcp_tx: &mpsc::Sender<TcpIn>, notes: &mpsc::Sender<MediaNote>) {
    loop {
        let mut progress = false;
        while let Some(t) = core.endpoint.poll_transmit() {
            progress = true;
            match t.transport {
                Transport::Tcp => conns.send(t.dest, t.bytes, tcp_tx),
                _ => {
                    if let Err(e) = udp.send_to(&t.bytes, t.dest).await {
                        warn!(dest = %t.dest, error = %e, "SIP UDP send error");
                    }
                }
            }
        }
        while let Some(event) = core.endpoint.poll_event() {
            progress = true;
            core.handle_event(Instant::now(), SystemTime::now(), event);
        }
        if !progress {
            break;
        }
    }
    while let Some(start) = core.poll_media_start() {
        media::spawn(start, notes.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::sync::oneshot;

    use super::*;

    /// A trunk (nothing to unregister), SIP on a free loopback port, no control API.
    const CONFIG: &str = r#"
[sip]
listen = "127.0.0.1:0"

[rtp]
bind = "127.0.0.1"

[[phones]]
phoneNumber = "+15550001"
sipLogin = "1001"
telephonyUrl = "127.0.0.1:5080"
register = false
handler = "echo"
"#;

    #[tokio::test]
    async fn the_daemon_stops_when_told() {
        let path = Path::new("test.toml");
        let config = Config::from_text(path, CONFIG, |_| None).expect("a valid configuration");
        let (stop, stopped) = oneshot::channel::<()>();
        let daemon = run_until(config, path, |_, _, _| async {}, async {
            let _ = stopped.await;
        });
        let _ = stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(10), daemon).await;
        assert_eq!(result.ok(), Some(Ok(())), "drained at once (no calls) and exited");
    }
}
