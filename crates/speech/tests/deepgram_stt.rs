//! The Deepgram adapter against a local WebSocket server on loopback that speaks Deepgram's live
//! transcription protocol as its documentation describes it: the `listen` query and
//! `Authorization: Token` header, binary audio, `KeepAlive`/`Finalize`/`CloseStream` text
//! messages, `Results`/`UtteranceEnd`/`SpeechStarted`/`Metadata` answers, refused upgrades with
//! `dg-error` and a JSON body, close frames 1000/1008/1011, dropped connections and stalls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::any;
use happ_speech::deepgram::{AUDIO_QUEUE_FRAMES, DeepgramConfig, DeepgramSession, DeepgramStt};
use happ_speech::{AudioFormat, Error, Frame, Secret, SttEvent, SttOptions, SttProvider, SttSession, TimeoutPhase, Transcript};
use tokio::sync::Notify;

const KEY: &str = "dg-test-0123456789abcdef";

/// What the server does once the socket is open.
#[derive(Clone, Debug)]
enum Step {
    /// Read until this many audio bytes arrived in all.
    AwaitAudio(usize),
    /// Read until a text message of this `type` arrives.
    AwaitText(&'static str),
    /// Send a text message.
    Send(String),
    /// Send a close frame, then read until the client goes.
    Close(u16, &'static str),
    /// Drop the connection without a close frame.
    Drop,
}

#[derive(Clone, Debug)]
enum Script {
    /// Upgrade and run the steps, then read until the client closes.
    Ws(Vec<Step>),
    /// Refuse the upgrade.
    Status { status: u16, headers: Vec<(&'static str, &'static str)>, body: &'static str },
}

#[derive(Default)]
struct Seen {
    query: Mutex<Option<String>>,
    headers: Mutex<Option<HeaderMap>>,
    audio: Mutex<Vec<u8>>,
    texts: Mutex<Vec<String>>,
    closed: AtomicBool,
    closed_notify: Notify,
}

impl Seen {
    fn texts(&self) -> Vec<String> {
        self.texts.lock().expect("not poisoned").clone()
    }

    fn audio(&self) -> Vec<u8> {
        self.audio.lock().expect("not poisoned").clone()
    }

    fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closed_notify.notify_waiters();
    }
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

impl Server {
    async fn start(script: Script) -> Self {
        let seen = Arc::new(Seen::default());
        let app = Router::new().route("/v1/listen", any(handle)).with_state((Arc::new(script), Arc::clone(&seen)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn config(&self) -> DeepgramConfig {
        config(&format!("ws://{}/v1/listen", self.addr))
    }

    fn provider(&self) -> DeepgramStt {
        DeepgramStt::new(&self.config()).expect("valid config")
    }

    fn query(&self) -> String {
        self.seen.query.lock().expect("not poisoned").clone().unwrap_or_default()
    }

    /// Waits until the server saw the client close the connection (the 5 s bound only keeps a
    /// failing test from hanging).
    async fn wait_closed(&self) -> bool {
        let wait = async {
            while !self.seen.closed.load(Ordering::SeqCst) {
                let notified = self.seen.closed_notify.notified();
                if self.seen.closed.load(Ordering::SeqCst) {
                    break;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.is_ok()
    }
}

fn config(base_url: &str) -> DeepgramConfig {
    let mut c = DeepgramConfig::new(Secret::new(KEY));
    c.base_url = base_url.into();
    c.connect_timeout = Duration::from_secs(5);
    c.idle_timeout = Duration::from_secs(5);
    c
}

type Shared = (Arc<Script>, Arc<Seen>);

async fn handle(State((script, seen)): State<Shared>, ws: WebSocketUpgrade, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    *seen.query.lock().expect("not poisoned") = query;
    *seen.headers.lock().expect("not poisoned") = Some(headers);
    match &*script {
        Script::Status { status, headers, body } => {
            let mut r = Response::builder().status(*status).header("content-type", "application/json").header("dg-request-id", "7c1d2e3f");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(Body::from(*body)).expect("a valid response")
        }
        Script::Ws(steps) => {
            let steps = steps.clone();
            ws.on_upgrade(move |socket| run(socket, steps, seen))
        }
    }
}

/// Reads one message and records it; `false` once the client is gone.
async fn read(socket: &mut WebSocket, seen: &Seen) -> bool {
    match socket.recv().await {
        Some(Ok(Message::Binary(b))) => seen.audio.lock().expect("not poisoned").extend_from_slice(&b),
        Some(Ok(Message::Text(t))) => seen.texts.lock().expect("not poisoned").push(t.as_str().to_owned()),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
        Some(Ok(Message::Close(_)) | Err(_)) | None => {
            seen.mark_closed();
            return false;
        }
    }
    true
}

fn saw_text(seen: &Seen, kind: &str) -> bool {
    seen.texts().iter().any(|t| serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| v["type"] == kind))
}

async fn run(mut socket: WebSocket, steps: Vec<Step>, seen: Arc<Seen>) {
    for step in steps {
        match step {
            Step::AwaitAudio(n) => {
                while seen.audio.lock().expect("not poisoned").len() < n {
                    if !read(&mut socket, &seen).await {
                        return;
                    }
                }
            }
            Step::AwaitText(kind) => {
                while !saw_text(&seen, kind) {
                    if !read(&mut socket, &seen).await {
                        return;
                    }
                }
            }
            Step::Send(text) => {
                if socket.send(Message::Text(text.into())).await.is_err() {
                    seen.mark_closed();
                    return;
                }
            }
            Step::Close(code, reason) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                break;
            }
            Step::Drop => return,
        }
    }
    while read(&mut socket, &seen).await {}
}

/// A `Results` message as Deepgram sends it.
fn results(text: &str, start: f64, is_final: bool, speech_final: bool) -> String {
    serde_json::json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 1.5,
        "start": start,
        "is_final": is_final,
        "speech_final": speech_final,
        "channel": {"alternatives": [{
            "transcript": text,
            "confidence": 0.97,
            "words": text.split_whitespace().enumerate().map(|(i, w)| serde_json::json!({
                "word": w.to_lowercase(), "start": start + i as f64 * 0.3, "end": start + i as f64 * 0.3 + 0.25,
                "confidence": 0.97, "punctuated_word": w
            })).collect::<Vec<_>>()
        }]},
        "metadata": {"request_id": "7c1d2e3f", "model_info": {"name": "2-general-nova", "version": "2024-01-18.26916", "arch": "nova-2"}, "model_uuid": "c0d1a"},
        "from_finalize": false
    })
    .to_string()
}

fn utterance_end(last_word_end: f64) -> String {
    serde_json::json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}).to_string()
}

fn metadata() -> String {
    serde_json::json!({"type": "Metadata", "transaction_key": "deprecated", "request_id": "7c1d2e3f", "sha256": "5324da", "created": "2024-06-14T10:00:00.000Z", "duration": 3.2, "channels": 1, "models": ["c0d1a"]}).to_string()
}

fn send(texts: &[String]) -> Vec<Step> {
    texts.iter().cloned().map(Step::Send).collect()
}

/// The events until the session ends, the error (if any) last.
async fn collect(session: &mut DeepgramSession) -> (Vec<SttEvent>, Option<Error>) {
    let mut events = Vec::new();
    while let Some(item) = next(session).await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => {
                assert!(next(session).await.is_none(), "nothing follows an error");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

async fn next(session: &mut DeepgramSession) -> Option<Result<SttEvent, Error>> {
    std::future::poll_fn(|cx| session.poll_event(cx)).await
}

fn texts(events: &[SttEvent]) -> Vec<(&'static str, &str, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Partial(t) => Some(("partial", t.text.as_str(), t.end_of_turn)),
            SttEvent::Final(t) => Some(("final", t.text.as_str(), t.end_of_turn)),
            SttEvent::Done(_) => None,
        })
        .collect()
}

/// 20 ms µ-law frames covering every code, so any byte the adapter changed would show.
fn mulaw_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| (0..160).map(|j| ((i * 160 + j) % 256) as u8).collect()).collect()
}

#[tokio::test]
async fn mulaw_audio_arrives_untouched_and_results_become_events() {
    let frames = mulaw_frames(10);
    let mut steps = vec![Step::AwaitAudio(1600)];
    steps.extend(send(&[
        serde_json::json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.2}).to_string(),
        results("Book a", 0.2, false, false),
        results("", 0.0, false, false),
        results("Book a table", 0.2, true, false),
        results("for two.", 1.7, false, false),
        results("for two.", 1.7, true, true),
        utterance_end(2.4),
    ]));
    steps.push(Step::AwaitText("CloseStream"));
    steps.extend(send(&[metadata()]));
    steps.push(Step::Close(1000, ""));
    let server = Server::start(Script::Ws(steps)).await;
    let options = SttOptions { language: Some("en-GB".into()), keywords: vec!["Acme".into(), "Tuesday:2".into()] };
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &options).expect("a session");
    assert_eq!(session.format(), AudioFormat::MULAW_8K);
    for f in &frames {
        session.push(Frame::G711(f)).expect("queued");
    }
    session.end_of_speech();
    let mut events = Vec::new();
    while !matches!(events.last(), Some(SttEvent::Final(t)) if t.end_of_turn) {
        events.push(next(&mut session).await.expect("an event").expect("no error"));
    }
    session.finish();
    let (rest, error) = collect(&mut session).await;
    assert_eq!(error, None);
    events.extend(rest);
    assert_eq!(texts(&events), [("partial", "Book a", false), ("final", "Book a table", false), ("partial", "for two.", false), ("final", "for two.", true)]);
    assert_eq!(
        events[3],
        SttEvent::Final(Transcript {
            text: "for two.".into(),
            start: Duration::from_millis(1700),
            end: Duration::from_millis(3200),
            confidence: Some(0.97),
            end_of_turn: true
        })
    );
    let Some(SttEvent::Done(latency)) = events.last() else { panic!("ends with Done: {events:?}") };
    assert!(latency.first_partial.is_some() && latency.final_after_end_of_speech.is_some(), "{latency:?}");

    assert_eq!(server.seen.audio(), frames.concat(), "µ-law reaches Deepgram byte for byte");
    let texts = server.seen.texts();
    assert_eq!(texts[texts.len() - 2..], [r#"{"type":"Finalize"}"#, r#"{"type":"CloseStream"}"#], "{texts:?}");
    assert_eq!(
        server.query(),
        "model=nova-2&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true&punctuate=true&smart_format=true&vad_events=true&endpointing=300&utterance_end_ms=1000&language=en-GB&keywords=Acme&keywords=Tuesday%3A2"
    );
    let headers = server.seen.headers.lock().expect("not poisoned").clone().expect("a request");
    assert_eq!(headers["authorization"], format!("Token {KEY}").as_str());
}

#[tokio::test]
async fn pcm_goes_little_endian_and_utterance_end_closes_a_turn_heard_as_partials() {
    let mut steps = vec![Step::AwaitAudio(640)];
    steps.extend(send(&[results("Is it open", 0.1, false, false), utterance_end(1.2), results("Is it open?", 0.1, true, false)]));
    steps.push(Step::AwaitText("CloseStream"));
    steps.push(Step::Close(1000, ""));
    let server = Server::start(Script::Ws(steps)).await;
    let mut c = server.config();
    c.model = "nova-3".into();
    c.language = Some("en".into());
    c.endpointing_ms = None;
    let provider: Box<dyn SttProvider> = Box::new(DeepgramStt::new(&c).expect("valid"));
    assert_eq!(provider.name(), "deepgram");
    let call = happ_speech::negotiate(AudioFormat::PCM_16K, provider.formats()).expect("a format");
    assert!(!call.transcode && !call.resample);
    let mut session = provider.start(AudioFormat::PCM_16K, &SttOptions { language: None, keywords: vec!["Acme:3".into()] }).expect("a session");
    let samples: Vec<i16> = (0..320).map(|i| (i as i16 - 160) * 200).collect();
    session.push(Frame::Pcm(&samples)).expect("queued");
    let mut events = Vec::new();
    while let Some(e) = session.next_event().await {
        let e = e.expect("no error");
        let last = matches!(&e, SttEvent::Final(_));
        events.push(e);
        if last {
            session.finish();
        }
    }
    assert_eq!(texts(&events), [("partial", "Is it open", false), ("final", "Is it open?", true)]);
    assert!(matches!(events.last(), Some(SttEvent::Done(_))));
    let expected: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    assert_eq!(server.seen.audio(), expected);
    let query = server.query();
    assert!(query.contains("model=nova-3&encoding=linear16&sample_rate=16000&channels=1"), "{query}");
    assert!(query.contains("endpointing=false") && query.contains("language=en&keyterm=Acme"), "{query}");
}

#[tokio::test]
async fn keep_alives_flow_while_no_audio_does() {
    let steps = vec![Step::AwaitText("KeepAlive"), Step::AwaitText("CloseStream"), Step::Close(1000, "")];
    let server = Server::start(Script::Ws(steps)).await;
    let mut c = server.config();
    c.keepalive_interval = Duration::from_millis(50);
    let mut session = DeepgramStt::new(&c).expect("valid").session(AudioFormat::ALAW_8K, &SttOptions::default()).expect("a session");
    // Silence on the line: no audio, no events, the stream stays open.
    assert!(tokio::time::timeout(Duration::from_millis(250), next(&mut session)).await.is_err());
    session.finish();
    let (events, error) = collect(&mut session).await;
    assert_eq!(error, None);
    assert!(matches!(events[..], [SttEvent::Done(_)]), "{events:?}");
    let texts = server.seen.texts();
    let keep_alives = texts.iter().filter(|t| *t == r#"{"type":"KeepAlive"}"#).count();
    assert!(keep_alives >= 3, "{texts:?}");
    assert!(server.query().contains("encoding=alaw&sample_rate=8000"));
}

async fn upgrade_error(status: u16, headers: Vec<(&'static str, &'static str)>, body: &'static str) -> Error {
    let server = Server::start(Script::Status { status, headers, body }).await;
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    session.push(Frame::G711(&[0xff; 160])).expect("queued while connecting");
    let (events, error) = collect(&mut session).await;
    assert!(events.is_empty());
    error.expect("an error")
}

#[tokio::test]
async fn refused_upgrades_become_typed_errors() {
    let body = r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"7c1d2e3f"}"#;
    let e = upgrade_error(401, vec![("dg-error", body)], body).await;
    assert_eq!(e, Error::Refused { status: 401, message: "Invalid credentials. (request 7c1d2e3f)".into(), code: Some("INVALID_AUTH".into()) });
    assert!(!e.is_retryable() && e.should_fall_back());

    // Without the header, the body that came with the response headers.
    let body = r#"{"err_code":"ASR_PAYMENT_REQUIRED","err_msg":"Project does not have enough credits for an ASR request.","request_id":"9a"}"#;
    let e = upgrade_error(402, vec![], body).await;
    assert!(matches!(&e, Error::Refused { status: 402, code: Some(c), .. } if c == "ASR_PAYMENT_REQUIRED"), "{e:?}");

    let body = r#"{"err_code":"TOO_MANY_REQUESTS","err_msg":"Too many requests. Please try again later","request_id":"5b"}"#;
    let e = upgrade_error(429, vec![("dg-error", body), ("retry-after", "3")], body).await;
    assert_eq!(e, Error::RateLimited { retry_after: Some(Duration::from_secs(3)), message: "Too many requests. Please try again later (request 5b)".into() });

    let e = upgrade_error(503, vec![], "").await;
    assert!(matches!(e, Error::Unavailable { status: Some(503), .. }), "{e:?}");
}

#[tokio::test]
async fn close_frames_become_typed_errors() {
    for (code, reason) in [
        (1011, "NET-0000 Deepgram did not receive audio data or a text message within the timeout window."),
        (1008, "DATA-0000 The payload cannot be decoded as audio. It is either not audio data or is a codec unsupported by Deepgram."),
    ] {
        let server = Server::start(Script::Ws(vec![Step::AwaitAudio(160), Step::Close(code, reason)])).await;
        let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
        session.push(Frame::G711(&[0xff; 160])).expect("queued");
        let (_, error) = collect(&mut session).await;
        match code {
            1011 => assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_secs(10) })),
            _ => assert!(matches!(&error, Some(Error::Refused { status: 400, code: Some(c), .. }) if c == "DATA-0000"), "{error:?}"),
        }
    }
    // A normal close that the client did not ask for.
    let server = Server::start(Script::Ws(vec![Step::Send(results("Hello", 0.0, false, false)), Step::Close(1000, "")])).await;
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    let (events, error) = collect(&mut session).await;
    assert_eq!(texts(&events), [("partial", "Hello", false)]);
    assert!(matches!(error, Some(Error::Closed { .. })), "{error:?}");
}

