//! The ElevenLabs `stream-input` WebSocket wire format, and the pure steps of using it: the
//! connection URL, the messages sent, the decoding of the messages received, and the errors of
//! close frames and refused upgrades.
//!
//! Client messages (JSON text frames):
//!
//! - first: `{"text":" ","voice_settings":{...},"generation_config":{"chunk_length_schedule":[...]}}`
//!   (the text of the first message must be a single space);
//! - per sentence: `{"text":"Hello there. ","try_trigger_generation":true}`, the text ending in a
//!   space so the next sentence does not glue onto it;
//! - keep-alive: `{"text":" "}`, which counts as input for the server's inactivity timeout and
//!   speaks nothing;
//! - end: `{"text":""}`: the server generates what remains, sends `{"isFinal":true}` and closes.
//!
//! Server messages: `{"audio":"<base64>","isFinal":null,"normalizedAlignment":{...},
//! "alignment":{...}}`, then `{"isFinal":true}` (with `audio` null or absent); failures as
//! `{"message":"...","error":"...","code":1008}` or a close frame with code 1008 and a reason.

use base64::Engine;
use serde_json::Value;

use crate::{AudioFormat, Error};

/// The `output_format` query value of a format, for the formats the bridge can use.
pub(crate) fn output_format(format: AudioFormat) -> Option<&'static str> {
    Some(match format {
        AudioFormat::MULAW_8K => "ulaw_8000",
        AudioFormat::PCM_8K => "pcm_8000",
        AudioFormat::PCM_16K => "pcm_16000",
        AudioFormat::PCM_24K => "pcm_24000",
        _ => return None,
    })
}

/// What goes into the connection URL.
#[derive(Debug)]
pub(crate) struct UrlParams<'a> {
    pub voice_id: &'a str,
    pub model_id: &'a str,
    pub output_format: &'static str,
    pub auto_mode: bool,
    pub inactivity_timeout_secs: u64,
    pub language_code: Option<&'a str>,
}

/// `{base}/text-to-speech/{voice_id}/stream-input?model_id=..&output_format=..&auto_mode=..&inactivity_timeout=..[&language_code=..]`.
/// The voice id is one escaped path segment, whatever it contains. Only ws and wss are accepted.
pub(crate) fn stream_url(base: &str, p: &UrlParams<'_>) -> Result<reqwest::Url, Error> {
    let base = base.trim_end_matches('/');
    let mut url = reqwest::Url::parse(base).map_err(|e| Error::Config { detail: format!("base_url {base:?}: {e}") })?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(Error::Config { detail: format!("base_url {base:?}: not ws or wss") });
    }
    url.path_segments_mut().map_err(|()| Error::Config { detail: format!("base_url {base:?}: cannot have a path") })?.pop_if_empty().extend([
        "text-to-speech",
        p.voice_id,
        "stream-input",
    ]);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("model_id", p.model_id)
            .append_pair("output_format", p.output_format)
            .append_pair("auto_mode", if p.auto_mode { "true" } else { "false" })
            .append_pair("inactivity_timeout", &p.inactivity_timeout_secs.to_string());
        if let Some(lang) = p.language_code {
            q.append_pair("language_code", lang);
        }
    }
    Ok(url)
}

/// The first message: a single space, the voice settings and the chunk schedule.
pub(crate) fn init_message(stability: f64, similarity_boost: f64, chunk_length_schedule: &[u32]) -> String {
    serde_json::json!({
        "text": " ",
        "voice_settings": { "stability": stability, "similarity_boost": similarity_boost },
        "generation_config": { "chunk_length_schedule": chunk_length_schedule },
    })
    .to_string()
}

/// One sentence, ending in a space as the API wants.
pub(crate) fn text_message(text: &str) -> String {
    let text = if text.ends_with(char::is_whitespace) { text.to_owned() } else { format!("{text} ") };
    serde_json::json!({ "text": text, "try_trigger_generation": true }).to_string()
}

/// Keeps the connection open while no text comes: a space, which speaks nothing.
pub(crate) const KEEP_ALIVE: &str = r#"{"text":" "}"#;

/// The end of input: the server speaks what remains, sends `isFinal` and closes.
pub(crate) const END: &str = r#"{"text":""}"#;

/// One server message, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Audio bytes in the requested format (may be empty).
    Audio(Vec<u8>),
    /// The last message: all text was spoken. Documented without audio; audio a server puts
    /// there anyway is kept rather than lost.
    Final(Vec<u8>),
    /// A message of no interest (no audio, not final, not an error): skipped.
    Other,
}

