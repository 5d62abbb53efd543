//! The configuration file (TOML): types, loading, and checks that name the key at fault.
//!
//! Every key is documented in `config/gateway.example.toml`; unknown keys are rejected (a typo
//! must not silently become a default). Phones and assistants use the Happ API's field names
//! (camelCase).

mod env;
mod telephony;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use env::{EnvError, expand};
/// Passwords and tokens: printed as `<redacted>` (the Happ client's type, so a secret passes
/// from the configuration to the client without being exposed on the way).
pub use happ_client::Secret;
pub use telephony::TelephonyUrl;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `${VAR}` could not be expanded.
    #[error("{path}: {source}")]
    Env {
        /// The file.
        path: PathBuf,
        /// Why.
        source: EnvError,
    },
    /// Not valid TOML, or not the expected shape (unknown key, wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// TOML's message, with line and column.
        message: String,
    },
    /// A value is wrong; `key` names it (`phones[1].codec`).
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SIP signalling.
    #[serde(default)]
    pub sip: SipConfig,
    /// RTP media.
    #[serde(default)]
    pub rtp: RtpConfig,
    /// The control API; absent, there is none.
    pub control: Option<ControlConfig>,
    /// The Happ platform; absent, phones and assistants come from this file.
    pub happ: Option<HappConfig>,
    /// Call limits and timers.
    #[serde(default)]
    pub calls: CallsConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Local phones.
    #[serde(default)]
    pub phones: Vec<PhoneConfig>,
    /// Local assistants.
    #[serde(default)]
    pub assistants: Vec<AssistantConfig>,
    /// Speech and LLM adapters by name.
    #[serde(default)]
    pub speech: SpeechConfig,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Where to listen, UDP and TCP.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address advertised in Via, Contact and SDP behind NAT.
    pub public_address: Option<IpAddr>,
    /// The User-Agent and Server header.
    pub user_agent: Option<String>,
    /// Registration lifetime requested, seconds.
    #[serde(default = "default_expires")]
    pub registration_expires: u32,
    /// Seconds between NAT keep-alives toward each registrar (0: none).
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u64,
    /// DNS servers (`ip:port`) to use instead of the system's.
    #[serde(default)]
    pub dns_servers: Vec<SocketAddr>,
    /// Session interval (RFC 4028) asked for on outbound calls and given to callers that
    /// support session timers without asking, seconds; 0: none of ours.
    #[serde(default = "default_session_expires")]
    pub session_expires: u32,
    /// The shortest session interval accepted (Min-SE); shorter ones get 422.
    #[serde(default = "default_min_session_expires")]
    pub min_session_expires: u32,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5060))
}
fn default_expires() -> u32 {
    300
}
fn default_keepalive() -> u64 {
    25
}
fn default_session_expires() -> u32 {
    1800
}
fn default_min_session_expires() -> u32 {
    90
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: default_listen(),
            public_address: None,
            user_agent: None,
            registration_expires: default_expires(),
            keepalive_secs: default_keepalive(),
            dns_servers: Vec::new(),
            session_expires: default_session_expires(),
            min_session_expires: default_min_session_expires(),
        }
    }
}

/// `[rtp]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// The address RTP sockets bind to.
    #[serde(default = "default_rtp_bind")]
    pub bind: IpAddr,
    /// The ports for RTP (even) and RTCP (odd), `LOW-HIGH`.
    #[serde(default = "default_port_range")]
    pub port_range: String,
    /// Seconds without RTP before a call is considered dead (0: never).
    #[serde(default = "default_inactivity")]
    pub inactivity_secs: u64,
}

fn default_rtp_bind() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}
fn default_port_range() -> String {
    "20000-29999".into()
}
fn default_inactivity() -> u64 {
    30
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig { bind: default_rtp_bind(), port_range: default_port_range(), inactivity_secs: default_inactivity() }
    }
}

