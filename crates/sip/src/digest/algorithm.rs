//! The vocabulary of digest: hash algorithms, qualities of protection, nonce counts, and the
//! hash computations of RFC 7616 §3.4.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::{DigestError, excerpt};

/// A digest algorithm (RFC 7616 §3.3, registered for SIP by RFC 8760 §2.1).
///
/// Names parse case-insensitively and print in the canonical case of the IANA registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm (RFC 7616 §3.3).
    #[default]
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`: SHA-512/256 of FIPS 180-4, with its own initial values, not a truncated
    /// SHA-512.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [Algorithm; 6] =
        [Algorithm::Sha512_256, Algorithm::Sha512_256Sess, Algorithm::Sha256, Algorithm::Sha256Sess, Algorithm::Md5, Algorithm::Md5Sess];

    /// The canonical name, as printed in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant, whose HA1 also covers the nonce and client nonce.
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess)
    }

    /// `H(data)`: the lowercase hexadecimal digest of `data` (RFC 7616 §3.4).
    pub fn hash(self, data: &[u8]) -> String {
        self.hash_joined(&[data])
    }

    /// `H(p1 ":" p2 ":" ...)`, without building the joined string.
    pub(crate) fn hash_joined(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex_digest::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex_digest::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_digest::<Sha512_256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Algorithm, DigestError> {
        Algorithm::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| DigestError::UnsupportedAlgorithm(excerpt(s)))
    }
}

/// A quality of protection (RFC 7616 §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: the request line is authenticated.
    Auth,
    /// `auth-int`: the request line and the body are authenticated.
    AuthInt,
}

impl Qop {
    /// The name, as printed in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Qop {
    type Err = DigestError;

    /// Parses a qop value; RFC 7616 defines lowercase tokens, but case is forgiven.
    fn from_str(s: &str) -> Result<Qop, DigestError> {
        if s.eq_ignore_ascii_case("auth") {
            Ok(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Ok(Qop::AuthInt)
        } else {
            Err(DigestError::UnsupportedQop(excerpt(s)))
        }
    }
}

/// The nonce count `nc` (RFC 7616 §3.4): how many requests, this one included, the client has
/// sent with one nonce.
///
/// Printed as exactly 8 lowercase hexadecimal digits, so `256` is `00000100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NonceCount(pub u32);

impl NonceCount {
    /// The count of the first request with a nonce.
    pub const FIRST: NonceCount = NonceCount(1);

    /// The next count, or `None` once `ffffffff` is used: 8 hex digits cannot go further, and
    /// the client needs a new nonce.
    pub fn next(self) -> Option<NonceCount> {
        self.0.checked_add(1).map(NonceCount)
    }
}

impl fmt::Display for NonceCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl FromStr for NonceCount {
    type Err = DigestError;

    /// Parses `8LHEX`. Uppercase digits are accepted, but the response is always checked against
    /// the lowercase form that RFC 7616 §3.4 requires.
    fn from_str(s: &str) -> Result<NonceCount, DigestError> {
        let invalid = || DigestError::InvalidValue { param: "nc", value: excerpt(s) };
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        u32::from_str_radix(s, 16).map(NonceCount).map_err(|_| invalid())
    }
}

/// The client nonce, count and qop that RFC 2617 added to the response; absent in the RFC 2069
/// form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Protection<'a> {
    pub qop: Qop,
    pub nc: NonceCount,
    pub cnonce: &'a str,
}

/// Everything the response hash covers (RFC 7616 §3.4.1 to §3.4.3).
#[derive(Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    /// The username in clear, even when the header carries its hash (RFC 7616 §3.4.4).
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub protection: Option<Protection<'a>>,
}

impl ResponseInput<'_> {
    /// The `response` value.
    pub fn response(&self) -> Result<String, DigestError> {
        let alg = self.algorithm;
        // RFC 7616 §3.4.2: A1 = username:realm:password, and for -sess
        // A1 = H(username:realm:password):nonce:cnonce.
        let mut ha1 = alg.hash_joined(&[self.username.as_bytes(), self.realm.as_bytes(), self.password.as_bytes()]);
        if alg.is_session() {
            let Some(p) = self.protection else {
                return Err(DigestError::SessionWithoutQop(alg));
            };
            ha1 = alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), p.cnonce.as_bytes()]);
        }
        // RFC 7616 §3.4.3: A2 = method:uri, and for auth-int A2 = method:uri:H(body).
        let ha2 = match self.protection {
            Some(Protection { qop: Qop::AuthInt, .. }) => {
                let body = alg.hash(self.body);
                alg.hash_joined(&[self.method.as_bytes(), self.uri.as_bytes(), body.as_bytes()])
            }
            _ => alg.hash_joined(&[self.method.as_bytes(), self.uri.as_bytes()]),
        };
        // RFC 7616 §3.4.1 with a qop; RFC 2069 §2.1.2 (kept by RFC 2617 §3.2.2.1) without.
        Ok(match self.protection {
            Some(p) => {
                let nc = p.nc.to_string();
                alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), nc.as_bytes(), p.cnonce.as_bytes(), p.qop.as_str().as_bytes(), ha2.as_bytes()])
            }
            None => alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        })
    }
}

/// Hashes `parts` joined by colons, as lowercase hex.
fn hex_digest<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";
