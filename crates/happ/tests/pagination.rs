//! Listings over many pages, and servers whose pagination cannot be trusted.

mod common;

use std::collections::HashSet;

use common::*;
use happ_client::model::{AssistantId, ChatId, NewMessage};
use happ_client::{HappClient, PageRequest, PagingLimits};

#[tokio::test]
async fn reads_237_messages_over_12_pages() {
    let server = server().await;
    let client = client(&server);
    let chat = client.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat");
    let mut sent = Vec::new();
    for i in 0..237 {
        sent.push(client.send_message(&chat.id, &NewMessage::text(format!("message {i}"))).await.expect("send").id);
    }
    server.state().reset_stats();

    let all = client.messages(&chat.id).await.expect("all pages");
    assert_eq!(all.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), sent, "every message once, in order");
    let stats = server.state().stats().route("GET /api/chats/{chatId}/messages");
    assert_eq!(stats.requests, 12, "ceil(237 / 20) pages");

    let last = client.messages_page(&chat.id, PageRequest::new(12, 20)).await.expect("page 12");
    assert_eq!((last.items.len(), last.total_count, last.page), (17, Some(237), 12));
    assert_eq!(last.items[16].content, "message 236");
    let beyond = client.messages_page(&chat.id, PageRequest::new(13, 20)).await.expect("page 13");
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total_count, Some(237));
}

#[tokio::test]
async fn reads_all_chats_with_a_small_page_size() {
    let server = server().await;
    let mut config = config(&server.base_url());
    config.paging = PagingLimits { take: 7, ..PagingLimits::default() };
    let client = HappClient::new(config).expect("valid");
    for _ in 0..30 {
        client.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("chat");
    }
    server.state().reset_stats();
    let chats = client.chats().await.expect("all");
    assert_eq!(chats.len(), 32);
    assert_eq!(chats.iter().map(|c| c.id.clone()).collect::<HashSet<_>>().len(), 32);
    assert_eq!(server.state().stats().route("GET /api/chats").requests, 5, "ceil(32 / 7)");
}

/// A page of `n` fake messages with ids `from..from+n`.
fn messages_page(from: u32, n: u32, total: Option<u64>) -> Vec<u8> {
    let items: Vec<String> = (from..from + n)
        .map(|i| format!(r#"{{"id":"m{i}","chatId":"c","content":"{i}","role":"user","createdAt":"2025-01-01T00:00:00.{:03}Z"}}"#, i % 1000))
        .collect();
    let total = total.map(|t| format!(r#","totalCount":{t}"#)).unwrap_or_default();
    json(200, &format!(r#"{{"success":true,"data":[{}]{total}}}"#, items.join(",")))
}

#[tokio::test]
async fn a_count_that_is_too_high_stops_at_the_first_empty_page() {
    let raw = raw_server(|req| {
        let page = query_param(&req.target, "page").unwrap_or(1);
        if page <= 2 { messages_page((page - 1) * 20, 20, Some(1_000_000)) } else { messages_page(0, 0, Some(1_000_000)) }
    })
    .await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let all = client.messages(&ChatId::new("c")).await.expect("returns what exists");
    assert_eq!(all.len(), 40);
    assert_eq!(raw.count(), 3);
}

#[tokio::test]
async fn a_server_that_ignores_page_is_read_once() {
    let raw = raw_server(|_| messages_page(0, 20, Some(500))).await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let all = client.messages(&ChatId::new("c")).await.expect("returns what exists");
    assert_eq!(all.len(), 20, "no duplicates");
    assert_eq!(raw.count(), 2, "the second page brought nothing new: stop");
}

#[tokio::test]
async fn a_listing_that_never_ends_hits_the_page_limit() {
    let raw = raw_server(|req| {
        let page = query_param(&req.target, "page").unwrap_or(1);
        messages_page((page - 1) * 20, 20, Some(u64::MAX))
    })
    .await;
    let mut config = config(&raw.base_url());
    config.paging = PagingLimits { take: 20, max_pages: 25, max_items: 100_000 };
    let client = HappClient::new(config).expect("valid");
    let all = client.messages(&ChatId::new("c")).await.expect("returns what it read");
    assert_eq!(all.len(), 500);
    assert_eq!(raw.count(), 25);
}

#[tokio::test]
async fn without_total_count_reads_until_a_short_page() {
    let raw = raw_server(|req| {
        let page = query_param(&req.target, "page").unwrap_or(1);
        let take = query_param(&req.target, "take").unwrap_or(20);
        let n = if page < 3 { take } else { 5 };
        messages_page((page - 1) * take, n, None)
    })
    .await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let all = client.messages(&ChatId::new("c")).await.expect("all");
    assert_eq!(all.len(), 45);
    assert_eq!(raw.count(), 3);
}

#[tokio::test]
async fn an_unpaginated_listing_that_turns_out_paginated_is_read_page_by_page() {
    // `GET /api/phones` is documented without pagination. This server pages it anyway (3 per
    // page by default, `take` honoured) and says so with `totalCount`.
    let raw = raw_server(|req| {
        let page = query_param(&req.target, "page").unwrap_or(1);
        let take = query_param(&req.target, "take").unwrap_or(3);
        let start = (page - 1) * take;
        let items: Vec<String> = (start..(start + take).min(8))
            .map(|i| format!(r#"{{"id":"p{i}","phoneNumber":"+1555{i}","sipLogin":"{i}","password":"x","telephonyUrl":"h","codec":"alaw"}}"#))
            .collect();
        json(200, &format!(r#"{{"success":true,"data":[{}],"totalCount":8,"page":{page}}}"#, items.join(",")))
    })
    .await;
    let client = HappClient::new(config(&raw.base_url())).expect("valid");
    let phones = client.phones().await.expect("all");
    assert_eq!(phones.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
    assert_eq!(raw.count(), 2, "one plain request, then one page of 20");
}
