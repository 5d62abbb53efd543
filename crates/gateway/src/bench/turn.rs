//! `happ-gateway bench turn`: the gateway's own share of voice-to-voice latency, measured on the
//! RTP streams of real calls, and its CPU per conversational call-second.
//!
//! Each call is a pair of UDP socket pairs on 127.0.0.1. On the gateway side, the real media
//! task of an assistant call ([`media::spawn`] → `assistant_media::run`) with a
//! [`CallDriver`] whose recogniser, LLM and synthesiser answer at once ([`super::instant`]). On
//! the caller side, a task with its own [`MediaSession`] speaks a short phrase of real speech,
//! stays silent, and times on the packets it receives the first voiced packet of the answer;
//! then it waits for the answer to end, pauses, and speaks again, for as long as the level
//! lasts. No SIP: a turn involves no signalling once the call is up, so the media tasks start
//! as an answered call's do. Calls start evenly over the first second, and each caller's packet
//! clock is offset from its gateway's by a part of a packet time, as two machines' clocks fall.
//!
//! Per turn, `gateway = (first voiced packet of the answer received) − (last voiced packet of
//! the phrase sent) − (the end-of-turn delay)`: what the caller waits beyond the silence the
//! assistant's settings ask for (`min_endpointing_delay`), with providers that take no time.
//! It holds the jitter buffer, the voice detector's hold after the last voice, the timer and
//! packet clock alignment, the bridge and driver work, the scheduling of the tasks, and the
//! loopback network (microseconds).
//!
//! CPU: the gateway's tasks run on one runtime (as many worker threads as cores, as the daemon
//! runs), the callers on another with one worker thread; the gateway's CPU is that of its
//! runtime's threads over the level's steady part (all calls up), from `/proc` ([`super::cpu`]),
//! divided by calls × seconds. On loopback a send also delivers the datagram to the receiving
//! socket in the sender's thread, so each side pays the kernel's receive path of what it sends:
//! about what a NIC's transmit path would cost it on a real network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use happ_media::Law;
use happ_media::rtp::RtpPacket;
use happ_media::session::{MIN_TRANSMIT_BUFFER, MediaSession, PacketKind, SessionConfig};
use happ_media::units::{NtpTime, Ssrc};
use happ_sip::endpoint::LegId;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

use super::cpu;
use super::instant;
use crate::assistant::driver::{CallDriver, CallNote};
use crate::assistant::{Assistant, Engines};
use crate::config::AssistantConfig;
use crate::daemon::channels::{self, MediaCommand, MediaNote};
use crate::daemon::media::{self, Media, MediaSetup, MediaStart};

/// The concurrent calls of each level.
pub const LEVELS: [usize; 3] = [1, 100, 500];

/// Default seconds of each level's steady part.
pub const DEFAULT_SECONDS: u64 = 20;

/// Calls start evenly over this time, so that their packet clocks are not aligned.
const SPREAD: Duration = Duration::from_secs(1);

/// The caller's silence before its first phrase.
const SETTLE: Duration = Duration::from_millis(300);

/// The caller's silence after an answer before its next phrase.
const PAUSE: Duration = Duration::from_millis(400);

/// Gateway silence that ends an answer.
const ANSWER_END: Duration = Duration::from_millis(300);

/// Without an answer this long after the phrase, the turn is counted as missed.
const NO_ANSWER: Duration = Duration::from_secs(5);

/// The caller's audio kept queued ahead of its packet clock.
const AHEAD: Duration = Duration::from_millis(200);

/// Mean square above which a packet is voice (-40 dBFS): the phrase is cut after its last such
/// frame, the answer's tone is far louder, silence is zero.
const VOICED_MEAN_SQUARE: i64 = 328 * 328;

