//! Messages: `GET/POST /api/chats/{chatId}/messages`.

use serde::{Deserialize, Serialize};

use super::{ChatId, MessageId, Timestamp, null_as_default, string_enum};

string_enum! {
    /// Who wrote a message. The dashboard shows User, Assistant and System; the lowercase API
    /// strings are an assumption the reference does not confirm.
    Role {
        /// The customer (on a call: the caller's transcribed speech).
        User = "user",
        /// The assistant, or a human operator writing through the API.
        Assistant = "assistant",
        /// A system note.
        System = "system",
    }
}

/// A message in a chat. `id`, `chatId`, `role` and `createdAt` are required; a missing or `null`
/// `content` reads as empty (media messages may have no text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// The text.
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: String,
    /// Who wrote it.
    pub role: Role,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// Body of `POST /api/chats/{chatId}/messages`.
///
/// The reference documents only `content`; `role` is an extension this client sends only when
/// set. The local server stores a message without `role` as `assistant` (an operator or the
/// gateway speaking for the assistant), which is an assumption about the real platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    /// The text.
    pub content: String,
    /// Who wrote it; not sent when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl NewMessage {
    /// A message with only `content`, as the reference documents it.
    pub fn text(content: impl Into<String>) -> Self {
        Self { content: content.into(), role: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_roles_tolerantly() {
        let m: Message =
            serde_json::from_str(r#"{"id":"m1","chatId":"c1","content":null,"role":"operator","createdAt":"2025-01-01T00:00:00.000Z","tokens":12}"#)
                .expect("valid");
        assert_eq!(m.role, Role::Other("operator".into()));
        assert_eq!(m.content, "");
        assert!(serde_json::from_str::<Message>(r#"{"id":"m1","chatId":"c1","content":"x","role":"user"}"#).is_err(), "createdAt is required");
    }

    #[test]
    fn new_message_sends_role_only_when_set() {
        assert_eq!(serde_json::to_string(&NewMessage::text("hi")).expect("serializes"), r#"{"content":"hi"}"#);
        let m = NewMessage { content: "hi".into(), role: Some(Role::User) };
        assert_eq!(serde_json::to_string(&m).expect("serializes"), r#"{"content":"hi","role":"user"}"#);
    }
}
