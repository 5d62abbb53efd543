//! ElevenLabs streaming text-to-speech over its `stream-input` WebSocket.
//!
//! One WebSocket per stream: `wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input`
//! with `model_id`, `output_format`, `auto_mode` and `inactivity_timeout` in the query and the key
//! in the `xi-api-key` header (never in the URL, so it cannot reach a log through one). The
//! messages are described in [`wire`]: a first message with the voice settings, one message per
//! sentence, `{"text":""}` at the end; audio comes back base64 in JSON until `{"isFinal":true}`.
//!
//! The formats offered are what a call can use without work or with the least: µ-law 8 kHz
//! (`ulaw_8000`, the call's own bytes, no transcoding), then PCM at 8, 16 and 24 kHz.
//!
//! # Connecting early
//!
//! The connection is opened on the first poll, text or not. A bridge that polls the stream while
//! the LLM is still thinking has the TLS handshake and the upgrade done before the first sentence,
//! so only synthesis is on the caller's critical path; [`TtsLatency::first_audio`] counts from the
//! first text pushed.
//!
//! # Keep-alive
//!
//! ElevenLabs closes a connection that receives no text for `inactivity_timeout` (20 s unless
//! the query says otherwise, at most 180 s), with close code 1008. The stream sends that limit
//! (default 60 s) and, while it is open and polled with no text to send, a `{"text":" "}` every
//! `keep_alive_interval` (default 15 s), so a connection opened early survives a slow LLM turn.
//! Keep-alives go out only while the stream is polled, as the bridge does while it waits for
//! audio.
//!
//! # Timeouts
//!
//! - `connect_timeout`: TCP, TLS and the upgrade ([`TimeoutPhase::FirstByte`]).
//! - `idle_timeout` ([`TimeoutPhase::Idle`]): armed when text is sent and lifted by the first
//!   message after it (the provider is working on it); after [`finish`](TtsStream::finish), armed
//!   until `isFinal` and pushed back by every message. A quiet socket between sentences is
//!   normal (the LLM is slow), so a stall in the middle of a turn is noticed once the turn's end
//!   is sent.
//!
//! # Bounds
//!
//! Text is queued by [`push_text`](TtsStream::push_text) and written when the stream is polled;
//! the queue holds at most [`MAX_QUEUED_TEXT`] bytes, beyond which `push_text` fails with
//! [`Error::Config`] instead of growing (only a caller that never polls reaches it). Pushing never
//! waits.
//!
//! Cancelling or dropping the stream drops the socket: the server sees the connection close and
//! stops generating.

mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::Sink;
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::tts::{AudioChunk, TtsEvent, TtsLatency, TtsOptions, TtsProvider, TtsStream};
use crate::{AudioFormat, Encoding, Error, Secret, TimeoutPhase};

/// The most text (bytes of JSON) a stream holds before writing it to the socket.
pub const MAX_QUEUED_TEXT: usize = 64 * 1024;

/// The formats offered, preferred first.
const FORMATS: &[AudioFormat] = &[AudioFormat::MULAW_8K, AudioFormat::PCM_8K, AudioFormat::PCM_16K, AudioFormat::PCM_24K];

/// The voice settings of the first message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VoiceSettings {
    /// 0 to 1: lower is more expressive, higher more even. Default 0.5.
    pub stability: f64,
    /// 0 to 1: how close to the original voice. Default 0.8.
    pub similarity_boost: f64,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self { stability: 0.5, similarity_boost: 0.8 }
    }
}

/// Settings of the ElevenLabs provider.
#[derive(Clone)]
pub struct ElevenLabsConfig {
    /// The API root: `wss://api.elevenlabs.io/v1` (default); `ws://` for a local server.
    pub base_url: String,
    /// The `xi-api-key`.
    pub api_key: Secret,
    /// The voice when [`TtsOptions::voice`] does not name one.
    pub voice_id: String,
    /// The model: `eleven_flash_v2_5` (default, the lowest latency).
    pub model_id: String,
    /// Sent in the first message.
    pub voice_settings: VoiceSettings,
    /// Characters buffered before each generation (`generation_config.chunk_length_schedule`).
    /// Default `[120, 160, 250, 290]`; ignored by the server in auto mode.
    pub chunk_length_schedule: Vec<u32>,
    /// `auto_mode=true` (default): the server generates at sentence ends instead of following the
    /// chunk schedule, which suits whole sentences and cuts latency.
    pub auto_mode: bool,
    /// The server's `inactivity_timeout`, 1 to 180 s. Default 60 s.
    pub inactivity_timeout: Duration,
    /// How long the open stream may go without sending before a keep-alive. Default 15 s.
    pub keep_alive_interval: Duration,
    /// Limit on TCP, TLS and the upgrade. Default 10 s.
    pub connect_timeout: Duration,
    /// Limit on waiting for the server while text is outstanding. Default 10 s.
    pub idle_timeout: Duration,
}

