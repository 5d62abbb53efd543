//! `happ-gateway speech {tts,stt,chat}` run as an operator would, on the local offline engines
//! (espeak-ng, pocketsphinx, the knowledge answerer) and with configuration errors.

use std::process::{Command, Output};

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_happ-gateway")).args(args).env_remove("DEEPGRAM_API_KEY").output().expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn tts_then_stt_round_trip_on_the_local_engines() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let wav = dir.path().join("hello.wav");
    let wav = wav.to_str().expect("utf-8 path");
    let o = gateway(&["speech", "tts", "--text", "Thank you. Goodbye.", "--out", wav]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).starts_with("espeak-ng: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("first audio after"), "{}", stdout(&o));
    let reader = hound::WavReader::open(wav).expect("a WAV");
    assert_eq!(reader.spec().sample_rate, 8000);
    assert!(reader.duration() > 4000, "at least half a second of speech");

    let o = gateway(&["speech", "stt", "--in", wav, "--fast", "--keyword", "thank you goodbye"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("final") && out.contains("transcript: "), "{out}");
    assert!(out.contains("goodbye"), "{out}");
}

#[test]
fn chat_answers_from_the_assistants_knowledge() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        r#"
[[assistants]]
id = "shop"
llmProvider = "local"
[[assistants.knowledge]]
name = "Opening hours"
resourceContent = "We are open from nine to five on weekdays. On Saturdays we open at ten."
[[assistants.knowledge]]
name = "Address"
resourceContent = "The shop is at 12 Market Street, next to the station."
"#,
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let o = gateway(&["speech", "chat", "--config", config, "--assistant", "shop", "--text", "When do you open on Saturday?"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("open at ten"), "{}", stdout(&o));
    let o = gateway(&["speech", "chat", "--config", config, "--text", "Can I speak to a person?"]);
    assert!(stdout(&o).contains("tool call: turnOffAiMode("), "{}", stdout(&o));
    let o = gateway(&["speech", "chat", "--config", config, "--assistant", "nobody", "--text", "hi"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("assistant nobody"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn configuration_errors_name_the_setting() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[speech]\nstt = \"deepgram\"\ntts = \"nonsense\"\n").expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let wav = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/speech/fsdd/3_theo_0.wav");
    let o = gateway(&["speech", "stt", "--config", config, "--in", wav]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("speech.deepgram.api_key"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = gateway(&["speech", "tts", "--config", config, "--text", "hi", "--out", "/dev/null"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown provider \"nonsense\""), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(dir.path().join("gateway.toml"), "[speech]\ntts = \"elevenlabs\"\n[speech.elevenlabs]\napi_key = \"xi-test\"\n").expect("write config");
    let o = gateway(&["speech", "tts", "--config", config, "--text", "hi", "--out", "/dev/null"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("speech.elevenlabs.voice_id: not set"), "{}", String::from_utf8_lossy(&o.stderr));
}
