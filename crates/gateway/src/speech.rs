//! The speech and LLM providers the configuration names (`[speech]`, the assistant's
//! `llmProvider`), built once and shared by calls and the `speech` commands.

use happ_speech::deepgram::{DeepgramConfig, DeepgramStt};
use happ_speech::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use happ_speech::local::{EspeakConfig, EspeakTts, KnowledgeBase, KnowledgeEntry, KnowledgeLlm, KnowledgeOptions, SphinxConfig, SphinxStt};
use happ_speech::openai::{OpenAiChat, OpenAiConfig, OpenAiSpeech, OpenAiSpeechConfig, OpenAiTranscription, OpenAiTranscriptionConfig};
use happ_speech::{AudioFormat, LlmProvider, Secret, SttProvider, ToolDef, TtsEvent, TtsLatency, TtsOptions, TtsProvider};

use crate::assistant::format::ChunkDecoder;

use crate::config::{AssistantConfig, SpeechConfig};

/// OpenAI's API root, the default of `[speech.openai] base_url`.
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A key from the configuration, else from the provider's usual environment variable.
pub fn key(configured: Option<&Secret>, env: &str) -> Option<Secret> {
    configured.cloned().or_else(|| std::env::var(env).ok().filter(|k| !k.is_empty()).map(Secret::new))
}

/// The first speech-to-text provider `[speech] stt` names.
pub fn stt(config: &SpeechConfig) -> Result<Box<dyn SttProvider>, String> {
    stt_named(config, &config.stt_chain()[0])
}

/// The speech-to-text provider `name`, with its `[speech.NAME]` settings.
pub fn stt_named(config: &SpeechConfig, name: &str) -> Result<Box<dyn SttProvider>, String> {
    match name {
        "local" | "pocketsphinx" => Ok(Box::new(SphinxStt::new(SphinxConfig::default()).map_err(|e| format!("speech.stt local: {e}"))?)),
        "deepgram" => {
            let section = config.deepgram.clone().unwrap_or_default();
            let api_key = key(section.api_key.as_ref(), "DEEPGRAM_API_KEY").ok_or("speech.deepgram.api_key: not set (nor $DEEPGRAM_API_KEY)")?;
            let mut deepgram = DeepgramConfig::new(api_key);
            if let Some(url) = section.base_url {
                deepgram.base_url = url;
            }
            if let Some(model) = section.model {
                deepgram.model = model;
            }
            Ok(Box::new(DeepgramStt::new(&deepgram).map_err(|e| format!("speech.deepgram: {e}"))?))
        }
        "openai" => {
            let section = config.openai.clone().unwrap_or_default();
            let api = OpenAiConfig::new(section.base_url.unwrap_or_else(|| OPENAI_BASE_URL.into()), key(section.api_key.as_ref(), "OPENAI_API_KEY"));
            let transcription = OpenAiTranscriptionConfig::new(api, section.stt_model.unwrap_or_else(|| "whisper-1".into()));
            Ok(Box::new(OpenAiTranscription::new(&transcription).map_err(|e| format!("speech.openai: {e}"))?))
        }
        other => Err(format!("speech.stt: unknown provider {other:?} (local, deepgram or openai)")),
    }
}

/// The first text-to-speech provider `[speech] tts` names.
pub fn tts(config: &SpeechConfig) -> Result<Box<dyn TtsProvider>, String> {
    tts_named(config, &config.tts_chain()[0])
}