/// Samples in a 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// The figures of a run.
#[derive(Clone, Debug, Serialize)]
pub struct TurnReport {
    /// Seconds of each level's steady part.
    pub seconds: u64,
    /// CPU cores of the machine (the gateway's runtime has as many worker threads).
    pub cores: usize,
    /// The end-of-turn delay subtracted from each turn.
    pub endpointing_ms: u64,
    /// The caller's phrase.
    pub utterance_ms: u64,
    /// The answer's audio.
    pub answer_ms: u64,
    /// One per level.
    pub levels: Vec<LevelReport>,
    /// Whether the targets are met.
    pub targets: Targets,
}

/// The figures of one level.
#[derive(Clone, Debug, Serialize)]
pub struct LevelReport {
    /// Concurrent calls.
    pub calls: usize,
    /// Turns answered.
    pub turns: usize,
    /// Turns not answered within 5 s.
    pub missed: usize,
    /// Calls that got at least one answer.
    pub calls_answered: usize,
    /// The gateway's share of the turn latency, ms: percentiles and maximum.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Maximum.
    pub max_ms: Option<f64>,
    /// CPU of the gateway's runtime threads per conversational call-second, ms.
    pub cpu_ms_per_call_second: f64,
    /// CPU of the caller side's runtime thread per call-second, ms (not the gateway's).
    pub caller_cpu_ms_per_call_second: f64,
    /// CPU of the whole process per call-second, ms.
    pub process_cpu_ms_per_call_second: f64,
    /// The same turns as the gateway logs them (`TurnLatency::first_packet` less the delay):
    /// from its own voice detector's last voiced frame, so without the jitter buffer and the
    /// detector's hold. Median, ms.
    pub after_detection_p50_ms: Option<f64>,
    /// Its 99th percentile.
    pub after_detection_p99_ms: Option<f64>,
    /// The gateway's jitter buffer target delay at the end of the calls, median, ms.
    pub jitter_buffer_ms: Option<f64>,
    /// The callers' packets that reached the gateway too late for their playout.
    pub late_packets: u64,
    /// Packet send times the gateway's media tasks woke too late for.
    pub send_ticks_skipped: u64,
}

/// The targets of the issue.
#[derive(Clone, Debug, Serialize)]
pub struct Targets {
    /// p50 ≤ 20 ms and p99 ≤ 40 ms at 100 calls.
    pub latency_at_100: bool,
    /// The same bounds at 500 calls (flat up to 500).
    pub flat_to_500: bool,
    /// ≤ 1 ms of gateway CPU per call-second at every level of 100 calls or more.
    pub cpu: bool,
}

/// Median bound at 100 calls, ms.
pub const TARGET_P50_MS: f64 = 20.0;
/// 99th percentile bound at 100 calls, ms.
pub const TARGET_P99_MS: f64 = 40.0;
/// CPU bound per conversational call-second, ms.
pub const TARGET_CPU_MS: f64 = 1.0;

/// Runs the levels of [`LEVELS`], `seconds` of steady calls each.
pub fn run(seconds: u64) -> Result<TurnReport, String> {
    let max = LEVELS.iter().copied().max().unwrap_or(1);
    check_open_files(max)?;
    let bench = Bench::new()?;
    let mut levels = Vec::new();
    for calls in LEVELS {
        levels.push(bench.level(calls, Duration::from_secs(seconds))?);
    }
    let within = |l: Option<&LevelReport>| {
        l.is_some_and(|l| l.p50_ms.is_some_and(|p| p <= TARGET_P50_MS) && l.p99_ms.is_some_and(|p| p <= TARGET_P99_MS) && l.missed == 0)
    };
    let targets = Targets {
        latency_at_100: within(levels.iter().find(|l| l.calls == 100)),
        flat_to_500: within(levels.iter().find(|l| l.calls == 500)),
        cpu: levels.iter().filter(|l| l.calls >= 100).all(|l| l.cpu_ms_per_call_second <= TARGET_CPU_MS),
    };
    Ok(TurnReport {
        seconds,
        cores: bench.cores,
        endpointing_ms: bench.endpointing.as_millis() as u64,
        utterance_ms: (bench.utterance.len() / 8) as u64,
        answer_ms: (instant::ANSWER.chars().filter(|c| !c.is_whitespace()).count() * instant::MS_PER_CHAR) as u64,
        levels,
        targets,
    })
}

