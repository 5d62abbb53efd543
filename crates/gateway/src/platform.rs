//! The Happ platform as the source of phones and assistants (`[happ]`).
//!
//! A sync task reads the platform's phones and the assistants they are linked to (with their
//! knowledge entries and tools) every `happ.sync_secs`, and hands each catalog that differs from
//! the last to the SIP task, which serves it like a reloaded configuration file (one code path:
//! phones added, removed, re-registered or re-linked; calls in progress untouched). A read that
//! fails changes nothing: the gateway goes on with the last catalog it had, and tries again at
//! the next interval. The platform announces no phone changes in real time (its events are about
//! chats), so reading is the only way to learn of them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use happ_client::model::{Assistant, KnowledgeEntry, KnowledgeType, Phone, Tool};
use happ_client::{ClientConfig, HappClient};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{AssistantConfig, HappConfig, KnowledgeConfig, PhoneConfig};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::pii::Masked;

/// An assistant of the platform, with what the call bridge needs of it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformAssistant {
    /// Its settings, in the configuration's form.
    pub config: AssistantConfig,
    /// Its knowledge entries.
    pub knowledge: Vec<KnowledgeEntry>,
    /// Its tools.
    pub tools: Vec<Tool>,
}

/// What the platform says the gateway serves.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// The phones, in the configuration's form (gateway defaults: registered, assistant handler).
    pub phones: Vec<PhoneConfig>,
    /// The assistants linked to them.
    pub assistants: Vec<PlatformAssistant>,
}

/// The phones served: the platform's, then the file's; a number in both is the file's (so an
/// operator can set a handler or a call limit locally).
pub fn merge_phones(platform: &[PhoneConfig], local: &[PhoneConfig]) -> Vec<PhoneConfig> {
    let numbers: BTreeSet<&str> = local.iter().map(|p| p.phone_number.as_str()).collect();
    platform.iter().filter(|p| !numbers.contains(p.phone_number.as_str())).chain(local).cloned().collect()
}

/// A platform phone as the gateway serves it, or why it cannot be served.
pub fn phone_config(phone: &Phone) -> Result<PhoneConfig, String> {
    let config = PhoneConfig {
        phone_number: phone.phone_number.clone(),
        sip_login: phone.sip_login.clone(),
        password: phone.password.clone(),
        telephony_url: phone.telephony_url.clone(),
        codec: phone.codec.to_string(),
        assistant_id: phone.assistant_id.as_ref().map(ToString::to_string),
        register: true,
        handler: "assistant".into(),
        max_calls: None,
        answer_delay_ms: 0,
        display_name: None,
    };
    config.check().map_err(|(field, message)| format!("{field}: {message}"))?;
    Ok(config)
}

/// Reads the catalog: phones (those that cannot be served are skipped, with a warning), then the
/// linked assistants with their knowledge and tools.
pub async fn fetch(client: &HappClient) -> Result<Catalog, happ_client::Error> {
    let mut catalog = Catalog::default();
    for phone in client.phones().await? {
        match phone_config(&phone) {
            Ok(p) => catalog.phones.push(p),
            Err(e) => warn!(phone = %Masked(&phone.phone_number), id = %phone.id, error = %e, "platform phone skipped"),
        }
    }
    let linked: BTreeSet<String> = catalog.phones.iter().filter_map(|p| p.assistant_id.clone()).collect();
    for assistant in client.assistants().await? {
        let id = assistant.id.to_string();
        if !linked.contains(&id) {
            continue;
        }
        let (knowledge, tools) = futures_util::future::join(client.knowledge(&assistant.id), client.tools(&assistant.id)).await;
        let knowledge = knowledge?;
        catalog.assistants.push(PlatformAssistant { config: assistant_config(&assistant, &knowledge), knowledge, tools: tools? });
    }
    for phone in &catalog.phones {
        if let Some(id) = &phone.assistant_id
            && !catalog.assistants.iter().any(|a| &a.config.id == id)
        {
            warn!(phone = %Masked(&phone.phone_number), assistant = %id, "the phone's assistant is not among the platform's assistants");
        }
    }
    Ok(catalog)
}

