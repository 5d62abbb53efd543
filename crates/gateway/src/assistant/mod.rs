//! The `assistant` handler: each call a spoken conversation with the phone's assistant.
//!
//! - [`Engines`]: the speech-to-text and text-to-speech providers of `[speech]`, in the order
//!   they are tried, and the apology synthesised ahead by the local engine; built once at
//!   start-up and shared by every call.
//! - [`Assistant`]: one assistant ready to answer: its instructions (prompt, language,
//!   knowledge), its LLM providers (its `llmProvider`, then `[speech] llm_fallback`), the tools it
//!   is offered and its turn-taking settings; built when the assistants are loaded (start-up,
//!   reload, each platform sync) and shared by its calls.
//! - [`driver::CallDriver`]: the per-call driver inside the call's media task: it owns the
//!   provider streams of the call and moves events between them and the sans-IO
//!   [`happ_call::Bridge`], which owns the media session.

pub mod driver;
pub(crate) mod format;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use happ_call::{ConversationConfig, Opening};
use happ_speech::{LlmProvider, Message, SttProvider, ToolDef, TtsProvider};
use tracing::{info, warn};

use crate::config::{AssistantConfig, Config, SpeechConfig};

/// Longest knowledge text put into a cloud LLM's instructions (about 4,000 tokens).
const KNOWLEDGE_CHARS: usize = 16_000;

/// The speech providers every call uses, in the order they are tried.
pub struct Engines {
    /// Recognisers: `[speech] stt`, then its fallbacks.
    pub stt: Vec<Arc<dyn SttProvider>>,
    /// Synthesisers: `[speech] tts`, then its fallbacks.
    pub tts: Vec<Arc<dyn TtsProvider>>,
    /// The apology, 8 kHz PCM, synthesised ahead by the local engine (empty when it is missing).
    pub apology: Arc<[i16]>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: Vec<&str>| v.join(", ");
        f.debug_struct("Engines")
            .field("stt", &names(self.stt.iter().map(|p| p.name()).collect()))
            .field("tts", &names(self.tts.iter().map(|p| p.name()).collect()))
            .field("apology_samples", &self.apology.len())
            .finish()
    }
}

impl Engines {
    /// The providers `[speech]` names; a provider that cannot be built is an error naming it.
    /// The apology is synthesised here (it needs a tokio runtime).
    pub async fn new(speech: &SpeechConfig) -> Result<Engines, String> {
        let mut stt = Vec::new();
        for name in speech.stt_chain() {
            stt.push(Arc::from(crate::speech::stt_named(speech, &name)?));
        }
        let mut tts = Vec::new();
        for name in speech.tts_chain() {
            tts.push(Arc::from(crate::speech::tts_named(speech, &name)?));
        }
        let apology = match synthesise_local(speech, &ConversationConfig::default().apology).await {
            Ok(pcm) => pcm,
            Err(e) => {
                warn!(error = %e, "cannot synthesise the apology with the local engine: a failed answer will be silence");
                Vec::new()
            }
        };
        let engines = Engines { stt, tts, apology: Arc::from(apology) };
        info!(engines = ?engines, "speech engines ready");
        Ok(engines)
    }
}

/// `text` spoken by the local engine (espeak-ng) as 8 kHz PCM.
async fn synthesise_local(speech: &SpeechConfig, text: &str) -> Result<Vec<i16>, String> {
    let provider = crate::speech::tts_named(speech, "local")?;
    let (pcm, _) = crate::speech::synthesise(&*provider, happ_speech::AudioFormat::PCM_8K, &happ_speech::TtsOptions::default(), &[text.to_owned()]).await?;
    Ok(pcm)
}

