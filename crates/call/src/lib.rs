//! The call bridge of happ-gateway, sans-IO: what turns a phone call into a conversation with an
//! assistant.
//!
//! - [`Conversation`]: the turn-taking machine. The caller's voice frame by frame, the
//!   recogniser's words, the LLM's text and tool calls, synthesised audio queued and played,
//!   keypad digits, platform events and timeouts go in, each with `now`; [`Action`]s (start or
//!   cancel the LLM, speak a sentence, pause, resume or flush playback, commit a transcript entry,
//!   hand off, hang up) and the next deadline come out. Whole conversations run in virtual time.
//! - [`Bridge`]: one call leg's audio plumbing around a `happ_media` `MediaSession`: the voice
//!   detector and the [`EchoGuard`] on the caller's frames, the speech queue in order, playback
//!   actions applied in the same loop turn (a barge-in takes no channel hop). A driver moves
//!   datagrams and provider streams; everything else is here.
//! - [`text`]: sentences from a streamed answer, backchannels, echo of the assistant's words,
//!   and where to cut a sentence that was heard in part.
//!
//! Nothing here reads a clock, touches a socket or spawns a task (`clippy.toml` forbids them).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bridge;
mod config;
pub mod conversation;
pub mod echo;
pub mod keypad;
pub mod text;
mod types;

pub use bridge::{Bridge, BridgeConfig, BridgeError, BridgeStats};
pub use config::{ConversationConfig, Opening};
pub use conversation::{Conversation, ConversationStats, Frame, HANDOFF_TOOL, HANGUP_TOOL, Providers};
pub use echo::EchoGuard;
pub use types::{Action, Entry, Failure, Generation, SpeechId, ToolRequest, TurnLatency};
