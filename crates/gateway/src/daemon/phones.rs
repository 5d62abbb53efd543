//! The phones the gateway serves, as they change at run time.
//!
//! Phones come and go without a restart (a configuration reload, or the Happ platform's phone
//! list): each lives in a slot whose index its calls keep, so a phone removed or changed while
//! it has calls stays (retired: no new calls, no registration) until the last of them ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use happ_sip::endpoint::{AccountConfig, AccountId, RegistrationState};
use happ_sip::message::Uri;
use happ_sip::sdp::Codec;
use tracing::{info, warn};

use super::core::Core;
use crate::config::{Config, Handler, PhoneConfig, TelephonyUrl};
use crate::dns::Target;
use crate::metrics::StateLabels;
use crate::pii::Masked;
use crate::platform::Catalog;

/// Longest spread of the first registrations at start-up.
const START_SPREAD: Duration = Duration::from_secs(10);

/// What [`Core::apply_phones`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PhoneChanges {
    /// Phones new to the gateway.
    pub added: usize,
    /// Phones whose configuration changed.
    pub changed: usize,
    /// Phones no longer served.
    pub removed: usize,
}

/// A phone at run time.
pub struct Phone {
    /// Its configuration.
    pub config: PhoneConfig,
    /// Its telephonyUrl.
    pub url: TelephonyUrl,
    /// Where it resolved to.
    pub targets: Vec<Target>,
    /// Why resolution failed.
    pub resolve_error: Option<String>,
    /// Its account at the endpoint.
    pub account: Option<AccountId>,
    pub(super) handler: Handler,
    /// The audio of a `play:` handler, read once when the phone is set up (8 kHz).
    pub(super) play: Option<Arc<[i16]>>,
    pub(super) codec: Codec,
    /// Calls in progress.
    pub(super) active: u32,
    /// The state counted in the `phones` gauge.
    pub(super) counted: &'static str,
    /// Removed or replaced: serves its calls in progress, nothing new.
    pub(super) retired: bool,
}

impl Phone {
    /// A phone for `config`, not started; reads its `play:` file.
    pub fn new(config: PhoneConfig) -> Result<Phone, String> {
        let url = TelephonyUrl::parse(&config.telephony_url)?;
        let codec = if config.codec.eq_ignore_ascii_case("ulaw") { Codec::Pcmu } else { Codec::Pcma };
        let handler = Handler::parse(&config.handler)?;
        let play = match &handler {
            Handler::Play(path) => Some(load_play(path)?),
            _ => None,
        };
        Ok(Phone {
            config,
            url,
            targets: Vec::new(),
            resolve_error: None,
            account: None,
            handler,
            play,
            codec,
            active: 0,
            counted: "unresolved",
            retired: false,
        })
    }

    /// Whether a new configuration of the same number needs a new registration (the SIP
    /// identity or where it registers changed), or can be taken as it is.
    pub fn needs_new_account(&self, new: &PhoneConfig) -> bool {
        let old = &self.config;
        old.sip_login != new.sip_login
            || old.password.expose() != new.password.expose()
            || old.telephony_url != new.telephony_url
            || old.register != new.register
            || old.display_name != new.display_name
    }

    /// Takes the parts of `new` that apply to the next calls (assistant, handler, codec, limits).
    pub fn update(&mut self, new: PhoneConfig) -> Result<(), String> {
        let fresh = Phone::new(new)?;
        self.handler = fresh.handler;
        self.play = fresh.play;
        self.codec = fresh.codec;
        self.config = fresh.config;
        Ok(())
    }

    /// Whether `user` (of a Request-URI or To) names this phone.
    pub fn answers_to(&self, user: &str) -> bool {
        let c = &self.config;
        user == c.sip_login || user == c.phone_number || user == c.phone_number.trim_start_matches('+')
    }
}

/// The phones, by slot.
#[derive(Default)]
pub struct Phones {
    slots: Vec<Option<Phone>>,
    by_account: HashMap<AccountId, usize>,
}

impl Phones {
    /// The phone in slot `index`.
    pub fn get(&self, index: usize) -> Option<&Phone> {
        self.slots.get(index).and_then(Option::as_ref)
    }

