//! The media task of an assistant call: the call's sockets, and its [`CallDriver`] with the
//! sans-IO bridge (media session, voice detection, conversation) and the provider streams.
//!
//! One loop serves the sockets, the bridge's timer, the provider streams and the SIP task's
//! commands; after each, the driver moves what the bridge produced (packets out, frames to the
//! recogniser, actions to the streams) and its notes go to the SIP task. A barge-in is decided
//! and applied inside the bridge in the same turn: the next packet already carries it.

use std::time::{Duration, Instant};

use happ_media::session::MediaEvent;
use happ_sip::endpoint::LegId;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::channels::{CommandReceiver, MediaCommand, MediaNote, Notes};
use super::media::{Sockets, log_event};
use crate::assistant::driver::{CallDriver, CallNote, ProviderEvent};

/// Runs an assistant call's media until stopped.
pub(super) async fn run(
    leg: LegId,
    mut sockets: Sockets,
    mut driver: Box<CallDriver>,
    answered: bool,
    mut commands: CommandReceiver,
    notes: mpsc::Sender<MediaNote>,
) {
    let mut notes = Notes::new(notes);
    let mut inbuf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut out = vec![0u8; happ_media::session::MIN_TRANSMIT_BUFFER];
    let mut hangup_sent = false;
    if answered {
        driver.answered(Instant::now());
    }
    loop {
        let deadline = driver.bridge().poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
        // The provider streams borrow the driver while they are polled: the select gives what
        // woke the task, and it is handled after.
        let wake = tokio::select! {
            r = sockets.rtp.recv_from(&mut inbuf) => Wake::Rtp(r),
            r = sockets.rtcp.recv_from(&mut rtcp_buf) => Wake::Rtcp(r),
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Wake::Timer,
            event = std::future::poll_fn(|cx| driver.poll_provider(cx)) => Wake::Provider(event),
            () = notes.send_pending(), if notes.has_pending() => Wake::NotesSent,
            command = commands.recv() => Wake::Command(command),
        };
        match wake {
            Wake::Rtp(Ok((n, from))) => {
                if driver.bridge().handle_rtp(Instant::now(), &inbuf[..n]).is_ok() {
                    sockets.rtp_from(from);
                }
            }
            Wake::Rtcp(Ok((n, from))) => {
                if driver.bridge().media().handle_rtcp(Instant::now(), &rtcp_buf[..n]).is_ok() {
                    sockets.rtcp_from(from);
                }
            }
            Wake::Rtp(Err(e)) | Wake::Rtcp(Err(e)) => warn!(%leg, error = %e, "RTP/RTCP receive error"),
            Wake::Timer => driver.bridge().handle_timeout(Instant::now()),
            Wake::Provider(event) => driver.handle_provider(Instant::now(), event),
            Wake::NotesSent => {}
            Wake::Command(Some(MediaCommand::Update { rtp: r, rtcp: c, law, payload_type, telephone_event, direction })) => {
                sockets.update(r, c);
                let media = driver.bridge().media();
                media.set_law(law, payload_type);
                media.set_telephone_event(telephone_event);
                media.set_direction(direction);
                debug!(%leg, ?direction, ?law, "media updated");
            }
            Wake::Command(Some(MediaCommand::Answered)) => driver.answered(Instant::now()),
            Wake::Command(Some(MediaCommand::Dtmf(digit))) => driver.dtmf(Instant::now(), digit),
            Wake::Command(Some(MediaCommand::Stop) | None) => {
                // What was heard is committed before the call's end is reported.
                driver.ended(Instant::now());
                forward(leg, &mut driver, &mut notes);
                driver.bridge().media().close();
                flush(&mut driver, &sockets, &mut out).await;
                let stats = driver.bridge().media().stats();
                notes.finish(MediaNote::Done { leg, stats: Box::new(stats) }).await;
                return;
            }
        }
        let now = Instant::now();
        driver.after(now);
        driver.settle(now);
        flush(&mut driver, &sockets, &mut out).await;
        while let Some(event) = driver.bridge().poll_media_event() {
            match event {
                MediaEvent::Inactive if !hangup_sent => {
                    hangup_sent = true;
                    notes.push(MediaNote::Hangup { leg, reason: "no RTP (inactivity timeout)".into() });
                }
                other => log_event(leg, other),
            }
        }
        hangup_sent |= forward(leg, &mut driver, &mut notes);
    }
}

/// What woke the task.
enum Wake {
    Rtp(std::io::Result<(usize, std::net::SocketAddr)>),
    Rtcp(std::io::Result<(usize, std::net::SocketAddr)>),
    Timer,
    Provider(ProviderEvent),
    NotesSent,
    Command(Option<MediaCommand>),
}

/// Hands the driver's notes to the SIP task; returns whether one asked for the hangup.
fn forward(leg: LegId, driver: &mut CallDriver, notes: &mut Notes) -> bool {
    let mut hangup = false;
    while let Some(note) = driver.poll_note() {
        match note {
            CallNote::Hangup(reason) => {
                hangup = true;
                notes.push(MediaNote::Hangup { leg, reason });
            }
            other => notes.push(MediaNote::Call { leg, note: Box::new(other) }),
        }
    }
    hangup
}

async fn flush(driver: &mut CallDriver, sockets: &Sockets, out: &mut [u8]) {
    while let Some(t) = driver.bridge().poll_transmit(out) {
        sockets.send(t.kind, &out[..t.len]).await;
    }
}
