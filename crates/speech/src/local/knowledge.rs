//! An offline "LLM" that answers from the assistant's knowledge entries by retrieval.
//!
//! # Where the knowledge comes from
//!
//! The provider is built per assistant with its entries ([`KnowledgeLlm::new`] with a
//! [`KnowledgeBase`]), which indexes them once; a [`ChatRequest`] then only carries the
//! conversation and the tools. The system message (the assistant's prompt) and the model name are
//! not read: a prompt is instructions for a language model, and nothing here could follow them.
//! The gateway maps the Happ assistant's knowledge entries (name and text content) to
//! [`KnowledgeEntry`]s and builds a new provider when they change.
//!
//! # What it answers
//!
//! Only the last user message is read, in this order:
//!
//! 1. A request for a person ("can I talk to someone", "operator"), or a yes right after the
//!    fallback offered one: when a hand-off tool is offered (named `turnOffAiMode`, or containing
//!    `transfer` or `handoff`), a [`LlmEvent::ToolCall`] for it and no text; otherwise
//!    [`KnowledgeOptions::no_handoff`].
//! 2. Anything with words beyond greetings, thanks and goodbyes is looked up: BM25 over the
//!    entries' sentences; the best sentence answers if it covers enough of the question
//!    ([`KnowledgeOptions::min_coverage`]), with the other sentences of the same entry that score
//!    at least half as well, in their order, up to [`KnowledgeOptions::max_sentences`]. A
//!    question sentence of an FAQ ("Q: Do you deliver?") is answered with the sentence after it.
//! 3. A goodbye: [`KnowledgeOptions::goodbye`]; then, when a `hangup` (or `endCall`) tool is
//!    offered, a call to it after the text, so that the bridge speaks the goodbye before hanging up.
//! 4. Thanks, a greeting: their replies.
//! 5. Nothing matched: [`KnowledgeOptions::fallback`] (or [`KnowledgeOptions::fallback_no_handoff`]
//!    when no hand-off tool is offered: it would offer what cannot be done).
//!
//! When the last message is the result of its own hand-off call, it says
//! [`KnowledgeOptions::after_handoff`]; after any other tool result, nothing.
//!
//! The answer streams as text deltas of a few words ([`KnowledgeOptions::words_per_delta`]), as a
//! model's tokens would come, so the bridge's sentence splitting and speech pipelining work the
//! same as with a remote model. Everything is deterministic: the same conversation gets the same
//! answer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::intent::{self, Reading};
use super::retrieval::{Hit, Index};
use super::text::sentences;
use crate::Error;
use crate::llm::{ChatRequest, FinishReason, LlmEvent, LlmLatency, LlmProvider, LlmStream, LlmSummary, Message, ToolCall, ToolDef};

/// One knowledge entry: a title and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnowledgeEntry {
    /// What it is about, e.g. "Opening hours" (the Happ entry's `name`); its words count for
    /// every sentence of the entry.
    pub title: String,
    /// The content, plain text (the Happ entry's `resourceContent`).
    pub text: String,
}

impl KnowledgeEntry {
    /// An entry.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self { title: title.into(), text: text.into() }
    }
}

/// Knowledge entries, split into sentences and indexed.
#[derive(Clone, Debug, Default)]
pub struct KnowledgeBase {
    /// Per entry: its sentences.
    sentences: Vec<Vec<String>>,
    index: Index,
}

impl KnowledgeBase {
    /// Indexes `entries`.
    pub fn new(entries: Vec<KnowledgeEntry>) -> Self {
        let split: Vec<(String, Vec<String>)> = entries.into_iter().map(|e| (e.title, sentences(&e.text))).collect();
        let index = Index::new(&split);
        Self { sentences: split.into_iter().map(|(_, s)| s).collect(), index }
    }

    /// Sentences indexed.
    pub fn len(&self) -> usize {
        self.index.passages.len()
    }

    /// Whether there is nothing to answer from.
    pub fn is_empty(&self) -> bool {
        self.index.passages.is_empty()
    }

    /// The answer to `question` from the entries, as one to `max_sentences` sentences of one
    /// entry; `None` when no sentence covers `min_coverage` of the question.
    pub fn answer(&self, question: &str, min_coverage: f64, max_sentences: usize) -> Option<String> {
        let hits = self.index.search(question);
        let best = *hits.first().filter(|h| h.coverage >= min_coverage)?;
        let entry = self.index.passages[best.passage].entry;
        // Related sentences of the same entry, by position; the best one always.
        let mut chosen: Vec<usize> = hits
            .iter()
            .filter(|h| h.passage == best.passage || (self.index.passages[h.passage].entry == entry && h.score >= 0.5 * best.score))
            .map(|h: &Hit| self.index.passages[h.passage].position)
            .collect();
        chosen.sort_unstable();
        let entry_sentences = &self.sentences[entry];
        let mut answer: Vec<&str> = Vec::new();
        for position in chosen {
            let mut at = position;
            // A question in the text is answered by what follows it.
            while entry_sentences.get(at).is_some_and(|s| s.ends_with('?')) {
                at += 1;
            }
            let Some(sentence) = entry_sentences.get(at) else { continue };
            let sentence = strip_label(sentence);
            if !answer.contains(&sentence) {
                answer.push(sentence);
            }
        }
        answer.truncate(max_sentences.max(1));
        let mut text = answer.iter().map(|s| spoken(s)).collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return None;
        }
        text.shrink_to_fit();
        Some(text)
    }
}

