//! The OpenAI chat-completions wire format, and the pure steps of decoding it: request bodies,
//! stream chunks, tool-call assembly, error bodies and `Retry-After`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::llm::{ChatRequest, FinishReason, Message, ToolCall};

/// The longest arguments of one tool call we assemble: a model writing more is broken.
const MAX_ARGUMENTS: usize = 1 << 20;

/// The request body of `POST /chat/completions`.
pub(crate) fn request_body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    let mut body = serde_json::json!({ "model": request.model, "messages": messages, "stream": true });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| serde_json::json!({ "type": "function", "function": { "name": t.name, "description": t.description, "parameters": t.parameters } }))
            .collect();
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = Value::from("auto");
    }
    if let Some(t) = request.temperature {
        body["temperature"] = Value::from(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = Value::from(m);
    }
    body
}

fn message(m: &Message) -> Value {
    match m {
        Message::System(text) => serde_json::json!({ "role": "system", "content": text }),
        Message::User(text) => serde_json::json!({ "role": "user", "content": text }),
        Message::Assistant { content, tool_calls } => {
            let mut v = serde_json::json!({ "role": "assistant", "content": content });
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| serde_json::json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
                    .collect();
                v["tool_calls"] = Value::Array(calls);
                if content.is_empty() {
                    // The API wants `null`, not "", beside tool calls.
                    v["content"] = Value::Null;
                }
            }
            v
        }
        Message::Tool { call_id, content } => serde_json::json!({ "role": "tool", "tool_call_id": call_id, "content": content }),
    }
}

/// One `data:` chunk of the stream (`chat.completion.chunk`). Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Some servers report a failure inside a 200 stream.
    pub error: Option<ErrorObject>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    pub content: Option<String>,
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDelta {
    pub index: Option<u32>,
    pub id: Option<String>,
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDelta {
    pub name: Option<String>,
    /// A string fragment per the API; some compatible servers send the whole object instead.
    pub arguments: Option<Value>,
}

/// `{"error": {...}}` of error bodies and in-stream errors.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A string in OpenAI's API, a number in some others.
    pub code: Option<Value>,
}

impl ErrorObject {
    fn code(&self) -> Option<String> {
        match &self.code {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => self.kind.clone(),
        }
    }
}

pub(crate) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        // `function_call` is the pre-tools name of the same thing.
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Tool calls being assembled from their deltas, by `index`.
#[derive(Debug, Default)]
pub(crate) struct ToolCallAssembler {
    /// In order of first appearance; few enough (a handful per turn) for a linear search.
    calls: Vec<PartialCall>,
}

#[derive(Debug)]
struct PartialCall {
    index: u32,
    id: Option<String>,
    name: String,
    arguments: String,
}

impl ToolCallAssembler {
    /// Adds one delta. The first delta of a call carries its `id` and `function.name`; the
    /// following ones carry only `index` and more of `function.arguments`.
    pub fn handle(&mut self, delta: ToolCallDelta) -> Result<(), Error> {
        // A delta without an index (some compatible servers): a new id starts a call, anything
        // else continues the last one.
        let index = match delta.index {
            Some(i) => i,
            None => match (&delta.id, self.calls.last()) {
                (None, Some(last)) => last.index,
                (Some(id), Some(last)) if last.id.as_deref() == Some(id.as_str()) => last.index,
                _ => self.calls.iter().map(|c| c.index + 1).max().unwrap_or(0),
            },
        };
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.calls.push(PartialCall { index, id: None, name: String::new(), arguments: String::new() });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
            call.id = Some(id);
        }
        if let Some(f) = delta.function {
            if let Some(name) = f.name {
                // Names arrive whole in OpenAI's stream; appending also serves servers that split them.
                call.name.push_str(&name);
            }
            match f.arguments {
                Some(Value::String(s)) => call.arguments.push_str(&s),
                Some(Value::Null) | None => {}
                Some(whole) => call.arguments.push_str(&whole.to_string()),
            }
            if call.arguments.len() > MAX_ARGUMENTS {
                return Err(Error::Protocol { detail: format!("tool call arguments longer than {MAX_ARGUMENTS} bytes") });
            }
        }
        Ok(())
    }

    /// The complete calls, in index order.
    pub fn finish(&mut self) -> Result<Vec<ToolCall>, Error> {
        let mut calls = std::mem::take(&mut self.calls);
        calls.sort_by_key(|c| c.index);
        calls
            .into_iter()
            .map(|c| {
                if c.name.is_empty() {
                    return Err(Error::Protocol { detail: format!("tool call {} has no function name", c.index) });
                }
                Ok(ToolCall { id: c.id.unwrap_or_else(|| format!("call_{}", c.index)), name: c.name, arguments: c.arguments })
            })
            .collect()
    }
}

