//! The async client of the Happ REST API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), happ_client::Error> {
//! use happ_client::{ClientConfig, HappClient, Replay, model::NewMessage};
//!
//! let client = HappClient::new(ClientConfig::new("https://api.happ.tools", "happ_your_token_here"))?;
//! for assistant in client.assistants().await? {
//!     println!("{} {}", assistant.id, assistant.name);
//! }
//! let chat = client.create_chat(&"your-assistant-uuid".into()).await?;
//! // At-most-once: no retry once the request may have reached the server.
//! let sent = client.with_replay(Replay::OnlyIfNotProcessed).send_message(&chat.id, &NewMessage::text("Hello")).await;
//! # let _ = sent;
//! # Ok(()) }
//! ```
//!
//! # Requests
//!
//! Every request carries `X-Access-Token` (marked sensitive, so HTTP-level logging does not show
//! it) and `Accept: application/json`, and has one timeout for the whole exchange
//! ([`ClientConfig::timeout`], 10 s by default) plus a connect timeout. Redirects are not followed:
//! the API does not redirect, and following one would turn a `POST` into a `GET`.
//!
//! # Retries
//!
//! Transient failures (connect errors, timeouts, broken connections, 408, 429, 5xx but 501/505)
//! are retried with jittered exponential backoff honouring `Retry-After`; other 4xx never are. The
//! decision is the pure function [`retry::decide`]. What may be replayed depends on the method:
//!
//! - `GET`, `PATCH` (the API's patches set absolute values) and `DELETE` use [`Replay::Always`].
//!   A `DELETE` retried after an uncertain failure that then gets 404 counts as done.
//! - Creating `POST`s use [`ClientConfig::create_replay`], [`Replay::Always`] by default:
//!   **at-least-once**. If the first attempt was stored but its answer was lost (timeout, reset,
//!   500 after the write), the retry stores the record a second time. A caller that must not
//!   duplicate (the gateway's outbox) sends through [`HappClient::with_replay`] with
//!   [`Replay::OnlyIfNotProcessed`] and, on an error whose [`Error::maybe_processed`] is true,
//!   checks (e.g. lists the chat's messages) before sending again.
//!
//! # Pagination
//!
//! `chats` and `messages` are paginated by `page` (1-based) and `take`. The `*_page` methods read
//! one page; the others read all pages through [`paging::Paginator`], which stops on an empty page,
//! on a page with nothing new, or at a page/item limit, so a server with wrong counts cannot make
//! it loop; items repeated across pages are returned once. The other listings are documented
//! without pagination and are read with one request; if that answer turns out to be paginated
//! (`totalCount` larger than the items sent), they are read again page by page.

mod decode;
mod error;
pub mod paging;
pub mod retry;

pub use error::Error;
pub use paging::{PagingLimits, Stop};
pub use retry::{Replay, RetryConfig};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ACCESS_TOKEN_HEADER;
use crate::model::{
    Assistant, AssistantId, AssistantUpdate, Chat, ChatId, ChatUpdate, Identified, KnowledgeEntry, KnowledgeId, Message, MessageId, NewAssistant, NewChat,
    NewKnowledge, NewMessage, NewPhone, NewTool, Phone, PhoneId, PhoneUpdate, Tool,
};
use crate::secret::Secret;
use decode::{RawPage, Reply};
use paging::{Next, Paginator};
use retry::{Decision, Failure, GiveUp, RetryAfter};

/// Settings of a [`HappClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where the API is, e.g. `https://api.happ.tools` (a path prefix is kept).
    pub base_url: String,
    /// The access token (`happ_…`).
    pub token: Secret,
    /// Timeout of one attempt, from sending to the end of the body. Default 10 s.
    pub timeout: Duration,
    /// Timeout of connecting (TCP and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// Backoff and attempt limits.
    pub retry: RetryConfig,
    /// Replay policy of the creating `POST`s (assistants, chats, messages, knowledge, phones,
    /// tools). Default [`Replay::Always`] (at-least-once).
    pub create_replay: Replay,
    /// Page size and limits of whole listings. Default `take` 20, the value the reference uses.
    pub paging: PagingLimits,
    /// Largest body read; a longer one is an [`Error::InvalidResponse`]. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Seed of the jitter generator; `None` seeds it from the system.
    pub jitter_seed: Option<u64>,
}

