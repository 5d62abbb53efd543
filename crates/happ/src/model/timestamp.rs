//! RFC 3339 timestamps as the API sends them (`2025-05-26T14:02:11.123Z`).
//!
//! [`Timestamp`] keeps the string it was given, so a value read from the API is written back
//! unchanged, and parses it on demand into milliseconds since the Unix epoch for ordering. The
//! parser accepts what RFC 3339 allows (`T` or `t` or a space, fractional seconds of any length,
//! `Z` or a `±HH:MM` offset); leap seconds are folded into the next second.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A timestamp in RFC 3339 form, kept as sent.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// Wraps a string; it is not checked until [`Timestamp::unix_millis`] is called.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The UTC timestamp `millis` milliseconds after the Unix epoch, formatted like JavaScript's
    /// `Date.prototype.toISOString` (`YYYY-MM-DDTHH:MM:SS.mmmZ`). Years outside 0..=9999 are
    /// clamped to that range.
    pub fn from_unix_millis(millis: i64) -> Self {
        let min = days_from_civil(0, 1, 1) * MILLIS_PER_DAY;
        let max = (days_from_civil(9999, 12, 31) + 1) * MILLIS_PER_DAY - 1;
        let millis = millis.clamp(min, max);
        let days = millis.div_euclid(MILLIS_PER_DAY);
        let rem = millis.rem_euclid(MILLIS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
        let (min, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1000, rem % 1000);
        Self(format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z"))
    }

    /// The string as received or formatted.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Milliseconds since the Unix epoch, or `None` when the string is not RFC 3339.
    pub fn unix_millis(&self) -> Option<i64> {
        parse_rfc3339(&self.0)
    }

    /// Orders two timestamps by the instant they denote; a timestamp that does not parse sorts
    /// before every one that does, and two that do not parse compare as strings.
    pub fn cmp_instant(&self, other: &Self) -> Ordering {
        match (self.unix_millis(), other.unix_millis()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => self.0.cmp(&other.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(Timestamp::from_unix_millis(0).as_str(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_unix_millis(1_748_268_131_123).as_str(), "2025-05-26T14:02:11.123Z");
        assert_eq!(Timestamp::from_unix_millis(951_782_400_000).as_str(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Timestamp::from_unix_millis(-1).as_str(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for ms in [0, 1, 999, 86_399_999, 951_782_400_000, 1_748_268_131_123, -86_400_001, 4_102_444_800_000] {
            assert_eq!(Timestamp::from_unix_millis(ms).unix_millis(), Some(ms), "{ms}");
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = |s: &str| Timestamp::new(s).unix_millis();
        assert_eq!(t("2025-05-26T14:02:11Z"), Some(1_748_268_131_000));
        assert_eq!(t("2025-05-26T17:02:11.1+03:00"), Some(1_748_268_131_100));
        assert_eq!(t("2025-05-26t11:32:11.123456-02:30"), Some(1_748_268_131_123));
        assert_eq!(t("2025-05-26 14:02:11.123z"), Some(1_748_268_131_123));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2025",
            "2025-05-26",
            "2025-05-26T14:02:11",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-05-26T24:00:00Z",
            "2025-05-26T14:02:11.Z",
            "2025-05-26T14:02:11+0300",
            "2025-05-26T14:02:11Zjunk",
            "２025-05-26T14:02:11Z",
        ] {
            assert_eq!(Timestamp::new(s).unix_millis(), None, "{s:?}");
        }
    }

    #[test]
    fn orders_by_instant() {
        let a = Timestamp::new("2025-05-26T17:02:11+03:00");
        let b = Timestamp::new("2025-05-26T14:02:11.500Z");
        assert_eq!(a.cmp_instant(&b), Ordering::Less);
        assert_eq!(Timestamp::new("junk").cmp_instant(&a), Ordering::Less);
    }
}
