//! The driver of one assistant call, inside the call's media task: it owns the call's provider
//! streams (one recognition session, at most one LLM request, a synthesis stream per sentence)
//! and moves their events into the sans-IO [`Bridge`], and the bridge's actions out to them.
//!
//! It stays thin on purpose: every decision (when a turn ends, a barge-in, a fallback) is the
//! bridge's; the driver only starts, feeds, polls and cancels streams, so it can move to a
//! per-core worker that serves many calls.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use happ_call::{Action, Bridge, BridgeConfig, Entry, Failure, Generation, SpeechId, ToolRequest, TurnLatency};
use happ_media::dtmf::Digit;
use happ_media::session::{MediaSession, SessionConfig};
use happ_media::vad::VadConfig;
use happ_speech::{
    AudioFormat, ChatRequest, Encoding, Error, Frame, LlmEvent, LlmStream, SttEvent, SttOptions, SttSession, TtsEvent, TtsOptions, TtsStream, negotiate,
};
use tracing::{debug, info, warn};

use super::format::{ChunkDecoder, law};
use super::{Assistant, Engines};

/// What the conversation should do about `e`: retry at once only a transient failure that asks
/// for no wait longer than a second (a caller cannot wait out a rate limit).
fn failure(e: &Error) -> Failure {
    Failure { fall_back: e.should_fall_back(), retry: e.is_retryable() && e.retry_after().is_none_or(|d| d <= Duration::from_secs(1)) }
}

/// Provider events taken at most per turn of the media loop by [`CallDriver::settle`].
const SETTLE_EVENTS: usize = 64;

/// Restarts of the same recogniser after a transient failure before the next one is tried.
const STT_RETRIES: u32 = 2;

/// What the call tells the SIP task.
#[derive(Debug, Clone, PartialEq)]
pub enum CallNote {
    /// A transcript entry (mirror it, keep it with the call).
    Entry(Entry),
    /// An answer's latencies.
    Latency(TurnLatency),
    /// The chat leaves AI control (the assistant handed off).
    AiControl(bool),
    /// End the call.
    Hangup(String),
    /// The conversation is over: its counters.
    Over(happ_call::ConversationStats),
    /// A provider failed (for the log and the metrics): its kind, name and the error.
    ProviderFailed {
        /// `stt`, `llm` or `tts`.
        kind: &'static str,
        /// The provider's name.
        provider: String,
        /// What went wrong.
        error: String,
    },
}

/// An event of one of the call's provider streams.
pub enum ProviderEvent {
    /// From the recogniser.
    Stt(Option<Result<SttEvent, Error>>),
    /// From the LLM request of a generation.
    Llm(Generation, Option<Result<LlmEvent, Error>>),
    /// From the synthesis of a sentence.
    Tts(SpeechId, Option<Result<TtsEvent, Error>>),
}

struct Speech {
    id: SpeechId,
    provider: usize,
    stream: Box<dyn TtsStream>,
    decoder: ChunkDecoder,
}

/// The driver of one call; see the [module docs](self).
pub struct CallDriver {
    bridge: Bridge,
    engines: Arc<Engines>,
    assistant: Arc<Assistant>,
    stt_format: AudioFormat,
    stt: Option<Box<dyn SttSession>>,
    stt_provider: usize,
    stt_retries: u32,
    coded: Vec<u8>,
    llm: Option<(Generation, usize, Box<dyn LlmStream>)>,
    speech: Vec<Speech>,
    push_rate: u32,
    notes: VecDeque<CallNote>,
    ended: bool,
    /// Playback was paused for a barge-in at the last look (for the log).
    paused: bool,
}