/// The typed error for a non-2xx answer with `body`.
pub(crate) fn status_error(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Error {
    let (message, code) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => {
            let code = b.error.code();
            (b.error.message, code)
        }
        Err(_) => (body_excerpt(body), None),
    };
    match status {
        // An exhausted quota is a 429 that waiting does not cure.
        429 if code.as_deref() == Some("insufficient_quota") => Error::Refused { status, message, code },
        429 => Error::RateLimited { retry_after, message },
        408 | 500..=599 => Error::Unavailable { status: Some(status), detail: message },
        400..=499 => Error::Refused { status, message, code },
        _ => Error::Protocol { detail: format!("unexpected HTTP {status}: {message}") },
    }
}

/// The typed error for an `{"error": ...}` object inside a 200 stream.
pub(crate) fn stream_error(e: ErrorObject) -> Error {
    let code = e.code();
    Error::Unavailable { status: None, detail: format!("error in stream{}: {}", code.map(|c| format!(" ({c})")).unwrap_or_default(), e.message) }
}

/// The start of a body that is not an error envelope (a proxy's page), printable.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// How long a 429 asks to wait: `retry-after-ms` (OpenAI's, milliseconds) before `Retry-After`
/// (seconds or an HTTP date, RFC 9110 §10.2.3). `now` resolves dates.
pub(crate) fn retry_after(retry_after_ms: Option<&str>, retry_after: Option<&str>, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()).filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = retry_after?.trim();
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let date = httpdate::parse_http_date(v).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolDef;

    fn delta(json: &str) -> ToolCallDelta {
        serde_json::from_str(json).expect("a tool call delta")
    }

    #[test]
    fn assembles_parallel_calls_split_mid_json() {
        let mut a = ToolCallAssembler::default();
        for d in [
            r#"{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}"#,
            r#"{"index":0,"function":{"arguments":"{\"loc"}}"#,
            r#"{"index":1,"id":"call_b","type":"function","function":{"name":"transfer","arguments":"{\"num"}}"#,
            r#"{"index":0,"function":{"arguments":"ation\": \"Par"}}"#,
            r#"{"index":1,"function":{"arguments":"ber\":\"+4420\"}"}}"#,
            r#"{"index":0,"function":{"arguments":"is\"}"}}"#,
        ] {
            a.handle(delta(d)).expect("valid delta");
        }
        let calls = a.finish().expect("complete calls");
        assert_eq!(
            calls,
            vec![
                ToolCall { id: "call_a".into(), name: "get_weather".into(), arguments: r#"{"location": "Paris"}"#.into() },
                ToolCall { id: "call_b".into(), name: "transfer".into(), arguments: r#"{"number":"+4420"}"#.into() },
            ]
        );
        assert_eq!(calls[0].arguments_json().expect("json")["location"], "Paris");
    }

    #[test]
    fn object_arguments_missing_index_and_missing_id() {
        let mut a = ToolCallAssembler::default();
        a.handle(delta(r#"{"function":{"name":"hangup","arguments":{"reason":"done"}}}"#)).expect("valid");
        let calls = a.finish().expect("complete");
        assert_eq!(calls, vec![ToolCall { id: "call_0".into(), name: "hangup".into(), arguments: r#"{"reason":"done"}"#.into() }]);
        let mut a = ToolCallAssembler::default();
        a.handle(delta(r#"{"index":0,"function":{"arguments":"{}"}}"#)).expect("valid");
        assert!(matches!(a.finish(), Err(Error::Protocol { .. })));
    }

    #[test]
    fn error_statuses_by_blame() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-abc***","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert_eq!(
            status_error(401, None, body),
            Error::Refused { status: 401, message: "Incorrect API key provided: sk-abc***".into(), code: Some("invalid_api_key".into()) }
        );
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            status_error(429, Some(Duration::from_secs(3)), body),
            Error::RateLimited { retry_after: Some(Duration::from_secs(3)), message: "Rate limit reached".into() }
        );
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(status_error(429, None, body), Error::Refused { status: 429, .. }));
        assert_eq!(
            status_error(502, None, b"<html>\r\nBad Gateway</html>"),
            Error::Unavailable { status: Some(502), detail: "<html>  Bad Gateway</html>".into() }
        );
        assert!(matches!(status_error(302, None, b""), Error::Protocol { .. }));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(None, Some("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("1500"), Some("7"), now), Some(Duration::from_millis(1500)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(None, Some(&date), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(None, Some("soon"), now), None);
        assert_eq!(retry_after(Some("-1"), None, now), None);
    }

    #[test]
    fn request_body_has_tools_and_stream() {
        let mut r = ChatRequest::new(
            "gpt-4o-mini",
            vec![
                Message::System("Be brief.".into()),
                Message::User("Weather?".into()),
                Message::Assistant { content: String::new(), tool_calls: vec![ToolCall { id: "c1".into(), name: "w".into(), arguments: "{}".into() }] },
                Message::Tool { call_id: "c1".into(), content: "sunny".into() },
            ],
        );
        r.tools.push(ToolDef { name: "w".into(), description: "weather".into(), parameters: serde_json::json!({"type": "object", "properties": {}}) });
        let body = request_body(&r);
        assert_eq!(body["stream"], true);
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["tools"][0]["function"]["name"], "w");
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(body["messages"][3]["tool_call_id"], "c1");
        assert!(body.get("temperature").is_none());
    }
}
