//! The scripted provider server driven by the project's real OpenAI-compatible adapters over HTTP
//! on loopback: chat streams with text and tool calls, broken and refused streams, speech audio
//! and its faults, transcripts of pushed utterances.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use happ_speech::openai::{
    OpenAiChat, OpenAiChatStream, OpenAiConfig, OpenAiSpeech, OpenAiSpeechConfig, OpenAiSpeechStream, OpenAiTranscription, OpenAiTranscriptionConfig,
    OpenAiTranscriptionSession, ResponseFormat,
};
use happ_speech::{AudioFormat, ChatRequest, Error, FinishReason, Frame, LlmEvent, Message, SttEvent, SttOptions, SttSession, TimeoutPhase, ToolCall, ToolDef};
use happ_speech::{TtsEvent, TtsOptions, TtsStream};
use happ_testkit::providers::{ChatStep, DEFAULT_TONE_HZ, ProviderServer, SpeechFault, speech_duration, speech_samples};
use serde_json::json;

/// Long enough that only a broken server reaches them.
const GENEROUS: Duration = Duration::from_secs(10);

fn chat_provider(server: &ProviderServer, idle: Duration) -> OpenAiChat {
    let mut c = OpenAiConfig::new(server.base_url(), None);
    c.first_byte_timeout = GENEROUS;
    c.idle_timeout = idle;
    OpenAiChat::new(&c).expect("a valid config")
}

