//! The jitter buffer on seeded network traces of real speech: cost per packet, late loss and
//! delay, next to a fixed 200 ms buffer (the Asterisk and GStreamer default).

use std::time::Duration;

use happ_media::g711::Law;
use happ_media::jitter::{JitterBuffer, JitterConfig};
use happ_media::rtp::Reception;
use happ_media::sim::{self, Trace, TraceConfig, TraceEvent};
use happ_media::units::{ClockRate, SeqExtender, SeqNo, Ssrc};
use happ_netem::{Jitter, Loss, NetemConfig, Spikes};
use serde::Serialize;

use crate::best_of;

/// One network condition, through the adaptive and the fixed buffer.
#[derive(Clone, Debug, Serialize)]
pub struct TraceRow {
    /// The condition.
    pub name: &'static str,
    /// RFC 3550 interarrival jitter the trace shows, in ms.
    pub rfc3550_jitter_ms: f64,
    /// Packets lost by the network, in %.
    pub network_loss_pct: f64,
    /// Adaptive buffer: packets too late to play, in % of packets sent.
    pub late_loss_pct: f64,
    /// Adaptive buffer: mean delay from the fastest path to playout, in ms.
    pub mean_delay_ms: f64,
    /// Fixed 200 ms buffer: late packets, in %.
    pub fixed_late_loss_pct: f64,
    /// Fixed 200 ms buffer: mean delay, in ms.
    pub fixed_mean_delay_ms: f64,
}

/// The jitter benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct JitterReport {
    /// CPU time per packet of insert plus playout on the main trace.
    pub ns_per_packet: f64,
    /// Late loss of the adaptive buffer on the main trace (30 ms jitter, 1 % loss), in %.
    pub late_loss_pct: f64,
    /// Mean delay of the adaptive buffer on the main trace, in ms.
    pub mean_delay_ms: f64,
    /// The same for a fixed 200 ms buffer.
    pub fixed_late_loss_pct: f64,
    /// The same for a fixed 200 ms buffer.
    pub fixed_mean_delay_ms: f64,
    /// Packets in the main trace.
    pub packets: u64,
    /// Every condition measured, the main trace first.
    pub traces: Vec<TraceRow>,
}

/// The main trace: `netem delay 50ms 30ms loss 1%` (±30 ms uniform jitter), seed 42.
pub fn main_trace_netem() -> NetemConfig {
    NetemConfig {
        seed: 42,
        base_delay: Duration::from_millis(50),
        jitter: Jitter::Uniform(Duration::from_millis(60)),
        loss: Loss::Random(0.01),
        ..NetemConfig::default()
    }
}

fn conditions() -> Vec<(&'static str, NetemConfig)> {
    let base = NetemConfig { seed: 42, base_delay: Duration::from_millis(50), ..NetemConfig::default() };
    let ms = Duration::from_millis;
    vec![
        ("±30 ms jitter, 1 % loss (main)", main_trace_netem()),
        ("no jitter", base),
        ("±15 ms jitter", NetemConfig { jitter: Jitter::Uniform(ms(30)), ..base }),
        ("±50 ms jitter", NetemConfig { jitter: Jitter::Uniform(ms(100)), ..base }),
        ("exponential, 10 ms mean", NetemConfig { jitter: Jitter::Exponential(ms(10)), ..base }),
        ("exponential, 20 ms mean", NetemConfig { jitter: Jitter::Exponential(ms(20)), ..base }),
        (
            "150 ms spikes every 4 s",
            NetemConfig { jitter: Jitter::Uniform(ms(10)), spikes: Some(Spikes { every: Duration::from_secs(4), height: ms(150), length: ms(300) }), ..base },
        ),
        ("±30 ms, bursty 5 % loss", NetemConfig { jitter: Jitter::Uniform(ms(60)), loss: Loss::Bursty { rate: 0.05, mean_burst: 3.0 }, ..base }),
    ]
}

/// The RFC 3550 interarrival jitter of a trace's arrivals, in ms.
fn trace_jitter_ms(trace: &Trace) -> f64 {
    let mut reception = Reception::new(Ssrc(0));
    let mut seqs = SeqExtender::default();
    let rate = ClockRate::NARROWBAND;
    for e in &trace.events {
        if let TraceEvent::Arrival(at, p) = e {
            let arrival = rate.ticks(at.duration_since(trace.t0));
            reception.on_packet(SeqNo(seqs.extend(u64::from(p.seq))), arrival, p.ts, true);
        }
    }
    f64::from(reception.jitter_ticks()) / 8.0
}

fn row(name: &'static str, trace: &Trace) -> TraceRow {
    let pct = |n: u64| 100.0 * n as f64 / trace.sent as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rate = ClockRate::NARROWBAND;
    let adaptive = sim::replay(trace, &mut JitterBuffer::new(&JitterConfig::default()), Law::Alaw, false);
    let fixed = sim::replay(trace, &mut JitterBuffer::new(&JitterConfig::fixed(Duration::from_millis(200))), Law::Alaw, false);
    TraceRow {
        name,
        rfc3550_jitter_ms: trace_jitter_ms(trace),
        network_loss_pct: pct(trace.lost),
        late_loss_pct: pct(adaptive.stats.late),
        mean_delay_ms: ms(adaptive.stats.mean_delay(rate)),
        fixed_late_loss_pct: pct(fixed.stats.late),
        fixed_mean_delay_ms: ms(fixed.stats.mean_delay(rate)),
    }
}

/// Runs the jitter benchmark over `seconds` of speech per trace.
pub fn run(runs: usize, seconds: u64) -> JitterReport {
    let speech = happ_fixtures::speech_8k();
    let make = |netem: NetemConfig| {
        sim::generate(std::time::Instant::now(), &TraceConfig { duration: Duration::from_secs(seconds), netem, ..TraceConfig::default() }, &speech)
    };
    let rows: Vec<TraceRow> = conditions().into_iter().map(|(name, netem)| row(name, &make(netem))).collect();
    let main = make(main_trace_netem());
    let ns = best_of(runs, Duration::from_secs(1), || {
        let mut jb = JitterBuffer::new(&JitterConfig::default());
        std::hint::black_box(sim::replay(&main, &mut jb, Law::Alaw, false));
    });
    let m = &rows[0];
    JitterReport {
        ns_per_packet: ns as f64 / main.sent as f64,
        late_loss_pct: m.late_loss_pct,
        mean_delay_ms: m.mean_delay_ms,
        fixed_late_loss_pct: m.fixed_late_loss_pct,
        fixed_mean_delay_ms: m.fixed_mean_delay_ms,
        packets: main.sent,
        traces: rows,
    }
}
