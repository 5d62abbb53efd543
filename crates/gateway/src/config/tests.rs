use std::path::Path;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "GATEWAY_CONTROL_TOKEN" => Some("t0ken".into()),
        "PHONE_1001_PASSWORD" => Some("pw\"1".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_text(Path::new("test.toml"), text, env)
}

const MINIMAL: &str = r#"
[[phones]]
phoneNumber = "+380501234567"
sipLogin = "1001"
telephonyUrl = "127.0.0.1:5080"
handler = "echo"
"#;

#[test]
fn the_example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/gateway.example.toml");
    let text = std::fs::read_to_string(&path).expect("example file");
    let c = Config::from_text(&path, &text, env).expect("the example is valid");
    assert_eq!(c.sip.listen.to_string(), "0.0.0.0:5060");
    assert_eq!(c.control.as_ref().map(|c| c.token.expose()), Some("t0ken"));
    assert_eq!(c.phones[0].password.expose(), "pw\"1", "secrets with quotes survive expansion");
    assert_eq!(c.rtp.ports(), Ok((20_000, 29_999)));
    assert_eq!(c.rtp.capacity(), 5_000);
    assert_eq!(c.assistants[0].first_message, "Hello! How can I help?");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn defaults() {
    let c = load(MINIMAL).expect("valid");
    assert_eq!(c.sip.registration_expires, 300);
    assert_eq!(c.calls.max_concurrent, 100);
    assert!(c.phones[0].register);
    assert_eq!(c.phones[0].codec, "alaw");
    assert_eq!(Handler::parse(&c.phones[0].handler), Ok(Handler::Echo));
}

