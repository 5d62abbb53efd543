//! The outbox's SQLite file: the writes waiting, the chats they created, and the ones given up.
//!
//! Every change is one statement (or one transaction), committed before the call returns: a
//! write pushed is on disk, and a delivery recorded is never repeated after a restart. WAL mode
//! keeps the pushes of many calls cheap.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{OutboxError, Write};
use crate::model::ChatId;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS writes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat        TEXT NOT NULL,
    write       TEXT NOT NULL,
    pushed_ms   INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL DEFAULT 0,
    uncertain   INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead'))
);
CREATE INDEX IF NOT EXISTS writes_pending ON writes (state, chat, id);
CREATE TABLE IF NOT EXISTS chats (
    chat        TEXT PRIMARY KEY,
    chat_id     TEXT NOT NULL
);
";

/// A write due for delivery.
#[derive(Clone, Debug)]
pub(crate) struct Due {
    pub id: i64,
    pub chat: String,
    pub write: Write,
    pub attempts: u32,
    /// An earlier attempt may have been stored by the server.
    pub uncertain: bool,
    /// The chat's id at the platform, once created.
    pub chat_id: Option<ChatId>,
}

pub(crate) struct Store {
    db: Connection,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, OutboxError> {
        let db = Connection::open(path).map_err(|e| OutboxError::Open { path: path.to_owned(), detail: e.to_string() })?;
        db.execute_batch(SCHEMA).map_err(|e| OutboxError::Open { path: path.to_owned(), detail: e.to_string() })?;
        Ok(Store { db })
    }

    pub fn push(&self, chat: &str, write: &Write, now_ms: i64) -> Result<i64, OutboxError> {
        let text = serde_json::to_string(write).map_err(|e| OutboxError::Storage(e.to_string()))?;
        self.db.execute("INSERT INTO writes (chat, write, pushed_ms) VALUES (?1, ?2, ?3)", params![chat, text, now_ms]).map_err(storage)?;
        Ok(self.db.last_insert_rowid())
    }

    /// The oldest pending write of each chat, when it is due at `now_ms` (a chat's later writes
    /// wait for its earlier ones: delivery is in order per chat).
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, OutboxError> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT w.id, w.chat, w.write, w.attempts, w.uncertain, w.next_ms, c.chat_id FROM writes w
                 LEFT JOIN chats c ON c.chat = w.chat
                 WHERE w.id IN (SELECT MIN(id) FROM writes WHERE state = 'pending' GROUP BY chat)
                 ORDER BY w.id",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(storage)?;
        let mut due = Vec::new();
        for row in rows {
            let (id, chat, text, attempts, uncertain, next_ms, chat_id) = row.map_err(storage)?;
            if next_ms > now_ms {
                continue;
            }
            let write = serde_json::from_str(&text).map_err(|e| OutboxError::Storage(format!("write {id} is unreadable: {e}")))?;
            due.push(Due { id, chat, write, attempts, uncertain, chat_id: chat_id.map(ChatId::new) });
            if due.len() == limit {
                break;
            }
        }
        Ok(due)
    }

    /// When the next pending write of some chat is due (only the first of each chat counts).
    pub fn next_due_ms(&self) -> Result<Option<i64>, OutboxError> {
        self.db
            .query_row("SELECT MIN(next_ms) FROM writes WHERE id IN (SELECT MIN(id) FROM writes WHERE state = 'pending' GROUP BY chat)", [], |r| r.get(0))
            .map_err(storage)
    }

    /// A write delivered; `created` is the chat it created.
    pub fn done(&self, id: i64, chat: &str, created: Option<&ChatId>) -> Result<(), OutboxError> {
        let tx = self.db.unchecked_transaction().map_err(storage)?;
        tx.execute("UPDATE writes SET state = 'done', last_error = NULL WHERE id = ?1", params![id]).map_err(storage)?;
        if let Some(chat_id) = created {
            tx.execute("INSERT OR REPLACE INTO chats (chat, chat_id) VALUES (?1, ?2)", params![chat, chat_id.as_str()]).map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// A failed attempt, to try again at `next_ms`.
    pub fn retry(&self, id: i64, next_ms: i64, uncertain: bool, error: &str) -> Result<(), OutboxError> {
        self.db
            .execute(
                "UPDATE writes SET attempts = attempts + 1, next_ms = ?2, uncertain = uncertain OR ?3, last_error = ?4 WHERE id = ?1",
                params![id, next_ms, uncertain, error],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// A write that can never be delivered (the API rejected it); when it was a chat's creation,
    /// the chat's other writes go with it.
    pub fn dead(&self, id: i64, chat: &str, creates_chat: bool, error: &str) -> Result<usize, OutboxError> {
        let tx = self.db.unchecked_transaction().map_err(storage)?;
        let mut n =
            tx.execute("UPDATE writes SET state = 'dead', attempts = attempts + 1, last_error = ?2 WHERE id = ?1", params![id, error]).map_err(storage)?;
        if creates_chat {
            n += tx
                .execute(
                    "UPDATE writes SET state = 'dead', last_error = ?2 WHERE chat = ?1 AND state = 'pending'",
                    params![chat, format!("its chat could not be created: {error}")],
                )
                .map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        Ok(n)
    }

    /// Writes of `chat` delivered before `id` that are the same message: how many copies of it
    /// the platform should already hold.
    pub fn delivered_copies(&self, chat: &str, id: i64, write: &Write) -> Result<usize, OutboxError> {
        let text = serde_json::to_string(write).map_err(|e| OutboxError::Storage(e.to_string()))?;
        self.db
            .query_row("SELECT COUNT(*) FROM writes WHERE chat = ?1 AND id < ?2 AND state = 'done' AND write = ?3", params![chat, id, text], |r| r.get(0))
            .map_err(storage)
    }

    pub fn chat_id(&self, chat: &str) -> Result<Option<ChatId>, OutboxError> {
        self.db
            .query_row("SELECT chat_id FROM chats WHERE chat = ?1", params![chat], |r| r.get::<_, String>(0))
            .optional()
            .map(|o| o.map(ChatId::new))
            .map_err(storage)
    }

    pub fn count(&self, state: &str) -> Result<usize, OutboxError> {
        self.db.query_row("SELECT COUNT(*) FROM writes WHERE state = ?1", params![state], |r| r.get(0)).map_err(storage)
    }

    /// The writes given up, with why, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<(String, Write, String)>, OutboxError> {
        let mut stmt = self.db.prepare("SELECT chat, write, COALESCE(last_error, '') FROM writes WHERE state = 'dead' ORDER BY id").map_err(storage)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).map_err(storage)?;
        let mut out = Vec::new();
        for row in rows {
            let (chat, text, error) = row.map_err(storage)?;
            let write = serde_json::from_str(&text).map_err(|e| OutboxError::Storage(e.to_string()))?;
            out.push((chat, write, error));
        }
        Ok(out)
    }

    /// Forgets delivered writes pushed before `before_ms` (their chats stay known).
    pub fn prune(&self, before_ms: i64) -> Result<usize, OutboxError> {
        self.db.execute("DELETE FROM writes WHERE state = 'done' AND pushed_ms < ?1", params![before_ms]).map_err(storage)
    }
}

fn storage(e: rusqlite::Error) -> OutboxError {
    OutboxError::Storage(e.to_string())
}