/// The file descriptors a level of `calls` needs (four sockets a call) must be allowed.
fn check_open_files(calls: usize) -> Result<(), String> {
    let need = 4 * calls as u64 + 128;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)).and_then(|v| v.parse::<u64>().ok());
    match soft {
        Some(soft) if soft < need => Err(format!(
            "{calls} calls need about {need} open files (four UDP sockets a call) but the soft limit is {soft}: raise it first, e.g. `ulimit -n {need}`"
        )),
        _ => Ok(()),
    }
}

/// What every level shares: the runtimes, the providers, the assistant and the phrase.
pub(crate) struct Bench {
    gateway: Runtime,
    callers: Runtime,
    cores: usize,
    engines: Arc<Engines>,
    assistant: Arc<Assistant>,
    endpointing: Duration,
    utterance: Arc<[i16]>,
}

/// Thread names of the two runtimes.
const GATEWAY_THREADS: &str = "turn-gateway";
const CALLER_THREADS: &str = "turn-caller";

impl Bench {
    pub(crate) fn new() -> Result<Bench, String> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let gateway = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name(GATEWAY_THREADS)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gateway's runtime: {e}"))?;
        let callers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(CALLER_THREADS)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the callers' runtime: {e}"))?;
        let (stt, llm, tts) = instant::providers();
        let engines = Arc::new(Engines { stt: vec![stt], tts: vec![tts], apology: Arc::from(Vec::new()) });
        let config = AssistantConfig {
            id: "bench".into(),
            name: "Turn bench".into(),
            prompt_text: "You answer callers of a shop about their orders.".into(),
            language: "en".into(),
            ..AssistantConfig::default()
        };
        let assistant = Assistant::with_llms(&config, vec![(llm, "instant".into())], Duration::from_secs(3600));
        let endpointing = assistant.turns.min_endpointing_delay;
        Ok(Bench { gateway, callers, cores, engines, assistant: Arc::new(assistant), endpointing, utterance: utterance().into() })
    }

    /// Runs `calls` calls for `seconds` after they are all up.
    pub(crate) fn level(&self, calls: usize, seconds: Duration) -> Result<LevelReport, String> {
        let t0 = Instant::now() + Duration::from_millis(200);
        let steady = t0 + SPREAD;
        let end = steady + seconds;
        let start_of = |i: usize| t0 + SPREAD.mul_f64(i as f64 / calls as f64);

        let mut gateway_sockets = Vec::with_capacity(calls);
        for _ in 0..calls {
            let bind = || std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a gateway RTP socket: {e}"));
            gateway_sockets.push((bind()?, bind()?));
        }
        let caller_sockets = self.callers.block_on(async {
            let mut out = Vec::with_capacity(calls);
            for i in 0..calls {
                out.push(crate::demo::caller::bind_rtp_pair([127, 0, 0, 1].into(), 0x9E37_79B9_7F4A_7C15 ^ i as u64).await?);
            }
            Ok::<_, String>(out)
        })?;

        // The callers.
        let mut callers = Vec::with_capacity(calls);
        let mut gateway_calls = Vec::with_capacity(calls);
        for (i, ((g_rtp, g_rtcp), (c_rtp, c_rtcp))) in gateway_sockets.into_iter().zip(caller_sockets).enumerate() {
            let local = |s: &std::net::UdpSocket| s.local_addr().map_err(|e| format!("gateway socket: {e}"));
            let caller_rtp = c_rtp.local_addr().map_err(|e| format!("caller socket: {e}"))?;
            let caller_rtcp = c_rtcp.local_addr().map_err(|e| format!("caller socket: {e}"))?;
            let setup = CallerSetup {
                rtp: c_rtp,
                rtcp: c_rtcp,
                gateway_rtp: local(&g_rtp)?,
                gateway_rtcp: local(&g_rtcp)?,
                utterance: self.utterance.clone(),
                start: start_of(i) + phase(i),
                end,
                seed: 0xC0FF_EE00 + i as u64,
            };
            callers.push(self.callers.spawn(caller(setup)));
            gateway_calls.push((g_rtp, g_rtcp, caller_rtp, caller_rtcp));
        }

        // The gateway's calls, each started at its time as an answered assistant call.
        let (notes_tx, notes_rx) = channels::notes();
        let drain = self.gateway.spawn(drain_notes(notes_rx));
        let mut stops = Vec::with_capacity(calls);
        let mut starts = Vec::with_capacity(calls);
        for (i, (rtp, rtcp, remote_rtp, remote_rtcp)) in gateway_calls.into_iter().enumerate() {
            let (tx, commands) = channels::commands();
            stops.push(tx);
            starts.push((start_of(i), rtp, rtcp, remote_rtp, remote_rtcp, commands));
        }
        let (engines, assistant) = (self.engines.clone(), self.assistant.clone());
        let spawner = self.gateway.spawn(async move {
            for (i, (at, rtp, rtcp, remote_rtp, remote_rtcp, commands)) in starts.into_iter().enumerate() {
                tokio::time::sleep_until(at.into()).await;
                let now = Instant::now();
                let driver = CallDriver::new(engines.clone(), assistant.clone(), session_config(0x5EED_0000 + i as u64, Law::Alaw), now)?;
                let setup = MediaSetup {
                    leg: LegId(i as u64),
                    rtp,
                    rtcp,
                    remote_rtp,
                    remote_rtcp,
                    media: Media::Assistant { driver: Box::new(driver), answered: true },
                };
                media::spawn(MediaStart { setup, commands, span: tracing::Span::none() }, notes_tx.clone());
            }
            Ok::<_, String>(())
        });

        // The steady part: every call is up.
        sleep_until(steady);
        let prefixes = [GATEWAY_THREADS, CALLER_THREADS];
        let before = cpu::Sample::take(&prefixes)?;
        sleep_until(end);
        let used = cpu::Sample::take(&prefixes)?.since(&before);

        let results: Vec<CallerResult> = self.callers.block_on(async {
            let mut out = Vec::with_capacity(callers.len());
            for c in callers {
                out.push(c.await.map_err(|e| format!("a caller task failed: {e}"))??);
            }
            Ok::<_, String>(out)
        })?;
        let spawned = self.gateway.block_on(spawner).map_err(|e| format!("the gateway's call spawner failed: {e}"));
        for tx in &stops {
            let _ = tx.send(MediaCommand::Stop);
        }
        // The drain ends when every media task has ended and dropped its end of the notes.
        let logged = self.gateway.block_on(drain).map_err(|e| format!("the gateway's notes task failed: {e}"))?;
        spawned??;

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let endpointing = ms(self.endpointing);
        let mut gateway: Vec<f64> = results.iter().flat_map(|r| r.latencies.iter().map(|&d| ms(d) - endpointing)).collect();
        gateway.sort_by(f64::total_cmp);
        let mut detected: Vec<f64> = logged.first_packets.iter().map(|&d| ms(d) - endpointing).collect();
        detected.sort_by(f64::total_cmp);
        let mut buffers: Vec<f64> = logged.buffer_delays.iter().map(|&d| ms(d)).collect();
        buffers.sort_by(f64::total_cmp);
        let call_seconds = calls as f64 * seconds.as_secs_f64();
        let per_call_second = |ns: u64| ns as f64 / 1e6 / call_seconds;
        Ok(LevelReport {
            calls,
            turns: gateway.len(),
            missed: results.iter().map(|r| r.missed).sum(),
            calls_answered: results.iter().filter(|r| !r.latencies.is_empty()).count(),
            p50_ms: percentile(&gateway, 50.0),
            p95_ms: percentile(&gateway, 95.0),
            p99_ms: percentile(&gateway, 99.0),
            max_ms: gateway.last().copied(),
            cpu_ms_per_call_second: per_call_second(used.named[0]),
            caller_cpu_ms_per_call_second: per_call_second(used.named[1]),
            process_cpu_ms_per_call_second: per_call_second(used.total),
            after_detection_p50_ms: percentile(&detected, 50.0),
            after_detection_p99_ms: percentile(&detected, 99.0),
            jitter_buffer_ms: percentile(&buffers, 50.0),
            late_packets: logged.late,
            send_ticks_skipped: logged.send_ticks_skipped,
        })
    }
}

