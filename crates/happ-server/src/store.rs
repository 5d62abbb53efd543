//! The in-memory store and its seed file.
//!
//! # Seed format
//!
//! A JSON object with any of these keys, each a list of objects exactly as the REST API returns
//! them (camelCase, with their `id`s); unknown top-level keys are rejected to catch typos:
//!
//! ```json
//! {
//!   "assistants": [{"id": "a1", "name": "Support Bot", "promptText": "...", "firstMessage": "Hello!",
//!                   "llmProvider": "openai", "llmModel": "gpt-4o", "language": "en"}],
//!   "knowledge":  [{"id": "k1", "assistantId": "a1", "type": "text", "name": "FAQ", "resourceContent": "..."}],
//!   "tools":      [{"id": "t1", "assistantId": "a1", "name": "check_availability", "description": "...",
//!                   "type": "webhook_action", "apiCallUrl": "https://...", "method": "POST", "params": []}],
//!   "phones":     [{"id": "p1", "phoneNumber": "+380501234567", "sipLogin": "1001", "password": "...",
//!                   "telephonyUrl": "sip.provider.com", "codec": "alaw", "assistantId": "a1"}],
//!   "chats":      [{"id": "c1", "assistantId": "a1", "isUnderAiControl": true, "createdAt": "2025-01-01T10:00:00.000Z"}],
//!   "messages":   [{"id": "m1", "chatId": "c1", "content": "Hi", "role": "user", "createdAt": "2025-01-01T10:00:01.000Z"}]
//! }
//! ```
//!
//! Ids must be unique per kind and every `assistantId`/`chatId` must name a seeded object. A chat
//! without `createdAt` gets the load time. Messages keep the seed's order within their chat.
//!
//! # Listing order
//!
//! Chats are listed newest first (reverse creation order), messages oldest first, everything else
//! in creation order. These orders are assumptions: the reference does not state them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use happ_client::model::{
    AiDisableReason, Assistant, AssistantId, AssistantUpdate, Chat, ChatId, ChatUpdate, Codec, HttpMethod, KnowledgeEntry, KnowledgeId, KnowledgeType, Message,
    MessageId, NewAssistant, NewChat, NewKnowledge, NewMessage, NewPhone, NewTool, Phone, PhoneId, Role, Timestamp, Tool, ToolId, ToolType,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::events::{ChatModeChanged, Event};

/// The contents of a seed file (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Assistants.
    #[serde(default)]
    pub assistants: Vec<Assistant>,
    /// Knowledge entries.
    #[serde(default)]
    pub knowledge: Vec<KnowledgeEntry>,
    /// Tools.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Phones.
    #[serde(default)]
    pub phones: Vec<Phone>,
    /// Chats.
    #[serde(default)]
    pub chats: Vec<Chat>,
    /// Messages of the chats.
    #[serde(default)]
    pub messages: Vec<Message>,
}

/// A seed that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid seed document.
    #[error("seed file {path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        source: serde_json::Error,
    },
    /// The objects do not fit together (duplicate ids, dangling references).
    #[error("seed: {0}")]
    Invalid(String),
}

impl Seed {
    /// Reads and parses a seed file.
    pub fn from_path(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Io { path: path.display().to_string(), source })?;
        serde_json::from_str(&text).map_err(|source| SeedError::Json { path: path.display().to_string(), source })
    }
}

/// The server's data. All access goes through [`crate::AppState`], which holds it under a mutex
/// and publishes the [`Event`]s each change queues.
#[derive(Debug)]
pub struct Store {
    assistants: Vec<Assistant>,
    knowledge: Vec<KnowledgeEntry>,
    tools: Vec<Tool>,
    phones: Vec<Phone>,
    chats: Vec<Chat>,
    messages: HashMap<ChatId, Vec<Message>>,
    rng: fastrand::Rng,
    last_millis: i64,
    outbox: Vec<Event>,
}