/// The text-to-speech provider `name`, with its `[speech.NAME]` settings.
pub fn tts_named(config: &SpeechConfig, name: &str) -> Result<Box<dyn TtsProvider>, String> {
    match name {
        "local" | "espeak" | "espeak-ng" => {
            let mut espeak = EspeakConfig::default();
            if let Some(voice) = &config.local.voice {
                espeak.voice.clone_from(voice);
            }
            if let Some(wpm) = config.local.words_per_minute {
                espeak.words_per_minute = wpm;
            }
            Ok(Box::new(EspeakTts::new(espeak).map_err(|e| format!("speech.tts local: {e}"))?))
        }
        "openai" => {
            let section = config.openai.clone().unwrap_or_default();
            let mut speech =
                OpenAiSpeechConfig::new(section.base_url.unwrap_or_else(|| OPENAI_BASE_URL.into()), key(section.api_key.as_ref(), "OPENAI_API_KEY"));
            if let Some(model) = section.tts_model {
                speech.model = model;
            }
            if let Some(voice) = section.voice {
                speech.voice = voice;
            }
            Ok(Box::new(OpenAiSpeech::new(&speech).map_err(|e| format!("speech.openai: {e}"))?))
        }
        "elevenlabs" => {
            let section = config.elevenlabs.clone().unwrap_or_default();
            let api_key = key(section.api_key.as_ref(), "ELEVENLABS_API_KEY").ok_or("speech.elevenlabs.api_key: not set (nor $ELEVENLABS_API_KEY)")?;
            let voice_id = section.voice_id.ok_or("speech.elevenlabs.voice_id: not set")?;
            let mut eleven = ElevenLabsConfig::new(api_key, voice_id);
            if let Some(url) = section.base_url {
                eleven.base_url = url;
            }
            if let Some(model) = section.model {
                eleven.model_id = model;
            }
            Ok(Box::new(ElevenLabsTts::new(&eleven).map_err(|e| format!("speech.elevenlabs: {e}"))?))
        }
        other => Err(format!("speech.tts: unknown provider {other:?} (local, openai or elevenlabs)")),
    }
}

/// The LLM of `assistant`: its `llmProvider` (`local` answers from its knowledge; `openai` and
/// compatible servers through `[speech.openai]`), with the model it names.
pub fn llm(config: &SpeechConfig, assistant: &AssistantConfig) -> Result<(Box<dyn LlmProvider>, String), String> {
    match assistant.llm_provider.to_ascii_lowercase().as_str() {
        "" | "local" | "knowledge" => {
            let entries =
                assistant.knowledge.iter().filter(|k| k.kind == "text").map(|k| KnowledgeEntry::new(k.name.clone(), k.resource_content.clone())).collect();
            Ok((Box::new(KnowledgeLlm::new(KnowledgeBase::new(entries), KnowledgeOptions::default())), "knowledge".into()))
        }
        "openai" | "groq" | "ollama" | "vllm" => {
            let section = config.openai.clone().unwrap_or_default();
            let base_url = section.base_url.unwrap_or_else(|| OPENAI_BASE_URL.into());
            let chat = OpenAiConfig::new(base_url, key(section.api_key.as_ref(), "OPENAI_API_KEY"));
            let provider = OpenAiChat::new(&chat).map_err(|e| format!("speech.openai: {e}"))?;
            let model = if assistant.llm_model.is_empty() { "gpt-4o-mini".to_owned() } else { assistant.llm_model.clone() };
            Ok((Box::new(provider), model))
        }
        other => Err(format!("assistant {}: llmProvider {other:?} is not supported (local or openai-compatible)", assistant.id)),
    }
}

/// Speaks `sentences` with `provider` on one stream, pushed in order as the bridge pushes an
/// answer's sentences: the samples (decoded from whatever `format` the stream gives) and the
/// stream's latency. Errors name the provider.
pub async fn synthesise(provider: &dyn TtsProvider, format: AudioFormat, options: &TtsOptions, sentences: &[String]) -> Result<(Vec<i16>, TtsLatency), String> {
    let name = provider.name();
    let mut stream = provider.start(format, options).map_err(|e| format!("{name}: {e}"))?;
    for sentence in sentences {
        stream.push_text(sentence).map_err(|e| format!("{name}: {e}"))?;
    }
    stream.finish();
    let mut decoder = ChunkDecoder::new(format, format.sample_rate)?;
    let mut samples = Vec::new();
    loop {
        match stream.next_event().await {
            Some(Ok(TtsEvent::Audio(chunk))) => samples.extend_from_slice(decoder.decode(&chunk.data)),
            Some(Ok(TtsEvent::Done(latency))) => return Ok((samples, latency)),
            Some(Err(e)) => return Err(format!("{name}: {e}")),
            None => return Err(format!("{name}: the stream ended without finishing")),
        }
    }
}

/// The tools every assistant has on a call (see "The call bridge" in the product spec): hand-off
/// to a human and hanging up.
pub fn builtin_tools() -> Vec<ToolDef> {
    let no_arguments = serde_json::json!({"type": "object", "properties": {}});
    vec![
        ToolDef {
            name: "turnOffAiMode".into(),
            description: "Hand the conversation to a human operator when the caller asks for a person or the assistant cannot help.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"reason": {"type": "string", "description": "Why the caller needs a person."}}}),
        },
        ToolDef { name: "hangup".into(), description: "End the call after saying goodbye.".into(), parameters: no_arguments },
    ]
}
