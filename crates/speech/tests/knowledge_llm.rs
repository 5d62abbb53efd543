//! The knowledge-base LLM: answers from a small shop's knowledge entries to questions worded
//! unlike the entries, fallbacks, hand-off and hang-up tool calls, streaming and cancel.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

use happ_speech::local::{KnowledgeBase, KnowledgeEntry, KnowledgeLlm, KnowledgeOptions};
use happ_speech::{ChatRequest, Error, FinishReason, LlmEvent, LlmProvider, LlmStream, Message, ToolCall, ToolDef};

fn shop() -> KnowledgeLlm {
    let base = KnowledgeBase::new(vec![
        KnowledgeEntry::new(
            "Opening hours",
            "We are open Monday to Friday from 9 a.m. to 6 p.m., and on Saturday from 10 a.m. to 4 p.m. We are closed on Sundays and public holidays.",
        ),
        KnowledgeEntry::new(
            "Address",
            "Our store is at 12 Harbour Street in Springfield, next to the central station. Free parking is available behind the building.",
        ),
        KnowledgeEntry::new(
            "Prices",
            "A standard bicycle service costs 49 euros. A full overhaul costs 129 euros, parts not included. Puncture repairs are 15 euros per wheel.",
        ),
        KnowledgeEntry::new(
            "Return policy",
            "You can return any item within 30 days of purchase for a full refund. Items must be unused and in their original packaging. \
             Refunds go back to the original payment method within 5 business days.",
        ),
        KnowledgeEntry::new("FAQ", "Q: Do you deliver?\nA: Yes, we deliver within 20 kilometres for a flat fee of 10 euros."),
    ]);
    KnowledgeLlm::new(base, KnowledgeOptions::default())
}

fn tool(name: &str, parameters: serde_json::Value) -> ToolDef {
    ToolDef { name: name.into(), description: String::new(), parameters }
}

/// Polls to the end; the stream never waits, so a no-op waker does.
fn run(stream: &mut dyn LlmStream) -> Vec<Result<LlmEvent, Error>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut events = Vec::new();
    loop {
        match stream.poll_event(&mut cx) {
            Poll::Ready(Some(e)) => events.push(e),
            Poll::Ready(None) => return events,
            Poll::Pending => panic!("the knowledge LLM never waits"),
        }
    }
}

/// The answer's text, its tool calls and its finish reason.
fn ask_with(llm: &KnowledgeLlm, messages: Vec<Message>, tools: Vec<ToolDef>) -> (String, Vec<ToolCall>, FinishReason) {
    let mut request = ChatRequest::new("local", messages);
    request.tools = tools;
    let mut stream = llm.chat(request).expect("a stream");
    let (mut text, mut calls, mut finish) = (String::new(), Vec::new(), None);
    for event in run(stream.as_mut()) {
        match event.expect("no error") {
            LlmEvent::Text(t) => text.push_str(&t),
            LlmEvent::ToolCall(c) => calls.push(c),
            LlmEvent::Done(summary) => finish = Some(summary.finish),
        }
    }
    (text, calls, finish.expect("Done at the end"))
}

fn ask(llm: &KnowledgeLlm, question: &str) -> String {
    ask_with(llm, vec![Message::System("You are the shop's assistant.".into()), Message::User(question.into())], Vec::new()).0
}

fn handoff_tools() -> Vec<ToolDef> {
    vec![
        tool("turnOffAiMode", serde_json::json!({"type": "object", "properties": {"reason": {"type": "string"}}})),
        tool("hangup", serde_json::json!({"type": "object", "properties": {}})),
    ]
}

#[test]
fn questions_worded_unlike_the_entries_find_them() {
    let llm = shop();
    for (question, expected) in [
        ("When do you open on Saturdays?", "on Saturday from 10 a.m. to 4 p.m."),
        ("Are you open on Sunday?", "closed on Sundays"),
        ("Where are you located?", "12 Harbour Street"),
        ("Is there somewhere to park my car?", "Free parking"),
        ("How much is a service for my bike?", "standard bicycle service costs 49 euros"),
        ("How much do you charge to repair a puncture?", "15 euros per wheel"),
        ("Can I send back something I bought?", "return any item within 30 days"),
        ("When will I get my money back?", "within 5 business days"),
        ("Can you deliver to my home?", "we deliver within 20 kilometres"),
    ] {
        let answer = ask(&llm, question);
        assert!(answer.contains(expected), "{question:?} got {answer:?}");
    }
}

