//! The real-time client against the local server, over HTTP and WebSocket on loopback:
//! authentication and room join, the three events caused by REST calls, refusals, outages with
//! messages created meanwhile (caught up once and in order), held events delivered late
//! (filtered), and configurable event names. Deadlines only stop a hung test; no test asserts a
//! duration.
#![cfg(feature = "realtime")]

mod common;

use std::time::Duration;

use common::*;
use happ_client::HappClient;
use happ_client::model::{AiDisableReason, AssistantId, ChatId, Message, MessageId, NewMessage};
use happ_client::realtime::{HandshakeError, Realtime, RealtimeConfig, RealtimeEvent, RealtimeHandle, ReconnectPolicy, Stage};
use happ_server::{HappServer, ServerConfig, ServerHandle, SocketConfig};
use serde_json::Value;
use tokio::sync::mpsc::Receiver;

/// How long a test waits for something before it fails as hung.
const PATIENCE: Duration = Duration::from_secs(20);

/// Client settings for `server`: millisecond backoff, a seeded jitter, short handshake acks.
fn realtime_config(server: &ServerHandle) -> RealtimeConfig {
    let mut c = RealtimeConfig::with_rest(config(&server.base_url()));
    c.reconnect = ReconnectPolicy { base: Duration::from_millis(10), cap: Duration::from_millis(100), jitter: 0.5, max_attempts: None };
    c.connect_timeout = Duration::from_secs(5);
    c.ack_timeout = Duration::from_secs(2);
    c.seed = Some(7);
    c
}

fn connect(config: RealtimeConfig) -> (RealtimeHandle, Receiver<RealtimeEvent>) {
    Realtime::connect(config).expect("valid settings")
}

/// Waits for the first event `pick` accepts, skipping others; fails on a hang or on `Closed`
/// unless it is what `pick` wants.
async fn wait_for<T>(events: &mut Receiver<RealtimeEvent>, mut pick: impl FnMut(&RealtimeEvent) -> Option<T>) -> T {
    let mut skipped = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
            if matches!(event, RealtimeEvent::Closed) {
                return None;
            }
            skipped.push(event);
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("the client closed first; skipped {skipped:#?}"),
        Err(_) => panic!("nothing matched in time; skipped {skipped:#?}"),
    }
}

async fn connected(events: &mut Receiver<RealtimeEvent>) -> bool {
    wait_for(events, |e| if let RealtimeEvent::Connected { reconnected } = e { Some(*reconnected) } else { None }).await
}

/// Collects the messages of `chat` delivered until `n` have come; other events are skipped.
async fn messages(events: &mut Receiver<RealtimeEvent>, chat: &ChatId, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(
            wait_for(events, |e| match e {
                RealtimeEvent::MessageCreated(m) if &m.chat_id == chat => Some(m.clone()),
                _ => None,
            })
            .await,
        );
    }
    got
}

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id.clone()).collect()
}

async fn admin(server: &ServerHandle, method: reqwest::Method, path: &str) -> Value {
    let response = reqwest::Client::new().request(method, format!("{}{path}", server.base_url())).send().await.expect("the admin endpoint answers");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json::<Value>().await.expect("JSON")["data"].clone()
}

