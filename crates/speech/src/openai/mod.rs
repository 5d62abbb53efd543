//! OpenAI-compatible chat completions, streamed over Server-Sent Events, with tool calls.
//!
//! `POST {base_url}/chat/completions` with `stream: true` (and `tools` with `tool_choice: "auto"`
//! when tools are offered). The answer is a `text/event-stream` of `data: {chunk}` events whose
//! `choices[0].delta` carries `content` fragments and `tool_calls` fragments (an `index`, then the
//! `id` and `function.name` once, then `function.arguments` in pieces), a `finish_reason` in the
//! last chunk, and `data: [DONE]`. The same wire format is served by OpenAI
//! (`https://api.openai.com/v1`), Groq (`https://api.groq.com/openai/v1`), Ollama
//! (`http://localhost:11434/v1`), vLLM (`http://host:8000/v1`) and others: only `base_url`,
//! the key and the model change.
//!
//! Text deltas are given as they arrive; tool calls once they are complete (at `finish_reason` or
//! `[DONE]`), in index order. Only choice 0 is read: the request never asks for more than one.
//!
//! # Timeouts
//!
//! - `first_byte_timeout`: from the first poll (the request leaves) to the response headers,
//!   connect and TLS included.
//! - `idle_timeout`: between any two reads of the body (keep-alive comments count: they prove
//!   the provider is alive). A stalled stream ends in [`Error::Timeout`], never a hang.
//!
//! Cancelling or dropping the stream drops the request future or the body, which closes the
//! connection at once.

mod endpoint;
mod speech;
mod transcription;
pub(crate) mod wire;

pub use transcription::{MAX_QUEUED, OpenAiTranscription, OpenAiTranscriptionConfig, OpenAiTranscriptionSession, ResponseFormat};

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tokio::time::Sleep;

use crate::llm::{ChatRequest, FinishReason, LlmEvent, LlmLatency, LlmProvider, LlmStream, LlmSummary};
use crate::sse::{SseItem, SseParser};
use crate::{Error, Secret, TimeoutPhase};

pub use speech::{OpenAiSpeech, OpenAiSpeechConfig, OpenAiSpeechStream};

/// Settings of an OpenAI-compatible provider.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API root, with its version: `https://api.openai.com/v1`, `http://localhost:11434/v1`.
    pub base_url: String,
    /// The bearer key; `None` for servers without authentication (a local Ollama).
    pub api_key: Option<Secret>,
    /// Limit from the request to the response headers. Default 10 s.
    pub first_byte_timeout: Duration,
    /// Limit between two reads of the streamed body. Default 10 s.
    pub idle_timeout: Duration,
}

