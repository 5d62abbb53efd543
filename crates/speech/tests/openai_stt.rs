//! The OpenAI-compatible transcription adapter against a local server on loopback that reads the
//! `multipart/form-data` request for real (boundary, parts, the WAV's header and samples) and
//! answers as the OpenAI API reference documents: `json`, `verbose_json`, error bodies, and
//! slow or broken answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use happ_speech::openai::{OpenAiConfig, OpenAiTranscription, OpenAiTranscriptionConfig, OpenAiTranscriptionSession, ResponseFormat};
use happ_speech::{AudioFormat, Error, Frame, Secret, SttEvent, SttOptions, SttProvider, SttSession, TimeoutPhase, Transcript};
use tokio::io::AsyncReadExt;

const KEY: &str = "sk-test-0123456789abcdef";

/// The server's answer to one request.
#[derive(Clone, Debug)]
enum Answer {
    Json(&'static str),
    Status {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
    },
    /// Nothing for this long.
    Slow(Duration),
    /// Headers, then a body that breaks.
    BrokenBody,
}

/// One request as the server parsed it.
#[derive(Clone, Debug)]
struct Seen {
    headers: HeaderMap,
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<String> {
        self.parts.iter().find(|p| p.name == name && p.filename.is_none()).map(|p| String::from_utf8_lossy(&p.data).into_owned())
    }

