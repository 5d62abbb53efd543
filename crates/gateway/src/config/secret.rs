//! Secrets of the configuration (passwords, tokens): never printed.

use std::fmt;

use serde::Deserialize;

/// A password or token. `Debug` and `Display` print `<redacted>`, so a secret cannot reach a
/// log line by accident; [`expose`](Self::expose) is the one way to read it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it (a digest, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
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
    use super::Secret;

    #[test]
    fn never_printed() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
        assert!(Secret(" ".into()).is_blank() && !s.is_blank());
    }
}