/// What it says besides answers, and how it decides.
#[derive(Clone, Debug, PartialEq)]
pub struct KnowledgeOptions {
    /// When nothing in the knowledge answers, and a hand-off tool is offered.
    pub fallback: String,
    /// When nothing answers and no hand-off tool is offered.
    pub fallback_no_handoff: String,
    /// When the caller asks for a person and no hand-off tool is offered.
    pub no_handoff: String,
    /// After the hand-off tool's result, while the call is handed over.
    pub after_handoff: String,
    /// To a greeting.
    pub greeting: String,
    /// To thanks.
    pub thanks: String,
    /// To a goodbye.
    pub goodbye: String,
    /// The share of the question's weight the best sentence must match, 0 to 1. Default 0.45:
    /// "is there somewhere to park my car" answers from a sentence about free parking, "do you
    /// sell gift cards" does not answer from a sentence about paying by card.
    pub min_coverage: f64,
    /// Sentences in an answer at most. Default 3.
    pub max_sentences: usize,
    /// Words per text delta. Default 3.
    pub words_per_delta: usize,
}

impl Default for KnowledgeOptions {
    fn default() -> Self {
        Self {
            fallback: "I'm sorry, I don't know that. Would you like me to connect you to a person?".into(),
            fallback_no_handoff: "I'm sorry, I don't know that. Is there anything else I can help you with?".into(),
            no_handoff: "I'm sorry, I can't connect you to a person on this line, but I'm happy to help with your question.".into(),
            after_handoff: "One moment please, I'm connecting you.".into(),
            greeting: "Hello! How can I help you?".into(),
            thanks: "You're welcome! Is there anything else I can help you with?".into(),
            goodbye: "Thank you for calling. Goodbye!".into(),
            min_coverage: 0.45,
            max_sentences: 3,
            words_per_delta: 3,
        }
    }
}

struct Inner {
    base: KnowledgeBase,
    options: KnowledgeOptions,
}

/// The knowledge-base LLM provider; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct KnowledgeLlm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KnowledgeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeLlm").field("sentences", &self.inner.base.len()).field("options", &self.inner.options).finish()
    }
}

/// What to answer, before it is cut into events.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    text: String,
    tool: Option<ToolCall>,
}

impl KnowledgeLlm {
    /// A provider answering from `base`.
    pub fn new(base: KnowledgeBase, options: KnowledgeOptions) -> Self {
        Self { inner: Arc::new(Inner { base, options }) }
    }

    /// Starts answering `request`, with the stream's concrete type.
    pub fn stream(&self, request: ChatRequest) -> KnowledgeStream {
        KnowledgeStream {
            inner: Arc::clone(&self.inner),
            state: State::Idle(Box::new(request)),
            pending: VecDeque::new(),
            latency: LlmLatency::default(),
            chunks: 0,
        }
    }
}

impl LlmProvider for KnowledgeLlm {
    fn name(&self) -> &str {
        "knowledge"
    }

    fn chat(&self, request: ChatRequest) -> Result<Box<dyn LlmStream>, Error> {
        Ok(Box::new(self.stream(request)))
    }
}

impl Inner {
    fn reply(&self, request: &ChatRequest) -> Reply {
        let o = &self.options;
        let handoff_tool = request.tools.iter().find(|t| is_handoff(&t.name));
        let hangup_tool = request.tools.iter().find(|t| is_hangup(&t.name));
        let say = |text: &str| Reply { text: text.to_owned(), tool: None };

        // After a tool result: the bridge calls again with it.
        if let Some(Message::Tool { call_id, .. }) = request.messages.last() {
            let name = request.messages.iter().rev().find_map(|m| match m {
                Message::Assistant { tool_calls, .. } => tool_calls.iter().find(|c| c.id == *call_id).map(|c| c.name.clone()),
                _ => None,
            });
            return if name.is_some_and(|n| is_handoff(&n)) { say(&o.after_handoff) } else { say("") };
        }
        let Some(utterance) = request.messages.iter().rev().find_map(|m| if let Message::User(u) = m { Some(u.as_str()) } else { None }) else {
            return say(&o.greeting);
        };
        let reading = intent::read(utterance);
        // A yes to the fallback's offer of a person.
        let offered = matches!(request.messages.iter().rev().nth(1), Some(Message::Assistant { content, .. }) if content.trim() == o.fallback.trim());
        let handoff = reading.handoff || (offered && reading.yes && !reading.content);
        if handoff {
            return match handoff_tool {
                Some(tool) => Reply { text: String::new(), tool: Some(call(tool, utterance)) },
                None => say(&o.no_handoff),
            };
        }
        if reading.content
            && let Some(answer) = self.base.answer(utterance, o.min_coverage, o.max_sentences)
        {
            return say(&answer);
        }
        match reading {
            Reading { goodbye: true, .. } => Reply { text: o.goodbye.clone(), tool: hangup_tool.map(|t| call(t, utterance)) },
            Reading { thanks: true, content: false, .. } => say(&o.thanks),
            Reading { greeting: true, content: false, .. } => say(&o.greeting),
            _ if handoff_tool.is_some() => say(&o.fallback),
            _ => say(&o.fallback_no_handoff),
        }
    }
}

