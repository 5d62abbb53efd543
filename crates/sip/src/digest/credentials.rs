//! The credentials of an `Authorization` or `Proxy-Authorization` header (RFC 7616 §3.4,
//! RFC 3261 §22.2 and §22.3), and their verification by a server.

use std::fmt;
use std::str::FromStr;

use super::algorithm::{Protection, ResponseInput};
use super::client::Login;
use super::params::{self, ParamWriter, set_once};
use super::{Algorithm, DigestError, NonceCount, Qop, excerpt};

/// Digest credentials, as sent in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username, or `H(username ":" realm)` when [`userhash`](Self::userhash) is set.
    pub username: String,
    /// The realm of the challenge answered.
    pub realm: String,
    /// The server nonce answered.
    pub nonce: String,
    /// The digest-uri: the Request-URI, as a string.
    pub uri: String,
    /// The request digest, in lowercase hex.
    pub response: String,
    /// The algorithm; [`Algorithm::Md5`] when absent, and always printed.
    pub algorithm: Algorithm,
    /// The client nonce, sent with a qop.
    pub cnonce: Option<String>,
    /// The challenge's opaque data, echoed.
    pub opaque: Option<String>,
    /// The quality of protection chosen; `None` for the RFC 2069 response.
    pub qop: Option<Qop>,
    /// The nonce count, sent with a qop.
    pub nc: Option<NonceCount>,
    /// Whether `username` is hashed (RFC 7616 §3.4.4).
    pub userhash: bool,
}

const NAMES: &[&str] = &["username", "username*", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc", "userhash"];

impl Credentials {
    /// Parses a header value, the text after `Authorization:` or `Proxy-Authorization:`, with
    /// the leniency of [`Challenge::parse`](super::Challenge::parse).
    ///
    /// A qop requires `cnonce` and `nc` (RFC 7616 §3.4). The extended `username*` form of
    /// RFC 7616 §3.4 is decoded into [`username`](Self::username).
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = None;
        let mut cnonce = None;
        let mut opaque = None;
        let mut qop = None;
        let mut nc = None;
        let mut userhash = None;
        for param in params::parse_digest(value)? {
            let Some(name) = params::canonical(param.name, NAMES) else {
                continue;
            };
            let value = param.value;
            match name {
                "username" => set_once(&mut username, name, value.into_owned())?,
                // `username` and `username*` are exclusive (RFC 7616 §3.4).
                "username*" => set_once(&mut username, "username", decode_ext_value(&value)?)?,
                "realm" => set_once(&mut realm, name, value.into_owned())?,
                "nonce" => set_once(&mut nonce, name, value.into_owned())?,
                "uri" => set_once(&mut uri, name, value.into_owned())?,
                "response" => set_once(&mut response, name, value.into_owned())?,
                "algorithm" => set_once(&mut algorithm, name, value.parse::<Algorithm>()?)?,
                "cnonce" => set_once(&mut cnonce, name, value.into_owned())?,
                "opaque" => set_once(&mut opaque, name, value.into_owned())?,
                "qop" => set_once(&mut qop, name, value.parse::<Qop>()?)?,
                "nc" => set_once(&mut nc, name, value.parse::<NonceCount>()?)?,
                "userhash" => set_once(&mut userhash, name, value.eq_ignore_ascii_case("true"))?,
                _ => {}
            }
        }
        let credentials = Credentials {
            username: username.ok_or(DigestError::MissingParam("username"))?,
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            uri: uri.ok_or(DigestError::MissingParam("uri"))?,
            response: response.ok_or(DigestError::MissingParam("response"))?,
            algorithm: algorithm.unwrap_or_default(),
            cnonce,
            opaque,
            qop,
            nc,
            userhash: userhash.unwrap_or(false),
        };
        if credentials.qop.is_some() {
            if credentials.cnonce.is_none() {
                return Err(DigestError::MissingParam("cnonce"));
            }
            if credentials.nc.is_none() {
                return Err(DigestError::MissingParam("nc"));
            }
        }
        Ok(credentials)
    }

    /// The client nonce, count and qop, when all three are present.
    fn protection(&self) -> Option<Protection<'_>> {
        Some(Protection { qop: self.qop?, nc: self.nc?, cnonce: self.cnonce.as_deref()? })
    }
}

/// Whether `credentials` answer their own nonce correctly for this request and login: the
/// username matches (in clear, or hashed with `userhash`) and so does the response.
///
/// This is the server side of RFC 7616 §3.4 for tests and local peers. The caller still checks
/// what only it knows: that `realm` and `nonce` are ones it issued, that `nc` was not seen
/// before with that nonce, and that `uri` is the Request-URI (RFC 7616 §3.4.6).
pub fn verify(credentials: &Credentials, method: &str, login: &Login<'_>, body: &[u8]) -> bool {
    let username_matches = if credentials.userhash {
        let hashed = credentials.algorithm.hash_joined(&[login.username.as_bytes(), credentials.realm.as_bytes()]);
        hex_eq(&hashed, &credentials.username)
    } else {
        credentials.username == login.username
    };
    if !username_matches || (credentials.qop.is_some() && credentials.protection().is_none()) {
        return false;
    }
    let input = ResponseInput {
        algorithm: credentials.algorithm,
        username: login.username,
        realm: &credentials.realm,
        password: login.password,
        nonce: &credentials.nonce,
        method,
        uri: &credentials.uri,
        body,
        protection: credentials.protection(),
    };
    match input.response() {
        Ok(expected) => hex_eq(&expected, &credentials.response),
        Err(_) => false,
    }
}

/// Compares hex digests ignoring case, in time independent of where they differ, so that a
/// response cannot be guessed one digit at a time.
fn hex_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())) == 0
}

/// Decodes an RFC 5987 `ext-value` in UTF-8: `UTF-8'[language]'percent-encoded`.
fn decode_ext_value(value: &str) -> Result<String, DigestError> {
    let invalid = || DigestError::InvalidValue { param: "username*", value: excerpt(value) };
    let mut parts = value.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return Err(invalid());
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2).ok_or_else(invalid)?;
            let hex = std::str::from_utf8(hex).map_err(|_| invalid())?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| invalid())?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
    // A percent-encoded CR or LF would end the header line if the username were echoed.
    if decoded.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(invalid());
    }
    Ok(decoded)
}

impl FromStr for Credentials {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Credentials, DigestError> {
        Credentials::parse(s)
    }
}

impl fmt::Display for Credentials {
    /// Prints the header value in the order of the RFC 7616 §3.9 examples: strings quoted;
    /// algorithm, qop and nc as tokens, nc in 8 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = ParamWriter::start(f)?;
        w.quoted("username", &self.username)?;
        w.quoted("realm", &self.realm)?;
        w.quoted("uri", &self.uri)?;
        w.token("algorithm", self.algorithm)?;
        w.quoted("nonce", &self.nonce)?;
        if let Some(nc) = self.nc {
            w.token("nc", nc)?;
        }
        if let Some(cnonce) = &self.cnonce {
            w.quoted("cnonce", cnonce)?;
        }
        if let Some(qop) = self.qop {
            w.token("qop", qop)?;
        }
        w.quoted("response", &self.response)?;
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque)?;
        }
        if self.userhash {
            w.token("userhash", "true")?;
        }
        Ok(())
    }
}