#[tokio::test]
async fn mid_stream_drop_is_closed() {
    let server = Server::start(Script::Ws(vec![Step::AwaitAudio(160), Step::Send(results("Hello there", 0.0, true, false)), Step::Drop])).await;
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    session.push(Frame::G711(&[0x7f; 160])).expect("queued");
    let (events, error) = collect(&mut session).await;
    assert_eq!(texts(&events), [("final", "Hello there", false)], "what arrived before the drop is kept");
    assert!(matches!(&error, Some(Error::Closed { .. })), "{error:?}");
    assert!(error.is_some_and(|e| e.is_retryable()));
    assert!(matches!(session.push(Frame::G711(&[0x7f; 160])), Err(Error::Closed { .. })));
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let server = Server::start(Script::Ws(vec![Step::Send(results("Hi", 0.0, false, false)), Step::Send("<html>502 Bad Gateway</html>".into())])).await;
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    let (events, error) = collect(&mut session).await;
    assert_eq!(texts(&events), [("partial", "Hi", false)]);
    assert!(matches!(&error, Some(Error::Protocol { .. })), "{error:?}");
    assert!(server.wait_closed().await, "the failed session let go of the socket");
}

#[tokio::test]
async fn stalled_results_time_out() {
    // The server reads audio and says nothing.
    let server = Server::start(Script::Ws(vec![])).await;
    let mut c = server.config();
    c.idle_timeout = Duration::from_millis(200);
    let mut session = DeepgramStt::new(&c).expect("valid").session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    let started = Instant::now();
    session.push(Frame::G711(&[0xff; 160])).expect("queued");
    let (_, error) = collect(&mut session).await;
    assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_millis(200) }));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn no_upgrade_in_time_is_a_first_byte_timeout() {
    // Accepts TCP connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut c = config(&format!("ws://{addr}/v1/listen"));
    c.connect_timeout = Duration::from_millis(200);
    let mut session = DeepgramStt::new(&c).expect("valid").session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    // Frames queue while connecting; past the queue's size, pushing fails instead of waiting.
    let frame = [0xffu8; 160];
    for _ in 0..AUDIO_QUEUE_FRAMES {
        session.push(Frame::G711(&frame)).expect("queued");
    }
    assert!(matches!(session.push(Frame::G711(&frame)), Err(Error::Unavailable { status: None, .. })));
    let (_, error) = collect(&mut session).await;
    assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::FirstByte, after: Duration::from_millis(200) }));
    hold.abort();
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    let mut session =
        DeepgramStt::new(&config(&format!("ws://{addr}/v1/listen"))).expect("valid").session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    let (_, error) = collect(&mut session).await;
    assert!(matches!(&error, Some(Error::Unavailable { status: None, .. })), "{error:?}");
}

