//! Registration of each account with its registrar (RFC 3261 §10), kept alive:
//! - the REGISTER goes to the account's proxy with the Request-URI of its domain, one Call-ID
//!   per account for its whole life and a CSeq that grows (§10.2);
//! - digest challenges (401, 407) are answered; a second challenge to a request that carried
//!   credentials, without `stale=true`, means the password is wrong: the account reports it and
//!   waits [`EndpointConfig::auth_retry`](super::EndpointConfig) before trying again, so that a
//!   wrong password does not hammer the provider;
//! - 423 Interval Too Brief raises the requested lifetime to the registrar's Min-Expires;
//! - the binding is refreshed before it expires (a minute before, or halfway for short ones);
//! - failures retry with exponential backoff (5 s doubling to 5 min, ±25 % jitter, or the
//!   registrar's Retry-After);
//! - behind NAT without a configured public address, the address the registrar saw
//!   (`received`/`rport` of our Via) replaces the one in our Contact, and the old binding is
//!   removed in the same REGISTER;
//! - keep-alives (a CRLF ping, RFC 5626) hold the NAT binding open between refreshes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{AccountConfig, AccountId, Endpoint, EndpointError, Event, Owner, RegistrationState, Wake};
use crate::framing::PING;
use crate::message::{HeaderName, NameAddr, Response, Transport, Uri};

/// Most challenges answered for one REGISTER before giving up, whatever the server says.
const MAX_AUTH_ROUNDS: u32 = 3;

/// An account and its registration.
pub(crate) struct Account {
    pub(crate) config: AccountConfig,
    pub(crate) state: RegistrationState,
    call_id: String,
    from_tag: String,
    pub(crate) cseq: u32,
    /// The lifetime requested (raised by 423).
    expires: u32,
    /// The REGISTER transaction in flight.
    tx: Option<u64>,
    /// Whether the REGISTER in flight answered a fresh challenge.
    sent_credentials: bool,
    auth_rounds: u32,
    pub(crate) auth: super::auth::AuthState,
    /// When to refresh or retry.
    next: Option<Instant>,
    failures: u32,
    /// The address the registrar sees us at, learned from its responses.
    learned: Option<SocketAddr>,
    /// The Contact currently bound at the registrar.
    bound: Option<NameAddr>,
    /// Whether we are removing the binding (Expires: 0).
    unregistering: bool,
    /// Whether to forget the account once unregistered.
    removing: bool,
}

impl Endpoint {
    /// Adds an account; when it registers, the first REGISTER goes out now.
    pub fn add_account(&mut self, now: Instant, config: AccountConfig) -> AccountId {
        self.add_account_after(now, config, Duration::ZERO)
    }

    /// Adds an account whose first REGISTER goes out after `delay`: a gateway starting with
    /// thousands of phones spreads them, rather than sending every REGISTER in the same
    /// instant (and losing some in socket buffers, to be retransmitted later).
    pub fn add_account_after(&mut self, now: Instant, config: AccountConfig, delay: Duration) -> AccountId {
        let id = AccountId(self.next_id());
        let host = config.aor.host.as_ref().map(ToString::to_string).unwrap_or_default();
        let account = Account {
            expires: config.expires.max(1),
            call_id: self.ids.call_id(&host),
            from_tag: self.ids.tag(),
            cseq: 0,
            state: RegistrationState::Idle,
            tx: None,
            sent_credentials: false,
            auth_rounds: 0,
            auth: super::auth::AuthState::default(),
            next: None,
            failures: 0,
            learned: None,
            bound: None,
            unregistering: false,
            removing: false,
            config,
        };
        let register = account.config.register;
        let keepalive = account.config.keepalive;
        self.accounts.insert(id, account);
        if register && delay.is_zero() {
            self.send_register(now, id);
        } else if register {
            if let Some(account) = self.accounts.get_mut(&id) {
                account.next = Some(now + delay);
            }
            self.schedule(Wake::Registration(id), Some(now + delay));
        }
        if let Some(interval) = keepalive {
            self.schedule(Wake::Keepalive(id), Some(now + interval));
        }
        id
    }

