//! The demo's caller: a SIP user agent with its own RTP, driving the project's sans-IO
//! [`Endpoint`] and [`MediaSession`] from one tokio task, speaking its lines and listening for
//! the gateway's answers ([`Turns`]).
//!
//! One loop owns the SIP socket, the RTP and RTCP sockets, the endpoint, the media session and
//! the turn-taking; after every input it drains what each has to send and to report. The
//! caller's audio is queued about 200 ms ahead of the packet clock, so it goes out paced in real
//! time; what is sent and received is decoded at the socket for the recording and for voice
//! detection, so latencies are the wire's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use happ_media::Law;
use happ_media::rtp::RtpPacket;
use happ_media::session::{MediaSession, PacketKind, SessionConfig};
use happ_sip::endpoint::{AccountConfig, Ender, Endpoint, EndpointConfig, Event, OutboundCall};
use happ_sip::message::{Host, Transport, Uri};
use happ_sip::sdp::{self, Codec, LocalMedia, SessionDescription};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::recording::{Channel, FRAME, Recording};
use super::turns::{Action, Note, TurnConfig, Turns};

/// How long the gateway may take to answer the INVITE.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the BYE may take to be answered.
const BYE_TIMEOUT: Duration = Duration::from_secs(3);

/// Audio kept queued ahead of the packet clock.
const AHEAD: Duration = Duration::from_millis(200);

/// A 20 ms frame, as a duration.
const FRAME_TIME: Duration = Duration::from_millis(20);

/// One line of the script as speech.
pub struct Line {
    /// 8 kHz mono.
    pub pcm: Vec<i16>,
}

/// What the caller needs.
pub struct Setup {
    /// The caller's SIP socket (its port is the phone's `telephonyUrl`).
    pub sip: UdpSocket,
    /// RTP socket (even port) and RTCP socket (the next port).
    pub rtp: UdpSocket,
    /// RTCP socket.
    pub rtcp: UdpSocket,
    /// The gateway's SIP address.
    pub gateway: SocketAddr,
    /// The number called.
    pub number: String,
    /// The script.
    pub lines: Vec<Line>,
    /// Whether the gateway greets first.
    pub expect_greeting: bool,
    /// Seed of SIP identifiers and RTP randoms.
    pub seed: u64,
}

/// Progress of the call, reported as it happens. Times are since the answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// 180 or 183.
    Ringing,
    /// 200 OK.
    Answered {
        /// The SIP Call-ID.
        sip_call_id: String,
        /// The codec negotiated.
        codec: &'static str,
    },
    /// The caller starts line `index`.
    Line {
        /// Which line.
        index: usize,
        /// When.
        at: Duration,
    },
    /// The gateway answered.
    Answer {
        /// The line answered; `None` for the greeting.
        after: Option<usize>,
        /// When its voice started.
        at: Duration,
        /// How long it spoke.
        duration: Duration,
        /// From the caller's last voiced packet to the gateway's first.
        latency: Option<Duration>,
    },
    /// No answer came.
    NoAnswer {
        /// The line unanswered; `None` for the greeting.
        after: Option<usize>,
    },
    /// The gateway hung up.
    GatewayHungUp {
        /// Why, as the endpoint tells it.
        reason: String,
    },
    /// The caller hung up and the BYE was answered (or timed out).
    HungUp,
}

/// The end of the call.
pub struct Outcome {
    /// Both directions of audio.
    pub recording: Recording,
    /// Lines spoken.
    pub lines_spoken: usize,
    /// Whether the gateway ended the call before the script did.
    pub cut_short: bool,
}

/// The call's media once answered.
struct Media {
    session: MediaSession,
    law: Law,
    rtp_to: SocketAddr,
    rtcp_to: SocketAddr,
    epoch: Instant,
    first_ts: u32,
    /// The received stream's anchor: its SSRC, first timestamp and that packet's offset.
    anchor: Option<(u32, u32, usize)>,
    turns: Turns,
    /// The line being spoken and how many of its samples were queued.
    speaking: Option<(usize, usize)>,
}

enum Phase {
    Calling { deadline: Instant },
    Talking(Box<Media>),
    Ending { deadline: Instant, media: Option<Box<Media>> },
}

