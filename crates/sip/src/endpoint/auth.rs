//! Answering digest challenges for an account's requests (REGISTER, INVITE, BYE).
//!
//! Each account keeps a [`DigestClient`] (its nonce counts per realm) and the latest challenge:
//! the request after a challenge answers it; later requests reuse it pre-emptively with the next
//! nonce count, so a BYE to the same proxy is not challenged again.

use super::{AccountId, Endpoint, Event};
use crate::digest::{Challenge, DigestClient, Login, RequestParts};
use crate::message::{HeaderName, Request, Response};

/// A credentials header to add to a request.
pub(crate) struct Credentials {
    /// Authorization or Proxy-Authorization.
    pub(crate) name: HeaderName,
    /// Its value.
    pub(crate) value: String,
    /// Whether it answers a fresh challenge.
    pub(crate) fresh: bool,
}

/// An account's authentication state.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    client: DigestClient,
    /// The challenge to answer next (not yet used), and whether it was a proxy's (407).
    fresh: Option<(Challenge, bool)>,
    /// The realm and kind to reuse pre-emptively.
    last: Option<(String, bool)>,
}

impl Endpoint {
    /// Records the challenge of a 401/407 for the account, and returns it.
    pub(crate) fn take_challenge(&mut self, id: AccountId, response: &Response) -> Result<Challenge, String> {
        let proxy = response.status == 407;
        let name = if proxy { HeaderName::ProxyAuthenticate } else { HeaderName::WwwAuthenticate };
        let values: Vec<&str> = response.headers.get_all(&name).collect();
        if values.is_empty() {
            return Err(format!("{} without a {name} header", response.status));
        }
        // The first challenge we support (RFC 8760: servers list them strongest first).
        let challenge = Challenge::select(values).map_err(|e| e.to_string())?.into_iter().next().ok_or("no usable challenge")?;
        let account = self.accounts.get_mut(&id).ok_or("unknown account")?;
        account.auth.fresh = Some((challenge.clone(), proxy));
        account.auth.last = Some((challenge.realm.clone(), proxy));
        let method = response.headers.cseq().map(|c| c.method.as_str().to_owned()).unwrap_or_default();
        self.events.push_back(Event::Challenged {
            account: id,
            method,
            status: response.status,
            realm: challenge.realm.clone(),
            algorithm: challenge.algorithm.as_str().to_owned(),
            stale: challenge.stale,
        });
        Ok(challenge)
    }

    /// The Authorization (or Proxy-Authorization) header for a request of the account, when it
    /// has been challenged, and whether it answers a fresh challenge (rather than reusing an
    /// older one pre-emptively, which a server may refuse just because the nonce aged).
    pub(crate) fn credentials_for(&mut self, id: AccountId, request: &Request) -> Option<Credentials> {
        let cnonce = self.ids.cnonce();
        let account = self.accounts.get_mut(&id)?;
        let uri = request.uri.to_string();
        let parts = RequestParts { method: request.method.as_str(), uri: &uri, body: &request.body };
        let login = Login { username: &account.config.username, password: &account.config.password };
        let (credentials, proxy, fresh) = match account.auth.fresh.take() {
            Some((challenge, proxy)) => (account.auth.client.respond(&challenge, &parts, &login, &cnonce).ok()?, proxy, true),
            None => {
                let (realm, proxy) = account.auth.last.clone()?;
                (account.auth.client.preemptive(&realm, &parts, &login, &cnonce)?, proxy, false)
            }
        };
        let name = if proxy { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
        Some(Credentials { name, value: credentials.to_string(), fresh })
    }
}
