//! A whole call in virtual time: the gateway's [`Bridge`] and the caller's phone (a second
//! `MediaSession`) exchange real RTP packets on a virtual clock; the recogniser, the LLM and the
//! synthesiser are scripted providers that answer the bridge's actions after virtual delays.
//! Nothing sleeps and nothing touches a socket.
//!
//! Synthesised speech is a tone whose frequency names the sentence (300 Hz + 100 Hz × id), so
//! every 20 ms the caller receives can be traced back to the sentence it came from.
#![allow(clippy::disallowed_methods, dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use happ_call::{Action, Bridge, BridgeConfig, ConversationConfig, Entry, Failure, Generation, Providers, SpeechId, ToolRequest};
use happ_media::Law;
use happ_media::dtmf::Digit;
use happ_media::session::{MediaSession, PacketKind, SessionConfig};
use happ_media::units::Ssrc;
use happ_media::vad::VadConfig;
use happ_testkit::tone::goertzel;

pub const MS: Duration = Duration::from_millis(1);

/// A step of a scripted LLM answer, at an offset from its request.
#[derive(Clone, Debug)]
pub enum LlmStep {
    Text(&'static str),
    Tool(&'static str, &'static str),
    Done,
    Fail { fall_back: bool, retry: bool },
}

/// How a scripted synthesiser behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TtsMode {
    /// Audio `delay` after the text, 60 ms of speech per character, made 10× faster than real time.
    Speak { delay: Duration },
    /// Fails at once.
    Fail,
    /// Never answers.
    Stall,
}

/// A line the caller says: real speech, and what the scripted recogniser hears in it.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Duration,
    pub speech: Duration,
    pub words: &'static str,
}

/// What happened, for assertions.
#[derive(Clone, Debug)]
pub struct Heard {
    /// When the packet was sent, since the start.
    pub at: Duration,
    /// The sentence whose tone dominates the packet, if any is louder than -40 dBFS.
    pub speech: Option<u64>,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub bridge: Bridge,
    pub phone: MediaSession,
    pub actions: Vec<(Duration, Action)>,
    /// Every packet the caller received, decoded and identified.
    pub heard: Vec<Heard>,
    /// When the bridge's playback became paused.
    pub pauses: Vec<Duration>,
    pub stt_frames: u64,
    pub llm_answers: VecDeque<Vec<(Duration, LlmStep)>>,
    /// Answers of the fallback LLM (provider 1).
    pub fallback_answers: VecDeque<Vec<(Duration, LlmStep)>>,
    pub tts: Vec<TtsMode>,
    pub stt_delay: Duration,
    /// Echo of the gateway's audio at the caller's phone: delay and linear gain.
    pub echo: Option<(Duration, f32)>,
    pub hung_up: Option<(Duration, String)>,
    pub tools_called: Vec<ToolRequest>,
    events: Vec<(Instant, Event)>,
    sent_by_gateway: VecDeque<(Instant, Vec<i16>)>,
    speech: Vec<i16>,
    speech_pos: usize,
    freqs: Vec<(u64, f64)>,
    was_paused: bool,
}

#[derive(Clone, Debug)]
enum Event {
    Llm(Generation, LlmStep),
    TtsAudio(SpeechId, Vec<i16>),
    TtsDone(SpeechId),
    TtsFail(SpeechId),
    Transcript(String, bool),
    Talk(Duration),
    Dtmf(char),
}

pub fn config() -> ConversationConfig {
    ConversationConfig { first_message: "Hello, this is the bakery.".into(), ..ConversationConfig::default() }
}