    /// The phone in slot `index`, to change.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Phone> {
        self.slots.get_mut(index).and_then(Option::as_mut)
    }

    /// Every phone with its slot, retired ones included.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Phone)> {
        self.slots.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
    }

    /// The phones that take calls.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Phone)> {
        self.iter().filter(|(_, p)| !p.retired)
    }

    /// How many phones take calls.
    pub fn len(&self) -> usize {
        self.live().count()
    }

    /// Puts a phone in a free slot.
    pub fn insert(&mut self, phone: Phone) -> usize {
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(phone);
                i
            }
            None => {
                self.slots.push(Some(phone));
                self.slots.len() - 1
            }
        }
    }

    /// Empties slot `index`.
    pub fn remove(&mut self, index: usize) -> Option<Phone> {
        let phone = self.slots.get_mut(index)?.take()?;
        if let Some(account) = phone.account {
            self.by_account.remove(&account);
        }
        Some(phone)
    }

    /// The slot of the phone registered as `account`.
    pub fn by_account(&self, account: AccountId) -> Option<usize> {
        self.by_account.get(&account).copied()
    }

    /// Records that the phone in `index` is `account` at the endpoint.
    pub fn set_account(&mut self, index: usize, account: Option<AccountId>) {
        let Some(phone) = self.get_mut(index) else { return };
        let old = std::mem::replace(&mut phone.account, account);
        if let Some(old) = old {
            self.by_account.remove(&old);
        }
        if let Some(new) = account {
            self.by_account.insert(new, index);
        }
    }

    /// The live phone with this number.
    pub fn by_number(&self, number: &str) -> Option<usize> {
        self.live().find(|(_, p)| p.config.phone_number == number).map(|(i, _)| i)
    }
}

/// The phone in a slot that cannot be empty: one just looked up in this task, or one with a call
/// (a phone's slot is kept until its last call ends).
impl std::ops::Index<usize> for Phones {
    type Output = Phone;
    fn index(&self, index: usize) -> &Phone {
        self.get(index).expect("the slot of a phone just looked up, or with a call, is not empty")
    }
}

impl std::ops::IndexMut<usize> for Phones {
    fn index_mut(&mut self, index: usize) -> &mut Phone {
        self.get_mut(index).expect("the slot of a phone just looked up, or with a call, is not empty")
    }
}

/// The phones served, their registration, and how they change at run time.
impl Core {
    /// Adds every resolved phone's account to the endpoint: registration starts for those
    /// that register, spread over up to [`START_SPREAD`] (1 ms per phone) so that thousands of
    /// phones do not send their REGISTERs in one burst. The others wait for
    /// [`resolved`](Self::resolved).
    pub fn start(&mut self, now: Instant) {
        let spread = START_SPREAD.min(Duration::from_millis(self.phones.len() as u64));
        let indices: Vec<usize> = self.phones.iter().map(|(i, _)| i).collect();
        for index in indices {
            let Some(phone) = self.phones.get(index) else { continue };
            if phone.targets.is_empty() {
                warn!(phone = %Masked(&phone.config.phone_number), error = ?phone.resolve_error, "phone not started yet: its telephonyUrl did not resolve");
            } else {
                let delay = spread.mul_f64((self.random() >> 11) as f64 / (1u64 << 53) as f64);
                self.start_phone(now, index, delay);
            }
        }
    }

    fn start_phone(&mut self, now: Instant, index: usize, delay: Duration) {
        let keepalive = (self.config.sip.keepalive_secs > 0).then(|| Duration::from_secs(self.config.sip.keepalive_secs));
        let expires = self.config.sip.registration_expires;
        let Some(phone) = self.phones.get(index) else { return };
        let Some(target) = phone.targets.first() else { return };
        let aor = Uri::sip(Some(&phone.config.sip_login), phone.url.host.clone(), phone.url.port);
        let account = AccountConfig {
            aor,
            display_name: phone.config.display_name.clone(),
            proxy: target.addr,
            transport: target.transport.clone(),
            username: phone.config.sip_login.clone(),
            password: phone.config.password.expose().to_owned(),
            register: phone.config.register,
            expires,
            keepalive: keepalive.filter(|_| phone.config.register),
            contact_user: phone.config.sip_login.clone(),
        };
        info!(phone = %Masked(&phone.config.phone_number), registrar = %target.addr, transport = %target.transport, register = phone.config.register, "phone started");
        let id = self.endpoint.add_account_after(now, account, delay);
        self.phones.set_account(index, Some(id));
        self.recount(index);
    }