/// Where call `i`'s caller starts its packet clock after the gateway's, within a packet time:
/// spread evenly over the calls (a multiplicative hash of `i`), as the clocks of two machines
/// fall.
fn phase(i: usize) -> Duration {
    let spread = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44;
    Duration::from_micros((spread * 20_000) >> 20)
}

/// Sleeps the calling (non-runtime) thread until `t`.
fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// The nearest-rank `p`th percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A media session as the SDP of a PCMA call sets it up (`media_setup::session_config`), on
/// either side.
fn session_config(seed: u64, law: Law) -> SessionConfig {
    SessionConfig {
        law,
        payload_type: Some(law.payload_type()),
        telephone_event: Some(101),
        ptime: Duration::from_millis(20),
        pull_rate: 8_000,
        push_rate: 8_000,
        ssrc: Ssrc(seed as u32 ^ 0x7A3C_19E5),
        first_seq: (seed >> 3) as u16,
        first_ts: (seed as u32).wrapping_mul(2_654_435_761),
        cname: "turn-bench@127.0.0.1".into(),
        inactivity: Some(Duration::from_secs(30)),
        wallclock: NtpTime::from_unix(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()),
        ..SessionConfig::default()
    }
}

/// What the gateway's media tasks reported.
#[derive(Debug, Default)]
struct Logged {
    /// Each turn's `TurnLatency::first_packet`.
    first_packets: Vec<Duration>,
    /// Each call's jitter buffer target delay at its end.
    buffer_delays: Vec<Duration>,
    /// Packets of the caller's that came too late for their playout.
    late: u64,
    /// Send ticks the media tasks missed (they woke too late).
    send_ticks_skipped: u64,
}

