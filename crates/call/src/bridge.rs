//! The call bridge of one call leg, sans-IO: its [`MediaSession`], the voice detector and echo
//! guard on the caller's audio, the [`Conversation`], and the queue of synthesised speech in
//! order.
//!
//! ```text
//!  handle_rtp ─> MediaSession ─ pull_pcm ─┬─> EchoGuard ─┐
//!                                         ├─> Vad ───────┴─> Conversation ─> poll_action
//!                                         └─> poll_stt_frame (to the recogniser)     │
//!  handle_speech_audio ─> speech queue (in id order) ─> push_pcm ─> MediaSession     │
//!  pause / resume / flush  <──────────── executed here, same loop turn ──────────────┘
//!  poll_transmit ─> MediaSession ─ RTP ─> EchoGuard (what was sent, when)
//! ```
//!
//! The driver (one task per call, or one per core for many calls) owns the sockets, the clock
//! and the provider streams. After every `handle_*` call it drains [`Bridge::poll_transmit`],
//! [`Bridge::poll_stt_frame`] and [`Bridge::poll_action`], then sleeps until
//! [`Bridge::poll_timeout`]. Playback actions (pause for a barge-in, flush, resume) never reach
//! it: the bridge applies them to the media session before returning, so the next packet
//! already carries the change.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use happ_media::session::{MediaEvent, MediaSession, Transmit, mean_square};
use happ_media::vad::{Vad, VadConfig, VadError};
use happ_media::{dtmf::DtmfEvent, session::PacketKind};

use crate::ConversationConfig;
use crate::conversation::{Conversation, Frame, Providers};
use crate::echo::EchoGuard;
use crate::types::{Action, Entry, Failure, Generation, SpeechId, ToolRequest};

/// Frames kept for the recogniser when the driver falls behind (the oldest are dropped).
const STT_FRAMES: usize = 16;

/// How a bridge is set up.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Turn-taking.
    pub conversation: ConversationConfig,
    /// Providers of each kind.
    pub providers: Providers,
    /// The voice detector; its rate must be the media session's pull rate.
    pub vad: VadConfig,
    /// The apology at the push rate, synthesised ahead by the local engine (empty: silence).
    pub apology: Arc<[i16]>,
}

/// Why a bridge could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BridgeError {
    /// The voice detector refused its configuration.
    #[error("voice detector: {0}")]
    Vad(#[from] VadError),
    /// The detector's rate differs from the session's pull rate.
    #[error("the voice detector runs at {vad} Hz but the media session gives {pull} Hz")]
    Rate {
        /// The detector's rate.
        vad: u32,
        /// The pull rate.
        pull: u32,
    },
}

/// Counters of the bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Caller frames.
    pub frames: u64,
    /// Frames the detector called voice.
    pub voiced: u64,
    /// Voiced frames the echo guard took for the assistant's own echo.
    pub echo: u64,
    /// Frames for the recogniser dropped because the driver fell behind.
    pub stt_dropped: u64,
}

/// A sentence's audio on its way to the media session.
#[derive(Debug)]
struct Pending {
    id: SpeechId,
    audio: Vec<i16>,
    /// Samples of `audio` already queued in the media session.
    taken: usize,
    /// No more audio will come.
    done: bool,
}

/// The bridge of one call; see the [module docs](self).
pub struct Bridge {
    media: MediaSession,
    conversation: Conversation,
    vad: Vad,
    echo: EchoGuard,
    apology: Arc<[i16]>,
    push_rate: u32,
    frame: Box<[i16]>,
    stt: Box<[i16]>,
    stt_len: usize,
    stt_head: usize,
    stt_count: usize,
    speech: VecDeque<Pending>,
    actions: VecDeque<Action>,
    /// Media events for the driver (inactivity, source changes, digits), oldest dropped past
    /// [`MEDIA_EVENTS`].
    media_events: VecDeque<MediaEvent>,
    stats: BridgeStats,
}