async fn send_all(client: &HappClient, chat: &ChatId, range: std::ops::Range<usize>) -> Vec<Message> {
    let mut sent = Vec::new();
    for i in range {
        sent.push(client.send_message(chat, &NewMessage::text(format!("message {i}"))).await.expect("sent"));
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_joins_and_receives_the_three_events() {
    let server = server().await;
    let rest = client(&server);
    let (handle, mut events) = connect(realtime_config(&server));
    // The first event of all: nothing arrives before the join.
    let first = tokio::time::timeout(PATIENCE, events.recv()).await.expect("in time").expect("open");
    assert!(matches!(first, RealtimeEvent::Connected { reconnected: false }), "{first:?}");
    let status = admin(&server, reqwest::Method::GET, "/_admin/ws").await;
    assert_eq!((status["sockets"].as_u64(), status["joined"].as_u64(), status["authenticated"].as_u64()), (Some(1), Some(1), Some(1)));

    let chat = rest.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat");
    let hello = rest.send_message(&chat.id, &NewMessage::text("Hello")).await.expect("message");
    rest.set_ai_control(&chat.id, false).await.expect("AI off");
    admin(&server, reqwest::Method::POST, &format!("/_admin/chats/{CHAT_1}/handoff")).await;

    // Exactly these four, in this order.
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(tokio::time::timeout(PATIENCE, events.recv()).await.expect("in time").expect("open"));
    }
    assert!(matches!(&got[0], RealtimeEvent::ChatCreated(c) if *c == chat), "{:?}", got[0]);
    assert!(matches!(&got[1], RealtimeEvent::MessageCreated(m) if *m == hello), "{:?}", got[1]);
    assert!(
        matches!(&got[2], RealtimeEvent::ChatModeChanged { chat_id, is_under_ai_control: false, ai_disable_reason: Some(AiDisableReason::Manual) } if *chat_id == chat.id),
        "{:?}",
        got[2]
    );
    assert!(
        matches!(&got[3], RealtimeEvent::ChatModeChanged { chat_id, is_under_ai_control: false, ai_disable_reason: Some(AiDisableReason::Auto) } if chat_id.as_str() == CHAT_1),
        "{:?}",
        got[3]
    );
    assert_eq!(handle.stats().live_messages, 1);

    handle.close().await;
    wait_for(&mut events, |e| matches!(e, RealtimeEvent::Closed).then_some(())).await;
    assert!(events.recv().await.is_none(), "nothing after Closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_chat_catches_up_its_history_once() {
    let server = server().await;
    let rest = client(&server);
    let (handle, mut events) = connect(realtime_config(&server));
    connected(&mut events).await;
    let chat1 = ChatId::new(CHAT_1);
    let history = rest.messages(&chat1).await.expect("listing");
    assert_eq!(history.len(), 3);
    // A chat watched from its start: its history comes at once, then live messages.
    handle.watch(chat1.clone()).await.expect("watch");
    assert_eq!(messages(&mut events, &chat1, 3).await, history);
    let live = rest.send_message(&chat1, &NewMessage::text("live")).await.expect("sent");
    assert_eq!(messages(&mut events, &chat1, 1).await, [live]);
    // Watched again and caught up again on demand: nothing new, nothing twice.
    handle.watch(chat1.clone()).await.expect("watch");
    handle.catch_up().await.expect("catch up");
    // A chat watched after its last message: no history.
    let chat2 = ChatId::new(CHAT_2);
    let last2 = rest.messages(&chat2).await.expect("listing").pop().expect("seeded messages");
    handle.watch_after(chat2.clone(), last2.id.clone()).await.expect("watch");
    let marker = rest.send_message(&chat2, &NewMessage::text("marker")).await.expect("sent");
    // The commands were taken before the marker's event (commands go first) and the socket is
    // not read while a catch-up runs: anything those catch-ups delivered would come first.
    let next = wait_for(&mut events, |e| if let RealtimeEvent::MessageCreated(m) = e { Some(m.clone()) } else { None }).await;
    assert_eq!(next, marker);
    // The marker came live or from the catch-up of chat 2 (it races the listing), once.
    let stats = handle.stats();
    assert_eq!(stats.caught_up_messages + stats.live_messages, 5, "{stats:?}");
    assert!(stats.caught_up_messages >= 3 && stats.catch_ups >= 3, "{stats:?}");
    handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_with_a_clear_error() {
    let server = server().await;
    // In the CONNECT auth object: refused at CONNECT.
    let mut config = realtime_config(&server);
    config.rest.token = "happ_wrong".into();
    let (handle, mut events) = connect(config.clone());
    let (stage, error) = wait_for(&mut events, |e| match e {
        RealtimeEvent::HandshakeFailed { stage, error } => Some((*stage, error.clone())),
        RealtimeEvent::Connected { .. } => panic!("connected with a wrong token"),
        _ => None,
    })
    .await;
    assert_eq!((stage, error), (Stage::Connect, HandshakeError::Refused { message: "invalid token".into(), code: None }));
    wait_for(&mut events, |e| matches!(e, RealtimeEvent::Closed).then_some(())).await;
    assert!(handle.is_closed() || events.recv().await.is_none());

    // Only in the authentication event: refused there, with the server's code.
    config.token_in_connect_auth = false;
    let (_handle, mut events) = connect(config);
    let (stage, error) = wait_for(&mut events, |e| match e {
        RealtimeEvent::HandshakeFailed { stage, error } => Some((*stage, error.clone())),
        RealtimeEvent::Connected { .. } => panic!("connected with a wrong token"),
        _ => None,
    })
    .await;
    assert_eq!(
        (stage, error.clone()),
        (Stage::Authenticate, HandshakeError::Refused { message: "invalid access token".into(), code: Some("UNAUTHORIZED".into()) })
    );
    assert_eq!(error.to_string(), "refused by the server: invalid access token (UNAUTHORIZED)");
    wait_for(&mut events, |e| matches!(e, RealtimeEvent::Closed).then_some(())).await;
    let status = admin(&server, reqwest::Method::GET, "/_admin/ws").await;
    assert_eq!((status["refused"].as_u64(), status["authFailures"].as_u64(), status["joins"].as_u64()), (Some(1), Some(1), Some(0)));
}

/// The server drops every connection and refuses new ones while 20 messages are created over
/// REST: the client reconnects with backoff, delivers the 20 exactly once and in order, then
/// carries on live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_messages_are_caught_up_once_and_in_order_after_an_outage() {
    let server = server().await;
    let rest = client(&server);
    let (handle, mut events) = connect(realtime_config(&server));
    assert!(!connected(&mut events).await);
    let chat = rest.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat").id;
    handle.watch(chat.clone()).await.expect("watch");
    let before = send_all(&rest, &chat, 0..3).await;
    assert_eq!(messages(&mut events, &chat, 3).await, before);

    for round in 0..2 {
        admin(&server, reqwest::Method::POST, "/_admin/ws/refuse").await;
        let dropped = admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
        assert_eq!(dropped["disconnected"].as_u64(), Some(1));
        wait_for(&mut events, |e| matches!(e, RealtimeEvent::Disconnected { .. }).then_some(())).await;
        let missed = send_all(&rest, &chat, 100 * round + 10..100 * round + 30).await;
        // At least two attempts refused with 503 (backoff), then the server takes connections.
        wait_for(&mut events, |e| matches!(e, RealtimeEvent::Reconnecting { attempt, .. } if *attempt >= 2).then_some(())).await;
        admin(&server, reqwest::Method::DELETE, "/_admin/ws/refuse").await;
        assert!(connected(&mut events).await, "round {round}: a reconnection says so");
        assert_eq!(ids(&messages(&mut events, &chat, 20).await), ids(&missed), "round {round}");
        let after = send_all(&rest, &chat, 100 * round + 50..100 * round + 52).await;
        assert_eq!(messages(&mut events, &chat, 2).await, after, "round {round}: live again");
    }
    // Everything the chat holds, delivered once: 3 + 2 × (20 + 2). The first 3 raced the
    // catch-up that `watch` starts, so they came live or from it.
    let stats = handle.stats();
    assert_eq!((stats.live_messages + stats.caught_up_messages, stats.rejoins), (3 + 2 * (20 + 2), 2), "{stats:?}");
    assert!(stats.caught_up_messages >= 2 * 20, "{stats:?}");
    assert!(admin(&server, reqwest::Method::GET, "/_admin/ws").await["refused"].as_u64() >= Some(4));
    handle.close().await;
}

/// Delivery paused (events dropped) while 20 messages are created, then the connection drops:
/// the 20 come from the catch-up. Then 20 more are created while the connection drops again:
/// each comes once and in order, from the catch-up, live, or (dropped as a duplicate) both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_dropped_by_the_server_are_caught_up_after_the_reconnect() {
    let server = server().await;
    let rest = client(&server);
    let (handle, mut events) = connect(realtime_config(&server));
    connected(&mut events).await;
    let chat = rest.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat").id;
    handle.watch(chat.clone()).await.expect("watch");
    let first = send_all(&rest, &chat, 0..1).await;
    assert_eq!(messages(&mut events, &chat, 1).await, first);

    admin(&server, reqwest::Method::POST, "/_admin/ws/pause?mode=drop").await;
    let dropped = send_all(&rest, &chat, 1..21).await;
    assert_eq!(admin(&server, reqwest::Method::GET, "/_admin/ws").await["dropped"].as_u64(), Some(20));
    // The connection is up but heard nothing of them; it drops (delivery still paused).
    admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
    assert!(connected(&mut events).await);
    assert_eq!(ids(&messages(&mut events, &chat, 20).await), ids(&dropped), "caught up");
    // 20, or 21 if the catch-up that `watch` starts raced the first message and listed it.
    assert!((20..=21).contains(&handle.stats().caught_up_messages), "{:?}", handle.stats());

    // Delivery on again; 20 messages are created while the connection drops and comes back.
    admin(&server, reqwest::Method::POST, "/_admin/ws/resume").await;
    let writer = {
        let rest = rest.clone();
        let chat = chat.clone();
        tokio::spawn(async move { send_all(&rest, &chat, 21..41).await })
    };
    admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
    let concurrent = writer.await.expect("the writer finishes");
    assert_eq!(ids(&messages(&mut events, &chat, 20).await), ids(&concurrent), "each once, in order");
    let marker = send_all(&rest, &chat, 41..42).await;
    assert_eq!(messages(&mut events, &chat, 1).await, marker, "nothing else came before the next live message");
    let stats = handle.stats();
    assert_eq!(stats.live_messages + stats.caught_up_messages, 42, "{stats:?}");
    assert_eq!(stats.rejoins, 2);
    handle.close().await;
}

/// Events held by the server during an outage are caught up after the reconnect, and then
/// delivered live as well when the server releases them: the client drops those 10 duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_already_caught_up_are_delivered_once() {
    let server = server().await;
    let rest = client(&server);
    let (handle, mut events) = connect(realtime_config(&server));
    connected(&mut events).await;
    let chat = rest.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat").id;
    handle.watch(chat.clone()).await.expect("watch");
    let first = send_all(&rest, &chat, 0..1).await;
    assert_eq!(messages(&mut events, &chat, 1).await, first);

    admin(&server, reqwest::Method::POST, "/_admin/ws/pause?mode=hold").await;
    let held = send_all(&rest, &chat, 1..11).await;
    assert_eq!(admin(&server, reqwest::Method::GET, "/_admin/ws").await["held"].as_u64(), Some(10));
    admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
    assert!(connected(&mut events).await);
    assert_eq!(messages(&mut events, &chat, 10).await, held, "caught up");
    // Released now, to the rejoined socket, before the next message.
    admin(&server, reqwest::Method::POST, "/_admin/ws/resume").await;
    let next = send_all(&rest, &chat, 11..12).await;
    let after = wait_for(&mut events, |e| if let RealtimeEvent::MessageCreated(m) = e { Some(m.clone()) } else { None }).await;
    assert_eq!(after, next[0], "the 10 late copies were dropped");
    // The first message raced the catch-up that `watch` starts: if that catch-up listed it, its
    // live copy was one more duplicate.
    let stats = handle.stats();
    let raced = stats.caught_up_messages - 10;
    assert_eq!((stats.live_messages + raced, stats.duplicates), (2, 10 + raced), "{stats:?}");
    handle.close().await;
}

