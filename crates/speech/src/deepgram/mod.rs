//! Deepgram live transcription over a WebSocket.
//!
//! `GET wss://api.deepgram.com/v1/listen?model=…&encoding=…&sample_rate=…` upgraded to a
//! WebSocket, with `Authorization: Token <key>`. Audio goes up as binary frames in the encoding
//! declared in the query (so a µ-law call reaches Deepgram byte for byte); results come down as
//! JSON text messages (`Results`, `UtteranceEnd`, `SpeechStarted`, `Metadata`). The `wire` module
//! holds the messages and how they map to events (partials, finals, the end of the caller's turn).
//!
//! # The connection task
//!
//! [`SttProvider::start`] spawns one task per session that connects and then owns the socket:
//! it writes the audio frames [`SttSession::push`] queues, a `KeepAlive` when no audio flowed for
//! `keepalive_interval`, and on [`SttSession::finish`] a `Finalize` (flush every pending final)
//! then a `CloseStream`; it forwards every text message to the session, which decodes it when
//! polled. Connecting at start lets the handshake overlap the first words: frames pushed
//! meanwhile wait in the queue.
//!
//! Pushing never waits. The audio queue holds [`AUDIO_QUEUE_FRAMES`] frames (about 10 s of
//! 20 ms frames); a full queue means the connection is not keeping up with real time, and
//! `push` fails with [`Error::Unavailable`] rather than delay the call's audio.
//!
//! # Timeouts and ends
//!
//! - `connect_timeout`: TCP, TLS and the upgrade → [`Error::Timeout`] with
//!   [`TimeoutPhase::FirstByte`].
//! - `idle_timeout`: audio was sent (or `CloseStream`) and no message came back within it →
//!   [`TimeoutPhase::Idle`]. While no audio flows, silence from Deepgram is expected.
//! - A refused upgrade is typed by its status (401/402/403 [`Error::Refused`], 429
//!   [`Error::RateLimited`], 5xx [`Error::Unavailable`]); a close frame by its code (1008 `DATA-0000`,
//!   bad audio: [`Error::Refused`]; 1011 `NET-0000`, no data: [`Error::Timeout`]; others
//!   [`Error::Unavailable`]); a connection lost without a close frame is [`Error::Closed`].
//! - [`SttSession::cancel`] and dropping the session abort the task, which drops the socket: the
//!   TCP connection closes at once, without a closing handshake (nothing more is owed to a stream
//!   that was abandoned).

mod wire;

pub(crate) use wire::strip_boost;

use std::fmt;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::stt::{Frame, SttEvent, SttLatency, SttOptions, SttProvider, SttSession};
use crate::{AudioFormat, Encoding, Error, Secret, TimeoutPhase};

/// Frames the audio queue holds before `push` fails: about 10 s of 20 ms frames, enough to ride
/// out a slow handshake, small enough that a dead connection is noticed while the caller speaks.
pub const AUDIO_QUEUE_FRAMES: usize = 512;

/// Server messages read ahead of the session's polls. When the bridge stops polling, the task
/// stops reading (and then stops writing), and `push` eventually fails: it is never silently lost.
const INBOUND_QUEUE: usize = 64;

/// What the provider offers, preferred first: the call's own G.711 (no transcode, exact bytes),
/// then PCM at the call's rate.
const FORMATS: [AudioFormat; 4] = [AudioFormat::MULAW_8K, AudioFormat::ALAW_8K, AudioFormat::PCM_8K, AudioFormat::PCM_16K];

/// Settings of the Deepgram provider.
#[derive(Clone)]
pub struct DeepgramConfig {
    /// The `listen` endpoint: `wss://api.deepgram.com/v1/listen` by default; `ws://` for a local
    /// test server, `wss://api.eu.deepgram.com/v1/listen` for the EU endpoint.
    pub base_url: String,
    /// The API key, sent as `Authorization: Token <key>`.
    pub api_key: Secret,
    /// The model, e.g. `nova-2` (default), `nova-2-phonecall`, `nova-3`.
    pub model: String,
    /// Default language (BCP 47) when the session's options give none; Deepgram's default (`en`)
    /// when `None`.
    pub language: Option<String>,
    /// Silence after speech that makes a result `speech_final` (the end of the caller's turn).
    /// Default 300 ms; `None` turns Deepgram's endpointing off.
    pub endpointing_ms: Option<u32>,
    /// Gap in word timings that sends an `UtteranceEnd` (works in noise where endpointing does
    /// not). Default 1000 ms, Deepgram's minimum; `None` turns it off.
    pub utterance_end_ms: Option<u32>,
    /// Limit on TCP connect, TLS and the upgrade. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit on silence from Deepgram after audio was sent. Default 10 s.
    pub idle_timeout: Duration,
    /// How long without audio before a `KeepAlive` goes out. Default 5 s (Deepgram closes after
    /// 10 s without data).
    pub keepalive_interval: Duration,
}

