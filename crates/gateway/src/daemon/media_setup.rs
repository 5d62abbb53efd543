//! Media set-up for a call: its port pair, the [`SessionConfig`] of what the SDP negotiated, the
//! handler its phone asks for, the media task the driver spawns, and the SDP exchanges that
//! start or change it once the call is up (the peer's answer to our offer, re-INVITEs).
//!
//! The core does not spawn: [`Core::start_media`] queues a [`MediaStart`] that the driver takes
//! from [`Core::poll_media_start`] after each input and hands to [`media::spawn`](super::media::spawn).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use happ_media::Law;
use happ_media::session::{Direction as MediaDirection, MediaSession, SessionConfig};
use happ_media::units::{NtpTime, Ssrc};
use happ_sip::endpoint::LegId;
use happ_sip::sdp::{self, Codec, Direction as SdpDirection, Negotiated, SessionDescription};
use tracing::{info, warn};

use super::call::CallState;
use super::channels::{self, MediaCommand};
use super::core::Core;
use super::media::{Handler as MediaHandler, Media, MediaSetup, MediaStart};
use super::phones::Phone;
use crate::assistant::driver::CallDriver;
use crate::config::Handler;
use crate::ports::PortPool;

/// A call's RTP and RTCP sockets, bound, not yet registered with the runtime.
pub type Sockets = (std::net::UdpSocket, std::net::UdpSocket);

/// Binds an RTP/RTCP socket pair on `bind` from `pool`: the first free pair both of whose ports
/// the OS gives us.
pub fn bind_pair(pool: &mut PortPool, bind: IpAddr) -> Option<(u16, Sockets)> {
    let mut bound = None;
    let port = pool.take(|port| {
        let rtp = std::net::UdpSocket::bind(SocketAddr::new(bind, port));
        let rtcp = std::net::UdpSocket::bind(SocketAddr::new(bind, port + 1));
        match (rtp, rtcp) {
            (Ok(a), Ok(b)) => {
                bound = Some((a, b));
                true
            }
            _ => false,
        }
    })?;
    Some((port, bound?))
}

/// The media session of what `n` negotiated. `random` seeds the SSRC and first sequence number
/// and timestamp; `wall` is the time of the session's start, for RTCP's NTP timestamps.
#[must_use]
pub fn session_config(n: &Negotiated, random: u64, advertised: IpAddr, inactivity_secs: u64, wall: SystemTime) -> SessionConfig {
    SessionConfig {
        law: law_of(n.codec),
        payload_type: Some(n.payload_type),
        telephone_event: n.telephone_event,
        ptime: n.ptime,
        pull_rate: 8_000,
        push_rate: 8_000,
        ssrc: Ssrc(random as u32),
        first_seq: (random >> 32) as u16,
        first_ts: (random >> 16) as u32,
        cname: format!("happ-gateway@{advertised}"),
        inactivity: (inactivity_secs > 0).then(|| Duration::from_secs(inactivity_secs)),
        wallclock: NtpTime::from_unix(wall.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()),
        ..SessionConfig::default()
    }
}

/// What a call on `phone` does with its audio, when no assistant answers it (an assistant call
/// runs the call bridge instead: see [`Core::start_media`]).
#[must_use]
pub fn handler_for(phone: &Phone) -> MediaHandler {
    match (&phone.handler, &phone.play) {
        (Handler::Echo, _) => MediaHandler::Echo,
        (Handler::Play(_), Some(samples)) => MediaHandler::Play { samples: samples.clone(), position: 0 },
        _ => MediaHandler::Silence,
    }
}

/// The command that brings a running media task to what `n` negotiated (a re-INVITE).
#[must_use]
pub fn update_of(n: &Negotiated) -> MediaCommand {
    MediaCommand::Update {
        rtp: n.rtp,
        rtcp: n.rtcp,
        law: law_of(n.codec),
        payload_type: n.payload_type,
        telephone_event: n.telephone_event,
        direction: direction_of(n.direction),
    }
}

fn law_of(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Ulaw,
        Codec::Pcma => Law::Alaw,
    }
}

fn direction_of(d: SdpDirection) -> MediaDirection {
    match d {
        SdpDirection::SendRecv => MediaDirection::SendRecv,
        SdpDirection::SendOnly => MediaDirection::SendOnly,
        SdpDirection::RecvOnly => MediaDirection::RecvOnly,
        SdpDirection::Inactive => MediaDirection::Inactive,
    }
}

