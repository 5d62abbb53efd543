//! A scripted local server of the OpenAI-compatible APIs the gateway's speech adapters use, on
//! loopback, for tests that run real calls through the call bridge.
//!
//! [`ProviderServer`] answers under `/v1`:
//!
//! - `POST /v1/chat/completions` with `"stream": true`: Server-Sent Events as OpenAI sends them.
//!   A `data: {chunk}` event per `chat.completion.chunk` (the first with the assistant's role, one
//!   per text delta, tool calls as `choices[0].delta.tool_calls` with `index`, `id`, `type` and
//!   `function.name` first and `function.arguments` in pieces), a last chunk with `finish_reason`
//!   `stop` or `tool_calls`, a usage chunk when `stream_options.include_usage` asks for one, then
//!   `data: [DONE]`. Each answer is scripted as [`ChatStep`]s, first pushed first served; with
//!   none queued the answer is one text delta `You said: <last user message>.`
//! - `POST /v1/audio/speech` (`response_format: "pcm"`): raw 24 kHz 16-bit little-endian mono PCM,
//!   a chunk per 20 ms of audio, about 1 ms apart (far faster than real time). The audio is a
//!   tone of [`SPEECH_PER_CHAR`] per character of `input`, its amplitude swinging at 4 Hz like
//!   syllables so that a voice detector takes it for speech ([`speech_samples`] gives it exactly).
//!   [`SpeechFault`]s script failures of the next requests.
//! - `POST /v1/audio/transcriptions` (`multipart/form-data` with a WAV `file`, `model`,
//!   `language`, `response_format` `json`, `verbose_json` or `text`): the next scripted transcript
//!   (the empty text when none is queued), with the WAV's duration recorded.
//!
//! Malformed requests get a 400 with OpenAI's `{"error": {...}}` envelope, unknown paths a 404.
//! The server takes any key or none. Every request is recorded, so tests assert what the gateway
//! sent: the chat bodies (messages, tools, model), the speech bodies, the transcriptions.
//!
//! The server runs on its own thread with its own tokio runtime, so plain synchronous `#[test]`s
//! (which start the gateway as a child process) use it as well as async ones. Dropping it stops
//! the runtime, which closes every connection, stalled ones included.
//!
//! ```no_run
//! use std::time::Duration;
//! use happ_testkit::providers::{ChatStep, ProviderServer, SpeechFault};
//!
//! let server = ProviderServer::start();
//! server.chat(vec![ChatStep::text("Hello. "), ChatStep::Delay(Duration::from_millis(50)), ChatStep::text("Bye.")]);
//! server.transcript("what are your opening hours");
//! server.speech_fails(1, SpeechFault::Status(500));
//! let config = format!("[speech]\nstt = \"openai\"\ntts = \"openai\"\n[speech.openai]\nbase_url = \"{}\"\n", server.base_url());
//! // … run a call with `config`, then:
//! let bodies = server.wait_chat_requests(1, Duration::from_secs(10));
//! assert_eq!(bodies[0]["stream"], true);
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The sample rate of the speech audio (OpenAI's `pcm` format).
pub const SPEECH_RATE: u32 = 24_000;

/// Audio per character of a speech request's `input`.
pub const SPEECH_PER_CHAR: Duration = Duration::from_millis(60);

/// Audio per HTTP chunk of a speech answer.
pub const SPEECH_CHUNK: Duration = Duration::from_millis(20);

/// The tone of speech answers unless the test chose another ([`ProviderServer::speech_tone`]).
pub const DEFAULT_TONE_HZ: f64 = 440.0;

/// The peak amplitude of the tone (about -12 dBFS).
pub const TONE_AMPLITUDE: f64 = 8000.0;

/// The rate of the tone's amplitude swing: about the syllable rate of speech.
pub const SYLLABLE_HZ: f64 = 4.0;

/// The pause between two chunks of a speech answer: the audio comes far faster than real time.
const CHUNK_GAP: Duration = Duration::from_millis(1);

/// How long a scripted break waits after the last data: hyper flushes what it buffered when the
/// body has nothing ready, and an error from the body discards what is not flushed yet.
const FLUSH_BEFORE_BREAK: Duration = Duration::from_millis(10);

/// Characters per `function.arguments` fragment of a streamed tool call.
const ARGUMENT_PIECE: usize = 8;

/// The largest request body read: OpenAI's limit for an audio file.
const MAX_BODY: usize = 25 * 1024 * 1024;

/// One step of a scripted chat answer.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatStep {
    /// One `delta.content` chunk.
    Text(String),
    /// A tool call: a chunk with its `index`, `id` (`call_<request>_<index>`, the request
    /// counted from 1), `type` and `function.name`, then `function.arguments` in pieces of a few
    /// characters, each its own chunk. The answer's `finish_reason` becomes `tool_calls`.
    Tool {
        /// The function's name.
        name: String,
        /// The arguments, JSON text (sent as they are, even if not JSON).
        arguments: String,
    },
    /// Wait before the next step. Before a [`ChatStep::Status`], it holds the response headers
    /// back; otherwise the headers and the role chunk are already out.
    Delay(Duration),
    /// Break the connection here: what came before is sent, no `[DONE]` follows.
    Drop,
    /// Send nothing more and keep the connection open (until the client or the server goes).
    Stall,
    /// Answer with this HTTP status and an OpenAI error body instead of a stream. The text is the
    /// error's `message` (a default one for the status when empty), or the whole body when it
    /// starts with `{`. Only the [`ChatStep::Delay`]s before it matter.
    Status(u16, String),
}

