//! Calls to an assistant phone, end to end on loopback: SIPp places the call, the test sends and
//! receives its RTP, and the speech and LLM providers are a local server speaking the
//! OpenAI-compatible wire protocols (streamed chat completions with tool calls, streamed speech,
//! per-utterance transcription) with scripted answers. The platform is the local Happ server.
//!
//! Asserted on the RTP stream: the greeting's audio from the answer on, the answer's audio after
//! the caller's question, a barge-in that stops the old answer and never plays it again, DTMF that
//! reaches the LLM, an apology when the LLM stalls, the silence reprompt and goodbye; and the
//! transcript the gateway keeps and mirrors to the chat, in order.

#![allow(clippy::disallowed_methods)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use happ_media::Law;
use happ_server::{HappServer, Seed, ServerConfig, ServerHandle};
use happ_testkit::providers::{ChatStep, ProviderServer};
use happ_testkit::sipp::{Sipp, SippHandle};
use happ_testkit::tone::goertzel;
use support::{Gateway, Phone, Received, RtpPeer, Setup, eventually, speech};

const TRUNK: &str = "127.0.0.1:5999";
const NUMBER: &str = "+4930222";
const TOKEN: &str = "happ_gateway_test";

/// A packet louder than this carries voice (the providers' tone is -12 to -32 dBFS; silence is
/// -100).
const VOICE_DB: f64 = -45.0;

fn assistant(extra_turns: &str) -> String {
    format!(
        "[[assistants]]\nid = \"bakery\"\nname = \"Bakery\"\npromptText = \"You answer for the bakery.\"\nfirstMessage = \"Hello, this is the bakery.\"\n\
         llmProvider = \"openai\"\nllmModel = \"test-model\"\nlanguage = \"en\"\n\n\
         [[assistants.knowledge]]\nname = \"Hours\"\ntype = \"text\"\nresourceContent = \"We open at nine.\"\n\n\
         [assistants.turns]\n{extra_turns}\n"
    )
}

fn setup(server: &ProviderServer, turns: &str, speech_extra: &str) -> Setup {
    let phone = Phone { handler: "assistant".into(), assistant_id: Some("bakery".into()), ..Phone::trunk(NUMBER, TRUNK) };
    let extra = format!(
        "{}\n[speech]\nstt = \"openai\"\ntts = \"openai\"\n{speech_extra}\n[speech.openai]\nbase_url = \"{}\"\napi_key = \"sk-test\"\n",
        assistant(turns),
        server.base_url()
    );
    Setup { extra, ..Setup::with_phones(vec![phone]) }
}

fn call(gw: &Gateway, peer: &RtpPeer, talk_ms: u64) -> SippHandle {
    Sipp::scenario("uac_talk.xml")
        .placeholder("SDP_PORT", peer.port())
        .placeholder("TALK_MS", talk_ms)
        .remote(gw.sip)
        .service(NUMBER.trim_start_matches('+'))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn rtp_of(gw: &Gateway) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, gw.rtp))
}

/// Waits for the answer, lets the greeting play (2.5 s of the caller's silence), then has the
/// caller ask a question (1.2 s of speech).
fn greeted_then_asked(gw: &Gateway, peer: &RtpPeer) {
    eventually("answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"));
    peer.send_silence(rtp_of(gw), Law::Alaw, 8, 2500);
    peer.send(rtp_of(gw), Law::Alaw, 8, &speech(1200));
}

/// Received packets with voice.
fn voiced(packets: &[Received]) -> Vec<&Received> {
    packets.iter().filter(|p| p.payload_type == 8 && p.level_db(Law::Alaw) > VOICE_DB).collect()
}

