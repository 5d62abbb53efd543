//! The CONNECT auth payload: a good token connects, a bad one is refused and closes the client.
mod common;

use common::{Seen, Server, auth, client_config, connected, event, wait_for};
use happ_socketio::{ClientError, DisconnectReason, Event, connect};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_connects() {
    let mut server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    assert!(!connected(&mut events, "/").await, "a first connection is not a reconnection");
    assert_eq!(event(&mut events, "welcome").await, [json!({"ns": "/"})]);
    assert_eq!(server.next_seen().await, Seen::Connected("/".into()));
    client.close().await;
    wait_for(&mut events, |e| matches!(e, Event::Closed).then_some(())).await;
    assert!(client.is_closed());
    assert_eq!(client.emit("msg", json!(1)).await, Err(ClientError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_and_the_client_closes() {
    let server = Server::start().await;
    let mut config = client_config(&server.url());
    config.session.auth = Some(auth("bad-token"));
    let (client, mut events) = connect(config).unwrap();
    let reason = wait_for(&mut events, |e| match e {
        Event::Disconnected { reason } => Some(reason.clone()),
        Event::Connected { .. } => panic!("connected with a bad token"),
        _ => None,
    })
    .await;
    let DisconnectReason::ConnectError { namespace, message, .. } = reason else { panic!("{reason:?}") };
    assert_eq!((namespace.as_str(), message.as_str()), ("/", "invalid token"));
    assert_eq!(events.recv().await, Some(Event::Closed));
    assert_eq!(events.recv().await, None, "the task ends after Closed");
    assert!(client.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_at_all_is_refused() {
    let server = Server::start().await;
    let mut config = client_config(&server.url());
    config.session.auth = None;
    let (_client, mut events) = connect(config).unwrap();
    let reason = wait_for(&mut events, |e| if let Event::Disconnected { reason } = e { Some(reason.clone()) } else { None }).await;
    assert!(matches!(reason, DisconnectReason::ConnectError { .. }), "{reason:?}");
}