impl ChatStep {
    /// A text delta.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A tool call with `arguments` as their JSON text.
    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        Self::Tool { name: name.into(), arguments: arguments.to_string() }
    }
}

/// A scripted failure of one speech request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeechFault {
    /// Answer with this HTTP status and an OpenAI error body.
    Status(u16),
    /// Send this much of the audio (rounded up to whole chunks), then break the connection.
    Drop {
        /// Audio sent before the break.
        after: Duration,
    },
    /// Send this much of the audio (rounded up to whole chunks), then nothing more, keeping the
    /// connection open.
    Stall {
        /// Audio sent before the stall.
        after: Duration,
    },
}

/// One transcription request as the server read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcription {
    /// The WAV's duration, from its header and data size.
    pub duration: Duration,
    /// The transcript answered.
    pub text: String,
    /// The `model` field.
    pub model: String,
    /// The `language` field, when sent.
    pub language: Option<String>,
    /// The `response_format` field (`json` when not sent).
    pub response_format: String,
}

/// The scripts and the records, shared by the handlers and the test.
#[derive(Default)]
struct Script {
    chat: VecDeque<Vec<ChatStep>>,
    transcripts: VecDeque<String>,
    speech_faults: VecDeque<SpeechFault>,
    /// `None`: [`DEFAULT_TONE_HZ`].
    default_tone: Option<f64>,
    /// Input prefixes and their tones, first match wins.
    tones: Vec<(String, f64)>,
    chat_requests: Vec<Value>,
    speech_requests: Vec<Value>,
    transcriptions: Vec<Transcription>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<Script>,
    /// Notified after every record.
    recorded: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock leaves consistent data: lists are only pushed.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running server on a free loopback port; stopped when dropped. See the [module docs](self).
pub struct ProviderServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ProviderServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl ProviderServer {
    /// Starts a server on `127.0.0.1` with an OS-chosen port.
    ///
    /// # Panics
    ///
    /// When no loopback port, runtime or thread can be had: the test cannot run.
    pub fn start() -> Self {
        Self::try_start().expect("a loopback port, a tokio runtime and a thread for the provider server")
    }

    /// Starts a server on `127.0.0.1` with an OS-chosen port.
    pub fn try_start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        // Write each event at once, like a provider's front end: with Nagle's algorithm the first
        // body write would wait for the ACK of the headers.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/audio/speech", post(speech))
            .route("/v1/audio/transcriptions", post(transcriptions))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new().name("provider-server".into()).spawn(move || {
            runtime.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            // Either a stop or the server dropped without one: both end the runtime.
            let _ = runtime.block_on(stopped);
            // Dropping the runtime drops the server and every connection task, stalled ones too.
        })?;
        Ok(Self { addr, shared, stop: Some(stop), thread: Some(thread) })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API root the adapters take: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a chat answer: the next chat request without an answer queued before it gets it.
    pub fn chat(&self, steps: Vec<ChatStep>) {
        self.shared.lock().chat.push_back(steps);
    }