impl Sim {
    pub fn new(conversation: ConversationConfig, providers: Providers) -> Sim {
        let t0 = Instant::now();
        let session =
            |ssrc: u32| SessionConfig { law: Law::Ulaw, pull_rate: 8_000, push_rate: 8_000, ssrc: Ssrc(ssrc), inactivity: None, ..SessionConfig::default() };
        let media = MediaSession::new(session(0xB), t0).expect("session");
        let config = BridgeConfig { conversation, providers, vad: VadConfig::new(8_000), apology: Arc::from(tone(200.0, 2.0)) };
        let bridge = Bridge::new(config, media).expect("bridge");
        let phone = MediaSession::new(session(0xA), t0).expect("session");
        let speech = happ_fixtures::jfk().resampled(8_000).expect("8 kHz").samples;
        Sim {
            t0,
            now: t0,
            bridge,
            phone,
            actions: Vec::new(),
            heard: Vec::new(),
            pauses: Vec::new(),
            stt_frames: 0,
            llm_answers: VecDeque::new(),
            fallback_answers: VecDeque::new(),
            tts: vec![TtsMode::Speak { delay: 50 * MS }; providers.tts],
            stt_delay: 300 * MS,
            echo: None,
            hung_up: None,
            tools_called: Vec::new(),
            events: Vec::new(),
            sent_by_gateway: VecDeque::new(),
            speech,
            speech_pos: 0,
            freqs: Vec::new(),
            was_paused: false,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Answers the call.
    pub fn answer(&mut self) {
        self.bridge.handle_answered(self.now);
        self.drain();
    }

    /// The caller says a line: `speech` of real voice at `at` (from now), with `words` heard by
    /// the recogniser (partial halfway, final `stt_delay` after the end; none when empty).
    pub fn say(&mut self, at: Duration, speech: Duration, words: &str) {
        let start = self.now + at;
        self.events.push((start, Event::Talk(speech)));
        if !words.is_empty() {
            let w: Vec<&str> = words.split(' ').collect();
            if speech > 600 * MS && w.len() > 1 {
                self.events.push((start + speech / 2, Event::Transcript(w[..w.len() / 2].join(" "), false)));
            }
            self.events.push((start + speech + self.stt_delay, Event::Transcript(words.to_owned(), true)));
        }
    }

    /// The caller presses `digit` at `at` from now.
    pub fn press(&mut self, at: Duration, digit: char) {
        self.events.push((self.now + at, Event::Dtmf(digit)));
    }

    /// An LLM answer: these steps, `every` apart.
    pub fn answer_with(steps: &[LlmStep], every: Duration) -> Vec<(Duration, LlmStep)> {
        steps.iter().enumerate().map(|(i, s)| (every * (i as u32 + 1), s.clone())).collect()
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.now += MS;
            self.tick();
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        // Scripted events that are due.
        let mut due = Vec::new();
        self.events.retain(|(t, e)| {
            if *t <= now {
                due.push((*t, e.clone()));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(t, _)| *t);
        for (_, e) in due {
            self.deliver(e);
        }
        if self.bridge.poll_timeout().is_some_and(|t| t <= now) {
            self.bridge.handle_timeout(now);
        }
        if self.phone.poll_timeout().is_some_and(|t| t <= now) {
            self.phone.handle_timeout(now);
        }
        self.exchange();
        self.drain();
        while self.phone.pull_pcm(&mut [0i16; 160]).is_some() {}
        while self.phone.poll_event().is_some() {}
    }

    fn deliver(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::Llm(g, LlmStep::Text(t)) => self.bridge.handle_llm_text(now, g, t),
            Event::Llm(g, LlmStep::Tool(name, args)) => {
                self.bridge.handle_llm_tool_call(now, g, ToolRequest { id: format!("call_{name}"), name: name.into(), arguments: args.into() })
            }
            Event::Llm(g, LlmStep::Done) => self.bridge.handle_llm_done(now, g),
            Event::Llm(g, LlmStep::Fail { fall_back, retry }) => self.bridge.handle_llm_failed(now, g, Failure { fall_back, retry }),
            Event::TtsAudio(id, pcm) => self.bridge.handle_speech_audio(now, id, &pcm),
            Event::TtsDone(id) => self.bridge.handle_speech_done(now, id),
            Event::TtsFail(id) => self.bridge.handle_speech_failed(now, id, Failure { fall_back: true, retry: false }),
            Event::Transcript(t, is_final) => self.bridge.handle_transcript(now, &t, is_final, is_final),
            Event::Talk(d) => {
                let n = (d.as_millis() as usize) * 8;
                let mut pcm = Vec::with_capacity(n);
                while pcm.len() < n {
                    let take = (n - pcm.len()).min(self.speech.len() - self.speech_pos);
                    pcm.extend_from_slice(&self.speech[self.speech_pos..self.speech_pos + take]);
                    self.speech_pos = (self.speech_pos + take) % self.speech.len();
                }
                self.phone.push_pcm(&pcm);
            }
            Event::Dtmf(c) => {
                let _ = self.phone.send_dtmf(Digit::from_char(c).expect("digit"), 100 * MS);
            }
        }
        self.drain();
    }

    /// Packets both ways, delivered at once; the caller's echo mixed into what the phone sends.
    fn exchange(&mut self) {
        let now = self.now;
        let mut buf = [0u8; 1500];
        while let Some(t) = self.bridge.poll_transmit(&mut buf) {
            if t.kind != PacketKind::Rtp {
                continue;
            }
            let payload = &buf[12..t.len];
            if payload.len() == 160 {
                let mut pcm = vec![0i16; 160];
                Law::Ulaw.decode(payload, &mut pcm);
                let speech = self.identify(&pcm);
                self.heard.push(Heard { at: now - self.t0, speech });
                self.sent_by_gateway.push_back((now, pcm));
                while self.sent_by_gateway.len() > 100 {
                    self.sent_by_gateway.pop_front();
                }
            }
            let _ = self.phone.handle_rtp(now, &buf[..t.len]);
        }
        while let Some(t) = self.phone.poll_transmit(&mut buf) {
            if t.kind != PacketKind::Rtp {
                continue;
            }
            if let Some((delay, gain)) = self.echo
                && t.len == 172
                && buf[1] & 0x7f == 0
            {
                // The line's echo: what the gateway sent `delay` ago, attenuated, added.
                if let Some((_, pcm)) = self.sent_by_gateway.iter().rev().find(|(at, _)| *at + delay <= now) {
                    let mut mine = [0i16; 160];
                    Law::Ulaw.decode(&buf[12..172], &mut mine);
                    for (m, e) in mine.iter_mut().zip(pcm) {
                        *m = (f32::from(*m) + f32::from(*e) * gain).clamp(-32768.0, 32767.0) as i16;
                    }
                    Law::Ulaw.encode(&mine, &mut buf[12..172]);
                }
            }
            let _ = self.bridge.handle_rtp(now, &buf[..t.len]);
        }
        self.drain();
    }

    fn drain(&mut self) {
        let now = self.now;
        while self.bridge.poll_stt_frame().is_some() {
            self.stt_frames += 1;
        }
        let paused = self.bridge.media().paused();
        if paused && !self.was_paused {
            self.pauses.push(now - self.t0);
        }
        self.was_paused = paused;
        while let Some(action) = self.bridge.poll_action() {
            self.actions.push((now - self.t0, action.clone()));
            match action {
                Action::StartLlm { generation, provider } => {
                    let answer = if provider == 0 { self.llm_answers.pop_front() } else { self.fallback_answers.pop_front() };
                    for (offset, step) in answer.unwrap_or_default() {
                        self.events.push((now + offset, Event::Llm(generation, step)));
                    }
                }
                Action::CancelLlm(g) => self.events.retain(|(_, e)| !matches!(e, Event::Llm(x, _) if *x == g)),
                Action::Speak { id, text, provider, canned: false } => self.synthesise(id, &text, provider),
                Action::CancelSpeech(id) => {
                    self.events.retain(|(_, e)| !matches!(e, Event::TtsAudio(x, _) | Event::TtsDone(x) | Event::TtsFail(x) if *x == id))
                }
                Action::CallTool(call) => self.tools_called.push(call),
                Action::Hangup { reason } => {
                    self.hung_up.get_or_insert((now - self.t0, reason));
                }
                _ => {}
            }
        }
    }

    fn synthesise(&mut self, id: SpeechId, text: &str, provider: usize) {
        let now = self.now;
        match self.tts.get(provider).copied().unwrap_or(TtsMode::Fail) {
            TtsMode::Fail => self.events.push((now + 10 * MS, Event::TtsFail(id))),
            TtsMode::Stall => {}
            TtsMode::Speak { delay } => {
                let freq = 300.0 + 100.0 * (id.0 % 30) as f64;
                self.freqs.retain(|(i, _)| *i != id.0);
                self.freqs.push((id.0, freq));
                let audio = tone(freq, text.chars().count() as f64 * 0.06);
                for (i, chunk) in audio.chunks(800).enumerate() {
                    self.events.push((now + delay + 10 * MS * i as u32, Event::TtsAudio(id, chunk.to_vec())));
                }
                self.events.push((now + delay + 10 * MS * (audio.len() / 800 + 1) as u32, Event::TtsDone(id)));
            }
        }
    }

    /// The sentence whose tone dominates `pcm`, if it is not silence.
    fn identify(&self, pcm: &[i16]) -> Option<u64> {
        let power: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
        if power < (32768.0f64 * 0.01).powi(2) {
            return None;
        }
        self.freqs
            .iter()
            .map(|&(id, f)| (id, goertzel(pcm, f) / pcm.len() as f64))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, p)| *p > 0.3 * power * pcm.len() as f64 / 2.0)
            .map(|(id, _)| id)
    }

    // ---------------------------------------------------------------- reading

    pub fn history(&self) -> Vec<Entry> {
        self.bridge.history().to_vec()
    }

    /// Times (since the start) the caller heard sentence `id`.
    pub fn heard_speech(&self, id: u64) -> Vec<Duration> {
        self.heard.iter().filter(|h| h.speech == Some(id)).map(|h| h.at).collect()
    }

    /// Ids of the sentences spoken so far.
    pub fn spoken(&self) -> Vec<(u64, String)> {
        self.actions.iter().filter_map(|(_, a)| if let Action::Speak { id, text, .. } = a { Some((id.0, text.clone())) } else { None }).collect()
    }

    pub fn when(&self, f: impl Fn(&Action) -> bool) -> Vec<Duration> {
        self.actions.iter().filter(|(_, a)| f(a)).map(|(t, _)| *t).collect()
    }

    pub fn speaking(&self) -> bool {
        self.heard.last().is_some_and(|h| h.speech.is_some())
    }

    /// Text of the committed entries, tagged.
    pub fn transcript(&self) -> Vec<String> {
        self.history()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Caller { text, .. } => Some(format!("caller: {text}")),
                Entry::Assistant { text, interrupted, tool_calls, .. } if tool_calls.is_empty() => {
                    Some(format!("assistant: {text}{}", if interrupted { " [interrupted]" } else { "" }))
                }
                Entry::Operator { text, .. } => Some(format!("operator: {text}")),
                _ => None,
            })
            .collect()
    }
}

pub fn tone(freq: f64, secs: f64) -> Vec<i16> {
    (0..(secs * 8_000.0) as usize).map(|i| (6_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8_000.0).sin()) as i16).collect()
}
