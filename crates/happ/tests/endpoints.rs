//! Every endpoint of the API reference, round-tripped against the local server over HTTP.

mod common;

use common::*;
use happ_client::Error;
use happ_client::model::{
    AiDisableReason, AssistantId, AssistantUpdate, ChatId, ChatUpdate, Codec, HttpMethod, KnowledgeId, KnowledgeType, MessageId, NewAssistant, NewKnowledge,
    NewMessage, NewPhone, NewTool, ParamType, PhoneId, Role, ToolParam, ToolType,
};
use happ_server::Event;

#[tokio::test]
async fn assistants_list_get_create_update() {
    let server = server().await;
    let client = client(&server);

    let list = client.assistants().await.expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "Support Bot");
    assert_eq!(list[1].language.as_deref(), Some("uk"));

    let one = client.assistant(&AssistantId::new(SUPPORT_BOT)).await.expect("get");
    assert_eq!(one, list[0]);

    let new = NewAssistant {
        name: "Sales Bot".into(),
        prompt_text: Some("You sell.".into()),
        first_message: Some("Hi!".into()),
        llm_provider: Some("openai".into()),
        llm_model: Some("gpt-4o".into()),
        language: Some("en".into()),
    };
    let created = client.create_assistant(&new).await.expect("create");
    assert_eq!((created.name.as_str(), created.prompt_text.as_str()), ("Sales Bot", "You sell."));

    let updated = client.update_assistant(&created.id, &AssistantUpdate { name: Some("Updated Name".into()), ..Default::default() }).await.expect("update");
    assert_eq!(updated.name, "Updated Name");
    assert_eq!(updated.first_message.as_deref(), Some("Hi!"), "fields not sent are kept");
    assert_eq!(client.assistant(&created.id).await.expect("get"), updated);
    assert_eq!(client.assistants().await.expect("list").len(), 3);

    let missing = client.assistant(&AssistantId::new("nope")).await.expect_err("unknown id");
    assert!(matches!(&missing, Error::Api { status: 404, code: Some(c), .. } if c == "NOT_FOUND"), "{missing:?}");
}