impl Store {
    /// A store holding `seed`, checked; new ids are drawn from a generator seeded with `id_seed`.
    pub fn new(seed: Seed, id_seed: u64) -> Result<Self, SeedError> {
        let mut store = Self {
            assistants: Vec::new(),
            knowledge: Vec::new(),
            tools: Vec::new(),
            phones: Vec::new(),
            chats: Vec::new(),
            messages: HashMap::new(),
            rng: fastrand::Rng::with_seed(id_seed),
            last_millis: i64::MIN,
            outbox: Vec::new(),
        };
        unique("assistant", seed.assistants.iter().map(|a| a.id.as_str()))?;
        unique("knowledge entry", seed.knowledge.iter().map(|k| k.id.as_str()))?;
        unique("tool", seed.tools.iter().map(|t| t.id.as_str()))?;
        unique("phone", seed.phones.iter().map(|p| p.id.as_str()))?;
        unique("chat", seed.chats.iter().map(|c| c.id.as_str()))?;
        unique("message", seed.messages.iter().map(|m| m.id.as_str()))?;
        store.assistants = seed.assistants;
        let known = |store: &Self, id: &AssistantId, whose: &str| {
            if store.assistants.iter().any(|a| &a.id == id) { Ok(()) } else { Err(SeedError::Invalid(format!("{whose} names unknown assistant {id}"))) }
        };
        for k in &seed.knowledge {
            known(&store, &k.assistant_id, &format!("knowledge entry {}", k.id))?;
        }
        for t in &seed.tools {
            known(&store, &t.assistant_id, &format!("tool {}", t.id))?;
        }
        for p in &seed.phones {
            if let Some(a) = &p.assistant_id {
                known(&store, a, &format!("phone {}", p.id))?;
            }
        }
        unique("phone number", seed.phones.iter().map(|p| p.phone_number.as_str()))?;
        for c in &seed.chats {
            if let Some(a) = &c.assistant_id {
                known(&store, a, &format!("chat {}", c.id))?;
            }
        }
        store.knowledge = seed.knowledge;
        store.tools = seed.tools;
        store.phones = seed.phones;
        let now = store.now();
        store.chats = seed.chats.into_iter().map(|c| Chat { created_at: c.created_at.or_else(|| Some(now.clone())), ..c }).collect();
        for c in &store.chats {
            store.messages.insert(c.id.clone(), Vec::new());
        }
        for m in seed.messages {
            let Some(list) = store.messages.get_mut(&m.chat_id) else {
                return Err(SeedError::Invalid(format!("message {} names unknown chat {}", m.id, m.chat_id)));
            };
            list.push(m);
        }
        Ok(store)
    }

