//! The LLM chat stream: messages and tool definitions in, text deltas and complete tool calls out.

use std::task::{Context, Poll};
use std::time::Duration;

use crate::Error;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Instructions: the assistant's prompt, knowledge.
    System,
    /// The caller (or an operator's text relayed as the caller's side).
    User,
    /// The model's earlier answers.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Instructions to the model.
    System(String),
    /// What the caller said.
    User(String),
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The spoken part (may be empty when the model only called tools).
        content: String,
        /// The tool calls it made, answered by the [`Message::Tool`]s that follow.
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's result.
    Tool {
        /// The [`ToolCall::id`] it answers.
        call_id: String,
        /// The result, usually JSON.
        content: String,
    },
}

impl Message {
    /// The message's role.
    pub fn role(&self) -> Role {
        match self {
            Self::System(_) => Role::System,
            Self::User(_) => Role::User,
            Self::Assistant { .. } => Role::Assistant,
            Self::Tool { .. } => Role::Tool,
        }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDef {
    /// Function name, e.g. `transfer`.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its parameters as a JSON Schema object.
    pub parameters: serde_json::Value,
}

/// A complete tool call, assembled from the provider's deltas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's call id, to answer with [`Message::Tool`]. Providers that give none get
    /// `call_{index}`.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments exactly as the model wrote them: normally a JSON object, but a model can
    /// write invalid JSON, so the bridge parses it ([`ToolCall::arguments_json`]) and may tell the
    /// model. Empty when the model sent no arguments.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed as JSON; empty arguments read as `{}`.
    pub fn arguments_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.arguments.trim().is_empty() { Ok(serde_json::Value::Object(serde_json::Map::new())) } else { serde_json::from_str(&self.arguments) }
    }
}

/// A chat request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// The model, e.g. `gpt-4o-mini` or `llama3.1:8b` (the assistant's `llmModel`).
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools offered; the model chooses whether to call them.
    pub tools: Vec<ToolDef>,
    /// Sampling temperature, if not the provider's default.
    pub temperature: Option<f32>,
    /// An upper bound on the answer's tokens, if any.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request with no tools and the provider's defaults.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { model: model.into(), messages, tools: Vec::new(), temperature: None, max_tokens: None }
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end of the answer.
    Stop,
    /// The token limit.
    Length,
    /// It called tools and waits for their results.
    ToolCalls,
    /// The provider's content filter.
    ContentFilter,
    /// Another reason, as the provider named it.
    Other(String),
    /// The stream ended properly without naming a reason.
    Unspecified,
}

/// Latency of one chat stream, measured from the moment it was first polled (the request left).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LlmLatency {
    /// Until the response headers arrived.
    pub first_byte: Option<Duration>,
    /// Until the first text delta or tool-call fragment: what the caller waits for.
    pub first_token: Option<Duration>,
    /// Until the end of the stream.
    pub total: Duration,
}

/// The end of a chat stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlmSummary {
    /// Why the model stopped.
    pub finish: FinishReason,
    /// How long it took.
    pub latency: LlmLatency,
    /// Data chunks received (for overhead accounting).
    pub chunks: u64,
}

/// An event of a chat stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlmEvent {
    /// More of the answer's text, in order.
    Text(String),
    /// A complete tool call. Given in index order once the model finished them all, before
    /// [`LlmEvent::Done`].
    ToolCall(ToolCall),
    /// The stream completed; no event follows.
    Done(LlmSummary),
}

/// A running chat completion.
///
/// `poll_event` gives events in order and then `None`; an `Err` ends the stream (the next poll
/// gives `None`). Dropping the stream or calling [`cancel`](Self::cancel) aborts the request.
pub trait LlmStream: Send {
    /// Polls for the next event, like `futures::Stream::poll_next`.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<LlmEvent, Error>>>;

    /// Aborts the request at once. The next poll gives `Err(Error::Cancelled)`, then `None`.
    fn cancel(&mut self);
}

impl dyn LlmStream + '_ {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<LlmEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }
}

/// A configured LLM provider.
pub trait LlmProvider: Send + Sync {
    /// A short name for logs and metrics, e.g. `openai`.
    fn name(&self) -> &str;

    /// Starts a chat completion. Nothing is sent until the stream is first polled; the error here
    /// is only a request this provider cannot express.
    fn chat(&self, request: ChatRequest) -> Result<Box<dyn LlmStream>, Error>;
}
