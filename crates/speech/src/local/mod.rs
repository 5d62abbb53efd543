//! Offline providers that need no account and no network: a conversation works on a machine with
//! nothing but Debian packages.
//!
//! - [`espeak`]: [`EspeakTts`], text-to-speech with the `espeak-ng` program, one process per
//!   stream fed sentence by sentence, resampled from its 22,050 Hz to 16 or 8 kHz.
//! - [`knowledge`]: [`KnowledgeLlm`], an [`LlmProvider`](crate::LlmProvider) that answers from the
//!   assistant's knowledge entries by retrieval (BM25 over their sentences), handles greetings,
//!   thanks and goodbyes, and calls the hand-off tool when the caller asks for a person.
//!
//! Offline speech-to-text belongs here too, next to these.

pub mod espeak;
mod intent;
pub mod knowledge;
mod resample;
mod retrieval;
mod text;
mod wav;

pub use espeak::{EspeakConfig, EspeakStream, EspeakTts};
pub use knowledge::{KnowledgeBase, KnowledgeEntry, KnowledgeLlm, KnowledgeOptions, KnowledgeStream};