fn request(user: &str) -> ChatRequest {
    let mut r = ChatRequest::new("gpt-4o-mini", vec![Message::System("You answer the phone for Acme.".into()), Message::User(user.into())]);
    r.tools.push(ToolDef {
        name: "get_opening_hours".into(),
        description: "Opening hours of a day".into(),
        parameters: json!({"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}),
    });
    r
}

/// Every event until the stream ends, the error (if any) last.
async fn collect(stream: &mut OpenAiChatStream) -> (Vec<LlmEvent>, Option<Error>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next_event().await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn texts(events: &[LlmEvent]) -> Vec<&str> {
    events.iter().filter_map(|e| if let LlmEvent::Text(t) = e { Some(t.as_str()) } else { None }).collect()
}

#[tokio::test]
async fn chat_streams_scripted_text_and_a_tool_call() {
    let server = ProviderServer::start();
    server.chat(vec![
        ChatStep::text("Let me check "),
        ChatStep::Delay(Duration::from_millis(20)),
        ChatStep::text("the hours."),
        ChatStep::tool("get_opening_hours", json!({"day": "Saturday", "note": "a long enough argument to be split"})),
    ]);
    let provider = chat_provider(&server, GENEROUS);
    let (events, error) = collect(&mut provider.stream(&request("Are you open on Saturday?")).expect("a stream")).await;
    assert_eq!(error, None);
    assert_eq!(texts(&events), ["Let me check ", "the hours."]);
    let calls: Vec<&ToolCall> = events.iter().filter_map(|e| if let LlmEvent::ToolCall(c) = e { Some(c) } else { None }).collect();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_1_0", "get_opening_hours"));
    assert_eq!(calls[0].arguments_json().expect("JSON arguments"), json!({"day": "Saturday", "note": "a long enough argument to be split"}));
    let Some(LlmEvent::Done(summary)) = events.last() else { panic!("ends with Done: {events:?}") };
    assert_eq!(summary.finish, FinishReason::ToolCalls);
    assert!(summary.chunks > 5, "the role chunk, two texts, the call in pieces, the finish: {}", summary.chunks);

    // Nothing queued: the echo.
    let (events, error) = collect(&mut provider.stream(&request("hello")).expect("a stream")).await;
    assert_eq!(error, None);
    assert_eq!(texts(&events), ["You said: hello."]);
    assert!(matches!(events.last(), Some(LlmEvent::Done(s)) if s.finish == FinishReason::Stop));

    let bodies = server.chat_requests();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["model"], "gpt-4o-mini");
    assert_eq!(bodies[0]["stream"], true);
    assert_eq!(bodies[0]["messages"][1], json!({"role": "user", "content": "Are you open on Saturday?"}));
    assert_eq!(bodies[0]["tools"][0]["function"]["name"], "get_opening_hours");
    assert_eq!(server.pending_chat(), 0);
}

#[tokio::test]
async fn chat_failures_become_the_adapters_typed_errors() {
    let server = ProviderServer::start();
    server.chat(vec![ChatStep::text("Hello, "), ChatStep::Drop]);
    server.chat(vec![ChatStep::Status(500, String::new())]);
    server.chat(vec![ChatStep::Delay(Duration::from_millis(10)), ChatStep::Status(429, "Slow down.".into())]);
    server.chat(vec![ChatStep::text("Hold on"), ChatStep::Stall]);
    let provider = chat_provider(&server, GENEROUS);

    let (events, error) = collect(&mut provider.stream(&request("hi")).expect("a stream")).await;
    assert_eq!(texts(&events), ["Hello, "], "what came before the break arrives");
    assert!(matches!(error, Some(Error::Closed { .. })), "{error:?}");

    let (events, error) = collect(&mut provider.stream(&request("hi")).expect("a stream")).await;
    assert!(events.is_empty());
    assert!(matches!(error, Some(Error::Unavailable { status: Some(500), .. })), "{error:?}");

    let (_, error) = collect(&mut provider.stream(&request("hi")).expect("a stream")).await;
    assert!(matches!(&error, Some(Error::RateLimited { message, .. }) if message == "Slow down."), "{error:?}");

    let impatient = chat_provider(&server, Duration::from_millis(300));
    let (events, error) = collect(&mut impatient.stream(&request("hi")).expect("a stream")).await;
    assert_eq!(texts(&events), ["Hold on"]);
    assert!(matches!(error, Some(Error::Timeout { phase: TimeoutPhase::Idle, .. })), "{error:?}");
    assert_eq!(server.chat_requests().len(), 4);
}

fn speech_provider(server: &ProviderServer, idle: Duration) -> OpenAiSpeech {
    let mut c = OpenAiSpeechConfig::new(server.base_url(), None);
    c.first_byte_timeout = GENEROUS;
    c.idle_timeout = idle;
    OpenAiSpeech::new(&c).expect("a valid config")
}

/// The audio bytes until the stream ends, and how it ended.
async fn audio(stream: &mut OpenAiSpeechStream) -> (Vec<u8>, Result<(), Error>) {
    let mut data = Vec::new();
    while let Some(item) = stream.next_event().await {
        match item {
            Ok(TtsEvent::Audio(chunk)) => data.extend_from_slice(&chunk.data),
            Ok(TtsEvent::Done(_)) => return (data, Ok(())),
            Err(e) => return (data, Err(e)),
        }
    }
    (data, Ok(()))
}

fn bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[tokio::test]
async fn speech_is_a_tone_per_character_in_sentence_order() {
    let server = ProviderServer::start();
    server.speech_tone_for("Bye", 880.0);
    let (first, second) = ("Hello, this is Acme.", "Bye now.");
    let mut stream = speech_provider(&server, GENEROUS).stream(&TtsOptions::default());
    stream.push_text(first).expect("pushed");
    stream.push_text(second).expect("pushed");
    stream.finish();
    let (data, end) = audio(&mut stream).await;
    assert_eq!(end, Ok(()));
    assert_eq!(data.len(), (speech_duration(first) + speech_duration(second)).as_millis() as usize * 24 * 2, "60 ms a character at 24 kHz");
    assert!(data == [bytes(&speech_samples(first, DEFAULT_TONE_HZ)), bytes(&speech_samples(second, 880.0))].concat(), "each sentence its tone, in order");
    // The adapter keeps one request ahead on a second connection: arrival order is not sentence order.
    let mut inputs = server.speech_inputs();
    inputs.sort();
    assert_eq!(inputs, [second, first]);
    let body = &server.speech_requests()[0];
    assert_eq!((body["model"].as_str(), body["voice"].as_str(), body["response_format"].as_str()), (Some("gpt-4o-mini-tts"), Some("alloy"), Some("pcm")));
}

async fn speak(server: &ProviderServer, idle: Duration, text: &str) -> (Vec<u8>, Result<(), Error>) {
    let mut stream = speech_provider(server, idle).stream(&TtsOptions::default());
    stream.push_text(text).expect("pushed");
    stream.finish();
    audio(&mut stream).await
}

#[tokio::test]
async fn speech_faults_hit_the_next_requests_then_audio_flows_again() {
    let server = ProviderServer::start();
    let text = "Good morning, Acme.";
    let whole = bytes(&speech_samples(text, DEFAULT_TONE_HZ));
    server.speech_fails(2, SpeechFault::Status(500));
    server.speech_fails(1, SpeechFault::Drop { after: Duration::from_millis(100) });
    server.speech_fails(1, SpeechFault::Stall { after: Duration::from_millis(40) });
    for _ in 0..2 {
        let (data, end) = speak(&server, GENEROUS, text).await;
        assert!(data.is_empty());
        assert!(matches!(end, Err(Error::Unavailable { status: Some(500), .. })), "{end:?}");
    }
    let (data, end) = speak(&server, GENEROUS, text).await;
    assert!(matches!(end, Err(Error::Closed { .. })), "{end:?}");
    assert_eq!(data.len(), 100 * 48, "100 ms of the audio, then the break");
    assert!(data == whole[..data.len()]);
    let (data, end) = speak(&server, Duration::from_millis(300), text).await;
    assert!(matches!(end, Err(Error::Timeout { phase: TimeoutPhase::Idle, .. })), "{end:?}");
    assert_eq!(data.len(), 40 * 48);
    assert!(data == whole[..data.len()]);
    let (data, end) = speak(&server, GENEROUS, text).await;
    assert_eq!((data == whole, end), (true, Ok(())), "the faults are used up");
    assert_eq!(server.speech_inputs(), vec![text; 5]);
}

fn transcription_session(server: &ProviderServer, format: ResponseFormat) -> OpenAiTranscriptionSession {
    let mut api = OpenAiConfig::new(server.base_url(), None);
    api.first_byte_timeout = GENEROUS;
    api.idle_timeout = GENEROUS;
    let mut c = OpenAiTranscriptionConfig::new(api, "whisper-1");
    c.response_format = format;
    let options = SttOptions { language: Some("en-GB".into()), keywords: vec![] };
    OpenAiTranscription::new(&c).expect("a valid config").session(AudioFormat::PCM_8K, &options).expect("a session")
}

/// `millis` of a sawtooth at 8 kHz, pushed in 20 ms frames.
fn push_speech(session: &mut OpenAiTranscriptionSession, millis: usize) {
    let samples: Vec<i16> = (0..millis * 8).map(|i| ((i * 440 * 65_536 / 8000) % 65_536) as i32 as i16).collect();
    for frame in samples.chunks(160) {
        session.push(Frame::Pcm(frame)).expect("buffered");
    }
}

async fn next(session: &mut OpenAiTranscriptionSession) -> Option<Result<SttEvent, Error>> {
    std::future::poll_fn(|cx| session.poll_event(cx)).await
}

#[tokio::test]
async fn transcription_gives_the_scripted_text_for_a_pushed_utterance() {
    let server = ProviderServer::start();
    server.transcript("what are your opening hours");
    server.transcript("thank you");
    for format in [ResponseFormat::Json, ResponseFormat::VerboseJson] {
        let mut session = transcription_session(&server, format);
        push_speech(&mut session, 1200);
        session.end_of_speech();
        let Some(Ok(SttEvent::Final(t))) = next(&mut session).await else { panic!("a final") };
        let expected = if format == ResponseFormat::Json { "what are your opening hours" } else { "thank you" };
        assert_eq!((t.text.as_str(), t.end_of_turn), (expected, true));
    }
    // Nothing queued: an empty transcript, which the adapter drops.
    let mut session = transcription_session(&server, ResponseFormat::Json);
    push_speech(&mut session, 500);
    session.finish();
    let Some(Ok(SttEvent::Done(_))) = next(&mut session).await else { panic!("Done without a final") };

    let seen = server.transcriptions();
    let summary: Vec<_> = seen.iter().map(|t| (t.duration, t.text.as_str(), t.response_format.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Duration::from_millis(1200), "what are your opening hours", "json"),
            (Duration::from_millis(1200), "thank you", "verbose_json"),
            (Duration::from_millis(500), "", "json"),
        ]
    );
    assert!(seen.iter().all(|t| t.model == "whisper-1" && t.language.as_deref() == Some("en")));
    assert_eq!(server.pending_transcripts(), 0);
}

/// A raw HTTP/1.1 exchange, read until the server closes.
fn http(server: &ProviderServer, path: &str, body: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr()).expect("the server accepts");
    tcp.set_read_timeout(Some(GENEROUS)).expect("a timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr(),
        body.len()
    );
    tcp.write_all([head.as_bytes(), body.as_bytes()].concat().as_slice()).expect("written");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("an answer");
    answer
}

