//! Rate limits, server errors and timeouts injected by the local server: what is retried, and
//! that every message is stored exactly once when the client retries appropriately.
//!
//! The injected errors answer before the handler runs, so a retry after one of them cannot
//! duplicate. The `delayAfter` fault stores the message and then holds the answer past the
//! client's timeout: the case where a retry *does* duplicate.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use happ_client::model::{ChatId, KnowledgeType, NewKnowledge, NewMessage};
use happ_client::{Error, HappClient, Replay, RetryConfig};
use happ_server::{FaultConfig, ServerHandle};

const MESSAGES: &str = "POST /api/chats/{chatId}/messages";

fn faults(json: &str) -> FaultConfig {
    serde_json::from_str(json).expect("valid fault config")
}

/// How many stored messages of CHAT_1 have each content.
fn stored(server: &ServerHandle) -> HashMap<String, usize> {
    server.state().read(|s| {
        let mut counts = HashMap::new();
        for m in s.messages(&ChatId::new(CHAT_1)).expect("seeded chat") {
            *counts.entry(m.content.clone()).or_default() += 1;
        }
        counts
    })
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_waited_out() {
    let server = server().await;
    server
        .state()
        .set_faults(faults(r#"{"rules":[{"route":"/api/chats/{chatId}/messages","times":2,"action":{"kind":"error","status":429,"retryAfter":"1"}}]}"#));
    let client = client(&server);

    let m = client.send_message(&ChatId::new(CHAT_1), &NewMessage::text("after the limit")).await.expect("survives two 429s");
    assert_eq!(m.content, "after the limit");
    let stats = server.state().stats().route(MESSAGES);
    assert_eq!((stats.requests, stats.faults), (3, 2));
    assert_eq!(stats.statuses.get(&429), Some(&2));
    assert_eq!(stats.statuses.get(&201), Some(&1));
    assert_eq!(stored(&server).get("after the limit"), Some(&1));
}

#[tokio::test]
async fn server_errors_are_retried_without_duplicates() {
    let server = server().await;
    server.state().set_faults(faults(
        r#"{"rules":[
            {"method":"POST","times":1,"action":{"kind":"error","status":500}},
            {"method":"POST","skip":1,"times":1,"action":{"kind":"error","status":503,"retryAfter":"0"}},
            {"method":"POST","skip":2,"times":1,"action":{"kind":"error","status":502}}
        ]}"#,
    ));
    let client = client(&server);
    client.send_message(&ChatId::new(CHAT_1), &NewMessage::text("through 500, 503 and 502")).await.expect("survives");
    assert_eq!(server.state().stats().route(MESSAGES).requests, 4);
    assert_eq!(stored(&server).get("through 500, 503 and 502"), Some(&1));
}

#[tokio::test]
async fn at_most_once_stops_at_a_500_but_retries_429_and_503() {
    let server = server().await;
    let client = client(&server).with_replay(Replay::OnlyIfNotProcessed);

    server
        .state()
        .set_faults(faults(r#"{"rules":[{"times":1,"action":{"kind":"error","status":429}},{"skip":1,"times":1,"action":{"kind":"error","status":503}}]}"#));
    client.send_message(&ChatId::new(CHAT_1), &NewMessage::text("429 and 503 prove nothing was stored")).await.expect("retried");

    server.state().set_faults(faults(r#"{"rules":[{"times":1,"action":{"kind":"error","status":500}}]}"#));
    server.state().reset_stats();
    let e = client.send_message(&ChatId::new(CHAT_1), &NewMessage::text("a 500 may have stored it")).await.expect_err("not retried");
    assert!(matches!(&e, Error::Server { status: 500, attempts: 1, code: Some(c), .. } if c == "INTERNAL_ERROR"), "{e:?}");
    assert!(e.maybe_processed());
    assert_eq!(server.state().stats().route(MESSAGES).requests, 1);
    let counts = stored(&server);
    assert_eq!(counts.get("429 and 503 prove nothing was stored"), Some(&1));
    assert_eq!(counts.get("a 500 may have stored it"), None, "the injected 500 answered before the handler");
}

#[tokio::test]
async fn a_slow_read_is_retried_after_the_timeout() {
    let server = server().await;
    server.state().set_faults(faults(r#"{"rules":[{"method":"GET","times":1,"action":{"kind":"delay","ms":4000}}]}"#));
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_millis(1000);
    let client = HappClient::new(config).expect("valid");
    let messages = client.messages(&ChatId::new(CHAT_1)).await.expect("second attempt answers in time");
    assert_eq!(messages.len(), 3);
    let stats = server.state().stats().route("GET /api/chats/{chatId}/messages");
    assert_eq!((stats.requests, stats.faults), (2, 1));
}

#[tokio::test]
async fn a_post_whose_answer_is_lost_is_duplicated_by_at_least_once_and_not_by_at_most_once() {
    let server = server().await;
    server.state().set_faults(faults(r#"{"rules":[{"method":"POST","times":1,"action":{"kind":"delayAfter","ms":4000}}]}"#));
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_millis(1000);
    let client = HappClient::new(config).expect("valid");
    let chat = ChatId::new(CHAT_1);

    // Default for creating POSTs: at-least-once. The first attempt stored the message, its answer
    // came too late, the retry stored it again.
    let m = client.send_message(&chat, &NewMessage::text("at least once")).await.expect("the retry answers");
    assert_eq!(m.content, "at least once");
    assert_eq!(stored(&server).get("at least once"), Some(&2), "documented: a timed-out POST retried can duplicate");

    // At-most-once: the timeout is reported, marked as possibly stored; the caller checks.
    server.state().set_faults(faults(r#"{"rules":[{"method":"POST","times":1,"action":{"kind":"delayAfter","ms":4000}}]}"#));
    let before = client.messages(&chat).await.expect("list").last().map(|m| m.id.clone());
    let e = client.with_replay(Replay::OnlyIfNotProcessed).send_message(&chat, &NewMessage::text("at most once")).await.expect_err("timeout");
    assert!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e:?}");
    assert!(e.maybe_processed());
    // The outbox's check: the message is there, exactly once, so it is not sent again.
    let since = client.messages_since(&chat, before.as_ref()).await.expect("catch up");
    assert_eq!(since.iter().filter(|m| m.content == "at most once").count(), 1);
    assert_eq!(stored(&server).get("at most once"), Some(&1));
}

#[tokio::test]
async fn a_delete_retried_after_a_lost_answer_counts_as_done() {
    let server = server().await;
    let mut config = config(&server.base_url());
    config.timeout = Duration::from_millis(1000);
    let client = HappClient::new(config).expect("valid");
    let bot = happ_client::model::AssistantId::new(SUPPORT_BOT);
    let entry = client
        .create_knowledge(&NewKnowledge {
            assistant_id: bot.clone(),
            kind: KnowledgeType::Text,
            name: "tmp".into(),
            description: None,
            resource_content: "x".into(),
        })
        .await
        .expect("create");
    server.state().set_faults(faults(r#"{"rules":[{"method":"DELETE","times":1,"action":{"kind":"delayAfter","ms":4000}}]}"#));
    client.delete_knowledge(&entry.id).await.expect("the retry's 404 means the first attempt deleted it");
    assert_eq!(server.state().stats().route("DELETE /api/assistant-knowledge/{knowledgeId}").statuses.get(&404), Some(&1));
    assert_eq!(client.knowledge(&bot).await.expect("list").len(), 2);
}

#[tokio::test]
async fn a_hundred_messages_through_a_flaky_server_arrive_exactly_once_in_order() {
    let server = server().await;
    server.state().set_faults(faults(
        r#"{"seed":11,"rules":[
            {"route":"/api/chats/{chatId}/messages","rate":0.2,"action":{"kind":"error","status":503}},
            {"route":"/api/chats/{chatId}/messages","rate":0.1,"action":{"kind":"error","status":429,"retryAfter":"0"}}
        ]}"#,
    ));
    let mut config = config(&server.base_url());
    config.retry = RetryConfig { max_attempts: 12, ..config.retry };
    let client = HappClient::new(config).expect("valid").with_replay(Replay::OnlyIfNotProcessed);
    let chat = ChatId::new(CHAT_1);
    for i in 0..100 {
        client.send_message(&chat, &NewMessage::text(format!("flaky {i}"))).await.expect("retried through 429/503");
    }
    let stats = server.state().stats().route(MESSAGES);
    assert!(stats.faults > 10, "the faults did fire: {stats:?}");
    assert_eq!(stats.requests, 100 + stats.faults);
    let contents: Vec<String> = client.messages(&chat).await.expect("list").into_iter().map(|m| m.content).filter(|c| c.starts_with("flaky ")).collect();
    assert_eq!(contents, (0..100).map(|i| format!("flaky {i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_rate_limit_that_does_not_end_is_reported() {
    let server = server().await;
    server.state().set_faults(faults(r#"{"rules":[{"action":{"kind":"error","status":429,"retryAfter":"0"}}]}"#));
    let client = client(&server);
    let e = client.assistants().await.expect_err("always 429");
    assert!(matches!(e, Error::RateLimited { attempts: 5, .. }), "{e:?}");
    assert!(!e.maybe_processed());
    assert_eq!(server.state().stats().route("GET /api/assistants").requests, 5);

    // A Retry-After beyond the client's patience ends the retries at once, and is reported.
    server.state().set_faults(faults(r#"{"rules":[{"action":{"kind":"error","status":429,"retryAfter":"3600"}}]}"#));
    server.state().reset_stats();
    let e = client.assistants().await.expect_err("429 for an hour");
    assert!(matches!(e, Error::RateLimited { attempts: 1, retry_after: Some(d) } if d == Duration::from_secs(3600)), "{e:?}");
    assert_eq!(server.state().stats().route("GET /api/assistants").requests, 1);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = server().await;
    let date = httpdate_in(Duration::from_secs(1));
    server.state().set_faults(faults(&format!(r#"{{"rules":[{{"times":1,"action":{{"kind":"error","status":503,"retryAfter":"{date}"}}}}]}}"#)));
    let client = client(&server);
    assert_eq!(client.phones().await.expect("second attempt").len(), 2);
    assert_eq!(server.state().stats().route("GET /api/phones").requests, 2);
}

fn httpdate_in(d: Duration) -> String {
    // IMF-fixdate, formatted by hand to avoid a dev-dependency.
    let secs = (std::time::SystemTime::now() + d).duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let ts = happ_client::model::Timestamp::from_unix_millis((days * 86_400_000) as i64);
    let (y, mo, da) = (&ts.as_str()[0..4], &ts.as_str()[5..7], &ts.as_str()[8..10]);
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][mo.parse::<usize>().expect("month") - 1];
    format!("{weekday}, {da} {month} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error_after_the_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("bound").port()
    };
    let client = HappClient::new(config(&format!("http://127.0.0.1:{port}"))).expect("valid");
    let e = client.assistants().await.expect_err("nobody listens");
    assert!(matches!(&e, Error::Transport { attempts: 5, after_send: false, .. }), "{e:?}");
    assert!(!e.maybe_processed());
}