impl OpenAiConfig {
    /// Settings for `base_url` with `api_key` and the default timeouts.
    pub fn new(base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        Self { base_url: base_url.into(), api_key, first_byte_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(10) }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Secret` redacts itself; spelled out so a field added later is a conscious choice.
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// An OpenAI-compatible chat provider. Cheap to clone: the HTTP client and its connection pool
/// are shared, so calls reuse warm connections (no TLS handshake on the turn's critical path).
#[derive(Clone, Debug)]
pub struct OpenAiChat {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive so reqwest's own `Debug` never prints it.
    auth: Option<HeaderValue>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl OpenAiChat {
    /// A provider with `config`. Fails on a base URL that is not http(s) or a key that cannot be a
    /// header value.
    pub fn new(config: &OpenAiConfig) -> Result<Self, Error> {
        let endpoint::Endpoint { client, url, auth } =
            endpoint::Endpoint::new(&config.base_url, "chat/completions", config.api_key.as_ref(), config.first_byte_timeout)?;
        Ok(Self { client, url, auth, first_byte_timeout: config.first_byte_timeout, idle_timeout: config.idle_timeout })
    }

    /// Starts a chat completion; the request leaves on the first poll.
    pub fn stream(&self, request: &ChatRequest) -> Result<OpenAiChatStream, Error> {
        let body = serde_json::to_vec(&wire::request_body(request)).map_err(|e| Error::Config { detail: format!("request does not serialize: {e}") })?;
        let mut builder = self.client.post(self.url.clone()).header(CONTENT_TYPE, "application/json").header("accept", "text/event-stream").body(body);
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let request = builder.build().map_err(|e| Error::Config { detail: e.without_url().to_string() })?;
        Ok(OpenAiChatStream {
            client: self.client.clone(),
            state: State::Idle(Some(Box::new(request))),
            deadline: None,
            first_byte_timeout: self.first_byte_timeout,
            idle_timeout: self.idle_timeout,
            parser: SseParser::new(),
            calls: wire::ToolCallAssembler::default(),
            pending: VecDeque::new(),
            started: None,
            latency: LlmLatency::default(),
            finish: None,
            chunks: 0,
        })
    }
}

impl LlmProvider for OpenAiChat {
    fn name(&self) -> &str {
        "openai"
    }

    fn chat(&self, request: ChatRequest) -> Result<Box<dyn LlmStream>, Error> {
        Ok(Box::new(self.stream(&request)?))
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;
type BodyFuture = Pin<Box<dyn Future<Output = reqwest::Result<Bytes>> + Send>>;
type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

enum State {
    /// Not polled yet; the request is built and waits.
    Idle(Option<Box<reqwest::Request>>),
    /// Waiting for the response headers.
    Sending(ResponseFuture),
    /// A non-2xx answer: reading its error body.
    ReadingError { status: u16, retry_after: Option<Duration>, body: BodyFuture },
    /// Reading the event stream.
    Streaming(BodyStream),
    /// Cancelled; the error is still to be given.
    Cancelled,
    /// Over: everything was given.
    Done,
}

/// A running OpenAI-compatible chat completion; see the [module docs](self).
pub struct OpenAiChatStream {
    client: reqwest::Client,
    state: State,
    /// The first-byte deadline until headers arrive, then the idle deadline, pushed back on every
    /// read. Made on the first poll: a tokio timer needs the runtime, and building the stream does
    /// not.
    deadline: Option<Pin<Box<Sleep>>>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    parser: SseParser,
    calls: wire::ToolCallAssembler,
    /// Events decoded from one read and not yet given: one read can carry many chunks.
    pending: VecDeque<LlmEvent>,
    started: Option<Instant>,
    latency: LlmLatency,
    finish: Option<FinishReason>,
    chunks: u64,
}

impl fmt::Debug for OpenAiChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiChatStream").field("latency", &self.latency).field("chunks", &self.chunks).finish_non_exhaustive()
    }
}

/// Whether the stream is over after a data event.
enum Flow {
    More,
    Complete,
}

impl OpenAiChatStream {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<LlmEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Latency so far.
    pub fn latency(&self) -> LlmLatency {
        self.latency
    }

    fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<LlmEvent, Error>>> {
        self.state = State::Done;
        self.pending.clear();
        Poll::Ready(Some(Err(e)))
    }

    fn push_deadline(&mut self, after: Duration) {
        let at = tokio::time::Instant::now() + after;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Decodes one SSE event's data into pending events.
    fn handle_data(&mut self, data: &str) -> Result<Flow, Error> {
        if data == "[DONE]" {
            return self.complete().map(|()| Flow::Complete);
        }
        self.chunks += 1;
        let chunk: wire::Chunk =
            serde_json::from_str(data).map_err(|e| Error::Protocol { detail: format!("chunk is not JSON ({e}): {}", wire::body_excerpt(data.as_bytes())) })?;
        if let Some(e) = chunk.error {
            return Err(wire::stream_error(e));
        }
        // `n` is never set, so only choice 0 exists; a usage-only chunk has no choices.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                self.first_token();
                self.pending.push_back(LlmEvent::Text(text));
            }
            for delta in choice.delta.tool_calls.unwrap_or_default() {
                self.first_token();
                self.calls.handle(delta)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(wire::finish_reason(&reason));
            }
        }
        Ok(Flow::More)
    }

    fn first_token(&mut self) {
        if self.latency.first_token.is_none() {
            self.latency.first_token = Some(self.elapsed());
        }
    }

    /// The stream ended properly: tool calls, then the summary.
    fn complete(&mut self) -> Result<(), Error> {
        for call in self.calls.finish()? {
            self.pending.push_back(LlmEvent::ToolCall(call));
        }
        self.latency.total = self.elapsed();
        let finish = self.finish.take().unwrap_or(FinishReason::Unspecified);
        self.pending.push_back(LlmEvent::Done(LlmSummary { finish, latency: self.latency, chunks: self.chunks }));
        Ok(())
    }

    /// Feeds a body read to the parser and decodes what it completes.
    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Flow, Error> {
        self.parser.handle_bytes(bytes).map_err(|e| Error::Protocol { detail: e.to_string() })?;
        while let Some(item) = self.parser.poll_item() {
            match item {
                SseItem::Event(ev) => {
                    if let Flow::Complete = self.handle_data(&ev.data)? {
                        return Ok(Flow::Complete);
                    }
                }
                SseItem::Unknown(field) => return Err(Error::Protocol { detail: format!("not an SSE line (field {field:?})") }),
            }
        }
        Ok(Flow::More)
    }

    /// The body ended without `[DONE]`.
    fn handle_eof(&mut self) -> Result<(), Error> {
        let truncated = self.parser.handle_eof();
        // Some servers end after the `finish_reason` chunk without `[DONE]`: the answer is whole.
        if !truncated && self.finish.is_some() {
            return self.complete();
        }
        Err(Error::Closed { detail: "the stream ended before [DONE]".into() })
    }

    /// Whether the deadline passed; registers the waker otherwise.
    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        // Always set once the request left, which is when this is called.
        self.deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

impl LlmStream for OpenAiChatStream {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<LlmEvent, Error>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Cancelled => return self.fail(Error::Cancelled),
                State::Idle(request) => {
                    let Some(request) = request.take() else { return self.fail(Error::Config { detail: "request already sent".into() }) };
                    self.started = Some(Instant::now());
                    self.push_deadline(self.first_byte_timeout);
                    self.state = State::Sending(Box::pin(self.client.execute(*request)));
                }
                State::Sending(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        self.latency.first_byte = Some(self.elapsed());
                        self.push_deadline(self.idle_timeout);
                        let status = response.status();
                        if status.is_success() {
                            self.state = State::Streaming(Box::pin(response.bytes_stream()));
                        } else {
                            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                            let retry_after =
                                wire::retry_after(header("retry-after-ms").as_deref(), header(RETRY_AFTER.as_str()).as_deref(), SystemTime::now());
                            self.state = State::ReadingError { status: status.as_u16(), retry_after, body: Box::pin(response.bytes()) };
                        }
                    }
                    Poll::Ready(Err(e)) if e.is_timeout() => {
                        return self.fail(Error::Timeout { phase: TimeoutPhase::FirstByte, after: self.first_byte_timeout });
                    }
                    Poll::Ready(Err(e)) => return self.fail(Error::Unavailable { status: None, detail: error_chain(&e.without_url()) }),
                    Poll::Pending if self.deadline_passed(cx) => {
                        return self.fail(Error::Timeout { phase: TimeoutPhase::FirstByte, after: self.first_byte_timeout });
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::ReadingError { status, retry_after, body } => match body.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        // A body cut short still has a status worth reporting.
                        let bytes = result.unwrap_or_default();
                        let error = wire::status_error(*status, *retry_after, &bytes);
                        return self.fail(error);
                    }
                    Poll::Pending if self.deadline_passed(cx) => return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: self.idle_timeout }),
                    Poll::Pending => return Poll::Pending,
                },
                State::Streaming(body) => match body.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => {
                        self.push_deadline(self.idle_timeout);
                        match self.handle_bytes(&bytes) {
                            Ok(Flow::More) => {}
                            // Dropping the body ends the request; the connection goes back to the
                            // pool if the server finished it, else it is closed.
                            Ok(Flow::Complete) => self.state = State::Done,
                            Err(e) => return self.fail(e),
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return self.fail(Error::Closed { detail: error_chain(&e.without_url()) }),
                    Poll::Ready(None) => match self.handle_eof() {
                        Ok(()) => self.state = State::Done,
                        Err(e) => return self.fail(e),
                    },
                    Poll::Pending if self.deadline_passed(cx) => return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: self.idle_timeout }),
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    fn cancel(&mut self) {
        if !matches!(self.state, State::Done) {
            // Dropping the request future or the body aborts the HTTP exchange and closes the
            // connection.
            self.state = State::Cancelled;
            self.pending.clear();
        }
    }
}

impl Stream for OpenAiChatStream {
    type Item = Result<LlmEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

/// An error and its causes, `: `-separated (reqwest's `Display` alone says only "error sending
/// request").
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    fn provider() -> OpenAiChat {
        OpenAiChat::new(&OpenAiConfig::new("http://127.0.0.1:9/v1", None)).expect("valid config")
    }

    fn stream(provider: &OpenAiChat) -> OpenAiChatStream {
        provider.stream(&ChatRequest::new("m", vec![Message::User("hi".into())])).expect("a stream")
    }

    fn text_chunk(i: usize) -> String {
        format!(
            "data: {{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718345013,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_9cb5d38cf7\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        )
    }

    /// Also shows that a stream is built outside a tokio runtime without panicking.
    #[test]
    fn decodes_reads_that_split_chunks_anywhere() {
        let input = [text_chunk(1), text_chunk(2), "data: [DONE]\n\n".into()].concat();
        let provider = provider();
        for cut in 0..=input.len() {
            let mut s = stream(&provider);
            let mut flow = Vec::new();
            for part in [&input.as_bytes()[..cut], &input.as_bytes()[cut..]] {
                flow.push(matches!(s.handle_bytes(part).expect("valid"), Flow::Complete));
            }
            assert!(flow.contains(&true), "split at {cut}");
            let events: Vec<LlmEvent> = s.pending.drain(..).collect();
            assert_eq!(events[..2], [LlmEvent::Text(" word1".into()), LlmEvent::Text(" word2".into())], "split at {cut}");
            assert!(matches!(events[2], LlmEvent::Done(_)));
        }
    }

    /// The decoding cost per chunk without any I/O: SSE framing, JSON, event. Run with
    /// `cargo test --release -p happ-speech --lib -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn decode_cost_per_chunk() {
        const N: usize = 100_000;
        let reads: Vec<String> = (0..N).map(text_chunk).collect();
        let mut s = stream(&provider());
        let started = Instant::now();
        let mut delivered = 0usize;
        for read in &reads {
            s.handle_bytes(read.as_bytes()).expect("valid");
            delivered += s.pending.drain(..).count();
        }
        let elapsed = started.elapsed();
        assert_eq!(delivered, N);
        println!("decode: {:?} per chunk of {} bytes ({N} chunks, one read each)", elapsed / N as u32, reads[0].len());
    }
}
