//! Deepgram's live-transcription wire format, and the pure steps of speaking it: the `listen` URL,
//! the client's control messages, the server's messages, their mapping to [`SttEvent`]s, and the
//! errors of a refused upgrade or a close frame. No I/O: the driver in the parent module feeds
//! text messages in and sends what this builds.

use std::time::Duration;

use serde::Deserialize;

use crate::openai::wire as openai_wire;
use crate::{AudioFormat, Encoding, Error, TimeoutPhase, Transcript};

/// Keeps the stream open while no audio flows (Deepgram closes it after 10 s without data).
pub(crate) const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
/// Flushes what Deepgram holds: finals for all audio sent so far, marked `from_finalize`.
pub(crate) const FINALIZE: &str = r#"{"type":"Finalize"}"#;
/// Ends the stream: Deepgram sends its last results and `Metadata`, then a close frame 1000.
pub(crate) const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// How long Deepgram waits for audio or a text message before closing with 1011 `NET-0000`.
pub(crate) const NO_DATA_WINDOW: Duration = Duration::from_secs(10);

/// The query of a `listen` request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ListenParams<'a> {
    pub model: &'a str,
    pub format: AudioFormat,
    pub language: Option<&'a str>,
    pub keywords: &'a [String],
    pub endpointing_ms: Option<u32>,
    pub utterance_end_ms: Option<u32>,
}

/// `base` with the `listen` query: audio format, interim results and endpointing, keywords.
pub(crate) fn listen_url(base: &reqwest::Url, p: &ListenParams<'_>) -> reqwest::Url {
    let encoding = match p.format.encoding {
        Encoding::Mulaw => "mulaw",
        Encoding::Alaw => "alaw",
        Encoding::Pcm16 => "linear16",
    };
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("model", p.model)
            .append_pair("encoding", encoding)
            .append_pair("sample_rate", &p.format.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("interim_results", "true")
            .append_pair("punctuate", "true")
            .append_pair("smart_format", "true")
            // The bridge's VAD marks end of speech too; Deepgram's own events are reported so the
            // log shows when it heard speech start.
            .append_pair("vad_events", "true");
        match p.endpointing_ms {
            Some(ms) => q.append_pair("endpointing", &ms.to_string()),
            None => q.append_pair("endpointing", "false"),
        };
        if let Some(ms) = p.utterance_end_ms {
            q.append_pair("utterance_end_ms", &ms.to_string());
        }
        if let Some(language) = p.language {
            q.append_pair("language", language);
        }
        // Nova-3 replaced keyword boosting with key terms; older models take `word[:boost]`.
        let param = if p.model.starts_with("nova-3") { "keyterm" } else { "keywords" };
        for k in p.keywords.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            let k = if param == "keyterm" { strip_boost(k) } else { k };
            q.append_pair(param, k);
        }
    }
    url
}

/// `word` from `word:1.5` (a boost only `keywords` understands).
pub(crate) fn strip_boost(keyword: &str) -> &str {
    match keyword.rsplit_once(':') {
        Some((word, boost)) if !word.is_empty() && boost.parse::<f32>().is_ok() => word,
        _ => keyword,
    }
}

