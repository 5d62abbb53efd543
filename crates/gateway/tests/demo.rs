//! `happ-gateway demo`: a real call on loopback from the internal caller to a gateway child
//! process, with its transcript and its stereo recording.
//!
//! The caller's lines are spoken with espeak-ng, which must be installed.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_happ-gateway");

/// The built-in script (a documented part of the command).
const BUILT_IN: [&str; 5] = [
    "Hello, what are your opening hours?",
    "What is your address?",
    "How much does a sourdough loaf cost?",
    "Is there parking near the bakery?",
    "Thank you, goodbye.",
];

fn demo(out: &Path, extra: &[&str]) -> Output {
    let output = Command::new(BIN).arg("demo").arg("--out").arg(out).args(extra).output().expect("run happ-gateway demo");
    let log = std::fs::read_to_string(out.join("gateway.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "demo failed ({}):\nstdout:\n{}\nstderr:\n{}\ngateway log:\n{log}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `caller:` lines of transcript.txt.
fn caller_lines(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("transcript.txt")).expect("transcript.txt");
    assert!(text.lines().all(|l| l.starts_with("caller: ") || l.starts_with("assistant: ")), "{text}");
    text.lines().filter_map(|l| l.strip_prefix("caller: ")).map(str::to_owned).collect()
}

/// When each caller line began, in seconds since the answer, from the live output
/// (`[  0.50 s] caller: ...`).
fn caller_times(stdout: &[u8]) -> Vec<f64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.contains("] caller: "))
        .map(|l| {
            let inner = l.trim_start().trim_start_matches('[');
            inner.split(" s]").next().and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no time in {l:?}"))
        })
        .collect()
}

/// call.wav as (left, right), after checking its format.
fn channels(out: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut wav = hound::WavReader::open(out.join("call.wav")).expect("call.wav");
    let spec = wav.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8_000, 16), "stereo 16-bit 8 kHz");
    let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.expect("a sample")).collect();
    (samples.iter().step_by(2).copied().collect(), samples.iter().skip(1).step_by(2).copied().collect())
}

/// 100 ms blocks of `pcm`: whether each holds voice (RMS above -36 dBFS).
fn voiced_blocks(pcm: &[i16]) -> Vec<bool> {
    pcm.chunks(800).map(|b| b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / b.len() as f64 > 500.0f64.powi(2)).collect()
}

/// Where runs of voice start (block indices), runs separated by at least 700 ms of silence.
fn segments(blocks: &[bool]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut silent = usize::MAX;
    for (i, &v) in blocks.iter().enumerate() {
        if v {
            if silent >= 7 {
                starts.push(i);
            }
            silent = 0;
        } else {
            silent = silent.saturating_add(1);
        }
    }
    starts
}

#[test]
fn the_built_in_call_is_printed_transcribed_and_recorded_in_stereo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let output = demo(&out, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();

    assert_eq!(caller_lines(&out), BUILT_IN, "the caller's lines, in order");
    let times = caller_times(&output.stdout);
    assert_eq!(times.len(), BUILT_IN.len(), "{stdout}");
    assert!(stdout.contains("transcript.txt") && stdout.contains("call.wav"), "{stdout}");

    let (left, right) = channels(&out);
    let (left, right) = (voiced_blocks(&left), voiced_blocks(&right));
    // The caller's voice is on the left from each line's start, one run per line.
    for &t in &times {
        let at = (t * 10.0) as usize;
        assert!(left[at..(at + 10).min(left.len())].iter().any(|&v| v), "no caller voice on the left at {t} s");
    }
    assert_eq!(segments(&left).len(), BUILT_IN.len(), "one voiced run per line on the left");
    // The gateway's audio is on the right.
    assert!(right.iter().filter(|&&v| v).count() >= 10, "the gateway's audio is on the right");
    if stdout.contains("answered by the echo handler") {
        // The echo: the caller's voice again, a few packets later, for every line.
        let heard = segments(&right);
        for start in segments(&left) {
            assert!(heard.iter().any(|&h| h >= start && h <= start + 3), "no echo of the line at block {start} (echo runs at {heard:?})");
        }
    }
}

#[test]
fn a_caller_file_is_spoken_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("caller.txt");
    std::fs::write(&script, "# a short call\n\nDo you bake rye bread?\n\n# then\nGoodbye.\n").expect("write the script");
    let out = dir.path().join("out");
    let output = demo(&out, &["--caller", script.to_str().expect("a UTF-8 path")]);

    assert_eq!(caller_lines(&out), ["Do you bake rye bread?", "Goodbye."]);
    assert_eq!(caller_times(&output.stdout).len(), 2);
    let (left, _) = channels(&out);
    assert_eq!(segments(&voiced_blocks(&left)).len(), 2, "two lines spoken");
}

#[test]
fn a_configuration_without_an_assistant_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("no-assistant.toml");
    std::fs::write(&config, "[sip]\nlisten = \"127.0.0.1:5060\"\n").expect("write the config");
    let output = Command::new(BIN)
        .args(["demo", "--config", config.to_str().expect("a UTF-8 path"), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .expect("run happ-gateway demo");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-assistant.toml") && stderr.contains("[[assistants]]"), "{stderr}");
}