/// Decodes one text frame.
pub(crate) fn decode(text: &str) -> Result<Inbound, Error> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Protocol { detail: format!("message is not JSON ({e}): {}", excerpt(text)) })?;
    let Value::Object(m) = value else { return Err(Error::Protocol { detail: format!("message is not a JSON object: {}", excerpt(text)) }) };
    if m.get("error").is_some_and(|e| !e.is_null()) {
        let message = m.get("message").and_then(Value::as_str).unwrap_or_default();
        let error = m.get("error").and_then(Value::as_str).unwrap_or_default();
        let code = m.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
        return Err(message_error(error, message, code));
    }
    let audio = match m.get("audio") {
        Some(Value::String(b64)) => {
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| Error::Protocol { detail: format!("audio is not base64: {e}") })?
        }
        None | Some(Value::Null) => Vec::new(),
        Some(other) => return Err(Error::Protocol { detail: format!("audio is not a string: {}", excerpt(&other.to_string())) }),
    };
    if m.get("isFinal").and_then(Value::as_bool) == Some(true) {
        return Ok(Inbound::Final(audio));
    }
    if m.contains_key("audio") {
        return Ok(Inbound::Audio(audio));
    }
    if let Some(message) = m.get("message").and_then(Value::as_str) {
        // An error without an `error` field: still a failure, the server stops after it.
        return Err(message_error("", message, None));
    }
    Ok(Inbound::Other)
}

/// The typed error of an error message.
fn message_error(error: &str, message: &str, code: Option<u16>) -> Error {
    let name = error.to_ascii_lowercase();
    let detail = if error.is_empty() { message.to_owned() } else { format!("{error}: {message}") };
    if name.contains("rate_limit") || name.contains("too_many") || name.contains("concurrent") || name.contains("system_busy") {
        return Error::RateLimited { retry_after: None, message: detail };
    }
    let refused = ["quota", "api_key", "unauthorized", "auth", "voice_not_found", "invalid", "payment", "permission"];
    if code == Some(1008) || refused.iter().any(|r| name.contains(r)) {
        return Error::Refused { status: code.unwrap_or(1008), message: message.to_owned(), code: (!error.is_empty()).then(|| error.to_owned()) };
    }
    Error::Unavailable { status: None, detail }
}

/// The typed error of a close frame received before `isFinal`. A WebSocket refusal has no HTTP
/// status: [`Error::Refused`] then carries the close code (1008) as its `status`.
pub(crate) fn close_error(code: u16, reason: &str) -> Error {
    match code {
        // ElevenLabs also closes with 1008 on its own transient failures; the reason says so
        // ("We are sorry, something went wrong. You are not charged for this request.").
        1008 if reason.contains("something went wrong") => Error::Unavailable { status: None, detail: format!("closed with {code}: {reason}") },
        1008 => Error::Refused { status: code, message: reason.to_owned(), code: Some("policy_violation".into()) },
        // Going away, internal error, service restart, try again later.
        1001 | 1011 | 1012 | 1013 => Error::Unavailable { status: None, detail: format!("closed with {code}: {reason}") },
        _ => Error::Closed { detail: format!("closed with {code} before isFinal: {reason}") },
    }
}

/// The typed error of an upgrade refused with an HTTP status. ElevenLabs' error bodies are
/// `{"detail":{"status":"invalid_api_key","message":"..."}}` or `{"detail":"..."}`.
pub(crate) fn http_error(status: u16, retry_after: Option<std::time::Duration>, body: &[u8]) -> Error {
    let (message, code) = match serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("detail").cloned()) {
        Some(Value::String(s)) => (s, None),
        Some(Value::Object(d)) => (
            d.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| excerpt(&Value::Object(d.clone()).to_string())),
            d.get("status").and_then(Value::as_str).map(str::to_owned),
        ),
        _ => (excerpt(&String::from_utf8_lossy(body)), None),
    };
    match status {
        429 if code.as_deref().is_some_and(|c| c.contains("quota")) => Error::Refused { status, message, code },
        429 => Error::RateLimited { retry_after, message },
        408 | 500..=599 => Error::Unavailable { status: Some(status), detail: message },
        400..=499 => Error::Refused { status, message, code },
        _ => Error::Protocol { detail: format!("upgrade answered HTTP {status}: {message}") },
    }
}

