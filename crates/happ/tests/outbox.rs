//! The durable outbox against the local Happ server over HTTP: every write arrives exactly once
//! and in order through injected 5xx, 429s and answers lost after the write was stored; writes
//! survive a restart in the middle of an outage; rejected writes become dead letters.

mod common;

use std::time::Duration;

use common::{SUPPORT_BOT, client, server};
use happ_client::model::{AssistantId, NewMessage, Role};
use happ_client::outbox::{Outbox, OutboxConfig, Write};
use happ_server::{FaultConfig, ServerHandle};

fn fast() -> OutboxConfig {
    OutboxConfig { retry_min: Duration::from_millis(10), retry_max: Duration::from_millis(200), parallel: 4 }
}

fn faults(json: &str) -> FaultConfig {
    serde_json::from_str(json).expect("valid fault rules")
}

/// Waits until nothing is pending (at most 60 s).
async fn drained(outbox: &Outbox) {
    for _ in 0..1200 {
        if outbox.stats().expect("stats").pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox did not drain: {:?}", outbox.stats());
}

/// The contents of the messages of `chat` at the server.
async fn contents(server: &ServerHandle, outbox: &Outbox, chat: &str) -> Vec<String> {
    let id = outbox.chat_id(chat).expect("store").expect("the chat was created");
    client(server).messages(&id).await.expect("list").into_iter().map(|m| m.content).collect()
}

fn user(text: &str) -> Write {
    Write::Message(NewMessage { content: text.to_owned(), role: Some(Role::User) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_arrives_once_and_in_order_through_errors_rate_limits_and_lost_answers() {
    let server = server().await;
    // Chat creations fail a third of the time, messages get 500s, 429s, and answers that come
    // after the client's 2 s timeout although the message was stored.
    server.state().set_faults(faults(
        r#"{"seed": 11, "rules": [
            {"method": "POST", "route": "/api/chats", "rate": 0.3, "action": {"kind": "error", "status": 503}},
            {"method": "POST", "route": "/api/chats/{chatId}/messages", "rate": 0.15, "action": {"kind": "error", "status": 500}},
            {"method": "POST", "route": "/api/chats/{chatId}/messages", "rate": 0.1, "action": {"kind": "error", "status": 429, "retryAfter": "0"}},
            {"method": "POST", "route": "/api/chats/{chatId}/messages", "skip": 10, "times": 4, "action": {"kind": "delayAfter", "ms": 2500}},
            {"method": "PATCH", "rate": 0.3, "action": {"kind": "error", "status": 502}}
        ]}"#,
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open_with(&dir.path().join("outbox.sqlite"), fast()).expect("open");
    let mut expected = Vec::new();
    for c in 0..5 {
        let chat = format!("call-{c}");
        outbox.push(&chat, Write::CreateChat { assistant_id: AssistantId::new(SUPPORT_BOT) }).expect("push");
        let mut lines = Vec::new();
        for i in 0..20 {
            // The same words twice in a row: the duplicate check counts copies, not just text.
            let text = if i % 7 == 3 { "yes".to_owned() } else { format!("chat {c} turn {i}") };
            outbox.push(&chat, user(&text)).expect("push");
            lines.push(text);
        }
        outbox.push(&chat, Write::AiControl { on: false }).expect("push");
        expected.push(lines);
    }
    let runner = outbox.clone();
    let http = client(&server);
    let task = tokio::spawn(async move { runner.run(http).await });
    drained(&outbox).await;
    task.abort();
    // Messages whose answers were lost were looked for before being sent again.
    let looked = server.state().stats().route("GET /api/chats/{chatId}/messages").requests;
    assert!(looked >= 1, "no duplicate check happened");

    for (c, lines) in expected.iter().enumerate() {
        assert_eq!(&contents(&server, &outbox, &format!("call-{c}")).await, lines, "chat {c}: every message once, in order");
    }
    let stats = outbox.stats().expect("stats");
    assert_eq!((stats.pending, stats.delivered, stats.dead), (0, 110, 0));
    let s = server.state().stats();
    let faults: u64 = s.routes.values().map(|r| r.faults).sum();
    assert!(faults >= 20, "the faults fired: {s:?}");
    assert!(s.route("POST /api/chats/{chatId}/messages").faults > 0, "{s:?}");
    // Four answers were lost after the message was stored (unless an error rule answered first):
    // the messages were found at the next attempt, not sent again.
    assert_eq!(server.state().fault_status()[3].fired, 4);
    // The AI-control changes arrived too.
    let chats = client(&server).chats().await.expect("chats");
    for c in 0..5 {
        let id = outbox.chat_id(&format!("call-{c}")).expect("store").expect("created");
        let chat = chats.iter().find(|x| x.id == id).expect("listed");
        assert!(!chat.is_under_ai_control, "chat {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_restart_in_the_middle_of_an_outage() {
    let server = server().await;
    server.state().set_faults(faults(r#"{"rules": [{"action": {"kind": "error", "status": 503}}]}"#));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outbox.sqlite");
    {
        let outbox = Outbox::open_with(&path, fast()).expect("open");
        outbox.push("call-1", Write::CreateChat { assistant_id: AssistantId::new(SUPPORT_BOT) }).expect("push");
        for i in 0..10 {
            outbox.push("call-1", user(&format!("turn {i}"))).expect("push");
        }
        let runner = outbox.clone();
        let http = client(&server);
        let task = tokio::spawn(async move { runner.run(http).await });
        while server.state().stats().total < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The daemon stops during the outage.
        task.abort();
        let _ = task.await;
        assert_eq!(outbox.stats().expect("stats").pending, 11);
    }
    // A new process opens the same file; the platform is back.
    server.state().set_faults(FaultConfig::default());
    let outbox = Outbox::open_with(&path, fast()).expect("reopen");
    assert_eq!(outbox.stats().expect("stats").pending, 11, "nothing lost in the restart");
    let runner = outbox.clone();
    let http = client(&server);
    let task = tokio::spawn(async move { runner.run(http).await });
    drained(&outbox).await;
    task.abort();
    let expected: Vec<String> = (0..10).map(|i| format!("turn {i}")).collect();
    assert_eq!(contents(&server, &outbox, "call-1").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_writes_become_dead_letters_and_the_rest_go_on() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open_with(&dir.path().join("outbox.sqlite"), fast()).expect("open");
    // A chat for an assistant the platform does not know: it and its messages are given up.
    outbox.push("lost", Write::CreateChat { assistant_id: AssistantId::new("no-such-assistant") }).expect("push");
    outbox.push("lost", user("never")).expect("push");
    // In a good chat, a message the API refuses (empty) is given up, the next ones go on.
    outbox.push("good", Write::CreateChat { assistant_id: AssistantId::new(SUPPORT_BOT) }).expect("push");
    outbox.push("good", user("first")).expect("push");
    outbox.push("good", user("")).expect("push");
    outbox.push("good", user("third")).expect("push");
    let runner = outbox.clone();
    let http = client(&server);
    let task = tokio::spawn(async move { runner.run(http).await });
    drained(&outbox).await;
    task.abort();
    assert_eq!(contents(&server, &outbox, "good").await, ["first", "third"]);
    let dead = outbox.dead_letters().expect("dead letters");
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(dead.iter().any(|(chat, w, why)| chat == "lost" && matches!(w, Write::CreateChat { .. }) && why.contains("404")), "{dead:?}");
    assert!(dead.iter().any(|(chat, _, why)| chat == "lost" && why.contains("could not be created")), "{dead:?}");
    assert!(dead.iter().any(|(chat, w, why)| chat == "good" && *w == user("") && why.contains("400")), "{dead:?}");
    assert_eq!(outbox.stats().expect("stats").dead, 3);
}