impl RtpConfig {
    /// The port range as (first even port, last port).
    pub fn ports(&self) -> Result<(u16, u16), String> {
        let (lo, hi) = self.port_range.split_once('-').ok_or("expected LOW-HIGH, e.g. \"20000-29999\"")?;
        let lo: u16 = lo.trim().parse().map_err(|_| format!("{lo:?} is not a port"))?;
        let hi: u16 = hi.trim().parse().map_err(|_| format!("{hi:?} is not a port"))?;
        if lo < 1024 || hi <= lo {
            return Err(format!("{lo}-{hi}: LOW must be at least 1024 and below HIGH"));
        }
        let first = lo + lo % 2;
        if hi < first + 1 {
            return Err(format!("{lo}-{hi} holds no RTP/RTCP pair"));
        }
        Ok((first, hi))
    }

    /// How many calls the range holds (an even RTP port and the next for RTCP each).
    pub fn capacity(&self) -> u32 {
        self.ports().map(|(lo, hi)| u32::from(hi - lo + 1) / 2).unwrap_or(0)
    }
}

/// `[control]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Bearer token required on every endpoint but /healthz and /readyz.
    pub token: Secret,
}

/// `[happ]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HappConfig {
    /// API base URL.
    pub base_url: String,
    /// Access token.
    pub token: Secret,
    /// Seconds between reads of the platform's phones and assistants.
    #[serde(default = "default_sync_secs")]
    pub sync_secs: u64,
    /// The SQLite file of the outbox: what the gateway writes to the platform (each call's
    /// chat), kept until delivered. Relative to the configuration file's directory.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
}

fn default_outbox() -> PathBuf {
    PathBuf::from("happ-outbox.sqlite")
}

fn default_sync_secs() -> u64 {
    60
}

/// `[calls]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// Most calls at once, all phones together; more get 503.
    #[serde(default = "default_max_calls")]
    pub max_concurrent: u32,
    /// Seconds an outbound call may ring before it is cancelled.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    /// Longest call, seconds.
    #[serde(default = "default_max_duration")]
    pub max_duration_secs: u64,
    /// At shutdown, seconds calls may go on before they are hung up.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
}

fn default_max_calls() -> u32 {
    100
}
fn default_ring_timeout() -> u64 {
    60
}
fn default_max_duration() -> u64 {
    3600
}
fn default_drain() -> u64 {
    30
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent: default_max_calls(),
            ring_timeout_secs: default_ring_timeout(),
            max_duration_secs: default_max_duration(),
            drain_secs: default_drain(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `happ_gateway=debug,info`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: default_log_format(), level: default_log_level() }
    }
}

/// `[[phones]]`: the Happ API's phone fields, and the gateway's own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhoneConfig {
    /// The number, E.164 (`+380501234567`).
    pub phone_number: String,
    /// SIP login (digest username and user part of the address of record).
    pub sip_login: String,
    /// SIP password.
    #[serde(default)]
    pub password: Secret,
    /// Registrar or proxy: `host[:port][;transport=udp|tcp]`.
    pub telephony_url: String,
    /// Preferred codec: `alaw` or `ulaw`.
    #[serde(default = "default_codec")]
    pub codec: String,
    /// The assistant that answers.
    pub assistant_id: Option<String>,
    /// Register (true) or accept INVITEs from the telephonyUrl's addresses (false: a trunk).
    #[serde(default = "default_true")]
    pub register: bool,
    /// What calls do: `assistant`, `echo`, or `play:FILE.wav`.
    #[serde(default = "default_handler")]
    pub handler: String,
    /// Most calls at once on this phone.
    pub max_calls: Option<u32>,
    /// Milliseconds an inbound call rings (180 Ringing) before it is answered.
    #[serde(default)]
    pub answer_delay_ms: u64,
    /// Display name in From of outbound calls.
    pub display_name: Option<String>,
}