/// The start of a text, printable.
fn excerpt(text: &str) -> String {
    crate::openai::wire::body_excerpt(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_has_escaped_voice_and_query() {
        let p = UrlParams {
            voice_id: "21m00Tcm4TlvDq8ikWAM",
            model_id: "eleven_flash_v2_5",
            output_format: "ulaw_8000",
            auto_mode: true,
            inactivity_timeout_secs: 60,
            language_code: Some("de"),
        };
        let url = stream_url("wss://api.elevenlabs.io/v1/", &p).expect("valid");
        assert_eq!(
            url.as_str(),
            "wss://api.elevenlabs.io/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000&auto_mode=true&inactivity_timeout=60&language_code=de"
        );
        let url = stream_url("ws://127.0.0.1:8080/v1", &UrlParams { voice_id: "a/b?c", language_code: None, ..p }).expect("valid");
        assert_eq!(url.path(), "/v1/text-to-speech/a%2Fb%3Fc/stream-input");
        assert!(matches!(stream_url("https://api.elevenlabs.io/v1", &p), Err(Error::Config { .. })));
    }

    #[test]
    fn client_messages() {
        let init: Value = serde_json::from_str(&init_message(0.5, 0.8, &[120, 160, 250, 290])).expect("json");
        assert_eq!(init["text"], " ");
        assert_eq!(init["voice_settings"]["stability"], 0.5);
        assert_eq!(init["generation_config"]["chunk_length_schedule"], serde_json::json!([120, 160, 250, 290]));
        assert_eq!(text_message("Hello there."), r#"{"text":"Hello there. ","try_trigger_generation":true}"#);
        assert_eq!(text_message("Quote \"me\" "), r#"{"text":"Quote \"me\" ","try_trigger_generation":true}"#);
        assert_eq!(serde_json::from_str::<Value>(END).expect("json")["text"], "");
    }

    #[test]
    fn server_messages() {
        let audio = r#"{"audio":"AAEC/w==","isFinal":null,"normalizedAlignment":{"charStartTimesMs":[0,3],"charsDurationsMs":[3,3],"chars":["H","i"]},"alignment":{"charStartTimesMs":[0,3],"charsDurationsMs":[3,3],"chars":["H","i"]}}"#;
        assert_eq!(decode(audio), Ok(Inbound::Audio(vec![0, 1, 2, 255])));
        assert_eq!(decode(r#"{"isFinal":true}"#), Ok(Inbound::Final(Vec::new())));
        assert_eq!(decode(r#"{"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null}"#), Ok(Inbound::Final(Vec::new())));
        assert_eq!(decode(r#"{"audio":"AAE=","isFinal":true}"#), Ok(Inbound::Final(vec![0, 1])));
        assert_eq!(decode(r#"{"audio":"","isFinal":false}"#), Ok(Inbound::Audio(Vec::new())));
        assert_eq!(decode(r#"{"alignment":null}"#), Ok(Inbound::Other));
        assert!(matches!(decode(r#"{"audio":"not base64!"}"#), Err(Error::Protocol { .. })));
        assert!(matches!(decode("<html>"), Err(Error::Protocol { .. })));
        assert!(matches!(decode("[1,2]"), Err(Error::Protocol { .. })));
    }

    #[test]
    fn errors_by_blame() {
        let e = decode(r#"{"message":"This request exceeds your quota of 10000.","error":"quota_exceeded","code":1008}"#);
        assert_eq!(e, Err(Error::Refused { status: 1008, message: "This request exceeds your quota of 10000.".into(), code: Some("quota_exceeded".into()) }));
        assert!(matches!(decode(r#"{"message":"busy","error":"too_many_concurrent_requests","code":1013}"#), Err(Error::RateLimited { .. })));
        assert!(matches!(decode(r#"{"message":"boom","error":"internal","code":1011}"#), Err(Error::Unavailable { .. })));
        assert!(matches!(close_error(1008, "Invalid API key"), Error::Refused { status: 1008, message, .. } if message == "Invalid API key"));
        assert!(matches!(close_error(1008, "We are sorry, something went wrong. You are not charged for this request."), Error::Unavailable { .. }));
        assert!(matches!(close_error(1011, "oops"), Error::Unavailable { .. }));
        assert!(matches!(close_error(1000, ""), Error::Closed { .. }));
        let body = br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(http_error(401, None, body), Error::Refused { status: 401, message: "Invalid API key".into(), code: Some("invalid_api_key".into()) });
        assert!(matches!(http_error(429, None, br#"{"detail":"slow down"}"#), Error::RateLimited { message, .. } if message == "slow down"));
        assert!(matches!(http_error(503, None, b"<html>busy</html>"), Error::Unavailable { status: Some(503), .. }));
        assert!(matches!(http_error(200, None, b""), Error::Protocol { .. }));
    }

    #[test]
    fn formats() {
        assert_eq!(output_format(AudioFormat::MULAW_8K), Some("ulaw_8000"));
        assert_eq!(output_format(AudioFormat::PCM_24K), Some("pcm_24000"));
        assert_eq!(output_format(AudioFormat::ALAW_8K), None);
    }
}