impl ClientConfig {
    /// The defaults for an API at `base_url` with `token`.
    pub fn new(base_url: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self {
            base_url: base_url.into(),
            token: token.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryConfig::default(),
            create_replay: Replay::Always,
            paging: PagingLimits::default(),
            max_body_bytes: 16 << 20,
            jitter_seed: None,
        }
    }
}

/// One page of a paginated listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// `totalCount`: items over all pages (`None` if the server did not say).
    pub total_count: Option<u64>,
    /// The page number the server reports (the one asked for if it did not say).
    pub page: u32,
}

/// Which page to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub take: u32,
}

impl PageRequest {
    /// Page `page` (1-based) of `take` items.
    pub fn new(page: u32, take: u32) -> Self {
        Self { page, take }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { page: 1, take: 20 }
    }
}

/// A client of the Happ REST API. Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct HappClient {
    inner: Arc<Inner>,
    replay: Option<Replay>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    token: HeaderValue,
    config: ClientConfig,
    rng: Mutex<fastrand::Rng>,
}

/// A request to make.
struct Call<'a> {
    method: Method,
    /// The route template, for errors and logs (`GET /api/chats/{chatId}`).
    what: &'static str,
    segments: &'a [&'a str],
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    replay: Replay,
}

/// How one attempt ended when no complete answer came back.
enum AttemptError {
    /// Possibly transient: feed to the retry decision.
    Failed { failure: Failure, detail: String },
    /// Final regardless of retries (e.g. an oversized body).
    Fatal(Error),
}

