//! Reading answers: envelope, data, pages and error bodies, from status and bytes (no I/O).
//!
//! Every way a body can be wrong ends in [`Error::InvalidResponse`] naming the request and the
//! part of the body, never in a panic.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Error;

/// A complete HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body (bounded by the client's `max_body_bytes`).
    pub body: Vec<u8>,
    /// Whether an earlier attempt of the same request failed in a way that may have taken effect.
    pub after_maybe_processed: bool,
}

/// The items of one page, as sent.
#[derive(Debug)]
pub(crate) struct RawPage<T> {
    pub items: Vec<T>,
    pub total_count: Option<u64>,
    pub page: Option<u32>,
}

/// The `data` of a 2xx envelope, typed.
pub(crate) fn data<T: DeserializeOwned>(what: &str, reply: &Reply) -> Result<T, Error> {
    let mut map = envelope(what, reply)?;
    let data = map.remove("data").ok_or_else(|| invalid(what, reply, "", "the envelope has no `data`".into()))?;
    serde_json::from_value(data).map_err(|e| invalid(what, reply, ": data", e.to_string()))
}

/// The `data` array of a 2xx envelope with its `totalCount` and `page`, typed item by item so
/// that an error names the bad item.
pub(crate) fn page<T: DeserializeOwned>(what: &str, reply: &Reply) -> Result<RawPage<T>, Error> {
    let mut map = envelope(what, reply)?;
    let data = map.remove("data").ok_or_else(|| invalid(what, reply, "", "the envelope has no `data`".into()))?;
    let Value::Array(values) = data else {
        return Err(invalid(what, reply, ": data", format!("expected an array, got {}", kind(&data))));
    };
    let items = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| serde_json::from_value(v).map_err(|e| invalid(what, reply, &format!(": data[{i}]"), e.to_string())))
        .collect::<Result<Vec<T>, Error>>()?;
    let number = |key: &str| -> Result<Option<u64>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| invalid(what, reply, &format!(": {key}"), format!("expected a non-negative integer, got {v}"))),
        }
    };
    let total_count = number("totalCount")?;
    let page = number("page")?.map(|p| u32::try_from(p).unwrap_or(u32::MAX));
    Ok(RawPage { items, total_count, page })
}

/// Accepts a 2xx answer whose data does not matter: an empty body (204) or a success envelope.
pub(crate) fn done(what: &str, reply: &Reply) -> Result<(), Error> {
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    envelope(what, reply).map(drop)
}

/// The error for a final non-2xx answer that is not retried (or no longer): 4xx become
/// [`Error::Api`], anything else unexpected [`Error::InvalidResponse`].
pub(crate) fn rejection(what: &str, reply: &Reply) -> Error {
    let status = reply.status;
    if (400..500).contains(&status) {
        let (message, code) = error_details(&reply.body);
        Error::Api { status, message, code }
    } else {
        invalid(what, reply, "", format!("unexpected HTTP status {status}; body: {}", snippet(&reply.body)))
    }
}

/// `error.message` and `error.code` of an error body, or a readable stand-in when the body is
/// not an error envelope: NestJS's default `{"statusCode", "message", "error"}` shape is read too,
/// and anything else yields the start of the body.
pub(crate) fn error_details(body: &[u8]) -> (String, Option<String>) {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return (format!("not a Happ error envelope: {}", snippet(body)), None);
    };
    if let Some(found) = error_object(&map).filter(|_| map.get("error").is_some_and(Value::is_object)) {
        return found;
    }
    match map.get("message") {
        Some(Value::String(s)) => return (s.clone(), None),
        Some(Value::Array(parts)) => {
            return (parts.iter().map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned)).collect::<Vec<_>>().join("; "), None);
        }
        _ => {}
    }
    error_object(&map).unwrap_or_else(|| (format!("not a Happ error envelope: {}", snippet(body)), None))
}

/// The `error` member of an envelope: an object with `message` (and maybe `code`), or a string.
fn error_object(map: &Map<String, Value>) -> Option<(String, Option<String>)> {
    match map.get("error")? {
        Value::Object(e) => {
            let code = e.get("code").and_then(|c| match c {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let message = e.get("message").and_then(Value::as_str).map(str::to_owned).or_else(|| code.clone())?;
            Some((message, code))
        }
        Value::String(s) => Some((s.clone(), None)),
        _ => None,
    }
}

/// The top-level object of a 2xx answer, checked: JSON, an object, `success` not `false`.
fn envelope(what: &str, reply: &Reply) -> Result<Map<String, Value>, Error> {
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(what, reply, "", "empty body".into()));
    }
    let value: Value = serde_json::from_slice(&reply.body).map_err(|e| invalid(what, reply, "", format!("not JSON ({e}); body: {}", snippet(&reply.body))))?;
    let Value::Object(map) = value else {
        return Err(invalid(what, reply, "", format!("expected a JSON object, got {}", kind(&value))));
    };
    match map.get("success") {
        None | Some(Value::Bool(true)) => Ok(map),
        Some(Value::Bool(false)) => match error_object(&map) {
            Some((message, code)) => Err(Error::Api { status: reply.status, message, code }),
            None => Err(invalid(what, reply, "", "`success` is false but there is no `error` with a message".into())),
        },
        Some(v) => Err(invalid(what, reply, ": success", format!("expected a boolean, got {v}"))),
    }
}