/// A message from Deepgram. Unknown types are kept as [`ServerMessage::Other`] and ignored, so a
/// message added to the API later does not end a call.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum ServerMessage {
    Results(Results),
    UtteranceEnd {
        #[serde(default)]
        last_word_end: f64,
    },
    SpeechStarted {
        #[serde(default)]
        timestamp: f64,
    },
    Metadata {
        #[serde(default)]
        request_id: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Results {
    #[serde(default)]
    pub start: f64,
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub speech_final: bool,
    pub channel: Channel,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Channel {
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Alternative {
    #[serde(default)]
    pub transcript: String,
    pub confidence: Option<f32>,
}

/// What a server message means for the session.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decoded {
    Partial(Transcript),
    Final(Transcript),
    /// Nothing for the bridge (an empty result, a VAD event, metadata).
    Nothing,
}

/// Turns Deepgram's messages into partials and finals, tracking the end of the caller's turn.
///
/// A final carries `end_of_turn` when Deepgram marks it `speech_final` (its endpointing heard
/// `endpointing` ms of silence after the words). An `UtteranceEnd` (word timings show a gap of
/// `utterance_end_ms`, which works in noise where endpointing does not) arrives on its own:
///
/// - after a final that went out without `end_of_turn`, it adds nothing: events are never
///   repeated or retracted, and the bridge's own VAD already saw the silence;
/// - when words were heard as partials but no final covered them yet, it is remembered, and the
///   next final with words carries `end_of_turn`.
///
/// Empty results (silence) give nothing; so does an empty `speech_final`.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// A partial with words was given since the last final.
    words_pending: bool,
    /// An `UtteranceEnd` came while words were pending.
    end_pending: bool,
}

impl Decoder {
    /// Decodes one text message.
    pub fn handle(&mut self, text: &str) -> Result<Decoded, Error> {
        let message: ServerMessage = serde_json::from_str(text).map_err(|e| Error::Protocol {
            detail: format!("Deepgram message is not JSON of a known shape ({e}): {}", openai_wire::body_excerpt(text.as_bytes())),
        })?;
        Ok(match message {
            ServerMessage::Results(r) => self.results(r),
            ServerMessage::UtteranceEnd { last_word_end } => {
                tracing::trace!(last_word_end, words_pending = self.words_pending, "Deepgram UtteranceEnd");
                if self.words_pending {
                    self.end_pending = true;
                }
                Decoded::Nothing
            }
            ServerMessage::SpeechStarted { timestamp } => {
                tracing::trace!(timestamp, "Deepgram SpeechStarted");
                Decoded::Nothing
            }
            // Sent last, after `CloseStream`: its request id is what Deepgram's support asks for.
            ServerMessage::Metadata { request_id } => {
                tracing::debug!(request_id, "Deepgram stream metadata");
                Decoded::Nothing
            }
            ServerMessage::Other => Decoded::Nothing,
        })
    }

    fn results(&mut self, r: Results) -> Decoded {
        // Only one alternative is asked for; a result without any is silence.
        let Some(alt) = r.channel.alternatives.into_iter().next() else { return Decoded::Nothing };
        let text = alt.transcript.trim();
        if text.is_empty() {
            return Decoded::Nothing;
        }
        let start = seconds(r.start);
        let mut t = Transcript { text: text.to_owned(), start, end: start + seconds(r.duration), confidence: alt.confidence, end_of_turn: false };
        if r.is_final {
            t.end_of_turn = r.speech_final || self.end_pending;
            self.words_pending = false;
            self.end_pending = false;
            Decoded::Final(t)
        } else {
            self.words_pending = true;
            Decoded::Partial(t)
        }
    }
}

/// Seconds of audio time as Deepgram gives them; a negative or broken value is zero.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// `{"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "…"}`: the body
/// of a refused upgrade, and of the `dg-error` header that repeats it.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    err_code: Option<String>,
    err_msg: Option<String>,
    request_id: Option<String>,
}

/// The typed error of a refused upgrade. Deepgram puts the error in a `dg-error` header (readable
/// whatever the client library does with the body) and in the body; the header wins.
pub(crate) fn upgrade_error(status: u16, retry_after: Option<Duration>, dg_error: Option<&str>, body: &[u8]) -> Error {
    let text = dg_error.map(str::as_bytes).filter(|h| !h.is_empty()).unwrap_or(body);
    let (message, code) = match serde_json::from_slice::<ErrorBody>(text) {
        Ok(b) => {
            let mut message = b.err_msg.unwrap_or_default();
            if let Some(id) = b.request_id {
                message.push_str(&format!(" (request {id})"));
            }
            (message, b.err_code)
        }
        Err(_) => (openai_wire::body_excerpt(text), None),
    };
    // The status decides the variant exactly as for OpenAI; only the body's shape differs.
    match openai_wire::status_error(status, retry_after, b"") {
        Error::Refused { status, .. } => Error::Refused { status, message, code },
        Error::RateLimited { retry_after, .. } => Error::RateLimited { retry_after, message },
        Error::Unavailable { status, .. } => Error::Unavailable { status, detail: message },
        _ => Error::Protocol { detail: format!("unexpected HTTP {status} to the WebSocket upgrade: {message}") },
    }
}

