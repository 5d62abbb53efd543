//! Hold and resume (RFC 3264 §8.4): our re-offers, and recognising the peer's.

use super::direction::Direction;
use super::model::{Attribute, MediaKind, SessionDescription};

/// A re-offer built from our previous description (offer or answer) with every active stream
/// set to `direction`.
///
/// Everything else stays as it was, as RFC 3264 §8 requires of a new offer in a dialog: the same
/// session id, the same `m=` lines in the same order (rejected ones stay rejected), the same
/// codecs; the version goes up by one. A session-level direction is dropped, since the
/// media-level one now says everything.
pub fn reoffer(previous: &SessionDescription, direction: Direction) -> SessionDescription {
    reoffer_with(previous, |_| direction)
}

/// Puts the call on hold: each active stream stops receiving, so `sendrecv` becomes `sendonly`
/// and `recvonly` becomes `inactive` (RFC 3264 §8.4).
pub fn hold_offer(previous: &SessionDescription) -> SessionDescription {
    reoffer_with(previous, Direction::without_receive)
}

/// Takes the call off hold: every active stream back to `sendrecv`.
pub fn resume_offer(previous: &SessionDescription) -> SessionDescription {
    reoffer(previous, Direction::SendRecv)
}

/// Whether a peer's offer puts us on hold: its first active audio stream says the peer does not
/// want to receive (`sendonly`, `inactive`, or the legacy 0.0.0.0 connection address of RFC 2543,
/// RFC 3264 §8.4). Such an offer must be answered `recvonly` or `inactive`, never `sendrecv`:
/// carriers hang up on that.
pub fn is_hold(offer: &SessionDescription) -> bool {
    offer.media.iter().find(|m| m.kind == MediaKind::Audio && !m.is_rejected()).is_some_and(|m| !offer.direction_of(m).receives())
}

