//! OpenAI-compatible transcription, one HTTP request per utterance.
//!
//! `POST {base_url}/audio/transcriptions` with a `multipart/form-data` body: `file` (a WAV built
//! here, 16-bit PCM mono at the session's rate), `model`, `response_format` (`json` → `{"text":
//! "…"}`, or `verbose_json` with `segments`), and when known `language` and `prompt`. The same
//! request is served by OpenAI (`whisper-1`, `gpt-4o-mini-transcribe`, `gpt-4o-transcribe`), Groq
//! (`whisper-large-v3-turbo`), and self-hosted Whisper servers (faster-whisper-server / speaches,
//! whisper.cpp's server with `--inference-path /v1/audio/transcriptions`): only `base_url`, the key
//! and the model change.
//!
//! # How a session runs
//!
//! The session keeps the audio of the current utterance. [`SttSession::end_of_speech`] (the
//! bridge's VAD heard the caller stop) closes it: it is sent when the session is next polled, and
//! its transcript comes back as one [`SttEvent::Final`] with `end_of_turn: true`.
//! [`SttSession::finish`] sends what remains, then the session ends with [`SttEvent::Done`].
//! Utterances go one at a time, in order; up to [`MAX_QUEUED`] wait behind the one in flight.
//!
//! - No partials: the API transcribes whole files. `first_partial` stays `None` in the latency.
//! - An utterance longer than `max_utterance` (default 60 s) is cut and sent as it is, its final
//!   without `end_of_turn`; the rest continues in a new one.
//! - Utterances under 100 ms are dropped: OpenAI refuses audio that short, and it holds no word.
//! - G.711 sessions (offered after PCM) are decoded here with the G.711 tables, so the bridge can
//!   hand over the call's bytes; the WAV is PCM either way, which every Whisper server reads.
//!   whisper.cpp's server wants 16 kHz unless started with `--convert`.
//! - `SttOptions::keywords` become the `prompt` (Whisper favours the spellings it sees there);
//!   `SttOptions::language` (BCP 47, `en-GB`) is sent as its ISO 639-1 part (`en`).
//!
//! # Timeouts and errors
//!
//! `first_byte_timeout` runs from the request leaving to the answer's headers (upload and
//! transcription included); `idle_timeout` bounds reading the answer. Error answers are typed as
//! for chat completions (OpenAI's `{"error": {...}}` body); a connection lost before the answer is
//! [`Error::Unavailable`], one lost in the answer's body [`Error::Closed`]. Cancelling or dropping
//! the session drops the request in flight, which closes its connection.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use super::{OpenAiConfig, error_chain, wire};
use crate::stt::{Frame, SttEvent, SttLatency, SttOptions, SttProvider, SttSession};
use crate::{AudioFormat, Encoding, Error, TimeoutPhase, Transcript};

/// Utterances that may wait behind the one in flight. Past that, a closed utterance stays in the
/// buffer and joins the next one, and a full buffer makes `push` fail.
pub const MAX_QUEUED: usize = 4;

/// What the provider offers, preferred first: PCM at the call's rate, then G.711 decoded here.
const FORMATS: [AudioFormat; 4] = [AudioFormat::PCM_8K, AudioFormat::PCM_16K, AudioFormat::MULAW_8K, AudioFormat::ALAW_8K];

/// OpenAI refuses shorter audio ("Minimum audio length is 0.1 seconds").
const MIN_UTTERANCE: Duration = Duration::from_millis(100);

/// What the answer body holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `{"text": "…"}`: every model and server.
    #[default]
    Json,
    /// `{"text": "…", "segments": [...]}` with per-segment log-probabilities: whisper models
    /// only. Gives a confidence, and drops the segments Whisper itself flags as probably not
    /// speech (its `no_speech_prob` > 0.6 with `avg_logprob` < -1 rule), which removes most
    /// "Thank you." hallucinations on noise.
    VerboseJson,
}

impl ResponseFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::VerboseJson => "verbose_json",
        }
    }
}