    /// The events queued by the changes since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox)
    }

    // ---- assistants ----------------------------------------------------------------------

    /// Every assistant, in creation order.
    pub fn assistants(&self) -> &[Assistant] {
        &self.assistants
    }

    /// One assistant.
    pub fn assistant(&self, id: &AssistantId) -> Result<&Assistant, ApiError> {
        self.assistants.iter().find(|a| &a.id == id).ok_or_else(|| ApiError::not_found("Assistant", id.as_str()))
    }

    /// Creates an assistant (`name` must not be blank).
    pub fn create_assistant(&mut self, new: NewAssistant) -> Result<Assistant, ApiError> {
        not_blank("name", &new.name)?;
        let a = Assistant {
            id: AssistantId::new(self.uuid()),
            name: new.name,
            prompt_text: new.prompt_text.unwrap_or_default(),
            first_message: new.first_message,
            llm_provider: new.llm_provider,
            llm_model: new.llm_model,
            language: new.language,
            extra: serde_json::Map::new(),
        };
        self.assistants.push(a.clone());
        Ok(a)
    }

    /// Changes the fields set in `update` (at least one must be).
    pub fn update_assistant(&mut self, id: &AssistantId, update: AssistantUpdate) -> Result<Assistant, ApiError> {
        if update == AssistantUpdate::default() {
            return Err(ApiError::validation("nothing to update"));
        }
        if let Some(name) = &update.name {
            not_blank("name", name)?;
        }
        let a = self.assistants.iter_mut().find(|a| &a.id == id).ok_or_else(|| ApiError::not_found("Assistant", id.as_str()))?;
        let AssistantUpdate { name, prompt_text, first_message, llm_provider, llm_model, language } = update;
        if let Some(v) = name {
            a.name = v;
        }
        if let Some(v) = prompt_text {
            a.prompt_text = v;
        }
        a.first_message = first_message.or(a.first_message.take());
        a.llm_provider = llm_provider.or(a.llm_provider.take());
        a.llm_model = llm_model.or(a.llm_model.take());
        a.language = language.or(a.language.take());
        Ok(a.clone())
    }

    // ---- chats ---------------------------------------------------------------------------

    /// Every chat, newest first.
    pub fn chats(&self) -> impl ExactSizeIterator<Item = &Chat> {
        self.chats.iter().rev()
    }

    /// One chat.
    pub fn chat(&self, id: &ChatId) -> Result<&Chat, ApiError> {
        self.chats.iter().find(|c| &c.id == id).ok_or_else(|| ApiError::not_found("Chat", id.as_str()))
    }

    /// Creates a chat under AI control; queues `CHAT_CREATED`.
    pub fn create_chat(&mut self, new: NewChat) -> Result<Chat, ApiError> {
        self.assistant(&new.assistant_id)?;
        let now = self.now();
        let chat = Chat {
            id: ChatId::new(self.uuid()),
            assistant_id: Some(new.assistant_id),
            is_under_ai_control: true,
            ai_disable_reason: None,
            created_at: Some(now.clone()),
            updated_at: Some(now),
        };
        self.chats.push(chat.clone());
        self.messages.insert(chat.id.clone(), Vec::new());
        self.outbox.push(Event::ChatCreated(chat.clone()));
        Ok(chat)
    }

    /// Applies a `PATCH /api/chats/{chatId}`: turning the AI off through the API records
    /// `aiDisableReason: "manual"`, turning it on clears the reason; a change of mode queues
    /// `CHAT_MODE_CHANGED`.
    pub fn update_chat(&mut self, id: &ChatId, update: ChatUpdate) -> Result<Chat, ApiError> {
        if update == ChatUpdate::default() {
            return Err(ApiError::validation("nothing to update: send isUnderAiControl or assistantId"));
        }
        if let Some(a) = &update.assistant_id {
            self.assistant(a)?;
        }
        let reason = match update.is_under_ai_control {
            Some(false) => Some(AiDisableReason::Manual),
            _ => None,
        };
        self.change_chat(id, update.is_under_ai_control, reason, update.assistant_id)
    }

    /// The assistant hands the chat to a human, as the built-in `turnOffAiMode` tool does:
    /// `isUnderAiControl: false`, `aiDisableReason: "auto"`, `CHAT_MODE_CHANGED` queued.
    pub fn hand_off(&mut self, id: &ChatId) -> Result<Chat, ApiError> {
        self.change_chat(id, Some(false), Some(AiDisableReason::Auto), None)
    }

    fn change_chat(&mut self, id: &ChatId, ai: Option<bool>, reason: Option<AiDisableReason>, assistant: Option<AssistantId>) -> Result<Chat, ApiError> {
        let now = self.now();
        let chat = self.chats.iter_mut().find(|c| &c.id == id).ok_or_else(|| ApiError::not_found("Chat", id.as_str()))?;
        if let Some(a) = assistant {
            chat.assistant_id = Some(a);
        }
        if let Some(on) = ai {
            let changed = chat.is_under_ai_control != on;
            chat.is_under_ai_control = on;
            if changed || !on {
                chat.ai_disable_reason = if on { None } else { reason };
            }
            if changed {
                self.outbox.push(Event::ChatModeChanged(ChatModeChanged {
                    chat_id: chat.id.clone(),
                    is_under_ai_control: chat.is_under_ai_control,
                    ai_disable_reason: chat.ai_disable_reason.clone(),
                }));
            }
        }
        chat.updated_at = Some(now);
        Ok(chat.clone())
    }

    // ---- messages ------------------------------------------------------------------------

    /// The messages of a chat, oldest first.
    pub fn messages(&self, chat: &ChatId) -> Result<&[Message], ApiError> {
        self.messages.get(chat).map(Vec::as_slice).ok_or_else(|| ApiError::not_found("Chat", chat.as_str()))
    }

    /// Every message of every chat.
    pub fn message_count(&self) -> usize {
        self.messages.values().map(Vec::len).sum()
    }

    /// Stores a message (`content` must not be blank); without a `role` it is an `assistant`
    /// message. Queues `MESSAGE_CREATED`.
    pub fn create_message(&mut self, chat: &ChatId, new: NewMessage) -> Result<Message, ApiError> {
        not_blank("content", &new.content)?;
        if let Some(Role::Other(r)) = &new.role {
            return Err(ApiError::validation(format!("role must be user, assistant or system, not {r:?}")));
        }
        if !self.messages.contains_key(chat) {
            return Err(ApiError::not_found("Chat", chat.as_str()));
        }
        let message = Message {
            id: MessageId::new(self.uuid()),
            chat_id: chat.clone(),
            content: new.content,
            role: new.role.unwrap_or(Role::Assistant),
            created_at: self.now(),
        };
        self.messages.entry(chat.clone()).or_default().push(message.clone());
        self.outbox.push(Event::MessageCreated(message.clone()));
        Ok(message)
    }

    // ---- knowledge -----------------------------------------------------------------------

    /// The knowledge entries of an assistant.
    pub fn knowledge(&self, assistant: &AssistantId) -> Result<Vec<&KnowledgeEntry>, ApiError> {
        self.assistant(assistant)?;
        Ok(self.knowledge.iter().filter(|k| &k.assistant_id == assistant).collect())
    }

    /// Creates a `text` or `url` entry (files need a multipart upload, which this server does not
    /// take).
    pub fn create_knowledge(&mut self, new: NewKnowledge) -> Result<KnowledgeEntry, ApiError> {
        self.assistant(&new.assistant_id)?;
        not_blank("name", &new.name)?;
        match &new.kind {
            KnowledgeType::Text | KnowledgeType::Url => {}
            KnowledgeType::File => return Err(ApiError::validation("file entries are uploaded as multipart/form-data, which this server does not accept")),
            KnowledgeType::Other(t) => return Err(ApiError::validation(format!("type must be text, url or file, not {t:?}"))),
        }
        not_blank("resourceContent", &new.resource_content)?;
        let entry = KnowledgeEntry {
            id: KnowledgeId::new(self.uuid()),
            assistant_id: new.assistant_id,
            kind: new.kind,
            name: new.name,
            description: new.description,
            resource_content: new.resource_content,
        };
        self.knowledge.push(entry.clone());
        Ok(entry)
    }

    /// Deletes an entry and returns it.
    pub fn delete_knowledge(&mut self, id: &KnowledgeId) -> Result<KnowledgeEntry, ApiError> {
        let pos = self.knowledge.iter().position(|k| &k.id == id).ok_or_else(|| ApiError::not_found("Knowledge entry", id.as_str()))?;
        Ok(self.knowledge.remove(pos))
    }

    // ---- phones --------------------------------------------------------------------------

    /// Every phone.
    pub fn phones(&self) -> &[Phone] {
        &self.phones
    }

    /// Adds a phone; the number must be new and the codec `alaw` or `ulaw`.
    pub fn create_phone(&mut self, new: NewPhone) -> Result<Phone, ApiError> {
        not_blank("phoneNumber", &new.phone_number)?;
        not_blank("sipLogin", &new.sip_login)?;
        not_blank("telephonyUrl", &new.telephony_url)?;
        if let Codec::Other(c) = &new.codec {
            return Err(ApiError::validation(format!("codec must be alaw or ulaw, not {c:?}")));
        }
        if let Some(a) = &new.assistant_id {
            self.assistant(a)?;
        }
        if self.phones.iter().any(|p| p.phone_number == new.phone_number) {
            return Err(ApiError::conflict(format!("phone number {} already exists", new.phone_number)));
        }
        let phone = Phone {
            id: PhoneId::new(self.uuid()),
            phone_number: new.phone_number,
            sip_login: new.sip_login,
            password: new.password,
            telephony_url: new.telephony_url,
            codec: new.codec,
            assistant_id: new.assistant_id,
        };
        self.phones.push(phone.clone());
        Ok(phone)
    }

    /// Links a phone to an assistant, or unlinks it.
    pub fn link_phone(&mut self, id: &PhoneId, assistant: Option<AssistantId>) -> Result<Phone, ApiError> {
        if let Some(a) = &assistant {
            self.assistant(a)?;
        }
        let phone = self.phones.iter_mut().find(|p| &p.id == id).ok_or_else(|| ApiError::not_found("Phone", id.as_str()))?;
        phone.assistant_id = assistant;
        Ok(phone.clone())
    }

    /// Removes a phone (the reference has no endpoint for it; the dashboard can, and tests of
    /// the gateway's sync need it).
    pub fn remove_phone(&mut self, id: &PhoneId) -> Result<Phone, ApiError> {
        let index = self.phones.iter().position(|p| &p.id == id).ok_or_else(|| ApiError::not_found("Phone", id.as_str()))?;
        Ok(self.phones.remove(index))
    }

    // ---- tools ---------------------------------------------------------------------------

    /// The tools of an assistant.
    pub fn tools(&self, assistant: &AssistantId) -> Result<Vec<&Tool>, ApiError> {
        self.assistant(assistant)?;
        Ok(self.tools.iter().filter(|t| &t.assistant_id == assistant).collect())
    }

    /// Creates a tool; webhook tools need an `apiCallUrl`.
    pub fn create_tool(&mut self, new: NewTool) -> Result<Tool, ApiError> {
        self.assistant(&new.assistant_id)?;
        not_blank("name", &new.name)?;
        if let ToolType::Other(t) = &new.kind {
            return Err(ApiError::validation(format!("type must be webhook_action, webhook_init, webhook_post_call or client_tool, not {t:?}")));
        }
        if let Some(HttpMethod::Other(m)) = &new.method {
            return Err(ApiError::validation(format!("method must be GET, POST, PUT, DELETE or PATCH, not {m:?}")));
        }
        if new.kind != ToolType::ClientTool && new.api_call_url.as_deref().is_none_or(|u| u.trim().is_empty()) {
            return Err(ApiError::validation("apiCallUrl is required for webhook tools"));
        }
        if let Some(p) = new.params.iter().find(|p| p.name.trim().is_empty()) {
            return Err(ApiError::validation(format!("a parameter of type {} has no name", p.kind)));
        }
        let tool = Tool {
            id: ToolId::new(self.uuid()),
            assistant_id: new.assistant_id,
            name: new.name,
            description: new.description,
            kind: new.kind,
            api_call_url: new.api_call_url,
            webhook_secret: new.webhook_secret,
            method: new.method.unwrap_or_default(),
            params: new.params,
        };
        self.tools.push(tool.clone());
        Ok(tool)
    }

    // ---- helpers -------------------------------------------------------------------------

    /// A random (version 4 shaped) UUID from the seeded generator.
    fn uuid(&mut self) -> String {
        let v = self.rng.u128(..);
        let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let h = format!("{v:032x}");
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    /// The current time, strictly later than every timestamp this store made before, so that
    /// creation order and `createdAt` order agree.
    fn now(&mut self) -> Timestamp {
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.last_millis = wall.max(self.last_millis.saturating_add(1));
        Timestamp::from_unix_millis(self.last_millis)
    }
}

