//! Rejections surface as typed API errors without retries; broken answers become clear
//! `InvalidResponse` (or, for 5xx pages from a proxy, `Server`) errors, never panics.

mod common;

use common::*;
use happ_client::model::{AssistantId, ChatId, NewMessage};
use happ_client::{ClientConfig, Error, HappClient, PageRequest};

#[tokio::test]
async fn rejections_are_api_errors_with_message_and_code_and_are_not_retried() {
    let server = server().await;
    let client = client(&server);

    let e = client.send_message(&ChatId::new("no-such-chat"), &NewMessage::text("hi")).await.expect_err("unknown chat");
    match &e {
        Error::Api { status, message, code } => {
            assert_eq!(*status, 404);
            assert_eq!(message, "Chat no-such-chat not found");
            assert_eq!(code.as_deref(), Some("NOT_FOUND"));
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!e.maybe_processed());

    let e = client.send_message(&ChatId::new(CHAT_1), &NewMessage::text("   ")).await.expect_err("blank");
    assert_eq!((e.status(), e.code()), (Some(400), Some("VALIDATION_ERROR")));
    assert!(e.to_string().contains("content must not be empty"), "{e}");

    let e = client.messages_page(&ChatId::new(CHAT_1), PageRequest::new(1, 1000)).await.expect_err("take too large");
    assert_eq!(e.code(), Some("VALIDATION_ERROR"));
    let e = client.create_chat(&AssistantId::new("ghost")).await.expect_err("unknown assistant");
    assert_eq!(e.code(), Some("NOT_FOUND"));

    let stats = server.state().stats();
    assert_eq!(stats.route("POST /api/chats/{chatId}/messages").requests, 2, "each rejection was sent once");
    assert_eq!(stats.route("GET /api/chats/{chatId}/messages").requests, 1);
    assert_eq!(stats.route("POST /api/chats").requests, 1);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let server = server().await;
    let client = HappClient::new(ClientConfig { token: "happ_wrong".into(), ..config(&server.base_url()) }).expect("valid");
    let e = client.assistants().await.expect_err("wrong token");
    assert!(matches!(&e, Error::Api { status: 401, code: Some(c), .. } if c == "UNAUTHORIZED"), "{e:?}");
    assert_eq!(server.state().stats().route("GET /api/assistants").requests, 1);
}

#[tokio::test]
async fn the_token_never_shows_in_debug_output() {
    let config = ClientConfig::new("http://127.0.0.1:9", "happ_super_secret");
    assert!(!format!("{config:?}").contains("happ_super_secret"));
    let client = HappClient::new(config).expect("valid");
    assert!(!format!("{client:?}").contains("happ_super_secret"));
}

#[tokio::test]
async fn bad_configuration_is_a_usage_error() {
    for url in ["not a url", "ftp://example.com", "mailto:a@b.c"] {
        let e = HappClient::new(ClientConfig::new(url, "t")).expect_err(url);
        assert!(matches!(e, Error::Usage { .. }), "{url}: {e:?}");
    }
    let e = HappClient::new(ClientConfig::new("http://127.0.0.1:9", "bad\ntoken")).expect_err("newline in token");
    assert!(matches!(&e, Error::Usage { detail } if !detail.contains("bad")), "{e:?}");
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let raw = raw_server(|req| {
        if req.target == "/happ/api/assistants" && req.headers.to_ascii_lowercase().contains("x-access-token: happ_test_token") {
            json(200, r#"{"success":true,"data":[{"id":"a1","name":"Behind a proxy"}]}"#)
        } else {
            json(404, r#"{"success":false,"error":{"message":"wrong path","code":"NOT_FOUND"}}"#)
        }
    })
    .await;
    let client = HappClient::new(config(&format!("{}/happ/", raw.base_url()))).expect("valid");
    assert_eq!(client.assistants().await.expect("found")[0].name, "Behind a proxy");
}

/// Each broken 200 answer, the error part it must name, and a phrase of the detail.
const BROKEN: &[(&str, &str, &str)] = &[
    ("{\"success\":true,\"data\":{\"id\":\"c1\",", "POST /api/chats", "not JSON"),
    ("", "POST /api/chats", "empty body"),
    ("[]", "POST /api/chats", "expected a JSON object"),
    ("{\"success\":true}", "POST /api/chats", "no `data`"),
    ("{\"success\":true,\"data\":{\"id\":\"c1\"}}", "POST /api/chats: data", "missing field `isUnderAiControl`"),
    ("{\"success\":true,\"data\":{\"id\":\"c1\",\"isUnderAiControl\":\"yes\"}}", "POST /api/chats: data", "invalid type: string \"yes\""),
    ("{\"success\":true,\"data\":{\"id\":42,\"isUnderAiControl\":true}}", "POST /api/chats: data", "invalid type: integer `42`"),
    ("{\"success\":false}", "POST /api/chats", "no `error`"),
    ("{\"success\":\"true\",\"data\":{}}", "POST /api/chats: success", "expected a boolean"),
];

#[tokio::test]
async fn broken_bodies_are_invalid_responses() {
    for &(body, what, needle) in BROKEN {
        let raw = raw_server(move |_| json(200, body)).await;
        let client = HappClient::new(config(&raw.base_url())).expect("valid");
        let e = client.create_chat(&AssistantId::new("a1")).await.expect_err(body);
        match &e {
            Error::InvalidResponse { status: 200, what: w, detail } => {
                assert_eq!(w, what, "{body}");
                assert!(detail.contains(needle), "{body}: {detail}");
            }
            other => panic!("{body}: expected InvalidResponse, got {other:?}"),
        }
        assert!(e.maybe_processed(), "a 2xx that cannot be read may still have created the chat");
        assert_eq!(raw.count(), 1, "{body}: invalid answers are not retried");
    }
}

#[tokio::test]
async fn a_bad_item_in_a_page_is_named() {
    let raw = raw_server(|_| {
        json(
            200,
            r#"{"success":true,"totalCount":2,"page":1,"data":[
                {"id":"m1","chatId":"c","content":"ok","role":"user","createdAt":"2025-01-01T00:00:00.000Z"},
                {"id":"m2","chatId":"c","content":"no date","role":"user"}]}"#,
        )
    })
    .await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.messages(&ChatId::new("c")).await.expect_err("second item lacks createdAt");
    assert!(
        matches!(&e, Error::InvalidResponse { what, detail, .. } if what == "GET /api/chats/{chatId}/messages: data[1]" && detail.contains("createdAt")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_plain_text_answer_is_invalid() {
    let raw = raw_server(|_| http(200, "text/plain", "OK")).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.phones().await.expect_err("not JSON");
    assert!(matches!(&e, Error::InvalidResponse { status: 200, detail, .. } if detail.contains("not JSON") && detail.contains("\"OK\"")), "{e:?}");
}

#[tokio::test]
async fn a_plain_text_502_from_a_proxy_is_retried_then_a_server_error() {
    let server = server().await;
    server.state().set_faults(
        serde_json::from_str(r#"{"rules":[{"action":{"kind":"error","status":502,"body":"<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"}}]}"#)
            .expect("valid faults"),
    );
    let client = client(&server);
    let e = client.assistants().await.expect_err("always 502");
    match &e {
        Error::Server { status: 502, message, code: None, attempts: 5 } => {
            assert!(message.starts_with("not a Happ error envelope:"), "{message}");
            assert!(message.contains("502 Bad Gateway"), "{message}");
        }
        other => panic!("expected Server, got {other:?}"),
    }
    assert_eq!(server.state().stats().route("GET /api/assistants").requests, 5);
}

#[tokio::test]
async fn an_html_404_from_a_proxy_is_an_api_error_without_code() {
    let raw = raw_server(|_| http(404, "text/html", "<html><body>Not Found</body></html>")).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.phones().await.expect_err("404");
    assert!(matches!(&e, Error::Api { status: 404, code: None, message } if message.contains("Not Found")), "{e:?}");
    assert_eq!(raw.count(), 1);
}

#[tokio::test]
async fn nestjs_style_validation_errors_are_read() {
    let raw = raw_server(|_| json(400, r#"{"statusCode":400,"message":["content must be a string"],"error":"Bad Request"}"#)).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.send_message(&ChatId::new("c"), &NewMessage::text("x")).await.expect_err("400");
    assert!(matches!(&e, Error::Api { status: 400, message, code: None } if message == "content must be a string"), "{e:?}");
}

#[tokio::test]
async fn a_connection_cut_mid_body_is_retried_then_a_transport_error() {
    let raw = raw_server(|_| b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"success\":true,\"da".to_vec()).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.assistants().await.expect_err("truncated");
    assert!(matches!(&e, Error::Transport { attempts: 5, after_send: true, .. }), "{e:?}");
    assert!(e.maybe_processed());
    assert_eq!(raw.count(), 5);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let raw = raw_server(|_| json(200, &format!(r#"{{"success":true,"data":[],"padding":"{}"}}"#, "x".repeat(5000)))).await;
    let mut config = config(&raw.base_url());
    config.max_body_bytes = 4096;
    let client = HappClient::new(config).expect("valid");
    let e = client.phones().await.expect_err("too large");
    assert!(matches!(&e, Error::InvalidResponse { detail, .. } if detail.contains("larger than 4096 bytes")), "{e:?}");
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_transport_error() {
    let raw = raw_server(|_| b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.phones().await.expect_err("not HTTP");
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let raw =
        raw_server(|_| b"HTTP/1.1 301 Moved Permanently\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec())
            .await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let e = client.send_message(&ChatId::new("c"), &NewMessage::text("x")).await.expect_err("redirect");
    assert!(matches!(&e, Error::InvalidResponse { status: 301, .. }), "{e:?}");
    assert_eq!(raw.count(), 1);
}