#[test]
fn an_faq_question_is_answered_with_its_answer() {
    let answer = ask(&shop(), "Do you deliver?");
    assert_eq!(answer, "Yes, we deliver within 20 kilometres for a flat fee of 10 euros.");
}

#[test]
fn answers_stay_within_one_entry_and_three_sentences() {
    let answer = ask(&shop(), "What is your return policy for refunds?");
    assert!(answer.starts_with("You can return any item"), "{answer:?}");
    assert!(!answer.contains("euros") && !answer.contains("open"), "{answer:?}");
}

#[test]
fn at_most_three_sentences() {
    let text = "Parking is free for customers. Parking spaces are behind the store. Parking for bicycles is at the front. \
                Parking for vans is on Mill Road. Parking tickets are validated at the till.";
    let base = KnowledgeBase::new(vec![KnowledgeEntry::new("Parking", text), KnowledgeEntry::new("Hours", "We are open every day from 8 to 8.")]);
    assert_eq!(base.len(), 6);
    let answer = base.answer("Tell me about parking.", 0.45, 3).expect("an answer");
    assert_eq!(answer.matches("Parking").count(), 3, "{answer:?}");
}

#[test]
fn unrelated_questions_get_the_fallback() {
    let llm = shop();
    let options = KnowledgeOptions::default();
    for question in ["Do you sell cars?", "What will the weather be like tomorrow?", "Can I bring my dog to the concert?", "Do you sell gift vouchers online?"]
    {
        assert_eq!(ask(&llm, question), options.fallback_no_handoff, "{question}");
        let (text, calls, _) = ask_with(&llm, vec![Message::User(question.into())], handoff_tools());
        assert_eq!((text.as_str(), calls.len()), (options.fallback.as_str(), 0), "{question}");
    }
}

#[test]
fn the_fallback_is_configurable() {
    let options = KnowledgeOptions { fallback_no_handoff: "Sorry, no idea.".into(), ..KnowledgeOptions::default() };
    let llm = KnowledgeLlm::new(KnowledgeBase::new(Vec::new()), options);
    assert_eq!(ask(&llm, "What are your opening hours?"), "Sorry, no idea.");
}

#[test]
fn asking_for_a_person_calls_the_handoff_tool_when_offered() {
    let llm = shop();
    for question in ["Can I talk to a person?", "I'd like to speak to a real human, please.", "Operator!"] {
        let (text, calls, finish) = ask_with(&llm, vec![Message::User(question.into())], handoff_tools());
        assert_eq!(text, "", "{question}: no text, the tool call instead");
        assert_eq!(finish, FinishReason::ToolCalls);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "turnOffAiMode");
        let args = calls[0].arguments_json().expect("JSON arguments");
        assert!(args["reason"].as_str().is_some_and(|r| r.contains(question)), "{args}");
    }
    // A transfer tool with no parameters gets `{}`.
    let (_, calls, _) = ask_with(&llm, vec![Message::User("Connect me to an agent.".into())], vec![tool("transfer_call", serde_json::json!({}))]);
    assert_eq!(calls[0].arguments, "{}");
    // Not offered: a spoken answer instead.
    let (text, calls, finish) = ask_with(&llm, vec![Message::User("Can I talk to a person?".into())], Vec::new());
    assert_eq!((text, calls.len(), finish), (KnowledgeOptions::default().no_handoff, 0, FinishReason::Stop));
}

#[test]
fn yes_to_the_fallback_offer_hands_off() {
    let llm = shop();
    let fallback = KnowledgeOptions::default().fallback;
    let messages =
        vec![Message::User("Do you sell cars?".into()), Message::Assistant { content: fallback, tool_calls: Vec::new() }, Message::User("Yes, please.".into())];
    let (_, calls, _) = ask_with(&llm, messages, handoff_tools());
    assert_eq!(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["turnOffAiMode"]);
}

#[test]
fn after_the_handoff_result_it_says_one_line_and_does_not_call_again() {
    let llm = shop();
    let call = ToolCall { id: "call_turnOffAiMode".into(), name: "turnOffAiMode".into(), arguments: "{}".into() };
    let messages = vec![
        Message::User("Can I talk to a person?".into()),
        Message::Assistant { content: String::new(), tool_calls: vec![call] },
        Message::Tool { call_id: "call_turnOffAiMode".into(), content: "{\"ok\":true}".into() },
    ];
    let (text, calls, _) = ask_with(&llm, messages, handoff_tools());
    assert_eq!((text, calls.len()), (KnowledgeOptions::default().after_handoff, 0));
}

