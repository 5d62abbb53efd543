//! The auth-param lists of challenges and credentials: `Digest name=value, name="value"`.
//!
//! The grammar is RFC 3261 §25.1 (`EQUAL` and `COMMA` allow whitespace on both sides, `LWS`
//! allows a folded line), with two leniencies: empty list elements are skipped, as RFC 7230 §7
//! asks of recipients (so a trailing comma is fine), and an unquoted value may hold any visible
//! character but `,` and `"`, since servers send unquoted URIs and base64 nonces.

use std::borrow::Cow;
use std::fmt;

use super::{DigestError, excerpt};

/// One `name=value` parameter, its value unquoted and unescaped.
#[derive(Debug)]
pub(crate) struct Param<'a> {
    /// The name as received; compare it case-insensitively.
    pub name: &'a str,
    /// The value, borrowed unless it held escapes or folding.
    pub value: Cow<'a, str>,
}

/// Parses a header value that must use the Digest scheme into its parameters.
pub(crate) fn parse_digest(input: &str) -> Result<Vec<Param<'_>>, DigestError> {
    let mut lexer = Lexer { s: input, pos: 0 };
    lexer.skip_ws();
    let scheme = lexer.token();
    if scheme.is_empty() {
        return Err(lexer.malformed("expected an authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::UnsupportedScheme(excerpt(scheme)));
    }
    let mut params = Vec::new();
    if lexer.at_end() {
        return Ok(params);
    }
    // RFC 3261 §25.1: challenge = "Digest" LWS digest-cln *(COMMA digest-cln).
    if !lexer.skip_ws() {
        return Err(lexer.malformed("expected whitespace after the scheme"));
    }
    loop {
        // Empty elements: `Digest , realm="a",, nonce="b",`.
        while lexer.eat(b',') {
            lexer.skip_ws();
        }
        if lexer.at_end() {
            return Ok(params);
        }
        let name = lexer.token();
        if name.is_empty() {
            return Err(lexer.malformed("expected a parameter name"));
        }
        lexer.skip_ws();
        if !lexer.eat(b'=') {
            return Err(lexer.malformed("expected '=' after a parameter name"));
        }
        lexer.skip_ws();
        let value = if lexer.peek() == Some(b'"') { lexer.quoted()? } else { lexer.bare()? };
        params.push(Param { name, value });
        lexer.skip_ws();
        if lexer.at_end() {
            return Ok(params);
        }
        if !lexer.eat(b',') {
            return Err(lexer.malformed("expected ',' between parameters"));
        }
        lexer.skip_ws();
    }
}

/// The canonical spelling of `name` among `known` names, compared case-insensitively (RFC 7235
/// §2.1: parameter names are case-insensitive).
pub(crate) fn canonical(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

/// Stores a parameter's value, refusing a second one: with two `realm`s or two `response`s,
/// any choice could be the wrong one (RFC 7235 §2.1: each name occurs once).
pub(crate) fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), DigestError> {
    if slot.is_some() {
        return Err(DigestError::DuplicateParam(name));
    }
    *slot = Some(value);
    Ok(())
}

/// A cursor over the header value. Every delimiter is ASCII, so every position it stops at is a
/// character boundary.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Skips whitespace, counting CR and LF as whitespace so that a value still folded over
    /// several lines parses; returns whether there was any.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// A possibly empty token (RFC 3261 §25.1, plus the extra `tchar`s of RFC 7230 §3.2.6).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// An unquoted value: a non-empty run of visible characters other than `,` and `"`.
    fn bare(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b > b' ' && b != 0x7f && b != b',' && b != b'"') {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.malformed("expected a parameter value"));
        }
        Ok(Cow::Borrowed(&self.s[start..self.pos]))
    }

    /// A quoted string, the cursor on its opening quote: qdtext and quoted-pair of RFC 3261
    /// §25.1, folds included, but no control character other than HTAB, escaped or not, since
    /// such a value could not be echoed back faithfully.
    fn quoted(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let bytes = self.s.as_bytes();
        let open = self.pos;
        let mut i = open + 1;
        let mut plain = true;
        loop {
            let Some(&b) = bytes.get(i) else {
                self.pos = open;
                return Err(self.malformed("unterminated quoted string"));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    // The escaped byte may lead a multi-byte character; its continuation bytes
                    // are never `"` or `\`, so the scan stays in step.
                    match bytes.get(i + 1) {
                        None => {
                            self.pos = i;
                            return Err(self.malformed("unterminated escape in a quoted string"));
                        }
                        Some(&next) if is_control(next) => {
                            // quoted-pair admits most controls, but we would have to drop them
                            // when echoing the value, so the echo would not match.
                            self.pos = i + 1;
                            return Err(self.malformed("control character in a quoted string"));
                        }
                        Some(_) => i += 2,
                    }
                    plain = false;
                }
                b'\r' if bytes.get(i + 1) == Some(&b'\n') && matches!(bytes.get(i + 2), Some(b' ' | b'\t')) => {
                    i += 2;
                    plain = false;
                }
                _ if is_control(b) => {
                    // A bare CR or LF would end the header line when echoed back.
                    self.pos = i;
                    return Err(self.malformed("control character in a quoted string"));
                }
                _ => i += 1,
            }
        }
        let inner = &self.s[open + 1..i];
        self.pos = i + 1;
        if plain {
            return Ok(Cow::Borrowed(inner));
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                // A fold (validated above): CRLF followed by whitespace, which is kept.
                '\r' => {
                    chars.next();
                }
                _ => out.push(c),
            }
        }
        Ok(Cow::Owned(out))
    }

    fn malformed(&self, what: &'static str) -> DigestError {
        DigestError::Malformed { what, at: self.pos }
    }
}

