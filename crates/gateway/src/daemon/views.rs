//! What the control API shows of calls and phones, built from the SIP task's state.

use std::time::SystemTime;

use happ_sip::endpoint::RegistrationState;

use super::call::{Call, CallState};
use super::core::Core;
use super::phones::Phone;
use crate::api::{CallView, PhoneView};

/// `call` as the control API shows it; `ended_at` is when it ended, for an ended call.
#[must_use]
pub fn call_view(call: &Call, phone_number: String, ended_at: Option<SystemTime>) -> CallView {
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let state = match (ended_at, call.state) {
        (Some(_), _) => "ended",
        (None, CallState::Answered) => "answered",
        (None, CallState::Ringing) => "ringing",
    };
    CallView {
        id: call.id.clone(),
        direction: call.direction().into(),
        phone: phone_number,
        remote: call.remote.clone(),
        state: state.into(),
        started_at: secs(call.started),
        answered_at: call.answered.map(secs),
        ended_at: ended_at.map(secs),
        codec: call.negotiated.as_ref().map(|n| n.codec.name().to_owned()),
        status: call.status,
        reason: call.reason.clone(),
        sip_call_id: Some(call.sip_call_id.clone()),
        packets_lost: None,
        jitter_ms: None,
        assistant: call.assistant.as_ref().map(|a| a.config.id.clone()),
        transcript: call.transcript.clone(),
    }
}

/// `phone` as the control API shows it: in registration `state` (`registration` its details),
/// from the configuration file (`from_file`) or the platform.
#[must_use]
pub fn phone_view(phone: &Phone, state: &str, registration: Option<&RegistrationState>, from_file: bool) -> PhoneView {
    let mut v = PhoneView {
        phone_number: phone.config.phone_number.clone(),
        sip_login: phone.config.sip_login.clone(),
        telephony_url: phone.config.telephony_url.clone(),
        targets: phone.targets.iter().map(|t| format!("{} ({})", t.addr, t.transport)).collect(),
        state: state.into(),
        expires: None,
        contact: None,
        last_status: None,
        last_error: phone.resolve_error.clone(),
        retry_in: None,
        active_calls: phone.active,
        handler: phone.config.handler.clone(),
        assistant_id: phone.config.assistant_id.clone(),
        source: if from_file { "config" } else { "happ" }.into(),
    };
    match registration {
        Some(RegistrationState::Registered { expires, contact }) => {
            v.expires = Some(expires.as_secs());
            v.contact = Some(contact.clone());
        }
        Some(RegistrationState::Failed { status, reason, retry_in }) => {
            v.last_status = *status;
            v.last_error = Some(reason.clone());
            v.retry_in = Some(retry_in.as_secs());
        }
        _ => {}
    }
    v
}

impl Core {
    /// A call in progress as the control API shows it.
    pub(super) fn view(&self, call: &Call, ended_at: Option<SystemTime>) -> CallView {
        let number = self.phones.get(call.phone).map(|p| p.config.phone_number.clone()).unwrap_or_default();
        call_view(call, number, ended_at)
    }

    /// Calls in progress (newest first), then recently ended ones.
    pub fn calls_view(&self) -> Vec<CallView> {
        let mut out: Vec<CallView> = self.calls.values().map(|c| self.view(c, None)).collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        out.extend(self.recent.iter().cloned());
        out
    }

    /// One call.
    pub fn call_view(&self, id: &str) -> Option<CallView> {
        if let Some(leg) = self.by_id.get(id) {
            return self.calls.get(leg).map(|c| self.view(c, None));
        }
        self.recent.iter().find(|v| v.id == id).cloned()
    }

