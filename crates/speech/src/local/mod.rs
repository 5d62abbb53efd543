//! Offline providers that need no account and no network: a conversation works on a machine with
//! nothing but Debian packages.
//!
//! - [`espeak`]: [`EspeakTts`], text-to-speech with the `espeak-ng` program, one process per
//!   stream fed sentence by sentence, resampled from its 22,050 Hz to 16 or 8 kHz.
//! - [`sphinx`]: [`SphinxStt`], speech-to-text with pocketsphinx, made to work on 8 kHz call
//!   audio by spectral folding, with a language model built from the assistant's words.
//! - [`knowledge`]: [`KnowledgeLlm`], an [`LlmProvider`](crate::LlmProvider) that answers from the
//!   assistant's knowledge entries by retrieval (BM25 over their sentences), handles greetings,
//!   thanks and goodbyes, and calls the hand-off tool when the caller asks for a person.

pub mod espeak;
mod intent;
pub mod knowledge;
mod resample;
mod retrieval;
pub mod sphinx;
mod text;
mod wav;

pub use espeak::{EspeakConfig, EspeakStream, EspeakTts};
pub use knowledge::{KnowledgeBase, KnowledgeEntry, KnowledgeLlm, KnowledgeOptions, KnowledgeStream};
pub use sphinx::{SphinxConfig, SphinxSession, SphinxStt};
