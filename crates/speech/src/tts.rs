//! The text-to-speech stream: text in, sentence by sentence; audio chunks out as they are
//! synthesised.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use crate::{AudioFormat, Error};

/// Synthesised audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioChunk {
    /// The format of `data` (the one the stream was started with).
    pub format: AudioFormat,
    /// Samples on the wire: little-endian 16-bit PCM or G.711 bytes. A PCM chunk may end in the
    /// middle of a sample; the next chunk carries its other byte.
    pub data: Bytes,
}

/// Latency of a TTS stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtsLatency {
    /// From the first text pushed to the first audio byte: what the caller waits for.
    pub first_audio: Option<Duration>,
    /// From the first text pushed to the end of the audio.
    pub total: Duration,
}

/// An event of a TTS stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TtsEvent {
    /// More audio, in order.
    Audio(AudioChunk),
    /// All text was spoken (after [`TtsStream::finish`]); no event follows.
    Done(TtsLatency),
}

/// Options of a synthesis stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TtsOptions {
    /// The provider's voice name or id; its default when `None`.
    pub voice: Option<String>,
    /// BCP 47 language, for providers that need it.
    pub language: Option<String>,
}

/// A running synthesis.
pub trait TtsStream: Send {
    /// The format of the audio it produces.
    fn format(&self) -> AudioFormat;

    /// Adds text to speak, typically one sentence as the LLM completes it.
    fn push_text(&mut self, text: &str) -> Result<(), Error>;

    /// No more text: the stream ends with [`TtsEvent::Done`] after the last audio.
    fn finish(&mut self);

    /// Polls for the next event; an `Err` ends the stream.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<TtsEvent, Error>>>;

    /// Aborts synthesis at once (barge-in). The next poll gives `Err(Error::Cancelled)`, then
    /// `None`.
    fn cancel(&mut self);
}

impl dyn TtsStream + '_ {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<TtsEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }
}

/// A configured TTS provider.
pub trait TtsProvider: Send + Sync {
    /// A short name for logs and metrics, e.g. `openai`.
    fn name(&self) -> &str;

    /// The formats it can produce, preferred first.
    fn formats(&self) -> &[AudioFormat];

    /// Starts a stream producing `format` (one of [`formats`](Self::formats)).
    fn start(&self, format: AudioFormat, options: &TtsOptions) -> Result<Box<dyn TtsStream>, Error>;
}