/// How a stream that Deepgram closed ends. `finishing`: `CloseStream` was sent, so a normal
/// close is the end of the session.
pub(crate) fn close_result(code: Option<u16>, reason: &str, finishing: bool) -> Result<(), Error> {
    let (err_code, message) = match reason.split_once(' ') {
        Some((c, m)) if c.contains('-') && c.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-') => (Some(c), m.trim()),
        _ => (None, reason.trim()),
    };
    let detail = || format!("Deepgram closed the stream ({}): {reason}", code.map_or_else(|| "no code".to_owned(), |c| c.to_string()));
    match code {
        Some(1000) | None if finishing => Ok(()),
        Some(1000) | None => Err(Error::Closed { detail: detail() }),
        // DATA-0000: the audio does not decode as the declared encoding, i.e. a bad request.
        Some(1008) => Err(Error::Refused { status: 400, message: format!("WebSocket close 1008: {message}"), code: err_code.map(str::to_owned) }),
        // NET-0000: Deepgram got neither audio nor a KeepAlive within its window: a stall on the
        // way to it (keep-alives are sent well within it).
        Some(1011) if err_code == Some("NET-0000") => Err(Error::Timeout { phase: TimeoutPhase::Idle, after: NO_DATA_WINDOW }),
        Some(_) => Err(Error::Unavailable { status: None, detail: detail() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(text: &str, is_final: bool, speech_final: bool) -> String {
        format!(
            r#"{{"type":"Results","channel_index":[0,1],"duration":1.02,"start":2.5,"is_final":{is_final},"speech_final":{speech_final},"channel":{{"alternatives":[{{"transcript":"{text}","confidence":0.98,"words":[]}}]}},"metadata":{{"request_id":"r","model_info":{{"name":"2-general-nova","version":"2024-01-18.26916","arch":"nova-2"}},"model_uuid":"u"}},"from_finalize":false}}"#
        )
    }

    fn transcript(text: &str, end_of_turn: bool) -> Transcript {
        Transcript { text: text.into(), start: Duration::from_millis(2500), end: Duration::from_millis(3520), confidence: Some(0.98), end_of_turn }
    }

    #[test]
    fn url_has_format_endpointing_and_keywords() {
        let base = reqwest::Url::parse("wss://api.deepgram.com/v1/listen").expect("url");
        let keywords = vec!["Acme".to_owned(), "Zoë Street:2".to_owned(), " ".to_owned()];
        let p = ListenParams {
            model: "nova-2",
            format: AudioFormat::MULAW_8K,
            language: Some("en-GB"),
            keywords: &keywords,
            endpointing_ms: Some(300),
            utterance_end_ms: Some(1000),
        };
        assert_eq!(
            listen_url(&base, &p).as_str(),
            "wss://api.deepgram.com/v1/listen?model=nova-2&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true&punctuate=true&smart_format=true&vad_events=true&endpointing=300&utterance_end_ms=1000&language=en-GB&keywords=Acme&keywords=Zo%C3%AB+Street%3A2"
        );
        let p = ListenParams { model: "nova-3", format: AudioFormat::PCM_16K, language: None, endpointing_ms: None, utterance_end_ms: None, ..p };
        let url = listen_url(&base, &p);
        assert!(url.as_str().contains("encoding=linear16&sample_rate=16000"), "{url}");
        assert!(url.as_str().contains("endpointing=false"), "{url}");
        assert!(url.as_str().ends_with("keyterm=Acme&keyterm=Zo%C3%AB+Street"), "{url}");
    }

    #[test]
    fn interim_final_and_speech_final() {
        let mut d = Decoder::default();
        assert_eq!(d.handle(&result("book a", false, false)).expect("valid"), Decoded::Partial(transcript("book a", false)));
        assert_eq!(d.handle(&result("book a table", true, false)).expect("valid"), Decoded::Final(transcript("book a table", false)));
        assert_eq!(d.handle(&result(" for two", true, true)).expect("valid"), Decoded::Final(transcript("for two", true)));
        // Silence, an empty speech_final, VAD events and metadata give nothing.
        for m in [
            result("", false, false),
            result("", true, true),
            r#"{"type":"SpeechStarted","channel":[0],"timestamp":9.54}"#.to_owned(),
            r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"a","sha256":"b","created":"2024-01-01T00:00:00Z","duration":3.1,"channels":1}"#
                .to_owned(),
            r#"{"type":"SomethingNew","x":1}"#.to_owned(),
        ] {
            assert_eq!(d.handle(&m).expect("valid"), Decoded::Nothing, "{m}");
        }
    }

    #[test]
    fn utterance_end_marks_the_next_final_only_when_words_are_pending() {
        let mut d = Decoder::default();
        // After a final: nothing extra, and the next utterance does not inherit it.
        d.handle(&result("hello", true, false)).expect("valid");
        assert_eq!(d.handle(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":3.1}"#).expect("valid"), Decoded::Nothing);
        assert_eq!(d.handle(&result("again", true, false)).expect("valid"), Decoded::Final(transcript("again", false)));
        // Words heard as partials, the UtteranceEnd, then their final.
        d.handle(&result("is it open", false, false)).expect("valid");
        d.handle(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":3.1}"#).expect("valid");
        assert_eq!(d.handle(&result("is it open", true, false)).expect("valid"), Decoded::Final(transcript("is it open", true)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut d = Decoder::default();
        for m in ["not json", r#"{"type":"Results"}"#, r#"{"no":"type"}"#, r#"{"type":"Results","channel":{"alternatives":[{"transcript":7}]}}"#] {
            assert!(matches!(d.handle(m), Err(Error::Protocol { .. })), "{m}");
        }
    }

    #[test]
    fn upgrade_errors_by_status() {
        let body = br#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"2b1c"}"#;
        assert_eq!(
            upgrade_error(401, None, None, body),
            Error::Refused { status: 401, message: "Invalid credentials. (request 2b1c)".into(), code: Some("INVALID_AUTH".into()) }
        );
        let header = r#"{"err_code":"TOO_MANY_REQUESTS","err_msg":"Too many requests.","request_id":"9"}"#;
        assert_eq!(
            upgrade_error(429, Some(Duration::from_secs(1)), Some(header), b""),
            Error::RateLimited { retry_after: Some(Duration::from_secs(1)), message: "Too many requests. (request 9)".into() }
        );
        assert!(matches!(upgrade_error(402, None, None, b""), Error::Refused { status: 402, .. }));
        assert_eq!(upgrade_error(503, None, None, b"upstream down"), Error::Unavailable { status: Some(503), detail: "upstream down".into() });
        assert!(matches!(upgrade_error(200, None, None, b""), Error::Protocol { .. }));
    }

    #[test]
    fn close_codes() {
        assert_eq!(close_result(Some(1000), "", true), Ok(()));
        assert!(matches!(close_result(Some(1000), "", false), Err(Error::Closed { .. })));
        assert_eq!(
            close_result(Some(1008), "DATA-0000 The payload cannot be decoded as audio.", false),
            Err(Error::Refused {
                status: 400,
                message: "WebSocket close 1008: The payload cannot be decoded as audio.".into(),
                code: Some("DATA-0000".into())
            })
        );
        assert_eq!(
            close_result(Some(1011), "NET-0000 Deepgram did not receive audio data or a text message within the timeout window.", false),
            Err(Error::Timeout { phase: TimeoutPhase::Idle, after: NO_DATA_WINDOW })
        );
        assert!(matches!(close_result(Some(1011), "internal", true), Err(Error::Unavailable { status: None, .. })));
        assert!(matches!(close_result(Some(1012), "restart", false), Err(Error::Unavailable { .. })));
    }

    #[test]
    fn boosts() {
        assert_eq!(strip_boost("Acme:2.5"), "Acme");
        assert_eq!(strip_boost("ratio:high"), "ratio:high");
        assert_eq!(strip_boost(":3"), ":3");
    }
}
