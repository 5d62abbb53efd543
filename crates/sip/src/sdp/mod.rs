//! SDP (RFC 8866, which obsoletes RFC 4566) and the offer/answer model (RFC 3264) for a G.711
//! voice gateway.
//!
//! - [`SessionDescription`] is the model: every line of a parsed description is kept, typed where
//!   the gateway needs it ([`Attribute::RtpMap`], [`Attribute::Fmtp`], [`Direction`]...) and
//!   verbatim otherwise, so that printing what was parsed loses nothing.
//! - [`SessionDescription::parse`] reads real-world text (LF-only line endings, trailing
//!   whitespace, unknown line types and attributes) and fails with a [`ParseError`] that names the
//!   line number and its text; printing (`Display`) writes CRLF lines in the order of RFC 8866 §5.
//!   For every parsed description `parse(print(x)) == x`.
//! - [`answer`] answers a peer's offer (inbound calls, re-INVITEs), [`offer`] and
//!   [`negotiate_answer`] make an offer and read its answer (outbound calls, early media), and
//!   [`hold_offer`] / [`resume_offer`] / [`is_hold`] handle hold. All of them yield a
//!   [`Negotiated`]: where to send RTP and RTCP, with which codec and payload types, and in
//!   which direction.
//!
//! Everything here is pure: no clocks, no I/O, no randomness. Session ids and versions come from
//! the caller.

mod codec;
mod direction;
mod hold;
mod model;
mod negotiate;
mod parse;
mod print;

#[cfg(test)]
mod examples;

pub use codec::{CN_PAYLOAD_TYPE, Codec, TELEPHONE_EVENT_PAYLOAD_TYPE, static_encoding};
pub use direction::Direction;
pub use hold::{hold_offer, is_hold, reoffer, resume_offer};
pub use model::{AddrType, Address, Attribute, Fmtp, Line, MediaDescription, MediaKind, Origin, Rtcp, RtpMap, SessionDescription, Timing};
pub use negotiate::{Answer, LocalMedia, Negotiated, NegotiationError, Unacceptable, answer, negotiate_answer, offer};
pub use parse::{ParseError, ParseErrorKind};