fn roles_and_texts(call: &serde_json::Value) -> Vec<(String, String)> {
    call["transcript"]
        .as_array()
        .map(|t| t.iter().map(|l| (l["role"].as_str().unwrap_or("").to_owned(), l["text"].as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

fn happ() -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut config = ServerConfig::new(TOKEN);
    config.seed = serde_json::from_value::<Seed>(serde_json::json!({
        "assistants": [{"id": "bakery", "name": "Bakery", "promptText": "", "language": "en"}]
    }))
    .expect("a valid seed");
    let server = rt.block_on(HappServer::start(config)).expect("happ-server starts");
    (rt, server)
}

#[test]
fn the_assistant_greets_answers_and_the_chat_holds_the_conversation_in_order() {
    let server = ProviderServer::start();
    server.chat(vec![ChatStep::text("We open at nine. "), ChatStep::text("We close at six.")]);
    server.transcript("when do you open");
    let (_rt, happ) = happ();
    let setup = Setup { happ: Some((happ.base_url(), TOKEN.into(), 60)), ..setup(&server, "", "") };
    let gw = Gateway::start(&setup);
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 12_000);
    let answered = eventually("answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"));
    assert_eq!(answered["assistant"], "bakery", "{answered}");

    // The greeting is on the wire from the answer on.
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2500);
    let greeting = voiced(&peer.received()).len();
    assert!(greeting >= 40, "{greeting} voiced packets of greeting");
    assert_eq!(server.speech_inputs().first().map(String::as_str), Some("Hello, this is the bakery."));

    // The question, then silence while the answer comes.
    let question_end = {
        peer.send(rtp_of(&gw), Law::Alaw, 8, &speech(1500));
        Instant::now()
    };
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 4000);
    let after: Vec<Instant> = voiced(&peer.received()).iter().map(|p| p.at).filter(|t| *t > question_end).collect();
    assert!(after.len() >= 50, "the answer's audio follows the question ({} voiced packets)", after.len());

    // What the LLM was asked: the instructions with the knowledge, the greeting, the question.
    let request = server.wait_chat_requests(1, Duration::from_secs(5)).remove(0);
    assert_eq!(request["model"], "test-model");
    let messages = request["messages"].as_array().expect("messages");
    assert!(messages[0]["content"].as_str().is_some_and(|s| s.contains("We open at nine.") && s.contains("You answer for the bakery.")), "{request}");
    assert_eq!((messages[1]["role"].as_str(), messages[1]["content"].as_str()), (Some("assistant"), Some("Hello, this is the bakery.")));
    assert_eq!((messages[2]["role"].as_str(), messages[2]["content"].as_str()), (Some("user"), Some("when do you open")));
    assert!(request["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "turnOffAiMode")), "{request}");

    let out = sipp.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
    let ended = eventually("the call ended with its transcript", Duration::from_secs(10), || {
        gw.calls().into_iter().find(|c| c["state"] == "ended" && c["transcript"].as_array().is_some_and(|t| t.len() >= 3))
    });
    assert_eq!(
        roles_and_texts(&ended),
        [
            ("assistant".to_owned(), "Hello, this is the bakery.".to_owned()),
            ("caller".to_owned(), "when do you open".to_owned()),
            ("assistant".to_owned(), "We open at nine. We close at six.".to_owned())
        ],
        "{ended}"
    );
    let latency = ended["transcript"][2]["latencyMs"].as_f64().expect("the answer's latency");
    assert!(latency >= 500.0, "{latency} ms includes the 500 ms endpointing delay");
    assert!(gw.metrics().contains("happ_gateway_turn_latency_seconds_count{stage=\"first_packet\"} 1"), "{}", gw.metrics());
    let turns = eventually("the conversation counted", Duration::from_secs(5), || {
        Some(gw.metric(r#"happ_gateway_conversation_events_total{event="turns"}"#)).filter(|n| *n > 0.0)
    });
    assert_eq!(turns, 1.0);

    // The chat: opened, the three turns in order with their roles, closed after the last words.
    let messages = eventually("the chat's messages", Duration::from_secs(10), || {
        let chats: Vec<_> = happ.state().read(|s| s.chats().map(|c| c.id.clone()).collect());
        let m = happ.state().read(|s| s.messages(chats.first()?).map(<[_]>::to_vec).ok())?;
        (m.len() >= 5).then_some(m)
    });
    let got: Vec<(String, String)> = messages.iter().map(|m| (m.role.to_string(), m.content.clone())).collect();
    assert_eq!(got[0].0, "system");
    assert!(got[0].1.starts_with("Inbound call from"), "{got:?}");
    assert_eq!(
        got[1..4],
        [
            ("assistant".to_owned(), "Hello, this is the bakery.".to_owned()),
            ("user".to_owned(), "when do you open".to_owned()),
            ("assistant".to_owned(), "We open at nine. We close at six.".to_owned())
        ]
    );
    assert!(got[4].0 == "system" && got[4].1.starts_with("Call ended after") && got[4].1.contains("(PCMA)"), "{got:?}");
}

#[test]
fn a_caller_barging_in_stops_the_answer_at_once_and_nothing_of_it_is_heard_again() {
    let server = ProviderServer::start();
    let long = "Our cakes are baked fresh every morning with local butter, flour and eggs, and we decorate them by hand in the shop. ";
    server.chat(vec![ChatStep::text(long), ChatStep::text(long)]);
    server.chat(vec![ChatStep::text("Yes, we do.")]);
    server.transcript("tell me about cakes");
    server.transcript("do you deliver");
    // The first answer at 440 Hz, the second at 1000 Hz: each packet says which it belongs to.
    server.speech_tone_for("Our cakes", 440.0);
    server.speech_tone_for("Yes", 1000.0);
    let gw = Gateway::start(&setup(&server, "", ""));
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 16_000);
    greeted_then_asked(&gw, &peer);
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2500);
    // The answer plays; the caller talks over it.
    let barge_in = Instant::now();
    peer.send(rtp_of(&gw), Law::Alaw, 8, &speech(1500));
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 3500);
    let _ = sipp.wait();
    let packets = peer.finish();
    let tone = |p: &Received, hz: f64| {
        let mut pcm = vec![0i16; p.payload.len()];
        Law::Alaw.decode(&p.payload, &mut pcm);
        goertzel(&pcm, hz)
    };
    let old: Vec<&Received> = packets.iter().filter(|p| p.at > barge_in && p.level_db(Law::Alaw) > VOICE_DB && tone(p, 440.0) > tone(p, 1000.0)).collect();
    let new: Vec<&Received> = packets.iter().filter(|p| p.at > barge_in && p.level_db(Law::Alaw) > VOICE_DB && tone(p, 1000.0) > tone(p, 440.0)).collect();
    // The old answer goes on for the barge-in delay (400 ms of voice) plus the jitter buffer,
    // then stops: at most 35 packets after the caller's first word.
    let log = gw.log();
    let story: Vec<&str> = log.lines().filter(|l| l.contains("barge-in") || l.contains("said") || l.contains("conversation over")).collect();
    assert!(old.len() <= 35, "{} packets of the old answer after the barge-in\n{}", old.len(), story.join("\n"));
    assert!(!new.is_empty(), "the new answer was heard");
    let first_new = new[0].at;
    assert!(old.iter().all(|p| p.at < first_new), "the old answer is never heard again");
    let ended = eventually("the transcript", Duration::from_secs(10), || {
        gw.calls().into_iter().find(|c| c["state"] == "ended" && c["transcript"].as_array().is_some_and(|t| t.len() >= 5))
    });
    let t = ended["transcript"].as_array().expect("transcript");
    assert_eq!(t[2]["role"], "assistant");
    assert_eq!(t[2]["interrupted"], true, "{ended}");
    let heard = t[2]["text"].as_str().expect("text");
    assert!(long.starts_with(heard) && heard.len() < long.len() - 20, "only what was heard: {heard:?}");
    assert_eq!((t[3]["role"].as_str(), t[3]["text"].as_str()), (Some("caller"), Some("do you deliver")));
    assert_eq!(t[4]["text"], "Yes, we do.");
    // The LLM saw the interrupted answer, cut where it was cut, before the caller's words.
    let second = server.wait_chat_requests(2, Duration::from_secs(5)).remove(1);
    let m = second["messages"].as_array().expect("messages");
    let n = m.len();
    assert_eq!((m[n - 2]["role"].as_str(), m[n - 2]["content"].as_str()), (Some("assistant"), Some(heard)));
    assert_eq!(m[n - 1]["content"], "do you deliver");
}