/// `turnOffAiMode` (Happ's built-in hand-off to the human operator), or a tool about transfers.
fn is_handoff(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "turnoffaimode" || n.contains("transfer") || n.contains("handoff") || n.contains("hand_off")
}

fn is_hangup(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "hangup" | "hang_up" | "endcall" | "end_call")
}

/// A call of `tool`: `{}`, with a `reason` (or `summary`) quoting the caller when the tool's schema
/// has such a string property, for whoever takes the call over.
fn call(tool: &ToolDef, utterance: &str) -> ToolCall {
    let mut args = serde_json::Map::new();
    if let Some(props) = tool.parameters.get("properties").and_then(|p| p.as_object()) {
        for (name, schema) in props {
            let is_string = schema.get("type").and_then(|t| t.as_str()) == Some("string");
            if is_string && (name.contains("reason") || name.contains("summary")) {
                args.insert(name.clone(), serde_json::Value::String(format!("The caller said: {}", utterance.trim())));
            }
        }
    }
    ToolCall { id: format!("call_{}", tool.name), name: tool.name.clone(), arguments: serde_json::Value::Object(args).to_string() }
}

/// A FAQ line without its "Q:"/"A:" label.
fn strip_label(sentence: &str) -> &str {
    for label in ["A:", "Answer:", "Q:", "Question:"] {
        if let Some(rest) = sentence.strip_prefix(label) {
            return rest.trim_start();
        }
    }
    sentence
}

/// A sentence as it should be spoken: ending in punctuation, so that the bridge's sentence
/// splitting and the synthesiser's intonation see its end.
fn spoken(sentence: &str) -> String {
    let s = sentence.trim();
    if s.ends_with(['.', '!', '?']) { s.to_owned() } else { format!("{s}.") }
}

enum State {
    /// Not polled yet.
    Idle(Box<ChatRequest>),
    /// Giving the pending events.
    Answering,
    Cancelled,
    Done,
}

/// A running answer; see the [module docs](self).
pub struct KnowledgeStream {
    inner: Arc<Inner>,
    state: State,
    pending: VecDeque<LlmEvent>,
    latency: LlmLatency,
    chunks: u64,
}

impl std::fmt::Debug for KnowledgeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeStream").field("pending", &self.pending).field("latency", &self.latency).finish_non_exhaustive()
    }
}

impl KnowledgeStream {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<LlmEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Latency so far.
    pub fn latency(&self) -> LlmLatency {
        self.latency
    }

    /// Works out the answer and queues its events.
    fn answer(&mut self, request: &ChatRequest, started: Instant) {
        let reply = self.inner.reply(request);
        let elapsed = started.elapsed();
        self.latency.first_byte = Some(elapsed);
        let words: Vec<&str> = reply.text.split_whitespace().collect();
        let group = self.inner.options.words_per_delta.max(1);
        let groups = words.len().div_ceil(group);
        for (i, chunk) in words.chunks(group).enumerate() {
            // Each delta but the last ends with the space before the next word, as model tokens do.
            let mut text = chunk.join(" ");
            if i + 1 < groups {
                text.push(' ');
            }
            self.pending.push_back(LlmEvent::Text(text));
        }
        let finish = if let Some(tool) = reply.tool {
            self.pending.push_back(LlmEvent::ToolCall(tool));
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        };
        self.chunks = self.pending.len() as u64;
        if !self.pending.is_empty() {
            self.latency.first_token = Some(elapsed);
        }
        self.latency.total = started.elapsed();
        self.pending.push_back(LlmEvent::Done(LlmSummary { finish, latency: self.latency, chunks: self.chunks }));
    }
}

impl LlmStream for KnowledgeStream {
    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Result<LlmEvent, Error>>> {
        match std::mem::replace(&mut self.state, State::Answering) {
            State::Idle(request) => {
                self.answer(&request, Instant::now());
            }
            State::Cancelled => {
                self.state = State::Done;
                return Poll::Ready(Some(Err(Error::Cancelled)));
            }
            State::Done => {
                self.state = State::Done;
                return Poll::Ready(None);
            }
            State::Answering => {}
        }
        match self.pending.pop_front() {
            Some(event) => {
                if matches!(event, LlmEvent::Done(_)) {
                    self.state = State::Done;
                }
                Poll::Ready(Some(Ok(event)))
            }
            None => {
                self.state = State::Done;
                Poll::Ready(None)
            }
        }
    }

    fn cancel(&mut self) {
        if !matches!(self.state, State::Done) {
            self.state = State::Cancelled;
            self.pending.clear();
        }
    }
}
