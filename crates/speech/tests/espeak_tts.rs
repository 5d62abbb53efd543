//! The espeak-ng provider against the real `espeak-ng` program (installed by `.ci/run`).

use std::time::{Duration, Instant};

use happ_speech::local::{EspeakConfig, EspeakStream, EspeakTts};
use happ_speech::{AudioFormat, Error, TtsEvent, TtsLatency, TtsOptions, TtsProvider};

const SENTENCE: &str = "Our shop is open from nine in the morning until six in the evening.";

fn provider() -> EspeakTts {
    EspeakTts::new(EspeakConfig::default()).expect("espeak-ng is installed")
}

/// Samples of a stream until `Done`, and its latency.
async fn collect(stream: &mut EspeakStream) -> Result<(Vec<i16>, TtsLatency), Error> {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next_event()).await.expect("no hang") {
            Some(Ok(TtsEvent::Audio(chunk))) => {
                assert_eq!(chunk.format, stream_format(stream));
                bytes.extend_from_slice(&chunk.data);
            }
            Some(Ok(TtsEvent::Done(latency))) => {
                assert!(stream.next_event().await.is_none(), "nothing after Done");
                assert_eq!(bytes.len() % 2, 0, "whole samples");
                return Ok((bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(), latency));
            }
            Some(Err(e)) => return Err(e),
            None => panic!("stream ended without Done"),
        }
    }
}