#[tokio::test]
async fn cancel_closes_the_socket_at_once() {
    let server = Server::start(Script::Ws(vec![Step::AwaitAudio(160), Step::Send(results("Hold on", 0.0, false, false))])).await;
    let mut session = server.provider().session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    session.push(Frame::G711(&[0xff; 160])).expect("queued");
    assert!(matches!(next(&mut session).await, Some(Ok(SttEvent::Partial(_)))));
    session.cancel();
    assert_eq!(next(&mut session).await, Some(Err(Error::Cancelled)));
    assert_eq!(next(&mut session).await, None);
    assert!(server.wait_closed().await, "the server saw the connection close");
}

#[tokio::test]
async fn dropping_a_boxed_session_closes_the_socket() {
    let server = Server::start(Script::Ws(vec![Step::Send(results("Hi", 0.0, false, false))])).await;
    let provider: Box<dyn SttProvider> = Box::new(server.provider());
    let mut session = provider.start(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    assert!(matches!(session.next_event().await, Some(Ok(SttEvent::Partial(_)))));
    drop(session);
    assert!(server.wait_closed().await, "the server saw the connection close");
}

#[tokio::test]
async fn misuse_is_a_config_error() {
    let server = Server::start(Script::Ws(vec![])).await;
    let provider = server.provider();
    assert!(matches!(provider.session(AudioFormat::PCM_24K, &SttOptions::default()), Err(Error::Config { .. })));
    let mut session = provider.session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    assert!(matches!(session.push(Frame::Pcm(&[0; 160])), Err(Error::Config { .. })));
    session.finish();
    assert!(matches!(session.push(Frame::G711(&[0; 160])), Err(Error::Config { .. })));
}

#[test]
fn the_key_never_shows() {
    let c = config("wss://api.deepgram.com/v1/listen");
    let provider = DeepgramStt::new(&c).expect("valid");
    // A session needs a runtime; without one it says so.
    let e = provider.session(AudioFormat::MULAW_8K, &SttOptions::default()).expect_err("no runtime");
    let refused = happ_speech::Error::Refused { status: 401, message: "Invalid credentials.".into(), code: None };
    for text in [format!("{c:?}"), format!("{provider:?}"), e.to_string(), refused.to_string()] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let _guard = runtime.enter();
    let session = provider.session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    assert!(!format!("{session:?}").contains(KEY));
    for bad in ["https://api.deepgram.com/v1/listen", "not a url"] {
        assert!(matches!(DeepgramStt::new(&config(bad)), Err(Error::Config { .. })), "{bad}");
    }
    let mut c = config("ws://127.0.0.1:1/v1/listen");
    c.api_key = Secret::new("bad\nkey");
    assert!(matches!(DeepgramStt::new(&c), Err(Error::Config { .. })));
    c.api_key = Secret::new("");
    assert!(matches!(DeepgramStt::new(&c), Err(Error::Config { .. })));
}

/// The adapter's overhead on loopback: what a push costs the caller's task, and the round trip
/// of a frame through the queue, the connection task, the socket, a server that answers every
/// frame with a result at once, and back to an event. Prints figures; asserts none. Run with
/// `cargo test --release -p happ-speech --test deepgram_stt -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn overhead_figures() {
    const FRAMES: usize = 2000;
    let app = Router::new().route(
        "/v1/listen",
        any(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                let mut n = 0;
                while let Some(Ok(m)) = socket.recv().await {
                    if let Message::Binary(_) = m {
                        n += 1;
                        let answer = results(&format!("word{n}"), n as f64 * 0.02, false, false);
                        if socket.send(Message::Text(answer.into())).await.is_err() {
                            break;
                        }
                    }
                }
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let provider = DeepgramStt::new(&config(&format!("ws://{addr}/v1/listen"))).expect("valid");
    let mut session = provider.session(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    let frame = [0xffu8; 160];
    let mut push = Vec::with_capacity(FRAMES);
    let mut round_trip = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        session.push(Frame::G711(&frame)).expect("queued");
        push.push(t.elapsed());
        assert!(matches!(next(&mut session).await, Some(Ok(SttEvent::Partial(_)))));
        round_trip.push(t.elapsed());
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() - 1) * p / 100]
    };
    println!("{FRAMES} µ-law frames of 20 ms, one result per frame, loopback server on the same 2 cores:");
    println!("  push (copy + queue):           p50 {:?}  p99 {:?}", pct(&mut push, 50), pct(&mut push, 99));
    println!("  frame → server → result event: p50 {:?}  p99 {:?}", pct(&mut round_trip, 50), pct(&mut round_trip, 99));
    session.cancel();
    server.abort();
}