fn default_codec() -> String {
    "alaw".into()
}
fn default_true() -> bool {
    true
}
fn default_handler() -> String {
    "assistant".into()
}

/// `[[assistants]]`: the Happ API's assistant fields (every field of the platform's assistant
/// objects is accepted, so an export of the platform can be pasted in), and the gateway's own
/// turn-taking settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssistantConfig {
    /// Identifier phones refer to.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// System prompt.
    #[serde(default)]
    pub prompt_text: String,
    /// Greeting spoken on answer.
    #[serde(default)]
    pub first_message: String,
    /// LLM provider.
    #[serde(default)]
    pub llm_provider: String,
    /// LLM model.
    #[serde(default)]
    pub llm_model: String,
    /// Language (`en`).
    #[serde(default)]
    pub language: String,
    /// The platform's company, kept as given (the platform's objects carry it).
    pub company_id: Option<String>,
    /// The platform's timestamps, kept as given.
    pub created_at: Option<String>,
    /// The platform's timestamps, kept as given.
    pub updated_at: Option<String>,
    /// The voice chosen on the platform (a provider's voice name or id): the text-to-speech
    /// voice of the assistant's calls.
    pub voice: Option<String>,
    /// Knowledge entries (the platform's knowledge base, for assistants kept in this file).
    #[serde(default)]
    pub knowledge: Vec<KnowledgeConfig>,
    /// How the assistant takes turns on calls (`[assistants.turns]`); every key has a default.
    #[serde(default)]
    pub turns: TurnsConfig,
}

/// `[[assistants.knowledge]]`: one entry of an assistant's knowledge base, with the platform's
/// fields. Only `text` entries carry text the gateway reads (`url` and `file` entries are the
/// platform's to crawl and parse).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KnowledgeConfig {
    /// The platform's id of the entry.
    pub id: Option<String>,
    /// The assistant it belongs to (it belongs to the enclosing one here).
    pub assistant_id: Option<String>,
    /// `text` (default), `url` or `file`.
    #[serde(rename = "type", default = "default_knowledge_type")]
    pub kind: String,
    /// Title.
    pub name: String,
    /// What the entry is about.
    pub description: Option<String>,
    /// The text.
    #[serde(default)]
    pub resource_content: String,
}

fn default_knowledge_type() -> String {
    "text".into()
}

/// `[assistants.turns]`: turn-taking on calls. The defaults are those of `happ_call`'s
/// `ConversationConfig`, each explained in `config/gateway.example.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TurnsConfig {
    /// `true`: the assistant waits for the caller to speak first (default false: the first
    /// message is spoken on answer).
    pub wait_for_caller: Option<bool>,
    /// Silence after the caller's last word before the turn ends, once the words are in
    /// (default 500).
    pub min_endpointing_ms: Option<u64>,
    /// Silence after which the turn ends even without final words (default 3000).
    pub max_endpointing_ms: Option<u64>,
    /// Caller voice over the assistant before playback pauses for a barge-in (default 400).
    pub min_interruption_ms: Option<u64>,
    /// Words (not backchannels) that confirm a barge-in (default 1; 0 confirms on voice).
    pub min_interruption_words: Option<usize>,
    /// Wait for words after a barge-in before resuming playback (default 2000).
    pub false_interruption_ms: Option<u64>,
    /// Resume after a false interruption (default true).
    pub resume_false_interruptions: Option<bool>,
    /// Caller silence before "Are you still there?" (default 10; 0: never).
    pub silence_reprompt_secs: Option<u64>,
    /// What is asked then.
    pub reprompt_text: Option<String>,
    /// Silence after the reprompt before the goodbye and hangup (default 10).
    pub silence_hangup_secs: Option<u64>,
    /// Longest conversation, seconds, ended with a spoken goodbye (default: the daemon's
    /// `calls.max_duration_secs`, less 15 s for the goodbye).
    pub max_duration_secs: Option<u64>,
    /// Pause between keypad digits that ends them (default 2000; `#` ends them at once).
    pub dtmf_timeout_ms: Option<u64>,
    /// No audio this long after the caller's turn: the provider is stalled, try the next
    /// (default 2000).
    pub stall_timeout_ms: Option<u64>,
    /// The apology when no provider answers.
    pub apology: Option<String>,
}