fn reoffer_with(previous: &SessionDescription, direction: impl Fn(Direction) -> Direction) -> SessionDescription {
    let mut sdp = previous.clone();
    // RFC 3264 §8: "incremented by one". 2^64 changes cannot happen within a dialog.
    sdp.origin.session_version = sdp.origin.session_version.wrapping_add(1);
    let declared: Vec<Direction> = sdp.media.iter().map(|m| previous.direction_of(m)).collect();
    sdp.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
    for (m, declared) in sdp.media.iter_mut().zip(declared) {
        if !m.is_rejected() {
            m.set_direction(direction(declared));
        }
    }
    sdp
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::super::codec::Codec;
    use super::super::examples::{self, parsed};
    use super::super::negotiate::{LocalMedia, answer, negotiate_answer, offer};
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 40000, Codec::Pcma, 42)
    }

    #[test]
    fn hold_and_resume_bump_the_version_and_change_only_the_direction() {
        let first = offer(&local());
        let held = hold_offer(&first);
        assert_eq!(held.origin.session_id, first.origin.session_id);
        assert_eq!(held.origin.session_version, first.origin.session_version + 1);
        assert_eq!(held.media[0].direction(), Some(Direction::SendOnly));
        let resumed = resume_offer(&held);
        assert_eq!(resumed.origin.session_version, first.origin.session_version + 2);
        assert_eq!(resumed.media[0].direction(), Some(Direction::SendRecv));
        // Apart from the version, resuming gives back the first offer exactly.
        let mut expected = first.clone();
        expected.origin.session_version += 2;
        assert_eq!(resumed, expected);
        assert_eq!(resumed.to_string().replace("42 3 IN", "42 1 IN"), first.to_string());
    }

    #[test]
    fn hold_of_a_receive_only_stream_is_inactive() {
        let listening = offer(&LocalMedia { direction: Direction::RecvOnly, ..local() });
        assert_eq!(hold_offer(&listening).media[0].direction(), Some(Direction::Inactive));
        let sending = offer(&LocalMedia { direction: Direction::SendOnly, ..local() });
        assert_eq!(hold_offer(&sending).media[0].direction(), Some(Direction::SendOnly));
        assert_eq!(reoffer(&sending, Direction::Inactive).media[0].direction(), Some(Direction::Inactive));
    }

    #[test]
    fn reoffers_keep_rejected_streams_and_drop_session_directions() {
        // Our answer to audio + video has the video rejected; a hold re-offer keeps both m=
        // lines, the video still rejected and without a direction (RFC 3264 §8).
        let mut previous = answer(&parsed(examples::AUDIO_VIDEO), &local()).expect("audio").sdp;
        previous.attributes.push(Attribute::Direction(Direction::SendRecv));
        let held = hold_offer(&previous);
        assert_eq!(held.media.len(), 2);
        assert_eq!(held.media[1], previous.media[1]);
        assert_eq!(held.media[1].direction(), None);
        assert_eq!(held.direction(), None);
        assert_eq!(held.direction_of(&held.media[0]), Direction::SendOnly);
    }

    #[test]
    fn a_session_level_direction_is_honoured_when_holding() {
        let mut previous = offer(&local());
        previous.media[0].attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
        previous.attributes.push(Attribute::Direction(Direction::RecvOnly));
        let held = hold_offer(&previous);
        assert_eq!(held.media[0].direction(), Some(Direction::Inactive));
        assert_eq!(held.direction(), None);
    }

    #[test]
    fn peer_hold_offers_are_recognised() {
        assert!(is_hold(&parsed(examples::SENDONLY_HOLD)), "sendonly");
        assert!(is_hold(&parsed(examples::INACTIVE_HOLD)), "session-level inactive");
        assert!(is_hold(&parsed(examples::LEGACY_HOLD)), "c=0.0.0.0");
        assert!(!is_hold(&parsed(examples::ASTERISK)), "sendrecv");
        assert!(!is_hold(&parsed(examples::RECVONLY)), "recvonly is not a hold");
        assert!(!is_hold(&parsed(examples::FAX)), "no audio");
        let disabled = examples::SENDONLY_HOLD.replace("m=audio 17890", "m=audio 0");
        assert!(!is_hold(&parsed(&disabled)), "disabled audio");
        assert!(is_hold(&hold_offer(&offer(&local()))), "our own hold offer");
    }

    #[test]
    fn a_dialog_through_peer_hold_and_resume() {
        // The peer holds with sendonly and resumes with sendrecv; each of our answers carries the
        // next version and the mirrored direction, so the carrier keeps the call.
        let mut ours = local();
        let mut seen = Vec::new();
        for text in [examples::ASTERISK, examples::SENDONLY_HOLD, examples::LEGACY_HOLD, examples::ASTERISK] {
            let offer = parsed(text);
            let a = answer(&offer, &ours).expect("acceptable");
            assert_eq!(a.negotiated.peer_holds, is_hold(&offer));
            seen.push((a.sdp.origin.session_version, a.sdp.media[0].direction()));
            ours.session_version += 1;
        }
        assert_eq!(seen, vec![(1, Some(Direction::SendRecv)), (2, Some(Direction::RecvOnly)), (3, Some(Direction::RecvOnly)), (4, Some(Direction::SendRecv)),]);
    }

    #[test]
    fn our_hold_answered_recvonly_lets_us_send_only() {
        let held = hold_offer(&offer(&local()));
        let peer = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 50000, Codec::Pcma, 9);
        let peer_answer = answer(&held, &peer).expect("acceptable");
        assert_eq!(peer_answer.sdp.media[0].direction(), Some(Direction::RecvOnly));
        let n = negotiate_answer(&held, &peer_answer.sdp).expect("valid");
        assert_eq!((n.direction, n.peer_holds), (Direction::SendOnly, false));
        let resumed = resume_offer(&held);
        let n = negotiate_answer(&resumed, &answer(&resumed, &peer).expect("acceptable").sdp).expect("valid");
        assert_eq!(n.direction, Direction::SendRecv);
    }
}