/// Settings of an OpenAI-compatible transcription provider.
#[derive(Clone, Debug)]
pub struct OpenAiTranscriptionConfig {
    /// The API root, key and timeouts, as for chat. `first_byte_timeout` covers the upload and
    /// the transcription of an utterance: 10 s by default.
    pub api: OpenAiConfig,
    /// The model: `whisper-1`, `gpt-4o-mini-transcribe`, or a self-hosted server's name for it.
    pub model: String,
    /// `json` (default) or `verbose_json`.
    pub response_format: ResponseFormat,
    /// Default language (BCP 47 or ISO 639-1) when the session's options give none; the model
    /// detects it when `None`.
    pub language: Option<String>,
    /// The longest utterance sent in one request. Default 60 s.
    pub max_utterance: Duration,
}

impl OpenAiTranscriptionConfig {
    /// Settings for `model` on the API of `api`, with the defaults above.
    pub fn new(api: OpenAiConfig, model: impl Into<String>) -> Self {
        Self { api, model: model.into(), response_format: ResponseFormat::Json, language: None, max_utterance: Duration::from_secs(60) }
    }
}

/// An OpenAI-compatible transcription provider: `POST {base_url}/audio/transcriptions` per
/// utterance, the utterance closed by [`SttSession::end_of_speech`] and its transcript given as a
/// final with `end_of_turn`; no partials. Cheap to clone: the HTTP client and its connection pool
/// are shared.
#[derive(Clone, Debug)]
pub struct OpenAiTranscription {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive so reqwest's own `Debug` never prints it.
    auth: Option<HeaderValue>,
    model: String,
    response_format: ResponseFormat,
    language: Option<String>,
    max_utterance: Duration,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl OpenAiTranscription {
    /// A provider with `config`. Fails on a base URL that is not http(s) or a key that cannot be a
    /// header value.
    pub fn new(config: &OpenAiTranscriptionConfig) -> Result<Self, Error> {
        let super::endpoint::Endpoint { client, url, auth } =
            super::endpoint::Endpoint::new(&config.api.base_url, "audio/transcriptions", config.api.api_key.as_ref(), config.api.first_byte_timeout)?;
        Ok(Self {
            client,
            url,
            auth,
            model: config.model.clone(),
            response_format: config.response_format,
            language: config.language.clone(),
            max_utterance: config.max_utterance,
            first_byte_timeout: config.api.first_byte_timeout,
            idle_timeout: config.api.idle_timeout,
        })
    }

    /// Starts a session taking `format`. Nothing is sent before the first utterance closes.
    pub fn session(&self, format: AudioFormat, options: &SttOptions) -> Result<OpenAiTranscriptionSession, Error> {
        if !FORMATS.contains(&format) {
            return Err(Error::Config { detail: format!("OpenAI transcription adapter does not take {format:?}") });
        }
        let language = options.language.as_deref().or(self.language.as_deref()).map(iso_639_1).filter(|l| !l.is_empty());
        let prompt = prompt(&options.keywords);
        let rate = u64::from(format.sample_rate);
        let max_samples = usize::try_from(self.max_utterance.as_millis() as u64 * rate / 1000).unwrap_or(usize::MAX).max(1);
        Ok(OpenAiTranscriptionSession {
            provider: self.clone(),
            format,
            language,
            prompt,
            buffer: Vec::new(),
            buffer_start: 0,
            max_samples,
            queue: VecDeque::new(),
            inflight: None,
            mark: None,
            first_frame: None,
            finished: false,
            state: State::Running,
            latency: SttLatency::default(),
            waker: None,
            requests: 0,
        })
    }
}

impl SttProvider for OpenAiTranscription {
    fn name(&self) -> &str {
        "openai-transcription"
    }

    fn formats(&self) -> &[AudioFormat] {
        &FORMATS
    }