    fn wav(&self) -> Wav {
        let file = self.parts.iter().find(|p| p.name == "file").expect("a file part");
        assert_eq!(file.filename.as_deref(), Some("utterance.wav"));
        assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
        Wav::parse(&file.data)
    }
}

/// A WAV file read back: checks the RIFF structure and the PCM format.
struct Wav {
    rate: u32,
    samples: Vec<i16>,
}

impl Wav {
    fn parse(b: &[u8]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(u32_at(4) as usize, b.len() - 8, "RIFF size");
        assert_eq!(&b[8..12], b"WAVE");
        assert_eq!(&b[12..16], b"fmt ");
        assert_eq!(u32_at(16), 16, "fmt chunk size");
        assert_eq!(u16_at(20), 1, "PCM");
        assert_eq!(u16_at(22), 1, "mono");
        let rate = u32_at(24);
        assert_eq!(u32_at(28), rate * 2, "byte rate");
        assert_eq!(u16_at(32), 2, "block align");
        assert_eq!(u16_at(34), 16, "bits per sample");
        assert_eq!(&b[36..40], b"data");
        let len = u32_at(40) as usize;
        assert_eq!(len, b.len() - 44, "data size");
        Self { rate, samples: b[44..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect() }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a `multipart/form-data` body (RFC 7578) into its parts.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=").expect("a multipart content type");
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // The first delimiter has no CRLF before it.
    let mut rest = [b"\r\n".as_slice(), body].concat();
    let mut parts = Vec::new();
    let start = find(&rest, &delimiter).expect("a first boundary");
    assert_eq!(start, 0, "no preamble");
    rest.drain(..delimiter.len());
    loop {
        if rest.starts_with(b"--") {
            assert_eq!(&rest[..], b"--\r\n", "nothing after the closing boundary");
            return parts;
        }
        assert!(rest.starts_with(b"\r\n"));
        let end = find(&rest, &delimiter).expect("a closing boundary");
        let part = &rest[2..end];
        let split = find(part, b"\r\n\r\n").expect("headers end");
        let headers = String::from_utf8(part[..split].to_vec()).expect("ASCII headers");
        let mut p = Part { name: String::new(), filename: None, content_type: None, data: part[split + 4..].to_vec() };
        for line in headers.split("\r\n") {
            let (name, value) = line.split_once(": ").expect("a header");
            match name.to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    assert!(value.starts_with("form-data; "), "{value}");
                    for param in value.split("; ").skip(1) {
                        let (k, v) = param.split_once('=').expect("a parameter");
                        let v = v.trim_matches('"').to_owned();
                        match k {
                            "name" => p.name = v,
                            "filename" => p.filename = Some(v),
                            _ => panic!("unexpected parameter {k}"),
                        }
                    }
                }
                "content-type" => p.content_type = Some(value.to_owned()),
                other => panic!("unexpected part header {other}"),
            }
        }
        parts.push(p);
        rest.drain(..end + delimiter.len());
    }
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Vec<Answer>>, Arc<AtomicUsize>, Arc<Mutex<Vec<Seen>>>);

impl Server {
    /// A server giving `answers` to successive requests (the last one repeats).
    async fn start(answers: Vec<Answer>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state: Shared = (Arc::new(answers), Arc::new(AtomicUsize::new(0)), Arc::clone(&seen));
        let app = Router::new().route("/v1/audio/transcriptions", post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    fn config(&self) -> OpenAiTranscriptionConfig {
        config(&format!("http://{}/v1", self.addr))
    }

    fn provider(&self) -> OpenAiTranscription {
        OpenAiTranscription::new(&self.config()).expect("valid config")
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

fn config(base_url: &str) -> OpenAiTranscriptionConfig {
    let mut api = OpenAiConfig::new(base_url, Some(Secret::new(KEY)));
    api.first_byte_timeout = Duration::from_secs(5);
    api.idle_timeout = Duration::from_secs(5);
    OpenAiTranscriptionConfig::new(api, "whisper-1")
}

async fn handle(State((answers, count, seen)): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let parts = parse_multipart(&content_type, &body);
    seen.lock().expect("not poisoned").push(Seen { headers, parts });
    let i = count.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
    match &answers[i] {
        Answer::Json(body) => Response::builder().header("content-type", "application/json").body(Body::from(*body)).expect("a valid response"),
        Answer::Status { status, headers, body } => {
            let mut r = Response::builder().status(*status).header("content-type", "application/json");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(Body::from(*body)).expect("a valid response")
        }
        Answer::Slow(d) => {
            tokio::time::sleep(*d).await;
            Response::new(Body::from(r#"{"text":"late"}"#))
        }
        Answer::BrokenBody => {
            // The start of the body goes out with the headers; the break comes a moment later.
            let body = futures_util::stream::unfold(0, |step| async move {
                match step {
                    0 => Some((Ok(Bytes::from_static(b"{\"text\":\"Bo")), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((Err(std::io::Error::other("server aborts")), 2))
                    }
                    _ => None,
                }
            });
            Response::builder().header("content-type", "application/json").body(Body::from_stream(body)).expect("a valid response")
        }
    }
}

async fn next(session: &mut OpenAiTranscriptionSession) -> Option<Result<SttEvent, Error>> {
    std::future::poll_fn(|cx| session.poll_event(cx)).await
}

/// The events until the session ends, the error (if any) last.
async fn collect(session: &mut OpenAiTranscriptionSession) -> (Vec<SttEvent>, Option<Error>) {
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

/// A second of a 440 Hz-ish sawtooth at `rate`, in 20 ms frames.
fn speech(rate: u32, millis: u32) -> Vec<Vec<i16>> {
    let frame = (rate / 50) as usize;
    let n = (rate * millis / 1000) as usize;
    let samples: Vec<i16> = (0..n).map(|i| ((i * 440 * 65_536 / rate as usize) % 65_536) as i32 as i16).collect();
    samples.chunks(frame).map(<[i16]>::to_vec).collect()
}

fn push_all(session: &mut OpenAiTranscriptionSession, frames: &[Vec<i16>]) {
    for f in frames {
        session.push(Frame::Pcm(f)).expect("buffered");
    }
}

#[tokio::test]
async fn each_utterance_becomes_a_final_at_end_of_speech() {
    let server = Server::start(vec![Answer::Json(r#"{"text":" Book a table for two."}"#), Answer::Json(r#"{"text":"On Friday, please."}"#)]).await;
    let options = SttOptions { language: Some("en-GB".into()), keywords: vec!["Acme".into(), "Zoë:2".into()] };
    let mut session = server.provider().session(AudioFormat::PCM_8K, &options).expect("a session");
    let first = speech(8000, 1000);
    push_all(&mut session, &first);
    session.end_of_speech();
    assert_eq!(
        next(&mut session).await,
        Some(Ok(SttEvent::Final(Transcript {
            text: "Book a table for two.".into(),
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            confidence: None,
            end_of_turn: true
        })))
    );
    let second = speech(8000, 500);
    push_all(&mut session, &second);
    session.finish();
    let (events, error) = collect(&mut session).await;
    assert_eq!(error, None);
    assert!(
        matches!(&events[0], SttEvent::Final(t) if t.text == "On Friday, please." && t.start == Duration::from_secs(1) && t.end == Duration::from_millis(1500) && t.end_of_turn)
    );
    let Some(SttEvent::Done(latency)) = events.last() else { panic!("ends with Done: {events:?}") };
    assert!(latency.final_after_end_of_speech.is_some() && latency.first_partial.is_none(), "{latency:?}");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (r, audio) in requests.iter().zip([&first, &second]) {
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY}").as_str());
        assert_eq!(r.field("model").as_deref(), Some("whisper-1"));
        assert_eq!(r.field("response_format").as_deref(), Some("json"));
        assert_eq!(r.field("language").as_deref(), Some("en"));
        assert_eq!(r.field("prompt").as_deref(), Some("Acme, Zoë"));
        let wav = r.wav();
        assert_eq!(wav.rate, 8000);
        assert_eq!(wav.samples, audio.concat(), "the utterance's samples, exactly");
    }
}

#[tokio::test]
async fn mulaw_is_decoded_and_verbose_json_drops_noise_segments() {
    let verbose = r#"{"task":"transcribe","language":"english","duration":1.0,"text":" Yes. Thank you.","segments":[
        {"id":0,"seek":0,"start":0.0,"end":0.6,"text":" Yes.","tokens":[50364,1079,13],"temperature":0.0,"avg_logprob":-0.25,"compression_ratio":0.6,"no_speech_prob":0.02},
        {"id":1,"seek":0,"start":0.6,"end":1.0,"text":" Thank you.","tokens":[50394,1044,291,13],"temperature":0.0,"avg_logprob":-1.3,"compression_ratio":0.6,"no_speech_prob":0.9}]}"#;
    let server = Server::start(vec![Answer::Json(verbose)]).await;
    let mut c = server.config();
    c.response_format = ResponseFormat::VerboseJson;
    c.language = Some("fr".into());
    let provider: Box<dyn SttProvider> = Box::new(OpenAiTranscription::new(&c).expect("valid"));
    assert_eq!(provider.name(), "openai-transcription");
    let conversion = happ_speech::negotiate(AudioFormat::MULAW_8K, provider.formats()).expect("a format");
    assert_eq!(conversion.format, AudioFormat::MULAW_8K, "the call's bytes go in as they are");
    let mut session = provider.start(AudioFormat::MULAW_8K, &SttOptions::default()).expect("a session");
    // Both zeros, both extremes, and the rest of the codes.
    let codes: Vec<u8> = [0xff, 0x7f, 0x80, 0x00].into_iter().chain(0..=255).cycle().take(8000).collect();
    for f in codes.chunks(160) {
        session.push(Frame::G711(f)).expect("buffered");
    }
    session.end_of_speech();
    let Some(Ok(SttEvent::Final(t))) = session.next_event().await else { panic!("a final") };
    assert_eq!(t.text, "Yes.");
    assert!(t.confidence.is_some_and(|c| (c - (-0.25f32).exp()).abs() < 1e-6), "{t:?}");
    let r = &server.requests()[0];
    assert_eq!(r.field("response_format").as_deref(), Some("verbose_json"));
    assert_eq!(r.field("language").as_deref(), Some("fr"));
    assert_eq!(r.field("prompt"), None);
    let wav = r.wav();
    assert_eq!((wav.rate, wav.samples.len()), (8000, 8000));
    assert_eq!(wav.samples[..4], [0, 0, 32124, -32124]);
}

#[tokio::test]
async fn a_long_utterance_is_cut_and_silence_gives_nothing() {
    let server = Server::start(vec![Answer::Json(r#"{"text":"And then"}"#), Answer::Json(r#"{"text":""}"#)]).await;
    let mut c = server.config();
    c.max_utterance = Duration::from_millis(200);
    let mut session = OpenAiTranscription::new(&c).expect("valid").session(AudioFormat::PCM_16K, &SttOptions::default()).expect("a session");
    push_all(&mut session, &speech(16_000, 300));
    let Some(Ok(SttEvent::Final(t))) = next(&mut session).await else { panic!("a final") };
    assert_eq!((t.text.as_str(), t.end, t.end_of_turn), ("And then", Duration::from_millis(200), false));
    session.end_of_speech();
    // A blip shorter than 100 ms is not worth a request.
    session.push(Frame::Pcm(&[1; 800])).expect("buffered");
    session.finish();
    let (events, error) = collect(&mut session).await;
    assert_eq!(error, None);
    assert!(matches!(events[..], [SttEvent::Done(_)]), "the silent answer gives no final: {events:?}");
    let requests = server.requests();
    assert_eq!(requests.iter().map(|r| r.wav().samples.len()).collect::<Vec<_>>(), [3200, 1600]);
    assert!(requests.iter().all(|r| r.wav().rate == 16_000));
}

async fn error_for(answer: Answer) -> Error {
    let server = Server::start(vec![answer]).await;
    let mut session = server.provider().session(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    push_all(&mut session, &speech(8000, 400));
    session.end_of_speech();
    let (events, error) = collect(&mut session).await;
    assert!(events.is_empty());
    error.expect("an error")
}

#[tokio::test]
async fn error_answers_become_typed_errors() {
    let e = error_for(Answer::Status {
        status: 401,
        headers: vec![],
        body: r#"{"error":{"message":"Incorrect API key provided: sk-test-***cdef. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    })
    .await;
    assert!(matches!(&e, Error::Refused { status: 401, code: Some(c), .. } if c == "invalid_api_key"), "{e:?}");

    let e = error_for(Answer::Status {
        status: 429,
        headers: vec![("retry-after-ms", "1500")],
        body: r#"{"error":{"message":"Rate limit reached for whisper-1 on requests per min (RPM): Limit 50, Used 50, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    })
    .await;
    assert!(matches!(&e, Error::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_millis(1500)), "{e:?}");

    let e = error_for(Answer::Status {
        status: 500,
        headers: vec![],
        body: r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
    })
    .await;
    assert!(matches!(&e, Error::Unavailable { status: Some(500), .. }), "{e:?}");

    let e = error_for(Answer::Status {
        status: 400,
        headers: vec![],
        body: r#"{"error":{"message":"Audio file might be corrupted or unsupported","type":"invalid_request_error","param":"file","code":"invalid_value"}}"#,
    })
    .await;
    assert!(matches!(&e, Error::Refused { status: 400, .. }), "{e:?}");

    let e = error_for(Answer::Json("<html>Sign in to the proxy</html>")).await;
    assert!(matches!(&e, Error::Protocol { .. }), "{e:?}");
}

#[tokio::test]
async fn slow_answer_times_out() {
    let server = Server::start(vec![Answer::Slow(Duration::from_secs(30))]).await;
    let mut c = server.config();
    c.api.first_byte_timeout = Duration::from_millis(200);
    let mut session = OpenAiTranscription::new(&c).expect("valid").session(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    push_all(&mut session, &speech(8000, 400));
    session.end_of_speech();
    let started = Instant::now();
    let (_, error) = collect(&mut session).await;
    assert_eq!(error, Some(Error::Timeout { phase: TimeoutPhase::FirstByte, after: Duration::from_millis(200) }));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn broken_connections_become_typed_errors() {
    // Headers, then the body breaks.
    let e = error_for(Answer::BrokenBody).await;
    assert!(matches!(&e, Error::Closed { .. }), "{e:?}");

    // The server reads the request and hangs up without an answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let server = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
        }
    });
    let provider = OpenAiTranscription::new(&config(&format!("http://{addr}/v1"))).expect("valid");
    let mut session = provider.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    push_all(&mut session, &speech(8000, 400));
    session.end_of_speech();
    let (_, error) = collect(&mut session).await;
    assert!(matches!(&error, Some(Error::Unavailable { status: None, .. })), "{error:?}");
    assert!(error.is_some_and(|e| e.is_retryable()));
    server.abort();
}

#[tokio::test]
async fn cancel_drops_the_request_in_flight() {
    // A server that reads the request and waits until the client hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let closed = Arc::new(AtomicBool::new(false));
    let received = Arc::new(tokio::sync::Notify::new());
    let (c, r) = (Arc::clone(&closed), Arc::clone(&received));
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("a connection");
        let mut buf = vec![0u8; 1 << 16];
        let mut notified = false;
        while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {
            if !notified {
                r.notify_one();
                notified = true;
            }
        }
        c.store(true, Ordering::SeqCst);
    });
    let provider = OpenAiTranscription::new(&config(&format!("http://{addr}/v1"))).expect("valid");
    let mut session = provider.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    push_all(&mut session, &speech(8000, 400));
    session.end_of_speech();
    // Drive the request out, then cancel while it waits for the answer.
    tokio::select! {
        _ = next(&mut session) => panic!("no answer is coming"),
        () = received.notified() => {}
    }
    session.cancel();
    assert_eq!(next(&mut session).await, Some(Err(Error::Cancelled)));
    assert_eq!(next(&mut session).await, None);
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("the server saw the close").expect("server task");
    assert!(closed.load(Ordering::SeqCst));
    assert!(matches!(session.push(Frame::Pcm(&[0; 160])), Err(Error::Config { .. })));
}

#[tokio::test]
async fn misuse_is_a_config_error() {
    let server = Server::start(vec![Answer::Json(r#"{"text":"x"}"#)]).await;
    let provider = server.provider();
    assert!(matches!(provider.session(AudioFormat::PCM_24K, &SttOptions::default()), Err(Error::Config { .. })));
    let mut session = provider.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("a session");
    assert!(matches!(session.push(Frame::G711(&[0xff; 160])), Err(Error::Config { .. })));
    session.finish();
    assert!(matches!(session.push(Frame::Pcm(&[0; 160])), Err(Error::Config { .. })));
    assert!(server.requests().is_empty(), "an empty session sends nothing");
}

#[test]
fn the_key_never_shows() {
    let c = config("https://api.openai.com/v1");
    let provider = OpenAiTranscription::new(&c).expect("valid");
    let session = provider.session(AudioFormat::PCM_16K, &SttOptions::default()).expect("a session");
    let refused = Error::Refused { status: 401, message: "Incorrect API key provided: sk-test-***cdef.".into(), code: Some("invalid_api_key".into()) };
    for text in [format!("{c:?}"), format!("{provider:?}"), format!("{session:?}"), refused.to_string()] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    let mut bad = config("ftp://example.com/v1");
    assert!(matches!(OpenAiTranscription::new(&bad), Err(Error::Config { .. })));
    bad = config("http://127.0.0.1:1/v1");
    bad.api.api_key = Some(Secret::new("bad\nkey"));
    assert!(matches!(OpenAiTranscription::new(&bad), Err(Error::Config { .. })));
}

/// The adapter's overhead per utterance on loopback: WAV and multipart building, the request and
/// the answer, against a server that answers at once (its own multipart parse included). Prints
/// figures; asserts none. Run with
/// `cargo test --release -p happ-speech --test openai_stt -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn overhead_figures() {
    const RUNS: usize = 200;
    let server = Server::start(vec![Answer::Json(r#"{"text":"Book a table for two."}"#)]).await;
    let provider = server.provider();
    for (format, millis) in [(AudioFormat::PCM_8K, 2000), (AudioFormat::PCM_16K, 2000), (AudioFormat::PCM_16K, 10_000)] {
        let frames = speech(format.sample_rate, millis);
        let mut session = provider.session(format, &SttOptions::default()).expect("a session");
        let mut push = Vec::with_capacity(RUNS);
        let mut turn = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            push_all(&mut session, &frames);
            push.push(t.elapsed() / frames.len() as u32);
            session.end_of_speech();
            let t = Instant::now();
            assert!(matches!(next(&mut session).await, Some(Ok(SttEvent::Final(_)))));
            turn.push(t.elapsed());
        }
        let pct = |v: &mut Vec<Duration>, p: usize| {
            v.sort();
            v[(v.len() - 1) * p / 100]
        };
        println!(
            "{} Hz, {millis} ms utterances, {RUNS} runs: push per 20 ms frame p50 {:?}; end_of_speech → final p50 {:?} p99 {:?}",
            format.sample_rate,
            pct(&mut push, 50),
            pct(&mut turn, 50),
            pct(&mut turn, 99)
        );
    }
}
