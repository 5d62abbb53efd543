//! The Socket.IO side of the server, driven with the raw `happ-socketio` client: the assumed
//! handshake (CONNECT auth, `authenticate`, `join`) and its refusals, events only for joined
//! sockets, the admin fault switches, and the binary's Socket.IO flags. Deadlines only stop a
//! hung test.

use std::path::PathBuf;
use std::time::Duration;

use happ_client::model::{ChatId, NewMessage};
use happ_client::{ClientConfig as RestConfig, HappClient};
use happ_server::{HappServer, Seed, ServerConfig, ServerHandle};
use happ_socketio::{Client, ClientConfig, DisconnectReason, Event, ReconnectPolicy, connect};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

const TOKEN: &str = "happ_test_token";
const CHAT_1: &str = "f0000000-0000-4000-8000-000000000001";
const PATIENCE: Duration = Duration::from_secs(20);
const ACK: Duration = Duration::from_secs(5);

async fn server() -> ServerHandle {
    let mut config = ServerConfig::new(TOKEN);
    config.seed = Seed::from_path(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/happ/seed.json")).expect("the example seed loads");
    HappServer::start(config).await.expect("starts")
}

/// A raw Socket.IO client of `base` (`http://ADDR`), with `auth` in the CONNECT packet.
fn socket(base: &str, auth: Option<Value>) -> (Client, Receiver<Event>) {
    let mut config = ClientConfig::new(base, "/ws");
    config.session.auth = auth.and_then(|a| a.as_object().cloned());
    config.session.reconnect = ReconnectPolicy { base: Duration::from_millis(10), cap: Duration::from_millis(100), jitter: 0.5, max_attempts: None };
    config.seed = Some(3);
    connect(config).expect("valid settings")
}

async fn wait_for<T>(events: &mut Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return found;
            }
        }
        panic!("the client ended first")
    })
    .await
    .expect("in time")
}

async fn connected(events: &mut Receiver<Event>) {
    wait_for(events, |e| matches!(e, Event::Connected { .. }).then_some(())).await;
}

/// The next server event called `name`: its first argument.
async fn event(events: &mut Receiver<Event>, name: &str) -> Value {
    wait_for(events, |e| match e {
        Event::Event { name: n, args, .. } if n == name => Some(args.first().cloned().unwrap_or(Value::Null)),
        _ => None,
    })
    .await
}

async fn ask(client: &Client, event: &str, data: Value) -> Value {
    client.emit_with_ack(event, data, ACK).await.expect("acknowledged").into_iter().next().unwrap_or(Value::Null)
}

