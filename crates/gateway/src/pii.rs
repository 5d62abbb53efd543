//! Keeping personal data out of logs: phone numbers and SIP URIs are logged masked.
//!
//! A number keeps its first four and last two characters (`+380*******67`): enough to tell
//! calls apart in a log, not enough to call anyone back. Operators who need full numbers read
//! them from the control API, which is behind its token.

use std::fmt;

/// A phone number or SIP user, displayed masked.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 6 {
            return f.write_str(&"*".repeat(chars.len()));
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        write!(f, "{head}{}{tail}", "*".repeat(chars.len() - 6))
    }
}

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_middle() {
        assert_eq!(Masked("+380501234567").to_string(), "+380*******67");
        assert_eq!(Masked("1001").to_string(), "****");
        assert_eq!(Masked("").to_string(), "");
    }
}
