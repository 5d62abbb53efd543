//! The media task of one call: its RTP and RTCP sockets and its [`MediaSession`], driven by
//! the session's own timer, with the call's handler feeding and consuming audio.
//!
//! Symmetric RTP (RFC 4961): packets go to the address of the peer's SDP until RTP arrives, and
//! from then on to where it comes from, so a peer behind NAT that advertised a private address
//! still hears us. The task ends when told to, or tells the SIP task when the call should end
//! (no RTP for the inactivity time, playback finished, a socket failed).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use happ_media::session::{MediaEvent, MediaSession, PacketKind};
use happ_sip::endpoint::LegId;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::channels::{CommandReceiver, MediaCommand, MediaNote, Notes};
use crate::assistant::driver::CallDriver;

/// What the call does with its audio.
pub enum Handler {
    /// Sends the caller's audio back.
    Echo,
    /// Plays these 8 kHz samples, then asks for a hangup.
    Play {
        /// The whole file, shared by the phone's calls.
        samples: std::sync::Arc<[i16]>,
        /// The next sample to send.
        position: usize,
    },
    /// Silence (an assistant call whose assistant cannot be set up).
    Silence,
}

/// What runs a call's media.
pub enum Media {
    /// A session and a handler that feeds and consumes its audio.
    Plain {
        /// The session.
        session: Box<MediaSession>,
        /// The handler.
        handler: Handler,
    },
    /// The call bridge of an assistant call, which owns its session.
    Assistant {
        /// The call's driver.
        driver: Box<CallDriver>,
        /// The call is answered already (inbound calls; outbound ones wait for
        /// [`MediaCommand::Answered`]).
        answered: bool,
    },
}

/// How to start a media task.
pub struct MediaSetup {
    /// The call.
    pub leg: LegId,
    /// Bound RTP socket (blocking std socket: the driver registers it with the runtime).
    pub rtp: std::net::UdpSocket,
    /// Bound RTCP socket.
    pub rtcp: std::net::UdpSocket,
    /// Where RTP goes until the peer's packets say otherwise.
    pub remote_rtp: SocketAddr,
    /// Where RTCP goes.
    pub remote_rtcp: SocketAddr,
    /// The session and what drives it.
    pub media: Media,
}

/// A media task ready to run, as the SIP task hands it to the driver to spawn.
pub struct MediaStart {
    /// Sockets, session and handler.
    pub setup: MediaSetup,
    /// The call's commands.
    pub commands: CommandReceiver,
    /// The call's span, for everything the task logs.
    pub span: tracing::Span,
}

/// Registers the sockets of `start` with the runtime and spawns its task, which sends its notes
/// to `notes`.
pub fn spawn(start: MediaStart, notes: mpsc::Sender<MediaNote>) {
    let MediaStart { setup, commands, span } = start;
    let leg = setup.leg;
    let (Ok(rtp), Ok(rtcp)) = (register(setup.rtp), register(setup.rtcp)) else {
        span.in_scope(|| warn!(%leg, "cannot register RTP sockets with the runtime"));
        return;
    };
    let sockets = Sockets { leg, rtp, rtcp, remote_rtp: setup.remote_rtp, remote_rtcp: setup.remote_rtcp, latched: false, rtcp_latched: false };
    match setup.media {
        Media::Plain { session, handler } => {
            tokio::spawn(tracing::Instrument::instrument(run(leg, sockets, *session, handler, commands, notes), span));
        }
        Media::Assistant { driver, answered } => {
            tokio::spawn(tracing::Instrument::instrument(super::assistant_media::run(leg, sockets, driver, answered, commands, notes), span));
        }
    }
}

fn register(socket: std::net::UdpSocket) -> std::io::Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// A call's sockets and where they send: to the addresses of the peer's SDP until its packets
/// arrive, then to where they come from (symmetric RTP).
pub(super) struct Sockets {
    leg: LegId,
    pub(super) rtp: UdpSocket,
    pub(super) rtcp: UdpSocket,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    latched: bool,
    rtcp_latched: bool,
}

impl Sockets {
    /// A valid RTP packet came from `from`: the first one latches the destination.
    pub(super) fn rtp_from(&mut self, from: SocketAddr) {
        if self.latched {
            return;
        }
        if from != self.remote_rtp {
            info!(leg = %self.leg, from = %from, sdp = %self.remote_rtp, "RTP latched to its source address");
        }
        self.remote_rtp = from;
        if !self.rtcp_latched {
            self.remote_rtcp = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
        }
        self.latched = true;
    }

    /// A valid RTCP packet came from `from`.
    pub(super) fn rtcp_from(&mut self, from: SocketAddr) {
        self.remote_rtcp = from;
        self.rtcp_latched = true;
    }

