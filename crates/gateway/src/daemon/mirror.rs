//! Calls mirrored into Happ chats (with `[happ]`): each answered call on a phone linked to an
//! assistant gets a chat of that assistant, opened with a system message saying who called whom
//! and closed with one saying how the call ended. The call bridge adds the conversation itself.
//!
//! Every write goes to the durable outbox, which delivers it whatever the platform's state: the
//! SIP task only hands writes to a thread that stores them (SQLite commits are short, but not
//! for the SIP task to wait on), and that thread is joined at shutdown, so a write handed over is
//! on disk before the process exits.

use std::sync::mpsc;
use std::thread::JoinHandle;

use happ_client::model::{AssistantId, NewMessage, Role};
use happ_client::outbox::{Outbox, Write};
use tracing::error;

/// The mirror: hands writes to the outbox's writer thread.
pub struct Mirror {
    tx: Option<mpsc::Sender<(String, Write)>>,
    writer: Option<JoinHandle<()>>,
}

impl Mirror {
    /// Starts the writer thread of `outbox`.
    pub fn start(outbox: Outbox) -> Result<Mirror, String> {
        let (tx, rx) = mpsc::channel::<(String, Write)>();
        let writer = std::thread::Builder::new()
            .name("happ-outbox".into())
            .spawn(move || {
                for (chat, write) in rx {
                    if let Err(e) = outbox.push(&chat, write) {
                        // Only a broken disk gets here; the write is lost and says so.
                        error!(%chat, error = %e, "cannot store a write for the Happ platform");
                    }
                }
            })
            .map_err(|e| format!("cannot start the outbox writer: {e}"))?;
        Ok(Mirror { tx: Some(tx), writer: Some(writer) })
    }

    fn send(&self, chat: &str, write: Write) {
        if let Some(tx) = &self.tx {
            // The receiver lives until `close`: a send cannot fail before.
            let _ = tx.send((chat.to_owned(), write));
        }
    }

    /// A call answered: its chat is created with `text` as its first (system) message.
    pub fn opened(&self, chat: &str, assistant: &str, text: String) {
        self.send(chat, Write::CreateChat { assistant_id: AssistantId::new(assistant) });
        self.note(chat, text);
    }

    /// A system message in the call's chat.
    pub fn note(&self, chat: &str, text: String) {
        self.send(chat, Write::Message(NewMessage { content: text, role: Some(Role::System) }));
    }

    /// A transcript entry of the call: the caller's words as a user message, the assistant's as
    /// an assistant message (an interrupted one marked so). Operators' messages are in the chat
    /// already; tool calls and results stay with the call.
    pub fn entry(&self, chat: &str, entry: &happ_call::Entry) {
        let (role, text) = match entry {
            happ_call::Entry::Caller { text, .. } => (Role::User, text.clone()),
            happ_call::Entry::Assistant { text, interrupted, .. } if !text.trim().is_empty() => {
                (Role::Assistant, if *interrupted { format!("{text} [interrupted]") } else { text.clone() })
            }
            _ => return,
        };
        self.send(chat, Write::Message(NewMessage { content: text, role: Some(role) }));
    }

    /// The chat's AI control (the assistant handed the caller to a person).
    pub fn ai_control(&self, chat: &str, on: bool) {
        self.send(chat, Write::AiControl { on });
    }

    /// Waits until every write handed over is stored.
    pub fn close(mut self) {
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
