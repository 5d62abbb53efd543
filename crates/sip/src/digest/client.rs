//! The user agent side: answering challenges and re-using them (RFC 3261 §22.2 and §22.3,
//! RFC 7616 §3.4).

use std::fmt;

use super::algorithm::{Protection, ResponseInput};
use super::{Challenge, Credentials, DigestError, NonceCount, Qop};

/// Most realms remembered at once. Realms are chosen by the peers, so a hostile server must not
/// make the list grow; a gateway talks to one or two (registrar, outbound proxy).
const MAX_REALMS: usize = 8;

/// What is being authorised: the parts of a request that the response covers.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    /// The SIP method, such as `REGISTER` or `INVITE`.
    pub method: &'a str,
    /// The digest-uri: the Request-URI, as a string (RFC 3261 §22.4).
    pub uri: &'a str,
    /// The message body, hashed with qop `auth-int`.
    pub body: &'a [u8],
}

impl fmt::Debug for RequestParts<'_> {
    /// Leaves the body out: an SDP body carries addresses (STYLE.md, rule 12).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestParts").field("method", &self.method).field("uri", &self.uri).field("body_len", &self.body.len()).finish()
    }
}

/// A username and its password.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    /// The username, in clear.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
}

impl fmt::Debug for Login<'_> {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The client's digest state: per realm, the last challenge answered and the uses of its nonce.
///
/// Call [`respond`](Self::respond) for each 401 or 407 challenge, and
/// [`preemptive`](Self::preemptive) to authorise a new request to a realm already answered, as
/// RFC 3261 §22.3 suggests, without waiting for a challenge. Each use of a nonce increments its
/// nonce count, which the server uses to detect replays (RFC 7616 §3.4); a new nonce restarts at
/// `00000001`.
///
/// An ACK to a non-2xx response and a CANCEL carry the INVITE's credentials unchanged
/// (RFC 3261 §22.1): do not compute new ones for them.
#[derive(Clone, Debug, Default)]
pub struct DigestClient {
    /// Oldest first, so the first is dropped when [`MAX_REALMS`] is reached.
    sessions: Vec<Session>,
}

/// One realm's state.
#[derive(Clone, Debug)]
struct Session {
    challenge: Challenge,
    /// The qop chosen for this challenge.
    qop: Option<Qop>,
    /// The count of the last request sent with `challenge.nonce`.
    nc: NonceCount,
    /// The client nonce of the first request with this nonce: the `-sess` algorithms compute
    /// HA1 from it for the whole session (RFC 7616 §3.4.2, "cnonce-prime").
    cnonce_prime: String,
}

impl DigestClient {
    /// A client that remembers nothing yet.
    pub fn new() -> DigestClient {
        DigestClient::default()
    }

    /// Answers `challenge` for `request`, and remembers it for its realm.
    ///
    /// `cnonce` is a fresh client nonce from the caller's generator. A challenge with the nonce
    /// of the one remembered continues its count (a request sent again gets `00000002`); a new
    /// nonce starts at `00000001`.
    ///
    /// Errors when the challenge cannot be answered: a `-sess` algorithm without a qop, or a
    /// nonce used `ffffffff` times.
    pub fn respond(&mut self, challenge: &Challenge, request: &RequestParts<'_>, login: &Login<'_>, cnonce: &str) -> Result<Credentials, DigestError> {
        let qop = choose_qop(challenge)?;
        let existing = self.sessions.iter().position(|s| s.challenge.realm == challenge.realm);
        let (nc, cnonce_prime) = match existing.map(|i| &self.sessions[i]) {
            Some(s) if s.challenge.nonce == challenge.nonce => (s.nc.next().ok_or(DigestError::NonceCountExhausted)?, s.cnonce_prime.clone()),
            _ => (NonceCount::FIRST, cnonce.to_owned()),
        };
        let session = Session { challenge: challenge.clone(), qop, nc, cnonce_prime };
        let credentials = session.credentials(request, login, cnonce)?;
        match existing {
            Some(i) => self.sessions[i] = session,
            None => {
                if self.sessions.len() == MAX_REALMS {
                    self.sessions.remove(0);
                }
                self.sessions.push(session);
            }
        }
        Ok(credentials)
    }

