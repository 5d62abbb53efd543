//! The OpenAI-compatible chat adapter against a local server on loopback that streams the real
//! wire format (`text/event-stream` of `chat.completion.chunk` events, as the OpenAI API reference
//! documents them), with delays, disconnects, stalls and error answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use happ_speech::openai::{OpenAiChat, OpenAiChatStream, OpenAiConfig};
use happ_speech::{ChatRequest, Error, FinishReason, LlmEvent, LlmProvider, Message, Secret, TimeoutPhase, ToolCall, ToolDef};
use tokio::sync::{Notify, mpsc};

const KEY: &str = "sk-test-0123456789abcdef";

/// What the server does after the headers of a 200 stream.
#[derive(Clone, Debug)]
enum Step {
    /// Write these bytes as one HTTP chunk.
    Bytes(String),
    /// Wait.
    Delay(Duration),
    /// Break the connection (the body errors, hyper aborts it without the last chunk).
    Abort,
    /// Send nothing more, keeping the connection open.
    Stall,
    /// Send keep-alive comments until the client goes away, then report it.
    UntilClosed,
}

#[derive(Clone, Debug)]
enum Script {
    Stream(Vec<Step>),
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Answer nothing for this long.
    SlowHeaders(Duration),
}

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(HeaderMap, serde_json::Value)>>,
    closed: AtomicBool,
    closed_notify: Notify,
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
        let state = (Arc::new(script), Arc::clone(&seen));
        let app = Router::new().route("/v1/chat/completions", post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        // Like a provider's front end, write each event at once: with Nagle's algorithm the first
        // body write waits for the ACK of the headers, which the client delays by up to 40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn provider(&self) -> OpenAiChat {
        OpenAiChat::new(&config(&self.base_url())).expect("valid config")
    }

    fn request(&self, i: usize) -> (HeaderMap, serde_json::Value) {
        self.seen.requests.lock().expect("not poisoned")[i].clone()
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

fn config(base_url: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(base_url, Some(Secret::new(KEY)));
    c.first_byte_timeout = Duration::from_secs(5);
    c.idle_timeout = Duration::from_secs(5);
    c
}

async fn handle(State((script, seen)): State<(Arc<Script>, Arc<Seen>)>, headers: HeaderMap, body: Bytes) -> Response {
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    seen.requests.lock().expect("not poisoned").push((headers, json));
    match &*script {
        Script::Status { status, headers, body } => {
            let mut r = Response::builder().status(*status).header("content-type", "application/json");
            for (k, v) in headers {
                r = r.header(*k, v);
            }
            r.body(Body::from(body.clone())).expect("a valid response")
        }
        Script::SlowHeaders(d) => {
            tokio::time::sleep(*d).await;
            Response::new(Body::empty())
        }
        Script::Stream(steps) => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            let steps = steps.clone();
            tokio::spawn(async move {
                for step in steps {
                    match step {
                        Step::Bytes(b) => {
                            if tx.send(Ok(Bytes::from(b))).await.is_err() {
                                break;
                            }
                        }
                        Step::Delay(d) => tokio::time::sleep(d).await,
                        Step::Abort => {
                            let _ = tx.send(Err(std::io::Error::other("server aborts"))).await;
                            return;
                        }
                        Step::Stall => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Step::UntilClosed => loop {
                            if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                                seen.closed.store(true, Ordering::SeqCst);
                                seen.closed_notify.notify_waiters();
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        },
                    }
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream; charset=utf-8")
                .header("cache-control", "no-cache")
                .body(Body::from_stream(stream))
                .expect("a valid response")
        }
    }
}

/// One `chat.completion.chunk` event as OpenAI sends it, `delta` and `finish_reason` given.
fn chunk(delta: &str, finish: Option<&str>) -> String {
    let finish = finish.map(|f| format!("\"{f}\"")).unwrap_or_else(|| "null".into());
    format!(
        "data: {{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718345013,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_9cb5d38cf7\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
    )
}

fn text(t: &str) -> String {
    chunk(&format!("{{\"content\":{}}}", serde_json::Value::from(t)), None)
}

fn done() -> String {
    "data: [DONE]\n\n".into()
}

fn bytes(chunks: &[String]) -> Vec<Step> {
    chunks.iter().cloned().map(Step::Bytes).collect()
}

fn request() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![Message::System("You answer the phone for Acme.".into()), Message::User("When are you open?".into())])
}

/// Every event until the stream ends, the error (if any) last.
async fn collect(stream: &mut OpenAiChatStream) -> (Vec<LlmEvent>, Option<Error>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next_event().await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => {
                assert!(stream.next_event().await.is_none(), "nothing follows an error");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

fn texts(events: &[LlmEvent]) -> Vec<&str> {
    events.iter().filter_map(|e| if let LlmEvent::Text(t) = e { Some(t.as_str()) } else { None }).collect()
}

fn finish(events: &[LlmEvent]) -> Option<FinishReason> {
    match events.last() {
        Some(LlmEvent::Done(s)) => Some(s.finish.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn text_deltas_arrive_in_order() {
    // CRLF line endings, keep-alive comments, the role-only first chunk, an empty-content chunk.
    let mut steps = vec![Step::Bytes(": OPENROUTER PROCESSING\r\n\r\n".into())];
    steps.extend(bytes(&[
        chunk(r#"{"role":"assistant","content":"","refusal":null}"#, None).replace('\n', "\r\n"),
        text("We're open "),
        text("9 to 5, "),
        text("Monday to Friday."),
    ]));
    steps.push(Step::Bytes(": keep-alive\n\n".into()));
    steps.extend(bytes(&[chunk("{}", Some("stop")), done()]));
    let server = Server::start(Script::Stream(steps)).await;
    let mut stream = server.provider().stream(&request()).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    assert_eq!(error, None);
    assert_eq!(texts(&events), ["We're open ", "9 to 5, ", "Monday to Friday."]);
    assert_eq!(finish(&events), Some(FinishReason::Stop));
    let Some(LlmEvent::Done(summary)) = events.last() else { panic!("ends with Done") };
    assert!(summary.latency.first_byte.is_some() && summary.latency.first_token.is_some());
    assert_eq!(summary.chunks, 5);

    let (headers, body) = server.request(0);
    assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "When are you open?");
    assert!(body.get("tools").is_none(), "no tools offered, none sent");
}

#[tokio::test]
async fn tool_call_deltas_split_across_chunks_are_assembled() {
    // Two parallel calls by index, arguments split mid-JSON and interleaved; the whole stream then
    // cut into 7-byte HTTP chunks so SSE lines also straddle reads.
    let stream: String = [
        chunk(r#"{"role":"assistant","content":null}"#, None),
        chunk(r#"{"tool_calls":[{"index":0,"id":"call_DdmO9","type":"function","function":{"name":"get_opening_hours","arguments":""}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"da"}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":1,"id":"call_Q8x2","type":"function","function":{"name":"transfer","arguments":""}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"y\": \"Satur"}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":1,"function":{"arguments":"{\"number\":"}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"day\"}"}}]}"#, None),
        chunk(r#"{"tool_calls":[{"index":1,"function":{"arguments":"\"+44 20 7946 0958\"}"}}]}"#, None),
        chunk("{}", Some("tool_calls")),
        done(),
    ]
    .concat();
    let steps = stream.as_bytes().chunks(7).map(|c| Step::Bytes(String::from_utf8_lossy(c).into_owned())).collect();
    let server = Server::start(Script::Stream(steps)).await;
    let mut req = request();
    req.tools.push(ToolDef {
        name: "get_opening_hours".into(),
        description: "Opening hours of a day".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}),
    });
    let mut stream = server.provider().stream(&req).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    assert_eq!(error, None);
    assert_eq!(
        events[..2],
        [
            LlmEvent::ToolCall(ToolCall { id: "call_DdmO9".into(), name: "get_opening_hours".into(), arguments: r#"{"day": "Saturday"}"#.into() }),
            LlmEvent::ToolCall(ToolCall { id: "call_Q8x2".into(), name: "transfer".into(), arguments: r#"{"number":"+44 20 7946 0958"}"#.into() }),
        ]
    );
    assert_eq!(events.len(), 3);
    assert_eq!(finish(&events), Some(FinishReason::ToolCalls));
    let (_, body) = server.request(0);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"][0], "day");
}

#[tokio::test]
async fn slow_stream_is_read_to_the_end() {
    let mut steps = Vec::new();
    for word in ["Our ", "office ", "closes ", "at ", "six."] {
        steps.push(Step::Delay(Duration::from_millis(60)));
        steps.push(Step::Bytes(text(word)));
    }
    steps.extend(bytes(&[chunk("{}", Some("stop")), done()]));
    let server = Server::start(Script::Stream(steps)).await;
    let mut c = config(&server.base_url());
    c.idle_timeout = Duration::from_secs(2);
    let mut stream = OpenAiChat::new(&c).expect("valid").stream(&request()).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    assert_eq!(error, None);
    assert_eq!(texts(&events).concat(), "Our office closes at six.");
}

#[tokio::test]
async fn mid_stream_disconnect_is_closed() {
    let mut steps = bytes(&[text("Hello, "), text("how can")]);
    steps.push(Step::Delay(Duration::from_millis(20)));
    steps.push(Step::Abort);
    let server = Server::start(Script::Stream(steps)).await;
    let mut stream = server.provider().stream(&request()).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    assert_eq!(texts(&events), ["Hello, ", "how can"], "what arrived before the break is kept");
    assert!(matches!(error, Some(Error::Closed { .. })), "{error:?}");
    assert!(error.is_some_and(|e| e.is_retryable()));
}

#[tokio::test]
async fn clean_end_without_done_is_closed_but_finish_reason_completes() {
    let server = Server::start(Script::Stream(bytes(&[text("Hello")]))).await;
    let (_, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert!(matches!(error, Some(Error::Closed { .. })), "{error:?}");

    let server = Server::start(Script::Stream(bytes(&[text("Hello"), chunk("{}", Some("length"))]))).await;
    let (events, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert_eq!(error, None);
    assert_eq!(finish(&events), Some(FinishReason::Length));
}

#[tokio::test]
async fn stalled_stream_times_out() {
    let mut steps = bytes(&[text("Let me check")]);
    steps.push(Step::Stall);
    let server = Server::start(Script::Stream(steps)).await;
    let mut c = config(&server.base_url());
    c.idle_timeout = Duration::from_millis(200);
    let mut stream = OpenAiChat::new(&c).expect("valid").stream(&request()).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    assert_eq!(texts(&events), ["Let me check"]);
    assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::Idle, after: Duration::from_millis(200) }));
}

#[tokio::test]
async fn keep_alives_hold_a_slow_stream_open() {
    // The keep-alive comments come faster than the idle timeout; the text comes slower.
    let mut steps = Vec::new();
    for _ in 0..12 {
        steps.push(Step::Delay(Duration::from_millis(50)));
        steps.push(Step::Bytes(": ping\n\n".into()));
    }
    steps.extend(bytes(&[text("Still here."), chunk("{}", Some("stop")), done()]));
    let server = Server::start(Script::Stream(steps)).await;
    let mut c = config(&server.base_url());
    c.idle_timeout = Duration::from_millis(400);
    let (events, error) = collect(&mut OpenAiChat::new(&c).expect("valid").stream(&request()).expect("a stream")).await;
    assert_eq!(error, None);
    assert_eq!(texts(&events), ["Still here."]);
}

#[tokio::test]
async fn no_headers_in_time_is_a_first_byte_timeout() {
    let server = Server::start(Script::SlowHeaders(Duration::from_secs(30))).await;
    let mut c = config(&server.base_url());
    c.first_byte_timeout = Duration::from_millis(200);
    let (_, error) = collect(&mut OpenAiChat::new(&c).expect("valid").stream(&request()).expect("a stream")).await;
    assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::FirstByte, after: Duration::from_millis(200) }));
}

async fn error_for(status: u16, headers: Vec<(&'static str, String)>, body: &str) -> Error {
    let server = Server::start(Script::Status { status, headers, body: body.into() }).await;
    let (events, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert!(events.is_empty());
    error.expect("an error")
}

#[tokio::test]
async fn error_answers_become_typed_errors() {
    let e = error_for(
        401,
        vec![],
        r#"{"error":{"message":"Incorrect API key provided: sk-test-***cdef. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    )
    .await;
    assert!(
        matches!(&e, Error::Refused { status: 401, code: Some(c), message } if c == "invalid_api_key" && message.starts_with("Incorrect API key")),
        "{e:?}"
    );
    assert!(!e.is_retryable() && e.should_fall_back());

    let e = error_for(
        429,
        vec![("retry-after", "2".into())],
        r#"{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    )
    .await;
    assert!(matches!(&e, Error::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(2)), "{e:?}");
    assert!(e.is_retryable());

    let e = error_for(
        500,
        vec![],
        r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
    )
    .await;
    assert!(matches!(&e, Error::Unavailable { status: Some(500), detail } if detail.starts_with("The server had an error")), "{e:?}");
    assert!(e.is_retryable());

    let e = error_for(
        404,
        vec![],
        r#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
    )
    .await;
    assert!(matches!(&e, Error::Refused { status: 404, .. }), "{e:?}");
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let server = Server::start(Script::Stream(bytes(&[text("Hi"), "data: {\"choices\":[{\"delta\":\n\n".into()]))).await;
    let (events, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert_eq!(texts(&events), ["Hi"]);
    assert!(matches!(error, Some(Error::Protocol { .. })), "{error:?}");

    // A proxy's HTML page with a 200.
    let server = Server::start(Script::Stream(bytes(&["<html><body>Gateway login</body></html>\n".into()]))).await;
    let (_, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert!(matches!(&error, Some(Error::Protocol { .. })), "{error:?}");
    assert!(!error.is_some_and(|e| e.is_retryable()));
}

#[tokio::test]
async fn error_inside_the_stream_is_unavailable() {
    let server = Server::start(Script::Stream(bytes(&[
        text("Hi"),
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n".into(),
    ])))
    .await;
    let (_, error) = collect(&mut server.provider().stream(&request()).expect("a stream")).await;
    assert!(matches!(&error, Some(Error::Unavailable { status: None, detail }) if detail.contains("overloaded")), "{error:?}");
}

#[tokio::test]
async fn cancel_mid_stream_closes_the_connection() {
    let mut steps = bytes(&[text("One, "), text("two, ")]);
    steps.push(Step::UntilClosed);
    let server = Server::start(Script::Stream(steps)).await;
    let mut stream = server.provider().stream(&request()).expect("a stream");
    for expected in ["One, ", "two, "] {
        assert_eq!(stream.next_event().await, Some(Ok(LlmEvent::Text(expected.into()))));
    }
    happ_speech::LlmStream::cancel(&mut stream);
    assert_eq!(stream.next_event().await, Some(Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, None);
    assert!(server.wait_closed().await, "the server saw the connection close");
}

#[tokio::test]
async fn dropping_a_boxed_stream_closes_the_connection() {
    let mut steps = bytes(&[text("One, ")]);
    steps.push(Step::UntilClosed);
    let server = Server::start(Script::Stream(steps)).await;
    let provider: Box<dyn LlmProvider> = Box::new(server.provider());
    let mut stream = provider.chat(request()).expect("a stream");
    assert_eq!(stream.next_event().await, Some(Ok(LlmEvent::Text("One, ".into()))));
    drop(stream);
    assert!(server.wait_closed().await, "the server saw the connection close");
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    let provider = OpenAiChat::new(&config(&format!("http://{addr}/v1"))).expect("valid");
    let (_, error) = collect(&mut provider.stream(&request()).expect("a stream")).await;
    assert!(matches!(&error, Some(Error::Unavailable { status: None, .. })), "{error:?}");
}

#[test]
fn the_key_never_shows() {
    let c = config("https://api.openai.com/v1");
    let provider = OpenAiChat::new(&c).expect("valid");
    for text in [format!("{c:?}"), format!("{provider:?}")] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    assert!(matches!(OpenAiChat::new(&OpenAiConfig::new("ftp://example.com", None)), Err(Error::Config { .. })));
    assert!(matches!(OpenAiChat::new(&OpenAiConfig::new("http://x/v1", Some(Secret::new("bad\nkey")))), Err(Error::Config { .. })));
}

/// The adapter's overhead on top of the provider: a zero-delay local server streaming a typical
/// answer, timed end to end. Prints figures; asserts none. Run with
/// `cargo test --release -p happ-speech --test openai_llm -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn overhead_figures() {
    const DELTAS: usize = 40;
    const RUNS: usize = 300;
    let mut chunks: Vec<String> = (0..DELTAS).map(|i| text(&format!("word{i} "))).collect();
    chunks.push(chunk("{}", Some("stop")));
    chunks.push(done());
    let server = Server::start(Script::Stream(vec![Step::Bytes(chunks.concat())])).await;
    let provider = server.provider();
    let mut first_byte = Vec::new();
    let mut first_token = Vec::new();
    let mut total = Vec::new();
    for _ in 0..RUNS {
        let mut stream = provider.stream(&request()).expect("a stream");
        let (events, error) = collect(&mut stream).await;
        assert_eq!(error, None);
        let Some(LlmEvent::Done(s)) = events.last() else { panic!("ends with Done") };
        first_byte.push(s.latency.first_byte.unwrap_or_default());
        first_token.push(s.latency.first_token.unwrap_or_default());
        total.push(s.latency.total);
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() - 1) * p / 100]
    };
    println!("{RUNS} requests of {DELTAS} text deltas, zero-delay loopback server (warm connection pool):");
    println!("  first byte (headers): p50 {:?}  p99 {:?}", pct(&mut first_byte, 50), pct(&mut first_byte, 99));
    println!("  first token:          p50 {:?}  p99 {:?}", pct(&mut first_token, 50), pct(&mut first_token, 99));
    println!("  whole stream:         p50 {:?}  p99 {:?}", pct(&mut total, 50), pct(&mut total, 99));

    // Per-chunk cost end to end: one long stream, the server writing as fast as it can.
    const LONG: usize = 20_000;
    let mut chunks: Vec<String> = (0..LONG).map(|i| text(&format!("w{i} "))).collect();
    chunks.push(chunk("{}", Some("stop")));
    chunks.push(done());
    let steps = chunks.chunks(64).map(|c| Step::Bytes(c.concat())).collect();
    let server = Server::start(Script::Stream(steps)).await;
    let started = Instant::now();
    let mut stream = server.provider().stream(&request()).expect("a stream");
    let (events, error) = collect(&mut stream).await;
    let elapsed = started.elapsed();
    assert_eq!(error, None);
    assert_eq!(events.len(), LONG + 1);
    println!("  {LONG} chunks through HTTP + SSE + JSON: {:?} per chunk (server and client on the same 2 cores)", elapsed / LONG as u32);
}
