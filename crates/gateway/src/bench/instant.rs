//! Zero-delay providers: a recogniser, an LLM and a synthesiser that answer from the very poll
//! that follows the request, so that what a call's turn takes beyond the endpointing delay is
//! the gateway's own work.
//!
//! - [`InstantStt`]: ignores the audio; when the bridge marks the end of speech, the next poll
//!   gives one final transcript, [`CALLER_WORDS`], with the recogniser's end-of-turn verdict.
//! - [`InstantLlm`]: every request is answered with [`ANSWER`], in one text delta, then done.
//! - [`InstantTts`]: the audio of each text is a tone at 8 kHz, [`MS_PER_CHAR`] ms per
//!   character, whose loudness moves like syllables so that a voice detector hears speech; it is
//!   computed once and every stream hands out a slice of it in one chunk.
//!
//! Each stream changes state only through `&mut self` calls made by the task that polls it, and
//! that task polls again after each of them (the call's media loop does): so `Pending` needs no
//! waker.

use std::f64::consts::PI;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use happ_speech::{
    AudioChunk, AudioFormat, ChatRequest, Error, FinishReason, Frame, LlmEvent, LlmLatency, LlmProvider, LlmStream, LlmSummary, SttEvent, SttLatency,
    SttOptions, SttProvider, SttSession, Transcript, TtsEvent, TtsLatency, TtsOptions, TtsProvider, TtsStream,
};

/// What the recogniser "hears" at each end of speech.
pub const CALLER_WORDS: &str = "Can you help me with my order?";

/// What the LLM answers: two short sentences (two synthesis streams).
pub const ANSWER: &str = "Sure. Here it is.";

/// Milliseconds of tone per character of synthesised text.
pub const MS_PER_CHAR: usize = 60;

/// Samples per millisecond at 8 kHz.
const PER_MS: usize = 8;

/// The longest synthesis, in characters: longer texts are cut (a benchmark answers briefly).
const MAX_CHARS: usize = 200;

// ---------------------------------------------------------------- recognition

/// The zero-delay recogniser.
pub struct InstantStt;

/// The formats a telephone-grade recogniser takes: the call's own G.711, or 8 kHz PCM.
const STT_FORMATS: [AudioFormat; 3] = [AudioFormat::ALAW_8K, AudioFormat::MULAW_8K, AudioFormat::PCM_8K];

impl SttProvider for InstantStt {
    fn name(&self) -> &str {
        "instant"
    }

    fn formats(&self) -> &[AudioFormat] {
        &STT_FORMATS
    }

    fn start(&self, format: AudioFormat, _options: &SttOptions) -> Result<Box<dyn SttSession>, Error> {
        Ok(Box::new(InstantSttSession { format, state: SttState::Listening, samples: 0 }))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SttState {
    Listening,
    /// A final transcript is due at the next poll.
    Final,
    /// `finish` was called: `Done` is due.
    Finishing,
    Cancelled,
    Over,
}

struct InstantSttSession {
    format: AudioFormat,
    state: SttState,
    /// Samples pushed so far (the transcript's end).
    samples: u64,
}

impl SttSession for InstantSttSession {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        self.samples += match frame {
            Frame::Pcm(pcm) => pcm.len(),
            Frame::G711(bytes) => bytes.len(),
        } as u64;
        Ok(())
    }

    fn end_of_speech(&mut self) {
        if self.state == SttState::Listening {
            self.state = SttState::Final;
        }
    }

    fn finish(&mut self) {
        if matches!(self.state, SttState::Listening | SttState::Final) {
            self.state = SttState::Finishing;
        }
    }

    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Result<SttEvent, Error>>> {
        match self.state {
            SttState::Listening => Poll::Pending,
            SttState::Final => {
                self.state = SttState::Listening;
                let end = Duration::from_micros(self.samples * 1_000_000 / u64::from(self.format.sample_rate));
                let transcript = Transcript { text: CALLER_WORDS.into(), start: Duration::ZERO, end, confidence: Some(1.0), end_of_turn: true };
                Poll::Ready(Some(Ok(SttEvent::Final(transcript))))
            }
            SttState::Finishing => {
                self.state = SttState::Over;
                Poll::Ready(Some(Ok(SttEvent::Done(SttLatency { first_partial: None, final_after_end_of_speech: Some(Duration::ZERO) }))))
            }
            SttState::Cancelled => {
                self.state = SttState::Over;
                Poll::Ready(Some(Err(Error::Cancelled)))
            }
            SttState::Over => Poll::Ready(None),
        }
    }

    fn cancel(&mut self) {
        if self.state != SttState::Over {
            self.state = SttState::Cancelled;
        }
    }
}

// ---------------------------------------------------------------- the LLM

/// The zero-delay LLM.
pub struct InstantLlm;

impl LlmProvider for InstantLlm {
    fn name(&self) -> &str {
        "instant"
    }

