//! The phones the gateway serves, as they change at run time.
//!
//! Phones come and go without a restart (a configuration reload, or the Happ platform's phone
//! list): each lives in a slot whose index its calls keep, so a phone removed or changed while
//! it has calls stays (retired: no new calls, no registration) until the last of them ends.

use std::collections::HashMap;
use std::sync::Arc;

use happ_sip::endpoint::AccountId;
use happ_sip::sdp::Codec;

use crate::config::{Handler, PhoneConfig, TelephonyUrl};
use crate::dns::Target;

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

fn load_play(path: &std::path::Path) -> Result<Arc<[i16]>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let audio = happ_fixtures::Audio::from_wav(&bytes).and_then(|a| a.resampled(8_000)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(audio.samples.into())
}