    /// Removes an account: unregisters it first when it is registered.
    pub fn remove_account(&mut self, now: Instant, id: AccountId) -> Result<(), EndpointError> {
        let account = self.accounts.get_mut(&id).ok_or(EndpointError::UnknownAccount(id))?;
        account.removing = true;
        if account.bound.is_some() || matches!(account.state, RegistrationState::Registered { .. }) {
            self.unregister(now, id)
        } else {
            self.accounts.remove(&id);
            Ok(())
        }
    }

    /// Removes an account's binding at its registrar (REGISTER with Expires: 0).
    pub fn unregister(&mut self, now: Instant, id: AccountId) -> Result<(), EndpointError> {
        let account = self.accounts.get_mut(&id).ok_or(EndpointError::UnknownAccount(id))?;
        account.unregistering = true;
        account.next = None;
        if let Some(tx) = account.tx.take() {
            self.drop_tx(tx);
        }
        self.send_register(now, id);
        Ok(())
    }

    /// Unregisters every registered account (at shutdown).
    pub fn unregister_all(&mut self, now: Instant) {
        let ids: Vec<AccountId> = self.accounts.iter().filter(|(_, a)| a.bound.is_some()).map(|(id, _)| *id).collect();
        for id in ids {
            let _ = self.unregister(now, id);
        }
    }

    /// Whether any REGISTER (including an unregistration) is still in flight.
    pub fn registrations_pending(&self) -> bool {
        self.accounts.values().any(|a| a.tx.is_some())
    }

    /// The settings of an account.
    pub fn account(&self, id: AccountId) -> Option<&AccountConfig> {
        self.accounts.get(&id).map(|a| &a.config)
    }

    /// The registration state of an account.
    pub fn registration(&self, id: AccountId) -> Option<&RegistrationState> {
        self.accounts.get(&id).map(|a| &a.state)
    }

    fn set_state(&mut self, id: AccountId, state: RegistrationState) {
        if let Some(a) = self.accounts.get_mut(&id)
            && a.state != state
        {
            a.state = state.clone();
            self.events.push_back(Event::Registration { account: id, state });
        }
    }

    /// The address our Contact names for the account.
    pub(crate) fn contact_address(&self, account: &Account) -> SocketAddr {
        account.learned.unwrap_or_else(|| self.advertised())
    }

    /// Sends the account's REGISTER (or unregistration), answering the last challenge if any.
    pub(crate) fn send_register(&mut self, now: Instant, id: AccountId) {
        let Some(account) = self.accounts.get(&id) else { return };
        let config = account.config.clone();
        let at = self.contact_address(account);
        let contact = self.contact(&config.contact_user, at, &config.transport);
        let stale_binding = account.bound.clone().filter(|b| b.uri != contact.uri);
        let unregistering = account.unregistering;
        let expires = if unregistering { 0 } else { account.expires };
        let (call_id, from_tag) = (account.call_id.clone(), account.from_tag.clone());
        let mut registrar = config.aor.clone();
        registrar.user = None;
        registrar.password = None;
        registrar.params = Default::default();
        registrar.headers = None;
        let mut from = NameAddr::new(config.aor.clone());
        from.display = config.display_name.clone();
        from.params.set("tag", Some(&from_tag));
        let to = NameAddr::new(config.aor.clone());
        let sent_by = self.advertised();
        let via = self.via(&config.transport, sent_by);
        let Some(account) = self.accounts.get_mut(&id) else { return };
        account.cseq += 1;
        let cseq = account.cseq;
        let mut request = self.request(crate::message::Method::Register, registrar.clone(), &via, &from, &to, &call_id, cseq);
        // When our address changed, remove the old binding in the same request.
        let bound_contact = if unregistering { account_bound(&self.accounts, id).unwrap_or_else(|| contact.clone()) } else { contact.clone() };
        request.headers.push(HeaderName::Contact, bound_contact.to_string());
        if let Some(old) = stale_binding.filter(|_| !unregistering) {
            let mut old = old;
            old.params.set("expires", Some("0"));
            request.headers.push(HeaderName::Contact, old.to_string());
        }
        request.headers.push(HeaderName::Expires, expires.to_string());
        request.headers.push(HeaderName::Allow, super::build::ALLOW);
        let credentials = self.credentials_for(id, &request);
        if let Some(c) = &credentials {
            request.headers.push(c.name.clone(), c.value.clone());
        }
        let tx = self.start_client(now, request, config.transport.clone(), config.proxy, Owner::Registration(id));
        if let Some(account) = self.accounts.get_mut(&id) {
            account.tx = Some(tx);
            account.sent_credentials = credentials.is_some_and(|c| c.fresh);
        }
        // "Registering" only for a first attempt: a refresh keeps "Registered", and a retry
        // keeps the failure an operator needs to see until it succeeds.
        if !unregistering && matches!(self.accounts.get(&id).map(|a| &a.state), Some(RegistrationState::Idle | RegistrationState::Unregistered)) {
            self.set_state(id, RegistrationState::Registering);
        }
    }

