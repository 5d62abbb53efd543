//! Media direction attributes (RFC 8866 §6.7) and how an answer mirrors them (RFC 3264 §6.1).

use std::fmt;

/// The direction of a media stream, always seen from the side that wrote the attribute:
/// `SendOnly` in a peer's offer means the *peer* only sends.
///
/// Absent any attribute a stream is `sendrecv` (RFC 3264 §5.1), hence the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`: send and receive.
    #[default]
    SendRecv,
    /// `a=sendonly`: send only (the usual way to put a call on hold, RFC 3264 §8.4).
    SendOnly,
    /// `a=recvonly`: receive only.
    RecvOnly,
    /// `a=inactive`: neither.
    Inactive,
}

impl Direction {
    /// All four, in a fixed order (for tests and tables).
    pub const ALL: [Direction; 4] = [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive];

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, if it is one of the four (names are case-sensitive,
    /// RFC 8866 §5.13).
    pub fn from_name(name: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The direction with these capabilities.
    pub fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction an answer carries for an offer with this direction (RFC 3264 §6.1):
    /// `sendonly` → `recvonly`, `recvonly` → `sendonly`, `inactive` → `inactive`,
    /// `sendrecv` → `sendrecv`.
    ///
    /// It is also how an offerer reads an answer: the peer's view, mirrored, is ours.
    #[must_use]
    pub fn answer(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both allow: the answerer may narrow the mirrored direction further (RFC 3264 §6.1,
    /// "the answerer MAY ... make the stream recvonly/sendonly/inactive"), never widen it.
    #[must_use]
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(self.sends() && other.sends(), self.receives() && other.receives())
    }

    /// This direction without receiving: the meaning of a legacy hold, whose `c=` address
    /// 0.0.0.0 says the peer wants no media (RFC 3264 §8.4, after RFC 2543).
    #[must_use]
    pub fn without_receive(self) -> Direction {
        Direction::from_flags(self.sends(), false)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_mapping_follows_rfc3264_section_6_1() {
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.answer(), Direction::SendOnly);
        assert_eq!(Direction::Inactive.answer(), Direction::Inactive);
        assert_eq!(Direction::SendRecv.answer(), Direction::SendRecv);
        for d in Direction::ALL {
            assert_eq!(d.answer().answer(), d, "mirroring twice is the identity");
        }
    }

    #[test]
    fn names_and_flags_round_trip() {
        for d in Direction::ALL {
            assert_eq!(Direction::from_name(d.as_str()), Some(d));
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
            assert_eq!(d.to_string(), d.as_str());
        }
        assert_eq!(Direction::from_name("SENDRECV"), None);
        assert_eq!(Direction::from_name("sendrecv "), None);
        assert_eq!(Direction::default(), Direction::SendRecv);
    }

    #[test]
    fn intersect_and_legacy_hold() {
        assert_eq!(Direction::SendRecv.intersect(Direction::SendOnly), Direction::SendOnly);
        assert_eq!(Direction::RecvOnly.intersect(Direction::SendOnly), Direction::Inactive);
        assert_eq!(Direction::SendRecv.intersect(Direction::SendRecv), Direction::SendRecv);
        assert_eq!(Direction::SendRecv.without_receive(), Direction::SendOnly);
        assert_eq!(Direction::RecvOnly.without_receive(), Direction::Inactive);
        assert_eq!(Direction::SendOnly.without_receive(), Direction::SendOnly);
    }
}
