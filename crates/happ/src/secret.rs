//! Secrets that must stay out of logs: SIP passwords, webhook secrets, access tokens.
//!
//! [`Secret`] serializes and deserializes as the plain string it wraps (the API needs the value),
//! but its `Debug` and `Display` print `<redacted>`, so a model or a config printed with `{:?}` or
//! written to a log never shows it. The value is reached only through [`Secret::expose`], which
//! makes every place that reads it easy to find.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A string that never appears in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn serde_is_transparent() {
        let s: Secret = serde_json::from_str("\"hunter2\"").expect("a JSON string");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(serde_json::to_string(&s).expect("serializes"), "\"hunter2\"");
    }
}
