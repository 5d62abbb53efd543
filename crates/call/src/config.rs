//! How a conversation takes turns, with the defaults and why.

use std::time::Duration;

/// Whether the assistant speaks first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Opening {
    /// The first message is spoken as soon as the call is answered (an empty first message
    /// waits for the caller).
    #[default]
    Speak,
    /// The assistant waits for the caller to speak first, and answers that.
    WaitForCaller,
}

/// The settings of one conversation. [`ConversationConfig::default`] gives the documented
/// defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationConfig {
    /// The assistant's greeting (`firstMessage`).
    pub first_message: String,
    /// Who speaks first.
    pub opening: Opening,
    /// Voice needed before the caller's turn starts: shorter blips are not a turn. Default
    /// 120 ms (the voice detector's onset).
    pub min_speech: Duration,
    /// Silence after the caller's last voice before the turn may end, once the recogniser has
    /// given its final words. Default 500 ms (LiveKit's `min_endpointing_delay`): shorter cuts
    /// callers off between phrases; every extra 100 ms is heard as slowness.
    pub min_endpointing_delay: Duration,
    /// Silence after which the turn ends even without a final transcript (the partial words are
    /// taken, or nothing when there are none). Default 3 s (LiveKit's `max_endpointing_delay`).
    pub max_endpointing_delay: Duration,
    /// Caller voice (not echo) needed during the assistant's speech before playback is paused
    /// for a barge-in. Default 400 ms: longer than a cough, a click or a door, short enough that
    /// a caller is not talked over for long (LiveKit uses 500 ms).
    pub min_interruption: Duration,
    /// Words (other than backchannels) that confirm a barge-in. Default 1: any real word. 0
    /// confirms on voice alone.
    pub min_interruption_words: usize,
    /// After a barge-in pause, how long to wait for words before resuming playback where it
    /// stopped (a false interruption). Default 2 s (LiveKit's `false_interruption_timeout`).
    pub false_interruption_timeout: Duration,
    /// Resume after a false interruption (true), or treat every barge-in as confirmed.
    pub resume_false_interruptions: bool,
    /// Caller silence after the assistant finished speaking before it asks whether the caller is
    /// still there. Default 10 s. `None`: never.
    pub silence_reprompt: Option<Duration>,
    /// What it asks.
    pub reprompt_text: String,
    /// Silence after the reprompt before it says goodbye and hangs up. Default 10 s.
    pub silence_hangup: Duration,
    /// The goodbye after too long a silence.
    pub silence_goodbye: String,
    /// Longest call: then the goodbye is spoken and the call ends. `None`: no limit here (the
    /// daemon's `calls.max_duration_secs` still applies).
    pub max_duration: Option<Duration>,
    /// What is said when the maximum duration is reached.
    pub max_duration_goodbye: String,
    /// Pause between keypad digits that ends them. Default 2 s (Pipecat's); `#` ends them at once.
    pub dtmf_timeout: Duration,
    /// Without any of the reply's audio heard this long after the end of the caller's turn, the
    /// LLM or TTS attempt is taken as stalled and the next configured provider is tried.
    /// Default 2 s.
    pub stall_timeout: Duration,
    /// The longest silence the caller may face after their turn when providers fail: by then
    /// the apology is playing. Default 3 s.
    pub dead_air_limit: Duration,
    /// What is said when no provider can answer (synthesised ahead by the local engine).
    pub apology: String,
    /// Said when speech recognition fails for good: then the call ends.
    pub cannot_hear: String,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        ConversationConfig {
            first_message: String::new(),
            opening: Opening::Speak,
            min_speech: Duration::from_millis(120),
            min_endpointing_delay: Duration::from_millis(500),
            max_endpointing_delay: Duration::from_secs(3),
            min_interruption: Duration::from_millis(400),
            min_interruption_words: 1,
            false_interruption_timeout: Duration::from_secs(2),
            resume_false_interruptions: true,
            silence_reprompt: Some(Duration::from_secs(10)),
            reprompt_text: "Are you still there?".into(),
            silence_hangup: Duration::from_secs(10),
            silence_goodbye: "I haven't heard anything, so I'll end the call now. Goodbye!".into(),
            max_duration: None,
            max_duration_goodbye: "I'm sorry, we've reached the time limit for this call. Thank you for calling, goodbye!".into(),
            dtmf_timeout: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(2),
            dead_air_limit: Duration::from_secs(3),
            apology: "I'm sorry, I'm having trouble answering right now. Could you say that again?".into(),
            cannot_hear: "I'm sorry, I can't hear you right now. Please call again later. Goodbye.".into(),
        }
    }
}