    /// New addresses from a re-INVITE: used until RTP has latched.
    pub(super) fn update(&mut self, rtp: SocketAddr, rtcp: SocketAddr) {
        if !self.latched {
            self.remote_rtp = rtp;
        }
        if !self.rtcp_latched {
            self.remote_rtcp = rtcp;
        }
    }

    /// Sends a packet of `kind`. A send error (the peer's port closed) is not fatal: RTCP and
    /// the inactivity timer decide when the call is dead.
    pub(super) async fn send(&self, kind: PacketKind, bytes: &[u8]) {
        let (socket, dest) = match kind {
            PacketKind::Rtp => (&self.rtp, self.remote_rtp),
            PacketKind::Rtcp => (&self.rtcp, self.remote_rtcp),
        };
        let _ = socket.send_to(bytes, dest).await;
    }
}

/// Runs a call's media until stopped.
async fn run(leg: LegId, mut sockets: Sockets, mut session: MediaSession, mut handler: Handler, mut commands: CommandReceiver, notes: mpsc::Sender<MediaNote>) {
    let mut notes = Notes::new(notes);
    let mut inbuf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut out = vec![0u8; happ_media::session::MIN_TRANSMIT_BUFFER];
    let mut frame = vec![0i16; session.pull_frame_len()];
    let mut hangup_sent = false;
    loop {
        let deadline = session.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
        tokio::select! {
            r = sockets.rtp.recv_from(&mut inbuf) => match r {
                Ok((n, from)) => {
                    if session.handle_rtp(Instant::now(), &inbuf[..n]).is_ok() {
                        sockets.rtp_from(from);
                    }
                }
                Err(e) => warn!(%leg, error = %e, "RTP receive error"),
            },
            r = sockets.rtcp.recv_from(&mut rtcp_buf) => match r {
                Ok((n, from)) => {
                    if session.handle_rtcp(Instant::now(), &rtcp_buf[..n]).is_ok() {
                        sockets.rtcp_from(from);
                    }
                }
                Err(e) => warn!(%leg, error = %e, "RTCP receive error"),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                session.handle_timeout(Instant::now());
            }
            () = notes.send_pending(), if notes.has_pending() => {}
            command = commands.recv() => match command {
                Some(MediaCommand::Update { rtp: r, rtcp: c, law, payload_type, telephone_event, direction }) => {
                    sockets.update(r, c);
                    session.set_law(law, payload_type);
                    session.set_telephone_event(telephone_event);
                    session.set_direction(direction);
                    debug!(%leg, ?direction, ?law, "media updated");
                }
                Some(MediaCommand::Answered) => {}
                Some(MediaCommand::Dtmf(digit)) => info!(%leg, %digit, "DTMF (SIP INFO)"),
                Some(MediaCommand::Stop) | None => {
                    session.close();
                    flush(&mut session, &sockets, &mut out).await;
                    notes.finish(MediaNote::Done { leg, stats: Box::new(session.stats()) }).await;
                    return;
                }
            },
        }
        flush(&mut session, &sockets, &mut out).await;
        while let Some(pulled) = session.pull_pcm(&mut frame) {
            if let Handler::Echo = handler {
                session.push_pcm(&frame[..pulled.len]);
            }
        }
        if let Handler::Play { samples, position } = &mut handler {
            // Keep about 200 ms queued ahead of the packet clock.
            while *position < samples.len() && session.queued() < Duration::from_millis(200) {
                let end = (*position + 1600).min(samples.len());
                let taken = session.push_pcm(&samples[*position..end]);
                if taken == 0 {
                    break;
                }
                *position += taken;
            }
            if *position >= samples.len() && session.queued().is_zero() && !hangup_sent {
                hangup_sent = true;
                notes.push(MediaNote::Hangup { leg, reason: "playback finished".into() });
            }
        }
        while let Some(event) = session.poll_event() {
            match event {
                MediaEvent::Inactive if !hangup_sent => {
                    hangup_sent = true;
                    notes.push(MediaNote::Hangup { leg, reason: "no RTP (inactivity timeout)".into() });
                }
                other => log_event(leg, other),
            }
        }
    }
}

/// Logs a media event nobody acts on.
pub(super) fn log_event(leg: LegId, event: MediaEvent) {
    match event {
        MediaEvent::Dtmf(d) => info!(%leg, dtmf = ?d, "DTMF"),
        MediaEvent::SsrcChanged { old, new } => info!(%leg, %old, %new, "remote RTP source changed"),
        other => debug!(%leg, event = ?other, "media event"),
    }
}

async fn flush(session: &mut MediaSession, sockets: &Sockets, out: &mut [u8]) {
    while let Some(t) = session.poll_transmit(out) {
        sockets.send(t.kind, &out[..t.len]).await;
    }
}
