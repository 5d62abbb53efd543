//! The local recogniser (pocketsphinx from Debian's packages, run for real) on call audio: the
//! real voices of the spoken-digit fixtures and espeak-ng speech, each narrowed to 8 kHz and
//! put through a G.711 round trip, as a caller's audio reaches the bridge.
//!
//! Accuracy is measured as word error rate against the reference words (substitutions,
//! deletions and insertions over reference words), printed, and asserted against a floor set
//! below what this machine measured, so a change that makes the recogniser hear worse fails.

use std::time::Duration;

use happ_fixtures::{Audio, DIGITS, SPEAKERS};
use happ_media::g711::Law;
use happ_speech::local::sphinx::{SphinxConfig, SphinxSession, SphinxStt};
use happ_speech::{AudioFormat, Error, Frame, SttEvent, SttOptions, SttSession, Transcript};

const WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

fn g711_round_trip(samples: &[i16], law: Law) -> Vec<i16> {
    samples.iter().map(|&s| law.decode_sample(law.encode_sample(s))).collect()
}

fn config() -> SphinxConfig {
    // The tests push audio faster than real time; the backlog must hold all of it.
    SphinxConfig { max_backlog: Duration::from_secs(600), ..SphinxConfig::default() }
}

/// Pushes `audio` in 20 ms frames, then finishes and collects every final.
async fn transcribe(session: &mut SphinxSession, audio: &[i16], rate: u32) -> Vec<Transcript> {
    for frame in audio.chunks(rate as usize / 50) {
        session.push(Frame::Pcm(frame)).expect("push");
    }
    session.finish();
    let mut finals = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), session.next_event()).await.expect("recogniser answers") {
            Some(Ok(SttEvent::Final(t))) => finals.push(t),
            Some(Ok(SttEvent::Done(_))) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    finals
}

/// Levenshtein distance over words.
fn word_errors(reference: &[&str], hypothesis: &[&str]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut row = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[hypothesis.len()]
}

fn silence(seconds: f64, rate: u32) -> Vec<i16> {
    vec![0; (seconds * f64::from(rate)) as usize]
}

/// All 40 digit recordings, in one stream with pauses, after a round trip through `law`.
fn digit_stream(law: Law) -> (Vec<i16>, Vec<&'static str>) {
    let mut audio = silence(0.5, 8000);
    let mut reference = Vec::new();
    for speaker in 0..SPEAKERS.len() {
        for (recordings, word) in DIGITS.iter().zip(WORDS) {
            let clip = Audio::from_wav(recordings[speaker]).expect("fixture");
            assert_eq!(clip.rate, 8000);
            audio.extend(g711_round_trip(&clip.samples, law));
            audio.extend(silence(0.6, 8000));
            reference.push(word);
        }
    }
    (audio, reference)
}

