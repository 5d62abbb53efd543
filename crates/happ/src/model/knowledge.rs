//! Knowledge base: `GET/POST /api/assistant-knowledge`, `DELETE /api/assistant-knowledge/{knowledgeId}`.

use serde::{Deserialize, Serialize};

use super::{AssistantId, KnowledgeId, null_as_default, string_enum};

string_enum! {
    /// The kind of a knowledge entry (only `text` appears in the reference; `url` and `file` are
    /// the lowercase forms of the documented kinds).
    KnowledgeType {
        /// Pasted text.
        Text = "text",
        /// A web page the platform crawls.
        Url = "url",
        /// An uploaded file (`.pdf`, `.docx`, `.txt`); uploads use multipart, which this client
        /// does not send.
        File = "file",
    }
}

/// A knowledge-base entry of an assistant. `id`, `assistantId`, `type` and `name` are required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeEntry {
    /// The entry's id.
    pub id: KnowledgeId,
    /// The assistant it belongs to.
    pub assistant_id: AssistantId,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: KnowledgeType,
    /// Its name.
    pub name: String,
    /// An optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The text, or the URL for `url` entries; empty when the API sends none (files).
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_content: String,
}

/// Body of `POST /api/assistant-knowledge` (JSON kinds: `text` and `url`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKnowledge {
    /// The assistant it belongs to.
    pub assistant_id: AssistantId,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: KnowledgeType,
    /// Its name.
    pub name: String,
    /// An optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The text (or URL).
    pub resource_content: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_renamed() {
        let k = NewKnowledge { assistant_id: "a1".into(), kind: KnowledgeType::Text, name: "FAQ".into(), description: None, resource_content: "Q&A".into() };
        assert_eq!(serde_json::to_string(&k).expect("serializes"), r#"{"assistantId":"a1","type":"text","name":"FAQ","resourceContent":"Q&A"}"#);
        let e: KnowledgeEntry = serde_json::from_str(r#"{"id":"k1","assistantId":"a1","type":"file","name":"Manual","resourceContent":null}"#).expect("valid");
        assert_eq!(e.kind, KnowledgeType::File);
    }
}