#[test]
fn serves_synchronous_tests_and_stops_when_dropped() {
    let server = ProviderServer::start();
    let answer = http(
        &server,
        "/v1/chat/completions",
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("content-type: text/event-stream"), "{answer}");
    assert!(answer.contains(r#""delta":{"content":"You said: hi."}"#), "{answer}");
    assert!(answer.contains(r#""finish_reason":"stop""#) && answer.contains(r#""usage":{"#), "{answer}");
    assert!(answer.contains("data: [DONE]\n\n"), "{answer}");
    assert_eq!(server.wait_chat_requests(1, GENEROUS).len(), 1);

    let answer = http(&server, "/v1/models/list", "{}");
    assert!(answer.starts_with("HTTP/1.1 404") && answer.contains(r#""type":"invalid_request_error""#), "{answer}");
    let answer = http(&server, "/v1/audio/speech", r#"{"model":"tts-1","input":"Hi","voice":"alloy","response_format":"mp3"}"#);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(server.speech_inputs().is_empty(), "a refused request is not recorded");

    // A stalled stream does not hold the server up when it is dropped.
    server.chat(vec![ChatStep::Stall]);
    let mut tcp = TcpStream::connect(server.addr()).expect("the server accepts");
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    write!(tcp, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("written");
    assert_eq!(server.wait_chat_requests(2, GENEROUS).len(), 2);
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect(addr).is_err(), "nothing listens after the drop");
    tcp.set_read_timeout(Some(GENEROUS)).expect("a timeout");
    let mut rest = Vec::new();
    // A close or a reset: either way the connection ended without the stream's end.
    let _ = tcp.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"), "the stalled stream never finished");
}