    pub(crate) fn registration_response(&mut self, now: Instant, id: AccountId, response: &Response) {
        if response.is_provisional() {
            return;
        }
        let Some(account) = self.accounts.get_mut(&id) else { return };
        account.tx = None;
        match response.status {
            200..=299 => self.registered(now, id, response),
            401 | 407 => {
                let rejected_credentials = account.sent_credentials;
                account.auth_rounds += 1;
                let rounds = account.auth_rounds;
                match self.take_challenge(id, response) {
                    Ok(challenge) if rejected_credentials && !challenge.stale => {
                        let reason = format!(
                            "the registrar rejected the credentials of user {:?} (realm {:?}): wrong username or password",
                            self.accounts.get(&id).map(|a| a.config.username.clone()).unwrap_or_default(),
                            challenge.realm
                        );
                        self.registration_failed(now, id, Some(response.status), &reason);
                    }
                    Ok(_) if rounds > MAX_AUTH_ROUNDS => {
                        self.registration_failed(now, id, Some(response.status), "too many authentication challenges");
                    }
                    Ok(_) => self.send_register(now, id),
                    Err(e) => self.registration_failed(now, id, Some(response.status), &format!("cannot answer the challenge: {e}")),
                }
            }
            423 => {
                let min = response.headers.number(&HeaderName::MinExpires);
                match min {
                    Some(min) if min > account.expires => {
                        account.expires = min;
                        self.send_register(now, id);
                    }
                    _ => self.registration_failed(now, id, Some(423), "423 Interval Too Brief without a usable Min-Expires"),
                }
            }
            status => {
                let retry_after = (status == 503).then(|| response.headers.number(&HeaderName::RetryAfter)).flatten();
                let reason = format!("{} {}", status, response.reason);
                self.registration_failed_after(now, id, Some(status), &reason, retry_after.map(|s| Duration::from_secs(u64::from(s))));
            }
        }
    }

    fn registered(&mut self, now: Instant, id: AccountId, response: &Response) {
        let Some(account) = self.accounts.get(&id) else { return };
        let at = self.contact_address(account);
        let contact = self.contact(&account.config.contact_user.clone(), at, &account.config.transport.clone());
        let Some(account) = self.accounts.get_mut(&id) else { return };
        account.failures = 0;
        account.auth_rounds = 0;
        if account.unregistering {
            account.unregistering = false;
            account.bound = None;
            let removing = account.removing;
            self.set_state(id, RegistrationState::Unregistered);
            if removing {
                self.accounts.remove(&id);
            }
            return;
        }
        // The lifetime granted to our contact, else the Expires header, else what we asked.
        let granted = response
            .headers
            .name_addrs(&HeaderName::Contact)
            .unwrap_or_default()
            .iter()
            .find(|c| same_binding(&c.uri, &contact.uri))
            .and_then(|c| c.params.value("expires").and_then(|e| e.parse::<u32>().ok()))
            .or_else(|| response.headers.number(&HeaderName::Expires))
            .unwrap_or(account.expires);
        account.bound = Some(contact.clone());
        self.stats.registrations += 1;
        // Behind NAT: learn the address the registrar saw and register it instead.
        let seen = response.headers.top_via().ok().and_then(|via| {
            let ip: IpAddr = via.received()?.parse().ok()?;
            Some(SocketAddr::new(ip, via.rport().flatten().unwrap_or(self.config.local.port())))
        });
        // Over TCP the registrar sees the connection's ephemeral port, not our listening one:
        // only a different address means NAT (and then the connection's mapping is all that
        // reaches us, kept open by the keep-alives).
        let moved = |seen: SocketAddr| if account.config.transport == Transport::Tcp { seen.ip() != at.ip() } else { seen != at };
        if self.config.public.is_none()
            && let Some(seen) = seen
            && moved(seen)
        {
            if let Some(account) = self.accounts.get_mut(&id) {
                account.learned = Some(seen);
            }
            self.send_register(now, id);
            return;
        }
        let refresh = refresh_after(granted);
        if let Some(account) = self.accounts.get_mut(&id) {
            account.next = Some(now + refresh);
        }
        self.schedule(Wake::Registration(id), Some(now + refresh));
        self.set_state(id, RegistrationState::Registered { expires: Duration::from_secs(u64::from(granted)), contact: contact.uri.to_string() });
    }

