//! Tools: `GET/POST /api/assistant-tools`.

use serde::{Deserialize, Serialize};

use super::{AssistantId, ToolId, null_as_default, string_enum};
use crate::secret::Secret;

string_enum! {
    /// When and how a tool runs.
    ToolType {
        /// A webhook the model calls mid-conversation.
        WebhookAction = "webhook_action",
        /// A webhook called at the start of every conversation.
        WebhookInit = "webhook_init",
        /// A webhook called after a voice call ends.
        WebhookPostCall = "webhook_post_call",
        /// Executed by the client application; no URL.
        ClientTool = "client_tool",
    }
}

string_enum! {
    /// The HTTP method of a webhook tool.
    HttpMethod {
        /// GET.
        Get = "GET",
        /// POST (the default).
        Post = "POST",
        /// PUT.
        Put = "PUT",
        /// DELETE.
        Delete = "DELETE",
        /// PATCH.
        Patch = "PATCH",
    }
}

// `string_enum!` declares the enum, so `#[derive(Default)]` cannot be added to it.
#[allow(clippy::derivable_impls)]
impl Default for HttpMethod {
    fn default() -> Self {
        Self::Post
    }
}

string_enum! {
    /// The JSON type of a tool parameter.
    ParamType {
        /// A string.
        String = "string",
        /// A number.
        Number = "number",
        /// A boolean.
        Boolean = "boolean",
        /// An array.
        Array = "array",
        /// An object.
        Object = "object",
    }
}

/// One parameter the model fills in when it calls a tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolParam {
    /// Parameter name, e.g. `date`.
    pub name: String,
    /// Its JSON type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What the model should put there.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Whether the model must provide it (false when missing).
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_required: bool,
}

/// A tool of an assistant. `id`, `assistantId`, `name` and `type` are required. The webhook
/// secret is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The tool's id.
    pub id: ToolId,
    /// The assistant it belongs to.
    pub assistant_id: AssistantId,
    /// Function-style name, e.g. `check_availability`.
    pub name: String,
    /// What the tool does; the model reads it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// When and how it runs.
    #[serde(rename = "type")]
    pub kind: ToolType,
    /// The webhook URL (none for client tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_call_url: Option<String>,
    /// Shared secret for HMAC-SHA256 request signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    /// HTTP method of the webhook; POST when missing.
    #[serde(default, deserialize_with = "null_as_default")]
    pub method: HttpMethod,
    /// The parameters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub params: Vec<ToolParam>,
}

/// Body of `POST /api/assistant-tools`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTool {
    /// The assistant it belongs to.
    pub assistant_id: AssistantId,
    /// Function-style name.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// When and how it runs.
    #[serde(rename = "type")]
    pub kind: ToolType,
    /// The webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_call_url: Option<String>,
    /// Shared signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    /// HTTP method; not sent when `None` (the platform's default is POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// The parameters.
    #[serde(default)]
    pub params: Vec<ToolParam>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_example() {
        let t: Tool = serde_json::from_str(
            r#"{"id":"t1","assistantId":"a1","name":"check_availability","description":"Check available time slots",
                "type":"webhook_action","apiCallUrl":"https://your-server.com/api/availability","webhookSecret":"your-secret",
                "params":[{"name":"date","type":"string","description":"Date to check (YYYY-MM-DD)","isRequired":true}]}"#,
        )
        .expect("valid");
        assert_eq!(t.kind, ToolType::WebhookAction);
        assert_eq!(t.method, HttpMethod::Post);
        assert_eq!(t.params[0].kind, ParamType::String);
        assert!(t.params[0].is_required);
        assert!(!format!("{t:?}").contains("your-secret"));
        assert_eq!(t.webhook_secret.as_ref().map(Secret::expose), Some("your-secret"));
    }

    #[test]
    fn unknown_type_and_method_are_kept() {
        let t: Tool = serde_json::from_str(r#"{"id":"t1","assistantId":"a1","name":"x","type":"mcp","method":"OPTIONS","params":null}"#).expect("valid");
        assert_eq!(t.kind, ToolType::Other("mcp".into()));
        assert_eq!(t.method, HttpMethod::Other("OPTIONS".into()));
        assert!(t.params.is_empty());
    }
}
