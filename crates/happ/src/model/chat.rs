//! Chats: `GET/POST /api/chats`, `PATCH /api/chats/{chatId}`.

use serde::{Deserialize, Serialize};

use super::{AssistantId, ChatId, Timestamp, string_enum};

string_enum! {
    /// Why the AI is off in a chat.
    AiDisableReason {
        /// A human turned it off (dashboard or API).
        Manual = "manual",
        /// The assistant turned itself off with the built-in `turnOffAiMode` tool.
        Auto = "auto",
    }
}

/// A chat (a conversation; a voice call is one too). `id` and `isUnderAiControl` are required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// The chat's id.
    pub id: ChatId,
    /// The assistant that answers in this chat. Optional on read: chats can be moved between
    /// assistants and the reference does not say whether an orphaned chat keeps one.
    #[serde(default)]
    pub assistant_id: Option<AssistantId>,
    /// Whether the assistant answers new messages automatically.
    pub is_under_ai_control: bool,
    /// Why the AI is off; `None` while it is on (or when the API does not say).
    #[serde(default)]
    pub ai_disable_reason: Option<AiDisableReason>,
    /// When the chat was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the chat last changed, if the API says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// Body of `POST /api/chats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewChat {
    /// The assistant that will answer in the chat.
    pub assistant_id: AssistantId,
}

/// Body of `PATCH /api/chats/{chatId}`: only the fields set are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatUpdate {
    /// Turn the AI on (`true`) or off (`false`, a manual hand-off to a human).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_under_ai_control: Option<bool>,
    /// Move the chat to another assistant (the platform notes say chats can be moved through the
    /// API; the field name is an assumption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<AssistantId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reason_tolerantly() {
        let c: Chat = serde_json::from_str(
            r#"{"id":"c1","assistantId":"a1","isUnderAiControl":false,"aiDisableReason":"timeout","createdAt":"2025-01-01T00:00:00.000Z"}"#,
        )
        .expect("valid");
        assert_eq!(c.ai_disable_reason, Some(AiDisableReason::Other("timeout".into())));
        let c: Chat = serde_json::from_str(r#"{"id":"c1","isUnderAiControl":false,"aiDisableReason":"auto"}"#).expect("valid");
        assert_eq!(c.ai_disable_reason, Some(AiDisableReason::Auto));
        assert_eq!(c.assistant_id, None);
        let c: Chat = serde_json::from_str(r#"{"id":"c1","isUnderAiControl":true,"aiDisableReason":null}"#).expect("valid");
        assert_eq!(c.ai_disable_reason, None);
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<Chat>(r#"{"id":"c1","isUnderAiControl":"yes"}"#).is_err());
        assert!(serde_json::from_str::<Chat>(r#"{"id":7,"isUnderAiControl":true}"#).is_err());
    }

    #[test]
    fn patch_body() {
        let u = ChatUpdate { is_under_ai_control: Some(true), ..Default::default() };
        assert_eq!(serde_json::to_string(&u).expect("serializes"), r#"{"isUnderAiControl":true}"#);
    }
}