impl DeepgramConfig {
    /// Settings with `api_key` and the defaults above.
    pub fn new(api_key: Secret) -> Self {
        Self {
            base_url: "wss://api.deepgram.com/v1/listen".into(),
            api_key,
            model: "nova-2".into(),
            language: None,
            endpointing_ms: Some(300),
            utterance_end_ms: Some(1000),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for DeepgramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret` redacts itself; spelled out so a field added later is a conscious choice.
        f.debug_struct("DeepgramConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("language", &self.language)
            .field("endpointing_ms", &self.endpointing_ms)
            .field("utterance_end_ms", &self.utterance_end_ms)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .finish()
    }
}

/// The Deepgram live-transcription provider; see the [module docs](self).
#[derive(Clone)]
pub struct DeepgramStt {
    base: reqwest::Url,
    /// `Token <key>`, marked sensitive so `Debug` of a request never prints it.
    auth: HeaderValue,
    model: String,
    language: Option<String>,
    endpointing_ms: Option<u32>,
    utterance_end_ms: Option<u32>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    keepalive_interval: Duration,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for DeepgramStt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepgramStt").field("base", &self.base.as_str()).field("model", &self.model).finish_non_exhaustive()
    }
}

impl DeepgramStt {
    /// A provider with `config`. Fails on a base URL that is not ws(s), a `wss` URL without the
    /// `rustls` feature, or a key that cannot be a header value.
    pub fn new(config: &DeepgramConfig) -> Result<Self, Error> {
        let base = reqwest::Url::parse(&config.base_url).map_err(|e| Error::Config { detail: format!("base_url {:?}: {e}", config.base_url) })?;
        let secure = match base.scheme() {
            "wss" => true,
            "ws" => false,
            _ => return Err(Error::Config { detail: format!("base_url {:?}: not ws or wss", config.base_url) }),
        };
        if config.api_key.is_empty() {
            return Err(Error::Config { detail: "Deepgram api_key is empty".into() });
        }
        let mut auth = HeaderValue::from_str(&format!("Token {}", config.api_key.expose()))
            .map_err(|_| Error::Config { detail: "api_key contains characters not allowed in a header".into() })?;
        auth.set_sensitive(true);
        #[cfg(feature = "rustls")]
        let tls = if secure { Some(crate::ws::tls_config()?) } else { None };
        #[cfg(not(feature = "rustls"))]
        if secure {
            return Err(Error::Config { detail: "wss needs the `rustls` feature of happ-speech".into() });
        }
        Ok(Self {
            base,
            auth,
            model: config.model.clone(),
            language: config.language.clone(),
            endpointing_ms: config.endpointing_ms,
            utterance_end_ms: config.utterance_end_ms,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            keepalive_interval: config.keepalive_interval,
            #[cfg(feature = "rustls")]
            tls,
        })
    }

    /// Starts a session taking `format`; the connection opens in the background at once. Needs a
    /// tokio runtime.
    pub fn session(&self, format: AudioFormat, options: &SttOptions) -> Result<DeepgramSession, Error> {
        if !FORMATS.contains(&format) {
            return Err(Error::Config { detail: format!("Deepgram adapter does not take {format:?}") });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Config { detail: "a Deepgram session needs a tokio runtime".into() })?;
        let params = wire::ListenParams {
            model: &self.model,
            format,
            language: options.language.as_deref().or(self.language.as_deref()),
            keywords: &options.keywords,
            endpointing_ms: self.endpointing_ms,
            utterance_end_ms: self.utterance_end_ms,
        };
        let url = wire::listen_url(&self.base, &params);
        let mut request = url.as_str().into_client_request().map_err(|e| Error::Config { detail: format!("listen request: {e}") })?;
        request.headers_mut().insert(AUTHORIZATION, self.auth.clone());
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE_FRAMES);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let link = Link {
            request,
            #[cfg(feature = "rustls")]
            connector: self.tls.clone().map(tokio_tungstenite::Connector::Rustls),
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            keepalive_interval: self.keepalive_interval,
        };
        let task = runtime.spawn(drive(link, audio_rx, inbound_tx));
        Ok(DeepgramSession {
            format,
            audio: Some(audio_tx),
            inbound: inbound_rx,
            task,
            decoder: wire::Decoder::default(),
            state: State::Running,
            first_frame: None,
            end_of_speech: None,
            latency: SttLatency::default(),
            waker: None,
            frames: 0,
        })
    }
}

impl SttProvider for DeepgramStt {
    fn name(&self) -> &str {
        "deepgram"
    }

    fn formats(&self) -> &[AudioFormat] {
        &FORMATS
    }

    fn start(&self, format: AudioFormat, options: &SttOptions) -> Result<Box<dyn SttSession>, Error> {
        Ok(Box::new(self.session(format, options)?))
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Running,
    /// Cancelled; the error is still to be given.
    Cancelled,
    /// Over: everything was given.
    Done,
}

/// A running Deepgram session; see the [module docs](self).
pub struct DeepgramSession {
    format: AudioFormat,
    /// `None` after `finish`: dropping the sender is how the task learns that no audio follows,
    /// after the frames already queued.
    audio: Option<mpsc::Sender<Bytes>>,
    inbound: mpsc::Receiver<Inbound>,
    task: JoinHandle<()>,
    decoder: wire::Decoder,
    state: State,
    first_frame: Option<Instant>,
    end_of_speech: Option<Instant>,
    latency: SttLatency,
    /// Woken by `cancel`, which can come while a poll is pending.
    waker: Option<Waker>,
    frames: u64,
}

impl fmt::Debug for DeepgramSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepgramSession").field("format", &self.format).field("frames", &self.frames).field("latency", &self.latency).finish_non_exhaustive()
    }
}

impl Drop for DeepgramSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DeepgramSession {
    /// Latency so far.
    pub fn latency(&self) -> SttLatency {
        self.latency
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<SttEvent, Error>>> {
        self.state = State::Done;
        self.task.abort();
        Poll::Ready(Some(Err(e)))
    }
}

impl SttSession for DeepgramSession {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        let bytes = match (frame, self.format.encoding) {
            (Frame::G711(b), Encoding::Mulaw | Encoding::Alaw) => Bytes::copy_from_slice(b),
            (Frame::Pcm(s), Encoding::Pcm16) => Bytes::from(s.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
            (frame, _) => return Err(Error::Config { detail: format!("a {} frame pushed to a {:?} session", frame_kind(frame), self.format) }),
        };
        let Some(audio) = &self.audio else { return Err(Error::Config { detail: "audio pushed after finish".into() }) };
        match audio.try_send(bytes) {
            Ok(()) => {
                self.frames += 1;
                self.first_frame.get_or_insert_with(Instant::now);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(Error::Unavailable {
                status: None,
                detail: format!("audio queue full ({AUDIO_QUEUE_FRAMES} frames): the connection to Deepgram is not keeping up"),
            }),
            // The task ended; its reason is the session's next event.
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed { detail: "the Deepgram connection is over".into() }),
        }
    }

    fn end_of_speech(&mut self) {
        self.end_of_speech = Some(Instant::now());
    }

    fn finish(&mut self) {
        self.audio = None;
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SttEvent, Error>>> {
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Cancelled => return self.fail(Error::Cancelled),
                State::Running => {}
            }
            let Poll::Ready(item) = self.inbound.poll_recv(cx) else {
                self.waker = Some(cx.waker().clone());
                return Poll::Pending;
            };
            match item {
                Some(Inbound::Text(at, text)) => match self.decoder.handle(&text) {
                    Ok(wire::Decoded::Nothing) => {}
                    Ok(wire::Decoded::Partial(t)) => {
                        if self.latency.first_partial.is_none() {
                            self.latency.first_partial = self.first_frame.map(|f| at.saturating_duration_since(f));
                        }
                        return Poll::Ready(Some(Ok(SttEvent::Partial(t))));
                    }
                    Ok(wire::Decoded::Final(t)) => {
                        // A short word can come as a final with no partial before it.
                        if self.latency.first_partial.is_none() {
                            self.latency.first_partial = self.first_frame.map(|f| at.saturating_duration_since(f));
                        }
                        if let Some(mark) = self.end_of_speech.take() {
                            self.latency.final_after_end_of_speech = Some(at.saturating_duration_since(mark));
                        }
                        return Poll::Ready(Some(Ok(SttEvent::Final(t))));
                    }
                    Err(e) => return self.fail(e),
                },
                Some(Inbound::End(Ok(()))) => {
                    self.state = State::Done;
                    return Poll::Ready(Some(Ok(SttEvent::Done(self.latency))));
                }
                Some(Inbound::End(Err(e))) => return self.fail(e),
                // Only an aborted or panicked task ends without saying why.
                None => return self.fail(Error::Closed { detail: "the Deepgram connection task ended".into() }),
            }
        }
    }

    fn cancel(&mut self) {
        if self.state == State::Running {
            self.task.abort();
            self.state = State::Cancelled;
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }
}

fn frame_kind(frame: Frame<'_>) -> &'static str {
    match frame {
        Frame::Pcm(_) => "PCM",
        Frame::G711(_) => "G.711",
    }
}

/// What the task tells the session.
enum Inbound {
    /// A text message and when it arrived (the latency clock).
    Text(Instant, Utf8Bytes),
    /// The stream is over: normally (after `CloseStream`) or with the error.
    End(Result<(), Error>),
}

/// What the task needs to connect and pace the stream.
struct Link {
    request: tungstenite::handshake::client::Request,
    #[cfg(feature = "rustls")]
    connector: Option<tokio_tungstenite::Connector>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    keepalive_interval: Duration,
}

async fn drive(link: Link, audio: mpsc::Receiver<Bytes>, inbound: mpsc::Sender<Inbound>) {
    let result = run(link, audio, &inbound).await;
    if let Err(e) = &result {
        tracing::debug!(error = %e, "Deepgram stream failed");
    }
    let _ = inbound.send(Inbound::End(result)).await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(link: &mut Link) -> Result<Ws, Error> {
    let request = link.request.clone();
    #[cfg(feature = "rustls")]
    let connecting = tokio_tungstenite::connect_async_tls_with_config(request, None, true, link.connector.take());
    #[cfg(not(feature = "rustls"))]
    let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
    match tokio::time::timeout(link.connect_timeout, connecting).await {
        Err(_) => Err(Error::Timeout { phase: TimeoutPhase::FirstByte, after: link.connect_timeout }),
        Ok(Ok((ws, response))) => {
            let id = response.headers().get("dg-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::debug!(request_id = id, "Deepgram stream open");
            Ok(ws)
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
            let retry_after = crate::openai::wire::retry_after(None, header("retry-after"), std::time::SystemTime::now());
            // The body is what arrived with the headers, which for a short error is all of it.
            let body = response.body().as_deref().unwrap_or_default();
            Err(wire::upgrade_error(response.status().as_u16(), retry_after, header("dg-error"), body))
        }
        Ok(Err(e)) => Err(Error::Unavailable { status: None, detail: format!("connecting to Deepgram: {e}") }),
    }
}

async fn run(mut link: Link, mut audio: mpsc::Receiver<Bytes>, inbound: &mpsc::Sender<Inbound>) -> Result<(), Error> {
    let mut ws = connect(&mut link).await?;
    let keepalive = tokio::time::sleep(link.keepalive_interval);
    tokio::pin!(keepalive);
    // Armed when audio (or CloseStream) goes out with no deadline pending; cleared by any message.
    let mut idle: Option<tokio::time::Instant> = None;
    let mut finishing = false;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    idle = if finishing { Some(tokio::time::Instant::now() + link.idle_timeout) } else { None };
                    if inbound.send(Inbound::Text(Instant::now(), text)).await.is_err() {
                        // The session is gone.
                        return Ok(());
                    }
                }
                Some(Ok(Message::Binary(b))) => return Err(Error::Protocol { detail: format!("Deepgram sent a binary message of {} bytes", b.len()) }),
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.as_ref().map(|f: &CloseFrame| (Some(u16::from(f.code)), f.reason.as_str())).unwrap_or((None, ""));
                    return wire::close_result(code, reason, finishing);
                }
                Some(Err(e)) => return Err(Error::Closed { detail: format!("Deepgram connection lost: {e}") }),
                None => return Err(Error::Closed { detail: "Deepgram connection ended without a close frame".into() }),
            },
            frame = audio.recv(), if !finishing => {
                let now = tokio::time::Instant::now();
                match frame {
                    Some(bytes) => send(&mut ws, Message::Binary(bytes)).await?,
                    None => {
                        // `finish`: every queued frame went out before this.
                        send(&mut ws, Message::text(wire::FINALIZE)).await?;
                        send(&mut ws, Message::text(wire::CLOSE_STREAM)).await?;
                        finishing = true;
                    }
                }
                keepalive.as_mut().reset(now + link.keepalive_interval);
                idle.get_or_insert(now + link.idle_timeout);
            }
            () = &mut keepalive, if !finishing => {
                send(&mut ws, Message::text(wire::KEEP_ALIVE)).await?;
                keepalive.as_mut().reset(tokio::time::Instant::now() + link.keepalive_interval);
            }
            () = sleep_until(idle) => return Err(Error::Timeout { phase: TimeoutPhase::Idle, after: link.idle_timeout }),
        }
    }
}

async fn send(ws: &mut Ws, message: Message) -> Result<(), Error> {
    ws.send(message).await.map_err(|e| Error::Closed { detail: format!("Deepgram connection lost while sending: {e}") })
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