/// Places the call, holds the conversation, hangs up. Errors name what went wrong (a SIP status,
/// no answer, a socket failure).
pub async fn call(setup: Setup, progress: mpsc::UnboundedSender<Progress>) -> Result<Outcome, String> {
    let Setup { sip, rtp, rtcp, gateway, number, lines, expect_greeting, seed } = setup;
    let local = sip.local_addr().map_err(|e| format!("caller SIP socket: {e}"))?;
    let rtp_local = rtp.local_addr().map_err(|e| format!("caller RTP socket: {e}"))?;
    let host = |addr: SocketAddr| match addr.ip() {
        std::net::IpAddr::V4(ip) => Host::V4(ip),
        std::net::IpAddr::V6(ip) => Host::V6(ip),
    };
    let now = Instant::now();
    let mut endpoint = Endpoint::new(EndpointConfig {
        local,
        user_agent: concat!("happ-gateway-demo-caller/", env!("CARGO_PKG_VERSION")).into(),
        seed,
        ..EndpointConfig::default()
    });
    let account = endpoint.add_account(
        now,
        AccountConfig {
            aor: Uri::sip(Some("demo-caller"), host(local), Some(local.port())),
            display_name: Some("Demo caller".into()),
            proxy: gateway,
            transport: Transport::Udp,
            username: "demo-caller".into(),
            password: String::new(),
            register: false,
            expires: 300,
            keepalive: None,
            contact_user: "demo-caller".into(),
        },
    );
    let mut media_offer = LocalMedia::new(rtp_local.ip(), rtp_local.port(), Codec::Pcma, seed >> 1);
    media_offer.comfort_noise = false;
    let offer = sdp::offer(&media_offer);
    let target = Uri::sip(Some(&number), host(gateway), Some(gateway.port()));
    let leg = endpoint
        .invite(now, OutboundCall { account, target, sdp: offer.to_string().into_bytes(), headers: vec![] })
        .map_err(|e| format!("cannot place the call: {e}"))?;

    let mut phase = Phase::Calling { deadline: now + ANSWER_TIMEOUT };
    let mut recording = Recording::new();
    let mut lines_spoken = 0;
    let mut cut_short = false;
    let mut sip_buf = vec![0u8; 65_536];
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut out = vec![0u8; happ_media::session::MIN_TRANSMIT_BUFFER];
    let mut pulled = vec![0i16; FRAME];
    let mut decoded = vec![0i16; 2048];
    loop {
        // SIP: send what the endpoint has, and act on its events.
        while let Some(t) = endpoint.poll_transmit() {
            sip.send_to(&t.bytes, t.dest).await.map_err(|e| format!("caller SIP send to {}: {e}", t.dest))?;
        }
        while let Some(event) = endpoint.poll_event() {
            let now = Instant::now();
            match event {
                Event::CallProgress { leg: l, .. } if l == leg => {
                    let _ = progress.send(Progress::Ringing);
                }
                Event::CallAnswered { leg: l, sdp } if l == leg => {
                    let answer = sdp.as_deref().ok_or("the gateway answered without SDP")?;
                    let negotiated = SessionDescription::parse_bytes(answer)
                        .map_err(|e| e.to_string())
                        .and_then(|a| sdp::negotiate_answer(&offer, &a).map_err(|e| e.to_string()))
                        .map_err(|e| format!("unusable SDP answer from the gateway: {e}"));
                    let negotiated = match negotiated {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = endpoint.hangup(now, leg);
                            return Err(e);
                        }
                    };
                    // The gateway's own media settings for what was negotiated, under the caller's name.
                    let config = SessionConfig {
                        cname: format!("demo-caller@{}", rtp_local.ip()),
                        ..crate::daemon::media_setup::session_config(&negotiated, seed, rtp_local.ip(), 0, std::time::SystemTime::now())
                    };
                    let (first_ts, law) = (config.first_ts, config.law);
                    let session = MediaSession::new(config, now).map_err(|e| format!("cannot start the caller's media: {e}"))?;
                    let sip_call_id = endpoint.leg_call_id(leg).unwrap_or_default().to_owned();
                    let _ = progress.send(Progress::Answered { sip_call_id, codec: negotiated.codec.name() });
                    phase = Phase::Talking(Box::new(Media {
                        session,
                        law,
                        rtp_to: negotiated.rtp,
                        rtcp_to: negotiated.rtcp,
                        epoch: now,
                        first_ts,
                        anchor: None,
                        turns: Turns::new(TurnConfig::default(), lines.len(), expect_greeting, now),
                        speaking: None,
                    }));
                }
                Event::CallFailed { leg: l, status, reason } if l == leg => {
                    return Err(format!("the gateway refused the call: SIP {status} {reason}"));
                }
                Event::CallEnded { leg: l, reason, by } if l == leg => match std::mem::replace(&mut phase, Phase::Calling { deadline: now }) {
                    Phase::Talking(mut media) => {
                        media.turns.finish(now);
                        report(&mut media, &progress, &mut lines_spoken);
                        cut_short = lines_spoken < lines.len() || media.speaking.is_some();
                        let _ = progress.send(Progress::GatewayHungUp { reason });
                        stop_media(&mut media, &rtp, &rtcp, &mut out).await;
                        return Ok(Outcome { recording, lines_spoken, cut_short });
                    }
                    Phase::Ending { media, .. } => {
                        if by == Ender::Remote {
                            let _ = progress.send(Progress::GatewayHungUp { reason });
                        }
                        let _ = progress.send(Progress::HungUp);
                        if let Some(mut media) = media {
                            stop_media(&mut media, &rtp, &rtcp, &mut out).await;
                        }
                        return Ok(Outcome { recording, lines_spoken, cut_short });
                    }
                    Phase::Calling { .. } => return Err(format!("the call ended before it was answered: {reason}")),
                },
                _ => {}
            }
        }

        // Media: send what is due, record it, feed the turn-taking, queue the next audio.
        if let Phase::Talking(media) | Phase::Ending { media: Some(media), .. } = &mut phase {
            let now = Instant::now();
            while let Some(t) = media.session.poll_transmit(&mut out) {
                let (socket, dest) = match t.kind {
                    PacketKind::Rtp => (&rtp, media.rtp_to),
                    PacketKind::Rtcp => (&rtcp, media.rtcp_to),
                };
                // A send error (the gateway's port closed) is not fatal: its BYE follows.
                let _ = socket.send_to(&out[..t.len], dest).await;
                if t.kind == PacketKind::Rtp
                    && let Ok(packet) = RtpPacket::parse(&out[..t.len])
                    && packet.payload_type() == media.session.config().payload_type.unwrap_or(media.law.payload_type())
                {
                    let n = media.law.decode(packet.payload(), &mut decoded);
                    let offset = packet.timestamp().wrapping_sub(media.first_ts) as usize;
                    recording.put(Channel::Caller, offset, &decoded[..n]);
                    media.turns.handle_sent(now, &decoded[..n]);
                }
            }
            // The session's playout is not needed (the wire is recorded), but keeps its buffer
            // moving.
            while media.session.pull_pcm(&mut pulled).is_some() {}
            if let Some((line, queued)) = &mut media.speaking {
                let pcm = &lines[*line].pcm;
                while *queued < pcm.len() && media.session.queued() < AHEAD {
                    let end = (*queued + 1600).min(pcm.len());
                    let taken = media.session.push_pcm(&pcm[*queued..end]);
                    if taken == 0 {
                        break;
                    }
                    *queued += taken;
                }
                if *queued >= pcm.len() && media.session.queued().is_zero() {
                    media.speaking = None;
                    media.turns.line_sent(now);
                }
            }
            if let Phase::Talking(media) = &mut phase {
                media.turns.handle_timeout(now);
                if report(media, &progress, &mut lines_spoken) {
                    let _ = endpoint.hangup(now, leg);
                    let Phase::Talking(media) = std::mem::replace(&mut phase, Phase::Calling { deadline: now }) else { unreachable!("matched above") };
                    phase = Phase::Ending { deadline: now + BYE_TIMEOUT, media: Some(media) };
                    continue;
                }
            }
        }

        // Wait for the next input or deadline.
        let now = Instant::now();
        let mut wake = endpoint.poll_timeout().unwrap_or(now + Duration::from_secs(1));
        match &phase {
            Phase::Calling { deadline } => wake = wake.min(*deadline),
            Phase::Talking(m) => {
                wake = wake.min(m.session.poll_timeout().unwrap_or(now + FRAME_TIME));
                if let Some(t) = m.turns.poll_timeout() {
                    wake = wake.min(t);
                }
            }
            Phase::Ending { deadline, media } => {
                wake = wake.min(*deadline);
                if let Some(m) = media {
                    wake = wake.min(m.session.poll_timeout().unwrap_or(now + FRAME_TIME));
                }
            }
        }
        tokio::select! {
            // A receive error (an ICMP error for an earlier send) concerns no datagram: the
            // SIP timers and the turn timeouts decide whether the call is dead.
            Ok((n, from)) = sip.recv_from(&mut sip_buf) => endpoint.handle_message(Instant::now(), Transport::Udp, from, &sip_buf[..n]),
            Ok((n, _)) = rtp.recv_from(&mut rtp_buf) => {
                if let Phase::Talking(media) | Phase::Ending { media: Some(media), .. } = &mut phase {
                    received(media, &rtp_buf[..n], &mut recording, &mut decoded);
                }
            }
            Ok((n, _)) = rtcp.recv_from(&mut rtcp_buf) => {
                if let Phase::Talking(media) | Phase::Ending { media: Some(media), .. } = &mut phase {
                    let _ = media.session.handle_rtcp(Instant::now(), &rtcp_buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                endpoint.handle_timeout(now);
                match &mut phase {
                    Phase::Calling { deadline } if now >= *deadline => {
                        let _ = endpoint.hangup(now, leg);
                        // Let the CANCEL go out.
                        while let Some(t) = endpoint.poll_transmit() {
                            let _ = sip.send_to(&t.bytes, t.dest).await;
                        }
                        return Err(format!("the gateway did not answer the call within {} s", ANSWER_TIMEOUT.as_secs()));
                    }
                    Phase::Ending { deadline, media } if now >= *deadline => {
                        if let Some(media) = media {
                            stop_media(media, &rtp, &rtcp, &mut out).await;
                        }
                        let _ = progress.send(Progress::HungUp);
                        return Ok(Outcome { recording, lines_spoken, cut_short });
                    }
                    Phase::Talking(media) | Phase::Ending { media: Some(media), .. } => media.session.handle_timeout(now),
                    _ => {}
                }
            }
        }
    }
}

/// A datagram from the gateway's RTP: into the session, the recording and the turn-taking.
fn received(media: &mut Media, datagram: &[u8], recording: &mut Recording, decoded: &mut [i16]) {
    let now = Instant::now();
    if media.session.handle_rtp(now, datagram).is_err() {
        return;
    }
    let Ok(packet) = RtpPacket::parse(datagram) else { return };
    let law = match packet.payload_type() {
        0 => Law::Ulaw,
        8 => Law::Alaw,
        pt if Some(pt) == media.session.config().payload_type => media.law,
        _ => return,
    };
    let n = law.decode(packet.payload(), decoded);
    let (ssrc, ts) = (packet.ssrc().0, packet.timestamp());
    let (_, ts0, offset0) = match media.anchor {
        Some(anchor) if anchor.0 == ssrc => anchor,
        _ => {
            // A new stream: placed at its arrival, rounded to whole frames.
            let since = now.saturating_duration_since(media.epoch);
            let anchor = (ssrc, ts, (since.as_micros() as usize + 10_000) / 20_000 * FRAME);
            media.anchor = Some(anchor);
            anchor
        }
    };
    // A timestamp before the anchor (reordering) is a small negative difference.
    let delta = ts.wrapping_sub(ts0) as i32;
    if let Some(offset) = offset0.checked_add_signed(delta as isize) {
        recording.put(Channel::Gateway, offset, &decoded[..n]);
    }
    for chunk in decoded[..n].chunks(FRAME) {
        media.turns.handle_received(now, chunk);
    }
}

/// Forwards the turn-taking's notes and actions; returns whether it is time to hang up.
fn report(media: &mut Media, progress: &mpsc::UnboundedSender<Progress>, lines_spoken: &mut usize) -> bool {
    let mut hangup = false;
    while let Some(action) = media.turns.poll_action() {
        match action {
            Action::Speak(line) => media.speaking = Some((line, 0)),
            Action::Hangup => hangup = true,
        }
    }
    let since = |t: Instant| t.saturating_duration_since(media.epoch);
    while let Some(note) = media.turns.poll_note() {
        let p = match note {
            Note::Line(index, at) => {
                *lines_spoken = index + 1;
                Progress::Line { index, at: since(at) }
            }
            Note::Answer(a) => Progress::Answer { after: a.after, at: since(a.start), duration: a.end.saturating_duration_since(a.start), latency: a.latency },
            Note::NoAnswer { after } => Progress::NoAnswer { after },
        };
        let _ = progress.send(p);
    }
    hangup
}

/// Ends the media: an RTCP BYE, sent at once.
async fn stop_media(media: &mut Media, rtp: &UdpSocket, rtcp: &UdpSocket, out: &mut [u8]) {
    media.session.close();
    while let Some(t) = media.session.poll_transmit(out) {
        let (socket, dest) = match t.kind {
            PacketKind::Rtp => (rtp, media.rtp_to),
            PacketKind::Rtcp => (rtcp, media.rtcp_to),
        };
        let _ = socket.send_to(&out[..t.len], dest).await;
    }
}

/// Binds an RTP socket on an even port of `ip` and an RTCP socket on the next one.
pub async fn bind_rtp_pair(ip: std::net::IpAddr, seed: u64) -> Result<(UdpSocket, UdpSocket), String> {
    let mut x = seed | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 40_000 + 2 * (x % 10_000) as u16;
        if let Ok(a) = UdpSocket::bind((ip, port)).await
            && let Ok(b) = UdpSocket::bind((ip, port + 1)).await
        {
            return Ok((a, b));
        }
    }
    Err(format!("no free RTP port pair on {ip}"))
}
