//! Lost connections come back: a network cut, a server restart on the same port, a server
//! kicking the socket. Emits made during the outage arrive afterwards.
mod common;

use common::{Proxy, Seen, Server, client_config, connected, event, wait_for};
use happ_socketio::{DisconnectReason, Event, connect};
use serde_json::json;
use tokio::net::TcpListener;

/// Waits for a `Disconnected` and the `Reconnecting` after it; returns the reason.
async fn lost(events: &mut tokio::sync::mpsc::Receiver<Event>) -> DisconnectReason {
    let reason = wait_for(events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    wait_for(events, |e| matches!(e, Event::Reconnecting { .. }).then_some(())).await;
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_is_followed_by_a_reconnect() {
    let server = Server::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (client, mut events) = connect(client_config(&proxy.url())).unwrap();
    assert!(!connected(&mut events, "/").await);
    for round in 0..3 {
        proxy.cut();
        let reason = lost(&mut events).await;
        assert!(matches!(reason, DisconnectReason::Transport { .. } | DisconnectReason::HeartbeatTimeout), "round {round}: {reason:?}");
        assert!(connected(&mut events, "/").await, "a reconnection says so");
        client.emit("tick-me", json!(round)).await.unwrap();
        assert_eq!(event(&mut events, "tick").await, [json!(round)]);
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_on_the_same_port_is_followed_by_a_reconnect() {
    let server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    connected(&mut events, "/").await;
    let addr = server.stop().await;
    lost(&mut events).await;
    // While the server is down: attempts fail (refused), emits queue up.
    for i in 0..5 {
        client.emit("msg", json!(i)).await.unwrap();
    }
    let refused = wait_for(&mut events, |e| if let Event::Reconnecting { attempt, .. } = e { (*attempt >= 3).then_some(*attempt) } else { None }).await;
    assert!(refused >= 3);
    let mut server = Server::on(TcpListener::bind(addr).await.unwrap()).await;
    assert!(connected(&mut events, "/").await);
    assert_eq!(event(&mut events, "welcome").await, [json!({"ns": "/"})]);
    let mut msgs = Vec::new();
    while msgs.len() < 5 {
        if let Seen::Msg(_, data) = server.next_seen().await {
            msgs.push(data);
        }
    }
    // socketioxide runs each handler in its own task, so it may record them out of order (the
    // wire order is checked in emit_after_connect.rs and the session's unit tests).
    msgs.sort_by_key(|v| v.as_i64());
    assert_eq!(msgs, (0..5).map(|i| json!(i)).collect::<Vec<_>>(), "every queued emit arrives after the restart");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_disconnect_is_followed_by_a_reconnect() {
    let mut server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    connected(&mut events, "/").await;
    client.emit("kick", json!(null)).await.unwrap();
    let reason = lost(&mut events).await;
    assert_eq!(reason, DisconnectReason::ServerDisconnect { namespace: "/".into() });
    assert!(connected(&mut events, "/").await);
    client.emit("msg", json!("back")).await.unwrap();
    loop {
        if let Seen::Msg(_, data) = server.next_seen().await {
            assert_eq!(data, json!("back"));
            break;
        }
    }
    client.close().await;
}
