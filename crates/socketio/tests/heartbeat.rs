//! The Engine.IO heartbeat against a scripted server: pings are answered, and a server that
//! goes silent after the handshake is detected and left. Also checks the URL and headers.
mod common;

use common::{PATH, Saw, Script, client_config, connected, fake_server, wait_for};
use happ_socketio::{DisconnectReason, Event, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_detected_and_left() {
    let (url, mut seen) = fake_server(100, 100, Script::Silent).await;
    let mut config = client_config(&url);
    config.query.push(("tenant".into(), "acme corp".into()));
    config.headers.push(("Authorization".into(), "Bearer t0ken".into()));
    let (client, mut events) = connect(config).unwrap();
    assert!(!connected(&mut events, "/").await);
    let reason = wait_for(&mut events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
    assert!(matches!(events.recv().await, Some(Event::Reconnecting { attempt: 1, .. })));
    // The next connection works the same way, and is a reconnection.
    assert!(connected(&mut events, "/").await);
    let reason = wait_for(&mut events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
    client.close().await;

    let Some(Saw::Request { uri, authorization }) = seen.recv().await else { panic!("no request") };
    let (path, query) = uri.split_once('?').unwrap();
    assert_eq!(path, format!("{PATH}/"));
    let params: Vec<&str> = query.split('&').collect();
    assert_eq!(params, ["EIO=4", "transport=websocket", "tenant=acme%20corp"]);
    assert_eq!(authorization.as_deref(), Some("Bearer t0ken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_keep_the_connection() {
    const PINGS: usize = 20;
    // A generous heartbeat (2 s between pings) against pings every 20 ms: the margin is wide.
    let (url, mut seen) = fake_server(1000, 1000, Script::Ping(PINGS)).await;
    let (client, mut events) = connect(client_config(&url)).unwrap();
    connected(&mut events, "/").await;
    let mut pongs = 0;
    while pongs < PINGS {
        match tokio::time::timeout(common::PATIENCE, seen.recv()).await.expect("no pong in time") {
            Some(Saw::Frame(f)) => {
                assert_eq!(f, "3");
                pongs += 1;
            }
            Some(Saw::Request { .. }) => {}
            None => panic!("fake server gone"),
        }
    }
    assert!(std::iter::from_fn(|| events.try_recv().ok()).all(|e| !matches!(e, Event::Disconnected { .. })), "no disconnect while pings come");
    client.close().await;
}