/// `[speech]`: which adapters speak, listen and think, and their settings. Absent, the local
/// offline engines do all three.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// Speech-to-text: `local` (default), `deepgram` or `openai`; or a list of them, tried in
    /// order when one fails mid-call (`["deepgram", "local"]`).
    pub stt: Option<Providers>,
    /// Text-to-speech: `local` (default), `openai` or `elevenlabs`; or a list, tried in order.
    pub tts: Option<Providers>,
    /// The LLM tried when an assistant's own (`llmProvider`) fails: `local` answers from the
    /// assistant's knowledge, `openai` through `[speech.openai]`. Default: none (an apology).
    pub llm_fallback: Option<String>,
    /// `[speech.openai]`: OpenAI or any compatible server (chat, transcription, speech).
    pub openai: Option<OpenAiSpeechConfig>,
    /// `[speech.deepgram]`: Deepgram live transcription.
    pub deepgram: Option<ProviderKeyConfig>,
    /// `[speech.elevenlabs]`: ElevenLabs streaming speech.
    pub elevenlabs: Option<ElevenLabsConfig>,
    /// `[speech.local]`: the offline engines.
    #[serde(default)]
    pub local: LocalSpeechConfig,
}

/// Provider names: one, or several tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Providers(pub Vec<String>);

impl<'de> Deserialize<'de> for Providers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d)? {
            OneOrMany::One(name) => Ok(Providers(vec![name])),
            OneOrMany::Many(names) if names.is_empty() => Err(serde::de::Error::custom("an empty list names no provider")),
            OneOrMany::Many(names) => Ok(Providers(names)),
        }
    }
}

impl SpeechConfig {
    /// The recognisers in the order they are tried.
    pub fn stt_chain(&self) -> Vec<String> {
        self.stt.as_ref().map_or_else(|| vec!["local".into()], |p| p.0.clone())
    }

    /// The synthesisers in the order they are tried.
    pub fn tts_chain(&self) -> Vec<String> {
        self.tts.as_ref().map_or_else(|| vec!["local".into()], |p| p.0.clone())
    }
}

/// `[speech.openai]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSpeechConfig {
    /// API root with its version (default `https://api.openai.com/v1`): Groq, Ollama, vLLM or a
    /// self-hosted Whisper server serve the same protocol.
    pub base_url: Option<String>,
    /// Key (default `$OPENAI_API_KEY`; none for servers without authentication).
    pub api_key: Option<Secret>,
    /// Transcription model (default `whisper-1`).
    pub stt_model: Option<String>,
    /// Speech model (default `gpt-4o-mini-tts`).
    pub tts_model: Option<String>,
    /// Voice (default `alloy`).
    pub voice: Option<String>,
}

/// A provider that needs only a key and a model: `[speech.deepgram]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeyConfig {
    /// Endpoint override (tests, regional endpoints).
    pub base_url: Option<String>,
    /// Key (default from the provider's environment variable, e.g. `$DEEPGRAM_API_KEY`).
    pub api_key: Option<Secret>,
    /// Model (the provider's default when absent).
    pub model: Option<String>,
}

/// `[speech.elevenlabs]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ElevenLabsConfig {
    /// Endpoint override (tests, regional endpoints).
    pub base_url: Option<String>,
    /// Key (default `$ELEVENLABS_API_KEY`).
    pub api_key: Option<Secret>,
    /// Voice id (required to speak).
    pub voice_id: Option<String>,
    /// Model (default `eleven_flash_v2_5`).
    pub model: Option<String>,
}

