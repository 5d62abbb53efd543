//! Events both ways, acknowledgements both ways, a second namespace, an ack timeout.
mod common;

use std::time::Duration;

use common::{Seen, Server, client_config, connected, event, wait_for};
use happ_socketio::{AckFailure, ClientError, Event, connect};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_events_reach_the_client() {
    let server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    connected(&mut events, "/").await;
    for i in 0..20 {
        client.emit("tick-me", json!({"i": i})).await.unwrap();
        assert_eq!(event(&mut events, "tick").await, [json!({"i": i})]);
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_acknowledges_our_emits() {
    let server = Server::start().await;
    let (client, _events) = connect(client_config(&server.url())).unwrap();
    // Asked before the connection is up: the ack still comes.
    let answer = client.emit_with_ack("echo", json!({"x": 1}), Duration::from_secs(10)).await.unwrap();
    assert_eq!(answer, [json!({"x": 1})]);
    for i in 0..10 {
        let answer = client.emit_with_ack("echo", json!(i), Duration::from_secs(10)).await.unwrap();
        assert_eq!(answer, [json!(i)]);
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_emit_times_out() {
    let server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    connected(&mut events, "/").await;
    let err = client.emit_with_ack("nobody-listens", json!(1), Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err, ClientError::Ack(AckFailure::Timeout));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_acknowledge_the_servers_questions() {
    let mut server = Server::start().await;
    let (client, mut events) = connect(client_config(&server.url())).unwrap();
    connected(&mut events, "/").await;
    client.emit("ask", json!("what is your name?")).await.unwrap();
    let (namespace, args, ack) = wait_for(&mut events, |e| match e {
        Event::Event { namespace, name, args, ack } if name == "question" => Some((namespace.clone(), args.clone(), *ack)),
        _ => None,
    })
    .await;
    assert_eq!(args, [json!("what is your name?")]);
    let ack = ack.expect("the server asked for an ack");
    client.ack(&namespace, ack, vec![json!("gateway")]).await.unwrap();
    let answer = loop {
        match server.next_seen().await {
            Seen::Answer(answer) => break answer,
            _ => continue,
        }
    };
    // socketioxide hands a one-argument ack over as the argument itself.
    assert_eq!(answer, json!("gateway"));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_namespace_has_its_own_traffic() {
    let mut server = Server::start().await;
    let mut config = client_config(&server.url());
    config.session.namespaces = vec!["/".into(), "/admin".into()];
    let (client, mut events) = connect(config).unwrap();
    client.emit_to("/admin", "msg", vec![json!("for admin")]).await.unwrap();
    client.emit("msg", json!("for main")).await.unwrap();
    let mut msgs = Vec::new();
    while msgs.len() < 2 {
        if let Seen::Msg(ns, data) = server.next_seen().await {
            msgs.push((ns, data));
        }
    }
    msgs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(msgs, [("/".to_string(), json!("for main")), ("/admin".to_string(), json!("for admin"))]);
    let welcome_admin = wait_for(&mut events, |e| match e {
        Event::Event { namespace, name, args, .. } if namespace == "/admin" && name == "welcome" => Some(args.clone()),
        _ => None,
    })
    .await;
    assert_eq!(welcome_admin, [json!({"ns": "/admin"})]);
    let answer = client.emit_with_ack_to("/admin", "echo", vec![json!("a")], Duration::from_secs(10)).await.unwrap();
    assert_eq!(answer, [json!("a")]);
    client.close().await;
}
