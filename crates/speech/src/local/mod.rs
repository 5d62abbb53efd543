//! Local offline providers: the embedded default that needs no account and no network.
//!
//! - [`sphinx`]: speech-to-text with pocketsphinx, made to work on 8 kHz call audio.

pub mod sphinx;
