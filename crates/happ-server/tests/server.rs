//! The server's own contract over HTTP: authentication, the error envelope for every kind of bad
//! request, pagination parameters, the admin endpoints, events, and the binary's flags.

use std::path::PathBuf;
use std::time::Duration;

use happ_client::model::{AssistantId, ChatId, NewMessage};
use happ_client::{ClientConfig, HappClient};
use happ_server::{Event, HappServer, Seed, ServerConfig, ServerHandle};
use serde_json::{Value, json};

const TOKEN: &str = "happ_test_token";
const CHAT_1: &str = "f0000000-0000-4000-8000-000000000001";
const SUPPORT_BOT: &str = "8f5c3b0e-4a61-4c2e-9d3a-1b2c3d4e5f60";

fn seed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/happ/seed.json")
}

async fn server() -> ServerHandle {
    let mut config = ServerConfig::new(TOKEN);
    config.seed = Seed::from_path(&seed_path()).expect("the example seed loads");
    HappServer::start(config).await.expect("starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Sends a request and returns status, `Retry-After` and the JSON body (`Null` if not JSON).
async fn call(req: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn error_code(body: &Value) -> (&Value, &str) {
    (&body["success"], body["error"]["code"].as_str().unwrap_or("(none)"))
}

#[tokio::test]
async fn authentication() {
    let server = server().await;
    let url = format!("{}/api/assistants", server.base_url());
    let (status, _, body) = call(http().get(&url)).await;
    assert_eq!((status, error_code(&body)), (401, (&json!(false), "UNAUTHORIZED")));
    assert_eq!(body["error"]["message"], "missing X-Access-Token header");
    let (status, _, body) = call(http().get(&url).header("X-Access-Token", "happ_wrong")).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("invalid access token")));
    let (status, _, body) = call(http().get(&url).header("x-access-token", TOKEN)).await;
    assert_eq!((status, body["success"].as_bool(), body["data"].as_array().map(Vec::len)), (200, Some(true), Some(2)));

    // No token configured: everything is refused.
    let open = HappServer::start(ServerConfig { tokens: vec![], ..ServerConfig::new("") }).await.expect("starts");
    let (status, _, _) = call(http().get(format!("{}/api/assistants", open.base_url())).header("X-Access-Token", "")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_requests_answer_in_the_error_envelope() {
    let server = server().await;
    let base = server.base_url();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http().get(format!("{base}/api/nothing-here")), 404, "NOT_FOUND"),
        (http().delete(format!("{base}/api/chats")), 405, "METHOD_NOT_ALLOWED"),
        (http().post(format!("{base}/api/chats")).header("content-type", "application/json").body("{not json"), 400, "VALIDATION_ERROR"),
        (http().post(format!("{base}/api/chats")).header("content-type", "application/json").body("{}"), 400, "VALIDATION_ERROR"),
        (http().post(format!("{base}/api/chats")).header("content-type", "application/json").body(r#"{"assistantId":7}"#), 400, "VALIDATION_ERROR"),
        (http().post(format!("{base}/api/chats")).body(r#"{"assistantId":"x"}"#), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (http().get(format!("{base}/api/chats?page=0")), 400, "VALIDATION_ERROR"),
        (http().get(format!("{base}/api/chats?take=101")), 400, "VALIDATION_ERROR"),
        (http().get(format!("{base}/api/chats?take=ten")), 400, "VALIDATION_ERROR"),
        (http().get(format!("{base}/api/assistant-knowledge")), 400, "VALIDATION_ERROR"),
        (http().get(format!("{base}/api/assistant-tools?assistantId=ghost")), 404, "NOT_FOUND"),
        (http().patch(format!("{base}/api/chats/{CHAT_1}")).json(&json!({})), 400, "VALIDATION_ERROR"),
        (http().patch(format!("{base}/api/phones/x")).json(&json!({"assistantId": 3})), 400, "VALIDATION_ERROR"),
        (http().patch(format!("{base}/api/phones/x")).json(&json!({})), 400, "VALIDATION_ERROR"),
        (
            http()
                .post(format!("{base}/api/assistant-knowledge"))
                .json(&json!({"assistantId": SUPPORT_BOT, "type": "file", "name": "f", "resourceContent": "x"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            http()
                .post(format!("{base}/api/phones"))
                .json(&json!({"phoneNumber": "+1", "sipLogin": "a", "password": "b", "telephonyUrl": "h", "codec": "opus"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            http()
                .post(format!("{base}/api/assistant-tools"))
                .json(&json!({"assistantId": SUPPORT_BOT, "name": "t", "description": "d", "type": "webhook_action"})),
            400,
            "VALIDATION_ERROR",
        ),
        (http().post(format!("{base}/api/chats/{CHAT_1}/messages")).json(&json!({"content": "x", "role": "operator"})), 400, "VALIDATION_ERROR"),
    ];
    for (i, (req, want_status, want_code)) in cases.into_iter().enumerate() {
        let (status, _, body) = call(req.header("X-Access-Token", TOKEN)).await;
        assert_eq!((status, error_code(&body)), (want_status, (&json!(false), want_code)), "case {i}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "case {i}: {body}");
    }
}

#[tokio::test]
async fn pagination_parameters() {
    let server = server().await;
    let base = server.base_url();
    let get = |path: &str| http().get(format!("{base}{path}")).header("X-Access-Token", TOKEN);
    let (_, _, body) = call(get(&format!("/api/chats/{CHAT_1}/messages?page=2&take=2"))).await;
    assert_eq!((body["totalCount"].as_u64(), body["page"].as_u64(), body["data"].as_array().map(Vec::len)), (Some(3), Some(2), Some(1)));
    let (_, _, body) = call(get(&format!("/api/chats/{CHAT_1}/messages"))).await;
    assert_eq!((body["page"].as_u64(), body["data"].as_array().map(Vec::len)), (Some(1), Some(3)), "page 1 of 20 by default");
    // Listings documented without pagination are whole unless page or take is given.
    let (_, _, body) = call(get("/api/phones")).await;
    assert!(body.get("totalCount").is_none());
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    let (_, _, body) = call(get("/api/phones?take=1&page=2")).await;
    assert_eq!((body["totalCount"].as_u64(), body["data"][0]["sipLogin"].as_str()), (Some(2), Some("1002")));
}

#[tokio::test]
async fn admin_faults_and_stats_over_http() {
    let server = server().await;
    let base = server.base_url();
    let (status, _, body) = call(
        http()
            .post(format!("{base}/_admin/faults"))
            .json(&json!({"rules": [{"method": "GET", "route": "/api/phones", "times": 1, "action": {"kind": "error", "status": 429, "retryAfter": "7"}}]})),
    )
    .await;
    assert_eq!((status, body["data"][0]["active"].as_bool()), (200, Some(true)));
    let (status, _, _) = call(http().post(format!("{base}/_admin/faults")).json(&json!({"rules": [{"action": {"kind": "boom"}}]}))).await;
    assert_eq!(status, 400, "bad rules are refused");

    let phones = || http().get(format!("{base}/api/phones")).header("X-Access-Token", TOKEN);
    let (status, retry_after, body) = call(phones()).await;
    assert_eq!((status, retry_after.as_deref(), error_code(&body).1), (429, Some("7"), "RATE_LIMITED"));
    let (status, _, _) = call(phones()).await;
    assert_eq!(status, 200);

    let (_, _, body) = call(http().get(format!("{base}/_admin/faults"))).await;
    assert_eq!((body["data"][0]["fired"].as_u64(), body["data"][0]["active"].as_bool()), (Some(1), Some(false)));
    let (_, _, stats) = call(http().get(format!("{base}/_admin/stats"))).await;
    let route = &stats["data"]["routes"]["GET /api/phones"];
    assert_eq!(
        (route["requests"].as_u64(), route["faults"].as_u64(), route["statuses"]["429"].as_u64(), route["statuses"]["200"].as_u64()),
        (Some(2), Some(1), Some(1), Some(1))
    );
    assert_eq!(stats["data"]["total"].as_u64(), Some(2), "admin requests are not counted");

    call(http().delete(format!("{base}/_admin/stats"))).await;
    call(http().delete(format!("{base}/_admin/faults"))).await;
    assert_eq!(server.state().stats().total, 0);
    assert!(server.state().fault_status().is_empty());
}

#[tokio::test]
async fn store_changes_are_broadcast_in_order() {
    let server = server().await;
    let mut events = server.events();
    let client = HappClient::new(ClientConfig::new(server.base_url(), TOKEN)).expect("valid");
    let chat = client.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat");
    let m = client.send_message(&chat.id, &NewMessage::text("hello")).await.expect("message");
    client.set_ai_control(&chat.id, false).await.expect("off");
    client.set_ai_control(&chat.id, false).await.expect("off again: no event");
    let (status, _, _) = call(http().post(format!("{}/_admin/chats/{}/handoff", server.base_url(), CHAT_1))).await;
    assert_eq!(status, 200);

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("in time").expect("not lagged"));
    }
    assert_eq!(got[0], Event::ChatCreated(chat.clone()));
    assert_eq!(got[1], Event::MessageCreated(m.clone()));
    assert_eq!(got[1].payload()["content"], "hello");
    assert_eq!(got[2].name(), "CHAT_MODE_CHANGED");
    assert_eq!(got[2].payload(), json!({"chatId": chat.id.as_str(), "isUnderAiControl": false, "aiDisableReason": "manual"}));
    assert_eq!(got[3].payload(), json!({"chatId": CHAT_1, "isUnderAiControl": false, "aiDisableReason": "auto"}));
    assert!(events.try_recv().is_err(), "nothing else happened");
    assert_eq!(server.state().read(|s| s.messages(&ChatId::new(CHAT_1)).map(<[_]>::len)), Ok(3));
}

#[tokio::test]
async fn a_bad_seed_is_refused() {
    let seed: Seed =
        serde_json::from_value(json!({"assistants": [], "chats": [{"id": "c", "assistantId": "ghost", "isUnderAiControl": true}]})).expect("parses");
    let e = HappServer::start(ServerConfig { seed, ..ServerConfig::new(TOKEN) }).await.expect_err("dangling assistant");
    assert_eq!(e.to_string(), "seed: chat c names unknown assistant ghost");
}

/// The binary, with flags: a failure injected at start, then the seeded data.
#[tokio::test]
async fn the_binary_serves_the_seed_with_injected_faults() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("bound").port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_happ-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--seed"])
        .arg(seed_path())
        .args(["--token", TOKEN, "--fail-next", "1", "--fail-status", "503", "--retry-after", "0"])
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let url = format!("http://127.0.0.1:{port}/api/assistants");
    let mut first = None;
    for _ in 0..200 {
        if let Ok(resp) = http().get(&url).header("X-Access-Token", TOKEN).send().await {
            first = Some(resp.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first, Some(503), "the first request gets the injected 503");
    let (status, _, body) = call(http().get(&url).header("X-Access-Token", TOKEN)).await;
    assert_eq!((status, body["data"][0]["name"].as_str()), (200, Some("Support Bot")));
    child.start_kill().expect("kill our child");
    let _ = child.wait().await;

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_happ-server")).args(["--seed", "/nonexistent/seed.json"]).output().await.expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read seed file /nonexistent/seed.json"));
}
