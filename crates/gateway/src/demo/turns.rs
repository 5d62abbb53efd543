//! Turn-taking of the demo caller, sans-IO: when to speak the next line, and what the gateway
//! answered, from the audio on the wire.
//!
//! ```text
//!   (no greeting expected)  Settling ──settle time──▶ Speaking(0)
//!   (greeting expected)     Listening(greeting)
//!
//!   Speaking(n) ──line sent──▶ Listening(n) ──answer over──▶ Speaking(n + 1) … ──last──▶ Done
//!                                   │ no voice within answer_start
//!                                   └──────────────────────▶ (NoAnswer) next line, or Done
//! ```
//!
//! An answer starts with the gateway's first voiced packet after the line began (an echo
//! starts while the caller still speaks) and is over when the gateway has been silent for
//! `end_silence` after it: [`Vad`] with that hangover. Its latency is from the caller's last
//! voiced packet sent to that first voiced packet received, both taken at the socket.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use happ_media::vad::{FRAME, Vad, VadConfig, VadEvent};

/// Timing of the conversation.
#[derive(Clone, Copy, Debug)]
pub struct TurnConfig {
    /// Silence before the first line when no greeting is expected.
    pub settle: Duration,
    /// Longest wait for the gateway's voice to start after a line (or the answer).
    pub answer_start: Duration,
    /// Longest answer; a longer one is taken as over.
    pub answer_max: Duration,
    /// Gateway silence that ends its turn.
    pub end_silence: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            settle: Duration::from_millis(500),
            answer_start: Duration::from_secs(15),
            answer_max: Duration::from_secs(30),
            end_silence: Duration::from_millis(1200),
        }
    }
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send line `n`'s audio now, then call [`Turns::line_sent`].
    Speak(usize),
    /// The script is over: hang up.
    Hangup,
}

/// An answer of the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The line it answers; `None` for the greeting.
    pub after: Option<usize>,
    /// Its first voiced packet's arrival.
    pub start: Instant,
    /// The end of its last voice.
    pub end: Instant,
    /// From the caller's last voiced packet of the line to `start`; `None` for the greeting, or
    /// when the gateway's voice began before the caller's ended (an echo).
    pub latency: Option<Duration>,
}

/// What happened, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// The caller began line `n` at this time.
    Line(usize, Instant),
    /// The gateway answered.
    Answer(Answer),
    /// No voice came within [`TurnConfig::answer_start`] after line `after` (`None`: the greeting).
    NoAnswer {
        /// The line left unanswered.
        after: Option<usize>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Settling { until: Instant },
    Speaking { line: usize },
    Listening { after: Option<usize>, since: Instant, caller_end: Option<Instant> },
    Done,
}

/// The caller's side of the conversation. See the [module docs](self).
#[derive(Debug)]
pub struct Turns {
    config: TurnConfig,
    lines: usize,
    state: State,
    vad: Vad,
    /// Where the gateway's current voice began (since the line began).
    onset: Option<Instant>,
    /// Where its voice last ended, after `onset`.
    voice_end: Option<Instant>,
    /// The caller's last voiced packet sent.
    last_voiced_sent: Option<Instant>,
    actions: VecDeque<Action>,
    notes: VecDeque<Note>,
}

/// Mean square above which a sent frame is voice (-40 dBFS): espeak-ng's pauses are digital
/// silence, its speech tens of dB louder.
const VOICED_MEAN_SQUARE: i64 = 328 * 328;

impl Turns {
    /// A conversation of `lines` lines starting at `now` (the call's answer); with
    /// `expect_greeting`, the gateway speaks first.
    pub fn new(config: TurnConfig, lines: usize, expect_greeting: bool, now: Instant) -> Self {
        let vad = VadConfig { hangover: config.end_silence, ..VadConfig::new(8_000) };
        // Invariant: the defaults at 8 kHz with another hangover are a valid configuration.
        let vad = Vad::new(vad).expect("the VAD defaults at 8 kHz are valid");
        let state =
            if expect_greeting { State::Listening { after: None, since: now, caller_end: None } } else { State::Settling { until: now + config.settle } };
        Self { config, lines, state, vad, onset: None, voice_end: None, last_voiced_sent: None, actions: VecDeque::new(), notes: VecDeque::new() }
    }

    /// A frame of the gateway's audio arrived at `now` (decoded; 20 ms).
    pub fn handle_received(&mut self, now: Instant, pcm: &[i16]) {
        match self.vad.process(pcm).event {
            // `since` runs from the first voiced frame's start to this frame's end.
            Some(VadEvent::SpeechStart { since }) if self.onset.is_none() => {
                self.onset = Some(now.checked_sub(since.saturating_sub(FRAME)).unwrap_or(now));
            }
            Some(VadEvent::SpeechEnd { silence }) if self.onset.is_some() => {
                self.voice_end = Some(now.checked_sub(silence).unwrap_or(now));
            }
            _ => {}
        }
        self.handle_timeout(now);
    }