    fn start(&self, format: AudioFormat, options: &SttOptions) -> Result<Box<dyn SttSession>, Error> {
        Ok(Box::new(self.session(format, options)?))
    }
}

/// A closed utterance waiting to be sent.
struct Utterance {
    samples: Vec<i16>,
    /// Sample index of its start in the session's audio.
    start: u64,
    end_of_turn: bool,
    /// The `end_of_speech` that closed it, for the latency of its final.
    mark: Option<Instant>,
}

/// An utterance in flight: what its final needs, and the request.
struct InFlight {
    start: u64,
    len: u64,
    end_of_turn: bool,
    mark: Option<Instant>,
    request: Pin<Box<dyn Future<Output = Result<Answer, Error>> + Send>>,
}

#[derive(Debug, PartialEq)]
enum State {
    Running,
    Cancelled,
    Done,
}

/// A running transcription session of an [`OpenAiTranscription`]: audio buffered per utterance,
/// one request per utterance, its transcript a final.
pub struct OpenAiTranscriptionSession {
    provider: OpenAiTranscription,
    format: AudioFormat,
    language: Option<String>,
    prompt: Option<String>,
    /// The open utterance, as PCM.
    buffer: Vec<i16>,
    buffer_start: u64,
    max_samples: usize,
    queue: VecDeque<Utterance>,
    inflight: Option<InFlight>,
    /// The last `end_of_speech` not yet attached to an utterance.
    mark: Option<Instant>,
    first_frame: Option<Instant>,
    finished: bool,
    state: State,
    latency: SttLatency,
    /// Woken by `end_of_speech`, `finish` and `cancel`, which give the poll new work.
    waker: Option<Waker>,
    requests: u64,
}

impl fmt::Debug for OpenAiTranscriptionSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiTranscriptionSession")
            .field("format", &self.format)
            .field("buffered", &self.buffer.len())
            .field("queued", &self.queue.len())
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl OpenAiTranscriptionSession {
    /// Latency so far.
    pub fn latency(&self) -> SttLatency {
        self.latency
    }

    /// Closes the open utterance into the queue. `false` when the queue is full (the audio stays).
    fn close_utterance(&mut self, end_of_turn: bool) -> bool {
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        let samples = std::mem::take(&mut self.buffer);
        let start = self.buffer_start;
        self.buffer_start += samples.len() as u64;
        let min = (u64::from(self.format.sample_rate) * MIN_UTTERANCE.as_millis() as u64 / 1000) as usize;
        let mark = if end_of_turn { self.mark.take() } else { None };
        if samples.len() >= min {
            self.queue.push_back(Utterance { samples, start, end_of_turn, mark });
        }
        true
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<SttEvent, Error>>> {
        self.state = State::Done;
        self.inflight = None;
        self.queue.clear();
        Poll::Ready(Some(Err(e)))
    }

    fn send(&mut self, u: Utterance) -> Result<InFlight, Error> {
        let p = &self.provider;
        let wav = wav(&u.samples, self.format.sample_rate);
        let boundary = boundary();
        let mut fields = vec![("model", p.model.as_str()), ("response_format", p.response_format.as_str())];
        if let Some(language) = &self.language {
            fields.push(("language", language));
        }
        if let Some(prompt) = &self.prompt {
            fields.push(("prompt", prompt));
        }
        let body = multipart(&boundary, &wav, &fields);
        let mut builder = p.client.post(p.url.clone()).header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(body);
        if let Some(auth) = &p.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let request = builder.build().map_err(|e| Error::Config { detail: e.without_url().to_string() })?;
        self.requests += 1;
        let future = transcribe(p.client.clone(), request, p.response_format, p.first_byte_timeout, p.idle_timeout);
        Ok(InFlight { start: u.start, len: u.samples.len() as u64, end_of_turn: u.end_of_turn, mark: u.mark, request: Box::pin(future) })
    }

    fn audio_time(&self, samples: u64) -> Duration {
        Duration::from_secs_f64(samples as f64 / f64::from(self.format.sample_rate))
    }
}

impl SttSession for OpenAiTranscriptionSession {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        if self.finished || self.state != State::Running {
            return Err(Error::Config { detail: "audio pushed after finish or cancel".into() });
        }
        let len = match frame {
            Frame::Pcm(s) => s.len(),
            Frame::G711(b) => b.len(),
        };
        if self.buffer.len() + len > self.max_samples && !self.buffer.is_empty() {
            // The caller has been talking for `max_utterance`: send what there is.
            if !self.close_utterance(false) {
                return Err(Error::Unavailable {
                    status: None,
                    detail: format!("{MAX_QUEUED} utterances wait for transcription: the provider is not keeping up"),
                });
            }
            self.wake();
        }
        match (frame, self.format.encoding) {
            (Frame::Pcm(s), Encoding::Pcm16) => self.buffer.extend_from_slice(s),
            (Frame::G711(b), Encoding::Mulaw) => self.buffer.extend(b.iter().map(|&c| ulaw_to_linear(c))),
            (Frame::G711(b), Encoding::Alaw) => self.buffer.extend(b.iter().map(|&c| alaw_to_linear(c))),
            (_, encoding) => return Err(Error::Config { detail: format!("a frame of the wrong kind pushed to a {encoding:?} session") }),
        }
        self.first_frame.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn end_of_speech(&mut self) {
        if self.state != State::Running || self.finished {
            return;
        }
        self.mark = Some(Instant::now());
        // With a full queue the utterance stays open and the next `end_of_speech` closes it.
        self.close_utterance(true);
        self.wake();
    }

    fn finish(&mut self) {
        if self.state != State::Running || self.finished {
            return;
        }
        // No more audio: what remains is the end of the caller's turn, whatever the queue holds.
        let samples = std::mem::take(&mut self.buffer);
        let min = (u64::from(self.format.sample_rate) * MIN_UTTERANCE.as_millis() as u64 / 1000) as usize;
        if samples.len() >= min {
            let start = self.buffer_start;
            self.buffer_start += samples.len() as u64;
            self.queue.push_back(Utterance { samples, start, end_of_turn: true, mark: self.mark.take() });
        }
        self.finished = true;
        self.wake();
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SttEvent, Error>>> {
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Cancelled => return self.fail(Error::Cancelled),
                State::Running => {}
            }
            if let Some(inflight) = &mut self.inflight {
                let answer = match inflight.request.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(answer)) => answer,
                    Poll::Ready(Err(e)) => return self.fail(e),
                };
                let arrived = Instant::now();
                let Some(InFlight { start, len, end_of_turn, mark, .. }) = self.inflight.take() else { continue };
                // The mark ends here even when the caller said nothing the model heard.
                if let Some(mark) = mark {
                    self.latency.final_after_end_of_speech = Some(arrived.saturating_duration_since(mark));
                }
                if answer.text.is_empty() {
                    continue;
                }
                let t = Transcript {
                    text: answer.text,
                    start: self.audio_time(start),
                    end: self.audio_time(start + len),
                    confidence: answer.confidence,
                    end_of_turn,
                };
                return Poll::Ready(Some(Ok(SttEvent::Final(t))));
            }
            if let Some(u) = self.queue.pop_front() {
                match self.send(u) {
                    Ok(inflight) => self.inflight = Some(inflight),
                    Err(e) => return self.fail(e),
                }
                continue;
            }
            if self.finished {
                self.state = State::Done;
                return Poll::Ready(Some(Ok(SttEvent::Done(self.latency))));
            }
            self.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }

