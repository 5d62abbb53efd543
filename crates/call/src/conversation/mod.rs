//! The conversation machine of one call, sans-IO: events in (the caller's voice frame by frame,
//! words from the recogniser, the LLM's text and tool calls, synthesised audio queued and played,
//! digits, platform events, timeouts, each with `now`), [`Action`]s and a deadline out.
//!
//! ```text
//!             answered (first message)                       caller's turn ends
//!   Ringing ─────────────────────────▶ Replying ◀───────────────────────────── Idle
//!                                        │  │  heard in full (commit)             ▲
//!                                        │  └────────────────────────────────────▶│
//!                   caller's voice ≥     │                                          │
//!                   min_interruption     ▼         words (not backchannel, not echo)│
//!                                   Replying+paused ───────────────────────────────▶┘
//!                                        │  flush, cancel, commit what was heard
//!                                        │ no words within the timeout: resume
//!                                        ▼
//!                                     Replying
//! ```
//!
//! # Drain contract
//! After every `handle_*` call the driver drains [`Conversation::poll_action`] until `None`, then
//! asks [`Conversation::poll_timeout`] and calls [`Conversation::handle_timeout`] when it passes.
//!
//! # Time
//! The machine reads no clock. `at` times in entries are measured from
//! [`Conversation::handle_answered`]; the playout position (how much audio has gone out since
//! the call began) comes from [`Conversation::handle_played`] and lines up with the
//! [`Conversation::handle_speech_audio`] durations, which the driver reports in queue order.

mod caller;
mod reply;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use caller::Caller;
use reply::{Reply, Sentence, Source};

use crate::config::{ConversationConfig, Opening};
use crate::text;
use crate::types::{Action, Entry, Failure, Generation, SpeechId, ToolRequest, TurnLatency};

/// What the voice detector and the echo guard say of a frame of the caller's audio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The detector's label: voice, held over the dips between syllables.
    pub voice: bool,
    /// The frame itself carried voice (no hold): where the caller's voice really ends.
    pub voiced: bool,
    /// No louder than an echo of what the gateway sent.
    pub echo: bool,
    /// How long the frame waited between its arrival and now (the jitter buffer's delay): the
    /// silence after the caller's last word is timed from its arrival.
    pub delay: Duration,
}

/// How many providers of each kind are configured (the first is the primary, the others are
/// tried in order when it fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Providers {
    /// Speech-to-text providers.
    pub stt: usize,
    /// LLM providers.
    pub llm: usize,
    /// Text-to-speech providers.
    pub tts: usize,
}

impl Default for Providers {
    fn default() -> Self {
        Providers { stt: 1, llm: 1, tts: 1 }
    }
}

/// How recent caller voice must be for words to interrupt the assistant.
const RECENT_VOICE: Duration = Duration::from_secs(2);

/// The name of the built-in tool that ends the call.
pub const HANGUP_TOOL: &str = "hangup";
/// The name of Happ's built-in hand-off tool.
pub const HANDOFF_TOOL: &str = "turnOffAiMode";

#[derive(Debug)]
enum Phase {
    /// Not answered yet.
    Ringing,
    /// Listening: nobody is being answered.
    Idle,
    /// The assistant answers (thinking, speaking, or paused for a barge-in).
    Replying(Box<Reply>),
    /// The call is over.
    Ended,
}

/// Counters of a conversation, for metrics and the call's record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConversationStats {
    /// Caller turns answered.
    pub turns: u32,
    /// Barge-ins confirmed (playback cut).
    pub interruptions: u32,
    /// Barge-ins that proved false (playback resumed).
    pub false_interruptions: u32,
    /// Transcripts dropped as backchannels during the assistant's speech.
    pub backchannels: u32,
    /// Transcripts dropped as the assistant's own echo.
    pub echoes: u32,
    /// Switches to a fallback provider.
    pub fallbacks: u32,
    /// Requests retried on the same provider after a transient failure.
    pub retries: u32,
    /// Apologies played because no provider could answer.
    pub apologies: u32,
    /// Reprompts after the caller's silence.
    pub reprompts: u32,
    /// Transcripts dropped because no voice was heard with them.
    pub unvoiced_transcripts: u32,
}

