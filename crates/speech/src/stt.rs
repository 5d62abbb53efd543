//! The streaming speech-to-text session: PCM (or G.711) frames in, partial and final transcripts
//! out.

use std::task::{Context, Poll};
use std::time::Duration;

use crate::{AudioFormat, Error};

/// A frame of call audio, in the format the session was started with.
#[derive(Clone, Copy, Debug)]
pub enum Frame<'a> {
    /// Linear PCM samples (8 or 16 kHz).
    Pcm(&'a [i16]),
    /// G.711 bytes, passed through untouched when the provider accepts them.
    G711(&'a [u8]),
}

/// A transcript of a stretch of the caller's audio.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The words.
    pub text: String,
    /// Where the stretch starts, in audio time from the session's first frame.
    pub start: Duration,
    /// Where it ends, in audio time.
    pub end: Duration,
    /// The provider's confidence in `[0, 1]`, if it gives one.
    pub confidence: Option<f32>,
    /// The provider's endpointing says the caller finished their turn (finals only).
    pub end_of_turn: bool,
}

/// Latency of an STT session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SttLatency {
    /// From the first frame pushed to the first partial transcript.
    pub first_partial: Option<Duration>,
    /// From the last [`SttSession::end_of_speech`] mark to the final transcript that followed it:
    /// the part of the turn gap the recogniser adds.
    pub final_after_end_of_speech: Option<Duration>,
}

/// An event of an STT session.
#[derive(Clone, Debug, PartialEq)]
pub enum SttEvent {
    /// A hypothesis that may still change.
    Partial(Transcript),
    /// A settled transcript of its stretch.
    Final(Transcript),
    /// The session is over (after [`SttSession::finish`]); no event follows.
    Done(SttLatency),
}

/// Options of a recognition session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SttOptions {
    /// BCP 47 language, e.g. `en-GB`; the provider's default when `None`.
    pub language: Option<String>,
    /// Words and phrases to favour (names, products from the assistant's knowledge).
    pub keywords: Vec<String>,
}

/// A running recognition session. Pushing never waits: providers buffer or send in the
/// background, and a full buffer is an error, not back-pressure, because call audio cannot wait.
pub trait SttSession: Send {
    /// The format frames must be in.
    fn format(&self) -> AudioFormat;

    /// Adds a frame of audio.
    fn push(&mut self, frame: Frame<'_>) -> Result<(), Error>;

    /// Marks the end of speech as the bridge's VAD saw it, for the latency of the next final.
    fn end_of_speech(&mut self);

    /// No more audio: the provider finishes its transcripts and the stream ends with
    /// [`SttEvent::Done`].
    fn finish(&mut self);

    /// Polls for the next event; an `Err` ends the session.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SttEvent, Error>>>;

    /// Aborts the session at once. The next poll gives `Err(Error::Cancelled)`, then `None`.
    fn cancel(&mut self);
}

impl dyn SttSession + '_ {
    /// The next event: `None` once the session is over.
    pub async fn next_event(&mut self) -> Option<Result<SttEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }
}

/// A configured STT provider.
pub trait SttProvider: Send + Sync {
    /// A short name for logs and metrics, e.g. `deepgram`.
    fn name(&self) -> &str;

    /// The formats it accepts, preferred first; the bridge picks one with
    /// [`negotiate`](crate::negotiate).
    fn formats(&self) -> &[AudioFormat];

    /// Starts a session taking `format` (one of [`formats`](Self::formats)).
    fn start(&self, format: AudioFormat, options: &SttOptions) -> Result<Box<dyn SttSession>, Error>;
}
