//! Store events, for a real-time layer (Socket.IO) to push to clients.
//!
//! Every change of the store that the platform announces in real time is sent, in the order the
//! changes happened, on a `tokio::sync::broadcast` channel ([`crate::AppState::events`]). The
//! Socket.IO endpoint ([`crate::realtime`]) subscribes and emits `event.name()` with
//! `event.payload()` to the company room.
//!
//! The payload shapes are assumptions (the public reference names the events only): the message
//! or chat object as the REST API returns it, and `{chatId, isUnderAiControl, aiDisableReason}`
//! for a mode change.

use happ_client::model::{AiDisableReason, Chat, ChatId, Message};
use serde::Serialize;

/// A change of the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `MESSAGE_CREATED`: a message was stored (through the API or the admin interface).
    MessageCreated(Message),
    /// `CHAT_CREATED`: a chat was created.
    ChatCreated(Chat),
    /// `CHAT_MODE_CHANGED`: `isUnderAiControl` changed.
    ChatModeChanged(ChatModeChanged),
}

/// The payload of `CHAT_MODE_CHANGED`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatModeChanged {
    /// The chat.
    pub chat_id: ChatId,
    /// The new mode.
    pub is_under_ai_control: bool,
    /// Why the AI is off (`manual` through the API, `auto` for the assistant's own hand-off).
    pub ai_disable_reason: Option<AiDisableReason>,
}

impl Event {
    /// The event name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageCreated(_) => "MESSAGE_CREATED",
            Self::ChatCreated(_) => "CHAT_CREATED",
            Self::ChatModeChanged(_) => "CHAT_MODE_CHANGED",
        }
    }

    /// The event's JSON payload.
    pub fn payload(&self) -> serde_json::Value {
        let value = match self {
            Self::MessageCreated(m) => serde_json::to_value(m),
            Self::ChatCreated(c) => serde_json::to_value(c),
            Self::ChatModeChanged(c) => serde_json::to_value(c),
        };
        // These types serialize to JSON objects without fail: only string keys, no custom
        // serializers that can error.
        value.unwrap_or(serde_json::Value::Null)
    }
}