#[tokio::test]
async fn chats_and_messages_with_events() {
    let server = server().await;
    let client = client(&server);
    let mut events = server.events();

    let chat = client.create_chat(&AssistantId::new(SUPPORT_BOT)).await.expect("create chat");
    assert!(chat.is_under_ai_control);
    assert_eq!(chat.assistant_id.as_ref().map(AssistantId::as_str), Some(SUPPORT_BOT));

    let hello = client.send_message(&chat.id, &NewMessage::text("Hello! How can I help?")).await.expect("send");
    assert_eq!(hello.role, Role::Assistant, "the API stores messages without a role as the assistant's");
    let question = client.send_message(&chat.id, &NewMessage { content: "Is the shop open?".into(), role: Some(Role::User) }).await.expect("send");
    assert_eq!(question.role, Role::User);

    let messages = client.messages(&chat.id).await.expect("list");
    assert_eq!(messages, vec![hello.clone(), question.clone()]);
    let page = client.messages_page(&chat.id, happ_client::PageRequest::new(1, 1)).await.expect("page");
    assert_eq!((page.items.len(), page.total_count, page.page), (1, Some(2), 1));

    let off = client.set_ai_control(&chat.id, false).await.expect("AI off");
    assert!(!off.is_under_ai_control);
    assert_eq!(off.ai_disable_reason, Some(AiDisableReason::Manual));
    let on = client.update_chat(&chat.id, &ChatUpdate { is_under_ai_control: Some(true), ..Default::default() }).await.expect("AI on");
    assert!(on.is_under_ai_control);
    assert_eq!(on.ai_disable_reason, None);

    // The newest chat comes first; the seeded ones follow.
    let first = client.chats_page(happ_client::PageRequest::default()).await.expect("page");
    assert_eq!(first.total_count, Some(3));
    assert_eq!(first.items[0].id, chat.id);
    let all = client.chats().await.expect("all");
    assert_eq!(all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [chat.id.as_str(), CHAT_2, CHAT_1]);
    assert_eq!(all[1].ai_disable_reason, Some(AiDisableReason::Auto));

    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        names.push(event.name());
        if let Event::MessageCreated(m) = &event {
            assert_eq!(m.chat_id, chat.id);
        }
    }
    assert_eq!(names, ["CHAT_CREATED", "MESSAGE_CREATED", "MESSAGE_CREATED", "CHAT_MODE_CHANGED", "CHAT_MODE_CHANGED"]);

    // The assistant's own hand-off (turnOffAiMode), as the real-time layer would see it.
    server.state().write(|s| s.hand_off(&chat.id)).expect("hand off");
    let after = client.chats().await.expect("all");
    assert_eq!(after[0].ai_disable_reason, Some(AiDisableReason::Auto));
    match events.try_recv().expect("an event") {
        Event::ChatModeChanged(c) => assert_eq!((c.chat_id, c.is_under_ai_control, c.ai_disable_reason), (chat.id.clone(), false, Some(AiDisableReason::Auto))),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn messages_since_for_catch_up() {
    let server = server().await;
    let client = client(&server);
    let chat = ChatId::new(CHAT_1);
    let seeded = client.messages(&chat).await.expect("list");
    assert_eq!(seeded.len(), 3);
    let new = client.send_message(&chat, &NewMessage::text("Your line is fine now.")).await.expect("send");

    let since = client.messages_since(&chat, Some(&seeded[2].id)).await.expect("since");
    assert_eq!(since, vec![new.clone()]);
    let since = client.messages_since(&chat, Some(&seeded[0].id)).await.expect("since");
    assert_eq!(since.iter().map(|m| &m.id).collect::<Vec<_>>(), [&seeded[1].id, &seeded[2].id, &new.id]);
    assert_eq!(client.messages_since(&chat, Some(&new.id)).await.expect("since"), vec![]);
    // Unknown or no cursor: everything, for the caller to deduplicate.
    assert_eq!(client.messages_since(&chat, Some(&MessageId::new("gone"))).await.expect("since").len(), 4);
    assert_eq!(client.messages_since(&chat, None).await.expect("since").len(), 4);
}

#[tokio::test]
async fn knowledge_list_create_delete() {
    let server = server().await;
    let client = client(&server);
    let bot = AssistantId::new(SUPPORT_BOT);

    let list = client.knowledge(&bot).await.expect("list");
    assert_eq!(list.iter().map(|k| &k.kind).collect::<Vec<_>>(), [&KnowledgeType::Text, &KnowledgeType::Url]);
    assert_eq!(list[0].description.as_deref(), Some("Opening hours and prices"));
    assert!(client.knowledge(&AssistantId::new(UK_BOT)).await.expect("list").is_empty());

    let entry = client
        .create_knowledge(&NewKnowledge {
            assistant_id: bot.clone(),
            kind: KnowledgeType::Text,
            name: "Holidays".into(),
            description: None,
            resource_content: "Closed on 24 August.".into(),
        })
        .await
        .expect("create");
    assert_eq!(entry.resource_content, "Closed on 24 August.");
    assert_eq!(client.knowledge(&bot).await.expect("list").len(), 3);

    client.delete_knowledge(&entry.id).await.expect("delete");
    assert_eq!(client.knowledge(&bot).await.expect("list").len(), 2);
    let again = client.delete_knowledge(&entry.id).await.expect_err("already deleted");
    assert_eq!((again.status(), again.code()), (Some(404), Some("NOT_FOUND")));
    let bad = client.delete_knowledge(&KnowledgeId::new("a/b?c")).await.expect_err("ids are path-encoded");
    assert_eq!(bad.status(), Some(404));
}

#[tokio::test]
async fn phones_list_add_link() {
    let server = server().await;
    let client = client(&server);

    let phones = client.phones().await.expect("list");
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[0].codec, Codec::Alaw);
    assert_eq!(phones[0].password.expose(), "local-dev-password");
    assert!(!format!("{phones:?}").contains("local-dev-password"), "passwords are redacted in Debug");
    assert_eq!(phones[1].assistant_id, None);

    let phone = client
        .create_phone(&NewPhone {
            phone_number: "+380441112233".into(),
            sip_login: "2001".into(),
            password: "pw-2001".into(),
            telephony_url: "sip.provider.com".into(),
            codec: Codec::Ulaw,
            assistant_id: None,
        })
        .await
        .expect("add");
    assert_eq!(phone.codec, Codec::Ulaw);

    let linked = client.link_phone(&phone.id, Some(&AssistantId::new(UK_BOT))).await.expect("link");
    assert_eq!(linked.assistant_id.as_ref().map(AssistantId::as_str), Some(UK_BOT));
    let unlinked = client.link_phone(&PhoneId::new(PHONE_1), None).await.expect("unlink");
    assert_eq!(unlinked.assistant_id, None);
    let phones = client.phones().await.expect("list");
    assert_eq!(phones.len(), 3);
    assert_eq!(phones[2].assistant_id.as_ref().map(AssistantId::as_str), Some(UK_BOT));

    let duplicate = client
        .create_phone(&NewPhone {
            phone_number: "+380501234567".into(),
            sip_login: "x".into(),
            password: "x".into(),
            telephony_url: "x".into(),
            codec: Codec::Alaw,
            assistant_id: None,
        })
        .await
        .expect_err("number exists");
    assert_eq!((duplicate.status(), duplicate.code()), (Some(409), Some("CONFLICT")));
    let unknown = client.link_phone(&PhoneId::new(PHONE_2), Some(&AssistantId::new("nope"))).await.expect_err("unknown assistant");
    assert_eq!(unknown.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn tools_list_create() {
    let server = server().await;
    let client = client(&server);
    let bot = AssistantId::new(SUPPORT_BOT);

    let tools = client.tools(&bot).await.expect("list");
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].kind, ToolType::WebhookAction);
    assert_eq!(tools[1].method, HttpMethod::Put);
    assert!(!format!("{tools:?}").contains("whsec_local_example"));

    let tool = client
        .create_tool(&NewTool {
            assistant_id: bot.clone(),
            name: "create_booking".into(),
            description: "Book a visit".into(),
            kind: ToolType::WebhookAction,
            api_call_url: Some("https://example.com/book".into()),
            webhook_secret: Some("s3cret".into()),
            method: None,
            params: vec![
                ToolParam { name: "date".into(), kind: ParamType::String, description: "YYYY-MM-DD".into(), is_required: true },
                ToolParam { name: "people".into(), kind: ParamType::Number, description: "How many".into(), is_required: false },
            ],
        })
        .await
        .expect("create");
    assert_eq!(tool.method, HttpMethod::Post, "POST is the default method");
    assert_eq!(tool.webhook_secret.as_ref().map(happ_client::Secret::expose), Some("s3cret"));
    assert_eq!(tool.params.len(), 2);
    let tools = client.tools(&bot).await.expect("list");
    assert_eq!(tools.last(), Some(&tool));
    assert!(client.tools(&AssistantId::new(UK_BOT)).await.expect("list").is_empty());

    let client_tool = client
        .create_tool(&NewTool {
            assistant_id: bot,
            name: "show_map".into(),
            description: "Show the coverage map".into(),
            kind: ToolType::ClientTool,
            api_call_url: None,
            webhook_secret: None,
            method: Some(HttpMethod::Get),
            params: vec![],
        })
        .await
        .expect("client tools need no URL");
    assert_eq!(client_tool.kind, ToolType::ClientTool);
}