    /// Queues the transcript of the next transcription request.
    pub fn transcript(&self, text: impl Into<String>) {
        self.shared.lock().transcripts.push_back(text.into());
    }

    /// Makes the next `n` speech requests (after those already scripted to fail) fail with
    /// `fault`. Requests count in arrival order: the speech adapter keeps one request ahead on a
    /// second connection, so two sentences may arrive either way round.
    pub fn speech_fails(&self, n: usize, fault: SpeechFault) {
        self.shared.lock().speech_faults.extend(std::iter::repeat_n(fault, n));
    }

    /// The tone of speech answers whose input no [`speech_tone_for`](Self::speech_tone_for) rule
    /// matches (default [`DEFAULT_TONE_HZ`]).
    pub fn speech_tone(&self, hz: f64) {
        self.shared.lock().default_tone = Some(hz);
    }

    /// The tone of speech answers whose `input` starts with `prefix` (the first rule added that
    /// matches wins), to tell sentences apart in the audio a test receives.
    pub fn speech_tone_for(&self, prefix: impl Into<String>, hz: f64) {
        self.shared.lock().tones.push((prefix.into(), hz));
    }

    /// Chat answers queued and not served yet.
    pub fn pending_chat(&self) -> usize {
        self.shared.lock().chat.len()
    }

    /// Transcripts queued and not served yet.
    pub fn pending_transcripts(&self) -> usize {
        self.shared.lock().transcripts.len()
    }

    /// The body of every chat request so far, parsed, in arrival order.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.shared.lock().chat_requests.clone()
    }

    /// The body of every well-formed speech request so far, parsed, in arrival order.
    pub fn speech_requests(&self) -> Vec<Value> {
        self.shared.lock().speech_requests.clone()
    }

    /// The `input` of every well-formed speech request so far, in arrival order.
    pub fn speech_inputs(&self) -> Vec<String> {
        inputs(&self.shared.lock())
    }

    /// Every well-formed transcription request so far, in arrival order.
    pub fn transcriptions(&self) -> Vec<Transcription> {
        self.shared.lock().transcriptions.clone()
    }

    /// The chat request bodies once there are `n`, or what there is after `timeout`.
    pub fn wait_chat_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        self.wait(timeout, |s| s.chat_requests.len() >= n).chat_requests.clone()
    }

    /// The speech inputs once there are `n`, or what there is after `timeout`.
    pub fn wait_speech_inputs(&self, n: usize, timeout: Duration) -> Vec<String> {
        inputs(&self.wait(timeout, |s| s.speech_requests.len() >= n))
    }

    /// The transcriptions once there are `n`, or what there is after `timeout`.
    pub fn wait_transcriptions(&self, n: usize, timeout: Duration) -> Vec<Transcription> {
        self.wait(timeout, |s| s.transcriptions.len() >= n).transcriptions.clone()
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Script) -> bool) -> MutexGuard<'_, Script> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.shared.lock();
        while !done(&guard) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = self.shared.recorded.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        guard
    }
}

