//! The durable outbox: everything the gateway writes to the Happ platform (a call's chat, its
//! transcript, AI-control changes) goes through here, so that no API outage, rate limit or
//! restart loses or duplicates any of it.
//!
//! - [`Outbox::push`] stores a write in SQLite and returns once it is committed: from then on it
//!   survives a crash or a restart.
//! - [`Outbox::run`] delivers, in order per chat (a chat's writes wait for the earlier ones, its
//!   creation first), chats in parallel. A write that fails for a reason that may pass (5xx,
//!   429, timeouts, no connection) is tried again with exponential backoff and jitter (1 s
//!   doubling to 5 min, or the server's `Retry-After`), for as long as it takes; one the API
//!   rejects (4xx) is kept as a dead letter with the reason, counted and logged, and its chat's
//!   later writes go on (a chat that could not be created takes its writes with it).
//! - No duplicates: writes are sent with [`Replay::OnlyIfNotProcessed`], so the client never
//!   repeats one the server may have stored. When an attempt ended that way (a timeout, a broken
//!   connection, a 500), the next attempt first lists the chat's messages and counts the copies
//!   of this one against those already delivered: if the platform has one more, the write landed
//!   and is not sent again. AI-control changes set a value and may be repeated. A chat creation
//!   that may have landed is sent again: the worst case is an empty chat left over, never a
//!   transcript split or doubled.

mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::client::{Error, HappClient, Replay};
use crate::model::{AssistantId, ChatId, NewMessage};
use store::{Due, Store};

/// How the outbox retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// First retry delay; doubled per failed attempt. Default 1 s.
    pub retry_min: Duration,
    /// Longest retry delay. Default 5 min.
    pub retry_max: Duration,
    /// Chats delivered at once. Default 8.
    pub parallel: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig { retry_min: Duration::from_secs(1), retry_max: Duration::from_secs(300), parallel: 8 }
    }
}

/// One write to the platform, for a chat named by the caller's own key (a call's id): the
/// platform's chat id is only known once the chat is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Write {
    /// `POST /api/chats`: must be the chat's first write.
    CreateChat {
        /// The assistant the chat belongs to.
        assistant_id: AssistantId,
    },
    /// `POST /api/chats/{chatId}/messages`.
    Message(NewMessage),
    /// `PATCH /api/chats/{chatId}` `{"isUnderAiControl": on}`.
    AiControl {
        /// Whether the AI answers.
        on: bool,
    },
}

/// An outbox failure: its file cannot be opened or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    /// The SQLite file cannot be opened or set up.
    #[error("cannot open the outbox {path}: {detail}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A read or write of the file failed (disk full, corruption).
    #[error("outbox storage error: {0}")]
    Storage(String),
}

/// Counts of the outbox's writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Waiting for delivery.
    pub pending: usize,
    /// Delivered (and not yet pruned).
    pub delivered: usize,
    /// Given up: the API rejected them.
    pub dead: usize,
}

/// The outbox. Cheap to clone; every clone is the same outbox.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<Mutex<Store>>,
    wake: Arc<Notify>,
    config: OutboxConfig,
}