/// Takes the notes of every media task (as the SIP task does) and keeps what the gateway logs
/// of its turns and calls; ends when every task has ended.
async fn drain_notes(mut notes: tokio::sync::mpsc::Receiver<MediaNote>) -> Logged {
    let mut logged = Logged::default();
    while let Some(note) = notes.recv().await {
        match note {
            MediaNote::Call { note, .. } => {
                if let CallNote::Latency(l) = *note {
                    logged.first_packets.push(l.first_packet);
                }
            }
            MediaNote::Done { stats, .. } => {
                logged.buffer_delays.push(stats.buffer_delay);
                logged.late += stats.buffer.late;
                logged.send_ticks_skipped += stats.send_ticks_skipped;
            }
            MediaNote::Hangup { .. } => {}
        }
    }
    logged
}

/// The caller's phrase: the first phrase of the speech fixture at 8 kHz ("And so, my fellow
/// Americans"), from its first voiced frame to its last, so that its last voiced packet is its
/// last packet.
fn utterance() -> Vec<i16> {
    let speech = happ_fixtures::jfk().resampled(8_000).map(|a| a.samples).unwrap_or_default();
    let voiced: Vec<bool> = speech.chunks(FRAME).map(is_voiced).collect();
    let Some(first) = voiced.iter().position(|&v| v) else { return speech };
    // The phrase ends at its first pause (60 ms without voice) after at least a second: the
    // recording's breaths and room noise that follow stay out.
    let mut last = first;
    let mut gap = 0;
    for (i, &v) in voiced.iter().enumerate().skip(first) {
        if v {
            last = i;
            gap = 0;
        } else {
            gap += 1;
            if gap >= 3 && last - first >= 50 {
                break;
            }
        }
    }
    speech[first * FRAME..((last + 1) * FRAME).min(speech.len())].to_vec()
}

