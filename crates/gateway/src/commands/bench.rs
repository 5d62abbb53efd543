//! `happ-gateway bench {codec,jitter,pipeline,vad,turn} [--json]`.

use happ_perf::{codec, jitter, pipeline, vad};

use crate::bench::turn;
use crate::cli::{Bench, BenchArgs};

/// Seconds of simulated call per run of `jitter` and `pipeline` without `--seconds`.
const SIMULATED_SECONDS: u64 = 60;

pub fn run(args: &BenchArgs) -> Result<(), String> {
    let runs = args.runs as usize;
    let simulated = args.seconds.unwrap_or(SIMULATED_SECONDS);
    match args.which {
        Bench::Codec => emit(&codec::run(runs), args.json, codec_text),
        Bench::Jitter => emit(&jitter::run(runs, simulated), args.json, jitter_text),
        Bench::Pipeline => emit(&pipeline::run(runs, simulated), args.json, pipeline_text),
        Bench::Vad => emit(&vad::run(runs), args.json, vad_text),
        Bench::Turn => emit(&turn::run(args.seconds.unwrap_or(turn::DEFAULT_SECONDS))?, args.json, turn_text),
    }
}

/// Prints a report as one JSON object, or as text.
fn emit<R: serde::Serialize>(report: &R, json: bool, text: fn(&R) -> String) -> Result<(), String> {
    if json {
        let line = serde_json::to_string(report).map_err(|e| format!("cannot write the report as JSON: {e}"))?;
        println!("{line}");
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

fn codec_text(r: &codec::CodecReport) -> String {
    let f = &r.figures;
    let b = &r.baseline;
    format!(
        "G.711 on 20 ms frames of the speech fixtures at 8 kHz ({} samples, best of {} runs)\n\
         ns per sample        {:>10} {:>10}\n\
         A-law encode         {:>10.3} {:>10.3}\n\
         A-law decode         {:>10.3} {:>10.3}\n\
         µ-law encode         {:>10.3} {:>10.3}\n\
         µ-law decode         {:>10.3} {:>10.3}\n\
         targets: encode <= 0.5, decode <= 0.3 ns/sample\n",
        r.samples,
        r.runs,
        if r.simd { "AVX2" } else { "default" },
        "baseline",
        f.alaw_encode_ns,
        b.alaw_encode_ns,
        f.alaw_decode_ns,
        b.alaw_decode_ns,
        f.ulaw_encode_ns,
        b.ulaw_encode_ns,
        f.ulaw_decode_ns,
        b.ulaw_decode_ns,
    )
}

fn jitter_text(r: &jitter::JitterReport) -> String {
    let mut s = format!(
        "Jitter buffer on {} packets of speech (seeded traces; delay = fastest path to playout)\n\
         insert + playout: {:.0} ns per packet\n\n\
         {:<32} {:>8} {:>7} | {:>9} {:>10} | {:>9} {:>10}\n",
        r.packets, r.ns_per_packet, "trace", "jitter", "loss", "late", "delay", "late@200", "delay@200"
    );
    s.push_str(&format!("{:<32} {:>8} {:>7} | {:>9} {:>10} | {:>9} {:>10}\n", "", "(RFC3550)", "(net)", "(adaptive)", "", "(fixed)", ""));
    for t in &r.traces {
        s.push_str(&format!(
            "{:<32} {:>6.1}ms {:>6.2}% | {:>8.2}% {:>8.1}ms | {:>8.2}% {:>8.1}ms\n",
            t.name, t.rfc3550_jitter_ms, t.network_loss_pct, t.late_loss_pct, t.mean_delay_ms, t.fixed_late_loss_pct, t.fixed_mean_delay_ms
        ));
    }
    s
}

fn pipeline_text(r: &pipeline::PipelineReport) -> String {
    format!(
        "Media session of one call, both ways, 16 kHz speech side ({} s of call per run, {})\n\
         both directions   {:>8.1} us CPU per call-second  ->  {:.0} calls per core\n\
         (median run       {:>8.1} us: the same work while the host contends for the CPU)\n\
         receive only      {:>8.1} us\n\
         send only         {:>8.1} us\n\
         target: under 60 us per call-second\n",
        r.call_seconds,
        if r.simd { "AVX2 kernels" } else { "baseline kernels" },
        r.cpu_us_per_call_second,
        r.calls_per_core,
        r.median_cpu_us_per_call_second,
        r.receive_us_per_call_second,
        r.send_us_per_call_second,
    )
}

fn vad_text(r: &vad::VadReport) -> String {
    let mut s = format!(
        "Voice activity detection, 20 ms frames ({} clips of the speech fixtures with silent gaps; best of {} runs)\n\
         8 kHz             {:>8.2} us CPU per call-second (median run {:.2} us)\n\
         16 kHz            {:>8.2} us\n\
         frame accuracy    clean {:.1} %, 20 dB {:.1} %, 10 dB {:.1} %, 5 dB {:.1} %\n\
         false starts      {:.2} per minute of noise alone (20 dB below speech)\n\
         down to 10 dB     {} missed onsets, onset latency at most {:.0} ms\n\
         target: under 20 us per call-second\n\n\
         {:>5} {:>5} {:>5} {:>6} | {:>8} {:>6} {:>6} | {:>9} {:>8}\n",
        r.utterances,
        r.runs,
        r.vad_us_per_call_second,
        r.median_vad_us_per_call_second,
        r.vad_16k_us_per_call_second,
        r.accuracy_clean_pct,
        r.accuracy_20db_pct,
        r.accuracy_10db_pct,
        r.accuracy_5db_pct,
        r.false_starts_per_min,
        r.missed_onsets_10db,
        r.max_onset_latency_10db_ms,
        "rate",
        "codec",
        "noise",
        "snr",
        "accuracy",
        "missed",
        "false",
        "latency",
        "max",
    );
    for c in &r.conditions {
        let snr = c.snr_db.map_or_else(|| "clean".to_string(), |d| format!("{d:.0} dB"));
        s.push_str(&format!(
            "{:>5} {:>5} {:>5} {:>6} | {:>7.1}% {:>6} {:>6} | {:>7.0}ms {:>6.0}ms\n",
            c.rate, c.codec, c.noise, snr, c.accuracy_pct, c.missed_onsets, c.false_starts, c.mean_latency_ms, c.max_latency_ms
        ));
    }
    s
}

fn turn_text(r: &turn::TurnReport) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut s = format!(
        "Turn latency: the gateway's share of voice-to-voice latency, on the RTP of real UDP calls on loopback\n\
         (zero-delay recogniser, LLM and synthesiser; a {:.1} s phrase of real speech, a {:.1} s answer; no SIP, which a\n\
         turn does not involve; {} s of steady calls per level, started over the first second; {} cores)\n\
         gateway ms = first voiced packet of the answer received - last voiced packet of the phrase sent - {} ms end-of-turn delay\n\n\
         {:>5} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>8} {:>6} | {:>6} {:>9} | {:>8} {:>7} {:>7}\n\
         {:>5} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>8} {:>6} | {:>6} {:>9} | {:>8} {:>7} {:>7}\n",
        r.utterance_ms as f64 / 1000.0,
        r.answer_ms as f64 / 1000.0,
        r.seconds,
        r.cores,
        r.endpointing_ms,
        "calls",
        "turns",
        "missed",
        "p50",
        "p95",
        "p99",
        "max",
        "detected",
        "",
        "jitter",
        "late pkts",
        "CPU ms/",
        "",
        "",
        "",
        "",
        "",
        "ms",
        "ms",
        "ms",
        "ms",
        "p50 ms",
        "p99 ms",
        "buf ms",
        "/skipped",
        "call-s",
        "callers",
        "process",
    );
    for l in &r.levels {
        s.push_str(&format!(
            "{:>5} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>8} {:>6} | {:>6} {:>9} | {:>8.3} {:>7.3} {:>7.3}\n",
            l.calls,
            l.turns,
            l.missed,
            ms(l.p50_ms),
            ms(l.p95_ms),
            ms(l.p99_ms),
            ms(l.max_ms),
            ms(l.after_detection_p50_ms),
            ms(l.after_detection_p99_ms),
            ms(l.jitter_buffer_ms),
            format!("{}/{}", l.late_packets, l.send_ticks_skipped),
            l.cpu_ms_per_call_second,
            l.caller_cpu_ms_per_call_second,
            l.process_cpu_ms_per_call_second,
        ));
    }
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    s.push_str(&format!(
        "\ndetected: the same turns as the gateway logs them, from its voice detector's last voiced frame (after the jitter\n\
         buffer and the detector's hold). jitter buf: the gateway's jitter buffer target delay at the end of the calls\n\
         (median). late pkts/skipped: caller packets too late for their playout / packet times the gateway woke too late for.\n\
         CPU: thread CPU time (/proc/self/task/*/schedstat) of the gateway's runtime ({} worker threads, as the daemon runs)\n\
         over the steady part, divided by calls x seconds; the callers run on a runtime of their own, counted apart.\n\n\
         target p50 <= {:.0} ms and p99 <= {:.0} ms at 100 calls: {}\n\
         target the same at 500 calls (flat): {}\n\
         target <= {:.0} ms CPU per call-second from 100 calls up: {}\n",
        r.cores,
        turn::TARGET_P50_MS,
        turn::TARGET_P99_MS,
        verdict(r.targets.latency_at_100),
        verdict(r.targets.flat_to_500),
        turn::TARGET_CPU_MS,
        verdict(r.targets.cpu),
    ));
    s
}