/// A platform assistant in the configuration's form, with its text knowledge entries (URL and
/// file entries carry no text the gateway can read).
pub fn assistant_config(assistant: &Assistant, knowledge: &[KnowledgeEntry]) -> AssistantConfig {
    AssistantConfig {
        id: assistant.id.to_string(),
        name: assistant.name.clone(),
        prompt_text: assistant.prompt_text.clone(),
        first_message: assistant.first_message.clone().unwrap_or_default(),
        llm_provider: assistant.llm_provider.clone().unwrap_or_default(),
        llm_model: assistant.llm_model.clone().unwrap_or_default(),
        language: assistant.language.clone().unwrap_or_default(),
        knowledge: knowledge
            .iter()
            .filter(|k| k.kind == KnowledgeType::Text && !k.resource_content.trim().is_empty())
            .map(|k| KnowledgeConfig {
                id: Some(k.id.to_string()),
                assistant_id: Some(k.assistant_id.to_string()),
                kind: "text".into(),
                name: k.name.clone(),
                description: k.description.clone(),
                resource_content: k.resource_content.clone(),
            })
            .collect(),
        voice: ["voice", "voiceId"].iter().find_map(|k| assistant.extra.get(*k)).and_then(|v| v.as_str()).map(str::to_owned),
        ..AssistantConfig::default()
    }
}

/// The client for `[happ]`.
pub fn client(config: &HappConfig) -> Result<HappClient, String> {
    HappClient::new(ClientConfig::new(config.base_url.clone(), config.token.clone())).map_err(|e| format!("happ.base_url: {e}"))
}

/// Reads the catalog every `interval` and sends each one that differs from the last; returns
/// when the receiver is gone.
pub async fn sync(client: HappClient, interval: Duration, catalogs: mpsc::Sender<Catalog>, metrics: Arc<Metrics>) {
    let mut last: Option<Catalog> = None;
    loop {
        match fetch(&client).await {
            Ok(catalog) => {
                metrics.platform_syncs.get_or_create(&OutcomeLabels { outcome: "ok".into() }).inc();
                if last.as_ref() != Some(&catalog) {
                    info!(phones = catalog.phones.len(), assistants = catalog.assistants.len(), "platform catalog changed");
                    last = Some(catalog.clone());
                    if catalogs.send(catalog).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                metrics.platform_syncs.get_or_create(&OutcomeLabels { outcome: "failed".into() }).inc();
                warn!(error = %e, "cannot read the platform's phones and assistants; keeping the last ones");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use happ_client::model::{Codec, PhoneId};

    fn phone(url: &str) -> Phone {
        Phone {
            id: PhoneId::new("p1"),
            phone_number: "+380501234567".into(),
            sip_login: "1001".into(),
            password: "pw".into(),
            telephony_url: url.into(),
            codec: Codec::Ulaw,
            assistant_id: Some("a1".into()),
        }
    }

    #[test]
    fn platform_phones_become_registered_assistant_phones() {
        let p = phone_config(&phone("sip.example.com:5080;transport=tcp")).expect("valid");
        assert_eq!((p.codec.as_str(), p.handler.as_str(), p.register), ("ulaw", "assistant", true));
        assert_eq!(p.assistant_id.as_deref(), Some("a1"));
        assert_eq!(p.password.expose(), "pw");
        let e = phone_config(&phone("sips:x")).expect_err("refused");
        assert!(e.starts_with("telephonyUrl:"), "{e}");
        let mut odd = phone("sip.example.com");
        odd.codec = Codec::Other("g729".into());
        assert!(phone_config(&odd).expect_err("refused").contains("g729"));
    }
}