/// The conversation of one call; see the [module docs](self).
#[derive(Debug)]
pub struct Conversation {
    config: ConversationConfig,
    providers: Providers,
    phase: Phase,
    caller: Caller,
    history: Vec<Entry>,
    actions: VecDeque<Action>,
    answered: Option<Instant>,
    next_generation: u64,
    next_speech: u64,
    /// The LLM provider that answers now (after a fallback, the next one keeps answering).
    llm_provider: usize,
    tts_provider: usize,
    stt_provider: usize,
    /// Audio queued since the call began, and the part that went out.
    queued_end: Duration,
    played: Duration,
    /// The AI answers (the chat is under AI control).
    ai: bool,
    /// Since when nothing has happened (for the silence reprompt), and reprompts in a row.
    idle_since: Option<Instant>,
    reprompts: u32,
    /// The call is ending: nothing new starts.
    ending: bool,
    /// A goodbye that cannot finish ends the call anyway at this instant.
    hangup_deadline: Option<Instant>,
    stats: ConversationStats,
}

impl Conversation {
    /// A conversation with `config` over the configured `providers`.
    pub fn new(config: ConversationConfig, providers: Providers) -> Conversation {
        Conversation {
            config,
            providers,
            phase: Phase::Ringing,
            caller: Caller::default(),
            history: Vec::new(),
            actions: VecDeque::new(),
            answered: None,
            next_generation: 0,
            next_speech: 0,
            llm_provider: 0,
            tts_provider: 0,
            stt_provider: 0,
            queued_end: Duration::ZERO,
            played: Duration::ZERO,
            ai: true,
            idle_since: None,
            reprompts: 0,
            ending: false,
            hangup_deadline: None,
            stats: ConversationStats::default(),
        }
    }

    /// The conversation so far, oldest first: what the LLM is given after the assistant's
    /// instructions.
    pub fn history(&self) -> &[Entry] {
        &self.history
    }

    /// The counters.
    pub fn stats(&self) -> ConversationStats {
        self.stats
    }

    /// Whether the assistant answers (false after a hand-off to a person).
    pub fn ai(&self) -> bool {
        self.ai
    }