fn stream_format(stream: &EspeakStream) -> AudioFormat {
    happ_speech::TtsStream::format(stream)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

async fn speak(format: AudioFormat, options: &TtsOptions, sentences: &[&str]) -> Result<(Vec<i16>, TtsLatency), Error> {
    let mut stream = provider().stream(format, options)?;
    for s in sentences {
        happ_speech::TtsStream::push_text(&mut stream, s)?;
    }
    happ_speech::TtsStream::finish(&mut stream);
    collect(&mut stream).await
}

#[tokio::test]
async fn a_sentence_becomes_speech_at_the_declared_rate() {
    let tts = provider();
    assert_eq!(tts.formats(), [AudioFormat::PCM_16K, AudioFormat::PCM_8K]);
    for format in [AudioFormat::PCM_16K, AudioFormat::PCM_8K] {
        let (samples, latency) = speak(format, &TtsOptions::default(), &[SENTENCE]).await.expect("speech");
        let seconds = samples.len() as f64 / f64::from(format.sample_rate);
        assert!((2.0..8.0).contains(&seconds), "{format:?}: {seconds:.2} s for a 14-word sentence");
        assert!(rms(&samples) > 500.0, "{format:?}: RMS {:.0} is near silence", rms(&samples));
        let first = latency.first_audio.expect("first audio measured");
        assert!(first < Duration::from_secs(2) && first <= latency.total, "{latency:?}");
    }
}

/// The same speech at 8 kHz lasts as long as at 16 kHz: the resampler keeps time.
#[tokio::test]
async fn both_rates_last_the_same() {
    let (wide, _) = speak(AudioFormat::PCM_16K, &TtsOptions::default(), &[SENTENCE]).await.expect("speech");
    let (narrow, _) = speak(AudioFormat::PCM_8K, &TtsOptions::default(), &[SENTENCE]).await.expect("speech");
    assert!((wide.len() as i64 - 2 * narrow.len() as i64).abs() <= 2, "{} samples at 16 kHz, {} at 8 kHz", wide.len(), narrow.len());
}

#[tokio::test]
async fn every_pushed_sentence_is_spoken() {
    let second = "Returns are accepted within thirty days of purchase.";
    let (one, _) = speak(AudioFormat::PCM_16K, &TtsOptions::default(), &[SENTENCE]).await.expect("speech");
    let (other, _) = speak(AudioFormat::PCM_16K, &TtsOptions::default(), &[second]).await.expect("speech");
    let (both, _) = speak(AudioFormat::PCM_16K, &TtsOptions::default(), &[SENTENCE, second]).await.expect("speech");
    // Within 5 %: each line is its own utterance, whatever was before it.
    let sum = (one.len() + other.len()) as f64;
    assert!((both.len() as f64 - sum).abs() < 0.05 * sum, "{} + {} samples alone, {} together", one.len(), other.len(), both.len());
    // The second sentence is not silence: the last second of the whole is speech.
    assert!(rms(&both[both.len() - 16_000..]) > 300.0);
}

/// A sentence is spoken as soon as it is pushed, before `finish`: what lets the bridge play the
/// first sentence while the LLM writes the second.
#[tokio::test]
async fn audio_comes_before_finish() {
    let mut stream = provider().stream(AudioFormat::PCM_16K, &TtsOptions::default()).expect("stream");
    happ_speech::TtsStream::push_text(&mut stream, SENTENCE).expect("pushed");
    let mut bytes = 0;
    // espeak-ng says the sentence, then waits for the next line; no Done without finish.
    while bytes < AudioFormat::PCM_16K.bytes_per_millis(2000) {
        match tokio::time::timeout(Duration::from_secs(5), stream.next_event()).await.expect("audio before finish") {
            Some(Ok(TtsEvent::Audio(chunk))) => bytes += chunk.data.len(),
            other => panic!("expected audio, got {other:?}"),
        }
    }
    assert!(stream.latency().first_audio.is_some());
    happ_speech::TtsStream::finish(&mut stream);
    collect(&mut stream).await.expect("the rest");
}

#[tokio::test]
async fn voices_and_speed_change_the_speech() {
    let (us, _) = speak(AudioFormat::PCM_16K, &TtsOptions::default(), &[SENTENCE]).await.expect("en-us");
    let (female, _) = speak(AudioFormat::PCM_16K, &TtsOptions { voice: Some("en-us+f3".into()), language: None }, &[SENTENCE]).await.expect("en-us+f3");
    let (british, _) = speak(AudioFormat::PCM_16K, &TtsOptions { voice: None, language: Some("en-GB".into()) }, &[SENTENCE]).await.expect("en-gb");
    assert_ne!(us, female);
    assert_ne!(us, british);
    let fast = EspeakTts::new(EspeakConfig { words_per_minute: 300, ..EspeakConfig::default() }).expect("provider");
    let mut stream = fast.stream(AudioFormat::PCM_16K, &TtsOptions::default()).expect("stream");
    happ_speech::TtsStream::push_text(&mut stream, SENTENCE).expect("pushed");
    happ_speech::TtsStream::finish(&mut stream);
    let (quick, _) = collect(&mut stream).await.expect("speech");
    assert!((quick.len() as f64) < 0.75 * us.len() as f64, "300 wpm: {} samples, 175 wpm: {}", quick.len(), us.len());
}

#[tokio::test]
async fn cancel_kills_the_process_at_once() {
    let mut stream = provider().stream(AudioFormat::PCM_16K, &TtsOptions::default()).expect("stream");
    let long = SENTENCE.repeat(40);
    happ_speech::TtsStream::push_text(&mut stream, &long).expect("pushed");
    let Some(Ok(TtsEvent::Audio(_))) = stream.next_event().await else { panic!("audio first") };
    let pid = stream.process_id().expect("running");
    let cancelled = Instant::now();
    happ_speech::TtsStream::cancel(&mut stream);
    assert_eq!(stream.next_event().await, Some(Err(Error::Cancelled)));
    assert_eq!(stream.next_event().await, None);
    // Killed: gone, or a zombie waiting to be reaped, within a moment.
    let stat = format!("/proc/{pid}/stat");
    loop {
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            Ok(s) if s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => break,
            Ok(_) if cancelled.elapsed() > Duration::from_millis(500) => panic!("espeak-ng {pid} still runs after cancel"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(happ_speech::TtsStream::push_text(&mut stream, "more").is_ok(), "pushing after cancel is harmless");
}

#[tokio::test]
async fn an_unknown_voice_is_a_config_error() {
    let result = speak(AudioFormat::PCM_16K, &TtsOptions { voice: Some("xx-nosuchvoice".into()), language: None }, &[SENTENCE]).await;
    match result {
        Err(Error::Config { detail }) => assert!(detail.contains("xx-nosuchvoice") && detail.contains("does not exist"), "{detail}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let bad = provider().stream(AudioFormat::PCM_16K, &TtsOptions { voice: Some("en; rm".into()), language: None });
    assert!(matches!(bad, Err(Error::Config { .. })));
}

#[test]
fn a_missing_program_and_bad_settings_are_config_errors() {
    let missing = EspeakTts::new(EspeakConfig { program: "espeak-ng-not-installed".into(), ..EspeakConfig::default() });
    match missing {
        Err(Error::Config { detail }) => assert!(detail.contains("espeak-ng-not-installed"), "{detail}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(matches!(EspeakTts::new(EspeakConfig { words_per_minute: 20, ..EspeakConfig::default() }), Err(Error::Config { .. })));
    assert!(matches!(provider().stream(AudioFormat::MULAW_8K, &TtsOptions::default()), Err(Error::Config { .. })));
}

/// Built outside a runtime (no process yet), the stream starts espeak-ng at its first poll.
#[test]
fn starts_lazily_outside_a_runtime() {
    let mut stream = provider().stream(AudioFormat::PCM_8K, &TtsOptions::default()).expect("stream");
    happ_speech::TtsStream::push_text(&mut stream, "Hello.").expect("buffered");
    happ_speech::TtsStream::finish(&mut stream);
    assert_eq!(stream.process_id(), None);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (samples, _) = runtime.block_on(collect(&mut stream)).expect("speech");
    assert!(samples.len() > 2_000, "{} samples", samples.len());
}

/// Time to first audio and real-time factor, for the README. Run with
/// `cargo test --release -p happ-speech --test espeak_tts -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn first_audio_and_real_time_factor() {
    for (label, warm) in [("cold start (process started with the first text)", false), ("warm (process started before the text)", true)] {
        let mut firsts = Vec::new();
        let mut rtfs = Vec::new();
        for _ in 0..10 {
            // Built inside the runtime, the stream starts espeak-ng at once; cold, the text follows
            // immediately and waits for the process to load its voice.
            let mut stream = provider().stream(AudioFormat::PCM_8K, &TtsOptions::default()).expect("stream");
            if warm {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let started = Instant::now();
            happ_speech::TtsStream::push_text(&mut stream, SENTENCE).expect("pushed");
            happ_speech::TtsStream::finish(&mut stream);
            let (samples, latency) = collect(&mut stream).await.expect("speech");
            let audio = samples.len() as f64 / 8000.0;
            firsts.push(latency.first_audio.expect("measured"));
            rtfs.push(started.elapsed().as_secs_f64() / audio);
        }
        firsts.sort();
        rtfs.sort_by(f64::total_cmp);
        println!("espeak-ng {label}: first audio median {:?} (min {:?}, max {:?}); real-time factor median {:.4}", firsts[5], firsts[0], firsts[9], rtfs[5]);
    }
}