    /// Authorises a new request to `realm` with the challenge remembered for it and the next
    /// nonce count, or `None` when no challenge is remembered or its nonce is used up.
    ///
    /// The server may still answer 401 or 407 (its nonce expired, with `stale=TRUE`): then call
    /// [`respond`](Self::respond) with the new challenge.
    pub fn preemptive(&mut self, realm: &str, request: &RequestParts<'_>, login: &Login<'_>, cnonce: &str) -> Option<Credentials> {
        let session = self.sessions.iter_mut().find(|s| s.challenge.realm == realm)?;
        let nc = session.nc.next()?;
        let previous = std::mem::replace(&mut session.nc, nc);
        match session.credentials(request, login, cnonce) {
            Ok(credentials) => Some(credentials),
            Err(_) => {
                // Unreachable: `respond` stored the session only after answering it once, and
                // the answer depends on nothing that changed since. Leave the count unused.
                session.nc = previous;
                None
            }
        }
    }

    /// Forgets the challenge of `realm`, so that no request to it is authorised pre-emptively;
    /// returns whether one was remembered.
    pub fn forget(&mut self, realm: &str) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|s| s.challenge.realm != realm);
        self.sessions.len() != before
    }

    /// Forgets every realm.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    /// The challenge remembered for `realm`.
    pub fn challenge(&self, realm: &str) -> Option<&Challenge> {
        self.session(realm).map(|s| &s.challenge)
    }

    /// The nonce count of the last request authorised for `realm`.
    pub fn nonce_count(&self, realm: &str) -> Option<NonceCount> {
        self.session(realm).map(|s| s.nc)
    }

    fn session(&self, realm: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.challenge.realm == realm)
    }
}

impl Session {
    /// The credentials for one request at the current count.
    fn credentials(&self, request: &RequestParts<'_>, login: &Login<'_>, cnonce: &str) -> Result<Credentials, DigestError> {
        let c = &self.challenge;
        let algorithm = c.algorithm;
        // With -sess, the client nonce must stay the one HA1 was computed with; sending it again
        // also suits servers that recompute HA1 from each request's cnonce.
        let cnonce = if algorithm.is_session() { self.cnonce_prime.as_str() } else { cnonce };
        let protection = self.qop.map(|qop| Protection { qop, nc: self.nc, cnonce });
        let response = ResponseInput {
            algorithm,
            username: login.username,
            realm: &c.realm,
            password: login.password,
            nonce: &c.nonce,
            method: request.method,
            uri: request.uri,
            body: request.body,
            protection,
        }
        .response()?;
        // RFC 7616 §3.4.4: username = H(unq(username) ":" unq(realm)), when the server allows.
        let username = if c.userhash { algorithm.hash_joined(&[login.username.as_bytes(), c.realm.as_bytes()]) } else { login.username.to_owned() };
        Ok(Credentials {
            username,
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
            uri: request.uri.to_owned(),
            response,
            algorithm,
            cnonce: protection.map(|p| p.cnonce.to_owned()),
            opaque: c.opaque.clone(),
            qop: self.qop,
            nc: protection.map(|p| p.nc),
            userhash: c.userhash,
        })
    }
}

/// The qop to answer with: `auth` when offered, `auth-int` only when it is all that is offered
/// (hashing the body costs, and a proxy that rewrites the body would break it), none when the
/// challenge has no qop (RFC 2069 form).
fn choose_qop(challenge: &Challenge) -> Result<Option<Qop>, DigestError> {
    let qop = if challenge.qop.contains(&Qop::Auth) { Some(Qop::Auth) } else { challenge.qop.first().copied() };
    if qop.is_none() && challenge.algorithm.is_session() {
        return Err(DigestError::SessionWithoutQop(challenge.algorithm));
    }
    Ok(qop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last count a nonce allows is `ffffffff`; after it, only a new challenge helps.
    #[test]
    fn exhausted_nonce_count_needs_a_new_challenge() {
        let login = Login { username: "alice", password: "secret" };
        let req = RequestParts { method: "REGISTER", uri: "sip:example.com", body: b"" };
        let challenge = Challenge::new("example.com", "n");
        let mut client = DigestClient::new();
        client.respond(&challenge, &req, &login, "c").unwrap();
        client.sessions[0].nc = NonceCount(u32::MAX - 1);
        let last = client.preemptive("example.com", &req, &login, "c").unwrap();
        assert_eq!(last.to_string().matches("nc=ffffffff").count(), 1);
        assert!(client.preemptive("example.com", &req, &login, "c").is_none());
        assert_eq!(client.respond(&challenge, &req, &login, "c"), Err(DigestError::NonceCountExhausted));
        let fresh = Challenge::new("example.com", "m");
        assert_eq!(client.respond(&fresh, &req, &login, "c").unwrap().nc, Some(NonceCount::FIRST));
    }
}