#[test]
fn greetings_thanks_and_goodbyes() {
    let llm = shop();
    let o = KnowledgeOptions::default();
    assert_eq!(ask(&llm, "Hi there, good morning!"), o.greeting);
    assert_eq!(ask(&llm, "Thank you so much."), o.thanks);
    assert_eq!(ask(&llm, "No, that's all, bye!"), o.goodbye);
    // A greeting with a question answers the question.
    assert!(ask(&llm, "Hello! Where is your store?").contains("12 Harbour Street"));
    // A goodbye with hangup offered: the goodbye first, then the call.
    let (text, calls, finish) = ask_with(&llm, vec![Message::User("Thanks, goodbye!".into())], handoff_tools());
    assert_eq!((text, finish), (o.goodbye, FinishReason::ToolCalls));
    assert_eq!(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["hangup"]);
}

#[test]
fn streams_word_groups_and_measures_latency() {
    let llm = shop();
    let mut stream = llm.stream(ChatRequest::new("local", vec![Message::User("Where are you located?".into())]));
    let events: Vec<LlmEvent> = run(&mut stream).into_iter().map(|e| e.expect("no error")).collect();
    let texts: Vec<&str> = events.iter().filter_map(|e| if let LlmEvent::Text(t) = e { Some(t.as_str()) } else { None }).collect();
    assert!(texts.len() >= 4, "several deltas: {texts:?}");
    assert!(texts[..texts.len() - 1].iter().all(|t| t.ends_with(' ') && t.split_whitespace().count() == 3), "{texts:?}");
    let Some(LlmEvent::Done(summary)) = events.last() else { panic!("Done last") };
    assert_eq!(summary.chunks, texts.len() as u64);
    assert!(summary.latency.first_token.is_some() && summary.latency.first_token <= Some(summary.latency.total));
    // Deterministic: the same question, the same deltas.
    let again: Vec<LlmEvent> = run(&mut llm.stream(ChatRequest::new("local", vec![Message::User("Where are you located?".into())])))
        .into_iter()
        .map(|e| e.expect("no error"))
        .filter(|e| !matches!(e, LlmEvent::Done(_)))
        .collect();
    assert_eq!(again, events[..events.len() - 1]);
}

#[test]
fn cancel_ends_the_stream() {
    let llm = shop();
    let mut stream = llm.chat(ChatRequest::new("local", vec![Message::User("What are your opening hours?".into())])).expect("stream");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(stream.poll_event(&mut cx), Poll::Ready(Some(Ok(LlmEvent::Text(_))))));
    stream.cancel();
    assert_eq!(stream.poll_event(&mut cx), Poll::Ready(Some(Err(Error::Cancelled))));
    assert_eq!(stream.poll_event(&mut cx), Poll::Ready(None));
    // Cancelled before the first poll too.
    let mut stream = llm.chat(ChatRequest::new("local", vec![Message::User("Hello".into())])).expect("stream");
    stream.cancel();
    assert_eq!(run(stream.as_mut()), [Err(Error::Cancelled)]);
}

/// Time per answer with a 50-entry base. Run with
/// `cargo test --release -p happ-speech --test knowledge_llm -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn time_per_answer_with_fifty_entries() {
    let topics = ["opening hours", "address", "prices", "returns", "delivery", "payment", "warranty", "parking", "rentals", "repairs"];
    let entries: Vec<KnowledgeEntry> = (0..50)
        .map(|i| {
            let topic = topics[i % topics.len()];
            KnowledgeEntry::new(
                format!("{topic} {i}"),
                format!(
                    "This entry number {i} explains our {topic} for branch {i}. Customers often ask about {topic} before visiting. \
                     The {topic} rules for branch {i} were last updated in spring. Please ask the staff at branch {i} for details about {topic}."
                ),
            )
        })
        .collect();
    let llm = KnowledgeLlm::new(KnowledgeBase::new(entries), KnowledgeOptions::default());
    let questions = ["What are the opening hours of branch 17?", "How do returns work?", "Do you sell cars?", "Can I pay by card at branch 3?"];
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        for q in questions {
            let mut stream = llm.stream(ChatRequest::new("local", vec![Message::User(q.into())]));
            std::hint::black_box(run(&mut stream));
        }
    }
    let per = started.elapsed() / (rounds * questions.len() as u32);
    println!("knowledge LLM: {per:?} per answer with 50 entries (200 sentences), whole stream polled");
}