async fn admin(server: &ServerHandle, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new().request(method, format!("{}{path}", server.base_url())).send().await.expect("answers");
    (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
}

fn rest(server: &ServerHandle) -> HappClient {
    HappClient::new(RestConfig::new(server.base_url(), TOKEN)).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_and_joined_sockets_get_events() {
    let server = server().await;
    let rest = rest(&server);
    let chat = ChatId::new(CHAT_1);
    // Without a token at CONNECT: accepted, but nothing until authenticated and joined.
    let (a, mut a_events) = socket(&server.base_url(), None);
    connected(&mut a_events).await;
    let (b, mut b_events) = socket(&server.base_url(), Some(json!({"token": TOKEN})));
    connected(&mut b_events).await;
    assert_eq!(ask(&b, "authenticate", json!({"token": TOKEN})).await, json!({"success": true, "companyId": "local-company"}));
    assert_eq!(ask(&b, "join", json!({"room": "company:local-company"})).await, json!({"success": true, "room": "company:local-company"}));

    assert_eq!(ask(&a, "join", json!({"room": "company:local-company"})).await["error"]["code"], "UNAUTHORIZED");
    let first = rest.send_message(&chat, &NewMessage::text("one")).await.expect("sent");
    assert_eq!(event(&mut b_events, "MESSAGE_CREATED").await["id"], first.id.as_str());

    assert_eq!(ask(&a, "authenticate", json!({"token": TOKEN})).await["success"], true);
    let other = ask(&a, "join", json!({"room": "company:someone-else"})).await;
    assert_eq!((other["success"].as_bool(), other["error"]["code"].as_str()), (Some(false), Some("FORBIDDEN")));
    assert_eq!(ask(&a, "join", json!({})).await["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(ask(&a, "join", json!({"room": "company:local-company"})).await["success"], true);
    let second = rest.send_message(&chat, &NewMessage::text("two")).await.expect("sent");
    // A's first event is the second message: it got nothing before it joined.
    assert_eq!(event(&mut a_events, "MESSAGE_CREATED").await["id"], second.id.as_str());
    assert_eq!(event(&mut b_events, "MESSAGE_CREATED").await["id"], second.id.as_str());

    let (_, status) = admin(&server, reqwest::Method::GET, "/_admin/ws").await;
    let s = &status["data"];
    assert_eq!((s["sockets"].as_u64(), s["joined"].as_u64(), s["authenticated"].as_u64(), s["joins"].as_u64()), (Some(2), Some(2), Some(2), Some(2)));
    assert_eq!((s["forwarded"].as_u64(), s["dropped"].as_u64(), s["delivery"].as_str()), (Some(2), Some(0), Some("live")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_at_connect_and_at_authentication() {
    let server = server().await;
    let (_a, mut a_events) = socket(&server.base_url(), Some(json!({"token": "wrong"})));
    let reason = wait_for(&mut a_events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert!(matches!(&reason, DisconnectReason::ConnectError { message, .. } if message == "invalid token"), "{reason:?}");

    let (b, mut b_events) = socket(&server.base_url(), None);
    connected(&mut b_events).await;
    let refused = ask(&b, "authenticate", json!({"token": "wrong"})).await;
    assert_eq!(refused, json!({"success": false, "error": {"message": "invalid access token", "code": "UNAUTHORIZED"}}));
    // Then the server disconnects the socket.
    let reason = wait_for(&mut b_events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert_eq!(reason, DisconnectReason::ServerDisconnect { namespace: "/".into() });
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_switches_refuse_disconnect_pause_and_hold() {
    let server = server().await;
    let http = reqwest::Client::new();
    let engine_io = format!("{}/ws/?EIO=4&transport=polling", server.base_url());
    assert_eq!(http.get(&engine_io).send().await.expect("answers").status().as_u16(), 200, "an Engine.IO handshake");
    assert_eq!(admin(&server, reqwest::Method::POST, "/_admin/ws/refuse").await.1["data"]["refusing"], true);
    let refused = http.get(&engine_io).send().await.expect("answers");
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.json::<Value>().await.expect("JSON")["error"]["code"], "SERVICE_UNAVAILABLE");
    admin(&server, reqwest::Method::DELETE, "/_admin/ws/refuse").await;
    assert_eq!(http.get(&engine_io).send().await.expect("answers").status().as_u16(), 200);

    let (client, mut events) = socket(&server.base_url(), None);
    connected(&mut events).await;
    ask(&client, "authenticate", json!({"token": TOKEN})).await;
    ask(&client, "join", json!({"room": "company:local-company"})).await;
    let rest = rest(&server);
    let chat = ChatId::new(CHAT_1);

    // Dropped: never delivered.
    admin(&server, reqwest::Method::POST, "/_admin/ws/pause").await;
    rest.send_message(&chat, &NewMessage::text("dropped")).await.expect("sent");
    // Held: delivered on resume, before anything newer.
    let (_, status) = admin(&server, reqwest::Method::POST, "/_admin/ws/pause?mode=hold").await;
    assert_eq!(status["data"]["delivery"], "hold");
    let held = rest.send_message(&chat, &NewMessage::text("held")).await.expect("sent");
    let (_, status) = admin(&server, reqwest::Method::GET, "/_admin/ws").await;
    assert_eq!((status["data"]["held"].as_u64(), status["data"]["dropped"].as_u64()), (Some(1), Some(1)));
    admin(&server, reqwest::Method::POST, "/_admin/ws/resume").await;
    let live = rest.send_message(&chat, &NewMessage::text("live")).await.expect("sent");
    assert_eq!(event(&mut events, "MESSAGE_CREATED").await["id"], held.id.as_str());
    assert_eq!(event(&mut events, "MESSAGE_CREATED").await["id"], live.id.as_str());
    assert_eq!(admin(&server, reqwest::Method::POST, "/_admin/ws/pause?mode=live").await.0, 400);
    assert_eq!(admin(&server, reqwest::Method::POST, "/_admin/ws/pause?mode=later").await.0, 400);

    let (_, dropped) = admin(&server, reqwest::Method::POST, "/_admin/ws/disconnect").await;
    assert_eq!(dropped["data"]["disconnected"], 1);
    let reason = wait_for(&mut events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert_eq!(reason, DisconnectReason::ServerDisconnect { namespace: "/".into() });
    // The client comes back by itself, unauthenticated until it says so again.
    wait_for(&mut events, |e| matches!(e, Event::Connected { reconnected: true, .. }).then_some(())).await;
    let (_, status) = admin(&server, reqwest::Method::GET, "/_admin/ws").await;
    assert_eq!((status["data"]["sockets"].as_u64(), status["data"]["joined"].as_u64()), (Some(1), Some(0)));
    client.close().await;
}

/// The binary serves Socket.IO on its REST port, with the company and event names of its flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_socket_io_with_its_flags() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("bound").port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_happ-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--token", TOKEN, "--company-id", "acme", "--auth-event", "login", "--join-event", "subscribe"])
        .args(["--room-template", "org:{companyId}"])
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let (client, mut events) = socket(&base, Some(json!({"token": TOKEN})));
    connected(&mut events).await;
    assert_eq!(ask(&client, "login", json!({"token": TOKEN})).await["companyId"], "acme");
    assert_eq!(ask(&client, "subscribe", json!({"room": "org:acme"})).await["success"], true);
    client.close().await;
    child.start_kill().expect("kill our child");
    let _ = child.wait().await;
}