fn not_blank(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() { Err(ApiError::validation(format!("{field} must not be empty"))) } else { Ok(()) }
}

fn unique<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), SeedError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(SeedError::Invalid(format!("two {what}s have the id {id:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Seed {
        serde_json::from_str(
            r#"{"assistants":[{"id":"a1","name":"Bot"}],
                "chats":[{"id":"c1","assistantId":"a1","isUnderAiControl":true}],
                "messages":[{"id":"m1","chatId":"c1","content":"Hi","role":"user","createdAt":"2025-01-01T00:00:00.000Z"}]}"#,
        )
        .expect("valid seed")
    }

    #[test]
    fn seed_is_checked() {
        let mut s = seed();
        s.messages[0].chat_id = ChatId::new("nope");
        assert!(matches!(Store::new(s, 1), Err(SeedError::Invalid(m)) if m.contains("unknown chat nope")));
        let mut s = seed();
        s.assistants.push(s.assistants[0].clone());
        assert!(matches!(Store::new(s, 1), Err(SeedError::Invalid(m)) if m.contains("two assistants")));
        assert!(serde_json::from_str::<Seed>(r#"{"asistants":[]}"#).is_err(), "typos are rejected");
    }

    #[test]
    fn ids_are_uuid_shaped_and_deterministic() {
        let mut a = Store::new(Seed::default(), 7).expect("empty seed");
        let mut b = Store::new(Seed::default(), 7).expect("empty seed");
        let id = a.uuid();
        assert_eq!(id, b.uuid());
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }

    #[test]
    fn chat_mode_changes_queue_events() {
        let mut s = Store::new(seed(), 1).expect("valid");
        let c1 = ChatId::new("c1");
        let chat = s.update_chat(&c1, ChatUpdate { is_under_ai_control: Some(false), ..Default::default() }).expect("exists");
        assert_eq!(chat.ai_disable_reason, Some(AiDisableReason::Manual));
        // Setting the same value again changes nothing and announces nothing.
        s.update_chat(&c1, ChatUpdate { is_under_ai_control: Some(false), ..Default::default() }).expect("exists");
        let chat = s.update_chat(&c1, ChatUpdate { is_under_ai_control: Some(true), ..Default::default() }).expect("exists");
        assert_eq!(chat.ai_disable_reason, None);
        let chat = s.hand_off(&c1).expect("exists");
        assert_eq!(chat.ai_disable_reason, Some(AiDisableReason::Auto));
        let names: Vec<_> = s.take_events().iter().map(Event::name).collect();
        assert_eq!(names, ["CHAT_MODE_CHANGED", "CHAT_MODE_CHANGED", "CHAT_MODE_CHANGED"]);
        assert!(s.take_events().is_empty());
    }

    #[test]
    fn messages_default_to_assistant_and_are_ordered() {
        let mut s = Store::new(seed(), 1).expect("valid");
        let c1 = ChatId::new("c1");
        let m = s.create_message(&c1, NewMessage::text("Hello")).expect("stored");
        assert_eq!(m.role, Role::Assistant);
        let m2 = s.create_message(&c1, NewMessage { content: "Hi".into(), role: Some(Role::User) }).expect("stored");
        assert!(m.created_at.cmp_instant(&m2.created_at).is_lt());
        assert_eq!(s.messages(&c1).expect("exists").len(), 3);
        assert_eq!(s.create_message(&c1, NewMessage::text("  ")).expect_err("blank").code, "VALIDATION_ERROR");
        assert_eq!(s.create_message(&ChatId::new("x"), NewMessage::text("a")).expect_err("unknown").code, "NOT_FOUND");
    }
}