    /// The phones whose telephonyUrl has not resolved yet, to look up again.
    pub fn unresolved(&self) -> Vec<(usize, TelephonyUrl)> {
        self.phones.live().filter(|(_, p)| p.account.is_none()).map(|(i, p)| (i, p.url.clone())).collect()
    }

    /// The outcome of looking phone `index` up again: started when it resolved.
    pub fn resolved(&mut self, now: Instant, index: usize, url: &TelephonyUrl, result: Result<Vec<Target>, String>) {
        let Some(phone) = self.phones.get_mut(index) else { return };
        // The slot may have been given to another phone while the lookup ran.
        if phone.account.is_some() || phone.retired || phone.url != *url {
            return;
        }
        match result {
            Ok(targets) if !targets.is_empty() => {
                self.allowed.extend(targets.iter().map(|t| t.addr.ip()));
                phone.targets = targets;
                phone.resolve_error = None;
                self.start_phone(now, index, Duration::ZERO);
            }
            Ok(_) => phone.resolve_error = Some("no address".into()),
            Err(e) => {
                warn!(phone = %Masked(&phone.config.phone_number), error = %e, "telephonyUrl still does not resolve");
                phone.resolve_error = Some(e);
            }
        }
    }

    /// Serves `configs` from now on (a reloaded configuration, or the Happ platform's phones):
    /// new phones are set up (and looked up in DNS by the driver: see [`unresolved`](Self::unresolved)),
    /// removed ones unregister, phones whose SIP identity or registrar changed register anew, and
    /// other changes (assistant, handler, codec, limits) apply to the next calls. Calls in
    /// progress keep the phone they started with. A phone that cannot be set up (an unreadable
    /// `play:` file) changes nothing at all.
    pub fn apply_phones(&mut self, now: Instant, configs: Vec<PhoneConfig>) -> Result<PhoneChanges, String> {
        enum Plan {
            Keep,
            Update(usize, PhoneConfig),
            Replace(usize, Phone),
            Add(Phone),
        }
        let mut plans = Vec::new();
        let mut seen = HashSet::new();
        for config in configs {
            if !seen.insert(config.phone_number.clone()) {
                return Err(format!("phone {} is listed twice", Masked(&config.phone_number)));
            }
            let number = config.phone_number.clone();
            let plan = match self.phones.by_number(&config.phone_number) {
                Some(i) if self.phones[i].config == config => Plan::Keep,
                Some(i) if self.phones[i].needs_new_account(&config) => Plan::Replace(i, Phone::new(config)?),
                Some(i) => {
                    Phone::new(config.clone())?;
                    Plan::Update(i, config)
                }
                None => Plan::Add(Phone::new(config).map_err(|e| format!("phone {}: {e}", Masked(&number)))?),
            };
            plans.push(plan);
        }
        let mut changes = PhoneChanges::default();
        let gone: Vec<usize> = self.phones.live().filter(|(_, p)| !seen.contains(&p.config.phone_number)).map(|(i, _)| i).collect();
        for index in gone {
            info!(phone = %Masked(&self.phones[index].config.phone_number), "phone removed");
            self.retire(now, index);
            changes.removed += 1;
        }
        for plan in plans {
            match plan {
                Plan::Keep => {}
                Plan::Update(index, config) => {
                    info!(phone = %Masked(&config.phone_number), assistant = ?config.assistant_id, handler = %config.handler, "phone changed; next calls use the change");
                    self.phones[index].update(config)?;
                    changes.changed += 1;
                }
                Plan::Replace(index, phone) => {
                    info!(phone = %Masked(&phone.config.phone_number), "phone's SIP account changed; registering anew");
                    self.retire(now, index);
                    self.add_phone(phone);
                    changes.changed += 1;
                }
                Plan::Add(phone) => {
                    info!(phone = %Masked(&phone.config.phone_number), "phone added");
                    self.add_phone(phone);
                    changes.added += 1;
                }
            }
        }
        self.allowed = self.phones.iter().flat_map(|(_, p)| p.targets.iter().map(|t| t.addr.ip())).collect();
        Ok(changes)
    }