impl Core {
    /// Binds an RTP/RTCP socket pair from the pool.
    pub(super) fn bind_ports(&mut self) -> Option<(u16, Sockets)> {
        self.metrics.rtp_ports_in_use.set((self.ports.in_use() + 1) as i64);
        self.metrics.rtp_ports_capacity.set(self.ports.capacity() as i64);
        bind_pair(&mut self.ports, self.config.rtp.bind)
    }

    /// Prepares the media task of the call on `leg` with what `n` negotiated, for the driver to
    /// spawn (see [`poll_media_start`](Self::poll_media_start)).
    pub(super) fn start_media(&mut self, now: Instant, wall: SystemTime, leg: LegId, n: Negotiated) {
        let config = session_config(&n, self.random(), self.advertised, self.config.rtp.inactivity_secs, wall);
        let engines = self.engines();
        let Some(call) = self.calls.get_mut(&leg) else { return };
        let Some((rtp, rtcp)) = call.sockets.take() else { return };
        let media = match (&call.assistant, engines) {
            (Some(assistant), Some(engines)) => match CallDriver::new(engines, assistant.clone(), config, now) {
                Ok(mut driver) => {
                    driver.bridge().media().set_direction(direction_of(n.direction));
                    Media::Assistant { driver: Box::new(driver), answered: call.state == CallState::Answered }
                }
                Err(e) => {
                    warn!(%leg, error = %e, "cannot start the assistant's media");
                    return;
                }
            },
            _ => {
                let handler = handler_for(&self.phones[call.phone]);
                let mut session = match MediaSession::new(config, now) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(%leg, error = %e, "cannot start media");
                        return;
                    }
                };
                session.set_direction(direction_of(n.direction));
                Media::Plain { session: Box::new(session), handler }
            }
        };
        let (tx, commands) = channels::commands();
        let setup = MediaSetup { leg, rtp, rtcp, remote_rtp: n.rtp, remote_rtcp: n.rtcp, media };
        self.media_starts.push_back(MediaStart { setup, commands, span: call.span.clone() });
        info!(%leg, call = %call.id, codec = n.codec.name(), remote = %n.rtp, ptime = n.ptime.as_millis() as u64, "media started");
        call.media = Some(tx);
        call.negotiated = Some(n);
    }

    /// Tells the running media task of the call on `leg` what a re-INVITE negotiated.
    pub(super) fn update_media(&mut self, leg: LegId, n: &Negotiated) {
        let Some(call) = self.calls.get_mut(&leg) else { return };
        if let Some(tx) = &call.media {
            // An error means the task has ended (its socket failed); the call ends without it.
            let _ = tx.send(update_of(n));
        }
        call.negotiated = Some(n.clone());
    }

    /// Takes the peer's SDP (an answer to our offer, or early media) and starts or updates media.
    pub(super) fn remote_sdp(&mut self, now: Instant, wall: SystemTime, leg: LegId, body: &[u8], final_answer: bool) {
        let Some(call) = self.calls.get(&leg) else { return };
        let Some(offer) = call.offer.clone() else { return };
        let result =
            SessionDescription::parse_bytes(body).map_err(|e| e.to_string()).and_then(|a| sdp::negotiate_answer(&offer, &a).map_err(|e| e.to_string()));
        match result {
            Ok(n) => {
                if self.calls.get(&leg).is_some_and(|c| c.media.is_some()) {
                    self.update_media(leg, &n);
                } else {
                    self.start_media(now, wall, leg, n);
                }
            }
            Err(e) if final_answer => {
                warn!(%leg, error = %e, "unusable SDP answer: hanging up");
                let _ = self.endpoint.hangup(now, leg);
                self.end_call(wall, leg, "failed", Some(488), format!("unusable SDP answer: {e}"));
            }
            Err(e) => warn!(%leg, error = %e, "unusable early-media SDP: ignored"),
        }
    }

    /// Answers a re-INVITE (hold, resume, codec change, refresh) and brings the media along.
    pub(super) fn reinvite(&mut self, now: Instant, wall: SystemTime, leg: LegId, sdp: Option<Vec<u8>>) {
        let Some(call) = self.calls.get_mut(&leg) else {
            let _ = self.endpoint.reject(now, leg, 481, None, &[]);
            return;
        };
        let Some(body) = sdp else {
            // An offer-less re-INVITE: offer what we have (RFC 3264 §8).
            call.local.session_version += 1;
            let offer = sdp::offer(&call.local);
            call.offer = Some(offer.clone());
            let _ = self.endpoint.answer(now, leg, offer.to_string().as_bytes());
            return;
        };
        // Keep the codec in use first, when the new offer still has it.
        if let Some(n) = &call.negotiated {
            call.local.codec = n.codec;
        }
        call.local.session_version += 1;
        let result = SessionDescription::parse_bytes(&body)
            .map_err(|e| (400, e.to_string()))
            .and_then(|o| sdp::answer(&o, &call.local).map_err(|e| (e.sip_status(), e.to_string())));
        match result {
            Ok(a) => {
                let holds = a.negotiated.peer_holds;
                info!(%leg, hold = holds, direction = ?a.negotiated.direction, codec = a.negotiated.codec.name(), "re-INVITE");
                let _ = self.endpoint.answer(now, leg, a.sdp.to_string().as_bytes());
                if call.media.is_some() {
                    self.update_media(leg, &a.negotiated);
                } else {
                    self.start_media(now, wall, leg, a.negotiated);
                }
            }
            Err((status, e)) => {
                call.local.session_version -= 1;
                warn!(%leg, status, error = %e, "re-INVITE refused; the call goes on");
                let _ = self.endpoint.reject(now, leg, status, None, &[]);
            }
        }
    }

    /// A media task to spawn. The driver takes them all after every input it hands the core.
    #[must_use]
    pub fn poll_media_start(&mut self) -> Option<MediaStart> {
        self.media_starts.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use happ_sip::sdp::Codec;

    use super::*;

    fn negotiated(codec: Codec, direction: SdpDirection) -> Negotiated {
        let offer = happ_sip::sdp::SessionDescription::parse_bytes(
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n",
        )
        .expect("valid SDP");
        let mut local = happ_sip::sdp::LocalMedia::new(IpAddr::from([198, 51, 100, 1]), 20_000, codec, 1);
        local.direction = direction;
        happ_sip::sdp::answer(&offer, &local).expect("acceptable").negotiated
    }

    #[test]
    fn the_session_follows_the_negotiation() {
        let n = negotiated(Codec::Pcmu, SdpDirection::SendRecv);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = session_config(&n, 0x1122_3344_5566_7788, IpAddr::from([198, 51, 100, 1]), 30, wall);
        assert_eq!((c.law, c.payload_type, c.telephone_event), (Law::Ulaw, Some(0), Some(101)));
        assert_eq!(c.ptime, n.ptime);
        assert_eq!(c.ssrc, Ssrc(0x5566_7788));
        assert_eq!(c.first_seq, 0x3344);
        assert_eq!(c.cname, "happ-gateway@198.51.100.1");
        assert_eq!(c.inactivity, Some(Duration::from_secs(30)));
        assert_eq!(c.wallclock, NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
        assert_eq!(session_config(&n, 0, IpAddr::from([198, 51, 100, 1]), 0, wall).inactivity, None, "0 turns the timeout off");
    }

    #[test]
    fn a_reinvite_becomes_an_update() {
        let n = negotiated(Codec::Pcma, SdpDirection::SendOnly);
        match update_of(&n) {
            MediaCommand::Update { rtp, law, payload_type, direction, .. } => {
                assert_eq!((rtp.port(), law, payload_type), (4000, Law::Alaw, 8));
                assert_eq!(direction, MediaDirection::SendOnly, "we hold the call");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ports_are_bound_in_pairs() {
        let mut pool = PortPool::new(41_000, 41_099);
        let (port, (rtp, rtcp)) = bind_pair(&mut pool, IpAddr::from([127, 0, 0, 1])).expect("a free pair");
        assert_eq!(port % 2, 0);
        assert_eq!(rtp.local_addr().map(|a| a.port()).ok(), Some(port));
        assert_eq!(rtcp.local_addr().map(|a| a.port()).ok(), Some(port + 1));
        let (next, _) = bind_pair(&mut pool, IpAddr::from([127, 0, 0, 1])).expect("another pair");
        assert_ne!(next, port);
    }
}