impl Drop for ProviderServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn inputs(script: &Script) -> Vec<String> {
    script.speech_requests.iter().map(|r| r["input"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Exactly the PCM samples the server answers for `input` with the tone `hz`: [`SPEECH_PER_CHAR`]
/// per character at [`SPEECH_RATE`], a sine of peak [`TONE_AMPLITUDE`] whose amplitude swings
/// between a tenth and all of it at [`SYLLABLE_HZ`], starting low.
pub fn speech_samples(input: &str, hz: f64) -> Vec<i16> {
    let n = speech_duration(input).as_millis() as usize * SPEECH_RATE as usize / 1000;
    let rate = f64::from(SPEECH_RATE);
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let envelope = 0.55 - 0.45 * (std::f64::consts::TAU * SYLLABLE_HZ * t).cos();
            (TONE_AMPLITUDE * envelope * (std::f64::consts::TAU * hz * t).sin()).round() as i16
        })
        .collect()
}

/// The duration of the speech answer for `input`: [`SPEECH_PER_CHAR`] per character.
pub fn speech_duration(input: &str) -> Duration {
    SPEECH_PER_CHAR * input.chars().count() as u32
}

// ---- chat completions ----

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)");
    };
    let streamed = request["stream"] == true;
    let (steps, number) = {
        let mut script = shared.lock();
        script.chat_requests.push(request.clone());
        // A request refused below leaves the scripted answers to the requests after it.
        (if streamed { script.chat.pop_front() } else { None }, script.chat_requests.len())
    };
    shared.recorded.notify_all();
    if !streamed {
        return error(400, "This test server answers streamed chat completions only (\"stream\": true).");
    }
    let steps = steps.unwrap_or_else(|| vec![ChatStep::Text(format!("You said: {}.", last_user_text(&request)))]);
    let status = steps.iter().position(|s| matches!(s, ChatStep::Status(..)));
    if let Some(end) = status {
        for step in &steps[..end] {
            if let ChatStep::Delay(d) = step {
                tokio::time::sleep(*d).await;
            }
        }
        if let ChatStep::Status(code, message) = &steps[end] {
            return error(*code, message);
        }
    }
    let answer = ChatAnswer::new(number, &request, steps);
    let stream = futures_util::stream::unfold(answer, |mut a| async move { a.next().await.map(|item| (item, a)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "response"))
}

/// The text of the last user message: a string, or the text parts of a content array.
fn last_user_text(request: &Value) -> String {
    let last = request["messages"].as_array().and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

/// A streamed answer being written: its steps, and the events due before the next step.
struct ChatAnswer {
    id: String,
    /// The request's number, counted from 1: tool call ids are made from it.
    number: usize,
    model: String,
    created: u64,
    include_usage: bool,
    steps: VecDeque<ChatStep>,
    /// SSE events due, each written as its own HTTP chunk.
    out: VecDeque<String>,
    tools: u32,
    completion_chars: usize,
    prompt_chars: usize,
    finished: bool,
}

impl ChatAnswer {
    fn new(number: usize, request: &Value, steps: Vec<ChatStep>) -> Self {
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let mut a = Self {
            id: format!("chatcmpl-happtestkit{number:08}"),
            number,
            model: request["model"].as_str().unwrap_or("gpt-4o-mini").to_owned(),
            created,
            include_usage: request["stream_options"]["include_usage"] == true,
            steps: steps.into(),
            out: VecDeque::new(),
            tools: 0,
            completion_chars: 0,
            prompt_chars: request["messages"].to_string().len(),
            finished: false,
        };
        // OpenAI's first chunk gives the role with an empty content.
        let first = a.chunk(json!({"role": "assistant", "content": "", "refusal": null}), None);
        a.out.push_back(first);
        a
    }

    /// One `chat.completion.chunk` event with `delta` for choice 0.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_happtestkit",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        format!("data: {chunk}\n\n")
    }

    /// The next HTTP chunk; `None` once the answer is over.
    async fn next(&mut self) -> Option<Result<Bytes, io::Error>> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(Ok(Bytes::from(event)));
            }
            match self.steps.pop_front() {
                Some(ChatStep::Text(text)) => {
                    self.completion_chars += text.len();
                    let event = self.chunk(json!({"content": text}), None);
                    self.out.push_back(event);
                }
                Some(ChatStep::Tool { name, arguments }) => self.tool_call(&name, &arguments),
                Some(ChatStep::Delay(d)) => tokio::time::sleep(d).await,
                Some(ChatStep::Drop) => {
                    // An error from the body makes hyper abort the connection without the last
                    // chunk of the chunked encoding: the client sees a broken stream.
                    self.steps.clear();
                    self.finished = true;
                    tokio::time::sleep(FLUSH_BEFORE_BREAK).await;
                    return Some(Err(io::Error::other("scripted drop")));
                }
                Some(ChatStep::Stall) => std::future::pending::<()>().await,
                // Answered before the stream started (see `chat`).
                Some(ChatStep::Status(..)) => {}
                None if !self.finished => self.finish(),
                None => return None,
            }
        }
    }

    fn tool_call(&mut self, name: &str, arguments: &str) {
        let index = self.tools;
        self.tools += 1;
        self.completion_chars += name.len() + arguments.len();
        let id = format!("call_{}_{index}", self.number);
        let head = json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
        let event = self.chunk(head, None);
        self.out.push_back(event);
        let chars: Vec<char> = arguments.chars().collect();
        for piece in chars.chunks(ARGUMENT_PIECE) {
            let piece: String = piece.iter().collect();
            let event = self.chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), None);
            self.out.push_back(event);
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        let reason = if self.tools > 0 { "tool_calls" } else { "stop" };
        let last = self.chunk(json!({}), Some(reason));
        self.out.push_back(last);
        if self.include_usage {
            // About four characters a token: counts a test can rely on being there, not exact.
            let (prompt, completion) = (self.prompt_chars.div_ceil(4), self.completion_chars.div_ceil(4));
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_happtestkit",
                "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            });
            self.out.push_back(format!("data: {usage}\n\n"));
        }
        self.out.push_back("data: [DONE]\n\n".into());
    }
}