/// One assistant, ready to answer calls.
pub struct Assistant {
    /// Its settings.
    pub config: AssistantConfig,
    /// The instructions at the head of every LLM request.
    pub instructions: String,
    /// LLM providers in the order they are tried, each with its model.
    pub llms: Vec<(Arc<dyn LlmProvider>, String)>,
    /// The tools offered to the model.
    pub tools: Vec<ToolDef>,
    /// Turn-taking.
    pub turns: ConversationConfig,
    /// Words the recogniser should favour: names and terms from the knowledge.
    pub keywords: Vec<String>,
    /// The knowledge's sentences: the local recogniser builds its language model from them too,
    /// so the words a caller uses to ask about them are in it.
    pub phrases: Vec<String>,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("id", &self.config.id)
            .field("llms", &self.llms.iter().map(|(p, m)| format!("{}:{m}", p.name())).collect::<Vec<_>>())
            .field("tools", &self.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Assistant {
    /// `config` with its LLMs built from `speech`, its turn-taking from `config.turns` (the
    /// conversation may last up to `max_call`, the daemon's hard limit, less time for a goodbye).
    pub fn new(speech: &SpeechConfig, config: &AssistantConfig, max_call: Duration) -> Result<Assistant, String> {
        let mut llms = vec![crate::speech::llm(speech, config)?];
        if let Some(fallback) = &speech.llm_fallback {
            let alternate = AssistantConfig { llm_provider: fallback.clone(), llm_model: String::new(), ..config.clone() };
            llms.push(crate::speech::llm(speech, &alternate)?);
        }
        let llms = llms.into_iter().map(|(p, m)| (Arc::from(p), m)).collect();
        Ok(Assistant::with_llms(config, llms, max_call))
    }

    /// `config` answered by `llms` (each with its model), in the order they are tried, with
    /// its turn-taking from `config.turns` as [`Assistant::new`] does.
    pub(crate) fn with_llms(config: &AssistantConfig, llms: Vec<(Arc<dyn LlmProvider>, String)>, max_call: Duration) -> Assistant {
        let mut tools = crate::speech::builtin_tools();
        tools.push(ToolDef {
            name: "send_dtmf".into(),
            description: "Press keys on the phone keypad (to navigate an automated menu).".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"digits": {"type": "string", "description": "The keys, e.g. \"1\" or \"123#\"."}}, "required": ["digits"]}),
        });
        Assistant {
            instructions: instructions(config),
            keywords: keywords(config),
            phrases: phrases(config),
            turns: turns(config, max_call),
            config: config.clone(),
            llms,
            tools,
        }
    }

    /// The messages of an LLM request: the instructions, then the conversation.
    pub fn messages(&self, history: &[happ_call::Entry]) -> Vec<Message> {
        let mut out = Vec::with_capacity(history.len() + 1);
        if !self.instructions.is_empty() {
            out.push(Message::System(self.instructions.clone()));
        }
        for entry in history {
            out.push(match entry {
                happ_call::Entry::Caller { text, .. } => Message::User(text.clone()),
                happ_call::Entry::Assistant { text, tool_calls, .. } => Message::Assistant {
                    content: text.clone(),
                    tool_calls: tool_calls
                        .iter()
                        .map(|c| happ_speech::ToolCall { id: c.id.clone(), name: c.name.clone(), arguments: c.arguments.clone() })
                        .collect(),
                },
                happ_call::Entry::Operator { text, .. } => Message::Assistant { content: text.clone(), tool_calls: Vec::new() },
                happ_call::Entry::ToolResult { call_id, content } => Message::Tool { call_id: call_id.clone(), content: content.clone() },
            });
        }
        out
    }
}

/// The assistants of a configuration (and of the platform), by id; one that cannot be built is
/// logged and left out (its phones' calls are refused).
pub fn assistants(config: &Config, platform: &[AssistantConfig]) -> HashMap<String, Arc<Assistant>> {
    let max_call = Duration::from_secs(config.calls.max_duration_secs);
    let mut out = HashMap::new();
    // The file's assistants win over the platform's with the same id.
    for a in platform.iter().chain(&config.assistants) {
        match Assistant::new(&config.speech, a, max_call) {
            Ok(assistant) => {
                out.insert(a.id.clone(), Arc::new(assistant));
            }
            Err(e) => warn!(assistant = %a.id, error = %e, "assistant cannot answer calls"),
        }
    }
    out
}

/// The system message: the prompt, the language, the knowledge, and the rules of the phone.
fn instructions(a: &AssistantConfig) -> String {
    let mut s = String::new();
    if !a.prompt_text.trim().is_empty() {
        s.push_str(a.prompt_text.trim());
        s.push_str("\n\n");
    }
    s.push_str(
        "You are speaking with a caller on the telephone. Your words are read aloud: answer in short, plain sentences, \
         without lists, markdown, emoji or URLs. Keypad presses reach you as \"[keypad] digits\".",
    );
    if !a.language.trim().is_empty() {
        s.push_str(&format!(" Speak the language with the code {:?}.", a.language.trim()));
    }
    let mut knowledge = String::new();
    for k in a.knowledge.iter().filter(|k| k.kind == "text") {
        let entry = format!("\n\n## {}\n{}", k.name.trim(), k.resource_content.trim());
        if knowledge.len() + entry.len() > KNOWLEDGE_CHARS {
            break;
        }
        knowledge.push_str(&entry);
    }
    if !knowledge.is_empty() {
        s.push_str("\n\nAnswer from this knowledge; if it does not say, say you do not know:");
        s.push_str(&knowledge);
    }
    s
}

/// Capitalised words of the knowledge and the assistant's name: names and products the
/// recogniser should favour.
fn keywords(a: &AssistantConfig) -> Vec<String> {
    let mut words: Vec<String> = std::iter::once(a.name.as_str())
        .chain(a.knowledge.iter().map(|k| k.resource_content.as_str()))
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.len() > 2 && w.chars().next().is_some_and(char::is_uppercase))
        .map(str::to_owned)
        .collect();
    words.sort();
    words.dedup();
    words.truncate(100);
    words
}