    fn chat(&self, _request: ChatRequest) -> Result<Box<dyn LlmStream>, Error> {
        Ok(Box::new(InstantLlmStream { next: 0 }))
    }
}

struct InstantLlmStream {
    /// 0: the text is due, 1: done is due, 2: over, 3: cancelled.
    next: u8,
}

impl LlmStream for InstantLlmStream {
    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Result<LlmEvent, Error>>> {
        let event = match self.next {
            0 => Some(Ok(LlmEvent::Text(ANSWER.into()))),
            1 => Some(Ok(LlmEvent::Done(LlmSummary {
                finish: FinishReason::Stop,
                latency: LlmLatency { first_byte: Some(Duration::ZERO), first_token: Some(Duration::ZERO), total: Duration::ZERO },
                chunks: 1,
            }))),
            3 => Some(Err(Error::Cancelled)),
            _ => None,
        };
        self.next = match self.next {
            0 => 1,
            _ => 2,
        };
        Poll::Ready(event)
    }

    fn cancel(&mut self) {
        if self.next < 2 {
            self.next = 3;
        }
    }
}

// ---------------------------------------------------------------- speech

/// The zero-delay synthesiser: a syllable-like tone, [`MS_PER_CHAR`] ms per character.
pub struct InstantTts {
    /// [`MAX_CHARS`] characters of tone, 16-bit little-endian PCM at 8 kHz.
    tone: Bytes,
}

impl InstantTts {
    /// The synthesiser, with its tone computed.
    pub fn new() -> InstantTts {
        let samples = MAX_CHARS * MS_PER_CHAR * PER_MS;
        let mut bytes = Vec::with_capacity(samples * 2);
        for i in 0..samples {
            let t = i as f64 / 8_000.0;
            // A 220 Hz tone with its 3rd harmonic, its loudness moving at 4 Hz over about 10 dB,
            // never below 30 % so that every packet of it is voiced.
            let envelope = 0.3 + 0.7 * (2.0 * PI * 4.0 * t).sin().abs();
            let wave = (2.0 * PI * 220.0 * t).sin() + 0.3 * (2.0 * PI * 660.0 * t).sin();
            let sample = (7_000.0 * envelope * wave) as i16;
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
        InstantTts { tone: Bytes::from(bytes) }
    }
}

impl Default for InstantTts {
    fn default() -> Self {
        Self::new()
    }
}

const TTS_FORMATS: [AudioFormat; 1] = [AudioFormat::PCM_8K];

impl TtsProvider for InstantTts {
    fn name(&self) -> &str {
        "instant"
    }

    fn formats(&self) -> &[AudioFormat] {
        &TTS_FORMATS
    }