/// Whether 20 ms of PCM is voice for the caller's clock: mean square above -40 dBFS.
fn is_voiced(pcm: &[i16]) -> bool {
    !pcm.is_empty() && pcm.iter().map(|&s| i64::from(s) * i64::from(s)).sum::<i64>() / pcm.len() as i64 > VOICED_MEAN_SQUARE
}

/// Whether an RTP packet carries voice (G.711 decoded into `pcm`).
fn packet_voiced(datagram: &[u8], pcm: &mut [i16]) -> bool {
    let Ok(packet) = RtpPacket::parse(datagram) else { return false };
    let law = match packet.payload_type() {
        0 => Law::Ulaw,
        8 => Law::Alaw,
        _ => return false,
    };
    let n = law.decode(packet.payload(), pcm);
    is_voiced(&pcm[..n])
}

// ---------------------------------------------------------------- the caller side

struct CallerSetup {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    gateway_rtp: SocketAddr,
    gateway_rtcp: SocketAddr,
    utterance: Arc<[i16]>,
    start: Instant,
    end: Instant,
    seed: u64,
}

/// What a caller measured.
#[derive(Debug, Default)]
struct CallerResult {
    /// Per answered turn: from the phrase's last voiced packet sent to the answer's first
    /// voiced packet received.
    latencies: Vec<Duration>,
    /// Phrases left without an answer.
    missed: usize,
}

#[derive(Clone, Copy, Debug)]
enum Turn {
    /// Silent until then, then the phrase.
    Silent { until: Instant },
    /// Speaking: samples of the phrase queued so far.
    Speaking { queued: usize },
    /// The phrase is out: waiting for the answer, then for its end.
    Listening { since: Instant, phrase_end: Option<Instant>, onset: Option<Instant>, last_voice: Option<Instant> },
}