#[test]
fn digits_reach_the_llm() {
    let server = ProviderServer::start();
    server.chat(vec![ChatStep::text("Thank you, order 42 is on its way.")]);
    let gw = Gateway::start(&setup(&server, "", ""));
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 7_000);
    eventually("answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"));
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2000);
    peer.send_dtmf(rtp_of(&gw), 101, "42#");
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2000);
    let request = server.wait_chat_requests(1, Duration::from_secs(5)).remove(0);
    let last = request["messages"].as_array().and_then(|m| m.last().cloned()).expect("a message");
    assert_eq!((last["role"].as_str(), last["content"].as_str()), (Some("user"), Some("[keypad] 42#")), "{request}");
    let _ = sipp.wait();
}

#[test]
fn a_failing_llm_falls_back_to_the_next_one() {
    // The LLM fails with a 500, and again when retried: the local knowledge LLM
    // (`llm_fallback`) answers instead.
    let server = ProviderServer::start();
    server.chat(vec![ChatStep::Status(500, String::new())]);
    server.chat(vec![ChatStep::Status(503, String::new())]);
    server.transcript("when do you open");
    let gw = Gateway::start(&setup(&server, "", "llm_fallback = \"local\"\n"));
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 9_000);
    greeted_then_asked(&gw, &peer);
    let call = eventually("the fallback's answer", Duration::from_secs(10), || gw.calls().into_iter().find(|c| roles_and_texts(c).len() >= 3));
    assert_eq!(roles_and_texts(&call)[2], ("assistant".to_owned(), "We open at nine.".to_owned()), "{call}");
    assert_eq!(gw.metric(r#"happ_gateway_provider_failures_total{kind="llm",provider="openai"}"#), 2.0, "{}", gw.metrics());
    assert_eq!(server.chat_requests().len(), 2, "the request was retried once, then the fallback answered");
    let _ = sipp.wait();
}

#[test]
fn a_stalled_llm_gets_an_apology_within_three_seconds() {
    // The LLM stalls and nothing else is configured: the apology (synthesised ahead by the local
    // engine) plays within 3 s of the end of the turn, 500 ms after the caller's last word.
    let server = ProviderServer::start();
    server.chat(vec![ChatStep::Stall]);
    server.transcript("when do you open");
    let gw = Gateway::start(&setup(&server, "", ""));
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 12_000);
    eventually("answered", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "answered"));
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2500);
    let speech_end = {
        peer.send(rtp_of(&gw), Law::Alaw, 8, &speech(1200));
        Instant::now()
    };
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 5000);
    let apology = voiced(&peer.received()).iter().map(|p| p.at).find(|t| *t > speech_end).expect("audio after the question");
    assert!(apology - speech_end < Duration::from_millis(3_500 + 300), "{:?} of dead air", apology - speech_end);
    let call = eventually("the apology", Duration::from_secs(10), || gw.calls().into_iter().find(|c| roles_and_texts(c).len() >= 3));
    assert!(roles_and_texts(&call)[2].1.contains("trouble"), "{call}");
    let _ = sipp.wait();
}