impl ElevenLabsConfig {
    /// Settings for `voice_id` with `api_key`, on the public API with the defaults above.
    pub fn new(api_key: Secret, voice_id: impl Into<String>) -> Self {
        Self {
            base_url: "wss://api.elevenlabs.io/v1".into(),
            api_key,
            voice_id: voice_id.into(),
            model_id: "eleven_flash_v2_5".into(),
            voice_settings: VoiceSettings::default(),
            chunk_length_schedule: vec![120, 160, 250, 290],
            auto_mode: true,
            inactivity_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for ElevenLabsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret` redacts itself; spelled out so a field added later is a conscious choice.
        f.debug_struct("ElevenLabsConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("voice_id", &self.voice_id)
            .field("model_id", &self.model_id)
            .field("voice_settings", &self.voice_settings)
            .field("chunk_length_schedule", &self.chunk_length_schedule)
            .field("auto_mode", &self.auto_mode)
            .field("inactivity_timeout", &self.inactivity_timeout)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// The ElevenLabs streaming TTS provider. Cheap to clone.
#[derive(Clone)]
pub struct ElevenLabsTts {
    config: ElevenLabsConfig,
    /// `xi-api-key`, marked sensitive so a request's `Debug` never prints it.
    key: HeaderValue,
    /// For `wss`: the webpki roots with the `ring` provider, built once.
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ElevenLabsTts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsTts").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ElevenLabsTts {
    /// A provider with `config`. Fails on a base URL that is not ws(s), a wss URL without the
    /// `rustls` feature, or a key that cannot be a header value.
    pub fn new(config: &ElevenLabsConfig) -> Result<Self, Error> {
        if config.api_key.is_empty() {
            return Err(Error::Config { detail: "api_key is empty".into() });
        }
        let mut key = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| Error::Config { detail: "api_key contains characters not allowed in a header".into() })?;
        key.set_sensitive(true);
        // Validates the base URL and the voice id once, with placeholder values for the rest.
        let url = wire::stream_url(&config.base_url, &url_params(config, &config.voice_id, "ulaw_8000", None))?;
        let secure = url.scheme() == "wss";
        #[cfg(feature = "rustls")]
        let tls = if secure { Some(crate::ws::tls_config()?) } else { None };
        #[cfg(not(feature = "rustls"))]
        if secure {
            return Err(Error::Config { detail: "wss needs the rustls feature".into() });
        }
        Ok(Self {
            config: config.clone(),
            key,
            #[cfg(feature = "rustls")]
            tls,
        })
    }

    /// Starts a stream producing `format`; the connection opens on the first poll.
    pub fn stream(&self, format: AudioFormat, options: &TtsOptions) -> Result<ElevenLabsStream, Error> {
        let Some(output_format) = wire::output_format(format) else {
            return Err(Error::Config { detail: format!("ElevenLabs offers no {format:?}") });
        };
        let voice = options.voice.as_deref().unwrap_or(&self.config.voice_id);
        let url = wire::stream_url(&self.config.base_url, &url_params(&self.config, voice, output_format, options.language.as_deref()))?;
        let mut request = url.as_str().into_client_request().map_err(|e| Error::Config { detail: format!("WebSocket request: {e}") })?;
        request.headers_mut().insert("xi-api-key", self.key.clone());
        let c = &self.config;
        let init = wire::init_message(c.voice_settings.stability, c.voice_settings.similarity_boost, &c.chunk_length_schedule);
        Ok(ElevenLabsStream {
            format,
            conn: Conn::Idle(Some(Box::new(request))),
            #[cfg(feature = "rustls")]
            tls: self.tls.clone(),
            connect_timeout: c.connect_timeout,
            idle_timeout: c.idle_timeout,
            keep_alive_interval: c.keep_alive_interval,
            outbox: VecDeque::from([Outgoing { text: init, kind: Kind::Init }]),
            outbox_bytes: 0,
            deadline: None,
            keep_alive: None,
            text_pushed: false,
            finished: false,
            end_sent: false,
            final_seen: false,
            over: Over::No,
            waker: None,
            started: None,
            latency: TtsLatency::default(),
            odd_byte: false,
            messages: 0,
        })
    }
}

fn url_params<'a>(c: &'a ElevenLabsConfig, voice_id: &'a str, output_format: &'static str, language_code: Option<&'a str>) -> wire::UrlParams<'a> {
    wire::UrlParams {
        voice_id,
        model_id: &c.model_id,
        output_format,
        auto_mode: c.auto_mode,
        inactivity_timeout_secs: c.inactivity_timeout.as_secs().clamp(1, 180),
        language_code,
    }
}

impl TtsProvider for ElevenLabsTts {
    fn name(&self) -> &str {
        "elevenlabs"
    }

    fn formats(&self) -> &[AudioFormat] {
        FORMATS
    }

    fn start(&self, format: AudioFormat, options: &TtsOptions) -> Result<Box<dyn TtsStream>, Error> {
        Ok(Box::new(self.stream(format, options)?))
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<(Ws, Response), tungstenite::Error>> + Send>>;

enum Conn {
    /// Not polled yet.
    Idle(Option<Box<Request>>),
    /// TCP, TLS and the upgrade.
    Connecting(ConnectFuture),
    /// Open.
    Open(Pin<Box<Ws>>),
    /// Never connected, or dropped.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Init,
    Text,
    KeepAlive,
    End,
}

struct Outgoing {
    text: String,
    kind: Kind,
}

/// Why the stream is over, if it is.
#[derive(Debug)]
enum Over {
    No,
    /// Cancelled; the error is still to be given.
    Cancelled,
    /// Everything was given (an error or `Done`).
    Yes,
}

/// A running ElevenLabs synthesis; see the [module docs](self).
pub struct ElevenLabsStream {
    format: AudioFormat,
    conn: Conn,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    keep_alive_interval: Duration,
    /// Messages not yet written, in order; the first message is always first.
    outbox: VecDeque<Outgoing>,
    /// Bytes of pushed text in the outbox (the first message and keep-alives do not count).
    outbox_bytes: usize,
    /// The connect deadline, then the idle deadline when armed (see the module docs).
    deadline: Option<Pin<Box<Sleep>>>,
    keep_alive: Option<Pin<Box<Sleep>>>,
    text_pushed: bool,
    finished: bool,
    end_sent: bool,
    /// `isFinal` came with audio: `Done` follows that audio.
    final_seen: bool,
    over: Over,
    /// The task that polled last, woken when text is pushed.
    waker: Option<Waker>,
    /// When the first text was pushed.
    started: Option<Instant>,
    latency: TtsLatency,
    /// The PCM given so far ends mid-sample.
    odd_byte: bool,
    messages: u64,
}

impl fmt::Debug for ElevenLabsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsStream")
            .field("format", &self.format)
            .field("queued", &self.outbox.len())
            .field("messages", &self.messages)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl ElevenLabsStream {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<TtsEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Latency so far.
    pub fn latency(&self) -> TtsLatency {
        self.latency
    }

    /// Server messages received so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<TtsEvent, Error>>> {
        self.over = Over::Yes;
        self.conn = Conn::None;
        self.outbox.clear();
        self.outbox_bytes = 0;
        Poll::Ready(Some(Err(e)))
    }

    fn done(&mut self) -> Poll<Option<Result<TtsEvent, Error>>> {
        if self.odd_byte {
            // PCM that ended mid-sample: complete the sample so the caller's audio stays aligned.
            tracing::warn!("ElevenLabs audio ended mid-sample; padded with a zero byte");
            self.odd_byte = false;
            return Poll::Ready(Some(Ok(TtsEvent::Audio(AudioChunk { format: self.format, data: Bytes::from_static(&[0]) }))));
        }
        self.over = Over::Yes;
        self.conn = Conn::None;
        self.latency.total = self.elapsed();
        Poll::Ready(Some(Ok(TtsEvent::Done(self.latency))))
    }

    fn audio(&mut self, data: Vec<u8>) -> Poll<Option<Result<TtsEvent, Error>>> {
        if self.latency.first_audio.is_none() {
            self.latency.first_audio = Some(self.elapsed());
        }
        if self.format.encoding == Encoding::Pcm16 {
            self.odd_byte ^= data.len() % 2 == 1;
        }
        Poll::Ready(Some(Ok(TtsEvent::Audio(AudioChunk { format: self.format, data: Bytes::from(data) }))))
    }

    fn arm(&mut self, after: Duration) {
        let at = tokio::time::Instant::now() + after;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }

    fn reset_keep_alive(&mut self) {
        let at = tokio::time::Instant::now() + self.keep_alive_interval;
        match &mut self.keep_alive {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.keep_alive = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Writes what the outbox holds, as far as the socket takes it.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let Conn::Open(ws) = &mut self.conn else { return Ok(()) };
        let mut sent_text = false;
        let mut sent_any = false;
        while !self.outbox.is_empty() {
            match ws.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(transport_error(e)),
                Poll::Pending => break,
            }
            let Some(out) = self.outbox.pop_front() else { break };
            if out.kind == Kind::Text {
                self.outbox_bytes -= out.text.len();
            }
            sent_text |= matches!(out.kind, Kind::Text | Kind::End);
            self.end_sent |= out.kind == Kind::End;
            sent_any = true;
            ws.as_mut().start_send(Message::text(out.text)).map_err(transport_error)?;
        }
        // Also sends the pongs tungstenite queued for the server's pings.
        if let Poll::Ready(Err(e)) = ws.as_mut().poll_flush(cx) {
            return Err(transport_error(e));
        }
        if sent_any {
            self.reset_keep_alive();
        }
        if sent_text {
            self.arm(self.idle_timeout);
        }
        Ok(())
    }

    /// Handles one frame; `Some` when it gives an event.
    fn handle(&mut self, message: Message) -> Option<Poll<Option<Result<TtsEvent, Error>>>> {
        match message {
            Message::Text(text) => {
                self.messages += 1;
                let inbound = match wire::decode(text.as_str()) {
                    Ok(inbound) => inbound,
                    Err(e) => return Some(self.fail(e)),
                };
                // The provider answered: a stall is measured from here (after the end), or the
                // text sent so far is being worked on (before it).
                if self.end_sent {
                    self.arm(self.idle_timeout);
                } else {
                    self.deadline = None;
                }
                match inbound {
                    wire::Inbound::Audio(data) if data.is_empty() => None,
                    wire::Inbound::Audio(data) => Some(self.audio(data)),
                    wire::Inbound::Final(data) => {
                        self.final_seen = true;
                        Some(if data.is_empty() { self.done() } else { self.audio(data) })
                    }
                    wire::Inbound::Other => None,
                }
            }
            Message::Binary(_) => Some(self.fail(Error::Protocol { detail: "binary frame where JSON was expected".into() })),
            Message::Close(Some(frame)) => Some(self.fail(wire::close_error(frame.code.into(), frame.reason.as_str()))),
            Message::Close(None) => Some(self.fail(Error::Closed { detail: "closed without a code before isFinal".into() })),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }
}

/// A failure of an open socket.
fn transport_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Capacity(e) => Error::Protocol { detail: format!("message too large: {e}") },
        tungstenite::Error::Utf8(e) => Error::Protocol { detail: format!("text frame is not UTF-8: {e}") },
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Error::Closed { detail: "connection reset without a close frame".into() }
        }
        tungstenite::Error::Protocol(e) => Error::Protocol { detail: format!("WebSocket: {e}") },
        other => Error::Closed { detail: other.to_string() },
    }
}

/// A failure to connect.
fn connect_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
            wire::http_error(response.status().as_u16(), retry_after, response.body().as_deref().unwrap_or_default())
        }
        tungstenite::Error::Url(e) => Error::Config { detail: format!("WebSocket URL: {e}") },
        tungstenite::Error::Protocol(e) => Error::Protocol { detail: format!("WebSocket upgrade: {e}") },
        tungstenite::Error::HttpFormat(e) => Error::Protocol { detail: format!("WebSocket upgrade: {e}") },
        other => Error::Unavailable { status: None, detail: crate::openai::error_chain(&other) },
    }
}

impl TtsStream for ElevenLabsStream {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push_text(&mut self, text: &str) -> Result<(), Error> {
        match self.over {
            Over::No if self.finished => return Err(Error::Config { detail: "text pushed after finish".into() }),
            Over::No => {}
            Over::Cancelled => return Err(Error::Cancelled),
            Over::Yes => return Err(Error::Closed { detail: "the stream is over".into() }),
        }
        // Empty text would end the server's stream; whitespace alone speaks nothing.
        if text.trim().is_empty() {
            return Ok(());
        }
        let message = wire::text_message(text);
        if self.outbox_bytes + message.len() > MAX_QUEUED_TEXT {
            return Err(Error::Config { detail: format!("more than {MAX_QUEUED_TEXT} bytes of text waiting: the stream is not being polled") });
        }
        self.started.get_or_insert_with(Instant::now);
        self.text_pushed = true;
        self.outbox_bytes += message.len();
        self.outbox.push_back(Outgoing { text: message, kind: Kind::Text });
        self.wake();
        Ok(())
    }

    fn finish(&mut self) {
        if !self.finished && matches!(self.over, Over::No) {
            self.finished = true;
            if self.text_pushed {
                self.outbox.push_back(Outgoing { text: wire::END.to_owned(), kind: Kind::End });
            }
            self.wake();
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<TtsEvent, Error>>> {
        loop {
            match self.over {
                Over::No => {}
                Over::Cancelled => return self.fail(Error::Cancelled),
                Over::Yes => return Poll::Ready(None),
            }
            if self.final_seen {
                return self.done();
            }
            if self.finished && !self.text_pushed {
                // Nothing to say: no connection needed, or the one opened early is dropped.
                return self.done();
            }
            match &mut self.conn {
                Conn::None => return self.fail(Error::Closed { detail: "no connection".into() }),
                Conn::Idle(request) => {
                    let Some(request) = request.take() else { return self.fail(Error::Config { detail: "request already sent".into() }) };
                    // Nagle off: each small JSON message leaves at once.
                    #[cfg(feature = "rustls")]
                    let connecting =
                        tokio_tungstenite::connect_async_tls_with_config(*request, None, true, self.tls.clone().map(tokio_tungstenite::Connector::Rustls));
                    #[cfg(not(feature = "rustls"))]
                    let connecting = tokio_tungstenite::connect_async_with_config(*request, None, true);
                    self.conn = Conn::Connecting(Box::pin(connecting));
                    self.arm(self.connect_timeout);
                }
                Conn::Connecting(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok((ws, _response))) => {
                        self.conn = Conn::Open(Box::pin(ws));
                        self.deadline = None;
                        self.reset_keep_alive();
                    }
                    Poll::Ready(Err(e)) => return self.fail(connect_error(e)),
                    Poll::Pending if self.deadline_passed(cx) => {
                        return self.fail(Error::Timeout { phase: TimeoutPhase::FirstByte, after: self.connect_timeout });
                    }
                    Poll::Pending => {
                        self.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                },
                Conn::Open(_) => {
                    if let Err(e) = self.write(cx) {
                        return self.fail(e);
                    }
                    let Conn::Open(ws) = &mut self.conn else { continue };
                    match ws.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(message))) => {
                            if let Some(event) = self.handle(message) {
                                return event;
                            }
                        }
                        Poll::Ready(Some(Err(e))) => return self.fail(transport_error(e)),
                        Poll::Ready(None) => return self.fail(Error::Closed { detail: "connection ended before isFinal".into() }),
                        Poll::Pending => {
                            if self.deadline_passed(cx) {
                                return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: self.idle_timeout });
                            }
                            let keep_alive_due = self.keep_alive.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                            if keep_alive_due && !self.finished && self.outbox.is_empty() {
                                self.outbox.push_back(Outgoing { text: wire::KEEP_ALIVE.to_owned(), kind: Kind::KeepAlive });
                                continue;
                            }
                            self.waker = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }

    fn cancel(&mut self) {
        if !matches!(self.over, Over::Yes) {
            // Dropping the socket closes the connection: the server stops generating.
            self.over = Over::Cancelled;
            self.conn = Conn::None;
            self.outbox.clear();
            self.outbox_bytes = 0;
        }
    }
}

impl Stream for ElevenLabsStream {
    type Item = Result<TtsEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(base: &str) -> Result<ElevenLabsTts, Error> {
        let mut c = ElevenLabsConfig::new(Secret::new("xi-test-key"), "voice1");
        c.base_url = base.into();
        ElevenLabsTts::new(&c)
    }

    /// Built outside a runtime; misuse is refused without panicking.
    #[test]
    fn push_bounds_and_misuse() {
        let p = provider("ws://127.0.0.1:9/v1").expect("valid");
        assert!(matches!(p.stream(AudioFormat::ALAW_8K, &TtsOptions::default()), Err(Error::Config { .. })));
        let mut s = p.stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
        s.push_text("").expect("ignored");
        assert!(!s.text_pushed && s.outbox.len() == 1);
        let sentence = "y".repeat(999);
        let mut pushed = 0;
        while s.push_text(&sentence).is_ok() {
            pushed += 1;
        }
        assert!(pushed > 50 && s.outbox_bytes <= MAX_QUEUED_TEXT, "{pushed}");
        s.finish();
        assert_eq!(s.outbox.back().map(|o| o.kind), Some(Kind::End));
        assert!(matches!(s.push_text("more"), Err(Error::Config { .. })));
        assert!(matches!(provider("https://api.elevenlabs.io/v1"), Err(Error::Config { .. })));
        assert!(provider("wss://api.elevenlabs.io/v1").is_ok());
    }
}