/// One caller: speaks, listens, measures, until `end`.
async fn caller(setup: CallerSetup) -> Result<CallerResult, String> {
    let CallerSetup { rtp, rtcp, gateway_rtp, gateway_rtcp, utterance, start, end, seed } = setup;
    tokio::time::sleep_until(start.into()).await;
    let config = SessionConfig { inactivity: None, cname: "turn-bench-caller@127.0.0.1".into(), ..session_config(seed, Law::Alaw) };
    let mut session = MediaSession::new(config, Instant::now()).map_err(|e| format!("the caller's media session: {e}"))?;
    let mut result = CallerResult::default();
    let mut turn = Turn::Silent { until: Instant::now() + SETTLE };
    let mut phrase_end = None;
    let mut out = vec![0u8; MIN_TRANSMIT_BUFFER];
    let mut inbuf = vec![0u8; 2048];
    let mut pcm = vec![0i16; 2048];
    let mut pulled = vec![0i16; FRAME];
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(result);
        }
        session.handle_timeout(now);
        // The turn first, so that a phrase due now goes out with this packet.
        turn = match turn {
            Turn::Silent { until } if now >= until => Turn::Speaking { queued: 0 },
            Turn::Listening { since, onset: None, .. } if now >= since + NO_ANSWER => {
                result.missed += 1;
                Turn::Silent { until: now + PAUSE }
            }
            Turn::Listening { last_voice: Some(v), .. } if now >= v + ANSWER_END => Turn::Silent { until: now + PAUSE },
            other => other,
        };
        if let Turn::Speaking { queued } = &mut turn {
            while *queued < utterance.len() && session.queued() < AHEAD {
                let taken = session.push_pcm(&utterance[*queued..(*queued + 1600).min(utterance.len())]);
                if taken == 0 {
                    break;
                }
                *queued += taken;
            }
        }
        while let Some(t) = session.poll_transmit(&mut out) {
            let (socket, dest) = match t.kind {
                PacketKind::Rtp => (&rtp, gateway_rtp),
                PacketKind::Rtcp => (&rtcp, gateway_rtcp),
            };
            let _ = socket.send_to(&out[..t.len], dest).await;
            if t.kind == PacketKind::Rtp && packet_voiced(&out[..t.len], &mut pcm) {
                phrase_end = Some(Instant::now());
            }
        }
        if let Turn::Speaking { queued } = turn
            && queued >= utterance.len()
            && session.queued().is_zero()
        {
            turn = Turn::Listening { since: now, phrase_end: phrase_end.take(), onset: None, last_voice: None };
        }
        // The session's playout is not listened to, but keeps its clock moving.
        while session.pull_pcm(&mut pulled).is_some() {}

        let mut wake = session.poll_timeout().unwrap_or(now + Duration::from_millis(20)).min(end);
        match turn {
            Turn::Silent { until } => wake = wake.min(until),
            Turn::Listening { since, onset: None, .. } => wake = wake.min(since + NO_ANSWER),
            Turn::Listening { last_voice: Some(v), .. } => wake = wake.min(v + ANSWER_END),
            _ => {}
        }
        tokio::select! {
            r = rtp.recv_from(&mut inbuf) => {
                let at = Instant::now();
                if let Ok((n, _)) = r
                    && let Turn::Listening { phrase_end, onset, last_voice, .. } = &mut turn
                    && packet_voiced(&inbuf[..n], &mut pcm)
                {
                    if onset.is_none() {
                        *onset = Some(at);
                        if let Some(sent) = *phrase_end {
                            result.latencies.push(at.saturating_duration_since(sent));
                        }
                    }
                    *last_voice = Some(at);
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phrase_is_real_speech_ending_on_voice() {
        let u = utterance();
        let seconds = u.len() as f64 / 8_000.0;
        assert!((1.0..2.5).contains(&seconds), "{seconds} s");
        assert!(is_voiced(&u[u.len() - FRAME..]), "the last frame is voiced");
    }

    #[test]
    fn caller_clocks_fall_across_the_packet_time() {
        let phases: Vec<Duration> = (0..1000).map(phase).collect();
        assert!(phases.iter().all(|&p| p < Duration::from_millis(20)));
        let early = phases.iter().filter(|&&p| p < Duration::from_millis(10)).count();
        assert!((400..600).contains(&early), "{early} of 1000 in the first half");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    /// Two real calls on loopback for a few seconds: every call is answered, and each answer
    /// comes after the caller's silence reached the end-of-turn delay (the figures themselves
    /// are the bench's to print, not a test's to judge).
    #[test]
    fn two_calls_are_answered_turn_after_turn() {
        let bench = Bench::new().expect("runtimes");
        let level = bench.level(2, Duration::from_secs(4)).expect("a level");
        assert_eq!(level.calls, 2);
        assert_eq!(level.calls_answered, 2, "{level:?}");
        assert_eq!(level.missed, 0, "{level:?}");
        assert!(level.turns >= 2, "{level:?}");
        let p50 = level.p50_ms.expect("figures");
        let max = level.max_ms.expect("figures");
        assert!(p50 >= 0.0 && max >= p50, "{level:?}");
        assert!(level.after_detection_p50_ms.is_some_and(|d| d >= 0.0), "the gateway logged its turns: {level:?}");
        assert!(level.cpu_ms_per_call_second > 0.0, "{level:?}");
    }
}