async fn digit_error_rate(stt: &SphinxStt, keywords: Vec<String>, law: Law) -> f64 {
    let (audio, reference) = digit_stream(law);
    let mut session = stt.session(AudioFormat::PCM_8K, &SttOptions { keywords, ..SttOptions::default() }).expect("session");
    let finals = transcribe(&mut session, &audio, 8000).await;
    let heard: Vec<&str> = finals.iter().flat_map(|t| t.text.split(' ')).collect();
    let errors = word_errors(&reference, &heard);
    let rate = errors as f64 / reference.len() as f64;
    println!("{law:?}: {errors} word errors in {} digits (WER {:.1} %): {}", reference.len(), rate * 100.0, heard.join(" "));
    // Every final lies inside the audio, in order.
    let total = Duration::from_secs_f64(audio.len() as f64 / 8000.0);
    for pair in finals.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{pair:?}");
    }
    assert!(finals.iter().all(|t| t.start < t.end && t.end <= total && t.end_of_turn));
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_voices_of_spoken_digits_after_g711_with_a_digit_vocabulary() {
    // A digit-collection turn: the vocabulary is the digits.
    let stt = SphinxStt::new(SphinxConfig { phrases: Vec::new(), ..config() }).expect("pocketsphinx installed");
    let keywords: Vec<String> = WORDS.iter().map(|w| (*w).to_owned()).collect();
    for law in [Law::Ulaw, Law::Alaw] {
        let wer = digit_error_rate(&stt, keywords.clone(), law).await;
        // Measured here: 20.0 % for both laws (32 of 40 right; "six" heard as "eight" is
        // most of the rest). The same files one by one, without the stream: 36 of 40.
        assert!(wer <= 0.25, "{law:?}: WER {wer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_voices_of_spoken_digits_among_the_conversational_phrases() {
    // The same digits with the full built-in conversation vocabulary (about 190 words) to
    // confuse them with: single words said without context are where a small language model
    // helps least. Measured here: 62.5 % WER. A turn that asks for digits should restrict the
    // vocabulary, as the test above does.
    let stt = SphinxStt::new(config()).expect("pocketsphinx installed");
    let wer = digit_error_rate(&stt, Vec::new(), Law::Ulaw).await;
    assert!(wer <= 0.70, "WER {wer}");
}

const KNOWLEDGE: &[&str] = &[
    "We are open from nine to five on weekdays.",
    "We are closed on Sunday.",
    "Our address is twelve Market Street.",
    "A haircut costs twenty five dollars.",
    "You can pay by card or cash.",
    "There is free parking behind the shop.",
];

const CALLER: &[&str] = &[
    "what are your opening hours",
    "are you open on sunday",
    "how much does a haircut cost",
    "can i pay by card",
    "is there parking",
    "can i talk to a person",
    "thank you goodbye",
];

/// `text` spoken by espeak-ng (22,050 Hz), resampled to 8 kHz.
fn espeak(text: &str) -> Audio {
    // Into a file: on standard output espeak-ng writes a WAV header without lengths.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("speech.wav");
    let status = std::process::Command::new("espeak-ng").args(["-v", "en-us", "-w"]).arg(&path).arg(text).status().expect("espeak-ng installed");
    assert!(status.success(), "espeak-ng failed");
    let wav = std::fs::read(&path).expect("espeak-ng output");
    Audio::from_wav(&wav).expect("espeak-ng WAV").resampled(8000).expect("resample")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_sentences_after_g711_with_the_assistants_knowledge() {
    let stt = SphinxStt::new(config()).expect("pocketsphinx installed");
    let keywords: Vec<String> = KNOWLEDGE.iter().map(|s| (*s).to_owned()).collect();
    let mut audio = silence(0.5, 8000);
    let mut reference = Vec::new();
    for sentence in CALLER.iter().chain(["we are closed on sunday", "a haircut costs twenty five dollars"].iter()) {
        audio.extend(g711_round_trip(&espeak(sentence).samples, Law::Ulaw));
        audio.extend(silence(0.8, 8000));
        reference.extend(sentence.split(' '));
    }
    let mut session = stt.session(AudioFormat::PCM_8K, &SttOptions { keywords, ..SttOptions::default() }).expect("session");
    let finals = transcribe(&mut session, &audio, 8000).await;
    let heard: Vec<&str> = finals.iter().flat_map(|t| t.text.split(' ')).collect();
    let errors = word_errors(&reference, &heard);
    let wer = errors as f64 / reference.len() as f64;
    println!("espeak-ng, µ-law: {errors} word errors in {} words (WER {:.1} %)", reference.len(), wer * 100.0);
    for t in &finals {
        println!("  {:>6.2}-{:>6.2} s  {}", t.start.as_secs_f64(), t.end.as_secs_f64(), t.text);
    }
    // Measured here: 22.7 % (10 errors in 44 words).
    assert!(wer <= 0.30, "WER {wer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wideband_audio_is_taken_as_is() {
    // A real 16 kHz voice (the inaugural address excerpt), with its sentence as the vocabulary.
    let stt = SphinxStt::new(config()).expect("pocketsphinx installed");
    let said = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";
    let mut audio = happ_fixtures::jfk().samples;
    audio.extend(silence(0.6, 16000));
    let mut session = stt.session(AudioFormat::PCM_16K, &SttOptions { keywords: vec![said.to_owned()], ..SttOptions::default() }).expect("session");
    let finals = transcribe(&mut session, &audio, 16000).await;
    let heard: Vec<&str> = finals.iter().flat_map(|t| t.text.split(' ')).collect();
    let reference: Vec<&str> = said.split(' ').collect();
    let errors = word_errors(&reference, &heard);
    println!("16 kHz: {errors} word errors in {} words: {}", reference.len(), heard.join(" "));
    // Measured here: 6 errors in 22 words, all in the first phrase, before the recogniser's
    // cepstral mean has adapted to the recording.
    assert!(errors * 100 <= reference.len() * 35, "{errors} errors: {heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_speech_latency_is_reported() {
    let stt = SphinxStt::new(config()).expect("pocketsphinx installed");
    let mut session = stt.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("session");
    let speech = espeak("yes please");
    let mut audio = silence(0.3, 8000);
    audio.extend(&speech.samples);
    for frame in audio.chunks(160) {
        session.push(Frame::Pcm(frame)).expect("push");
    }
    session.end_of_speech();
    // The silence after the turn, paced like a call, until the recogniser closes the utterance.
    let quiet = silence(0.02, 8000);
    let t = loop {
        session.push(Frame::Pcm(&quiet)).expect("push");
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(20), session.next_event()).await {
            match event {
                Some(Ok(SttEvent::Final(t))) => break t,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    assert_eq!(t.text, "yes please");
    session.finish();
    let latency = loop {
        match session.next_event().await {
            Some(Ok(SttEvent::Done(latency))) => break latency,
            Some(Ok(SttEvent::Final(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let after = latency.final_after_end_of_speech.expect("latency measured");
    println!("final {after:?} after the end of speech");
    assert_eq!(latency.first_partial, None, "the local recogniser gives no partials");
    assert!(session.next_event().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_recogniser() {
    let stt = SphinxStt::new(config()).expect("pocketsphinx installed");
    let mut session = stt.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("session");
    let pid = session.pid().expect("pid");
    session.push(Frame::Pcm(&silence(0.5, 8000))).expect("push");
    session.cancel();
    assert!(matches!(session.next_event().await, Some(Err(Error::Cancelled))));
    assert!(session.next_event().await.is_none());
    assert!(matches!(session.push(Frame::Pcm(&[0; 160])), Err(Error::Cancelled)));
    // The process is killed: gone, or a zombie until the runtime reaps it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| s.rsplit(')').next().map(|r| r.trim().chars().next()));
        if matches!(state, None | Some(Some('Z'))) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "recogniser {pid} still running: {state:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recogniser_that_dies_is_a_closed_stream() {
    // `false` takes the arguments and exits with an error at once, like a crash at start-up.
    let stt = SphinxStt::new(SphinxConfig { program: "false".into(), ..config() }).expect("false is on PATH");
    let mut session = stt.session(AudioFormat::PCM_8K, &SttOptions::default()).expect("session");
    let event = tokio::time::timeout(Duration::from_secs(10), session.next_event()).await.expect("no hang");
    match event {
        Some(Err(e @ Error::Closed { .. })) => assert!(e.is_retryable() && e.to_string().contains("exited"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(session.next_event().await.is_none());
}

#[test]
fn missing_parts_are_named() {
    let e = SphinxStt::new(SphinxConfig { program: "no-such-recogniser".into(), ..config() }).expect_err("missing program");
    assert!(e.to_string().contains("no-such-recogniser not found"), "{e}");
    let e = SphinxStt::new(SphinxConfig { model_dir: "/nonexistent".into(), ..config() }).expect_err("missing model");
    assert!(e.to_string().contains("pocketsphinx-en-us"), "{e}");
    let e = SphinxStt::new(SphinxConfig { dictionary: "/nonexistent.dict".into(), ..config() }).expect_err("missing dictionary");
    assert!(e.to_string().contains("/nonexistent.dict"), "{e}");
    let stt = SphinxStt::new(config()).expect("installed");
    assert!(matches!(stt.session(AudioFormat::MULAW_8K, &SttOptions::default()), Err(Error::Config { .. })));
}