    /// Takes a reloaded configuration: its phones (see [`apply_phones`](Self::apply_phones)) and
    /// assistants. The other sections (addresses, ports, limits) need a restart; what differs
    /// there is returned, for the log.
    pub fn reload(&mut self, now: Instant, config: Config) -> Result<(PhoneChanges, Vec<&'static str>), String> {
        self.local_phones = config.phones.clone();
        let changes = self.apply_phones(now, self.merged_phones())?;
        let old = &self.config;
        let ignored: Vec<&'static str> = [
            ("sip", old.sip != config.sip),
            ("rtp", old.rtp != config.rtp),
            ("control", old.control != config.control),
            ("calls", old.calls != config.calls),
            ("log", old.log != config.log),
            ("happ", old.happ != config.happ),
            ("speech", old.speech != config.speech),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        let phones = config.phones.clone();
        self.config.phones = phones;
        self.config.assistants = config.assistants;
        Ok((changes, ignored))
    }

    /// Takes the platform's catalog: its phones are served (with the file's), its assistants
    /// answer them.
    pub fn set_platform(&mut self, now: Instant, catalog: Catalog) -> Result<PhoneChanges, String> {
        let previous = self.platform.replace(catalog);
        match self.apply_phones(now, self.merged_phones()) {
            Ok(changes) => Ok(changes),
            Err(e) => {
                self.platform = previous;
                Err(e)
            }
        }
    }

    /// The platform's phones, then the file's (a number in both is the file's).
    fn merged_phones(&self) -> Vec<PhoneConfig> {
        crate::platform::merge_phones(self.platform.as_ref().map_or(&[], |c| &c.phones), &self.local_phones)
    }

    /// A new phone, counted as unresolved until the driver has looked it up.
    fn add_phone(&mut self, phone: Phone) {
        let index = self.phones.insert(phone);
        self.metrics.registrations.get_or_create(&StateLabels { state: "unresolved".into() }).inc();
        self.recount(index);
    }

    /// Takes phone `index` out of service: no new calls, its account unregistered and removed;
    /// its slot is freed when its last call ends.
    fn retire(&mut self, now: Instant, index: usize) {
        let Some(phone) = self.phones.get_mut(index) else { return };
        phone.retired = true;
        let account = phone.account;
        if let Some(account) = account {
            let _ = self.endpoint.remove_account(now, account);
        }
        self.phones.set_account(index, None);
        self.recount(index);
        if self.phones.get(index).is_some_and(|p| p.active == 0) {
            self.retire_done(index);
        }
    }

    /// Frees the slot of a retired phone whose calls are over.
    pub(super) fn retire_done(&mut self, index: usize) {
        if self.phones.remove(index).is_some() {
            self.metrics.registrations.get_or_create(&StateLabels { state: "retired".into() }).dec();
        }
    }

    /// Moves phone `index` in the `phones` gauge from the state it was counted in to its
    /// current one: O(1) per registration event, whatever the number of phones.
    pub(super) fn recount(&mut self, index: usize) {
        let Some(phone) = self.phones.get(index) else { return };
        let now = if phone.retired { "retired" } else { self.phone_state(phone).0 };
        let Some(phone) = self.phones.get_mut(index) else { return };
        let before = std::mem::replace(&mut phone.counted, now);
        if before != now {
            self.metrics.registrations.get_or_create(&StateLabels { state: before.into() }).dec();
            self.metrics.registrations.get_or_create(&StateLabels { state: now.into() }).inc();
        }
    }

    pub(super) fn phone_state<'a>(&'a self, phone: &Phone) -> (&'static str, Option<&'a RegistrationState>) {
        let Some(account) = phone.account else { return ("unresolved", None) };
        if !phone.config.register {
            return ("trunk", None);
        }
        let state = self.endpoint.registration(account);
        let name = match state {
            Some(RegistrationState::Registered { .. }) => "registered",
            Some(RegistrationState::Failed { .. }) => "failed",
            Some(RegistrationState::Unregistered) => "unregistered",
            _ => "registering",
        };
        (name, state)
    }
}

fn load_play(path: &std::path::Path) -> Result<Arc<[i16]>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let audio = happ_fixtures::Audio::from_wav(&bytes).and_then(|a| a.resampled(8_000)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(audio.samples.into())
}