    /// Whether actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next action, if any.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn at(&self, now: Instant) -> Duration {
        self.answered.map_or(Duration::ZERO, |a| now.saturating_duration_since(a))
    }

    // ---------------------------------------------------------------- inputs

    /// The call was answered: recognition starts, the first message is spoken (unless the
    /// assistant waits for the caller).
    pub fn handle_answered(&mut self, now: Instant) {
        if self.answered.is_some() {
            return;
        }
        self.answered = Some(now);
        self.actions.push_back(Action::StartStt { provider: 0 });
        self.phase = Phase::Idle;
        let greeting = self.config.first_message.trim().to_owned();
        if self.config.opening == Opening::Speak && !greeting.is_empty() {
            self.say(now, Source::Fixed, &greeting, true, None);
        } else {
            self.idle_since = Some(now);
        }
    }

    /// A 20 ms frame of the caller's audio, played out at `now`: see [`Frame`].
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return;
        }
        let voiced = frame.voice && !frame.echo;
        let heard = (frame.voiced && !frame.echo).then(|| now.checked_sub(frame.delay).unwrap_or(now));
        self.caller.frame(voiced, heard, self.config.min_speech);
        if voiced {
            self.idle_since = None;
            self.reprompts = 0;
        }
        if let Phase::Replying(reply) = &mut self.phase
            && reply.interruptible
            && reply.paused_at.is_none()
            && self.caller.voiced_run >= self.config.min_interruption
        {
            // A barge-in: the audio stops with the next packet.
            reply.paused_at = Some(now);
            if self.config.resume_false_interruptions && self.config.min_interruption_words > 0 {
                self.actions.push_back(Action::PausePlayback);
            } else {
                self.interrupt(now);
            }
        }
        if !voiced && !self.caller.end_of_speech_sent && self.caller.last_voice.is_some() && self.caller.gap >= self.config.min_endpointing_delay / 2 {
            self.caller.end_of_speech_sent = true;
            self.actions.push_back(Action::EndOfSpeech);
        }
        self.check_turn_end(now);
    }

    /// Words from the recogniser: a partial hypothesis or final words, with the recogniser's
    /// end-of-turn verdict.
    pub fn handle_transcript(&mut self, now: Instant, words: &str, is_final: bool, end_of_turn: bool) {
        if matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return;
        }
        if let Phase::Replying(reply) = &self.phase
            && reply.interruptible
        {
            // Words with no voice heard from the caller lately are the recogniser's, not the
            // caller's (a hallucination on line noise, or on our own audio).
            let qualifies = if self.caller.voiced_within(now, RECENT_VOICE) { self.qualifies(words, reply) } else { (false, false) };
            if !qualifies.0 {
                // A backchannel or our own echo while the assistant speaks: neither interrupts
                // nor becomes a turn.
                if !words.trim().is_empty() && is_final {
                    if qualifies.1 { self.stats.echoes += 1 } else { self.stats.backchannels += 1 }
                }
                if is_final {
                    self.caller.forget_words();
                }
                return;
            }
            self.caller.words(now, words, is_final, end_of_turn);
            self.interrupt(now);
        } else {
            self.caller.words(now, words, is_final, end_of_turn);
        }
        self.check_turn_end(now);
    }

    /// Whether `words` heard during `reply` take the turn: (qualifies, is echo).
    fn qualifies(&self, words: &str, reply: &Reply) -> (bool, bool) {
        let count = text::words(words).count();
        if text::is_echo_of(words, &reply.text()) {
            return (false, true);
        }
        (count >= self.config.min_interruption_words.max(1) && !text::is_backchannel(words), false)
    }

    /// The recogniser failed; `fall_back` when another provider is worth trying.
    pub fn handle_stt_failed(&mut self, now: Instant, fall_back: bool) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        if fall_back && self.stt_provider + 1 < self.providers.stt {
            self.stt_provider += 1;
            self.stats.fallbacks += 1;
            self.actions.push_back(Action::StartStt { provider: self.stt_provider });
            return;
        }
        // Nobody can hear the caller: say so and end the call.
        self.cancel_reply(now, true);
        let text = self.config.cannot_hear.clone();
        self.say(now, Source::Fixed, &text, false, Some("speech recognition failed".into()));
        self.ending = true;
    }

    /// Text of the LLM's answer for `generation`.
    pub fn handle_llm_text(&mut self, now: Instant, generation: Generation, delta: &str) {
        let Some(reply) = self.reply_of(generation) else { return };
        reply.first_token.get_or_insert(now);
        reply.generation_text.push_str(delta);
        let sentences = reply.splitter.push(delta);
        for sentence in sentences {
            self.add_sentence(&sentence, false);
        }
    }

    /// A tool call of the LLM's answer for `generation`.
    pub fn handle_llm_tool_call(&mut self, now: Instant, generation: Generation, call: ToolRequest) {
        let Some(reply) = self.reply_of(generation) else { return };
        reply.first_token.get_or_insert(now);
        reply.tool_calls.push(call);
    }

    /// The LLM's answer for `generation` is complete.
    pub fn handle_llm_done(&mut self, now: Instant, generation: Generation) {
        let Some(reply) = self.reply_of(generation) else { return };
        reply.generation = None;
        reply.llm_done = true;
        let rest = reply.splitter.finish();
        if let Some(rest) = rest {
            self.add_sentence(&rest, false);
        }
        let Phase::Replying(reply) = &mut self.phase else { return };
        if !reply.tool_calls.is_empty() {
            self.run_tools(now);
        }
        self.check_reply_end(now);
    }

    /// The LLM request for `generation` failed: a transient failure is retried once on the same
    /// provider, then the next provider is tried, then the apology plays.
    pub fn handle_llm_failed(&mut self, now: Instant, generation: Generation, failure: Failure) {
        let Some(reply) = self.reply_of(generation) else { return };
        reply.generation = None;
        let retry = failure.retry && !std::mem::replace(&mut reply.llm_retried, true);
        let spoke = !reply.sentences.is_empty() || !reply.generation_text.trim().is_empty();
        if spoke {
            // Repeating the answer from the start would repeat what was heard: end it here.
            let rest = reply.splitter.finish();
            if let Some(rest) = rest {
                self.add_sentence(&rest, false);
            }
            self.check_reply_end(now);
            return;
        }
        if retry {
            self.stats.retries += 1;
            self.start_generation();
        } else if failure.fall_back && self.llm_provider + 1 < self.providers.llm {
            self.llm_provider += 1;
            self.stats.fallbacks += 1;
            self.start_generation();
        } else {
            self.apologise(now);
        }
    }

    /// `duration` of audio of sentence `id` was queued for playback, after everything queued
    /// before (the driver queues in id order).
    pub fn handle_speech_audio(&mut self, now: Instant, id: SpeechId, duration: Duration) {
        let position = self.queued_end.max(self.played);
        let Phase::Replying(reply) = &mut self.phase else { return };
        let Some(sentence) = reply.sentence_mut(id) else { return };
        sentence.start.get_or_insert(position);
        sentence.len += duration;
        self.queued_end = position + duration;
        reply.first_audio.get_or_insert(now);
    }

    /// All the audio of sentence `id` is queued.
    pub fn handle_speech_done(&mut self, now: Instant, id: SpeechId) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        if let Some(s) = reply.sentence_mut(id) {
            s.complete = true;
        }
        self.check_reply_end(now);
    }

    /// The synthesis of sentence `id` failed: before any of its audio, a transient failure is
    /// retried once on the same provider, then the next provider is tried, then the apology
    /// plays; after some of it, the reply goes on without the rest.
    pub fn handle_speech_failed(&mut self, now: Instant, id: SpeechId, failure: Failure) {
        let providers = self.providers.tts;
        let Phase::Replying(reply) = &mut self.phase else { return };
        let Some(sentence) = reply.sentence_mut(id) else { return };
        if sentence.start.is_some() || sentence.canned {
            // Part of it was heard: go on without the rest rather than repeat it.
            sentence.complete = true;
        } else if failure.retry && !sentence.retried {
            sentence.retried = true;
            let (text, provider) = (sentence.text.clone(), sentence.provider);
            self.stats.retries += 1;
            self.actions.push_back(Action::Speak { id, text, provider, canned: false });
            return;
        } else if failure.fall_back && sentence.provider + 1 < providers {
            sentence.provider += 1;
            let (text, provider) = (sentence.text.clone(), sentence.provider);
            self.tts_provider = self.tts_provider.max(provider);
            self.stats.fallbacks += 1;
            self.actions.push_back(Action::Speak { id, text, provider, canned: false });
            return;
        } else {
            sentence.complete = true;
            self.apologise(now);
        }
        self.check_reply_end(now);
    }

    /// The playout position: audio that has gone out since the call began.
    pub fn handle_played(&mut self, now: Instant, played: Duration) {
        self.played = self.played.max(played);
        let Phase::Replying(reply) = &mut self.phase else { return };
        if reply.first_played.is_none()
            && let Some(start) = reply.start()
            && self.played > start
        {
            reply.first_played = Some(now);
            if let (Some(speech_end), Some(turn_end)) = (reply.speech_end, reply.turn_end) {
                let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(speech_end));
                let latency = TurnLatency {
                    stt_final: since(reply.stt_final),
                    end_of_turn: turn_end.saturating_duration_since(speech_end),
                    llm_first_token: since(reply.first_token),
                    tts_first_audio: since(reply.first_audio),
                    first_packet: now.saturating_duration_since(speech_end),
                };
                self.actions.push_back(Action::Latency(latency));
            }
        }
        self.check_reply_end(now);
    }

    /// The playback queue was flushed: what was queued will not be played, and new audio starts
    /// at `position` of the playout (what went out plus the fade left in the queue).
    pub fn handle_playout_reset(&mut self, position: Duration) {
        self.queued_end = position;
    }

    /// A keypad digit (RFC 4733 or SIP INFO).
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        if matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return;
        }
        self.idle_since = None;
        self.reprompts = 0;
        if matches!(&self.phase, Phase::Replying(r) if r.interruptible) {
            // A key is deliberate: it stops the assistant at once.
            if let Phase::Replying(r) = &mut self.phase {
                r.paused_at.get_or_insert(now);
            }
            self.interrupt(now);
        }
        if let Some(digits) = self.caller.keypad.press(now, digit) {
            self.caller.digits.push(digits);
        }
        self.check_turn_end(now);
    }

    /// The result of a tool the conversation asked for ([`Action::CallTool`]): the JSON or text
    /// it gave, or an error the model can speak about.
    pub fn handle_tool_result(&mut self, now: Instant, call_id: &str, result: Result<String, String>) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        if reply.awaiting_tools == 0 {
            return;
        }
        let content = match result {
            Ok(content) => content,
            Err(error) => serde_json::json!({ "error": error }).to_string(),
        };
        reply.awaiting_tools -= 1;
        let entry = Entry::ToolResult { call_id: call_id.to_owned(), content };
        self.commit(entry);
        self.after_tools(now);
    }

    /// The chat's AI control changed on the platform (an operator took over, or gave back).
    pub fn handle_ai_control(&mut self, now: Instant, on: bool) {
        if self.ai == on || matches!(self.phase, Phase::Ended) {
            return;
        }
        self.ai = on;
        if !on && matches!(&self.phase, Phase::Replying(r) if r.source == Source::Llm) {
            self.cancel_reply(now, true);
            self.phase = Phase::Idle;
        }
    }

    /// An operator's message in the call's chat while AI control is off: spoken to the caller.
    pub fn handle_operator_message(&mut self, now: Instant, message: &str) {
        if self.ai || self.ending || matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return;
        }
        if matches!(self.phase, Phase::Replying(_)) {
            // One voice at a time: the new message follows what is being said.
            let sentences: Vec<String> = text::sentences(message);
            for s in sentences {
                self.add_sentence(&s, false);
            }
            return;
        }
        self.say(now, Source::Operator, message, true, None);
    }

    /// The call ended (either side hung up): what was heard is committed, nothing is lost.
    pub fn handle_call_ended(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.cancel_reply(now, true);
        let text = self.caller.take_turn();
        let digits = self.caller.keypad.take();
        let text = match (text.is_empty(), digits.is_empty()) {
            (_, true) => text,
            (true, false) => crate::keypad::as_text(&digits),
            (false, false) => format!("{text} {}", crate::keypad::as_text(&digits)),
        };
        if !text.is_empty() {
            let at = self.at(now);
            self.commit(Entry::Caller { text, at });
        }
        self.phase = Phase::Ended;
    }

    /// Timers: end of turn, false interruptions, stalls, silence, the maximum duration.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return;
        }
        if let Some(digits) = self.caller.keypad.expire(now, self.config.dtmf_timeout) {
            self.caller.digits.push(digits);
        }
        if self.hangup_deadline.is_some_and(|d| d <= now) {
            self.hangup_deadline = None;
            self.hangup("the goodbye could not be played".into());
            return;
        }
        if let (Some(max), Some(answered)) = (self.config.max_duration, self.answered)
            && !self.ending
            && now >= answered + max
        {
            self.cancel_reply(now, true);
            let text = self.config.max_duration_goodbye.clone();
            self.say(now, Source::Fixed, &text, false, Some("maximum call duration reached".into()));
            self.ending = true;
            return;
        }
        self.check_interruption(now);
        self.check_stall(now);
        self.check_silence(now);
        self.check_turn_end(now);
    }

    /// When [`Conversation::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Ringing | Phase::Ended) {
            return None;
        }
        let c = &self.config;
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        at(self.caller.keypad.deadline(c.dtmf_timeout));
        at(self.hangup_deadline);
        if !self.ending {
            at(c.max_duration.and_then(|m| self.answered.map(|a| a + m)));
        }
        match &self.phase {
            Phase::Replying(reply) => {
                if let Some(paused) = reply.paused_at {
                    at(Some(self.resume_deadline(paused)));
                }
                if reply.first_played.is_none() && !reply.apologised && reply.paused_at.is_none() {
                    let since = reply.turn_end;
                    if !reply.stall_handled {
                        at(since.map(|t| t + c.stall_timeout));
                    }
                    at(since.map(|t| t + c.dead_air_limit));
                }
            }
            Phase::Idle => {
                if self.caller.pending()
                    && let Some(last) = self.caller.last_voice.or(self.caller.last_final)
                {
                    // Before the final words, only the longest wait can end the turn: their
                    // arrival is an event of its own.
                    let wait = if self.caller.transcribed() { c.min_endpointing_delay } else { c.max_endpointing_delay };
                    at(Some(last + wait));
                }
                if !self.caller.digits.is_empty() {
                    at(self.caller.last_voice.map(|v| v + c.min_endpointing_delay));
                }
                at(self.silence_deadline());
            }
            Phase::Ringing | Phase::Ended => {}
        }
        next
    }

    // ---------------------------------------------------------------- turns

    /// Ends the caller's turn when it is over, and answers it.
    fn check_turn_end(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Idle) || self.ending {
            return;
        }
        let c = &self.config;
        let caller = &self.caller;
        let words = !caller.finals.is_empty() || !caller.partial.is_empty();
        let digits_only = !words && !caller.digits.is_empty() && !caller.speaking;
        let ready = if digits_only {
            // Digits alone end the turn at `#` or their own timeout, unless the caller speaks.
            caller.last_voice.is_none_or(|v| now >= v + c.min_endpointing_delay)
        } else {
            let Some(last) = caller.last_voice.or(caller.last_final) else { return };
            let silence = now.saturating_duration_since(last);
            (silence >= c.min_endpointing_delay && caller.transcribed()) || silence >= c.max_endpointing_delay
        };
        if !ready {
            return;
        }
        let speech_end = self.caller.last_voice;
        let stt_final = self.caller.last_final.filter(|f| speech_end.is_none_or(|v| *f >= v));
        let voiced = self.caller.voiced_in_turn;
        let digits = !self.caller.digits.is_empty();
        let text = self.caller.take_turn();
        if text.trim().is_empty() || !(voiced || digits) {
            // Voice without words is a noise; words without voice, the recogniser's own.
            if !text.trim().is_empty() {
                self.stats.unvoiced_transcripts += 1;
            }
            return;
        }
        let at = self.at(now);
        self.commit(Entry::Caller { text, at });
        self.idle_since = None;
        if !self.ai {
            // Handed off: the caller's words go to the chat for the operator.
            self.idle_since = Some(now);
            return;
        }
        self.stats.turns += 1;
        let mut reply = Reply::new(Source::Llm, true);
        reply.speech_end = speech_end.or(Some(now));
        reply.turn_end = Some(now);
        reply.stt_final = stt_final;
        self.phase = Phase::Replying(Box::new(reply));
        self.start_generation();
    }

    /// Starts (or restarts on the current provider) the LLM request of the reply.
    fn start_generation(&mut self) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        let generation = Generation(self.next_generation);
        self.next_generation += 1;
        reply.generation = Some((generation, self.llm_provider));
        reply.llm_done = false;
        reply.generation_text.clear();
        reply.splitter = text::SentenceSplitter::default();
        self.actions.push_back(Action::StartLlm { generation, provider: self.llm_provider });
    }

    /// The reply whose LLM request is `generation`, if it is still wanted.
    fn reply_of(&mut self, generation: Generation) -> Option<&mut Reply> {
        match &mut self.phase {
            Phase::Replying(reply) if reply.generation.is_some_and(|(g, _)| g == generation) => Some(reply),
            _ => None,
        }
    }

    /// Speaks a fixed text as a reply of its own.
    fn say(&mut self, now: Instant, source: Source, text: &str, interruptible: bool, hangup_after: Option<String>) {
        let mut reply = Reply::new(source, interruptible);
        reply.hangup_after = hangup_after;
        reply.turn_end = Some(now);
        self.phase = Phase::Replying(Box::new(reply));
        for sentence in text::sentences(text) {
            self.add_sentence(&sentence, false);
        }
        self.check_reply_end(now);
    }

    /// Adds a sentence to the reply and has it synthesised.
    fn add_sentence(&mut self, text: &str, canned: bool) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        let id = SpeechId(self.next_speech);
        self.next_speech += 1;
        let provider = self.tts_provider;
        reply.sentences.push(Sentence { id, text: text.to_owned(), provider, start: None, len: Duration::ZERO, complete: false, canned, retried: false });
        self.actions.push_back(Action::Speak { id, text: text.to_owned(), provider, canned });
    }

    /// Runs the tool calls of the finished generation: the built-in ones here, the others by the
    /// driver.
    fn run_tools(&mut self, now: Instant) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        let calls = std::mem::take(&mut reply.tool_calls);
        let text = std::mem::take(&mut reply.generation_text).trim().to_owned();
        // The message with its tool calls goes into the history before their results.
        let heard_sentences = reply.sentences.len();
        reply.committed = heard_sentences;
        let at = self.at(now);
        self.commit(Entry::Assistant { text, at, interrupted: false, tool_calls: calls.clone(), latency: None });
        let mut external = 0;
        let mut continue_after = false;
        let mut results = Vec::new();
        for call in calls {
            match call.name.as_str() {
                HANGUP_TOOL => {
                    if let Phase::Replying(reply) = &mut self.phase {
                        reply.hangup_after = Some("the assistant ended the call".into());
                        reply.interruptible = false;
                    }
                    results.push((call.id, "{\"ok\": true, \"note\": \"the call ends after your last words\"}".to_owned()));
                }
                HANDOFF_TOOL => {
                    self.ai = false;
                    self.actions.push_back(Action::SetAiControl(false));
                    continue_after = true;
                    results.push((call.id, "{\"ok\": true, \"note\": \"a person will take over this conversation\"}".to_owned()));
                }
                _ => {
                    external += 1;
                    continue_after = true;
                    self.actions.push_back(Action::CallTool(call));
                }
            }
        }
        for (call_id, content) in results {
            self.commit(Entry::ToolResult { call_id, content });
        }
        if let Phase::Replying(reply) = &mut self.phase {
            reply.awaiting_tools = external;
            reply.continue_after_tools = continue_after;
        }
        self.after_tools(now);
    }

    /// Once every tool result is in: the model continues (it may speak about the results).
    fn after_tools(&mut self, now: Instant) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        if reply.awaiting_tools > 0 {
            return;
        }
        if std::mem::take(&mut reply.continue_after_tools) {
            self.start_generation();
        } else {
            self.check_reply_end(now);
        }
    }

    /// Plays the apology (synthesised ahead, so it works with every provider down) instead of
    /// what the reply could not say.
    fn apologise(&mut self, now: Instant) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        if reply.apologised {
            return;
        }
        reply.apologised = true;
        if let Some((generation, _)) = reply.generation.take() {
            self.actions.push_back(Action::CancelLlm(generation));
        }
        for s in reply.sentences.iter_mut().filter(|s| s.start.is_none() && !s.complete) {
            s.complete = true;
            self.actions.push_back(Action::CancelSpeech(s.id));
        }
        reply.awaiting_tools = 0;
        reply.continue_after_tools = false;
        self.stats.apologies += 1;
        let apology = self.config.apology.clone();
        self.add_sentence(&apology, true);
        self.check_reply_end(now);
    }

    /// Ends the reply once it was heard in full: commits it, listens again.
    fn check_reply_end(&mut self, now: Instant) {
        let Phase::Replying(reply) = &self.phase else { return };
        if reply.paused_at.is_some() || !reply.heard_all(self.played) {
            return;
        }
        let Phase::Replying(reply) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
        self.commit_heard(now, &reply, false);
        self.idle_since = Some(now);
        if let Some(reason) = reply.hangup_after {
            self.hangup(reason);
        }
    }

    /// Commits what was heard of `reply` (all of it unless `interrupted`).
    fn commit_heard(&mut self, now: Instant, reply: &Reply, interrupted: bool) {
        let (text, cut) = reply.heard(self.played);
        if text.is_empty() {
            return;
        }
        let at = reply.first_played.map_or_else(|| self.at(now), |t| self.at(t));
        let interrupted = interrupted && cut;
        let entry = match reply.source {
            Source::Operator => Entry::Operator { text, at, interrupted },
            Source::Llm | Source::Fixed => Entry::Assistant {
                text,
                at,
                interrupted,
                tool_calls: Vec::new(),
                latency: match (reply.speech_end, reply.first_played) {
                    (Some(end), Some(played)) => Some(played.saturating_duration_since(end)),
                    _ => None,
                },
            },
        };
        self.commit(entry);
    }

    fn commit(&mut self, entry: Entry) {
        self.history.push(entry.clone());
        self.actions.push_back(Action::Commit(entry));
    }

    fn hangup(&mut self, reason: String) {
        self.ending = true;
        self.hangup_deadline = None;
        self.actions.push_back(Action::Hangup { reason });
    }

    // ---------------------------------------------------------------- barge-in

    /// A confirmed interruption: the audio is dropped, the LLM and TTS cancelled, what was heard
    /// committed before the caller's turn.
    fn interrupt(&mut self, now: Instant) {
        let Phase::Replying(reply) = &self.phase else { return };
        if !reply.interruptible {
            return;
        }
        self.stats.interruptions += 1;
        if reply.hangup_after.is_some() {
            // The caller spoke over a goodbye (after a silence): they are here after all.
            self.ending = false;
            self.hangup_deadline = None;
        }
        self.cancel_reply(now, true);
        self.phase = Phase::Idle;
        self.idle_since = None;
    }

    /// Stops the reply in progress: flush, cancel, commit what was heard.
    fn cancel_reply(&mut self, now: Instant, commit: bool) {
        let Phase::Replying(reply) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
        self.actions.push_back(Action::FlushPlayback);
        if let Some((generation, _)) = reply.generation {
            self.actions.push_back(Action::CancelLlm(generation));
        }
        for s in reply.sentences.iter().filter(|s| !s.complete || s.start.is_none_or(|start| start + s.len > self.played)) {
            self.actions.push_back(Action::CancelSpeech(s.id));
        }
        // Nothing queued will be played: new audio starts where playback stopped.
        self.queued_end = self.played;
        if commit {
            self.commit_heard(now, &reply, true);
        }
    }

    /// When a paused reply resumes if no words come: the timeout after the pause, and not
    /// while the caller is still talking (capped at three timeouts).
    fn resume_deadline(&self, paused: Instant) -> Instant {
        let timeout = self.config.false_interruption_timeout;
        let talking = self.caller.last_voice.map(|v| v + self.config.min_endpointing_delay);
        (paused + timeout).max(talking.unwrap_or(paused)).min(paused + 3 * timeout)
    }

    /// A pause with no words by its deadline was a false interruption: play on.
    fn check_interruption(&mut self, now: Instant) {
        let Phase::Replying(reply) = &self.phase else { return };
        let Some(paused) = reply.paused_at else { return };
        if now < self.resume_deadline(paused) {
            return;
        }
        if let Phase::Replying(reply) = &mut self.phase {
            reply.paused_at = None;
        }
        self.stats.false_interruptions += 1;
        self.caller.forget_words();
        self.caller.speaking = false;
        self.caller.voiced_run = Duration::ZERO;
        self.actions.push_back(Action::ResumePlayback);
        self.check_reply_end(now);
    }

    // ---------------------------------------------------------------- failures and silence

    /// No audio long after the turn ended: the provider in the way is stalled.
    fn check_stall(&mut self, now: Instant) {
        let Phase::Replying(reply) = &mut self.phase else { return };
        if reply.first_played.is_some() || reply.apologised || reply.paused_at.is_some() {
            return;
        }
        let Some(turn_end) = reply.turn_end else { return };
        if now >= turn_end + self.config.dead_air_limit {
            self.apologise(now);
            return;
        }
        if now < turn_end + self.config.stall_timeout || reply.stall_handled {
            return;
        }
        reply.stall_handled = true;
        if let Some((generation, provider)) = reply.generation
            && reply.first_token.is_none()
        {
            // The model has said nothing: try the next one, if any, once.
            if provider == self.llm_provider && self.llm_provider + 1 < self.providers.llm {
                self.actions.push_back(Action::CancelLlm(generation));
                self.llm_provider += 1;
                self.stats.fallbacks += 1;
                self.start_generation();
            }
            return;
        }
        // The model spoke but no audio came: the synthesiser is stalled.
        if self.tts_provider + 1 < self.providers.tts && reply.first_audio.is_none() {
            self.tts_provider += 1;
            self.stats.fallbacks += 1;
            let provider = self.tts_provider;
            for s in reply.sentences.iter_mut().filter(|s| s.start.is_none() && !s.canned) {
                if s.provider < provider {
                    s.provider = provider;
                    self.actions.push_back(Action::CancelSpeech(s.id));
                    self.actions.push_back(Action::Speak { id: s.id, text: s.text.clone(), provider, canned: false });
                }
            }
        }
    }

    fn silence_deadline(&self) -> Option<Instant> {
        let idle = self.idle_since?;
        if self.ending || self.caller.pending() || !self.ai {
            return None;
        }
        if self.reprompts == 0 { self.config.silence_reprompt.map(|r| idle + r) } else { Some(idle + self.config.silence_hangup) }
    }

    /// The caller said nothing for long: ask whether they are there, then say goodbye.
    fn check_silence(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Idle) {
            return;
        }
        let Some(deadline) = self.silence_deadline() else { return };
        if now < deadline {
            return;
        }
        if self.reprompts == 0 {
            self.reprompts += 1;
            self.stats.reprompts += 1;
            let text = self.config.reprompt_text.clone();
            self.say(now, Source::Fixed, &text, true, None);
        } else {
            let text = self.config.silence_goodbye.clone();
            self.say(now, Source::Fixed, &text, true, Some("the caller stayed silent".into()));
            self.ending = true;
            self.hangup_deadline = Some(now + Duration::from_secs(30));
        }
    }
}
