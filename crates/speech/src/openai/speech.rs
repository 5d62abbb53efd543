//! OpenAI-compatible speech synthesis (`POST {base_url}/audio/speech`), streamed as raw PCM.
//!
//! The endpoint takes a whole input per request: `{"model", "input", "voice",
//! "response_format": "pcm", "speed"?, "instructions"?}` with `Authorization: Bearer <key>`. The
//! answer is a chunked body of 24 kHz signed 16-bit little-endian mono PCM, without a header
//! ([`AudioFormat::PCM_24K`], the only rate OpenAI documents for `pcm`), given as it is read.
//!
//! # One request per sentence, one request ahead
//!
//! Each [`push_text`](TtsStream::push_text) is one request, in order. While one sentence's audio
//! is read, the next sentence's request is already sent, so its time to first byte overlaps the
//! playback of the previous one; at most one request runs ahead, so a long answer does not open a
//! connection per sentence at once. Audio still comes out strictly in order, and an error of the
//! request ahead is given only after the audio before it.
//!
//! # Timeouts
//!
//! - `first_byte_timeout`: from a request leaving to its response headers (also for the request
//!   ahead, so a dead connection is noticed before its turn).
//! - `idle_timeout`: between two reads of the body being played. The request ahead has no idle
//!   limit until its turn: it is not read, so the server may well be waiting for us.
//!
//! # Bounds
//!
//! Text waiting for its request is bounded by [`MAX_QUEUED_TEXT`] bytes: the stream is polled
//! while text is pushed, so only a caller that never polls reaches it, and it gets
//! [`Error::Config`] rather than unbounded growth. A sentence longer than OpenAI's input limit
//! ([`MAX_INPUT_CHARS`]) is cut at a word boundary into several requests.
//!
//! Cancelling or dropping the stream drops both requests, which closes their connections.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use tokio::time::Sleep;

use super::{error_chain, wire};
use crate::tts::{AudioChunk, TtsEvent, TtsLatency, TtsOptions, TtsProvider, TtsStream};
use crate::{AudioFormat, Error, Secret, TimeoutPhase};

/// The longest `input` OpenAI accepts in one request, in characters.
pub const MAX_INPUT_CHARS: usize = 4096;

/// The most text (bytes) a stream holds before its requests are sent.
pub const MAX_QUEUED_TEXT: usize = 64 * 1024;

/// The formats the endpoint produces with `response_format: "pcm"`.
const FORMATS: &[AudioFormat] = &[AudioFormat::PCM_24K];

/// Settings of an OpenAI-compatible speech provider.
#[derive(Clone)]
pub struct OpenAiSpeechConfig {
    /// The API root, with its version: `https://api.openai.com/v1`.
    pub base_url: String,
    /// The bearer key; `None` for servers without authentication (a local speech server).
    pub api_key: Option<Secret>,
    /// The model: `gpt-4o-mini-tts` (default), `tts-1`, `tts-1-hd`.
    pub model: String,
    /// The voice when [`TtsOptions::voice`] does not name one. Default `alloy`.
    pub voice: String,
    /// Speaking speed, 0.25 to 4.0; the server's default (1.0) when `None`.
    pub speed: Option<f64>,
    /// How to speak (tone, pace); only `gpt-4o-mini-tts` reads it.
    pub instructions: Option<String>,
    /// Limit from a request to its response headers. Default 10 s.
    pub first_byte_timeout: Duration,
    /// Limit between two reads of the audio being played. Default 10 s.
    pub idle_timeout: Duration,
}

