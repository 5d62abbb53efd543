//! What goes in and out of the conversation: identifiers, transcript entries, actions.

use std::time::Duration;

/// One LLM request. A new generation starts for each answer, each continuation after tool
/// results, and each retry on another provider; events of older generations are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

/// One piece of text to speak (a sentence), synthesised by one TTS stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpeechId(pub u64);

/// How a provider request failed, as far as what to do next goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    /// Another configured provider is worth trying.
    pub fall_back: bool,
    /// The same request to the same provider may succeed at once (a transient failure).
    pub retry: bool,
}

impl Failure {
    /// A failure nothing can mend (nothing else is configured, a request no provider takes).
    pub const FINAL: Failure = Failure { fall_back: false, retry: false };
    /// A transient failure: retry, then fall back.
    pub const TRANSIENT: Failure = Failure { fall_back: true, retry: true };
}

/// A tool call the model made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolRequest {
    /// The model's call id, answered by [`Entry::ToolResult`].
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments as the model wrote them (normally a JSON object).
    pub arguments: String,
}

/// One entry of the conversation, in the order it happened; what the LLM sees as history and
/// what is mirrored to the chat and kept as the call's transcript.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// What the caller said (recognised) or pressed (`[keypad] 123#`).
    Caller {
        /// The words.
        text: String,
        /// When the turn ended, since the call was answered.
        at: Duration,
    },
    /// What the assistant said: exactly what the caller heard, cut where playback stopped.
    Assistant {
        /// The words heard.
        text: String,
        /// When its audio started, since the call was answered (or when it was committed, for a
        /// message with tool calls whose text is empty).
        at: Duration,
        /// Cut short by the caller (barge-in, a digit) or by the call's end.
        interrupted: bool,
        /// Tools the model called in this message; their results follow as
        /// [`Entry::ToolResult`]s.
        tool_calls: Vec<ToolRequest>,
        /// From the end of the caller's speech to the first packet of this answer on the wire.
        latency: Option<Duration>,
    },
    /// A human operator's message, spoken to the caller after a hand-off; already in the chat.
    Operator {
        /// The words heard.
        text: String,
        /// When its audio started.
        at: Duration,
        /// Cut short.
        interrupted: bool,
    },
    /// A tool's result, for the model.
    ToolResult {
        /// The [`ToolRequest::id`] answered.
        call_id: String,
        /// The result (JSON or text), or an error the model can speak about.
        content: String,
    },
}

/// Per-turn latencies of one answer, each from the end of the caller's speech (the last voiced
/// frame) unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnLatency {
    /// To the recogniser's final words for the turn (none when the turn ended on partial words).
    pub stt_final: Option<Duration>,
    /// To the decision that the turn ended (the endpointing delay plus waiting for the final).
    pub end_of_turn: Duration,
    /// To the LLM's first token.
    pub llm_first_token: Option<Duration>,
    /// To the first synthesised audio of the answer.
    pub tts_first_audio: Option<Duration>,
    /// To the first packet of the answer on the wire: the voice-to-voice latency.
    pub first_packet: Duration,
}

/// Something the driver must do. The playback actions act on the call's media session at once
/// (the bridge executes them itself, in the same loop turn: barge-in takes no channel hop).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start an LLM request for `generation` with the conversation's [`history`]
    /// (crate::Conversation::history), on the `provider`-th configured LLM (0 the primary,
    /// then the fallbacks).
    ///
    /// [`history`]: crate::Conversation::history
    StartLlm {
        /// The request's generation.
        generation: Generation,
        /// Which configured provider.
        provider: usize,
    },
    /// Abort that request (its later events are ignored anyway).
    CancelLlm(Generation),
    /// Synthesise `text` and queue its audio after that of earlier ids.
    Speak {
        /// The piece.
        id: SpeechId,
        /// What to say.
        text: String,
        /// Which configured TTS provider (0 the primary).
        provider: usize,
        /// Play the apology synthesised ahead by the local engine instead of synthesising
        /// `text` (which is the apology's text): works when every TTS is down.
        canned: bool,
    },
    /// Abort the synthesis of `id` and drop its audio not yet played.
    CancelSpeech(SpeechId),
    /// Hold playback at once, keeping the queue (a barge-in under review).
    PausePlayback,
    /// Play on from where the pause stopped (a false interruption).
    ResumePlayback,
    /// Drop all queued playback (a confirmed interruption).
    FlushPlayback,
    /// The caller's speech ended (the VAD's silence): a recogniser that transcribes per
    /// utterance sends it now.
    EndOfSpeech,
    /// (Re)start speech recognition on the `provider`-th configured recogniser.
    StartStt {
        /// Which configured provider.
        provider: usize,
    },
    /// Run a tool; answer with [`handle_tool_result`](crate::Conversation::handle_tool_result).
    CallTool(ToolRequest),
    /// A new entry of the transcript: mirror it to the chat and keep it with the call.
    Commit(Entry),
    /// The chat's AI control changes (the assistant handed off).
    SetAiControl(bool),
    /// The latencies of an answer, once its first packet went out.
    Latency(TurnLatency),
    /// End the call (after a goodbye was heard, or when nothing else can be done).
    Hangup {
        /// Why, for the call's record.
        reason: String,
    },
}
