//! The wire side of the real-time protocol, pure: where to connect, what the server's events
//! and acknowledgements mean.

use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{HandshakeError, RealtimeEvent};
use crate::model::{AiDisableReason, Chat, ChatId, Message};

/// `MESSAGE_CREATED`: a message was stored.
pub const MESSAGE_CREATED: &str = "MESSAGE_CREATED";
/// `CHAT_CREATED`: a chat was created.
pub const CHAT_CREATED: &str = "CHAT_CREATED";
/// `CHAT_MODE_CHANGED`: a chat's AI control changed.
pub const CHAT_MODE_CHANGED: &str = "CHAT_MODE_CHANGED";

/// The Socket.IO server (`ws(s)://authority`) and Engine.IO path for a REST base URL: `http`
/// becomes `ws`, `https` becomes `wss`, and a path prefix of the base (an API behind a proxy at
/// `/happ`) is put in front of `socket_path` (`/happ/ws/`).
pub fn socket_target(base_url: &str, socket_path: &str) -> Result<(String, String), String> {
    let url = Url::parse(base_url).map_err(|e| format!("base URL {base_url:?}: {e}"))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("base URL {base_url:?}: scheme {other:?} is not http(s)")),
    };
    let host = url.host_str().ok_or_else(|| format!("base URL {base_url:?}: no host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    if !socket_path.starts_with('/') {
        return Err(format!("socket path {socket_path:?} must start with '/'"));
    }
    let prefix = url.path().trim_end_matches('/');
    Ok((format!("{scheme}://{authority}"), format!("{prefix}{socket_path}")))
}

/// The payload of `CHAT_MODE_CHANGED` (`chatId` or, for a whole chat object, `id`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModeChange {
    #[serde(alias = "id")]
    chat_id: ChatId,
    is_under_ai_control: bool,
    #[serde(default)]
    ai_disable_reason: Option<AiDisableReason>,
}

/// A server event as the application sees it. Payloads are read tolerantly: the object itself,
/// or the object under `data` (an envelope the platform may use); anything else is
/// [`RealtimeEvent::Malformed`], never a panic.
pub fn translate(name: String, args: Vec<Value>) -> RealtimeEvent {
    let parsed = match name.as_str() {
        MESSAGE_CREATED => payload::<Message>(&args).map(RealtimeEvent::MessageCreated),
        CHAT_CREATED => payload::<Chat>(&args).map(RealtimeEvent::ChatCreated),
        CHAT_MODE_CHANGED => payload::<ModeChange>(&args).map(|m| RealtimeEvent::ChatModeChanged {
            chat_id: m.chat_id,
            is_under_ai_control: m.is_under_ai_control,
            ai_disable_reason: m.ai_disable_reason,
        }),
        _ => return RealtimeEvent::Other { name, args },
    };
    parsed.unwrap_or_else(|error| RealtimeEvent::Malformed { name, error })
}

fn payload<T: DeserializeOwned>(args: &[Value]) -> Result<T, String> {
    let first = args.first().ok_or("no payload")?;
    match T::deserialize(first) {
        Ok(v) => Ok(v),
        Err(direct) => match first.get("data") {
            Some(inner) => T::deserialize(inner).map_err(|e| format!("{e} (in `data`)")),
            None => Err(direct.to_string()),
        },
    }
}

/// Reads the acknowledgement of `authenticate` or `join`: the first argument, an object. It is a
/// refusal when `success` is `false` or it has a non-null `error` (`{message, code}` or a
/// string); otherwise it is accepted and returned.
pub fn read_ack(args: &[Value]) -> Result<&Value, HandshakeError> {
    let ack = args.first().ok_or_else(|| HandshakeError::BadAck("an empty acknowledgement".into()))?;
    let object = ack.as_object().ok_or_else(|| HandshakeError::BadAck(format!("not an object: {}", snippet(ack))))?;
    let error = object.get("error").filter(|e| !e.is_null());
    let success = object.get("success");
    if success.is_some_and(|s| !s.is_boolean()) {
        return Err(HandshakeError::BadAck(format!("`success` is not a boolean: {}", snippet(ack))));
    }
    if success == Some(&Value::Bool(false)) || error.is_some() {
        let (message, code) = match error {
            Some(Value::String(m)) => (m.clone(), None),
            Some(e) => {
                (e.get("message").and_then(Value::as_str).map_or_else(|| snippet(e), str::to_owned), e.get("code").and_then(Value::as_str).map(str::to_owned))
            }
            None => ("refused without a reason".to_owned(), None),
        };
        return Err(HandshakeError::Refused { message, code });
    }
    Ok(ack)
}