/// The catch-up listing fails (five 503s, as many as the REST client tries): reported, then tried
/// again shortly, and the missed messages still arrive once and in order. An unknown chat is
/// reported with the API's 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_catch_up_is_reported_and_tried_again() {
    let server = server().await;
    let rest = client(&server);
    let mut config = realtime_config(&server);
    config.catch_up_retry = Duration::from_millis(50);
    let (handle, mut events) = connect(config);
    connected(&mut events).await;
    let chat = rest.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat").id;
    handle.watch(chat.clone()).await.expect("watch");
    let first = send_all(&rest, &chat, 0..1).await;
    assert_eq!(messages(&mut events, &chat, 1).await, first);

    admin(&server, reqwest::Method::POST, "/_admin/ws/refuse").await;
    admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
    wait_for(&mut events, |e| matches!(e, RealtimeEvent::Disconnected { .. }).then_some(())).await;
    let missed = send_all(&rest, &chat, 1..6).await;
    server.state().set_faults(
        serde_json::from_value(serde_json::json!({"rules": [{"method": "GET", "route": "/api/chats/{chatId}/messages", "times": 5,
            "action": {"kind": "error", "status": 503}}]}))
        .expect("fault rules"),
    );
    admin(&server, reqwest::Method::DELETE, "/_admin/ws/refuse").await;
    assert!(connected(&mut events).await);
    let error = wait_for(&mut events, |e| match e {
        RealtimeEvent::CatchUpFailed { chat_id, error } if *chat_id == chat => Some(error.clone()),
        RealtimeEvent::MessageCreated(m) => panic!("{m:?} before the failure"),
        _ => None,
    })
    .await;
    assert!(matches!(*error, happ_client::Error::Server { status: 503, attempts: 5, .. }), "{error:?}");
    assert_eq!(messages(&mut events, &chat, 5).await, missed, "after the retry");

    handle.watch(ChatId::new("no-such-chat")).await.expect("watch");
    let error = wait_for(&mut events, |e| match e {
        RealtimeEvent::CatchUpFailed { chat_id, error } if chat_id.as_str() == "no-such-chat" => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(*error, happ_client::Error::Api { status: 404, .. }), "{error:?}");
    let live = send_all(&rest, &chat, 6..7).await;
    assert_eq!(messages(&mut events, &chat, 1).await, live);
    assert_eq!(handle.stats().catch_up_failures, 2);
    handle.close().await;
}