impl HappClient {
    /// A client for `config`. Fails on a base URL that is not `http(s)://…` or a token that
    /// cannot be sent in a header.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = Url::parse(&config.base_url).map_err(|e| Error::Usage { detail: format!("base URL {:?}: {e}", config.base_url) })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Usage { detail: format!("base URL {:?}: not an http(s) URL", config.base_url) });
        }
        let mut token = HeaderValue::from_str(config.token.expose())
            .map_err(|_| Error::Usage { detail: "the access token has characters that cannot be sent in a header".into() })?;
        token.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("happ-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Usage { detail: format!("cannot build the HTTP client: {}", chain(&e)) })?;
        let rng = Mutex::new(config.jitter_seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed));
        Ok(Self { inner: Arc::new(Inner { http, base, token, config, rng }), replay: None })
    }

    /// A handle on the same client whose calls all use `replay`, whatever their method. Use
    /// [`Replay::OnlyIfNotProcessed`] for writes that must not be duplicated.
    #[must_use]
    pub fn with_replay(&self, replay: Replay) -> Self {
        Self { inner: Arc::clone(&self.inner), replay: Some(replay) }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    // ---- assistants ----------------------------------------------------------------------

    /// `GET /api/assistants`: every assistant of the account.
    pub async fn assistants(&self) -> Result<Vec<Assistant>, Error> {
        self.list_all("GET /api/assistants", &["api", "assistants"], Vec::new(), false).await
    }

    /// `GET /api/assistants/{assistantId}`.
    pub async fn assistant(&self, id: &AssistantId) -> Result<Assistant, Error> {
        self.read("GET /api/assistants/{assistantId}", &["api", "assistants", id.as_str()]).await
    }

    /// `POST /api/assistants` (a creating `POST`: see the module doc on replay).
    pub async fn create_assistant(&self, body: &NewAssistant) -> Result<Assistant, Error> {
        self.create("POST /api/assistants", &["api", "assistants"], body).await
    }

    /// `PATCH /api/assistants/{assistantId}`: changes the fields set in `body`.
    pub async fn update_assistant(&self, id: &AssistantId, body: &AssistantUpdate) -> Result<Assistant, Error> {
        self.patch("PATCH /api/assistants/{assistantId}", &["api", "assistants", id.as_str()], body).await
    }

    // ---- chats ---------------------------------------------------------------------------

    /// `GET /api/chats?page=&take=`: one page of chats.
    pub async fn chats_page(&self, request: PageRequest) -> Result<Page<Chat>, Error> {
        self.page("GET /api/chats", &["api", "chats"], Vec::new(), request).await
    }

    /// Every chat, all pages read (see the module doc on pagination).
    pub async fn chats(&self) -> Result<Vec<Chat>, Error> {
        self.list_all("GET /api/chats", &["api", "chats"], Vec::new(), true).await
    }

    /// `POST /api/chats` with `{"assistantId"}` (a creating `POST`).
    pub async fn create_chat(&self, assistant_id: &AssistantId) -> Result<Chat, Error> {
        self.create("POST /api/chats", &["api", "chats"], &NewChat { assistant_id: assistant_id.clone() }).await
    }

    /// `PATCH /api/chats/{chatId}`.
    pub async fn update_chat(&self, id: &ChatId, body: &ChatUpdate) -> Result<Chat, Error> {
        self.patch("PATCH /api/chats/{chatId}", &["api", "chats", id.as_str()], body).await
    }

    /// `PATCH /api/chats/{chatId}` with `{"isUnderAiControl": on}`: `false` hands the chat to a
    /// human, `true` gives it back to the assistant.
    pub async fn set_ai_control(&self, id: &ChatId, on: bool) -> Result<Chat, Error> {
        self.update_chat(id, &ChatUpdate { is_under_ai_control: Some(on), ..ChatUpdate::default() }).await
    }

    // ---- messages ------------------------------------------------------------------------

    /// `POST /api/chats/{chatId}/messages` (a creating `POST`: see the module doc on replay).
    pub async fn send_message(&self, chat: &ChatId, body: &NewMessage) -> Result<Message, Error> {
        self.create("POST /api/chats/{chatId}/messages", &["api", "chats", chat.as_str(), "messages"], body).await
    }

    /// `GET /api/chats/{chatId}/messages?page=&take=`: one page of a chat's messages.
    pub async fn messages_page(&self, chat: &ChatId, request: PageRequest) -> Result<Page<Message>, Error> {
        self.page("GET /api/chats/{chatId}/messages", &["api", "chats", chat.as_str(), "messages"], Vec::new(), request).await
    }

    /// Every message of a chat, all pages read, oldest first (sorted by `createdAt`; the
    /// server's order breaks ties).
    pub async fn messages(&self, chat: &ChatId) -> Result<Vec<Message>, Error> {
        let mut all: Vec<Message> = self.list_all("GET /api/chats/{chatId}/messages", &["api", "chats", chat.as_str(), "messages"], Vec::new(), true).await?;
        all.sort_by(|a, b| a.created_at.cmp_instant(&b.created_at));
        Ok(all)
    }

    /// Catch-up after a gap (a Socket.IO reconnect): the messages of `chat` after `last_seen`,
    /// oldest first. With `None`, or when `last_seen` is no longer listed, every message is
    /// returned, so the caller must skip those it already has by id.
    pub async fn messages_since(&self, chat: &ChatId, last_seen: Option<&MessageId>) -> Result<Vec<Message>, Error> {
        let mut all = self.messages(chat).await?;
        if let Some(pos) = last_seen.and_then(|id| all.iter().position(|m| &m.id == id)) {
            all.drain(..=pos);
        }
        Ok(all)
    }

    // ---- knowledge -----------------------------------------------------------------------

    /// `GET /api/assistant-knowledge?assistantId=`.
    pub async fn knowledge(&self, assistant: &AssistantId) -> Result<Vec<KnowledgeEntry>, Error> {
        self.list_all("GET /api/assistant-knowledge", &["api", "assistant-knowledge"], vec![("assistantId", assistant.to_string())], false).await
    }

    /// `POST /api/assistant-knowledge` (a creating `POST`).
    pub async fn create_knowledge(&self, body: &NewKnowledge) -> Result<KnowledgeEntry, Error> {
        self.create("POST /api/assistant-knowledge", &["api", "assistant-knowledge"], body).await
    }

    /// `DELETE /api/assistant-knowledge/{knowledgeId}`. A 404 on a retry that followed an
    /// uncertain failure means the first attempt deleted it, and counts as success.
    pub async fn delete_knowledge(&self, id: &KnowledgeId) -> Result<(), Error> {
        const WHAT: &str = "DELETE /api/assistant-knowledge/{knowledgeId}";
        let call = Call {
            method: Method::DELETE,
            what: WHAT,
            segments: &["api", "assistant-knowledge", id.as_str()],
            query: Vec::new(),
            body: None,
            replay: self.replay.unwrap_or(Replay::Always),
        };
        let reply = self.execute(call).await?;
        match reply.status {
            200..=299 => decode::done(WHAT, &reply),
            404 if reply.after_maybe_processed => Ok(()),
            _ => Err(decode::rejection(WHAT, &reply)),
        }
    }

    // ---- phones --------------------------------------------------------------------------

    /// `GET /api/phones`.
    pub async fn phones(&self) -> Result<Vec<Phone>, Error> {
        self.list_all("GET /api/phones", &["api", "phones"], Vec::new(), false).await
    }

    /// `POST /api/phones` (a creating `POST`).
    pub async fn create_phone(&self, body: &NewPhone) -> Result<Phone, Error> {
        self.create("POST /api/phones", &["api", "phones"], body).await
    }

    /// `PATCH /api/phones/{phoneId}` with `{"assistantId"}`: links the phone to an assistant, or
    /// unlinks it with `None`.
    pub async fn link_phone(&self, id: &PhoneId, assistant: Option<&AssistantId>) -> Result<Phone, Error> {
        let body = PhoneUpdate { assistant_id: assistant.cloned() };
        self.patch("PATCH /api/phones/{phoneId}", &["api", "phones", id.as_str()], &body).await
    }

    // ---- tools ---------------------------------------------------------------------------

    /// `GET /api/assistant-tools?assistantId=`.
    pub async fn tools(&self, assistant: &AssistantId) -> Result<Vec<Tool>, Error> {
        self.list_all("GET /api/assistant-tools", &["api", "assistant-tools"], vec![("assistantId", assistant.to_string())], false).await
    }

    /// `POST /api/assistant-tools` (a creating `POST`).
    pub async fn create_tool(&self, body: &NewTool) -> Result<Tool, Error> {
        self.create("POST /api/assistant-tools", &["api", "assistant-tools"], body).await
    }

    // ---- plumbing ------------------------------------------------------------------------

    async fn read<T: DeserializeOwned>(&self, what: &'static str, segments: &[&str]) -> Result<T, Error> {
        let call = Call { method: Method::GET, what, segments, query: Vec::new(), body: None, replay: self.replay.unwrap_or(Replay::Always) };
        let reply = self.execute(call).await?;
        self.typed(what, &reply)
    }

    async fn create<B: Serialize, T: DeserializeOwned>(&self, what: &'static str, segments: &[&str], body: &B) -> Result<T, Error> {
        let replay = self.replay.unwrap_or(self.inner.config.create_replay);
        let call = Call { method: Method::POST, what, segments, query: Vec::new(), body: Some(to_json(body)?), replay };
        let reply = self.execute(call).await?;
        self.typed(what, &reply)
    }

    async fn patch<B: Serialize, T: DeserializeOwned>(&self, what: &'static str, segments: &[&str], body: &B) -> Result<T, Error> {
        let call = Call { method: Method::PATCH, what, segments, query: Vec::new(), body: Some(to_json(body)?), replay: self.replay.unwrap_or(Replay::Always) };
        let reply = self.execute(call).await?;
        self.typed(what, &reply)
    }

    fn typed<T: DeserializeOwned>(&self, what: &str, reply: &Reply) -> Result<T, Error> {
        if (200..300).contains(&reply.status) { decode::data(what, reply) } else { Err(decode::rejection(what, reply)) }
    }

    async fn fetch_page<T: DeserializeOwned>(&self, what: &'static str, segments: &[&str], query: Vec<(&'static str, String)>) -> Result<RawPage<T>, Error> {
        let call = Call { method: Method::GET, what, segments, query, body: None, replay: self.replay.unwrap_or(Replay::Always) };
        let reply = self.execute(call).await?;
        if (200..300).contains(&reply.status) { decode::page(what, &reply) } else { Err(decode::rejection(what, &reply)) }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        what: &'static str,
        segments: &[&str],
        mut query: Vec<(&'static str, String)>,
        request: PageRequest,
    ) -> Result<Page<T>, Error> {
        query.push(("page", request.page.to_string()));
        query.push(("take", request.take.to_string()));
        let raw = self.fetch_page(what, segments, query).await?;
        Ok(Page { items: raw.items, total_count: raw.total_count, page: raw.page.unwrap_or(request.page) })
    }

    /// Reads a whole listing. `paginated` listings are read page by page from the start; the
    /// others with one plain request, falling back to pages if the answer says there is more.
    async fn list_all<T: DeserializeOwned + Identified>(
        &self,
        what: &'static str,
        segments: &[&str],
        query: Vec<(&'static str, String)>,
        paginated: bool,
    ) -> Result<Vec<T>, Error> {
        if !paginated {
            let raw: RawPage<T> = self.fetch_page(what, segments, query.clone()).await?;
            let sent = u64::try_from(raw.items.len()).unwrap_or(u64::MAX);
            match raw.total_count {
                Some(total) if total > sent => tracing::debug!(what, total, sent, "listing is paginated after all; reading it page by page"),
                _ => return Ok(raw.items),
            }
        }
        let limits = self.inner.config.paging;
        let mut pager = Paginator::new(limits);
        let mut page = pager.first();
        let mut out = Vec::new();
        loop {
            let mut q = query.clone();
            q.push(("page", page.to_string()));
            q.push(("take", limits.take.to_string()));
            let raw: RawPage<T> = self.fetch_page(what, segments, q).await?;
            match pager.on_page(raw.items, raw.total_count, &mut out) {
                Next::Fetch(next) => page = next,
                Next::Done(stop) => {
                    if !stop.is_complete() {
                        tracing::warn!(what, ?stop, read = out.len(), total = ?pager.total(), "listing ended before its announced end");
                    }
                    return Ok(out);
                }
            }
        }
    }

    /// Sends `call` until it gets an answer that is not retried, or the retries end in an error.
    /// Any final answer (2xx or not) is returned as a [`Reply`] for the caller to decode.
    async fn execute(&self, call: Call<'_>) -> Result<Reply, Error> {
        let url = self.url(call.segments, &call.query)?;
        let mut after_maybe_processed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (failure, retry_after, last) = match self.attempt(&call, url.clone()).await {
                Ok((reply, retry_after)) => {
                    let failure = Failure::Status(reply.status);
                    if (200..300).contains(&reply.status) || !failure.is_transient() {
                        return Ok(Reply { after_maybe_processed, ..reply });
                    }
                    (failure, retry_after, Last::Reply(reply))
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Failed { failure, detail }) => (failure, None, Last::Detail(detail)),
            };
            let random = self.inner.rng.lock().unwrap_or_else(PoisonError::into_inner).u64(..);
            match retry::decide(&self.inner.config.retry, call.replay, attempt, failure, retry_after, SystemTime::now(), random) {
                Decision::Retry(delay) => {
                    tracing::debug!(what = call.what, attempt, ?failure, delay_ms = delay.as_millis(), "retrying Happ API request");
                    after_maybe_processed |= failure.maybe_processed();
                    tokio::time::sleep(delay).await;
                }
                Decision::GiveUp(reason) => {
                    tracing::debug!(what = call.what, attempt, ?failure, ?reason, "giving up on Happ API request");
                    return Err(self.final_error(failure, retry_after, last, attempt, reason));
                }
            }
        }
    }

    /// One exchange: the answer with its parsed `Retry-After`, or why there is none.
    async fn attempt(&self, call: &Call<'_>, url: Url) -> Result<(Reply, Option<RetryAfter>), AttemptError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_TOKEN_HEADER, self.inner.token.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut request = self.inner.http.request(call.method.clone(), url);
        if let Some(body) = &call.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            request = request.body(body.clone());
        }
        let mut response = request.headers(headers).send().await.map_err(|e| transport_failure(&e, false))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(RetryAfter::parse);
        let limit = self.inner.config.max_body_bytes;
        if response.content_length().is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(AttemptError::Fatal(too_large(call.what, status, limit)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e, true))? {
            if body.len() + chunk.len() > limit {
                return Err(AttemptError::Fatal(too_large(call.what, status, limit)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((Reply { status, body, after_maybe_processed: false }, retry_after))
    }

    fn url(&self, segments: &[&str], query: &[(&'static str, String)]) -> Result<Url, Error> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut().map_err(|()| Error::Usage { detail: "the base URL cannot take a path".into() })?.pop_if_empty().extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    fn final_error(&self, failure: Failure, retry_after: Option<RetryAfter>, last: Last, attempts: u32, reason: GiveUp) -> Error {
        let timeout = self.inner.config.timeout;
        match (failure, last) {
            (Failure::Status(429), _) => {
                let asked = match reason {
                    GiveUp::RetryAfterTooLong(d) => Some(d),
                    _ => retry_after.map(|r| r.delay_from(SystemTime::now())),
                };
                Error::RateLimited { attempts, retry_after: asked }
            }
            (Failure::Status(status), Last::Reply(reply)) => {
                let (message, code) = decode::error_details(&reply.body);
                Error::Server { status, message, code, attempts }
            }
            (Failure::Status(status), Last::Detail(detail)) => Error::Server { status, message: detail, code: None, attempts },
            (Failure::Timeout, _) => Error::Timeout { attempts, timeout },
            (Failure::Connect, last) => Error::Transport { attempts, after_send: false, detail: last.detail() },
            (Failure::Broken, last) => Error::Transport { attempts, after_send: true, detail: last.detail() },
        }
    }
}

/// What the last failed attempt left.
enum Last {
    Reply(Reply),
    Detail(String),
}

impl Last {
    fn detail(self) -> String {
        match self {
            Self::Reply(r) => decode::snippet(&r.body),
            Self::Detail(d) => d,
        }
    }
}

fn to_json<B: Serialize>(body: &B) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Usage { detail: format!("cannot serialize the request body: {e}") })
}

fn too_large(what: &str, status: u16, limit: usize) -> Error {
    Error::InvalidResponse { status, what: what.to_owned(), detail: format!("body larger than {limit} bytes") }
}

/// Classifies a reqwest error. `reading` is true once the status line arrived (only for the log:
/// any failure after connecting may come after the server acted).
fn transport_failure(e: &reqwest::Error, reading: bool) -> AttemptError {
    if e.is_builder() {
        return AttemptError::Fatal(Error::Usage { detail: chain(e) });
    }
    let failure = if e.is_connect() {
        Failure::Connect
    } else if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Broken
    };
    let phase = if reading { "reading the answer" } else { "sending the request" };
    AttemptError::Failed { failure, detail: format!("{phase}: {}", chain(e)) }
}

/// An error and its sources, joined by `: `.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
