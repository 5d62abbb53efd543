//! The ElevenLabs adapter against a local WebSocket server on loopback that speaks the
//! `stream-input` protocol as ElevenLabs documents it: a first message with the voice settings,
//! text messages, `{"text":""}` to end; audio as base64 in JSON with alignment, then
//! `{"isFinal":true}`; failures as error messages, close frames with code 1008, or HTTP statuses
//! at the upgrade.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use happ_speech::elevenlabs::{ElevenLabsConfig, ElevenLabsStream, ElevenLabsTts};
use happ_speech::{AudioFormat, Error, Secret, TimeoutPhase, TtsEvent, TtsOptions, TtsProvider, TtsStream};
use tokio::sync::Notify;

const KEY: &str = "xi-test-0123456789abcdef";

/// What the server does.
#[derive(Clone, Debug)]
enum Behaviour {
    /// Answers each sentence with its bytes as audio, in two messages, `delay` apart; after the
    /// end, `isFinal` and a normal close.
    Speak { delay: Duration },
    /// Refuses the upgrade.
    Reject { status: u16, body: &'static str },
    /// On the first sentence, sends this text frame and then a close 1008 with `reason`.
    ErrorMessage { message: &'static str, reason: &'static str },
    /// On the first sentence, closes with this code and reason.
    Close { code: u16, reason: &'static str },
    /// On the first sentence, sends one audio message, then drops the connection.
    Drop,
    /// On the first sentence, sends this text frame.
    Garbage(&'static str),
    /// Answers the first sentence, then nothing.
    Stall,
    /// On the first sentence, sends audio every 10 ms until the client goes away.
    UntilClosed,
}

#[derive(Default)]
struct Seen {
    voice_id: Mutex<String>,
    query: Mutex<HashMap<String, String>>,
    headers: Mutex<Option<HeaderMap>>,
    /// Every text message received, in order.
    messages: Mutex<Vec<serde_json::Value>>,
    closed: AtomicBool,
    changed: Notify,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type AppState = (Behaviour, Arc<Seen>);

impl Server {
    async fn start(behaviour: Behaviour) -> Self {
        let seen = Arc::new(Seen::default());
        let app = Router::new().route("/v1/text-to-speech/{voice_id}/stream-input", get(upgrade)).with_state((behaviour, Arc::clone(&seen)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn config(&self) -> ElevenLabsConfig {
        let mut c = ElevenLabsConfig::new(Secret::new(KEY), "voice-default");
        c.base_url = format!("ws://{}/v1", self.addr);
        c.connect_timeout = Duration::from_secs(5);
        c.idle_timeout = Duration::from_secs(5);
        c
    }

    fn provider(&self) -> ElevenLabsTts {
        ElevenLabsTts::new(&self.config()).expect("valid config")
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        self.seen.messages.lock().expect("not poisoned").clone()
    }

    /// Waits until the server saw the client close the connection (the 5 s bound only keeps a
    /// failing test from hanging).
    async fn wait_closed(&self) -> bool {
        let wait = async {
            loop {
                let changed = self.seen.changed.notified();
                if self.seen.closed.load(Ordering::SeqCst) {
                    break;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.is_ok()
    }
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Path(voice_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    State((behaviour, seen)): State<AppState>,
) -> Response {
    *seen.voice_id.lock().expect("not poisoned") = voice_id;
    *seen.query.lock().expect("not poisoned") = query;
    *seen.headers.lock().expect("not poisoned") = Some(headers);
    if let Behaviour::Reject { status, body } = behaviour {
        return (StatusCode::from_u16(status).expect("a status"), [("content-type", "application/json")], body).into_response();
    }
    ws.on_upgrade(move |socket| session(socket, behaviour, seen))
}

/// An audio message as ElevenLabs sends it: base64 audio, `isFinal` null, alignments.
fn audio_message(bytes: &[u8]) -> Message {
    let chars: Vec<String> = bytes.iter().map(|b| char::from(*b).to_string()).collect();
    let times: Vec<usize> = (0..bytes.len()).map(|i| i * 10).collect();
    let alignment = serde_json::json!({ "chars": chars, "charStartTimesMs": times, "charDurationsMs": vec![10; bytes.len()] });
    let m = serde_json::json!({
        "audio": base64::engine::general_purpose::STANDARD.encode(bytes),
        "isFinal": null,
        "normalizedAlignment": alignment,
        "alignment": alignment,
    });
    Message::Text(m.to_string().into())
}

async fn session(mut socket: WebSocket, behaviour: Behaviour, seen: Arc<Seen>) {
    let mut sentences = 0;
    loop {
        let Some(Ok(message)) = socket.recv().await else { break };
        let Message::Text(text) = message else { continue };
        let json: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or(serde_json::Value::Null);
        seen.messages.lock().expect("not poisoned").push(json.clone());
        seen.changed.notify_waiters();
        let text = json["text"].as_str().unwrap_or_default().to_owned();
        if text.is_empty() {
            if matches!(behaviour, Behaviour::Stall) {
                continue;
            }
            let _ = socket.send(Message::Text(r#"{"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null}"#.into())).await;
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
            break;
        }
        if text.trim().is_empty() {
            // The first message and keep-alives speak nothing.
            continue;
        }
        sentences += 1;
        let bytes = text.as_bytes();
        let (head, tail) = bytes.split_at(bytes.len() / 2 + 1);
        match &behaviour {
            Behaviour::Speak { delay } => {
                for part in [head, tail] {
                    tokio::time::sleep(*delay).await;
                    let _ = socket.send(audio_message(part)).await;
                }
            }
            Behaviour::Stall if sentences == 1 => {
                let _ = socket.send(audio_message(bytes)).await;
            }
            Behaviour::Stall => {}
            Behaviour::ErrorMessage { message, reason } => {
                let _ = socket.send(Message::Text((*message).into())).await;
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1008, reason: (*reason).into() }))).await;
                break;
            }
            Behaviour::Close { code, reason } => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: *code, reason: (*reason).into() }))).await;
                break;
            }
            Behaviour::Drop => {
                let _ = socket.send(audio_message(head)).await;
                // Returning drops the socket without a close frame.
                return;
            }
            Behaviour::Garbage(g) => {
                let _ = socket.send(Message::Text((*g).into())).await;
            }
            Behaviour::UntilClosed => loop {
                if socket.send(audio_message(&[0xff; 160])).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            },
            Behaviour::Reject { .. } => unreachable!("refused at the upgrade"),
        }
    }
    // Drain until the client is gone, so the close is observed rather than assumed.
    while let Some(Ok(_)) = socket.recv().await {}
    seen.closed.store(true, Ordering::SeqCst);
    seen.changed.notify_waiters();
}

/// Every event until the stream ends: the audio bytes and how it ended.
async fn collect(stream: &mut ElevenLabsStream, format: AudioFormat) -> (Vec<u8>, Result<TtsEvent, Error>) {
    let mut data = Vec::new();
    while let Some(item) = stream.next_event().await {
        match item {
            Ok(TtsEvent::Audio(chunk)) => {
                assert_eq!(chunk.format, format);
                data.extend_from_slice(&chunk.data);
            }
            Ok(done @ TtsEvent::Done(_)) => {
                assert!(stream.next_event().await.is_none(), "nothing follows Done");
                return (data, Ok(done));
            }
            Err(e) => {
                assert!(stream.next_event().await.is_none(), "nothing follows an error");
                return (data, Err(e));
            }
        }
    }
    panic!("the stream ended without Done or an error");
}

async fn error_for(behaviour: Behaviour) -> (Vec<u8>, Error) {
    let server = Server::start(behaviour).await;
    let mut stream = server.provider().stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    stream.push_text("Hello there.").expect("pushed");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    (data, end.expect_err("an error"))
}

#[tokio::test]
async fn sentences_are_spoken_in_order_in_the_calls_own_format() {
    let server = Server::start(Behaviour::Speak { delay: Duration::from_millis(10) }).await;
    let provider: Box<dyn TtsProvider> = Box::new(server.provider());
    assert_eq!(provider.formats()[0], AudioFormat::MULAW_8K);
    let options = TtsOptions { voice: Some("voice-abc".into()), language: Some("en".into()) };
    let mut stream = server.provider().stream(AudioFormat::MULAW_8K, &options).expect("a stream");
    stream.push_text("Hello there.").expect("pushed");
    stream.push_text("How can I help? ").expect("pushed");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    let Ok(TtsEvent::Done(latency)) = end else { panic!("{end:?}") };
    assert_eq!(data, b"Hello there. How can I help? ", "each sentence's audio, in order");
    assert!(latency.first_audio.is_some_and(|f| f <= latency.total));

    assert_eq!(*server.seen.voice_id.lock().expect("not poisoned"), "voice-abc");
    let query = server.seen.query.lock().expect("not poisoned").clone();
    assert_eq!(query["model_id"], "eleven_flash_v2_5");
    assert_eq!(query["output_format"], "ulaw_8000");
    assert_eq!(query["auto_mode"], "true");
    assert_eq!(query["inactivity_timeout"], "60");
    assert_eq!(query["language_code"], "en");
    assert!(!query.values().any(|v| v.contains(KEY)), "the key is not in the URL");
    let headers = server.seen.headers.lock().expect("not poisoned").clone().expect("headers");
    assert_eq!(headers["xi-api-key"], KEY);

    let messages = server.messages();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(
        messages[0],
        serde_json::json!({"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}, "generation_config": {"chunk_length_schedule": [120, 160, 250, 290]}})
    );
    assert_eq!(messages[1], serde_json::json!({"text": "Hello there. ", "try_trigger_generation": true}));
    assert_eq!(messages[2], serde_json::json!({"text": "How can I help? ", "try_trigger_generation": true}));
    assert_eq!(messages[3], serde_json::json!({"text": ""}));
}

#[tokio::test]
async fn pcm_formats_are_asked_for_by_name() {
    let server = Server::start(Behaviour::Speak { delay: Duration::ZERO }).await;
    let mut stream = server.provider().stream(AudioFormat::PCM_16K, &TtsOptions::default()).expect("a stream");
    stream.push_text("Odd.").expect("pushed");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::PCM_16K).await;
    assert!(end.is_ok(), "{end:?}");
    // "Odd. " is five bytes: the stream completes the last sample so PCM stays aligned.
    assert_eq!(data, b"Odd. \0");
    assert_eq!(server.seen.query.lock().expect("not poisoned")["output_format"], "pcm_16000");
    assert_eq!(*server.seen.voice_id.lock().expect("not poisoned"), "voice-default");
}

#[tokio::test]
async fn an_error_message_is_refused_with_its_reason() {
    let (_, e) = error_for(Behaviour::ErrorMessage {
        message: r#"{"message":"This request exceeds your quota of 10000. You have 12 credits remaining.","error":"quota_exceeded","code":1008}"#,
        reason: "quota exceeded",
    })
    .await;
    assert!(
        matches!(&e, Error::Refused { status: 1008, code: Some(c), message } if c == "quota_exceeded" && message.starts_with("This request exceeds your quota")),
        "{e:?}"
    );
    assert!(!e.is_retryable() && e.should_fall_back());
}

#[tokio::test]
async fn a_close_1008_is_refused_with_its_reason() {
    let (_, e) = error_for(Behaviour::Close { code: 1008, reason: "Invalid API key" }).await;
    assert_eq!(e, Error::Refused { status: 1008, message: "Invalid API key".into(), code: Some("policy_violation".into()) });
    let (_, e) = error_for(Behaviour::Close { code: 1011, reason: "internal error" }).await;
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn http_errors_at_the_upgrade_are_typed() {
    let (_, e) = error_for(Behaviour::Reject { status: 401, body: r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"# }).await;
    assert!(matches!(&e, Error::Refused { status: 401, .. }), "{e:?}");
    println!("401 at the upgrade: {e}");
    let (_, e) = error_for(Behaviour::Reject { status: 429, body: r#"{"detail":{"status":"too_many_concurrent_requests","message":"busy"}}"# }).await;
    assert!(matches!(&e, Error::RateLimited { .. }), "{e:?}");
    let (_, e) = error_for(Behaviour::Reject { status: 503, body: "" }).await;
    assert!(matches!(&e, Error::Unavailable { status: Some(503), .. }), "{e:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_closed_after_the_audio_it_gave() {
    let (data, e) = error_for(Behaviour::Drop).await;
    assert_eq!(data, b"Hello t");
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let (_, e) = error_for(Behaviour::Garbage("<html><body>502 Bad Gateway</body></html>")).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    let (_, e) = error_for(Behaviour::Garbage(r#"{"audio":"%%% not base64","isFinal":null}"#)).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
}

#[tokio::test]
async fn a_stall_after_the_end_is_an_idle_timeout() {
    let server = Server::start(Behaviour::Stall).await;
    let mut c = server.config();
    c.idle_timeout = Duration::from_millis(200);
    let mut stream = ElevenLabsTts::new(&c).expect("valid").stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    stream.push_text("Hello.").expect("pushed");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    assert_eq!(data, b"Hello. ");
    assert_eq!(end, Err(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_millis(200) }));
}

#[tokio::test]
async fn an_upgrade_that_never_comes_is_a_connect_timeout() {
    // Accepts TCP connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut c = ElevenLabsConfig::new(Secret::new(KEY), "v");
    c.base_url = format!("ws://{addr}/v1");
    c.connect_timeout = Duration::from_millis(200);
    let mut stream = ElevenLabsTts::new(&c).expect("valid").stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    stream.push_text("Hello.").expect("pushed");
    let (_, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    assert_eq!(end, Err(Error::Timeout { phase: TimeoutPhase::FirstByte, after: Duration::from_millis(200) }));
    hold.abort();
}

#[tokio::test]
async fn keep_alives_hold_an_early_connection_open() {
    let server = Server::start(Behaviour::Speak { delay: Duration::ZERO }).await;
    let mut c = server.config();
    c.keep_alive_interval = Duration::from_millis(50);
    let mut stream = ElevenLabsTts::new(&c).expect("valid").stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    // Polled with no text, as a bridge does while the LLM thinks: it connects and keeps alive.
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next_event()).await.is_err(), "no event without text");
    let keep_alives = server.messages().iter().filter(|m| **m == serde_json::json!({"text": " "})).count();
    assert!(keep_alives >= 2, "{keep_alives} keep-alives in 300 ms");
    let started = Instant::now();
    stream.push_text("Now.").expect("pushed");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    assert_eq!(data, b"Now. ");
    let Ok(TtsEvent::Done(latency)) = end else { panic!("{end:?}") };
    assert!(latency.first_audio.is_some_and(|f| f <= started.elapsed()), "first audio counts from the text, not the connect");
}

#[tokio::test]
async fn cancel_closes_the_connection() {
    let server = Server::start(Behaviour::UntilClosed).await;
    let mut stream = server.provider().stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    stream.push_text("Tell me a long story.").expect("pushed");
    for _ in 0..3 {
        assert!(matches!(stream.next_event().await, Some(Ok(TtsEvent::Audio(_)))));
    }
    stream.cancel();
    assert!(matches!(stream.push_text("More."), Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, Some(Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, None);
    assert!(server.wait_closed().await, "the server saw the connection close");
}

#[tokio::test]
async fn finish_without_text_needs_no_connection() {
    let server = Server::start(Behaviour::Speak { delay: Duration::ZERO }).await;
    let mut stream = server.provider().stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    stream.finish();
    let (data, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
    assert!(data.is_empty() && matches!(end, Ok(TtsEvent::Done(_))));
    assert!(server.seen.headers.lock().expect("not poisoned").is_none(), "never connected");
}

#[test]
fn the_key_never_shows() {
    let c = ElevenLabsConfig::new(Secret::new(KEY), "voice");
    let provider = ElevenLabsTts::new(&c).expect("valid");
    let stream = provider.stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
    for text in [format!("{c:?}"), format!("{provider:?}"), format!("{stream:?}")] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    let mut bad = c.clone();
    bad.api_key = Secret::new("bad\nkey");
    assert!(matches!(ElevenLabsTts::new(&bad), Err(Error::Config { .. })));
    bad.api_key = Secret::new("");
    assert!(matches!(ElevenLabsTts::new(&bad), Err(Error::Config { .. })));
    assert!(matches!(provider.stream(AudioFormat::ALAW_8K, &TtsOptions::default()), Err(Error::Config { .. })));
}

/// Time to first audio on loopback with a zero-delay server. Prints figures;
/// asserts none. Run with `cargo test --release -p happ-speech --test elevenlabs_tts -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn overhead_figures() {
    const RUNS: usize = 200;
    let server = Server::start(Behaviour::Speak { delay: Duration::ZERO }).await;
    let provider = server.provider();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..RUNS {
        // Cold: the text is pushed before the connection exists.
        let mut stream = provider.stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
        stream.push_text("One sentence.").expect("pushed");
        stream.finish();
        let (_, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
        let Ok(TtsEvent::Done(l)) = end else { panic!("{end:?}") };
        cold.push(l.first_audio.unwrap_or_default());
        // Warm: connected while "the LLM thinks", then the text.
        let mut stream = provider.stream(AudioFormat::MULAW_8K, &TtsOptions::default()).expect("a stream");
        let _ = tokio::time::timeout(Duration::from_millis(5), stream.next_event()).await;
        stream.push_text("One sentence.").expect("pushed");
        stream.finish();
        let (_, end) = collect(&mut stream, AudioFormat::MULAW_8K).await;
        let Ok(TtsEvent::Done(l)) = end else { panic!("{end:?}") };
        warm.push(l.first_audio.unwrap_or_default());
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() - 1) * p / 100]
    };
    println!("{RUNS} streams of one sentence, zero-delay loopback WebSocket server (ws://, no TLS):");
    println!("  first audio, connect on push:   p50 {:?}  p99 {:?}", pct(&mut cold, 50), pct(&mut cold, 99));
    println!("  first audio, connected earlier: p50 {:?}  p99 {:?}", pct(&mut warm, 50), pct(&mut warm, 99));
}
