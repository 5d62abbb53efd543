//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760, compatible with
//! RFC 2617 and RFC 2069).
//!
//! - [`Challenge`] is the value of a `WWW-Authenticate` or `Proxy-Authenticate` header, and
//!   [`Credentials`] the value of an `Authorization` or `Proxy-Authorization` header; both parse
//!   leniently (any parameter order and name case, whitespace and folding, escapes, empty list
//!   elements) and print canonically.
//! - [`DigestClient`] is the user agent side: it answers challenges, remembers the last one per
//!   realm and counts the uses of each nonce, so that requests can be authorised pre-emptively.
//! - [`verify`] is the server side: it checks received credentials against a password.
//!
//! Everything is sans-IO: the caller supplies the client nonce (`cnonce`), drawn from its own
//! seeded generator, and no clock is read.
//!
//! ```
//! use happ_sip::digest::{verify, Challenge, DigestClient, Login, RequestParts};
//!
//! let challenge = Challenge::parse(r#"Digest realm="example.com", nonce="a1b2", qop="auth,auth-int""#)?;
//! let login = Login { username: "alice", password: "secret" };
//! let request = RequestParts { method: "REGISTER", uri: "sip:example.com", body: b"" };
//! let mut client = DigestClient::new();
//! let credentials = client.respond(&challenge, &request, &login, "0a4f113b")?;
//! assert!(credentials.to_string().contains("nc=00000001, cnonce=\"0a4f113b\", qop=auth"));
//! assert!(verify(&credentials, "REGISTER", &login, b""));
//! # Ok::<(), happ_sip::digest::DigestError>(())
//! ```
//!
//! We do not use `rsip`'s digest helper: it fails to parse `qop="auth,auth-int"`, keeps the
//! nonce count in a `u8` printed in decimal, computes the `-sess` algorithms like the plain
//! ones, hashes an empty body for `auth-int` whatever the body, and has no SHA-512/256.

mod algorithm;
mod challenge;
mod client;
mod credentials;
mod params;

pub use algorithm::{Algorithm, NonceCount, Qop};
pub use challenge::Challenge;
pub use client::{DigestClient, Login, RequestParts};
pub use credentials::{Credentials, verify};

/// Longest excerpt of a peer's text kept in an error, so hostile input cannot bloat logs.
const EXCERPT_CHARS: usize = 64;

/// Why a digest header cannot be parsed or answered.
///
/// `Unsupported*` variants mean the peer asked for something valid that we do not implement;
/// [`Malformed`](DigestError::Malformed), [`MissingParam`](DigestError::MissingParam),
/// [`DuplicateParam`](DigestError::DuplicateParam) and
/// [`InvalidValue`](DigestError::InvalidValue) mean the peer sent an invalid header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The header names another authentication scheme (such as `Basic`).
    #[error("unsupported authentication scheme {0:?}: only Digest is supported")]
    UnsupportedScheme(String),
    /// The `algorithm` parameter names an algorithm we do not implement.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The `qop` parameter offers or names no quality of protection we implement.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    /// A required parameter is absent.
    #[error("missing digest parameter `{0}`")]
    MissingParam(&'static str),
    /// A parameter appears twice, which would make its meaning ambiguous (RFC 7235 §2.1).
    #[error("digest parameter `{0}` appears more than once")]
    DuplicateParam(&'static str),
    /// A parameter's value does not follow its grammar.
    #[error("invalid value {value:?} for digest parameter `{param}`")]
    InvalidValue {
        /// The parameter.
        param: &'static str,
        /// The value received, cut to a short excerpt.
        value: String,
    },
    /// The header does not follow the auth-param grammar (RFC 3261 §25.1).
    #[error("malformed digest header: {what} at byte {at}")]
    Malformed {
        /// What was expected or found.
        what: &'static str,
        /// Byte offset in the header value.
        at: usize,
    },
    /// A `-sess` algorithm needs a client nonce, which is only sent with a qop (RFC 7616 §3.4.2),
    /// and the challenge offers none.
    #[error("algorithm {0} needs a qop, and the challenge offers none")]
    SessionWithoutQop(Algorithm),
    /// The nonce has been used `ffffffff` times; the server must send a new one.
    #[error("nonce count exhausted: a new challenge is needed")]
    NonceCountExhausted,
    /// None of the header values holds a Digest challenge.
    #[error("no Digest challenge in the response")]
    NoChallenge,
}

/// `s` cut to [`EXCERPT_CHARS`] characters, for error messages.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
