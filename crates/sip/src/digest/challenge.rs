//! The challenge of a `WWW-Authenticate` or `Proxy-Authenticate` header (RFC 7616 §3.3,
//! RFC 3261 §22.2 and §22.3).

use std::fmt;
use std::str::FromStr;

use super::params::{self, ParamWriter, set_once};
use super::{Algorithm, DigestError, Qop, excerpt};

/// A Digest challenge, as sent in a 401 or 407 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space; credentials are cached per realm.
    pub realm: String,
    /// The URIs of the protection space (a space-separated list on the wire); rarely used in
    /// SIP.
    pub domain: Vec<String>,
    /// The server nonce.
    pub nonce: String,
    /// Data the client echoes back unchanged.
    pub opaque: Option<String>,
    /// The previous request was refused only because its nonce was stale: retry with the new
    /// nonce without asking the user again (RFC 7616 §3.3).
    pub stale: bool,
    /// The algorithm, [`Algorithm::Md5`] when the challenge names none.
    pub algorithm: Algorithm,
    /// The qualities of protection offered, in the server's order; empty when the challenge has
    /// no `qop`, which asks for the RFC 2069 response.
    pub qop: Vec<Qop>,
    /// The server accepts a hashed username (RFC 7616 §3.4.4).
    pub userhash: bool,
    /// The `charset` parameter; RFC 7616 §3.3 only allows `UTF-8`, which we use anyway.
    pub charset: Option<String>,
}

const NAMES: &[&str] = &["realm", "domain", "nonce", "opaque", "stale", "algorithm", "qop", "charset", "userhash"];

impl Challenge {
    /// A challenge with qop `auth` and MD5, as a server would send it; adjust the fields to
    /// taste.
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>) -> Challenge {
        Challenge {
            realm: realm.into(),
            domain: Vec::new(),
            nonce: nonce.into(),
            opaque: None,
            stale: false,
            algorithm: Algorithm::Md5,
            qop: vec![Qop::Auth],
            userhash: false,
            charset: None,
        }
    }

    /// Parses a header value, the text after `WWW-Authenticate:` or `Proxy-Authenticate:`.
    ///
    /// Unknown parameters are ignored (RFC 7616 §3.3), and so are unknown qop options
    /// (RFC 2617 §3.2.1), but a `qop` with no known option is refused rather than answered in
    /// the RFC 2069 form the server did not ask for.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let mut realm = None;
        let mut domain = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut stale = None;
        let mut algorithm = None;
        let mut qop = None;
        let mut charset = None;
        let mut userhash = None;
        for param in params::parse_digest(value)? {
            let Some(name) = params::canonical(param.name, NAMES) else {
                continue;
            };
            let value = param.value;
            match name {
                "realm" => set_once(&mut realm, name, value.into_owned())?,
                "domain" => set_once(&mut domain, name, value.split_whitespace().map(str::to_owned).collect())?,
                "nonce" => set_once(&mut nonce, name, value.into_owned())?,
                "opaque" => set_once(&mut opaque, name, value.into_owned())?,
                // RFC 7616 §3.3: anything but a case-insensitive "true" is false.
                "stale" => set_once(&mut stale, name, value.eq_ignore_ascii_case("true"))?,
                "algorithm" => set_once(&mut algorithm, name, value.parse::<Algorithm>()?)?,
                "qop" => set_once(&mut qop, name, parse_qop_options(&value)?)?,
                "charset" => set_once(&mut charset, name, value.into_owned())?,
                "userhash" => set_once(&mut userhash, name, value.eq_ignore_ascii_case("true"))?,
                _ => {}
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            domain: domain.unwrap_or_default(),
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            opaque,
            stale: stale.unwrap_or(false),
            algorithm: algorithm.unwrap_or_default(),
            qop: qop.unwrap_or_default(),
            userhash: userhash.unwrap_or(false),
            charset,
        })
    }

    /// Chooses the challenges to answer among the `WWW-Authenticate` (or `Proxy-Authenticate`)
    /// values of one response: for each realm, the topmost challenge we can answer, in order.
    ///
    /// A server may offer one challenge per algorithm, strongest first (RFC 8760 §2.4), and a
    /// forked request may collect challenges from several realms (RFC 3261 §22.3). Challenges
    /// we cannot use are skipped (RFC 2617 §3.2.1). When none is usable, the error is the one of
    /// the first Digest challenge, or [`DigestError::NoChallenge`].
    pub fn select<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Challenge>, DigestError> {
        let mut chosen: Vec<Challenge> = Vec::new();
        let mut first_error = None;
        for value in values {
            match Challenge::parse(value) {
                Ok(c) => {
                    if !chosen.iter().any(|k| k.realm == c.realm) {
                        chosen.push(c);
                    }
                }
                Err(DigestError::UnsupportedScheme(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (chosen.is_empty(), first_error) {
            (false, _) => Ok(chosen),
            (true, Some(e)) => Err(e),
            (true, None) => Err(DigestError::NoChallenge),
        }
    }
}

/// Parses qop-options: a quoted list (RFC 7616 §3.3), or the bare token some servers send.
fn parse_qop_options(value: &str) -> Result<Vec<Qop>, DigestError> {
    let mut offered = Vec::new();
    for option in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if let Ok(qop) = option.parse::<Qop>()
            && !offered.contains(&qop)
        {
            offered.push(qop);
        }
    }
    if offered.is_empty() {
        return Err(DigestError::UnsupportedQop(excerpt(value)));
    }
    Ok(offered)
}

impl FromStr for Challenge {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Challenge, DigestError> {
        Challenge::parse(s)
    }
}

impl fmt::Display for Challenge {
    /// Prints the header value, realm first as in the RFC 3261 §22 examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = ParamWriter::start(f)?;
        w.quoted("realm", &self.realm)?;
        if !self.domain.is_empty() {
            w.quoted("domain", &self.domain.join(" "))?;
        }
        w.quoted("nonce", &self.nonce)?;
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque)?;
        }
        if self.stale {
            w.token("stale", "TRUE")?;
        }
        w.token("algorithm", self.algorithm)?;
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            w.quoted("qop", &list.join(","))?;
        }
        if let Some(charset) = &self.charset {
            w.token_or_quoted("charset", charset)?;
        }
        if self.userhash {
            w.token("userhash", "true")?;
        }
        Ok(())
    }
}
