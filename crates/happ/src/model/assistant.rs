//! Assistants: `GET/POST /api/assistants`, `GET/PATCH /api/assistants/{assistantId}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AssistantId, null_as_default};

/// An assistant as the API returns it. `id` and `name` are required; the rest may be missing or
/// `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assistant {
    /// The assistant's id.
    pub id: AssistantId,
    /// Display name.
    pub name: String,
    /// The system instructions (persona); empty when the API sends none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub prompt_text: String,
    /// The greeting a new conversation starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// LLM provider, e.g. `openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_provider: Option<String>,
    /// LLM model, e.g. `gpt-4o`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_model: Option<String>,
    /// Language code, e.g. `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Every other field the API sent (for instance the voice, whose name the public reference does
    /// not give), kept so that it can be read without a new client release.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /api/assistants`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAssistant {
    /// Display name (required by the API).
    pub name: String,
    /// The system instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    /// The greeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// LLM provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_provider: Option<String>,
    /// LLM model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_model: Option<String>,
    /// Language code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Body of `PATCH /api/assistants/{assistantId}`: only the fields set are sent and changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantUpdate {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New system instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    /// New greeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// New LLM provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_provider: Option<String>,
    /// New LLM model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_model: Option<String>,
    /// New language code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documented_fields_and_keeps_unknown_ones() {
        let a: Assistant = serde_json::from_str(
            r#"{"id":"a1","name":"Support Bot","promptText":"Be kind","firstMessage":"Hello!","llmProvider":"openai",
                "llmModel":"gpt-4o","language":"en","voiceId":"v7","temperature":0.3}"#,
        )
        .expect("a valid assistant");
        assert_eq!(a.id.as_str(), "a1");
        assert_eq!(a.prompt_text, "Be kind");
        assert_eq!(a.first_message.as_deref(), Some("Hello!"));
        assert_eq!(a.extra.get("voiceId"), Some(&Value::from("v7")));
        let back = serde_json::to_value(&a).expect("serializes");
        assert_eq!(back["voiceId"], "v7");
        assert_eq!(back["llmModel"], "gpt-4o");
    }

    #[test]
    fn optional_fields_may_be_null_or_missing() {
        let a: Assistant = serde_json::from_str(r#"{"id":"a1","name":"X","promptText":null,"firstMessage":null}"#).expect("valid");
        assert_eq!(a.prompt_text, "");
        assert_eq!(a.first_message, None);
        assert!(serde_json::from_str::<Assistant>(r#"{"id":"a1"}"#).is_err(), "name is required");
    }

    #[test]
    fn update_sends_only_what_is_set() {
        let u = AssistantUpdate { name: Some("Updated Name".into()), ..Default::default() };
        assert_eq!(serde_json::to_string(&u).expect("serializes"), r#"{"name":"Updated Name"}"#);
    }
}