    /// The phones and their registration.
    pub fn phones_view(&self) -> Vec<PhoneView> {
        self.phones
            .live()
            .map(|(_, p)| {
                let (state, registration) = self.phone_state(p);
                let from_file = self.local_phones.iter().any(|l| l.phone_number == p.config.phone_number);
                phone_view(p, state, registration, from_file)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use happ_sip::sdp::{Codec, LocalMedia};

    use super::*;
    use crate::config::PhoneConfig;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn call(state: CallState) -> Call {
        Call {
            id: "c1-0000abcd".into(),
            phone: 0,
            inbound: true,
            remote: "0442".into(),
            state,
            started: at(100),
            answered: (state == CallState::Answered).then(|| at(103)),
            rtp_port: 20_000,
            local: LocalMedia::new([198, 51, 100, 1].into(), 20_000, Codec::Pcma, 1),
            offer: None,
            negotiated: None,
            sockets: None,
            media: None,
            ring_deadline: None,
            answer_at: None,
            end_deadline: Instant::now(),
            sip_call_id: "abc@192.0.2.9".into(),
            status: None,
            reason: None,
            chat: None,
            span: tracing::Span::none(),
            assistant: None,
            transcript: Vec::new(),
        }
    }

    #[test]
    fn a_call_shows_its_state_and_times_in_unix_seconds() {
        let ringing = call_view(&call(CallState::Ringing), "+15550001".into(), None);
        assert_eq!((ringing.state.as_str(), ringing.direction.as_str(), ringing.phone.as_str()), ("ringing", "inbound", "+15550001"));
        assert_eq!((ringing.started_at, ringing.answered_at, ringing.ended_at), (100, None, None));
        assert_eq!(ringing.sip_call_id.as_deref(), Some("abc@192.0.2.9"));

        let answered = call_view(&call(CallState::Answered), String::new(), None);
        assert_eq!((answered.state.as_str(), answered.answered_at), ("answered", Some(103)));

        let mut ended = call(CallState::Answered);
        ended.status = Some(408);
        ended.reason = Some("no answer".into());
        let v = call_view(&ended, String::new(), Some(at(160)));
        assert_eq!((v.state.as_str(), v.ended_at, v.status, v.reason.as_deref()), ("ended", Some(160), Some(408), Some("no answer")));
    }

    #[test]
    fn a_call_view_keeps_its_json_field_names() {
        let v = serde_json::to_value(call_view(&call(CallState::Ringing), "+15550001".into(), None)).expect("serializes");
        let mut keys: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "answeredAt",
                "assistant",
                "codec",
                "direction",
                "endedAt",
                "id",
                "jitterMs",
                "packetsLost",
                "phone",
                "reason",
                "remote",
                "sipCallId",
                "startedAt",
                "state",
                "status",
                "transcript"
            ]
        );
    }

    fn phone() -> Phone {
        let mut p = Phone::new(PhoneConfig {
            phone_number: "+15550001".into(),
            sip_login: "1001".into(),
            password: Default::default(),
            telephony_url: "192.0.2.1:5060".into(),
            codec: "ulaw".into(),
            assistant_id: Some("a1".into()),
            register: true,
            handler: "echo".into(),
            max_calls: None,
            answer_delay_ms: 0,
            display_name: None,
        })
        .expect("a valid phone");
        p.active = 2;
        p
    }

    #[test]
    fn a_phone_shows_its_registration() {
        let registered = RegistrationState::Registered { expires: Duration::from_secs(300), contact: "<sip:1001@198.51.100.1>".into() };
        let v = phone_view(&phone(), "registered", Some(&registered), true);
        assert_eq!((v.state.as_str(), v.expires, v.contact.as_deref()), ("registered", Some(300), Some("<sip:1001@198.51.100.1>")));
        assert_eq!((v.active_calls, v.handler.as_str(), v.assistant_id.as_deref(), v.source.as_str()), (2, "echo", Some("a1"), "config"));

        let failed = RegistrationState::Failed { status: Some(403), reason: "Forbidden".into(), retry_in: Duration::from_secs(60) };
        let v = phone_view(&phone(), "failed", Some(&failed), false);
        assert_eq!((v.last_status, v.last_error.as_deref(), v.retry_in, v.source.as_str()), (Some(403), Some("Forbidden"), Some(60), "happ"));
        assert_eq!(v.expires, None);
    }
}