    pub(crate) fn registration_failed(&mut self, now: Instant, id: AccountId, status: Option<u16>, reason: &str) {
        self.registration_failed_after(now, id, status, reason, None);
    }

    fn registration_failed_after(&mut self, now: Instant, id: AccountId, status: Option<u16>, reason: &str, after: Option<Duration>) {
        let auth_rejected = matches!(status, Some(401 | 407)) && reason.contains("rejected the credentials");
        let (min, max, auth_retry) = (self.config.retry_min, self.config.retry_max, self.config.auth_retry);
        let jitter = 0.75 + 0.5 * self.ids.unit();
        let Some(account) = self.accounts.get_mut(&id) else { return };
        account.tx = None;
        account.sent_credentials = false;
        account.auth_rounds = 0;
        if account.unregistering {
            // Giving up on unregistering: the binding will expire at the registrar.
            account.unregistering = false;
            account.bound = None;
            let removing = account.removing;
            self.set_state(id, RegistrationState::Unregistered);
            if removing {
                self.accounts.remove(&id);
            }
            return;
        }
        account.failures += 1;
        let backoff = min.saturating_mul(1 << (account.failures - 1).min(16)).min(max);
        let delay = if auth_rejected { auth_retry } else { after.unwrap_or_else(|| backoff.mul_f64(jitter)) };
        account.next = Some(now + delay);
        self.schedule(Wake::Registration(id), Some(now + delay));
        self.set_state(id, RegistrationState::Failed { status, reason: reason.to_owned(), retry_in: delay });
    }

    pub(crate) fn registration_timeout(&mut self, now: Instant, id: AccountId) {
        let Some(account) = self.accounts.get_mut(&id) else { return };
        if account.tx.is_some() || account.next.is_none_or(|at| at > now) {
            return;
        }
        account.next = None;
        self.send_register(now, id);
    }

    pub(crate) fn keepalive(&mut self, now: Instant, id: AccountId) {
        let Some(account) = self.accounts.get(&id) else { return };
        let Some(interval) = account.config.keepalive else { return };
        let (transport, proxy) = (account.config.transport.clone(), account.config.proxy);
        self.send(transport, proxy, PING.to_vec());
        self.schedule(Wake::Keepalive(id), Some(now + interval));
    }
}

fn account_bound(accounts: &std::collections::HashMap<AccountId, Account>, id: AccountId) -> Option<NameAddr> {
    accounts.get(&id).and_then(|a| a.bound.clone())
}

/// Whether a Contact of a REGISTER response is our binding (same user, host and port).
fn same_binding(a: &Uri, b: &Uri) -> bool {
    a.user == b.user && a.host == b.host && a.port.unwrap_or(5060) == b.port.unwrap_or(5060)
}

/// When to refresh a binding granted for `expires` seconds: a minute before it ends, or
/// halfway through for short ones.
fn refresh_after(expires: u32) -> Duration {
    Duration::from_secs(u64::from((expires / 2).max(expires.saturating_sub(60)).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_schedule() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3540));
        assert_eq!(refresh_after(120), Duration::from_secs(60));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(1), Duration::from_secs(1));
    }
}