// ---- speech ----

async fn speech(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)");
    };
    let Some(input) = request["input"].as_str().map(str::to_owned) else { return error(400, "'input' is a required property") };
    if !request["model"].is_string() {
        return error(400, "you must provide a model parameter");
    }
    let format = request["response_format"].as_str().unwrap_or("mp3");
    if format != "pcm" {
        return error(400, &format!("This test server produces response_format \"pcm\" only, not {format:?}."));
    }
    let (fault, hz) = {
        let mut script = shared.lock();
        script.speech_requests.push(request.clone());
        let hz = script.tones.iter().find(|(prefix, _)| input.starts_with(prefix.as_str())).map(|(_, hz)| *hz);
        (script.speech_faults.pop_front(), hz.or(script.default_tone).unwrap_or(DEFAULT_TONE_HZ))
    };
    shared.recorded.notify_all();
    let pcm: Vec<u8> = speech_samples(&input, hz).iter().flat_map(|s| s.to_le_bytes()).collect();
    let chunk_bytes = (SPEECH_RATE as usize * SPEECH_CHUNK.as_millis() as usize / 1000) * 2;
    let chunks_in = |d: Duration| (d.as_micros() as usize).div_ceil(SPEECH_CHUNK.as_micros() as usize);
    let (limit, end) = match fault {
        Some(SpeechFault::Status(code)) => return error(code, ""),
        Some(SpeechFault::Drop { after }) => (chunks_in(after), AudioEnd::Drop),
        Some(SpeechFault::Stall { after }) => (chunks_in(after), AudioEnd::Stall),
        None => (usize::MAX, AudioEnd::Complete),
    };
    let pcm = Bytes::from(pcm);
    let chunks: VecDeque<Bytes> = (0..pcm.len()).step_by(chunk_bytes).take(limit).map(|at| pcm.slice(at..(at + chunk_bytes).min(pcm.len()))).collect();
    let state = (chunks, end, true);
    let stream = futures_util::stream::unfold(state, |(mut chunks, end, first)| async move {
        if let Some(chunk) = chunks.pop_front() {
            if !first {
                tokio::time::sleep(CHUNK_GAP).await;
            }
            return Some((Ok(chunk), (chunks, end, false)));
        }
        match end {
            AudioEnd::Complete => None,
            AudioEnd::Drop => {
                tokio::time::sleep(FLUSH_BEFORE_BREAK).await;
                Some((Err(io::Error::other("scripted drop")), (chunks, AudioEnd::Complete, false)))
            }
            AudioEnd::Stall => std::future::pending().await,
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/pcm")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "response"))
}

/// How a speech answer ends after its audio.
#[derive(Clone, Copy, Debug)]
enum AudioEnd {
    Complete,
    Drop,
    Stall,
}

// ---- transcriptions ----

async fn transcriptions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(boundary) = multipart_boundary(content_type) else {
        return error(400, "Invalid Content-Type header: a multipart/form-data body with a boundary is expected.");
    };
    let Some(parts) = parse_multipart(&body, &boundary) else { return error(400, "The multipart/form-data body could not be parsed.") };
    let field = |name: &str| parts.iter().find(|p| p.name == name && p.filename.is_none()).map(|p| String::from_utf8_lossy(p.data).into_owned());
    let Some(file) = parts.iter().find(|p| p.name == "file" && p.filename.is_some()) else { return error(400, "'file' is a required property") };
    let Some(model) = field("model") else { return error(400, "you must provide a model parameter") };
    let Some(duration) = wav_duration(file.data) else {
        return error(400, "Audio file might be corrupted or unsupported (this test server reads PCM WAV files only).");
    };
    let response_format = field("response_format").unwrap_or_else(|| "json".into());
    if !matches!(response_format.as_str(), "json" | "verbose_json" | "text") {
        return error(400, &format!("This test server answers response_format json, verbose_json or text, not {response_format:?}."));
    }
    let language = field("language");
    let text = {
        let mut script = shared.lock();
        let text = script.transcripts.pop_front().unwrap_or_default();
        script.transcriptions.push(Transcription { duration, text: text.clone(), model, language: language.clone(), response_format: response_format.clone() });
        text
    };
    shared.recorded.notify_all();
    let (content_type, body) = match response_format.as_str() {
        "text" => ("text/plain; charset=utf-8", format!("{text}\n")),
        "verbose_json" => {
            let seconds = duration.as_secs_f64();
            let segments = if text.is_empty() {
                json!([])
            } else {
                json!([{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": format!(" {text}"), "tokens": [], "temperature": 0.0,
                        "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.01}])
            };
            let language = language.unwrap_or_else(|| "english".into());
            ("application/json", json!({"task": "transcribe", "language": language, "duration": seconds, "text": text, "segments": segments}).to_string())
        }
        _ => ("application/json", json!({"text": text}).to_string()),
    };
    Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap_or_else(|_| error(500, "response"))
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, PartialEq)]
struct Part<'a> {
    name: String,
    filename: Option<String>,
    data: &'a [u8],
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.filter_map(|p| p.split_once('=')).find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary")).map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The parts of a `multipart/form-data` body (RFC 7578, RFC 2046 §5.1); `None` when malformed.
fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let dash = format!("--{boundary}").into_bytes();
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // A preamble may precede the first boundary.
    let mut rest = if body.starts_with(&dash) { &body[dash.len()..] } else { &body[find(body, &delimiter)? + delimiter.len()..] };
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, &delimiter)?;
        let part = &rest[..end];
        rest = &rest[end + delimiter.len()..];
        let split = find(part, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&part[..split]).ok()?;
        let mut p = Part { name: String::new(), filename: None, data: &part[split + 4..] };
        for line in headers.split("\r\n") {
            let (name, value) = line.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else { continue };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim() {
                    "name" => p.name = v,
                    "filename" => p.filename = Some(v),
                    _ => {}
                }
            }
        }
        parts.push(p);
    }
}