/// The sentences of `a`'s text knowledge, its first message and its name.
fn phrases(a: &AssistantConfig) -> Vec<String> {
    let mut out: Vec<String> = vec![a.name.clone(), a.first_message.clone()];
    for k in a.knowledge.iter().filter(|k| k.kind == "text") {
        out.push(k.name.clone());
        out.extend(k.resource_content.split(['.', '!', '?', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

/// The conversation settings of `a`.
pub fn turns(a: &AssistantConfig, max_call: Duration) -> ConversationConfig {
    let t = &a.turns;
    let d = ConversationConfig::default();
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    // The spoken goodbye comes 15 s before the daemon's hard limit, so it is heard.
    let hard = max_call.saturating_sub(Duration::from_secs(15));
    ConversationConfig {
        first_message: a.first_message.clone(),
        opening: if t.wait_for_caller == Some(true) { Opening::WaitForCaller } else { Opening::Speak },
        min_endpointing_delay: ms(t.min_endpointing_ms, d.min_endpointing_delay),
        max_endpointing_delay: ms(t.max_endpointing_ms, d.max_endpointing_delay),
        min_interruption: ms(t.min_interruption_ms, d.min_interruption),
        min_interruption_words: t.min_interruption_words.unwrap_or(d.min_interruption_words),
        false_interruption_timeout: ms(t.false_interruption_ms, d.false_interruption_timeout),
        resume_false_interruptions: t.resume_false_interruptions.unwrap_or(d.resume_false_interruptions),
        silence_reprompt: match t.silence_reprompt_secs {
            Some(0) => None,
            Some(s) => Some(Duration::from_secs(s)),
            None => d.silence_reprompt,
        },
        reprompt_text: t.reprompt_text.clone().unwrap_or(d.reprompt_text),
        silence_hangup: t.silence_hangup_secs.map_or(d.silence_hangup, Duration::from_secs),
        max_duration: Some(t.max_duration_secs.map_or(hard, Duration::from_secs).min(hard.max(Duration::from_secs(1)))),
        dtmf_timeout: ms(t.dtmf_timeout_ms, d.dtmf_timeout),
        stall_timeout: ms(t.stall_timeout_ms, d.stall_timeout),
        apology: t.apology.clone().unwrap_or(d.apology),
        ..d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KnowledgeConfig, TurnsConfig};

    fn assistant() -> AssistantConfig {
        AssistantConfig {
            id: "a".into(),
            name: "Sunrise Bakery".into(),
            prompt_text: "You are the bakery's assistant.".into(),
            first_message: "Hello!".into(),
            language: "en".into(),
            knowledge: vec![
                KnowledgeConfig {
                    id: None,
                    assistant_id: None,
                    kind: "text".into(),
                    name: "Hours".into(),
                    description: None,
                    resource_content: "Open from 7 to 6, Tuesday to Saturday.".into(),
                },
                KnowledgeConfig {
                    id: None,
                    assistant_id: None,
                    kind: "url".into(),
                    name: "Site".into(),
                    description: None,
                    resource_content: "https://example.com".into(),
                },
            ],
            ..AssistantConfig::default()
        }
    }

    #[test]
    fn instructions_carry_prompt_language_and_text_knowledge() {
        let s = instructions(&assistant());
        assert!(s.starts_with("You are the bakery's assistant."));
        assert!(s.contains("\"en\""));
        assert!(s.contains("## Hours\nOpen from 7 to 6"));
        assert!(!s.contains("example.com"), "url entries are the platform's to crawl");
        assert_eq!(keywords(&assistant()), ["Bakery", "Open", "Saturday", "Sunrise", "Tuesday"]);
    }

    #[test]
    fn turn_settings_default_and_override() {
        let a = assistant();
        let t = turns(&a, Duration::from_secs(3600));
        assert_eq!(t.first_message, "Hello!");
        assert_eq!(t.min_endpointing_delay, Duration::from_millis(500));
        assert_eq!(t.max_duration, Some(Duration::from_secs(3585)));
        let custom = AssistantConfig {
            turns: TurnsConfig { wait_for_caller: Some(true), min_endpointing_ms: Some(800), silence_reprompt_secs: Some(0), ..TurnsConfig::default() },
            ..a
        };
        let t = turns(&custom, Duration::from_secs(3600));
        assert_eq!(t.opening, Opening::WaitForCaller);
        assert_eq!(t.min_endpointing_delay, Duration::from_millis(800));
        assert_eq!(t.silence_reprompt, None);
    }

    #[test]
    fn history_becomes_messages() {
        let speech = SpeechConfig::default();
        let a = Assistant::new(&speech, &assistant(), Duration::from_secs(60)).expect("local LLM");
        let history = vec![
            happ_call::Entry::Assistant { text: "Hello!".into(), at: Duration::ZERO, interrupted: false, tool_calls: vec![], latency: None },
            happ_call::Entry::Caller { text: "when do you open".into(), at: Duration::from_secs(2) },
        ];
        let m = a.messages(&history);
        assert!(matches!(&m[0], Message::System(s) if s.contains("Hours")));
        assert_eq!(m[2], Message::User("when do you open".into()));
        assert!(a.tools.iter().any(|t| t.name == "turnOffAiMode") && a.tools.iter().any(|t| t.name == "hangup"));
    }
}