    fn cancel(&mut self) {
        if self.state == State::Running {
            // Dropping the request future aborts the HTTP exchange and closes its connection.
            self.inflight = None;
            self.queue.clear();
            self.buffer = Vec::new();
            self.state = State::Cancelled;
            self.wake();
        }
    }
}

/// A transcription: its text, and a confidence when the answer allows one.
#[derive(Debug, PartialEq)]
struct Answer {
    text: String,
    confidence: Option<f32>,
}

async fn transcribe(client: reqwest::Client, request: reqwest::Request, format: ResponseFormat, first_byte: Duration, idle: Duration) -> Result<Answer, Error> {
    let response = match tokio::time::timeout(first_byte, client.execute(request)).await {
        Err(_) => return Err(Error::Timeout { phase: TimeoutPhase::FirstByte, after: first_byte }),
        Ok(Err(e)) if e.is_timeout() => return Err(Error::Timeout { phase: TimeoutPhase::FirstByte, after: first_byte }),
        Ok(Err(e)) => return Err(Error::Unavailable { status: None, detail: error_chain(&e.without_url()) }),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = wire::retry_after(header("retry-after-ms").as_deref(), header(RETRY_AFTER.as_str()).as_deref(), SystemTime::now());
    let body = match tokio::time::timeout(idle, response.bytes()).await {
        Err(_) => return Err(Error::Timeout { phase: TimeoutPhase::Idle, after: idle }),
        Ok(Ok(body)) => body,
        // A body cut short still has a status worth reporting.
        Ok(Err(_)) if !status.is_success() => Default::default(),
        Ok(Err(e)) => return Err(Error::Closed { detail: error_chain(&e.without_url()) }),
    };
    if !status.is_success() {
        return Err(wire::status_error(status.as_u16(), retry_after, &body));
    }
    parse_answer(&body, format)
}

#[derive(Deserialize)]
struct Body {
    text: Option<String>,
    segments: Option<Vec<Segment>>,
}

#[derive(Deserialize)]
struct Segment {
    #[serde(default)]
    text: String,
    avg_logprob: Option<f64>,
    no_speech_prob: Option<f64>,
}

impl Segment {
    /// Whisper's own rule for a segment that is probably not speech.
    fn is_noise(&self) -> bool {
        self.no_speech_prob.is_some_and(|p| p > 0.6) && self.avg_logprob.is_some_and(|l| l < -1.0)
    }
}

/// Decodes a `json` or `verbose_json` answer.
fn parse_answer(body: &[u8], format: ResponseFormat) -> Result<Answer, Error> {
    let b: Body = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol { detail: format!("transcription answer is not JSON of the expected shape ({e}): {}", wire::body_excerpt(body)) })?;
    let Some(segments) = b.segments.filter(|_| format == ResponseFormat::VerboseJson) else {
        let text = b.text.ok_or_else(|| Error::Protocol { detail: "transcription answer has no `text`".into() })?;
        return Ok(Answer { text: text.trim().to_owned(), confidence: None });
    };
    let kept: Vec<&Segment> = segments.iter().filter(|s| !s.is_noise()).collect();
    let text = match b.text {
        Some(text) if kept.len() == segments.len() => text.trim().to_owned(),
        _ => kept.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" "),
    };
    let probs: Vec<f64> = kept.iter().filter_map(|s| s.avg_logprob).map(f64::exp).collect();
    let confidence = (!probs.is_empty()).then(|| (probs.iter().sum::<f64>() / probs.len() as f64).clamp(0.0, 1.0) as f32);
    Ok(Answer { text, confidence })
}