fn invalid(text: &str) -> (String, String) {
    match load(text) {
        Err(ConfigError::Invalid { key, message, .. }) => (key, message),
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn errors_name_the_key() {
    let (key, msg) = invalid(&MINIMAL.replace("handler = \"echo\"", "handler = \"echo\"\ncodec = \"g729\""));
    assert_eq!(key, "phones[0].codec");
    assert!(msg.contains("g729"));
    let (key, _) = invalid(&MINIMAL.replace("127.0.0.1:5080", "127.0.0.1:5080;transport=tls"));
    assert_eq!(key, "phones[0].telephonyUrl");
    let (key, msg) = invalid(&MINIMAL.replace("handler = \"echo\"", "handler = \"assistant\"\nassistantId = \"nobody\""));
    assert_eq!(key, "phones[0].assistantId");
    assert!(msg.contains("nobody"));
    let (key, msg) = invalid(&MINIMAL.replace("handler = \"echo\"", "handler = \"play:/nonexistent/x.wav\""));
    assert_eq!(key, "phones[0].handler");
    assert!(msg.contains("/nonexistent/x.wav"));
    let (key, _) = invalid(&format!("[rtp]\nport_range = \"30000-20000\"\n{MINIMAL}"));
    assert_eq!(key, "rtp.port_range");
    let (key, msg) = invalid(&format!("{MINIMAL}{}", MINIMAL.replace("1001", "1002")));
    assert_eq!(key, "phones[1].phoneNumber");
    assert!(msg.contains("twice"));
    let (key, _) = invalid(&format!("[control]\nlisten = \"127.0.0.1:8088\"\ntoken = \"\"\n{MINIMAL}"));
    assert_eq!(key, "control.token");
    let (key, msg) = invalid(&format!("[sip]\nsession_expires = 60\n{MINIMAL}"));
    assert_eq!(key, "sip.session_expires");
    assert!(msg.contains("min_session_expires (90)"), "{msg}");
    let (key, _) = invalid(&format!("[sip]\nmin_session_expires = 0\n{MINIMAL}"));
    assert_eq!(key, "sip.min_session_expires");
    assert!(load(&format!("[sip]\nsession_expires = 0\n{MINIMAL}")).is_ok(), "0: no timer of ours");
    let (key, _) = invalid(&format!("[happ]\nbase_url = \"api.happ.tools\"\ntoken = \"t\"\n{MINIMAL}"));
    assert_eq!(key, "happ.base_url");
    let (key, _) = invalid(&format!("[happ]\nbase_url = \"https://api.happ.tools\"\ntoken = \" \"\n{MINIMAL}"));
    assert_eq!(key, "happ.token");
    let (key, _) = invalid(&format!("[happ]\nbase_url = \"https://api.happ.tools\"\ntoken = \"t\"\nsync_secs = 0\n{MINIMAL}"));
    assert_eq!(key, "happ.sync_secs");
}

#[test]
fn unknown_keys_and_bad_types_are_rejected_with_their_line() {
    let err = load(&format!("[sip]\nlisen = \"0.0.0.0:5060\"\n{MINIMAL}")).expect_err("typo");
    let text = err.to_string();
    assert!(text.contains("lisen") && text.contains("line 2"), "{text}");
    let err = load(&MINIMAL.replace("handler = \"echo\"", "handler = \"echo\"\nregister = \"yes\"")).expect_err("type");
    assert!(err.to_string().contains("register") || err.to_string().contains("bool"), "{err}");
}

#[test]
fn unset_environment_variable_is_named() {
    let err = load(&MINIMAL.replace("sipLogin = \"1001\"", "sipLogin = \"1001\"\npassword = \"${MISSING_SECRET}\"")).expect_err("unset");
    assert!(err.to_string().contains("MISSING_SECRET") && err.to_string().contains("line"), "{err}");
}

#[test]
fn a_small_port_range_is_warned_about() {
    let c = load(&format!("[rtp]\nport_range = \"20000-20099\"\n[calls]\nmax_concurrent = 80\n{MINIMAL}")).expect("valid");
    let w = c.warnings();
    assert!(w.iter().any(|w| w.contains("port_range") && w.contains("caps concurrency at 50")), "{w:?}");
}

#[test]
fn play_files_are_checked_and_resolved_against_the_config_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("hello.wav");
    std::fs::write(&wav, happ_fixtures::DIGITS[1][0]).expect("write");
    let path = dir.path().join("gw.toml");
    let c = Config::from_text(&path, &MINIMAL.replace("handler = \"echo\"", "handler = \"play:hello.wav\""), env).expect("valid");
    assert_eq!(Handler::parse(&c.phones[0].handler), Ok(Handler::Play(wav)));
    std::fs::write(dir.path().join("bad.wav"), b"not a wav").expect("write");
    let err = Config::from_text(&path, &MINIMAL.replace("handler = \"echo\"", "handler = \"play:bad.wav\""), env).expect_err("bad wav");
    assert!(err.to_string().contains("bad.wav"), "{err}");
}

#[test]
fn assistants_take_every_field_of_the_platforms_objects() {
    // An assistant and its knowledge exactly as the platform's seed objects have them.
    let text = r#"
[[assistants]]
id = "a1"
name = "Support"
promptText = "Help."
firstMessage = "Hi."
llmProvider = "local"
llmModel = "knowledge"
language = "en"
companyId = "co1"
createdAt = "2026-01-01T00:00:00Z"
updatedAt = "2026-01-02T00:00:00Z"
voice = "en-us"

[[assistants.knowledge]]
id = "k1"
assistantId = "a1"
type = "text"
name = "Hours"
description = "When we are open"
resourceContent = "Open 9 to 6."

[[assistants.knowledge]]
id = "k2"
type = "url"
name = "Site"
resourceContent = "https://example.com"

[assistants.turns]
waitForCaller = true
minEndpointingMs = 700
"#;
    let c = Config::from_text(Path::new("a.toml"), text, env).expect("valid");
    let a = &c.assistants[0];
    assert_eq!((a.knowledge[0].kind.as_str(), a.knowledge[1].kind.as_str()), ("text", "url"));
    assert_eq!(a.knowledge[0].description.as_deref(), Some("When we are open"));
    assert_eq!((a.turns.wait_for_caller, a.turns.min_endpointing_ms), (Some(true), Some(700)));
    assert_eq!(a.voice.as_deref(), Some("en-us"));

    let bad = text.replace("type = \"url\"", "type = \"video\"");
    let e = Config::from_text(Path::new("a.toml"), &bad, env).expect_err("refused").to_string();
    assert!(e.contains("assistants[0].knowledge[1].type") && e.contains("video"), "{e}");
    let bad = text.replace("minEndpointingMs = 700", "minEndpointingMs = 700\nmaxEndpointingMs = 100");
    let e = Config::from_text(Path::new("a.toml"), &bad, env).expect_err("refused").to_string();
    assert!(e.contains("maxEndpointingMs"), "{e}");
    let bad = text.replace("waitForCaller", "waitForCallers");
    assert!(Config::from_text(Path::new("a.toml"), &bad, env).is_err(), "unknown keys are refused");
}

#[test]
fn speech_providers_are_one_or_a_list() {
    let c =
        Config::from_text(Path::new("s.toml"), "[speech]\nstt = \"deepgram\"\ntts = [\"openai\", \"local\"]\nllm_fallback = \"local\"\n", env).expect("valid");
    assert_eq!(c.speech.stt_chain(), ["deepgram"]);
    assert_eq!(c.speech.tts_chain(), ["openai", "local"]);
    assert_eq!(Config::from_text(Path::new("s.toml"), "", env).expect("valid").speech.tts_chain(), ["local"]);
    assert!(Config::from_text(Path::new("s.toml"), "[speech]\ntts = []\n", env).is_err());
}