    /// A frame of the caller's audio was sent at `now`.
    pub fn handle_sent(&mut self, now: Instant, pcm: &[i16]) {
        if !pcm.is_empty() {
            let energy: i64 = pcm.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
            if energy / pcm.len() as i64 > VOICED_MEAN_SQUARE {
                self.last_voiced_sent = Some(now);
            }
        }
    }

    /// All of the current line's audio has been sent.
    pub fn line_sent(&mut self, now: Instant) {
        if let State::Speaking { line } = self.state {
            self.state = State::Listening { after: Some(line), since: now, caller_end: self.last_voiced_sent };
        }
    }

    /// Advances the clock: settle time, answers over, timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Settling { until } if now >= until => self.speak(0, now),
            State::Listening { after, since, caller_end } => {
                let over = match (self.onset, self.voice_end) {
                    (Some(start), Some(end)) if !self.vad.speaking() => Some((start, end)),
                    (Some(start), _) if now.saturating_duration_since(start) >= self.config.answer_max => Some((start, now)),
                    _ => None,
                };
                if let Some((start, end)) = over {
                    let latency = caller_end.filter(|&c| start > c).map(|c| start - c);
                    self.notes.push_back(Note::Answer(Answer { after, start, end, latency }));
                    self.next(after, now);
                } else if self.onset.is_none() && now.saturating_duration_since(since) >= self.config.answer_start {
                    self.notes.push_back(Note::NoAnswer { after });
                    self.next(after, now);
                }
            }
            _ => {}
        }
    }

    /// The call ended: an answer in progress is reported as it stands.
    pub fn finish(&mut self, now: Instant) {
        if let (State::Listening { after, caller_end, .. }, Some(start)) = (self.state, self.onset) {
            let latency = caller_end.filter(|&c| start > c).map(|c| start - c);
            self.notes.push_back(Note::Answer(Answer { after, start, end: self.voice_end.unwrap_or(now), latency }));
        }
        self.state = State::Done;
    }

    /// When [`Turns::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Settling { until } => Some(until),
            State::Listening { since, .. } => Some(match self.onset {
                Some(start) => start + self.config.answer_max,
                None => since + self.config.answer_start,
            }),
            _ => None,
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing to report.
    pub fn poll_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    fn next(&mut self, after: Option<usize>, now: Instant) {
        let next = after.map_or(0, |n| n + 1);
        if next < self.lines {
            self.speak(next, now);
        } else {
            self.state = State::Done;
            self.actions.push_back(Action::Hangup);
        }
    }

    fn speak(&mut self, line: usize, now: Instant) {
        // A voice still going on (an answer cut at answer_max) counts from now.
        self.onset = self.vad.speaking().then_some(now);
        self.voice_end = None;
        self.state = State::Speaking { line };
        self.actions.push_back(Action::Speak(line));
        self.notes.push_back(Note::Line(line, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 ms frame at `t`: a 300 Hz tone whose loudness moves like syllables (4 Hz, about
    /// 10 dB), or silence.
    fn frame_at(voice: bool, t: Duration) -> Vec<i16> {
        let start = t.as_secs_f64();
        (0..160)
            .map(|i| {
                let s = start + i as f64 / 8000.0;
                let envelope = 0.3 + 0.7 * (2.0 * std::f64::consts::PI * 4.0 * s).sin().abs();
                if voice { (8000.0 * envelope * (2.0 * std::f64::consts::PI * 300.0 * s).sin()) as i16 } else { 0 }
            })
            .collect()
    }

    /// A virtual call: frames every 20 ms, the gateway's voice decided by `gateway(t)`, the
    /// caller's lines `line_frames` long.
    struct Sim {
        turns: Turns,
        t0: Instant,
        now: Instant,
        speaking: Option<(usize, usize)>,
        notes: Vec<Note>,
        hung_up: bool,
    }

    impl Sim {
        fn new(config: TurnConfig, lines: usize, greeting: bool) -> Sim {
            let t0 = Instant::now();
            Sim { turns: Turns::new(config, lines, greeting, t0), t0, now: t0, speaking: None, notes: Vec::new(), hung_up: false }
        }

        /// Runs until hangup or `limit`; `gateway` says whether the gateway speaks at `t`.
        fn run(&mut self, line_frames: usize, limit: Duration, mut gateway: impl FnMut(Duration, &[Note]) -> bool) {
            while !self.hung_up && self.now - self.t0 < limit {
                self.now += FRAME;
                let voice = gateway(self.now - self.t0, &self.notes);
                self.turns.handle_received(self.now, &frame_at(voice, self.now - self.t0));
                let sent = match &mut self.speaking {
                    Some((_, left)) if *left > 0 => {
                        *left -= 1;
                        true
                    }
                    _ => false,
                };
                self.turns.handle_sent(self.now, &frame_at(sent, self.now - self.t0));
                if let Some((_, 0)) = self.speaking {
                    self.speaking = None;
                    self.turns.line_sent(self.now);
                }
                self.turns.handle_timeout(self.now);
                while let Some(a) = self.turns.poll_action() {
                    match a {
                        Action::Speak(n) => self.speaking = Some((n, line_frames)),
                        Action::Hangup => self.hung_up = true,
                    }
                }
                while let Some(n) = self.turns.poll_note() {
                    self.notes.push(n);
                }
            }
        }

        fn answers(&self) -> Vec<Answer> {
            self.notes.iter().filter_map(|n| if let Note::Answer(a) = n { Some(*a) } else { None }).collect()
        }
    }

    fn line_start(notes: &[Note], n: usize) -> Option<Instant> {
        notes.iter().find_map(|x| if let Note::Line(i, t) = x { (*i == n).then_some(*t) } else { None })
    }

    #[test]
    fn an_assistant_greets_then_answers_each_line_after_a_pause() {
        let mut sim = Sim::new(TurnConfig::default(), 3, true);
        let t0 = sim.t0;
        // Greeting from 0.2 s to 1.2 s; each answer 700 ms after the line ends, for 1 s.
        sim.run(50, Duration::from_secs(60), |t, notes| {
            if t >= Duration::from_millis(200) && t < Duration::from_millis(1200) {
                return true;
            }
            (0..3).any(|n| {
                line_start(notes, n).is_some_and(|s| {
                    let end = s - t0 + FRAME * 50;
                    t >= end + Duration::from_millis(700) && t < end + Duration::from_millis(1700)
                })
            })
        });
        assert!(sim.hung_up);
        let answers = sim.answers();
        assert_eq!(answers.iter().map(|a| a.after).collect::<Vec<_>>(), [None, Some(0), Some(1), Some(2)]);
        assert_eq!(answers[0].latency, None);
        for a in &answers[1..] {
            let latency = a.latency.expect("a latency after each line");
            // The gateway's voice starts 700 ms after the line's audio ends, within a few frames.
            assert!(latency >= Duration::from_millis(640) && latency <= Duration::from_millis(760), "{latency:?}");
            assert!(a.end > a.start);
        }
        // The first line waits for the greeting's end plus the silence that ends a turn (to
        // the frame).
        let first = line_start(&sim.notes, 0).expect("test setup") - t0;
        assert!(first + FRAME >= Duration::from_millis(1200) + TurnConfig::default().end_silence, "{first:?}");
    }

    #[test]
    fn an_echo_overlaps_the_line_and_has_no_latency() {
        let mut sim = Sim::new(TurnConfig::default(), 2, false);
        let t0 = sim.t0;
        // The gateway repeats each line 60 ms later.
        sim.run(40, Duration::from_secs(30), |t, notes| {
            (0..2).any(|n| {
                line_start(notes, n).is_some_and(|s| {
                    let start = s - t0 + Duration::from_millis(80);
                    t >= start && t < start + FRAME * 40
                })
            })
        });
        assert!(sim.hung_up);
        let answers = sim.answers();
        assert_eq!(answers.iter().map(|a| a.after).collect::<Vec<_>>(), [Some(0), Some(1)]);
        assert!(answers.iter().all(|a| a.latency.is_none()));
        // Line 0 starts after the settle time.
        assert_eq!(line_start(&sim.notes, 0).expect("test setup") - t0, TurnConfig::default().settle);
    }

    #[test]
    fn silence_times_out_and_the_script_goes_on() {
        let config = TurnConfig { answer_start: Duration::from_secs(2), ..TurnConfig::default() };
        let mut sim = Sim::new(config, 2, true);
        sim.run(10, Duration::from_secs(30), |_, _| false);
        assert!(sim.hung_up);
        let missing: Vec<_> = sim.notes.iter().filter_map(|n| if let Note::NoAnswer { after } = n { Some(*after) } else { None }).collect();
        assert_eq!(missing, [None, Some(0), Some(1)]);
        assert!(sim.answers().is_empty());
    }

    #[test]
    fn an_endless_answer_is_cut_at_answer_max() {
        let config = TurnConfig { answer_max: Duration::from_secs(3), ..TurnConfig::default() };
        let mut sim = Sim::new(config, 1, true);
        sim.run(10, Duration::from_secs(20), |t, _| t >= Duration::from_millis(200) && t < Duration::from_secs(10));
        let answers = sim.answers();
        assert_eq!(answers[0].after, None);
        assert_eq!(answers[0].end - answers[0].start, Duration::from_secs(3));
    }

    #[test]
    fn finish_reports_the_answer_in_progress() {
        let t0 = Instant::now();
        let mut turns = Turns::new(TurnConfig::default(), 1, true, t0);
        let mut now = t0;
        for i in 0..60 {
            now += FRAME;
            turns.handle_received(now, &frame_at(i >= 10, now - t0));
        }
        turns.finish(now);
        assert_eq!(turns.poll_timeout(), None, "over");
        assert!(matches!(turns.poll_note(), Some(Note::Answer(Answer { after: None, .. }))));
    }
}
