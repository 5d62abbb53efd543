//! Digits the caller presses, gathered into one entry for the LLM: ended by `#` or by a pause
//! longer than the inter-digit timeout (Pipecat's 2 s and `#`), never dropped.

use std::time::{Duration, Instant};

/// Digits being gathered.
#[derive(Clone, Debug, Default)]
pub struct Keypad {
    digits: String,
    last: Option<Instant>,
}

impl Keypad {
    /// Adds a digit pressed at `now`; returns the digits when `#` ends them.
    pub fn press(&mut self, now: Instant, digit: char) -> Option<String> {
        self.digits.push(digit);
        self.last = Some(now);
        (digit == '#').then(|| self.take())
    }

    /// Digits waiting for their end.
    pub fn pending(&self) -> bool {
        !self.digits.is_empty()
    }

    /// When the digits end by timeout.
    pub fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.last.filter(|_| self.pending()).map(|t| t + timeout)
    }

    /// The digits, ended by the timeout when it has passed at `now`.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Option<String> {
        (self.deadline(timeout).is_some_and(|d| d <= now)).then(|| self.take())
    }

    /// The digits, ended now.
    pub fn take(&mut self) -> String {
        self.last = None;
        std::mem::take(&mut self.digits)
    }
}

/// How digits read in the conversation: plain words a model understands, and a transcript
/// reader too.
pub fn as_text(digits: &str) -> String {
    format!("[keypad] {digits}")
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn pound_or_pause_ends_the_digits() {
        let t0 = Instant::now();
        let mut k = Keypad::default();
        assert_eq!(k.press(t0, '1'), None);
        assert_eq!(k.press(t0, '2'), None);
        assert_eq!(k.press(t0, '#').as_deref(), Some("12#"));
        assert!(!k.pending());
        k.press(t0, '4');
        let timeout = Duration::from_secs(2);
        assert_eq!(k.expire(t0 + Duration::from_secs(1), timeout), None);
        assert_eq!(k.deadline(timeout), Some(t0 + timeout));
        assert_eq!(k.expire(t0 + timeout, timeout).as_deref(), Some("4"));
    }
}