fn invalid(what: &str, reply: &Reply, part: &str, detail: String) -> Error {
    Error::InvalidResponse { status: reply.status, what: format!("{what}{part}"), detail }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The start of a body for error messages: at most 200 characters, whitespace runs collapsed.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(empty)".into();
    }
    match collapsed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &collapsed[..cut]),
        None => format!("{collapsed:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Chat, Message};

    fn reply(status: u16, body: &str) -> Reply {
        Reply { status, body: body.as_bytes().to_vec(), after_maybe_processed: false }
    }

    fn invalid_detail(e: Error) -> (String, String) {
        match e {
            Error::InvalidResponse { what, detail, .. } => (what, detail),
            other => panic!("expected InvalidResponse, got {other:?}"),
        }
    }

    #[test]
    fn reads_data_and_pages() {
        let c: Chat = data("POST /api/chats", &reply(201, r#"{"success":true,"data":{"id":"c1","isUnderAiControl":true}}"#)).expect("valid");
        assert_eq!(c.id.as_str(), "c1");
        let p: RawPage<Chat> =
            page("GET /api/chats", &reply(200, r#"{"success":true,"data":[{"id":"c1","isUnderAiControl":true}],"totalCount":42,"page":3}"#)).expect("valid");
        assert_eq!((p.items.len(), p.total_count, p.page), (1, Some(42), Some(3)));
        let p: RawPage<Chat> = page("GET /api/chats", &reply(200, r#"{"data":[]}"#)).expect("success may be missing");
        assert_eq!(p.total_count, None);
    }

    #[test]
    fn broken_bodies_are_invalid_responses() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "empty body"),
            ("<html>Bad Gateway</html>", "", "not JSON"),
            (r#"{"success":true,"data":{"id":"c1""#, "", "not JSON"),
            ("[1,2]", "", "expected a JSON object, got an array"),
            (r#"{"success":true}"#, "", "no `data`"),
            (r#"{"success":"yes","data":{}}"#, ": success", "expected a boolean"),
            (r#"{"success":false}"#, "", "no `error`"),
            (r#"{"success":true,"data":{"id":"c1"}}"#, ": data", "missing field `isUnderAiControl`"),
            (r#"{"success":true,"data":{"id":"c1","isUnderAiControl":"yes"}}"#, ": data", "invalid type: string \"yes\", expected a boolean"),
        ];
        for (body, part, needle) in cases {
            let (what, detail) = invalid_detail(data::<Chat>("GET /x", &reply(200, body)).expect_err(body));
            assert_eq!(what, format!("GET /x{part}"), "{body}");
            assert!(detail.contains(needle), "{body}: {detail}");
        }
        let (what, detail) = invalid_detail(
            page::<Message>("GET /m", &reply(200, r#"{"success":true,"data":[{"id":"m1","chatId":"c","role":"user","createdAt":"t"},{"id":"m2"}]}"#))
                .expect_err("second item is bad"),
        );
        assert_eq!(what, "GET /m: data[1]");
        assert!(detail.contains("missing field"), "{detail}");
        let (what, _) = invalid_detail(page::<Message>("GET /m", &reply(200, r#"{"success":true,"data":[],"totalCount":"many"}"#)).expect_err("bad count"));
        assert_eq!(what, "GET /m: totalCount");
        let (what, _) = invalid_detail(page::<Message>("GET /m", &reply(200, r#"{"success":true,"data":{}}"#)).expect_err("not an array"));
        assert_eq!(what, "GET /m: data");
    }

    #[test]
    fn success_false_with_an_error_is_an_api_error() {
        let e = data::<Chat>("GET /x", &reply(200, r#"{"success":false,"error":{"message":"Nope","code":"FORBIDDEN"}}"#)).expect_err("failure");
        assert!(matches!(e, Error::Api { status: 200, ref message, code: Some(ref c) } if message == "Nope" && c == "FORBIDDEN"), "{e:?}");
    }

    #[test]
    fn error_details_of_various_bodies() {
        assert_eq!(
            error_details(br#"{"success":false,"error":{"message":"Chat not found","code":"NOT_FOUND"}}"#),
            ("Chat not found".into(), Some("NOT_FOUND".into()))
        );
        assert_eq!(error_details(br#"{"success":false,"error":"Forbidden"}"#), ("Forbidden".into(), None));
        assert_eq!(
            error_details(br#"{"statusCode":400,"message":["name must be a string","take must be positive"],"error":"Bad Request"}"#).0,
            "name must be a string; take must be positive"
        );
        let (m, c) = error_details(b"<html>\n  <body>502 Bad Gateway</body>\n</html>");
        assert_eq!(m, "not a Happ error envelope: \"<html> <body>502 Bad Gateway</body> </html>\"");
        assert_eq!(c, None);
        assert_eq!(error_details(b"").0, "not a Happ error envelope: (empty)");
    }

    #[test]
    fn snippet_is_bounded() {
        let long = "é".repeat(1000);
        let s = snippet(long.as_bytes());
        assert!(s.chars().count() < 210, "{}", s.len());
        assert_eq!(snippet(&[0xff, 0xfe]), "\"\u{fffd}\u{fffd}\"");
    }

    #[test]
    fn done_accepts_empty_and_success() {
        done("DELETE /k", &reply(204, "")).expect("empty");
        done("DELETE /k", &reply(200, r#"{"success":true,"data":null}"#)).expect("envelope");
        assert!(done("DELETE /k", &reply(200, "ok")).is_err());
    }

    #[test]
    fn rejection_of_4xx_and_others() {
        let e = rejection("GET /x", &reply(404, r#"{"success":false,"error":{"message":"Chat not found","code":"NOT_FOUND"}}"#));
        assert_eq!(e.to_string(), "Happ API rejected the request: HTTP 404 NOT_FOUND: Chat not found");
        let e = rejection("GET /x", &reply(302, ""));
        assert!(matches!(e, Error::InvalidResponse { status: 302, .. }), "{e:?}");
    }
}
