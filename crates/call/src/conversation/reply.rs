//! One assistant reply: its LLM generations, its sentences and where their audio sits in the
//! playout, so that what the caller heard can be told to the word.

use std::time::{Duration, Instant};

use crate::text::{SentenceSplitter, heard_part};
use crate::types::{Generation, SpeechId, ToolRequest};

/// Where a reply's words come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The LLM, answering the caller.
    Llm,
    /// A fixed text (the first message, a reprompt, a goodbye).
    Fixed,
    /// An operator's message after a hand-off.
    Operator,
}

/// A sentence and its audio.
#[derive(Clone, Debug)]
pub(crate) struct Sentence {
    pub(crate) id: SpeechId,
    pub(crate) text: String,
    /// The TTS provider synthesising it.
    pub(crate) provider: usize,
    /// Where its audio starts in the playout (cumulative audio queued since the call began).
    pub(crate) start: Option<Duration>,
    /// Its audio queued so far.
    pub(crate) len: Duration,
    /// All its audio is queued (or it was given up).
    pub(crate) complete: bool,
    /// The canned apology.
    pub(crate) canned: bool,
    /// Its synthesis was retried once after a transient failure.
    pub(crate) retried: bool,
}

impl Sentence {
    /// An estimate of the audio a sentence will have, for a sentence still being synthesised:
    /// about 15 characters per second of speech.
    fn expected_len(&self) -> Duration {
        Duration::from_millis(self.text.chars().count() as u64 * 65)
    }

    /// The part heard when playback stood at `played`.
    pub(crate) fn heard(&self, played: Duration) -> &str {
        let Some(start) = self.start else { return "" };
        let heard = played.saturating_sub(start);
        if self.complete && heard >= self.len {
            return &self.text;
        }
        let total = if self.complete { self.len } else { self.len.max(self.expected_len()) };
        heard_part(&self.text, heard.as_secs_f64() / total.as_secs_f64().max(1e-9))
    }
}

/// The reply in progress.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) source: Source,
    /// The LLM request in flight, with its provider, or `None` when none is.
    pub(crate) generation: Option<(Generation, usize)>,
    /// The current generation has completed.
    pub(crate) llm_done: bool,
    pub(crate) splitter: SentenceSplitter,
    /// The current generation's text, for a message with tool calls.
    pub(crate) generation_text: String,
    pub(crate) sentences: Vec<Sentence>,
    /// Sentences before this index were committed with a tool-call message.
    pub(crate) committed: usize,
    /// Tool calls of the current generation, and how many results are awaited.
    pub(crate) tool_calls: Vec<ToolRequest>,
    pub(crate) awaiting_tools: usize,
    /// Continue with another generation once the tool results are in.
    pub(crate) continue_after_tools: bool,
    /// End the call once this reply has been heard.
    pub(crate) hangup_after: Option<String>,
    /// The caller may interrupt it.
    pub(crate) interruptible: bool,
    /// Playback held for a barge-in since then.
    pub(crate) paused_at: Option<Instant>,
    /// The caller's last voice and the end of their turn, for an answer.
    pub(crate) speech_end: Option<Instant>,
    pub(crate) turn_end: Option<Instant>,
    pub(crate) stt_final: Option<Instant>,
    pub(crate) first_token: Option<Instant>,
    pub(crate) first_audio: Option<Instant>,
    /// When its first sample went out, and where that was in the playout.
    pub(crate) first_played: Option<Instant>,
    /// The apology was played: nothing more is tried.
    pub(crate) apologised: bool,
    /// The stall deadline was acted on (once per reply).
    pub(crate) stall_handled: bool,
    /// The LLM request was retried once after a transient failure.
    pub(crate) llm_retried: bool,
}

impl Reply {
    pub(crate) fn new(source: Source, interruptible: bool) -> Reply {
        Reply {
            source,
            generation: None,
            llm_done: true,
            splitter: SentenceSplitter::default(),
            generation_text: String::new(),
            sentences: Vec::new(),
            committed: 0,
            tool_calls: Vec::new(),
            awaiting_tools: 0,
            continue_after_tools: false,
            hangup_after: None,
            interruptible,
            paused_at: None,
            speech_end: None,
            turn_end: None,
            stt_final: None,
            first_token: None,
            first_audio: None,
            first_played: None,
            apologised: false,
            stall_handled: false,
            llm_retried: false,
        }
    }

    /// Where the reply's first audio starts in the playout.
    pub(crate) fn start(&self) -> Option<Duration> {
        self.sentences.iter().find_map(|s| s.start)
    }

    /// Where its queued audio ends.
    pub(crate) fn end(&self) -> Option<Duration> {
        self.sentences.iter().rev().find_map(|s| s.start.map(|start| start + s.len))
    }

    /// Nothing more will be added: the LLM and the tools are done, every sentence is synthesised.
    pub(crate) fn complete(&self) -> bool {
        self.generation.is_none() && self.awaiting_tools == 0 && self.sentences.iter().all(|s| s.complete)
    }

    /// The reply was fully heard at `played`.
    pub(crate) fn heard_all(&self, played: Duration) -> bool {
        self.complete() && self.end().is_none_or(|end| played >= end)
    }

    /// The uncommitted sentences as heard at `played`: the text, and whether it was cut.
    pub(crate) fn heard(&self, played: Duration) -> (String, bool) {
        let mut parts = Vec::new();
        let mut cut = false;
        for s in &self.sentences[self.committed..] {
            let heard = s.heard(played);
            if !heard.is_empty() {
                parts.push(heard);
            }
            if heard.len() < s.text.len() {
                cut = true;
                break;
            }
        }
        (parts.join(" "), cut)
    }

    /// Everything the reply says or will say (for telling its echo from the caller).
    pub(crate) fn text(&self) -> String {
        let mut all: Vec<&str> = self.sentences.iter().map(|s| s.text.as_str()).collect();
        all.push(&self.generation_text);
        all.join(" ")
    }

    /// The sentence `id`.
    pub(crate) fn sentence_mut(&mut self, id: SpeechId) -> Option<&mut Sentence> {
        self.sentences.iter_mut().find(|s| s.id == id)
    }
}