/// A WAV file (RIFF, PCM format 1, mono, 16-bit little-endian) of `samples` at `rate`.
fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A `multipart/form-data` body (RFC 7578): the WAV as `file`, then the text fields. Values are
/// single-line: control characters become spaces.
fn multipart(boundary: &str, wav: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wav.len() + 512);
    out.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(wav);
    for (name, value) in fields {
        let value: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        out.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes());
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// A boundary that audio bytes will not contain by chance: 128 random bits.
fn boundary() -> String {
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    format!("happ-{:016x}{:016x}", random(1), random(2))
}

/// `en` from `en-GB`: the API takes ISO 639-1.
fn iso_639_1(language: &str) -> String {
    language.split(['-', '_']).next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The keywords as a prompt, boosts (`word:2`, a Deepgram form) stripped.
fn prompt(keywords: &[String]) -> Option<String> {
    let words: Vec<&str> = keywords.iter().map(|k| crate::deepgram::strip_boost(k.trim())).filter(|k| !k.is_empty()).collect();
    (!words.is_empty()).then(|| words.join(", "))
}

/// G.711 µ-law to linear PCM (ITU-T G.711, the 14-bit value scaled to 16 bits).
fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law to linear PCM (ITU-T G.711, the 13-bit value scaled to 16 bits).
fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_decodes_per_the_tables() {
        // µ-law: 0xFF and 0x7F are the two zeros, 0x80 and 0x00 the extremes.
        assert_eq!([0xff, 0x7f, 0x80, 0x00, 0xf0, 0x70].map(ulaw_to_linear), [0, 0, 32124, -32124, 120, -120]);
        // A-law: 0xD5/0x55 the smallest steps, 0xAA/0x2A the extremes.
        assert_eq!([0xd5, 0x55, 0xaa, 0x2a, 0xc5].map(alaw_to_linear), [8, -8, 32256, -32256, 264]);
        // Both laws are monotonic over their positive codes.
        let ulaw: Vec<i16> = (0x80..=0xffu8).rev().map(ulaw_to_linear).collect();
        assert!(ulaw.windows(2).all(|w| w[0] < w[1]), "{ulaw:?}");
        let alaw: Vec<i16> = (0x80..=0xffu8).map(|c| alaw_to_linear(c ^ 0x55)).collect();
        assert!(alaw.windows(2).all(|w| w[0] < w[1]), "{alaw:?}");
    }

    #[test]
    fn wav_header() {
        let w = wav(&[1, -2, 300], 8000);
        assert_eq!(w.len(), 44 + 6);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[4], w[5], w[6], w[7]]), 42);
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 8000);
        assert_eq!(u32::from_le_bytes([w[28], w[29], w[30], w[31]]), 16000);
        assert_eq!(&w[36..40], b"data");
        assert_eq!(&w[44..], [1, 0, 0xfe, 0xff, 0x2c, 0x01]);
    }

    #[test]
    fn multipart_body() {
        let body = multipart("B0", b"RIFFxx", &[("model", "whisper-1"), ("prompt", "Acme,\r\nZoe")]);
        assert_eq!(
            String::from_utf8(body).expect("text"),
            "--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFFxx\r\n--B0\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--B0\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nAcme,  Zoe\r\n--B0--\r\n"
        );
        let (a, b) = (boundary(), boundary());
        assert!(a != b && a.len() == 37, "{a} {b}");
    }

    #[test]
    fn answers() {
        assert_eq!(parse_answer(br#"{"text":" Hello there. "}"#, ResponseFormat::Json), Ok(Answer { text: "Hello there.".into(), confidence: None }));
        let verbose = br#"{"task":"transcribe","language":"english","duration":4.2,"text":" Book a table. Thank you.","segments":[
            {"id":0,"seek":0,"start":0.0,"end":1.6,"text":" Book a table.","tokens":[1],"temperature":0.0,"avg_logprob":-0.1,"compression_ratio":0.9,"no_speech_prob":0.01},
            {"id":1,"seek":0,"start":1.6,"end":4.2,"text":" Thank you.","tokens":[2],"temperature":0.0,"avg_logprob":-1.4,"compression_ratio":0.9,"no_speech_prob":0.8}]}"#;
        let a = parse_answer(verbose, ResponseFormat::VerboseJson).expect("valid");
        assert_eq!(a.text, "Book a table.");
        assert!(a.confidence.is_some_and(|c| (c - (-0.1f32).exp()).abs() < 1e-6), "{a:?}");
        assert!(matches!(parse_answer(b"<html>", ResponseFormat::Json), Err(Error::Protocol { .. })));
        assert!(matches!(parse_answer(b"{}", ResponseFormat::Json), Err(Error::Protocol { .. })));
    }

    #[test]
    fn language_and_prompt() {
        assert_eq!(iso_639_1("en-GB"), "en");
        assert_eq!(iso_639_1("PT_br"), "pt");
        assert_eq!(prompt(&["Acme:2".into(), " ".into(), "Zoë".into()]), Some("Acme, Zoë".into()));
        assert_eq!(prompt(&[]), None);
    }
}
