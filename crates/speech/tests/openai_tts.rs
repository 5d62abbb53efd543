//! The OpenAI-compatible speech adapter against a local server on loopback that answers
//! `POST /v1/audio/speech` as the OpenAI API reference documents it: a chunked body of raw 24 kHz
//! 16-bit PCM for `response_format: "pcm"`, or an `{"error": {...}}` body with a 4xx/5xx status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use happ_speech::openai::{OpenAiSpeech, OpenAiSpeechConfig, OpenAiSpeechStream};
use happ_speech::{AudioFormat, Error, Secret, TimeoutPhase, TtsEvent, TtsOptions, TtsProvider, TtsStream};
use tokio::sync::{Notify, mpsc};

const KEY: &str = "sk-test-speech-0123456789abcdef";

/// What the server does after the headers of a 200.
#[derive(Clone, Debug)]
enum Step {
    /// Write these bytes as one HTTP chunk.
    Bytes(Vec<u8>),
    /// Wait.
    Delay(Duration),
    /// Break the connection mid-body.
    Abort,
    /// Send nothing more, keeping the connection open.
    Stall,
    /// Send silence every 10 ms until the client goes away, then count it.
    UntilClosed,
}

/// The answer to one request. Scripts are chosen by the request's `input` (the requests of one
/// stream run on two connections at once, so their arrival order is not theirs to keep).
#[derive(Clone, Debug)]
enum Script {
    Audio { content_type: &'static str, steps: Vec<Step> },
    Status { status: u16, headers: Vec<(&'static str, String)>, body: String },
    SlowHeaders(Duration),
}

#[derive(Default)]
struct Seen {
    /// Headers, body and arrival time of each request.
    requests: Mutex<Vec<(HeaderMap, serde_json::Value, Instant)>>,
    /// When each request's body was completely written, by request index (arrival order).
    body_done: Mutex<Vec<(usize, Instant)>>,
    closed: AtomicUsize,
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

impl Server {
    /// `scripts`: the answer to an input starting with the key; the last one answers any other.
    async fn start(scripts: Vec<(&'static str, Script)>) -> Self {
        let seen = Arc::new(Seen::default());
        let state = (Arc::new(scripts), Arc::clone(&seen));
        let app = Router::new().route("/v1/audio/speech", post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn config(&self) -> OpenAiSpeechConfig {
        let mut c = OpenAiSpeechConfig::new(format!("http://{}/v1", self.addr), Some(Secret::new(KEY)));
        c.first_byte_timeout = Duration::from_secs(5);
        c.idle_timeout = Duration::from_secs(5);
        c
    }

    fn provider(&self) -> OpenAiSpeech {
        OpenAiSpeech::new(&self.config()).expect("valid config")
    }

    fn requests(&self) -> Vec<(HeaderMap, serde_json::Value, Instant)> {
        self.seen.requests.lock().expect("not poisoned").clone()
    }

    /// Waits until `check` holds on what the server saw (the 5 s bound only keeps a failing test
    /// from hanging).
    async fn wait_for(&self, check: impl Fn(&Seen) -> bool) -> bool {
        let wait = async {
            loop {
                let changed = self.seen.changed.notified();
                if check(&self.seen) {
                    break;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.is_ok()
    }
}

type AppState = (Arc<Vec<(&'static str, Script)>>, Arc<Seen>);

async fn handle(State((scripts, seen)): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let input = json["input"].as_str().unwrap_or_default().to_owned();
    let index = {
        let mut requests = seen.requests.lock().expect("not poisoned");
        requests.push((headers, json, Instant::now()));
        requests.len() - 1
    };
    seen.changed.notify_waiters();
    let script = scripts.iter().find(|(key, _)| input.starts_with(key)).or(scripts.last()).map(|(_, s)| s.clone()).expect("a script");
    match script {
        Script::Status { status, headers, body } => {
            let mut r = Response::builder().status(status).header("content-type", "application/json");
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).expect("a valid response")
        }
        Script::SlowHeaders(d) => {
            tokio::time::sleep(d).await;
            Response::new(Body::empty())
        }
        Script::Audio { content_type, steps } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            tokio::spawn(async move {
                for step in steps {
                    match step {
                        Step::Bytes(b) => {
                            if tx.send(Ok(Bytes::from(b))).await.is_err() {
                                return;
                            }
                        }
                        Step::Delay(d) => tokio::time::sleep(d).await,
                        Step::Abort => {
                            let _ = tx.send(Err(std::io::Error::other("server aborts"))).await;
                            return;
                        }
                        Step::Stall => tokio::time::sleep(Duration::from_secs(3600)).await,
                        Step::UntilClosed => loop {
                            if tx.send(Ok(Bytes::from_static(&[0; 480]))).await.is_err() {
                                seen.closed.fetch_add(1, Ordering::SeqCst);
                                seen.changed.notify_waiters();
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        },
                    }
                }
                // Hyper has taken the last chunk once the channel has room again.
                let _ = tx.reserve().await;
                seen.body_done.lock().expect("not poisoned").push((index, Instant::now()));
                seen.changed.notify_waiters();
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
            Response::builder().status(StatusCode::OK).header("content-type", content_type).body(Body::from_stream(stream)).expect("a valid response")
        }
    }
}

/// `millis` of a recognisable 24 kHz PCM pattern: sample i of sentence `tag` is `tag * 1000 + i`.
fn pcm(tag: i16, millis: usize) -> Vec<u8> {
    (0..millis * 24).flat_map(|i| (tag.wrapping_mul(1000).wrapping_add(i as i16)).to_le_bytes()).collect()
}

/// `data` written in chunks of the given odd sizes (so chunks end mid-sample), `delay` apart.
fn chunked(data: &[u8], sizes: &[usize], delay: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        steps.push(Step::Bytes(chunk.to_vec()));
        steps.push(Step::Delay(delay));
        rest = tail;
    }
    steps
}

fn audio(steps: Vec<Step>) -> Script {
    Script::Audio { content_type: "audio/pcm", steps }
}

/// Every event until the stream ends: the audio bytes, the chunks' sizes, and how it ended.
async fn collect(stream: &mut OpenAiSpeechStream) -> (Vec<u8>, Vec<usize>, Result<TtsEvent, Error>) {
    let mut data = Vec::new();
    let mut sizes = Vec::new();
    while let Some(item) = stream.next_event().await {
        match item {
            Ok(TtsEvent::Audio(chunk)) => {
                assert_eq!(chunk.format, AudioFormat::PCM_24K);
                sizes.push(chunk.data.len());
                data.extend_from_slice(&chunk.data);
            }
            Ok(done @ TtsEvent::Done(_)) => {
                assert!(stream.next_event().await.is_none(), "nothing follows Done");
                return (data, sizes, Ok(done));
            }
            Err(e) => {
                assert!(stream.next_event().await.is_none(), "nothing follows an error");
                return (data, sizes, Err(e));
            }
        }
    }
    panic!("the stream ended without Done or an error");
}

#[tokio::test]
async fn two_sentences_two_requests_audio_in_order_one_request_ahead() {
    let first = pcm(1, 200);
    let second = pcm(2, 120);
    // The first body takes about 30 × 15 ms; the second request must arrive well before it ends.
    let server = Server::start(vec![
        ("Hello", audio(chunked(&first, &[301, 7, 333], Duration::from_millis(15)))),
        ("How", audio(chunked(&second, &[999, 1], Duration::from_millis(5)))),
    ])
    .await;
    let mut c = server.config();
    c.model = "tts-1".into();
    c.speed = Some(1.1);
    c.instructions = Some("Warm and calm.".into());
    let provider = OpenAiSpeech::new(&c).expect("valid");
    let mut stream = provider.stream(&TtsOptions { voice: Some("nova".into()), language: None });
    stream.push_text("Hello, this is Acme.").expect("pushed");
    stream.push_text("How can I help?").expect("pushed");
    stream.finish();
    let (data, sizes, end) = collect(&mut stream).await;
    let Ok(TtsEvent::Done(latency)) = end else { panic!("{end:?}") };
    assert_eq!(data, [first, second].concat(), "both sentences whole and in order");
    assert!(sizes.iter().any(|s| s % 2 == 1), "chunks end mid-sample and are passed on as they are: {sizes:?}");
    assert!(latency.first_audio.is_some_and(|f| f < latency.total));
    assert_eq!(stream.requests(), 2);

    let mut requests: Vec<_> = server.requests().into_iter().enumerate().collect();
    assert_eq!(requests.len(), 2);
    // In sentence order (the two connections may deliver them the other way round).
    requests.sort_by_key(|(_, (_, body, _))| body["input"] != "Hello, this is Acme.");
    let (_, (headers, body, _)) = &requests[0];
    assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        *body,
        serde_json::json!({"model": "tts-1", "input": "Hello, this is Acme.", "voice": "nova", "response_format": "pcm", "speed": 1.1, "instructions": "Warm and calm."})
    );
    let (_, (_, second_body, second_arrived)) = &requests[1];
    assert_eq!(second_body["input"], "How can I help?");
    let done = server.seen.body_done.lock().expect("not poisoned").clone();
    let first_index = requests[0].0;
    let first_done = done.iter().find(|(i, _)| *i == first_index).map(|(_, t)| *t).expect("first body written");
    assert!(*second_arrived < first_done, "the second request arrived while the first answer was still streaming");
}

#[tokio::test]
async fn defaults_and_sentences_over_the_input_limit() {
    let server = Server::start(vec![("", audio(vec![Step::Bytes(pcm(3, 10))]))]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    let long = "A very long sentence. ".repeat(250);
    stream.push_text(&long).expect("pushed");
    stream.finish();
    let (data, _, end) = collect(&mut stream).await;
    assert!(end.is_ok(), "{end:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "5500 characters are two requests");
    assert_eq!(data.len(), 2 * pcm(3, 10).len());
    let (_, body, _) = &requests[0];
    assert_eq!(body["model"], "gpt-4o-mini-tts");
    assert_eq!(body["voice"], "alloy");
    assert!(body.get("speed").is_none() && body.get("instructions").is_none());
    let mut inputs: Vec<&str> = requests.iter().map(|(_, b, _)| b["input"].as_str().expect("input")).collect();
    // The longer piece is the first: cut at the limit.
    inputs.sort_by_key(|i| std::cmp::Reverse(i.len()));
    assert_eq!(inputs.concat(), long);
    assert!(inputs.iter().all(|i| i.chars().count() <= 4096));
}

#[tokio::test]
async fn finish_without_text_is_done_at_once() {
    let server = Server::start(vec![("", audio(vec![]))]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("  ").expect("ignored");
    stream.finish();
    let (data, _, end) = collect(&mut stream).await;
    assert!(data.is_empty() && matches!(end, Ok(TtsEvent::Done(_))));
    assert!(server.requests().is_empty());
}

async fn error_for(script: Script) -> Error {
    let server = Server::start(vec![("", script)]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("Hello.").expect("pushed");
    stream.finish();
    let (data, _, end) = collect(&mut stream).await;
    assert!(data.is_empty());
    end.expect_err("an error")
}

fn status(status: u16, headers: Vec<(&'static str, String)>, body: &str) -> Script {
    Script::Status { status, headers, body: body.into() }
}

#[tokio::test]
async fn error_answers_become_typed_errors() {
    let e = error_for(status(
        401,
        vec![],
        r#"{"error":{"message":"Incorrect API key provided: sk-test-***cdef.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    ))
    .await;
    assert!(matches!(&e, Error::Refused { status: 401, code: Some(c), .. } if c == "invalid_api_key"), "{e:?}");
    let e = error_for(status(
        429,
        vec![("retry-after-ms", "1500".into())],
        r#"{"error":{"message":"Rate limit reached for tts-1 on requests per min (RPM): Limit 3.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    ))
    .await;
    assert_eq!(
        e,
        Error::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
            message: "Rate limit reached for tts-1 on requests per min (RPM): Limit 3.".into()
        }
    );
    let e = error_for(status(
        500,
        vec![],
        r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
    ))
    .await;
    assert!(matches!(&e, Error::Unavailable { status: Some(500), detail } if detail.starts_with("The server had an error")), "{e:?}");
    let e = error_for(status(400, vec![], r#"{"error":{"message":"Invalid voice 'bob'","type":"invalid_request_error","param":"voice","code":null}}"#)).await;
    assert!(matches!(&e, Error::Refused { status: 400, message, .. } if message.contains("Invalid voice")), "{e:?}");
}

#[tokio::test]
async fn json_or_html_with_200_is_a_protocol_error() {
    let e = error_for(Script::Audio { content_type: "application/json", steps: vec![Step::Bytes(br#"{"error":{"message":"nope"}}"#.to_vec())] }).await;
    assert!(matches!(&e, Error::Protocol { detail } if detail.contains("application/json")), "{e:?}");
    assert!(!e.is_retryable());
    let e = error_for(Script::Audio { content_type: "text/html; charset=utf-8", steps: vec![Step::Bytes(b"<html>login</html>".to_vec())] }).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    // `application/octet-stream` is audio.
    let server = Server::start(vec![("", Script::Audio { content_type: "application/octet-stream", steps: vec![Step::Bytes(pcm(1, 5))] })]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("Hi.").expect("pushed");
    stream.finish();
    assert_eq!(collect(&mut stream).await.0, pcm(1, 5));
}

#[tokio::test]
async fn truncated_body_is_closed_after_the_audio_it_had() {
    let mut steps = chunked(&pcm(4, 20), &[480], Duration::from_millis(5));
    steps.push(Step::Abort);
    let server = Server::start(vec![("", audio(steps))]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("Hello.").expect("pushed");
    stream.finish();
    let (data, _, end) = collect(&mut stream).await;
    assert_eq!(data, pcm(4, 20), "what arrived before the break is kept");
    assert!(matches!(&end, Err(Error::Closed { .. })), "{end:?}");
}

#[tokio::test]
async fn stall_is_an_idle_timeout_and_slow_headers_a_first_byte_timeout() {
    let server = Server::start(vec![("", audio(vec![Step::Bytes(pcm(5, 10)), Step::Stall]))]).await;
    let mut c = server.config();
    c.idle_timeout = Duration::from_millis(200);
    let mut stream = OpenAiSpeech::new(&c).expect("valid").stream(&TtsOptions::default());
    stream.push_text("Hello.").expect("pushed");
    let (data, _, end) = collect(&mut stream).await;
    assert_eq!(data, pcm(5, 10));
    assert_eq!(end, Err(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_millis(200) }));

    let server = Server::start(vec![("", Script::SlowHeaders(Duration::from_secs(30)))]).await;
    let mut c = server.config();
    c.first_byte_timeout = Duration::from_millis(200);
    let mut stream = OpenAiSpeech::new(&c).expect("valid").stream(&TtsOptions::default());
    stream.push_text("Hello.").expect("pushed");
    let (_, _, end) = collect(&mut stream).await;
    assert_eq!(end, Err(Error::Timeout { phase: TimeoutPhase::FirstByte, after: Duration::from_millis(200) }));
}

#[tokio::test]
async fn an_error_of_the_request_ahead_comes_after_the_audio_before_it() {
    let server = Server::start(vec![
        ("One", audio(chunked(&pcm(6, 60), &[700], Duration::from_millis(10)))),
        ("Two", status(503, vec![], r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#)),
    ])
    .await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("One.").expect("pushed");
    stream.push_text("Two.").expect("pushed");
    stream.finish();
    let (data, _, end) = collect(&mut stream).await;
    assert_eq!(data, pcm(6, 60));
    assert!(matches!(&end, Err(Error::Unavailable { status: Some(503), .. })), "{end:?}");
}

#[tokio::test]
async fn cancel_closes_both_requests() {
    let server = Server::start(vec![("", audio(vec![Step::UntilClosed]))]).await;
    let provider: Box<dyn TtsProvider> = Box::new(server.provider());
    let mut stream = provider.start(AudioFormat::PCM_24K, &TtsOptions::default()).expect("a stream");
    stream.push_text("One.").expect("pushed");
    stream.push_text("Two.").expect("pushed");
    assert!(matches!(stream.next_event().await, Some(Ok(TtsEvent::Audio(_)))));
    assert!(server.wait_for(|s| s.requests.lock().expect("not poisoned").len() == 2).await, "the second request went ahead");
    stream.cancel();
    assert!(matches!(stream.push_text("Three."), Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, Some(Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, None);
    assert!(server.wait_for(|s| s.closed.load(Ordering::SeqCst) == 2).await, "the server saw both connections close");
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    let provider = OpenAiSpeech::new(&OpenAiSpeechConfig::new(format!("http://{addr}/v1"), Some(Secret::new(KEY)))).expect("valid");
    let mut stream = provider.stream(&TtsOptions::default());
    stream.push_text("Hello.").expect("pushed");
    let (_, _, end) = collect(&mut stream).await;
    let e = end.expect_err("an error");
    assert!(matches!(&e, Error::Unavailable { status: None, .. }), "{e:?}");
    assert!(!e.to_string().contains(KEY));
}

#[test]
fn the_key_never_shows() {
    let mut c = OpenAiSpeechConfig::new("https://api.openai.com/v1", Some(Secret::new(KEY)));
    c.instructions = Some("Be kind.".into());
    let provider = OpenAiSpeech::new(&c).expect("valid");
    let stream = provider.stream(&TtsOptions::default());
    for text in [format!("{c:?}"), format!("{provider:?}"), format!("{stream:?}")] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    assert!(matches!(OpenAiSpeech::new(&OpenAiSpeechConfig::new("ws://example.com", None)), Err(Error::Config { .. })));
    assert!(matches!(OpenAiSpeech::new(&OpenAiSpeechConfig::new("http://x/v1", Some(Secret::new("bad\nkey")))), Err(Error::Config { .. })));
}

/// Time to first audio and per-chunk cost on loopback with a zero-delay server. Prints figures;
/// asserts none. Run with `cargo test --release -p happ-speech --test openai_tts -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn overhead_figures() {
    const RUNS: usize = 300;
    let sentence = pcm(7, 1000);
    let server = Server::start(vec![("", audio(vec![Step::Bytes(sentence.clone())]))]).await;
    let provider = server.provider();
    let mut first = Vec::new();
    let mut total = Vec::new();
    for _ in 0..RUNS {
        let mut stream = provider.stream(&TtsOptions::default());
        stream.push_text("One sentence.").expect("pushed");
        stream.push_text("Another one.").expect("pushed");
        stream.finish();
        let (_, _, end) = collect(&mut stream).await;
        let Ok(TtsEvent::Done(l)) = end else { panic!("{end:?}") };
        first.push(l.first_audio.unwrap_or_default());
        total.push(l.total);
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() - 1) * p / 100]
    };
    println!("{RUNS} streams of two sentences (1 s of 24 kHz PCM each), zero-delay loopback server, warm pool:");
    println!("  first audio: p50 {:?}  p99 {:?}", pct(&mut first, 50), pct(&mut first, 99));
    println!("  whole stream: p50 {:?}  p99 {:?}", pct(&mut total, 50), pct(&mut total, 99));

    // Per-chunk cost: one long body in 20 ms chunks (960 bytes), written as fast as possible.
    const CHUNKS: usize = 20_000;
    let steps = (0..CHUNKS).map(|i| Step::Bytes(vec![i as u8; 960])).collect();
    let server = Server::start(vec![("", audio(steps))]).await;
    let mut stream = server.provider().stream(&TtsOptions::default());
    stream.push_text("Long.").expect("pushed");
    stream.finish();
    let started = Instant::now();
    let (data, sizes, end) = collect(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(end.is_ok() && data.len() == CHUNKS * 960);
    println!("  {CHUNKS} chunks of 20 ms through HTTP: {:?} per chunk ({} reads; server and client on the same 2 cores)", elapsed / CHUNKS as u32, sizes.len());
}