impl CallDriver {
    /// A driver for a call whose media is `session` (its pull and push rates are set here from
    /// the providers' negotiated formats), starting at `now`.
    pub fn new(engines: Arc<Engines>, assistant: Arc<Assistant>, mut session: SessionConfig, now: Instant) -> Result<CallDriver, String> {
        let call = match session.law {
            happ_media::Law::Ulaw => AudioFormat::MULAW_8K,
            happ_media::Law::Alaw => AudioFormat::ALAW_8K,
        };
        let stt = engines.stt.first().ok_or("no speech-to-text provider")?;
        let tts = engines.tts.first().ok_or("no text-to-speech provider")?;
        let stt_format = negotiate(call, stt.formats()).ok_or_else(|| format!("{} declares no audio format", stt.name()))?.format;
        let tts_format = negotiate(call, tts.formats()).ok_or_else(|| format!("{} declares no audio format", tts.name()))?.format;
        // The recogniser's rate is the pull rate (G.711 is pulled as 8 kHz PCM and re-encoded,
        // which gives back the received bytes); the synthesiser's is the push rate.
        session.pull_rate = stt_format.sample_rate;
        session.push_rate = tts_format.sample_rate;
        let media = MediaSession::new(session, now).map_err(|e| format!("media session: {e}"))?;
        let push_rate = media.config().push_rate;
        let apology = if push_rate == 8_000 || engines.apology.is_empty() {
            engines.apology.clone()
        } else {
            let mut decoder = ChunkDecoder::new(AudioFormat::PCM_8K, push_rate)?;
            let bytes: Vec<u8> = engines.apology.iter().flat_map(|s| s.to_le_bytes()).collect();
            Arc::from(decoder.decode(&bytes))
        };
        let config = BridgeConfig {
            conversation: assistant.turns.clone(),
            providers: happ_call::Providers { stt: engines.stt.len(), llm: assistant.llms.len(), tts: engines.tts.len() },
            vad: VadConfig::new(stt_format.sample_rate),
            apology,
        };
        let bridge = Bridge::new(config, media).map_err(|e| e.to_string())?;
        info!(
            stt = stt.name(),
            stt_format = ?stt_format,
            tts = tts.name(),
            tts_format = ?tts_format,
            llm = assistant.llms.first().map(|(p, m)| format!("{}:{m}", p.name())).unwrap_or_default(),
            "assistant call set up"
        );
        Ok(CallDriver {
            bridge,
            engines,
            assistant,
            stt_format,
            stt: None,
            stt_provider: 0,
            stt_retries: 0,
            coded: vec![0; 640],
            llm: None,
            speech: Vec::new(),
            push_rate,
            notes: VecDeque::new(),
            ended: false,
            paused: false,
        })
    }

    /// The bridge, for the media: RTP in, packets out, timers.
    pub fn bridge(&mut self) -> &mut Bridge {
        &mut self.bridge
    }

    /// The next note for the SIP task.
    pub fn poll_note(&mut self) -> Option<CallNote> {
        self.notes.pop_front()
    }

    /// The next event of any of the call's provider streams.
    pub fn poll_provider(&mut self, cx: &mut Context<'_>) -> Poll<ProviderEvent> {
        if let Some(stt) = &mut self.stt
            && let Poll::Ready(e) = stt.poll_event(cx)
        {
            return Poll::Ready(ProviderEvent::Stt(e));
        }
        if let Some((generation, _, llm)) = &mut self.llm
            && let Poll::Ready(e) = llm.poll_event(cx)
        {
            return Poll::Ready(ProviderEvent::Llm(*generation, e));
        }
        for s in &mut self.speech {
            if let Poll::Ready(e) = s.stream.poll_event(cx) {
                return Poll::Ready(ProviderEvent::Tts(s.id, e));
            }
        }
        Poll::Pending
    }

    /// The call was answered: the conversation starts.
    pub fn answered(&mut self, now: Instant) {
        self.bridge.handle_answered(now);
        self.after(now);
    }

    /// A DTMF digit from SIP INFO.
    pub fn dtmf(&mut self, now: Instant, digit: char) {
        self.bridge.handle_dtmf(now, digit);
        self.after(now);
    }

    /// The call is over: what was heard is committed, every stream cancelled.
    pub fn ended(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.bridge.handle_call_ended(now);
        self.after(now);
        self.ended = true;
        let (conversation, media) = (self.bridge.conversation().stats(), self.bridge.stats());
        info!(
            turns = conversation.turns,
            interruptions = conversation.interruptions,
            false_interruptions = conversation.false_interruptions,
            backchannels = conversation.backchannels,
            echoes = conversation.echoes,
            fallbacks = conversation.fallbacks,
            apologies = conversation.apologies,
            voiced_frames = media.voiced,
            echo_frames = media.echo,
            echo_gain_db = self.bridge.echo_gain_db(),
            "conversation over"
        );
        self.notes.push_back(CallNote::Over(conversation));
        if let Some(mut stt) = self.stt.take() {
            stt.cancel();
        }
        if let Some((_, _, mut llm)) = self.llm.take() {
            llm.cancel();
        }
        for mut s in self.speech.drain(..) {
            s.stream.cancel();
        }
    }