/// The duration of a PCM WAV file (RIFF, any chunk order, the data size capped at what is there);
/// `None` when it is not one.
fn wav_duration(b: &[u8]) -> Option<Duration> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]));
    let u32_at = |i: usize| Some(u32::from_le_bytes([*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?]));
    let mut bytes_per_second = None;
    let mut at = 12;
    while at + 8 <= b.len() {
        let size = u32_at(at + 4)? as usize;
        let body = at + 8;
        match &b[at..at + 4] {
            b"fmt " => {
                // Format 1 (PCM) or 0xFFFE (extensible); rate × block align.
                let format = u16_at(body)?;
                if size < 16 || !matches!(format, 1 | 0xfffe) {
                    return None;
                }
                let rate = u64::from(u32_at(body + 4)?);
                let block_align = u64::from(u16_at(body + 12)?);
                bytes_per_second = Some(rate * block_align).filter(|&b| b > 0);
            }
            b"data" => {
                let len = size.min(b.len() - body) as u64;
                return Some(Duration::from_nanos(len * 1_000_000_000 / bytes_per_second?));
            }
            _ => {}
        }
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

// ---- errors ----

async fn not_found(uri: Uri) -> Response {
    error(404, &format!("Invalid URL (POST {})", uri.path()))
}

/// An answer with `status` and OpenAI's error envelope: `message` (a default for the status when
/// empty), or `message` as the whole body when it starts with `{`.
fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if message.trim_start().starts_with('{') { message.to_owned() } else { envelope(status.as_u16(), message) };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// `{"error": {"message", "type", "param", "code"}}` as OpenAI writes it for `status`.
fn envelope(status: u16, message: &str) -> String {
    let (kind, code, default) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key"), "Incorrect API key provided."),
        404 => ("invalid_request_error", None, "The model does not exist or you do not have access to it."),
        429 => ("requests", Some("rate_limit_exceeded"), "Rate limit reached for requests."),
        400..=499 => ("invalid_request_error", None, "Invalid request."),
        503 => ("server_error", None, "The engine is currently overloaded, please try again later."),
        _ => ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    };
    let message = if message.is_empty() { default } else { message };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use happ_media::vad::{Vad, VadConfig, VadEvent};

    fn wav(samples: usize, rate: u32, extra_chunk: bool) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        if extra_chunk {
            out.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        }
        out.extend_from_slice(b"fmt \x10\0\0\0\x01\0\x01\0");
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(b"\x02\0\x10\0data");
        out.extend_from_slice(&(samples as u32 * 2).to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, samples * 2));
        out
    }

    #[test]
    fn wav_durations() {
        assert_eq!(wav_duration(&wav(8000, 8000, false)), Some(Duration::from_secs(1)));
        assert_eq!(wav_duration(&wav(4000, 16_000, true)), Some(Duration::from_millis(250)), "an odd-sized chunk before fmt is skipped with its pad");
        let mut cut = wav(8000, 8000, false);
        cut.truncate(44 + 800);
        assert_eq!(wav_duration(&cut), Some(Duration::from_millis(50)), "the data there is counts");
        assert_eq!(wav_duration(b"RIFF\0\0\0\0WAVEdata\0\0\0\0"), None, "data before fmt");
        assert_eq!(wav_duration(b"ID3\x03"), None);
    }

    #[test]
    fn multipart_parts() {
        assert_eq!(multipart_boundary("multipart/form-data; boundary=\"B0\""), Some("B0".into()));
        assert_eq!(multipart_boundary("application/json"), None);
        let body = b"--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--x\r\n--B0\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--B0--\r\n";
        let parts = parse_multipart(body, "B0").expect("well-formed");
        assert_eq!(
            parts,
            [
                Part { name: "file".into(), filename: Some("u.wav".into()), data: b"RIFF\r\n--x" },
                Part { name: "model".into(), filename: None, data: b"whisper-1" }
            ]
        );
        assert_eq!(parse_multipart(b"--B0\r\nno headers end", "B0"), None);
        assert_eq!(parse_multipart(b"garbage", "B0"), None);
    }

    #[test]
    fn the_tone_is_speech_to_a_voice_detector() {
        let samples = speech_samples(&"x".repeat(40), DEFAULT_TONE_HZ);
        assert_eq!(samples.len(), 24 * 60 * 40);
        assert!(samples.iter().all(|s| s.unsigned_abs() <= TONE_AMPLITUDE as u16));
        // 8 kHz for the detector: every third sample (the tone is far below the new Nyquist).
        let narrow: Vec<i16> = samples.iter().step_by(3).copied().collect();
        let mut vad = Vad::new(VadConfig::new(8000)).expect("a valid config");
        let mut events = Vec::new();
        // Silence first, so the detector has a floor, then the tone, then silence again.
        let silence = vec![0i16; 8000];
        for frame in [&silence[..], &narrow[..], &silence[..]].concat().chunks(160) {
            events.extend(vad.process(frame).event);
        }
        assert!(matches!(events[..], [VadEvent::SpeechStart { .. }, VadEvent::SpeechEnd { .. }]), "one turn, unbroken: {events:?}");
    }

    #[test]
    fn error_envelopes() {
        let e: Value = serde_json::from_str(&envelope(429, "")).expect("JSON");
        assert_eq!(e["error"]["code"], "rate_limit_exceeded");
        let e: Value = serde_json::from_str(&envelope(500, "boom")).expect("JSON");
        assert_eq!((e["error"]["message"].as_str(), e["error"]["type"].as_str()), (Some("boom"), Some("server_error")));
    }
}