/// Event names and the room come from the settings: a server using other names works with a
/// client told so; the default names get no acknowledgement there, and a wrong room is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_names_and_room_are_configurable() {
    let mut config = ServerConfig::new(TOKEN);
    config.seed = seed();
    config.socket = SocketConfig {
        company_id: "acme".into(),
        auth_event: "auth:login".into(),
        join_event: "room:subscribe".into(),
        room_template: "org/{companyId}/events".into(),
        ..SocketConfig::default()
    };
    let server = HappServer::start(config).await.expect("starts");
    let rest = client(&server);

    let mut custom = realtime_config(&server);
    custom.auth_event = "auth:login".into();
    custom.join_event = "room:subscribe".into();
    custom.room_template = "org/{companyId}/events".into();
    let (handle, mut events) = connect(custom.clone());
    connected(&mut events).await;
    let m = rest.send_message(&ChatId::new(CHAT_1), &NewMessage::text("hi")).await.expect("sent");
    assert_eq!(messages(&mut events, &ChatId::new(CHAT_1), 1).await, [m]);
    handle.close().await;

    // The company id from the settings instead of the acknowledgement: the same room.
    let mut fixed = custom.clone();
    fixed.company_id = Some("acme".into());
    let (handle, mut events) = connect(fixed);
    connected(&mut events).await;
    handle.close().await;

    let failure = async |config: RealtimeConfig| {
        let (_handle, mut events) = connect(config);
        let failed = wait_for(&mut events, |e| match e {
            RealtimeEvent::HandshakeFailed { stage, error } => Some((*stage, error.clone())),
            RealtimeEvent::Connected { .. } => panic!("joined"),
            _ => None,
        })
        .await;
        wait_for(&mut events, |e| matches!(e, RealtimeEvent::Closed).then_some(())).await;
        failed
    };
    let mut defaults = realtime_config(&server);
    defaults.ack_timeout = Duration::from_millis(300);
    assert_eq!(failure(defaults).await, (Stage::Authenticate, HandshakeError::NoAck(Duration::from_millis(300))));
    let mut wrong_room = custom.clone();
    wrong_room.room_template = "company:{companyId}".into();
    let (stage, error) = failure(wrong_room).await;
    assert_eq!(stage, Stage::Join);
    assert!(matches!(&error, HandshakeError::Refused { code: Some(c), .. } if c == "FORBIDDEN"), "{error:?}");
    let mut no_company = custom;
    no_company.room_template = "{companyId}".into();
    no_company.company_id = None;
    // The server gives `companyId`, so this one joins room "acme": refused as not the company's.
    assert_eq!(failure(no_company).await.0, Stage::Join);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_before_connecting() {
    let server = server().await;
    for (what, edit) in [
        ("reserved", Box::new(|c: &mut RealtimeConfig| c.auth_event = "connect".into()) as Box<dyn Fn(&mut RealtimeConfig)>),
        ("empty", Box::new(|c: &mut RealtimeConfig| c.join_event = String::new())),
        ("room", Box::new(|c: &mut RealtimeConfig| c.room_template = String::new())),
        ("capacity", Box::new(|c: &mut RealtimeConfig| c.event_capacity = 0)),
        ("url", Box::new(|c: &mut RealtimeConfig| c.rest.base_url = "ftp://x".into())),
        ("path", Box::new(|c: &mut RealtimeConfig| c.socket_path = "ws".into())),
    ] {
        let mut config = realtime_config(&server);
        edit(&mut config);
        assert!(Realtime::connect(config).is_err(), "{what}");
    }
}