#[test]
fn silence_gets_a_reprompt_then_a_goodbye_and_the_gateway_hangs_up() {
    let server = ProviderServer::start();
    let gw = Gateway::start(&setup(&server, "silenceRepromptSecs = 2\nsilenceHangupSecs = 2\n", ""));
    let uac = Sipp::scenario("uac_wait_bye.xml").placeholder("BYE_TIMEOUT_MS", 20_000).remote(gw.sip).service(NUMBER.trim_start_matches('+'));
    let out = uac.run().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "the gateway hung up with a BYE:\n{}\n{}", out.report(), gw.log());
    let inputs = server.speech_inputs();
    assert_eq!(inputs.first().map(String::as_str), Some("Hello, this is the bakery."), "{inputs:?}");
    assert!(inputs.iter().any(|i| i == "Are you still there?"), "{inputs:?}");
    // The goodbye's sentences are synthesised in parallel: their requests arrive in any order.
    assert!(inputs.iter().any(|i| i.contains("Goodbye")), "{inputs:?}");
    let ended = eventually("ended", Duration::from_secs(5), || gw.calls().into_iter().find(|c| c["state"] == "ended"));
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("silent")), "{ended}");
}

#[test]
fn the_maximum_duration_ends_the_call_with_a_goodbye() {
    let server = ProviderServer::start();
    let gw = Gateway::start(&setup(&server, "maxDurationSecs = 4\nsilenceRepromptSecs = 0\n", ""));
    let uac = Sipp::scenario("uac_wait_bye.xml").placeholder("BYE_TIMEOUT_MS", 20_000).remote(gw.sip).service(NUMBER.trim_start_matches('+'));
    let out = uac.run().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
    assert!(server.speech_inputs().iter().any(|i| i.contains("time limit")), "{:?}", server.speech_inputs());
    let ended = eventually("ended", Duration::from_secs(5), || gw.calls().into_iter().find(|c| c["state"] == "ended"));
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("maximum")), "{ended}");
}

