//! Typed models of the Happ REST API.
//!
//! Field names follow the API reference exactly (camelCase on the wire). Reading is tolerant where
//! the reference is silent or the platform may grow: unknown fields are ignored (the assistant keeps
//! them in [`Assistant::extra`]), enums of strings keep values they do not know in an `Other`
//! variant, and optional fields accept both a missing key and `null`. Fields without which an
//! object is useless (`id`, and the few named in each type's doc) are required, so a response
//! lacking them is reported as invalid instead of being half-read.
//!
//! Request bodies are separate types (`New*`, `*Update`): they carry only what a client may send,
//! and optional fields left `None` are not sent at all.

mod assistant;
mod chat;
mod envelope;
mod knowledge;
mod message;
mod phone;
mod timestamp;
mod tool;

pub use assistant::{Assistant, AssistantUpdate, NewAssistant};
pub use chat::{AiDisableReason, Chat, ChatUpdate, NewChat};
pub use envelope::{DataEnvelope, ErrorBody, ErrorEnvelope, PageEnvelope};
pub use knowledge::{KnowledgeEntry, KnowledgeType, NewKnowledge};
pub use message::{Message, NewMessage, Role};
pub use phone::{Codec, NewPhone, Phone, PhoneUpdate};
pub use timestamp::Timestamp;
pub use tool::{HttpMethod, NewTool, ParamType, Tool, ToolParam, ToolType};

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Declares a string newtype used as an identifier, transparent on the wire.
macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier as the API spells it.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }
    )*};
}

id_type! {
    /// The id of an assistant (a UUID on the real platform).
    AssistantId,
    /// The id of a chat.
    ChatId,
    /// The id of a message.
    MessageId,
    /// The id of a knowledge-base entry.
    KnowledgeId,
    /// The id of a phone.
    PhoneId,
    /// The id of a tool.
    ToolId,
}

/// Declares an enum of API strings that keeps values it does not know in `Other(String)`, so a
/// value added to the platform later does not make whole responses unreadable.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Debug)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value this client does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The string the API uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use string_enum;

/// Reads a value whose key may be missing or `null` as the type's default (used with
/// `#[serde(default, deserialize_with = "null_as_default")]`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Objects that carry an id, so that listings read page by page can drop duplicates.
pub trait Identified {
    /// The id as a string.
    fn id_str(&self) -> &str;
}

macro_rules! identified {
    ($($ty:ty),*) => {$(
        impl Identified for $ty {
            fn id_str(&self) -> &str {
                self.id.as_str()
            }
        }
    )*};
}
identified!(Assistant, Chat, Message, KnowledgeEntry, Phone, Tool);

#[cfg(test)]
mod tests {
    use super::*;

    string_enum! {
        /// A test enum.
        Colour { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn string_enum_round_trips_and_keeps_unknown_values() {
        let v: Vec<Colour> = serde_json::from_str(r#"["red","dark_blue","green"]"#).expect("strings");
        assert_eq!(v, vec![Colour::Red, Colour::DarkBlue, Colour::Other("green".into())]);
        assert_eq!(serde_json::to_string(&v).expect("serializes"), r#"["red","dark_blue","green"]"#);
        assert!(serde_json::from_str::<Colour>("3").is_err());
    }

    #[test]
    fn ids_are_transparent() {
        let id: ChatId = serde_json::from_str("\"c-1\"").expect("a string");
        assert_eq!(id.as_str(), "c-1");
        assert_eq!(format!("{id:?} {id}"), "\"c-1\" c-1");
    }
}
