//! The speech and LLM adapter layer of the call bridge: streaming speech-to-text, text-to-speech
//! and LLM chat behind small traits, and the providers that implement them.
//!
//! Adapters see PCM frames (or G.711 bytes, when a provider takes them) and text only, never SIP or
//! RTP types; the bridge moves audio between the call's media session and these streams.
//!
//! - [`audio`]: [`AudioFormat`] and [`negotiate`], so the bridge skips resampling and transcoding
//!   whenever a provider accepts or produces what the call already carries.
//! - [`stt`], [`tts`], [`llm`]: the traits ([`SttSession`], [`TtsStream`], [`LlmStream`] and their
//!   providers) and the events they give, each ending with a latency record.
//! - [`Error`]: failures by blame, with what the bridge should do about them (retry, fall back to
//!   another provider, or apologise to the caller).
//! - [`sse`]: an incremental, sans-IO Server-Sent Events parser.
//! - [`deepgram`]: Deepgram live transcription over a WebSocket.
//! - [`openai`]: OpenAI-compatible chat completions streamed over SSE, with tool calls; its
//!   `base_url` makes it serve OpenAI, Ollama, vLLM, Groq and others; OpenAI-compatible
//!   transcription per utterance (OpenAI, Groq, self-hosted Whisper servers); and OpenAI-compatible
//!   speech (`/audio/speech`), streamed as 24 kHz PCM.
//! - [`elevenlabs`]: ElevenLabs streaming TTS over its `stream-input` WebSocket.
//! - [`local`]: offline providers that need no account: espeak-ng speech, pocketsphinx
//!   recognition on call audio, and an LLM that answers from the assistant's knowledge entries.
//!
//! # Why poll-based, object-safe traits
//!
//! The provider of each assistant is picked at run time from configuration (`llmProvider`,
//! `[speech] stt = "deepgram"`), so the bridge holds `Box<dyn LlmProvider>` and `Box<dyn LlmStream>`.
//! `async fn` in traits is not object-safe, and boxing a future on every event (what
//! `async-trait` does) costs an allocation per text delta or audio chunk. The streams therefore
//! expose `poll_event(&mut self, cx)` — the shape of `futures::Stream`, object-safe and
//! allocation-free — plus an `async fn next_event` on the trait object for convenience. Starting a
//! stream is synchronous and cheap: the request goes out when the stream is first polled, so
//! every wait (connect, first byte, idle) is inside `poll_event` under the stream's timeouts.
//!
//! Cancelling ([`LlmStream::cancel`] and friends) or dropping a stream aborts its request at once:
//! barge-in must not leave a provider generating into the void.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audio;
pub mod deepgram;
pub mod elevenlabs;
mod error;
pub mod llm;
pub mod local;
pub mod openai;
pub mod sse;
pub mod stt;
pub mod tts;
mod ws;

pub use audio::{AudioFormat, Conversion, Encoding, negotiate};
pub use error::{Error, TimeoutPhase};
pub use happ_client::Secret;
pub use llm::{ChatRequest, FinishReason, LlmEvent, LlmLatency, LlmProvider, LlmStream, LlmSummary, Message, Role, ToolCall, ToolDef};
pub use stt::{Frame, SttEvent, SttLatency, SttOptions, SttProvider, SttSession, Transcript};
pub use tts::{AudioChunk, TtsEvent, TtsLatency, TtsOptions, TtsProvider, TtsStream};