#[test]
fn an_outbound_call_with_an_assistant_starts_the_conversation_on_answer() {
    let server = ProviderServer::start();
    let uas = Sipp::scenario("uas_answer.xml").spawn().unwrap_or_else(|e| panic!("{e}"));
    // The phone itself plays no assistant: the request names one.
    let phone = Phone { assistant_id: None, ..Phone::trunk(NUMBER, uas.local_addr()) };
    let setup = Setup { phones: vec![phone], ..setup(&server, "", "") };
    let gw = Gateway::start(&setup);
    let (status, refused) = gw.post("/calls", &serde_json::json!({"to": "4930999", "phone": NUMBER, "assistant": "nobody"}));
    assert_eq!(status, 404, "{refused}");
    let (status, call) = gw.post("/calls", &serde_json::json!({"to": "4930999", "phone": NUMBER, "assistant": "bakery"}));
    assert_eq!(status, 201, "{call}\n{}", gw.log());
    assert_eq!(call["assistant"], "bakery");
    let id = call["id"].as_str().expect("id").to_owned();
    let greeted = eventually("the greeting heard on the outbound call", Duration::from_secs(15), || {
        let (_, c) = gw.get(&format!("/calls/{id}"));
        (roles_and_texts(&c).first().is_some_and(|(r, t)| r == "assistant" && t == "Hello, this is the bakery.")).then_some(c)
    });
    assert_eq!(greeted["state"], "answered", "{greeted}");
    assert_eq!(server.speech_inputs().first().map(String::as_str), Some("Hello, this is the bakery."));
    assert_eq!(gw.delete(&format!("/calls/{id}")), 204);
    let out = uas.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.succeeded(), "{}\n{}", out.report(), gw.log());
}

#[test]
fn a_cough_over_the_answer_pauses_it_and_it_resumes_where_it_stopped() {
    let server = ProviderServer::start();
    let long = "Our cakes are baked fresh every morning with local butter, flour and eggs, and we decorate them by hand.";
    server.chat(vec![ChatStep::text(long)]);
    server.transcript("tell me about cakes");
    // The cough's utterance is transcribed as nothing.
    server.transcript("");
    let gw = Gateway::start(&setup(&server, "", ""));
    let peer = RtpPeer::bind();
    let sipp = call(&gw, &peer, 16_000);
    greeted_then_asked(&gw, &peer);
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 2500);
    // 600 ms of voice over the answer, no words in it.
    let cough = Instant::now();
    peer.send(rtp_of(&gw), Law::Alaw, 8, &speech(900)[160 * 15..]);
    peer.send_silence(rtp_of(&gw), Law::Alaw, 8, 8000);
    let _ = sipp.wait();
    let packets = peer.finish();
    let answer: Vec<Instant> = voiced(&packets).iter().map(|p| p.at).filter(|t| *t > cough - Duration::from_secs(3)).collect();
    // The answer went silent (a gap of over a second after the cough) and came back.
    let gap = answer.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    assert!(gap > Duration::from_secs(1), "playback paused: the longest gap is {gap:?}");
    assert!(answer.last().is_some_and(|t| *t > cough + Duration::from_secs(3)), "playback resumed");
    let call = eventually("the transcript", Duration::from_secs(10), || gw.calls().into_iter().find(|c| c["state"] == "ended"));
    let t = call["transcript"].as_array().expect("transcript");
    assert_eq!((t[2]["text"].as_str(), t[2]["interrupted"].as_bool()), (Some(long), Some(false)), "heard in full: {call}");
    assert_eq!(t.len(), 3, "the cough is no turn: {call}");
    assert!(gw.log().contains("false_interruptions=1"), "{}", gw.log());
}