impl Outbox {
    /// Opens (or creates) the outbox in the SQLite file `path`; writes left from an earlier run
    /// are delivered by [`run`](Self::run).
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        Self::open_with(path, OutboxConfig::default())
    }

    /// [`open`](Self::open) with other retry settings.
    pub fn open_with(path: &Path, config: OutboxConfig) -> Result<Outbox, OutboxError> {
        Ok(Outbox { store: Arc::new(Mutex::new(Store::open(path)?)), wake: Arc::new(Notify::new()), config })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves SQLite consistent (each change is one
        // transaction), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `write` for `chat`; once this returns it will be delivered, whatever happens.
    pub fn push(&self, chat: &str, write: Write) -> Result<(), OutboxError> {
        self.store().push(chat, &write, now_ms())?;
        self.wake.notify_one();
        Ok(())
    }

    /// The platform's id of `chat`, once its creation was delivered.
    pub fn chat_id(&self, chat: &str) -> Result<Option<ChatId>, OutboxError> {
        self.store().chat_id(chat)
    }

    /// How many writes wait, were delivered, were given up.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let s = self.store();
        Ok(OutboxStats { pending: s.count("pending")?, delivered: s.count("done")?, dead: s.count("dead")? })
    }

    /// The writes given up: chat, write, and why.
    pub fn dead_letters(&self) -> Result<Vec<(String, Write, String)>, OutboxError> {
        self.store().dead_letters()
    }

    /// Forgets delivered writes older than `age` (the duplicate check looks at recent ones only).
    pub fn prune(&self, age: Duration) -> Result<usize, OutboxError> {
        self.store().prune(now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
    }

    /// Delivers through `client`, until the task is dropped or the storage fails. Run it once
    /// per outbox.
    pub async fn run(&self, client: HappClient) -> Result<(), OutboxError> {
        let client = client.with_replay(Replay::OnlyIfNotProcessed);
        loop {
            let parallel = self.config.parallel.max(1);
            let due = self.store().due(now_ms(), parallel * 4)?;
            if due.is_empty() {
                let next = self.store().next_due_ms()?;
                let wait = next.map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))).unwrap_or(Duration::from_secs(3600));
                // A push wakes us early; `notify_one` keeps a wake-up that came before we wait.
                let _ = tokio::time::timeout(wait, self.wake.notified()).await;
                continue;
            }
            for batch in due.chunks(parallel) {
                let results = futures_util::future::join_all(batch.iter().map(|d| self.attempt(&client, d))).await;
                for (d, result) in batch.iter().zip(results) {
                    self.record(d, result)?;
                }
            }
        }
    }

    fn record(&self, d: &Due, result: Result<Option<ChatId>, Error>) -> Result<(), OutboxError> {
        let store = self.store();
        match result {
            Ok(created) => store.done(d.id, &d.chat, created.as_ref()),
            Err(e) if permanent(&e) => {
                let creates = matches!(d.write, Write::CreateChat { .. });
                let n = store.dead(d.id, &d.chat, creates, &e.to_string())?;
                tracing::error!(chat = %d.chat, writes = n, error = %e, "Happ rejected a write: kept as a dead letter");
                Ok(())
            }
            Err(e) => {
                let delay = retry_delay(&self.config, d.attempts, &e);
                tracing::warn!(chat = %d.chat, attempts = d.attempts + 1, retry_in_ms = delay.as_millis() as u64, error = %e, "Happ write failed; will retry");
                store.retry(d.id, now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX), e.maybe_processed(), &e.to_string())
            }
        }?;
        Ok(())
    }

    /// One delivery attempt; the chat id it created, if it created one.
    async fn attempt(&self, client: &HappClient, d: &Due) -> Result<Option<ChatId>, Error> {
        let chat_id = || d.chat_id.clone().ok_or_else(|| Error::Usage { detail: format!("chat {} has no id: its creation was not delivered", d.chat) });
        match &d.write {
            Write::CreateChat { assistant_id } => client.create_chat(assistant_id).await.map(|c| Some(c.id)),
            Write::Message(message) => {
                let chat_id = chat_id()?;
                if d.uncertain && self.landed(client, d, &chat_id, message).await? {
                    tracing::info!(chat = %d.chat, "a message whose delivery was uncertain had landed: not sent again");
                    return Ok(None);
                }
                client.send_message(&chat_id, message).await.map(|_| None)
            }
            // Setting a value: repeating it is harmless.
            Write::AiControl { on } => client.with_replay(Replay::Always).set_ai_control(&chat_id()?, *on).await.map(|_| None),
        }
    }

    /// Whether a message the platform may have stored is there: it holds more copies of it than
    /// were delivered before.
    async fn landed(&self, client: &HappClient, d: &Due, chat_id: &ChatId, message: &NewMessage) -> Result<bool, Error> {
        let expected = self.store().delivered_copies(&d.chat, d.id, &d.write).unwrap_or(usize::MAX);
        let messages = client.messages(chat_id).await?;
        let role_matches = |r: &crate::model::Role| message.role.as_ref().is_none_or(|m| m == r);
        let copies = messages.iter().filter(|m| m.content == message.content && role_matches(&m.role)).count();
        Ok(copies > expected)
    }
}

/// Whether retrying can never help.
fn permanent(e: &Error) -> bool {
    matches!(e, Error::Api { .. } | Error::Usage { .. })
}

/// The wait before the next attempt: 1 s doubling to 5 min, jittered to 50-100 %, and at least
/// what a rate limit asked for.
fn retry_delay(config: &OutboxConfig, attempts: u32, e: &Error) -> Duration {
    let ceiling = config.retry_min.saturating_mul(1u32 << attempts.min(16)).min(config.retry_max);
    let jittered = ceiling.mul_f64(0.5 + fastrand::f64() * 0.5);
    match e {
        Error::RateLimited { retry_after: Some(after), .. } => jittered.max(*after),
        _ => jittered,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
