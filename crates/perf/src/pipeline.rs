//! The whole media session of one call, both ways, with 16 kHz on the speech side: RTP in
//! through the jitter buffer, G.711 decoding, concealment and resampling to 16 kHz; 16 kHz speech
//! out through resampling, G.711 encoding and paced RTP; RTCP both ways.
//!
//! The incoming RTP (real speech, ±30 ms jitter, 1 % loss) and the peer's RTCP are prepared
//! before the clock starts, so only the session's own work is measured.

use std::time::{Duration, Instant};

use happ_media::rtp::{RtcpWriter, RtpHeader};
use happ_media::session::{MediaSession, SessionConfig};
use happ_media::sim::{self, TraceConfig, TraceEvent};
use happ_media::units::{NtpTime, Ssrc};
use serde::Serialize;

use crate::{best_of, measure};

/// The pipeline benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineReport {
    /// CPU time per second of call, both directions.
    pub cpu_us_per_call_second: f64,
    /// Calls one core could carry if media were all it did.
    pub calls_per_core: f64,
    /// The median run, both directions: the figure under the machine's contention.
    pub median_cpu_us_per_call_second: f64,
    /// Receive direction alone (RTP to 16 kHz frames).
    pub receive_us_per_call_second: f64,
    /// Send direction alone (16 kHz speech to RTP).
    pub send_us_per_call_second: f64,
    /// Whether the AVX2 kernels ran.
    pub simd: bool,
    /// Seconds of call per run.
    pub call_seconds: u64,
}

/// What a run does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Both directions.
    Both,
    /// RTP in, frames out.
    Receive,
    /// Speech in, RTP out.
    Send,
}

/// A datagram of the prepared call: when it arrives, its bytes, and whether it is RTCP.
type Arrival = (Duration, Vec<u8>, bool);

/// A call's worth of input, prepared before measuring.
pub struct Prepared {
    arrivals: Vec<Arrival>,
    tts: Vec<i16>,
    seconds: u64,
}

/// Prepares `seconds` of call.
pub fn prepare(seconds: u64) -> Prepared {
    let speech = happ_fixtures::speech_8k();
    let netem = crate::jitter::main_trace_netem();
    let trace = sim::generate(Instant::now(), &TraceConfig { duration: Duration::from_secs(seconds), netem, ..TraceConfig::default() }, &speech);
    let mut arrivals = Vec::new();
    for e in &trace.events {
        if let TraceEvent::Arrival(at, p) = e {
            let mut d = vec![0u8; 12 + p.payload.len()];
            let header = RtpHeader { marker: p.marker, payload_type: 8, seq: p.seq, timestamp: p.ts, ssrc: Ssrc(0x5EED) };
            header.write(&mut d);
            d[12..].copy_from_slice(&p.payload);
            arrivals.push((at.duration_since(trace.t0), d, false));
        }
    }
    // The peer's sender report every 5 s.
    for s in (5..seconds).step_by(5) {
        let mut buf = [0u8; 256];
        let mut w = RtcpWriter::new(&mut buf);
        let ntp = NtpTime::from_unix(Duration::from_secs(1_800_000_000 + s));
        w.sender_report(Ssrc(0x5EED), ntp, (s * 8000) as u32, (s * 50) as u32, (s * 8000) as u32, &[]).expect("fits");
        w.cname(Ssrc(0x5EED), "peer").expect("fits");
        let n = w.len();
        arrivals.push((Duration::from_secs(s) + Duration::from_millis(51), buf[..n].to_vec(), true));
    }
    arrivals.sort_by_key(|a| a.0);
    let tts = happ_fixtures::jfk().samples;
    Prepared { arrivals, tts, seconds }
}

/// Drives one session through the prepared call, as a driver would.
pub fn call(p: &Prepared, load: Load) {
    let t0 = Instant::now();
    let config = SessionConfig { pull_rate: 16_000, push_rate: 16_000, ..SessionConfig::default() };
    let mut s = MediaSession::new(config, t0).expect("the benchmark's configuration is valid");
    let mut buf = [0u8; 1500];
    let mut frame = [0i16; 320];
    let mut next = 0;
    let mut tts = p.tts.chunks_exact(320).cycle();
    for tick in 0..p.seconds * 50 {
        let now = t0 + Duration::from_millis(20 * tick);
        while let Some((at, datagram, rtcp)) = p.arrivals.get(next).filter(|a| t0 + a.0 <= now) {
            if load != Load::Send {
                let _ = if *rtcp { s.handle_rtcp(t0 + *at, datagram).map_err(|_| ()) } else { s.handle_rtp(t0 + *at, datagram).map_err(|_| ()) };
            }
            next += 1;
        }
        s.handle_timeout(now);
        if load != Load::Receive
            && let Some(chunk) = tts.next()
        {
            s.push_pcm(chunk);
        }
        while let Some(t) = s.poll_transmit(&mut buf) {
            std::hint::black_box(&buf[..t.len]);
        }
        while let Some(pulled) = s.pull_pcm(&mut frame) {
            std::hint::black_box(&frame[..pulled.len]);
        }
        while s.poll_event().is_some() {}
    }
    std::hint::black_box(s.stats());
}

/// Runs the pipeline benchmark over `seconds` of call.
pub fn run(runs: usize, seconds: u64) -> PipelineReport {
    let prepared = prepare(seconds);
    let us = |ns: u64| ns as f64 / 1000.0 / seconds as f64;
    let spread = Duration::from_secs(2);
    let per_second = |load| us(best_of(runs, spread, || call(&prepared, load)));
    let both = measure(runs, spread, || call(&prepared, Load::Both));
    PipelineReport {
        cpu_us_per_call_second: us(both.best),
        calls_per_core: 1_000_000.0 / us(both.best),
        median_cpu_us_per_call_second: us(both.median),
        receive_us_per_call_second: per_second(Load::Receive),
        send_us_per_call_second: per_second(Load::Send),
        simd: happ_media::simd_enabled(),
        call_seconds: seconds,
    }
}