/// `[speech.local]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalSpeechConfig {
    /// espeak-ng voice (default `en-us`).
    pub voice: Option<String>,
    /// espeak-ng speed in words per minute (default 175).
    pub words_per_minute: Option<u32>,
}

impl PhoneConfig {
    /// Checks what a phone needs to be served, wherever it comes from (the file or the
    /// platform): the field at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.phone_number.trim().is_empty() {
            return Err(("phoneNumber", "must not be empty".into()));
        }
        if self.sip_login.trim().is_empty() {
            return Err(("sipLogin", "must not be empty".into()));
        }
        TelephonyUrl::parse(&self.telephony_url).map_err(|m| ("telephonyUrl", m))?;
        match self.codec.to_ascii_lowercase().as_str() {
            "alaw" | "ulaw" => {}
            "opus" => return Err(("codec", "opus is not supported yet (alaw or ulaw)".into())),
            other => return Err(("codec", format!("{other:?}: expected alaw or ulaw"))),
        }
        if let Handler::Play(file) = Handler::parse(&self.handler).map_err(|m| ("handler", m))? {
            let bytes = std::fs::read(&file).map_err(|e| ("handler", format!("cannot read {}: {e}", file.display())))?;
            happ_fixtures::Audio::from_wav(&bytes).map_err(|e| ("handler", format!("{}: {e}", file.display())))?;
        }
        if self.answer_delay_ms > Config::MAX_ANSWER_DELAY_MS {
            return Err((
                "answerDelayMs",
                format!("{} is more than {} (callers and carriers give up long before)", self.answer_delay_ms, Config::MAX_ANSWER_DELAY_MS),
            ));
        }
        if self.max_calls == Some(0) {
            return Err(("maxCalls", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// What calls to a phone do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// The linked assistant answers.
    Assistant,
    /// The caller's audio comes back (a line test).
    Echo,
    /// A WAV file is played, then the call ends.
    Play(PathBuf),
}

impl Handler {
    /// Parses a `handler` value.
    pub fn parse(s: &str) -> Result<Handler, String> {
        match s.trim() {
            "assistant" | "" => Ok(Handler::Assistant),
            "echo" => Ok(Handler::Echo),
            other => match other.strip_prefix("play:") {
                Some(path) if !path.trim().is_empty() => Ok(Handler::Play(PathBuf::from(path.trim()))),
                _ => Err(format!("unknown handler {other:?} (expected assistant, echo or play:FILE.wav)")),
            },
        }
    }
}

impl Config {
    /// Reads, expands and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_text(path, &text, |name| std::env::var(name).ok())
    }

    /// Parses and checks configuration text (`path` names it in errors; relative paths in it,
    /// like `play:` files, are resolved against its directory).
    pub fn from_text(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let expanded = expand(text, env).map_err(|source| ConfigError::Env { path: path.to_owned(), source })?;
        let mut config: Config =
            toml::from_str(&expanded).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string().trim().to_owned() })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        config.validate().map_err(|(key, message)| ConfigError::Invalid { path: path.to_owned(), key, message })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        if let Some(happ) = &mut self.happ
            && happ.outbox.is_relative()
        {
            happ.outbox = dir.join(&happ.outbox);
        }
        for phone in &mut self.phones {
            if let Ok(Handler::Play(file)) = Handler::parse(&phone.handler)
                && file.is_relative()
            {
                phone.handler = format!("play:{}", dir.join(file).display());
            }
        }
    }

    /// Checks values the types cannot; returns the key at fault and why.
    /// Longest ring before answering that `answerDelayMs` allows.
    const MAX_ANSWER_DELAY_MS: u64 = 120_000;

    fn validate(&self) -> Result<(), (String, String)> {
        self.rtp.ports().map_err(|m| ("rtp.port_range".to_owned(), m))?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(("log.format".into(), format!("{:?}: expected text or json", self.log.format)));
        }
        if let Some(control) = &self.control
            && control.token.expose().trim().is_empty()
        {
            return Err(("control.token".into(), "must not be empty".into()));
        }
        if self.sip.registration_expires == 0 {
            return Err(("sip.registration_expires".into(), "must be at least 1 (0 would unregister)".into()));
        }
        if self.sip.min_session_expires == 0 {
            return Err(("sip.min_session_expires".into(), "must be at least 1 (RFC 4028 recommends 90)".into()));
        }
        if self.sip.session_expires != 0 && self.sip.session_expires < self.sip.min_session_expires {
            return Err((
                "sip.session_expires".into(),
                format!("{} is below sip.min_session_expires ({}); use 0 for no session timer", self.sip.session_expires, self.sip.min_session_expires),
            ));
        }
        if self.calls.max_concurrent == 0 {
            return Err(("calls.max_concurrent".into(), "must be at least 1".into()));
        }
        let mut numbers = HashSet::new();
        let assistants: HashSet<&str> = self.assistants.iter().map(|a| a.id.as_str()).collect();
        if assistants.len() != self.assistants.len() {
            return Err(("assistants".into(), "two assistants have the same id".into()));
        }
        for (i, a) in self.assistants.iter().enumerate() {
            for (j, k) in a.knowledge.iter().enumerate() {
                if !matches!(k.kind.as_str(), "text" | "url" | "file") {
                    return Err((format!("assistants[{i}].knowledge[{j}].type"), format!("{:?}: expected text, url or file", k.kind)));
                }
            }
            let t = &a.turns;
            if let (Some(min), Some(max)) = (t.min_endpointing_ms, t.max_endpointing_ms)
                && max < min
            {
                return Err((format!("assistants[{i}].turns.maxEndpointingMs"), format!("{max} is below minEndpointingMs ({min})")));
            }
        }
        if let Some(happ) = &self.happ {
            if !(happ.base_url.starts_with("https://") || happ.base_url.starts_with("http://")) {
                return Err(("happ.base_url".into(), format!("{:?}: expected an http:// or https:// URL", happ.base_url)));
            }
            if happ.token.expose().trim().is_empty() {
                return Err(("happ.token".into(), "must not be empty".into()));
            }
            if happ.sync_secs == 0 {
                return Err(("happ.sync_secs".into(), "must be at least 1".into()));
            }
        }
        for (i, p) in self.phones.iter().enumerate() {
            let key = |field: &str| format!("phones[{i}].{field}");
            if !numbers.insert(p.phone_number.as_str()) {
                return Err((key("phoneNumber"), format!("{} is configured twice", p.phone_number)));
            }
            p.check().map_err(|(field, message)| (key(field), message))?;
            if Handler::parse(&p.handler) == Ok(Handler::Assistant) && self.happ.is_none() {
                let id = p.assistant_id.as_deref().ok_or_else(|| (key("assistantId"), "required by the assistant handler".to_owned()))?;
                if !assistants.contains(id) {
                    return Err((key("assistantId"), format!("no [[assistants]] entry has id {id:?}")));
                }
            }
        }
        Ok(())
    }

    /// Things that work but an operator should hear about.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let ports = 2 * self.rtp.capacity();
        if ports < 2 * self.calls.max_concurrent {
            w.push(format!(
                "rtp.port_range has {ports} ports, fewer than twice calls.max_concurrent ({}): each call needs an RTP and an RTCP port, so the range caps concurrency at {} calls",
                self.calls.max_concurrent,
                ports / 2
            ));
        }
        if self.phones.is_empty() && self.happ.is_none() {
            w.push("no phones configured and no [happ] to fetch them from: nothing will register".into());
        }
        if self.control.is_none() {
            w.push("no [control]: no health checks, metrics or dial-out".into());
        }
        w
    }
}

#[cfg(test)]
mod tests;
