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
    /// Silence (while the assistant bridge does not exist).
    Silence,
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
    /// The session.
    pub session: MediaSession,
    /// The handler.
    pub handler: Handler,
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
    let MediaSetup { remote_rtp, remote_rtcp, session, handler, .. } = setup;
    tokio::spawn(tracing::Instrument::instrument(run(leg, Sockets { rtp, rtcp, remote_rtp, remote_rtcp }, session, handler, commands, notes), span));
}

fn register(socket: std::net::UdpSocket) -> std::io::Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// A call's sockets and where they send.
struct Sockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
}

/// Runs a call's media until stopped.
async fn run(leg: LegId, sockets: Sockets, mut session: MediaSession, mut handler: Handler, mut commands: CommandReceiver, notes: mpsc::Sender<MediaNote>) {
    let Sockets { rtp, rtcp, mut remote_rtp, mut remote_rtcp } = sockets;
    let mut notes = Notes::new(notes);
    let mut latched = false;
    let mut rtcp_latched = false;
    let mut inbuf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut out = vec![0u8; happ_media::session::MIN_TRANSMIT_BUFFER];
    let mut frame = vec![0i16; session.pull_frame_len()];
    let mut hangup_sent = false;
    loop {
        let deadline = session.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
        tokio::select! {
            r = rtp.recv_from(&mut inbuf) => match r {
                Ok((n, from)) => {
                    let now = Instant::now();
                    if session.handle_rtp(now, &inbuf[..n]).is_ok() && !latched {
                        // Symmetric RTP: answer where the media really comes from.
                        if from != remote_rtp {
                            info!(%leg, from = %from, sdp = %remote_rtp, "RTP latched to its source address");
                        }
                        remote_rtp = from;
                        if !rtcp_latched {
                            remote_rtcp = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
                        }
                        latched = true;
                    }
                }
                Err(e) => warn!(%leg, error = %e, "RTP receive error"),
            },
            r = rtcp.recv_from(&mut rtcp_buf) => match r {
                Ok((n, from)) => {
                    if session.handle_rtcp(Instant::now(), &rtcp_buf[..n]).is_ok() {
                        remote_rtcp = from;
                        rtcp_latched = true;
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
                    if !latched {
                        remote_rtp = r;
                    }
                    if !rtcp_latched {
                        remote_rtcp = c;
                    }
                    session.set_law(law, payload_type);
                    session.set_telephone_event(telephone_event);
                    session.set_direction(direction);
                    debug!(%leg, ?direction, ?law, "media updated");
                }
                Some(MediaCommand::Stop) | None => {
                    session.close();
                    flush(&mut session, &rtp, &rtcp, remote_rtp, remote_rtcp, &mut out).await;
                    notes.finish(MediaNote::Done { leg, stats: Box::new(session.stats()) }).await;
                    return;
                }
            },
        }
        flush(&mut session, &rtp, &rtcp, remote_rtp, remote_rtcp, &mut out).await;
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
                MediaEvent::Dtmf(d) => info!(%leg, dtmf = ?d, "DTMF"),
                MediaEvent::SsrcChanged { old, new } => info!(%leg, %old, %new, "remote RTP source changed"),
                other => debug!(%leg, event = ?other, "media event"),
            }
        }
    }
}

async fn flush(session: &mut MediaSession, rtp: &UdpSocket, rtcp: &UdpSocket, remote_rtp: SocketAddr, remote_rtcp: SocketAddr, out: &mut [u8]) {
    while let Some(t) = session.poll_transmit(out) {
        let (socket, dest) = match t.kind {
            PacketKind::Rtp => (rtp, remote_rtp),
            PacketKind::Rtcp => (rtcp, remote_rtcp),
        };
        // A send error (the peer's port closed) is not fatal: RTCP and the inactivity timer
        // decide when the call is dead.
        let _ = socket.send_to(&out[..t.len], dest).await;
    }
}
