//! Phones: `GET/POST /api/phones`, `PATCH /api/phones/{phoneId}`.

use serde::{Deserialize, Serialize};

use super::{AssistantId, PhoneId, string_enum};
use crate::secret::Secret;

string_enum! {
    /// The G.711 law a phone's trunk uses.
    Codec {
        /// G.711 A-law (PCMA).
        Alaw = "alaw",
        /// G.711 µ-law (PCMU).
        Ulaw = "ulaw",
    }
}

/// A phone number with its SIP account. Every field but `assistantId` is required. The password
/// is a [`Secret`]: sent and read as a plain string, printed as `<redacted>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phone {
    /// The phone's id.
    pub id: PhoneId,
    /// The number in E.164 form, e.g. `+380501234567`.
    pub phone_number: String,
    /// SIP user name at the provider.
    pub sip_login: String,
    /// SIP password.
    pub password: Secret,
    /// Registrar/proxy, `host[:port][;transport=tcp]`.
    pub telephony_url: String,
    /// The trunk's codec.
    pub codec: Codec,
    /// The assistant that answers this number, if linked.
    #[serde(default)]
    pub assistant_id: Option<AssistantId>,
}

/// Body of `POST /api/phones`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPhone {
    /// The number.
    pub phone_number: String,
    /// SIP user name.
    pub sip_login: String,
    /// SIP password.
    pub password: Secret,
    /// Registrar/proxy.
    pub telephony_url: String,
    /// The trunk's codec.
    pub codec: Codec,
    /// Link to an assistant at once (not in the reference's example; sent only when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<AssistantId>,
}

/// Body of `PATCH /api/phones/{phoneId}`: links the phone to an assistant, or unlinks it with
/// `null` (unlinking by `null` is an assumption; the reference shows only linking).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneUpdate {
    /// The assistant to link, or `None` to unlink (sent as `null`).
    pub assistant_id: Option<AssistantId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted_in_debug_but_sent() {
        let p: Phone = serde_json::from_str(
            r#"{"id":"p1","phoneNumber":"+380501234567","sipLogin":"1001","password":"s3cret","telephonyUrl":"sip.provider.com","codec":"alaw"}"#,
        )
        .expect("valid");
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(p.password.expose(), "s3cret");
        assert_eq!(p.codec, Codec::Alaw);
        assert_eq!(p.assistant_id, None);
        assert_eq!(serde_json::to_value(&p).expect("serializes")["password"], "s3cret");
    }

    #[test]
    fn unlink_sends_null() {
        assert_eq!(serde_json::to_string(&PhoneUpdate { assistant_id: None }).expect("serializes"), r#"{"assistantId":null}"#);
    }
}