/// A control character other than HTAB, which qdtext allows (RFC 3261 §25.1).
fn is_control(b: u8) -> bool {
    (b < b' ' && b != b'\t') || b == 0x7f
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~#$&^|".contains(&b)
}

/// Whether `s` can be printed without quotes.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Writes `name=value` list elements: the first one after a space, the others after `, `.
pub(crate) struct ParamWriter<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl<'a, 'b> ParamWriter<'a, 'b> {
    /// Writes the scheme; the parameters follow.
    pub fn start(f: &'a mut fmt::Formatter<'b>) -> Result<ParamWriter<'a, 'b>, fmt::Error> {
        f.write_str("Digest")?;
        Ok(ParamWriter { f, first: true })
    }

    fn separator(&mut self) -> fmt::Result {
        let sep = if self.first { " " } else { ", " };
        self.first = false;
        self.f.write_str(sep)
    }

    /// `name=value`, for values known to be tokens (algorithm, qop, nc, flags).
    pub fn token(&mut self, name: &str, value: impl fmt::Display) -> fmt::Result {
        self.separator()?;
        write!(self.f, "{name}={value}")
    }

    /// `name="value"`, escaping `"` and `\`.
    ///
    /// Control characters other than HTAB are left out: quoted-pair cannot carry CR or LF
    /// (RFC 3261 §25.1), and printed raw they would end the header line.
    pub fn quoted(&mut self, name: &str, value: &str) -> fmt::Result {
        self.separator()?;
        write!(self.f, "{name}=\"")?;
        for c in value.chars() {
            match c {
                '"' | '\\' => write!(self.f, "\\{c}")?,
                '\t' => self.f.write_str("\t")?,
                _ if c.is_ascii_control() => {}
                _ => write!(self.f, "{c}")?,
            }
        }
        self.f.write_str("\"")
    }

    /// `name=value` when the value is a token, `name="value"` otherwise.
    pub fn token_or_quoted(&mut self, name: &str, value: &str) -> fmt::Result {
        if is_token(value) { self.token(name, value) } else { self.quoted(name, value) }
    }
}