/// The company id in an authentication acknowledgement: `companyId`, or `data.companyId`.
pub fn company_id(ack: &Value) -> Option<String> {
    let found = ack.get("companyId").or_else(|| ack.get("data").and_then(|d| d.get("companyId")))?;
    match found {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// At most 200 characters of a JSON value, for error messages.
fn snippet(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn socket_targets_from_rest_base_urls() {
        let t = |base: &str| socket_target(base, "/ws/").expect("a valid base URL");
        assert_eq!(t("https://api.happ.tools"), ("wss://api.happ.tools".into(), "/ws/".into()));
        assert_eq!(t("http://127.0.0.1:8090/"), ("ws://127.0.0.1:8090".into(), "/ws/".into()));
        assert_eq!(t("https://example.com:8443/happ/"), ("wss://example.com:8443".into(), "/happ/ws/".into()));
        assert_eq!(t("http://[::1]:9/"), ("ws://[::1]:9".into(), "/ws/".into()));
        assert!(socket_target("ftp://h", "/ws/").is_err());
        assert!(socket_target("not a url", "/ws/").is_err());
        assert!(socket_target("http://h", "ws").is_err());
    }

    #[test]
    fn translates_the_three_events() {
        let m = json!({"id": "m1", "chatId": "c1", "content": "hi", "role": "user", "createdAt": "2025-01-01T00:00:00.000Z"});
        let RealtimeEvent::MessageCreated(message) = translate(MESSAGE_CREATED.into(), vec![m.clone()]) else { panic!() };
        assert_eq!((message.id.as_str(), message.content.as_str()), ("m1", "hi"));
        // The same inside a `data` envelope.
        assert!(matches!(translate(MESSAGE_CREATED.into(), vec![json!({"data": m})]), RealtimeEvent::MessageCreated(_)));
        let c = json!({"id": "c1", "assistantId": "a1", "isUnderAiControl": true});
        assert!(matches!(translate(CHAT_CREATED.into(), vec![c]), RealtimeEvent::ChatCreated(chat) if chat.id.as_str() == "c1"));
        let e = translate(CHAT_MODE_CHANGED.into(), vec![json!({"chatId": "c1", "isUnderAiControl": false, "aiDisableReason": "auto"})]);
        let RealtimeEvent::ChatModeChanged { chat_id, is_under_ai_control, ai_disable_reason } = e else { panic!("{e:?}") };
        assert_eq!((chat_id.as_str(), is_under_ai_control, ai_disable_reason), ("c1", false, Some(AiDisableReason::Auto)));
        // A whole chat object as the payload, with a null reason.
        let e = translate(CHAT_MODE_CHANGED.into(), vec![json!({"id": "c2", "isUnderAiControl": true, "aiDisableReason": null})]);
        assert!(matches!(e, RealtimeEvent::ChatModeChanged { ref chat_id, is_under_ai_control: true, ai_disable_reason: None } if chat_id.as_str() == "c2"));
    }

    #[test]
    fn bad_payloads_are_malformed_and_unknown_events_pass_through() {
        for args in [vec![], vec![json!(null)], vec![json!("text")], vec![json!({"id": "m1"})], vec![json!({"data": 7})]] {
            let e = translate(MESSAGE_CREATED.into(), args.clone());
            assert!(matches!(&e, RealtimeEvent::Malformed { name, error } if name == MESSAGE_CREATED && !error.is_empty()), "{args:?}: {e:?}");
        }
        assert!(matches!(translate(CHAT_MODE_CHANGED.into(), vec![json!({"chatId": "c"})]), RealtimeEvent::Malformed { .. }));
        assert!(matches!(translate(CHAT_CREATED.into(), vec![json!({"id": 3, "isUnderAiControl": true})]), RealtimeEvent::Malformed { .. }));
        let e = translate("TYPING".into(), vec![json!(1), json!(2)]);
        assert!(matches!(e, RealtimeEvent::Other { ref name, ref args } if name == "TYPING" && args.len() == 2));
    }

    #[test]
    fn reads_acknowledgements() {
        let ok = [json!({"success": true, "companyId": "co"})];
        assert_eq!(read_ack(&ok).map(company_id), Ok(Some("co".into())));
        assert_eq!(read_ack(&[json!({"data": {"companyId": 42}})]).map(company_id), Ok(Some("42".into())));
        assert_eq!(read_ack(&[json!({})]).map(company_id), Ok(None), "no success flag and no error: accepted");
        assert_eq!(
            read_ack(&[json!({"success": false, "error": {"message": "invalid access token", "code": "UNAUTHORIZED"}})]),
            Err(HandshakeError::Refused { message: "invalid access token".into(), code: Some("UNAUTHORIZED".into()) })
        );
        assert_eq!(read_ack(&[json!({"error": "nope"})]), Err(HandshakeError::Refused { message: "nope".into(), code: None }));
        assert_eq!(read_ack(&[json!({"success": false})]), Err(HandshakeError::Refused { message: "refused without a reason".into(), code: None }));
        assert!(matches!(read_ack(&[]), Err(HandshakeError::BadAck(_))));
        assert!(matches!(read_ack(&[json!("ok")]), Err(HandshakeError::BadAck(_))));
        assert!(matches!(read_ack(&[json!({"success": "yes"})]), Err(HandshakeError::BadAck(_))));
        let long = json!("x".repeat(500));
        let Err(HandshakeError::BadAck(text)) = read_ack(std::slice::from_ref(&long)) else { panic!() };
        assert!(text.chars().count() < 230, "{text}");
    }
}
