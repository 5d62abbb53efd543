//! Shared test support: the local Happ server with the example seed, a client with fast
//! retries, and a raw TCP server that answers with whatever bytes a test needs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use happ_client::{ClientConfig, HappClient, PagingLimits, RetryConfig};
use happ_server::{HappServer, Seed, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const TOKEN: &str = "happ_test_token";

/// Ids from fixtures/happ/seed.json.
pub const SUPPORT_BOT: &str = "8f5c3b0e-4a61-4c2e-9d3a-1b2c3d4e5f60";
pub const UK_BOT: &str = "2d7e9a14-6b3f-4f8e-a1c2-7e8f9a0b1c2d";
pub const CHAT_1: &str = "f0000000-0000-4000-8000-000000000001";
pub const CHAT_2: &str = "f0000000-0000-4000-8000-000000000002";
pub const PHONE_1: &str = "e5f6a7b8-0000-4000-8000-000000000001";
pub const PHONE_2: &str = "e5f6a7b8-0000-4000-8000-000000000002";

pub fn seed() -> Seed {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/happ/seed.json");
    Seed::from_path(&path).expect("the example seed loads")
}

pub async fn server() -> ServerHandle {
    server_with(seed()).await
}

pub async fn server_with(seed: Seed) -> ServerHandle {
    let mut config = ServerConfig::new(TOKEN);
    config.seed = seed;
    HappServer::start(config).await.expect("server starts on loopback")
}

/// Client settings for tests: millisecond backoff, a seeded jitter, 2 s timeout (the outbox tests
/// rely on it: their `delayAfter` faults outlast it).
pub fn config(base_url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(base_url, TOKEN);
    c.retry =
        RetryConfig { max_attempts: 5, base_delay: Duration::from_millis(2), max_delay: Duration::from_millis(20), max_retry_after: Duration::from_secs(5) };
    c.timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c.jitter_seed = Some(42);
    c.paging = PagingLimits { take: 20, ..PagingLimits::default() };
    c
}

pub fn client(server: &ServerHandle) -> HappClient {
    HappClient::new(config(&server.base_url())).expect("valid config")
}

/// A request as the raw server saw it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    pub target: String,
    pub headers: String,
    pub body: Vec<u8>,
}

/// A TCP server that answers every request with the bytes `respond` returns (a whole HTTP/1.1
/// answer, connection closed after it), counting requests.
pub struct RawServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn raw_server<F>(respond: F) -> RawServer
where
    F: Fn(&RawRequest) -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let respond = Arc::new(respond);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let counter = Arc::clone(&counter);
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = respond(&request);
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    RawServer { addr, requests, task }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    Some(RawRequest {
        method: first.next().unwrap_or_default().to_owned(),
        target: first.next().unwrap_or_default().to_owned(),
        headers: head.clone(),
        body: buf[head_end..].to_vec(),
    })
}

/// A complete HTTP/1.1 answer.
pub fn http(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

pub fn json(status: u16, body: &str) -> Vec<u8> {
    http(status, "application/json", body)
}

/// The value of query parameter `name` in a request target.
pub fn query_param(target: &str, name: &str) -> Option<u32> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}