    /// Takes the provider events that are ready now, without waiting (at most a bounded number,
    /// so a chatty stream cannot hold the media loop): what an action just started may already
    /// have answered (a local or fast provider), and its audio then goes out with the packet
    /// about to be sent, not one packet later. The streams are polled again with the task's own
    /// waker at the next turn of its loop.
    pub fn settle(&mut self, now: Instant) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..SETTLE_EVENTS {
            match self.poll_provider(&mut cx) {
                Poll::Ready(event) => self.handle_provider(now, event),
                Poll::Pending => return,
            }
        }
    }

    /// Takes a provider event.
    pub fn handle_provider(&mut self, now: Instant, event: ProviderEvent) {
        match event {
            ProviderEvent::Stt(e) => self.stt_event(now, e),
            ProviderEvent::Llm(generation, e) => self.llm_event(now, generation, e),
            ProviderEvent::Tts(id, e) => self.tts_event(now, id, e),
        }
        self.after(now);
    }

    /// Moves what the bridge produced after any input: the caller's frames to the recogniser,
    /// its actions to the streams and the notes.
    pub fn after(&mut self, now: Instant) {
        while let Some(frame) = self.bridge.poll_stt_frame() {
            let Some(stt) = &mut self.stt else { continue };
            let pushed = match law(self.stt_format) {
                None => stt.push(Frame::Pcm(frame)),
                Some(law) => {
                    let n = frame.len().min(self.coded.len());
                    let n = law.encode(&frame[..n], &mut self.coded[..n]);
                    stt.push(Frame::G711(&self.coded[..n]))
                }
            };
            if let Err(e) = pushed {
                warn!(error = %e, "speech recognition refused audio");
                self.stt = None;
                let fall_back = e.should_fall_back();
                self.provider_failed("stt", self.stt_provider, &e);
                self.bridge.handle_stt_failed(now, fall_back);
                break;
            }
        }
        while let Some(action) = self.bridge.poll_action() {
            if self.ended {
                continue;
            }
            self.act(now, action);
        }
        let paused = self.bridge.media().paused();
        if paused != self.paused {
            self.paused = paused;
            debug!(paused, echo_gain_db = self.bridge.echo_gain_db(), "playback {} for a barge-in", if paused { "paused" } else { "resumed" });
        }
    }

    fn act(&mut self, now: Instant, action: Action) {
        match action {
            Action::StartStt { provider } => self.start_stt(now, provider),
            Action::EndOfSpeech => {
                if let Some(stt) = &mut self.stt {
                    stt.end_of_speech();
                }
            }
            Action::StartLlm { generation, provider } => self.start_llm(now, generation, provider),
            Action::CancelLlm(generation) => {
                if self.llm.as_ref().is_some_and(|(g, _, _)| *g == generation)
                    && let Some((_, _, mut llm)) = self.llm.take()
                {
                    llm.cancel();
                }
            }
            Action::Speak { id, text, provider, canned } => {
                if canned {
                    info!(text = %text, "apologising: no provider could answer");
                } else {
                    self.start_speech(now, id, &text, provider);
                }
            }
            Action::CancelSpeech(id) => {
                if let Some(i) = self.speech.iter().position(|s| s.id == id) {
                    self.speech.remove(i).stream.cancel();
                }
            }
            Action::CallTool(call) => {
                let result = self.tool(&call);
                self.bridge.handle_tool_result(now, &call.id, result);
            }
            Action::Commit(entry) => self.notes.push_back(CallNote::Entry(entry)),
            Action::Latency(latency) => self.notes.push_back(CallNote::Latency(latency)),
            Action::SetAiControl(on) => self.notes.push_back(CallNote::AiControl(on)),
            Action::Hangup { reason } => self.notes.push_back(CallNote::Hangup(reason)),
            // The bridge applies these to the media session itself.
            Action::PausePlayback | Action::ResumePlayback | Action::FlushPlayback => {}
        }
    }

    fn provider_failed(&mut self, kind: &'static str, index: usize, error: &Error) {
        let provider = match kind {
            "stt" => self.engines.stt.get(index).map(|p| p.name().to_owned()),
            "tts" => self.engines.tts.get(index).map(|p| p.name().to_owned()),
            _ => self.assistant.llms.get(index).map(|(p, _)| p.name().to_owned()),
        }
        .unwrap_or_default();
        warn!(kind, provider = %provider, error = %error, "provider failed");
        self.notes.push_back(CallNote::ProviderFailed { kind, provider, error: error.to_string() });
    }

    // ---------------------------------------------------------------- recognition

    fn start_stt(&mut self, now: Instant, provider: usize) {
        if let Some(mut old) = self.stt.take() {
            old.cancel();
        }
        if provider != self.stt_provider {
            self.stt_retries = 0;
        }
        self.stt_provider = provider;
        let Some(engine) = self.engines.stt.get(provider).cloned() else {
            self.bridge.handle_stt_failed(now, false);
            return;
        };
        // A fallback may take another format than the first: the pull rate is fixed for the
        // call, so only formats at that rate will do.
        let call = AudioFormat { encoding: self.stt_format.encoding, sample_rate: self.stt_format.sample_rate };
        let format = negotiate(call, engine.formats()).map(|c| c.format).filter(|f| f.sample_rate == call.sample_rate);
        let Some(format) = format else {
            warn!(provider = engine.name(), rate = call.sample_rate, "recogniser cannot take the call's rate");
            self.bridge.handle_stt_failed(now, true);
            return;
        };
        self.stt_format = format;
        // The local recogniser's vocabulary is built from whole phrases; cloud ones boost a few
        // terms.
        let keywords = if engine.name() == "pocketsphinx" {
            self.assistant.keywords.iter().chain(&self.assistant.phrases).cloned().collect()
        } else {
            self.assistant.keywords.clone()
        };
        let options = SttOptions { language: Some(self.assistant.config.language.clone()).filter(|l| !l.is_empty()), keywords };
        match engine.start(format, &options) {
            Ok(session) => self.stt = Some(session),
            Err(e) => {
                self.provider_failed("stt", provider, &e);
                self.bridge.handle_stt_failed(now, e.should_fall_back());
            }
        }
    }

    fn stt_event(&mut self, now: Instant, event: Option<Result<SttEvent, Error>>) {
        match event {
            Some(Ok(SttEvent::Partial(t))) => self.bridge.handle_transcript(now, &t.text, false, false),
            Some(Ok(SttEvent::Final(t))) => {
                debug!(text = %t.text, end_of_turn = t.end_of_turn, "caller said");
                self.bridge.handle_transcript(now, &t.text, true, t.end_of_turn);
            }
            Some(Err(Error::Cancelled)) => self.stt = None,
            Some(Err(e)) => {
                self.stt = None;
                self.provider_failed("stt", self.stt_provider, &e);
                if e.is_retryable() && self.stt_retries < STT_RETRIES {
                    self.stt_retries += 1;
                    self.start_stt(now, self.stt_provider);
                } else {
                    self.bridge.handle_stt_failed(now, e.should_fall_back());
                }
            }
            Some(Ok(SttEvent::Done(_))) | None => {
                // A session ends only when finished; mid-call it is a failure.
                self.stt = None;
                let e = Error::Closed { detail: "the recognition session ended".into() };
                self.provider_failed("stt", self.stt_provider, &e);
                if self.stt_retries < STT_RETRIES {
                    self.stt_retries += 1;
                    self.start_stt(now, self.stt_provider);
                } else {
                    self.bridge.handle_stt_failed(now, true);
                }
            }
        }
    }

    // ---------------------------------------------------------------- the LLM

    fn start_llm(&mut self, now: Instant, generation: Generation, provider: usize) {
        if let Some((_, _, mut old)) = self.llm.take() {
            old.cancel();
        }
        let Some((engine, model)) = self.assistant.llms.get(provider).cloned() else {
            self.bridge.handle_llm_failed(now, generation, Failure::FINAL);
            return;
        };
        let mut request = ChatRequest::new(model, self.assistant.messages(self.bridge.history()));
        request.tools = self.assistant.tools.clone();
        match engine.chat(request) {
            Ok(stream) => self.llm = Some((generation, provider, stream)),
            Err(e) => {
                self.provider_failed("llm", provider, &e);
                self.bridge.handle_llm_failed(now, generation, failure(&e));
            }
        }
    }

    fn llm_event(&mut self, now: Instant, generation: Generation, event: Option<Result<LlmEvent, Error>>) {
        let provider = self.llm.as_ref().map_or(0, |(_, p, _)| *p);
        match event {
            Some(Ok(LlmEvent::Text(text))) => self.bridge.handle_llm_text(now, generation, &text),
            Some(Ok(LlmEvent::ToolCall(call))) => {
                info!(tool = %call.name, "the assistant calls a tool");
                self.bridge.handle_llm_tool_call(now, generation, ToolRequest { id: call.id, name: call.name, arguments: call.arguments });
            }
            Some(Ok(LlmEvent::Done(summary))) => {
                self.llm = None;
                debug!(first_token = ?summary.latency.first_token, finish = ?summary.finish, "answer complete");
                self.bridge.handle_llm_done(now, generation);
            }
            Some(Err(Error::Cancelled)) => self.llm = None,
            Some(Err(e)) => {
                self.llm = None;
                self.provider_failed("llm", provider, &e);
                self.bridge.handle_llm_failed(now, generation, failure(&e));
            }
            None => {
                self.llm = None;
                let e = Error::Closed { detail: "the answer ended without completing".into() };
                self.provider_failed("llm", provider, &e);
                self.bridge.handle_llm_failed(now, generation, Failure::TRANSIENT);
            }
        }
    }

    // ---------------------------------------------------------------- speech

    fn start_speech(&mut self, now: Instant, id: SpeechId, text: &str, provider: usize) {
        if let Some(i) = self.speech.iter().position(|s| s.id == id) {
            self.speech.remove(i).stream.cancel();
        }
        let Some(engine) = self.engines.tts.get(provider).cloned() else {
            self.bridge.handle_speech_failed(now, id, Failure::FINAL);
            return;
        };
        let wanted = AudioFormat { encoding: Encoding::Pcm16, sample_rate: self.push_rate };
        let Some(format) = negotiate(wanted, engine.formats()).map(|c| c.format) else {
            self.bridge.handle_speech_failed(now, id, Failure { fall_back: true, retry: false });
            return;
        };
        let decoder = match ChunkDecoder::new(format, self.push_rate) {
            Ok(d) => d,
            Err(e) => {
                warn!(provider = engine.name(), error = %e, "synthesiser's audio cannot be converted");
                self.bridge.handle_speech_failed(now, id, Failure { fall_back: true, retry: false });
                return;
            }
        };
        // The assistant's voice is a name of its first synthesiser; a fallback uses its own.
        let options = TtsOptions {
            voice: self.assistant.config.voice.clone().filter(|_| provider == 0),
            language: Some(self.assistant.config.language.clone()).filter(|l| !l.is_empty()),
        };
        let started = engine.start(format, &options).and_then(|mut stream| {
            stream.push_text(text)?;
            stream.finish();
            Ok(stream)
        });
        match started {
            Ok(stream) => self.speech.push(Speech { id, provider, stream, decoder }),
            Err(e) => {
                self.provider_failed("tts", provider, &e);
                self.bridge.handle_speech_failed(now, id, failure(&e));
            }
        }
    }

    fn tts_event(&mut self, now: Instant, id: SpeechId, event: Option<Result<TtsEvent, Error>>) {
        let Some(i) = self.speech.iter().position(|s| s.id == id) else { return };
        match event {
            Some(Ok(TtsEvent::Audio(chunk))) => {
                let pcm = self.speech[i].decoder.decode(&chunk.data);
                self.bridge.handle_speech_audio(now, id, pcm);
            }
            Some(Ok(TtsEvent::Done(_))) => {
                self.speech.remove(i);
                self.bridge.handle_speech_done(now, id);
            }
            Some(Err(Error::Cancelled)) => {
                self.speech.remove(i);
            }
            Some(Err(e)) => {
                let provider = self.speech.remove(i).provider;
                self.provider_failed("tts", provider, &e);
                self.bridge.handle_speech_failed(now, id, failure(&e));
            }
            None => {
                let provider = self.speech.remove(i).provider;
                let e = Error::Closed { detail: "the synthesis ended without completing".into() };
                self.provider_failed("tts", provider, &e);
                self.bridge.handle_speech_failed(now, id, Failure::TRANSIENT);
            }
        }
    }

    // ---------------------------------------------------------------- tools

    /// Runs a tool the conversation does not run itself.
    fn tool(&mut self, call: &ToolRequest) -> Result<String, String> {
        match call.name.as_str() {
            "send_dtmf" => {
                let args: serde_json::Value = serde_json::from_str(if call.arguments.trim().is_empty() { "{}" } else { &call.arguments })
                    .map_err(|e| format!("the arguments are not JSON: {e}"))?;
                let digits = args.get("digits").and_then(|d| d.as_str()).ok_or("the argument \"digits\" is missing")?;
                let mut sent = String::new();
                for c in digits.chars().filter(|c| !c.is_whitespace()) {
                    let digit = Digit::from_char(c).ok_or_else(|| format!("{c:?} is not a keypad key"))?;
                    self.bridge.media().send_dtmf(digit, Duration::from_millis(100)).map_err(|e| e.to_string())?;
                    sent.push(c);
                }
                Ok(serde_json::json!({"ok": true, "sent": sent}).to_string())
            }
            other => Err(format!("the tool {other:?} is not available on this gateway")),
        }
    }
}