    fn start(&self, _format: AudioFormat, _options: &TtsOptions) -> Result<Box<dyn TtsStream>, Error> {
        Ok(Box::new(InstantTtsStream { tone: self.tone.clone(), chars: 0, sent: 0, finished: false, state: TtsState::Running }))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum TtsState {
    Running,
    Cancelled,
    Over,
}

struct InstantTtsStream {
    tone: Bytes,
    /// Characters of text pushed.
    chars: usize,
    /// Characters whose audio was given.
    sent: usize,
    finished: bool,
    state: TtsState,
}

impl TtsStream for InstantTtsStream {
    fn format(&self) -> AudioFormat {
        AudioFormat::PCM_8K
    }

    fn push_text(&mut self, text: &str) -> Result<(), Error> {
        self.chars = (self.chars + text.chars().count()).min(MAX_CHARS);
        Ok(())
    }

    fn finish(&mut self) {
        self.finished = true;
    }

    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Result<TtsEvent, Error>>> {
        match self.state {
            TtsState::Cancelled => {
                self.state = TtsState::Over;
                return Poll::Ready(Some(Err(Error::Cancelled)));
            }
            TtsState::Over => return Poll::Ready(None),
            TtsState::Running => {}
        }
        if self.sent < self.chars {
            let bytes_per_char = MS_PER_CHAR * PER_MS * 2;
            let data = self.tone.slice(self.sent * bytes_per_char..self.chars * bytes_per_char);
            self.sent = self.chars;
            return Poll::Ready(Some(Ok(TtsEvent::Audio(AudioChunk { format: AudioFormat::PCM_8K, data }))));
        }
        if self.finished {
            self.state = TtsState::Over;
            let total = Duration::from_millis((self.chars * MS_PER_CHAR) as u64);
            return Poll::Ready(Some(Ok(TtsEvent::Done(TtsLatency { first_audio: Some(Duration::ZERO), total }))));
        }
        Poll::Pending
    }

    fn cancel(&mut self) {
        if self.state == TtsState::Running {
            self.state = TtsState::Cancelled;
        }
    }
}

/// Shared handles on the three providers.
pub fn providers() -> (Arc<dyn SttProvider>, Arc<dyn LlmProvider>, Arc<dyn TtsProvider>) {
    (Arc::new(InstantStt), Arc::new(InstantLlm), Arc::new(InstantTts::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        let waker = std::task::Waker::noop();
        f(&mut Context::from_waker(waker))
    }

    #[test]
    fn the_recogniser_answers_each_end_of_speech_once() {
        let mut s = InstantStt.start(AudioFormat::ALAW_8K, &SttOptions::default()).expect("a session");
        s.push(Frame::G711(&[0xD5; 160])).expect("taken");
        assert!(poll(|cx| s.poll_event(cx)).is_pending(), "nothing before the end of speech");
        s.end_of_speech();
        match poll(|cx| s.poll_event(cx)) {
            Poll::Ready(Some(Ok(SttEvent::Final(t)))) => {
                assert_eq!(t.text, CALLER_WORDS);
                assert!(t.end_of_turn);
                assert_eq!(t.end, Duration::from_millis(20));
            }
            other => panic!("expected a final transcript, got {other:?}"),
        }
        assert!(poll(|cx| s.poll_event(cx)).is_pending());
        s.cancel();
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(Some(Err(Error::Cancelled)))));
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(None)));
    }

    #[test]
    fn the_llm_answers_at_once() {
        let mut s = InstantLlm.chat(ChatRequest::new("m", Vec::new())).expect("a stream");
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(Some(Ok(LlmEvent::Text(t)))) if t == ANSWER));
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(Some(Ok(LlmEvent::Done(_))))));
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(None)));
    }

    #[test]
    fn the_synthesiser_gives_loud_audio_for_each_character_at_once() {
        let tts = InstantTts::new();
        let mut s = tts.start(AudioFormat::PCM_8K, &TtsOptions::default()).expect("a stream");
        assert!(poll(|cx| s.poll_event(cx)).is_pending(), "no text yet");
        s.push_text("Sure.").expect("taken");
        s.finish();
        let Poll::Ready(Some(Ok(TtsEvent::Audio(chunk)))) = poll(|cx| s.poll_event(cx)) else { panic!("audio first") };
        assert_eq!(chunk.data.len(), 5 * MS_PER_CHAR * PER_MS * 2);
        let pcm: Vec<i16> = chunk.data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        for frame in pcm.chunks(160) {
            let mean_square = frame.iter().map(|&s| i64::from(s).pow(2)).sum::<i64>() / frame.len() as i64;
            assert!(mean_square > 1_000 * 1_000, "every 20 ms of it is loud: {mean_square}");
        }
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(Some(Ok(TtsEvent::Done(_))))));
        assert!(matches!(poll(|cx| s.poll_event(cx)), Poll::Ready(None)));
    }
}