/// Media events kept for the driver.
const MEDIA_EVENTS: usize = 32;

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("conversation", &self.conversation).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Bridge {
    /// A bridge around `media`, whose pull rate is the recogniser's and push rate the
    /// synthesiser's.
    pub fn new(config: BridgeConfig, media: MediaSession) -> Result<Bridge, BridgeError> {
        let pull = media.config().pull_rate;
        if config.vad.sample_rate != pull {
            return Err(BridgeError::Rate { vad: config.vad.sample_rate, pull });
        }
        let frame_len = media.pull_frame_len();
        Ok(Bridge {
            push_rate: media.config().push_rate,
            vad: Vad::new(config.vad)?,
            echo: EchoGuard::default(),
            conversation: Conversation::new(config.conversation, config.providers),
            apology: config.apology,
            frame: vec![0; frame_len].into_boxed_slice(),
            stt: vec![0; frame_len * STT_FRAMES].into_boxed_slice(),
            stt_len: frame_len,
            stt_head: 0,
            stt_count: 0,
            speech: VecDeque::new(),
            actions: VecDeque::new(),
            media_events: VecDeque::with_capacity(MEDIA_EVENTS),
            stats: BridgeStats::default(),
            media,
        })
    }

    /// The media session (for RTCP, direction changes, statistics).
    pub fn media(&mut self) -> &mut MediaSession {
        &mut self.media
    }

    /// The conversation (history, statistics).
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// The conversation so far, for an LLM request.
    pub fn history(&self) -> &[Entry] {
        self.conversation.history()
    }

    /// The counters.
    pub fn stats(&self) -> BridgeStats {
        self.stats
    }

    /// The learned echo gain of the caller's line, dB.
    pub fn echo_gain_db(&self) -> f32 {
        self.echo.gain_db()
    }

    // ---------------------------------------------------------------- media

    /// A datagram on the RTP port.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), happ_media::session::RtpDrop> {
        let r = self.media.handle_rtp(now, datagram);
        self.step(now);
        r
    }

    /// The session's timer (and the conversation's).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.media.handle_timeout(now);
        self.conversation.handle_timeout(now);
        self.step(now);
    }

    /// The next packet to send, written into `buf`; the echo guard learns what went out.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.media.poll_transmit(buf)?;
        if t.kind == PacketKind::Rtp {
            self.echo.on_sent(self.media.last_sent_power());
        }
        Some(t)
    }

    /// The next frame of the caller's audio for the recogniser (at the pull rate).
    pub fn poll_stt_frame(&mut self) -> Option<&[i16]> {
        if self.stt_count == 0 {
            return None;
        }
        let start = self.stt_head * self.stt_len;
        self.stt_head = (self.stt_head + 1) % STT_FRAMES;
        self.stt_count -= 1;
        Some(&self.stt[start..start + self.stt_len])
    }

    /// When to call [`Bridge::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.media.poll_timeout(), self.conversation.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next media event (inactivity, a source change, a digit also given to the
    /// conversation), for the driver to act on or log.
    pub fn poll_media_event(&mut self) -> Option<MediaEvent> {
        self.media_events.pop_front()
    }

    /// The next action for the driver.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---------------------------------------------------------------- events

    /// The call was answered.
    pub fn handle_answered(&mut self, now: Instant) {
        self.conversation.handle_answered(now);
        self.step(now);
    }

    /// Words from the recogniser.
    pub fn handle_transcript(&mut self, now: Instant, words: &str, is_final: bool, end_of_turn: bool) {
        self.conversation.handle_transcript(now, words, is_final, end_of_turn);
        self.step(now);
    }

    /// The recogniser failed.
    pub fn handle_stt_failed(&mut self, now: Instant, fall_back: bool) {
        self.conversation.handle_stt_failed(now, fall_back);
        self.step(now);
    }

    /// LLM text.
    pub fn handle_llm_text(&mut self, now: Instant, generation: Generation, delta: &str) {
        self.conversation.handle_llm_text(now, generation, delta);
        self.step(now);
    }

    /// An LLM tool call.
    pub fn handle_llm_tool_call(&mut self, now: Instant, generation: Generation, call: ToolRequest) {
        self.conversation.handle_llm_tool_call(now, generation, call);
        self.step(now);
    }

    /// The LLM answer is complete.
    pub fn handle_llm_done(&mut self, now: Instant, generation: Generation) {
        self.conversation.handle_llm_done(now, generation);
        self.step(now);
    }

    /// The LLM request failed.
    pub fn handle_llm_failed(&mut self, now: Instant, generation: Generation, failure: Failure) {
        self.conversation.handle_llm_failed(now, generation, failure);
        self.step(now);
    }

    /// Synthesised audio of `id`, at the push rate.
    pub fn handle_speech_audio(&mut self, now: Instant, id: SpeechId, pcm: &[i16]) {
        if let Some(p) = self.speech.iter_mut().find(|p| p.id == id && !p.done) {
            p.audio.extend_from_slice(pcm);
        }
        self.step(now);
    }

    /// All audio of `id` was given.
    pub fn handle_speech_done(&mut self, now: Instant, id: SpeechId) {
        if let Some(p) = self.speech.iter_mut().find(|p| p.id == id) {
            p.done = true;
        }
        self.step(now);
    }

    /// The synthesis of `id` failed.
    pub fn handle_speech_failed(&mut self, now: Instant, id: SpeechId, failure: Failure) {
        // The conversation decides: a retry re-issues the same id, giving up completes it.
        if let Some(p) = self.speech.iter_mut().find(|p| p.id == id) {
            p.audio.truncate(p.taken);
            p.done = true;
        }
        self.conversation.handle_speech_failed(now, id, failure);
        self.step(now);
    }

    /// A keypad digit from SIP INFO (RFC 4733 digits are read from the media session).
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        self.conversation.handle_dtmf(now, digit);
        self.step(now);
    }

    /// A tool's result.
    pub fn handle_tool_result(&mut self, now: Instant, call_id: &str, result: Result<String, String>) {
        self.conversation.handle_tool_result(now, call_id, result);
        self.step(now);
    }

    /// The chat's AI control changed.
    pub fn handle_ai_control(&mut self, now: Instant, on: bool) {
        self.conversation.handle_ai_control(now, on);
        self.step(now);
    }

    /// An operator's message to speak.
    pub fn handle_operator_message(&mut self, now: Instant, text: &str) {
        self.conversation.handle_operator_message(now, text);
        self.step(now);
    }

    /// The call ended.
    pub fn handle_call_ended(&mut self, now: Instant) {
        self.conversation.handle_played(now, self.media.played());
        self.conversation.handle_call_ended(now);
        self.step(now);
    }

    // ---------------------------------------------------------------- the work

    /// Moves audio and decisions after any input: caller frames through the detectors into the
    /// conversation, the conversation's playback actions onto the media session, synthesised
    /// speech into the playback queue.
    fn step(&mut self, now: Instant) {
        while let Some(pulled) = self.media.pull_pcm(&mut self.frame) {
            let frame = &self.frame[..pulled.len];
            let power = mean_square(frame);
            let decision = self.vad.process(frame);
            let echo = self.echo.on_heard(power);
            self.stats.frames += 1;
            if decision.voice {
                self.stats.voiced += 1;
                if echo {
                    self.stats.echo += 1;
                }
            }
            self.keep_for_stt(pulled.len);
            let frame = Frame { voice: decision.voice, voiced: decision.voiced, echo, delay: pulled.waited };
            self.conversation.handle_frame(now, frame);
        }
        while let Some(event) = self.media.poll_event() {
            if let MediaEvent::Dtmf(DtmfEvent::End { digit, .. }) = event
                && let Some(c) = digit.to_char()
            {
                self.conversation.handle_dtmf(now, c);
            }
            if self.media_events.len() == MEDIA_EVENTS {
                self.media_events.pop_front();
            }
            self.media_events.push_back(event);
        }
        // Actions may queue speech, and queued speech may end a reply: settle both. Actions
        // first: a retry of a failed sentence must re-open it before the queue moves on.
        loop {
            let mut acted = false;
            while let Some(action) = self.conversation.poll_action() {
                acted = true;
                self.act(action);
            }
            self.feed_speech(now);
            self.conversation.handle_played(now, self.media.played());
            if !acted && self.conversation_idle() {
                break;
            }
        }
    }

    /// No action is waiting in the conversation.
    fn conversation_idle(&self) -> bool {
        !self.conversation.has_actions()
    }

    fn keep_for_stt(&mut self, len: usize) {
        if self.stt_count == STT_FRAMES {
            self.stt_head = (self.stt_head + 1) % STT_FRAMES;
            self.stt_count -= 1;
            self.stats.stt_dropped += 1;
        }
        let slot = (self.stt_head + self.stt_count) % STT_FRAMES;
        let start = slot * self.stt_len;
        self.stt[start..start + len].copy_from_slice(&self.frame[..len]);
        self.stt[start + len..start + self.stt_len].fill(0);
        self.stt_count += 1;
    }

    /// Applies a playback action here; hands the others to the driver.
    fn act(&mut self, action: Action) {
        match action {
            Action::PausePlayback => self.media.pause(),
            Action::ResumePlayback => {
                // Nothing the caller said followed: those loud frames were our own echo.
                self.echo.learn_false_interruption();
                self.media.resume();
            }
            Action::FlushPlayback => {
                self.media.flush();
                self.speech.clear();
                self.conversation.handle_playout_reset(self.media.played() + self.media.queued());
            }
            Action::CancelSpeech(id) => {
                self.speech.retain(|p| p.id != id);
                self.actions.push_back(Action::CancelSpeech(id));
            }
            Action::Speak { id, text, provider, canned } => {
                match self.speech.iter_mut().find(|p| p.id == id) {
                    Some(p) => {
                        p.audio.truncate(p.taken);
                        p.done = false;
                    }
                    None => {
                        // In id order: a retry of an earlier sentence goes before later ones.
                        let at = self.speech.iter().position(|p| p.id > id).unwrap_or(self.speech.len());
                        self.speech.insert(at, Pending { id, audio: Vec::new(), taken: 0, done: false });
                    }
                }
                if canned && let Some(p) = self.speech.iter_mut().find(|p| p.id == id) {
                    p.audio.extend_from_slice(&self.apology);
                    p.done = true;
                }
                // The driver synthesises what is not canned, and logs the rest.
                self.actions.push_back(Action::Speak { id, text, provider, canned });
            }
            other => self.actions.push_back(other),
        }
    }

    /// Queues synthesised audio in id order, as far as the playback queue takes it.
    fn feed_speech(&mut self, now: Instant) {
        while let Some(head) = self.speech.front_mut() {
            if head.taken < head.audio.len() {
                let taken = self.media.push_pcm(&head.audio[head.taken..]);
                if taken > 0 {
                    head.taken += taken;
                    let duration = Duration::from_nanos(taken as u64 * 1_000_000_000 / u64::from(self.push_rate));
                    let id = head.id;
                    self.conversation.handle_speech_audio(now, id, duration);
                }
                let Some(head) = self.speech.front() else { break };
                if head.taken < head.audio.len() {
                    // The playback queue is full: the rest waits for the next turn.
                    break;
                }
            }
            let Some(head) = self.speech.front() else { break };
            if !head.done {
                break;
            }
            let id = head.id;
            self.speech.pop_front();
            self.conversation.handle_speech_done(now, id);
        }
    }
}