impl OpenAiSpeechConfig {
    /// Settings for `base_url` with `api_key`, `gpt-4o-mini-tts`, voice `alloy` and the default
    /// timeouts.
    pub fn new(base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            model: "gpt-4o-mini-tts".into(),
            voice: "alloy".into(),
            speed: None,
            instructions: None,
            first_byte_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for OpenAiSpeechConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret` redacts itself; spelled out so a field added later is a conscious choice.
        f.debug_struct("OpenAiSpeechConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("speed", &self.speed)
            .field("instructions", &self.instructions)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// An OpenAI-compatible speech provider. Cheap to clone: the HTTP client and its connection pool
/// are shared, so sentences reuse warm connections.
#[derive(Clone, Debug)]
pub struct OpenAiSpeech {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive so reqwest's own `Debug` never prints it.
    auth: Option<HeaderValue>,
    model: String,
    voice: String,
    speed: Option<f64>,
    instructions: Option<String>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl OpenAiSpeech {
    /// A provider with `config`. Fails on a base URL that is not http(s) or a key that cannot be a
    /// header value.
    pub fn new(config: &OpenAiSpeechConfig) -> Result<Self, Error> {
        let super::endpoint::Endpoint { client, url, auth } =
            super::endpoint::Endpoint::new(&config.base_url, "audio/speech", config.api_key.as_ref(), config.first_byte_timeout)?;
        Ok(Self {
            client,
            url,
            auth,
            model: config.model.clone(),
            voice: config.voice.clone(),
            speed: config.speed,
            instructions: config.instructions.clone(),
            first_byte_timeout: config.first_byte_timeout,
            idle_timeout: config.idle_timeout,
        })
    }

    /// Starts a stream of 24 kHz PCM; requests leave when it is polled with text pushed.
    pub fn stream(&self, options: &TtsOptions) -> OpenAiSpeechStream {
        OpenAiSpeechStream {
            provider: self.clone(),
            voice: options.voice.clone().unwrap_or_else(|| self.voice.clone()),
            queue: VecDeque::new(),
            queued_bytes: 0,
            current: None,
            ahead: None,
            finished: false,
            over: Over::No,
            waker: None,
            started: None,
            latency: TtsLatency::default(),
            odd_byte: false,
            requests: 0,
        }
    }

    /// The request of one input.
    fn request(&self, voice: &str, input: &str) -> Result<reqwest::Request, Error> {
        let body = request_body(&self.model, voice, input, self.speed, self.instructions.as_deref());
        let body = serde_json::to_vec(&body).map_err(|e| Error::Config { detail: format!("request does not serialize: {e}") })?;
        let mut builder = self.client.post(self.url.clone()).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        builder.build().map_err(|e| Error::Config { detail: e.without_url().to_string() })
    }
}

impl TtsProvider for OpenAiSpeech {
    fn name(&self) -> &str {
        "openai"
    }

    fn formats(&self) -> &[AudioFormat] {
        FORMATS
    }

    fn start(&self, format: AudioFormat, options: &TtsOptions) -> Result<Box<dyn TtsStream>, Error> {
        if format != AudioFormat::PCM_24K {
            return Err(Error::Config { detail: format!("OpenAI speech produces 24 kHz PCM only, not {format:?}") });
        }
        Ok(Box::new(self.stream(options)))
    }
}

/// The JSON body of `POST /audio/speech`.
pub(crate) fn request_body(model: &str, voice: &str, input: &str, speed: Option<f64>, instructions: Option<&str>) -> Value {
    let mut body = serde_json::json!({ "model": model, "input": input, "voice": voice, "response_format": "pcm" });
    if let Some(speed) = speed {
        body["speed"] = Value::from(speed);
    }
    if let Some(instructions) = instructions {
        body["instructions"] = Value::from(instructions);
    }
    body
}

/// `text` in pieces of at most `max` characters, cut after whitespace when there is some (else
/// mid-word), none empty.
pub(crate) fn split_input(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((end, _)) = rest.char_indices().nth(max) else {
            pieces.push(rest);
            break;
        };
        // The last whitespace before the limit; a cut right after it keeps words whole.
        let cut = rest[..end].char_indices().filter(|(_, c)| c.is_whitespace()).map(|(i, c)| i + c.len_utf8()).next_back().filter(|&i| i > 0).unwrap_or(end);
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// Whether a 200 answer's `Content-Type` can be audio: `audio/*` or `application/octet-stream`.
/// A missing header is accepted: some compatible servers send raw PCM without one.
pub(crate) fn is_audio_content_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.starts_with("audio/") || essence == "application/octet-stream"
}

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;
type BodyFuture = Pin<Box<dyn Future<Output = reqwest::Result<Bytes>> + Send>>;
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Where one sentence's request is.
enum Phase {
    /// Waiting for the response headers.
    Sending(ResponseFuture),
    /// A non-2xx answer: reading its error body.
    ReadingError { status: u16, retry_after: Option<Duration>, body: BodyFuture },
    /// A 200 with audio: the body is read when it is this sentence's turn.
    Audio(BodyStream),
    /// Failed; the error is given when it is this sentence's turn.
    Failed(Error),
}

/// One sentence's request and its deadline.
struct Synthesis {
    phase: Phase,
    /// First-byte limit while sending, idle limit while reading; `None` for the request ahead once
    /// its headers arrived.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Synthesis {
    fn send(client: &reqwest::Client, request: reqwest::Request, first_byte_timeout: Duration) -> Self {
        Self { phase: Phase::Sending(Box::pin(client.execute(request))), deadline: Some(Box::pin(tokio::time::sleep(first_byte_timeout))) }
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

    /// Advances through the headers and an error body; ready once the phase is `Audio` or
    /// `Failed`. `playing` tells whether this is the sentence being played (the one ahead gets
    /// no idle limit once its headers are in).
    fn poll_ready(&mut self, cx: &mut Context<'_>, first_byte_timeout: Duration, idle_timeout: Duration, playing: bool) -> Poll<()> {
        loop {
            match &mut self.phase {
                Phase::Audio(_) | Phase::Failed(_) => return Poll::Ready(()),
                Phase::Sending(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        let status = response.status();
                        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                        if !status.is_success() {
                            let retry_after =
                                wire::retry_after(header("retry-after-ms").as_deref(), header(RETRY_AFTER.as_str()).as_deref(), SystemTime::now());
                            self.arm(idle_timeout);
                            self.phase = Phase::ReadingError { status: status.as_u16(), retry_after, body: Box::pin(response.bytes()) };
                        } else if !is_audio_content_type(header(CONTENT_TYPE.as_str()).as_deref()) {
                            // A JSON error or a proxy's page with a 200: never play it as audio.
                            let ct = header(CONTENT_TYPE.as_str()).unwrap_or_default();
                            self.phase = Phase::Failed(Error::Protocol { detail: format!("HTTP 200 with content-type {ct:?} where audio was expected") });
                        } else {
                            if playing {
                                self.arm(idle_timeout);
                            } else {
                                self.deadline = None;
                            }
                            self.phase = Phase::Audio(Box::pin(response.bytes_stream()));
                        }
                    }
                    Poll::Ready(Err(e)) if e.is_timeout() => {
                        self.phase = Phase::Failed(Error::Timeout { phase: TimeoutPhase::FirstByte, after: first_byte_timeout });
                    }
                    Poll::Ready(Err(e)) => self.phase = Phase::Failed(Error::Unavailable { status: None, detail: error_chain(&e.without_url()) }),
                    Poll::Pending if self.deadline_passed(cx) => {
                        self.phase = Phase::Failed(Error::Timeout { phase: TimeoutPhase::FirstByte, after: first_byte_timeout });
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Phase::ReadingError { status, retry_after, body } => match body.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        // A body cut short still has a status worth reporting.
                        let bytes = result.unwrap_or_default();
                        self.phase = Phase::Failed(wire::status_error(*status, *retry_after, &bytes));
                    }
                    Poll::Pending if self.deadline_passed(cx) => self.phase = Phase::Failed(Error::Timeout { phase: TimeoutPhase::Idle, after: idle_timeout }),
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
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

/// A running OpenAI-compatible synthesis; see the [module docs](self).
pub struct OpenAiSpeechStream {
    provider: OpenAiSpeech,
    voice: String,
    /// Inputs not requested yet, in order.
    queue: VecDeque<String>,
    queued_bytes: usize,
    /// The sentence being played.
    current: Option<Synthesis>,
    /// The next sentence's request, sent early.
    ahead: Option<Synthesis>,
    finished: bool,
    over: Over,
    /// The task that polled last, woken when text is pushed.
    waker: Option<Waker>,
    /// When the first text was pushed.
    started: Option<Instant>,
    latency: TtsLatency,
    /// The audio given so far ends mid-sample.
    odd_byte: bool,
    requests: u64,
}

impl fmt::Debug for OpenAiSpeechStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSpeechStream")
            .field("voice", &self.voice)
            .field("queued", &self.queue.len())
            .field("requests", &self.requests)
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl OpenAiSpeechStream {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<TtsEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Latency so far.
    pub fn latency(&self) -> TtsLatency {
        self.latency
    }

    /// Requests sent so far (one per sentence, more for a sentence over [`MAX_INPUT_CHARS`]).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<TtsEvent, Error>>> {
        self.over = Over::Yes;
        self.current = None;
        self.ahead = None;
        self.queue.clear();
        self.queued_bytes = 0;
        Poll::Ready(Some(Err(e)))
    }

    /// Sends the next queued input's request.
    fn send_next(&mut self) -> Option<Synthesis> {
        let input = self.queue.pop_front()?;
        self.queued_bytes -= input.len();
        self.requests += 1;
        let provider = &self.provider;
        Some(match provider.request(&self.voice, &input) {
            Ok(request) => Synthesis::send(&provider.client, request, provider.first_byte_timeout),
            Err(e) => Synthesis { phase: Phase::Failed(e), deadline: None },
        })
    }

    /// An audio chunk read from the body.
    fn audio(&mut self, data: Bytes) -> Poll<Option<Result<TtsEvent, Error>>> {
        if self.latency.first_audio.is_none() {
            self.latency.first_audio = Some(self.elapsed());
        }
        self.odd_byte ^= data.len() % 2 == 1;
        Poll::Ready(Some(Ok(TtsEvent::Audio(AudioChunk { format: AudioFormat::PCM_24K, data }))))
    }
}

impl TtsStream for OpenAiSpeechStream {
    fn format(&self) -> AudioFormat {
        AudioFormat::PCM_24K
    }

    fn push_text(&mut self, text: &str) -> Result<(), Error> {
        match self.over {
            Over::No if self.finished => return Err(Error::Config { detail: "text pushed after finish".into() }),
            Over::No => {}
            Over::Cancelled => return Err(Error::Cancelled),
            Over::Yes => return Err(Error::Closed { detail: "the stream is over".into() }),
        }
        // Whitespace alone would cost a request for silence (or a 400).
        if text.trim().is_empty() {
            return Ok(());
        }
        if self.queued_bytes + text.len() > MAX_QUEUED_TEXT {
            return Err(Error::Config { detail: format!("more than {MAX_QUEUED_TEXT} bytes of text waiting: the stream is not being polled") });
        }
        self.started.get_or_insert_with(Instant::now);
        for piece in split_input(text, MAX_INPUT_CHARS) {
            self.queued_bytes += piece.len();
            self.queue.push_back(piece.to_owned());
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    fn finish(&mut self) {
        self.finished = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<TtsEvent, Error>>> {
        let (first_byte_timeout, idle_timeout) = (self.provider.first_byte_timeout, self.provider.idle_timeout);
        loop {
            match self.over {
                Over::No => {}
                Over::Cancelled => return self.fail(Error::Cancelled),
                Over::Yes => return Poll::Ready(None),
            }
            if self.current.is_none() {
                self.current = match self.ahead.take() {
                    Some(mut next) => {
                        if matches!(next.phase, Phase::Audio(_)) {
                            next.arm(idle_timeout);
                        }
                        Some(next)
                    }
                    None => self.send_next(),
                };
            }
            if self.current.is_some() && self.ahead.is_none() {
                self.ahead = self.send_next();
            }
            // The request ahead makes progress (and registers its waker) on every poll.
            if let Some(ahead) = &mut self.ahead {
                let _ = ahead.poll_ready(cx, first_byte_timeout, idle_timeout, false);
            }
            let Some(current) = &mut self.current else {
                if !self.finished {
                    self.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                self.latency.total = self.elapsed();
                self.over = Over::Yes;
                return Poll::Ready(Some(Ok(TtsEvent::Done(self.latency))));
            };
            if current.poll_ready(cx, first_byte_timeout, idle_timeout, true).is_pending() {
                self.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            match &mut current.phase {
                Phase::Failed(e) => {
                    let e = e.clone();
                    return self.fail(e);
                }
                Phase::Audio(body) => match body.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        current.arm(idle_timeout);
                        if !data.is_empty() {
                            return self.audio(data);
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return self.fail(Error::Closed { detail: error_chain(&e.without_url()) }),
                    // This sentence is whole; the next one (already requested) plays now.
                    Poll::Ready(None) => {
                        self.current = None;
                        if self.odd_byte {
                            // A body of an odd length: complete its last sample so the next
                            // sentence's PCM stays aligned (OpenAI sends whole samples; a
                            // compatible server might not).
                            tracing::warn!("speech body ended mid-sample; padded with a zero byte");
                            self.odd_byte = false;
                            return Poll::Ready(Some(Ok(TtsEvent::Audio(AudioChunk { format: AudioFormat::PCM_24K, data: Bytes::from_static(&[0]) }))));
                        }
                    }
                    Poll::Pending if current.deadline_passed(cx) => return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: idle_timeout }),
                    Poll::Pending => {
                        self.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                },
                // `poll_ready` returned ready: no other phase remains.
                Phase::Sending(_) | Phase::ReadingError { .. } => {
                    return self.fail(Error::Protocol { detail: "internal: speech request not ready".into() });
                }
            }
        }
    }

    fn cancel(&mut self) {
        if !matches!(self.over, Over::Yes) {
            // Dropping the request futures and bodies aborts both exchanges and closes their
            // connections.
            self.over = Over::Cancelled;
            self.current = None;
            self.ahead = None;
            self.queue.clear();
            self.queued_bytes = 0;
        }
    }
}

impl Stream for OpenAiSpeechStream {
    type Item = Result<TtsEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_fields() {
        let b = request_body("gpt-4o-mini-tts", "alloy", "Hello there.", None, None);
        assert_eq!(b, serde_json::json!({"model": "gpt-4o-mini-tts", "input": "Hello there.", "voice": "alloy", "response_format": "pcm"}));
        let b = request_body("tts-1", "nova", "Hi.", Some(1.25), Some("Speak warmly."));
        assert_eq!(b["speed"], 1.25);
        assert_eq!(b["instructions"], "Speak warmly.");
    }

    #[test]
    fn long_inputs_are_cut_at_words() {
        assert_eq!(split_input("short one", 4096), ["short one"]);
        assert_eq!(split_input("aaa bbb ccc", 5), ["aaa ", "bbb ", "ccc"]);
        assert_eq!(split_input("abcdefgh", 3), ["abc", "def", "gh"]);
        // Characters, not bytes: no cut inside a multi-byte character.
        assert_eq!(split_input("ééé ééé", 4), ["ééé ", "ééé"]);
        let long = "word ".repeat(2000);
        let pieces = split_input(&long, MAX_INPUT_CHARS);
        assert_eq!(pieces.concat(), long);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_INPUT_CHARS && p.ends_with(' ')));
    }

    #[test]
    fn audio_content_types() {
        for ok in [Some("audio/pcm"), Some("audio/L16; rate=24000"), Some("application/octet-stream"), Some("Audio/PCM"), None] {
            assert!(is_audio_content_type(ok), "{ok:?}");
        }
        for bad in [Some("application/json"), Some("text/html; charset=utf-8"), Some("text/plain")] {
            assert!(!is_audio_content_type(bad), "{bad:?}");
        }
    }

    /// A stream is built outside a runtime, and refuses misuse without panicking.
    #[test]
    fn push_bounds_and_misuse() {
        let provider = OpenAiSpeech::new(&OpenAiSpeechConfig::new("http://127.0.0.1:9/v1", None)).expect("valid");
        let mut s = provider.stream(&TtsOptions::default());
        s.push_text("   ").expect("ignored");
        assert!(s.queue.is_empty() && s.started.is_none());
        let sentence = "x".repeat(1000);
        for _ in 0..MAX_QUEUED_TEXT / 1000 {
            s.push_text(&sentence).expect("within the bound");
        }
        assert!(matches!(s.push_text(&sentence), Err(Error::Config { .. })));
        s.finish();
        assert!(matches!(s.push_text("more"), Err(Error::Config { .. })));
        s.cancel();
        assert!(matches!(s.push_text("more"), Err(Error::Cancelled)));
        assert!(matches!(provider.start(AudioFormat::MULAW_8K, &TtsOptions::default()), Err(Error::Config { .. })));
    }
}
