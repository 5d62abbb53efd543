//! `happ-gateway demo`: a real SIP call on loopback, from an internal caller to a gateway
//! started for it, printed live and recorded.
//!
//! 1. The caller's lines are synthesised with espeak-ng (8 kHz).
//! 2. A gateway configuration is written: loopback SIP, RTP and control API on free ports, one
//!    trunk phone whose `telephonyUrl` is the caller's SIP address, answered by [`HANDLER`] and
//!    linked to the sample assistant (or the first assistant of `--config`).
//! 3. `happ-gateway run` starts on it as a child process (its log in `<out>/gateway.log`), and
//!    the demo waits for `/readyz`.
//! 4. The caller ([`caller`]) places the call and speaks line by line, each after the gateway's
//!    answer; every turn is printed as it happens, with the gateway's own transcript
//!    (`GET /calls/{id}`) when it keeps one.
//! 5. `<out>/transcript.txt` and `<out>/call.wav` are written and the gateway is stopped.

pub mod caller;
pub mod gateway;
pub mod recording;
pub mod sample;
pub mod script;
pub mod turns;

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use happ_speech::local::{EspeakConfig, EspeakTts};
use happ_speech::{AudioFormat, TtsOptions};
use tokio::sync::mpsc;

use caller::{Line, Progress};
use gateway::{Addresses, Assistant, CallInfo, Control, Gateway, TranscriptEntry};

/// What answers the demo phone: `echo` sends the caller's audio back; `assistant` is the call
/// bridge to the linked assistant. The one switch between the two.
pub const HANDLER: &str = "assistant";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// A configuration whose first assistant (and `[speech]`) answers.
    pub config: Option<PathBuf>,
    /// The caller's script, one line per turn.
    pub caller: Option<PathBuf>,
    /// Where the transcript, the recording and the gateway's log go.
    pub out: PathBuf,
}

/// Who spoke a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The internal caller.
    Caller,
    /// The gateway.
    Assistant,
}

/// One line of the transcript file.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    /// Since the answer.
    pub at: Duration,
    /// Who.
    pub role: Role,
    /// What.
    pub text: String,
}

/// Runs the demo.
pub fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let script = match &options.caller {
        Some(path) => script::load(path)?,
        None => script::built_in(),
    };
    let assistant = match &options.config {
        Some(path) => Assistant::from_file(path)?,
        None => Assistant::sample(),
    };
    std::fs::create_dir_all(&options.out).map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    let seed = seed();
    let token = format!("{:016x}{:016x}", seed, seed.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| format!("tokio runtime: {e}"))?;

    println!("happ-gateway demo: {} ({}), answered by the {HANDLER} handler", assistant.name(), assistant.source);
    let lines = runtime.block_on(synthesize(&script))?;
    let loopback = std::net::IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (sip, rtp, rtcp) = runtime.block_on(async {
        let sip = tokio::net::UdpSocket::bind((loopback, 0)).await.map_err(|e| format!("caller SIP socket: {e}"))?;
        let (rtp, rtcp) = caller::bind_rtp_pair(loopback, seed).await?;
        Ok::<_, String>((sip, rtp, rtcp))
    })?;
    let caller_sip = sip.local_addr().map_err(|e| e.to_string())?;
    let addresses = Addresses::pick(caller_sip, seed)?;
    let config = gateway::config_text(&assistant, HANDLER, &addresses, &token)?;
    let log = options.out.join("gateway.log");
    let mut gateway = Gateway::start(&config, &log, seed)?;
    let control = Control::new(addresses.control, &token)?;
    println!("gateway: SIP {}, control API http://{}, log {}", addresses.sip, addresses.control, log.display());

    let expect_greeting = HANDLER == "assistant" && !assistant.first_message().trim().is_empty();
    let setup = caller::Setup { sip, rtp, rtcp, gateway: addresses.sip, number: gateway::NUMBER.into(), lines, expect_greeting, seed };
    let result = runtime.block_on(async {
        gateway.wait_ready(&control).await?;
        converse(setup, &control, &script, &options.out).await
    });
    let result = result.map_err(|e| if e.contains("the gateway's log") { e } else { format!("{e}\n{}", gateway.log_tail(10)) });
    let stopped = gateway.stop();
    drop(runtime);
    result?;
    stopped.map_err(|e| format!("{e} (see {})", log.display()))?;
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The call, printed live; then the transcript and the recording.
async fn converse(setup: caller::Setup, control: &Control, script: &[String], out: &Path) -> Result<(), String> {
    println!("calling {} ...", gateway::NUMBER);
    let lines = setup.lines.len();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let call = tokio::spawn(caller::call(setup, tx));
    let mut printer = Printer { control, script, call_id: None, shown: 0, transcript: None, turns: Vec::new(), answers: 0, cut: None };
    while let Some(p) = rx.recv().await {
        printer.show(p).await;
    }
    let outcome = call.await.map_err(|e| format!("the caller failed: {e}"))??;

    // The gateway's final record of the call, when it keeps one (else the last one seen).
    let last = match &printer.call_id {
        Some(id) => control.call(id).await.ok().and_then(|c: CallInfo| c.transcript),
        None => None,
    };
    let transcript = match (last, printer.transcript.take()) {
        (Some(last), Some(seen)) if last.len() < seen.len() => Some(seen),
        (last, seen) => last.or(seen),
    };
    let turns = merge(&printer.turns, transcript.as_deref());
    let transcript_path = out.join("transcript.txt");
    let text: String = turns
        .iter()
        .map(|t| {
            let who = match t.role {
                Role::Caller => "caller",
                Role::Assistant => "assistant",
            };
            format!("{who}: {}\n", t.text)
        })
        .collect();
    std::fs::write(&transcript_path, text).map_err(|e| format!("cannot write {}: {e}", transcript_path.display()))?;
    if outcome.recording.is_empty() {
        return Err("no audio was sent or received on the call".into());
    }
    let wav = out.join("call.wav");
    outcome.recording.write_wav(&wav)?;
    println!("transcript: {}", transcript_path.display());
    println!("recording:  {} (stereo, 8 kHz: caller left, gateway right)", wav.display());
    if outcome.cut_short {
        return Err(format!(
            "the gateway hung up after {} of {lines} lines{}",
            outcome.lines_spoken,
            printer.cut.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    if printer.answers == 0 {
        return Err("the gateway never answered: no voice came back on the call".into());
    }
    Ok(())
}

/// Prints the call as it goes, and keeps its turns.
struct Printer<'a> {
    control: &'a Control,
    script: &'a [String],
    call_id: Option<String>,
    /// Entries of the gateway's transcript already printed.
    shown: usize,
    /// The gateway's transcript as last read.
    transcript: Option<Vec<TranscriptEntry>>,
    turns: Vec<Turn>,
    answers: usize,
    cut: Option<String>,
}

impl Printer<'_> {
    async fn show(&mut self, progress: Progress) {
        match progress {
            Progress::Ringing => {}
            Progress::Answered { sip_call_id, codec } => {
                self.call_id = self.control.find_call(&sip_call_id).await.ok();
                let id = self.call_id.as_deref().map(|id| format!(", call {id}")).unwrap_or_default();
                say(&format!("{} answered ({codec}{id})", stamp(Duration::ZERO)));
            }
            Progress::Line { index, at } => {
                let text = self.script.get(index).cloned().unwrap_or_default();
                say(&format!("{} caller: {text}", stamp(at)));
                self.turns.push(Turn { at, role: Role::Caller, text });
            }
            Progress::Answer { at, duration, latency, .. } => {
                self.answers += 1;
                let wire = match latency {
                    Some(l) => format!("latency {} ms on the wire", l.as_millis()),
                    None if self.turns.iter().any(|t| t.role == Role::Caller) => "began while the caller spoke".into(),
                    None => "greeting".into(),
                };
                let text = format!("(audio, {:.1} s)", duration.as_secs_f64());
                if !self.show_transcript(&wire).await {
                    say(&format!("{} assistant: {text}  [{wire}]", stamp(at)));
                }
                self.turns.push(Turn { at, role: Role::Assistant, text });
            }
            Progress::NoAnswer { after } => {
                let what = if after.is_some() { "no answer" } else { "no greeting" };
                say(&format!("{:>11} ({what} within {} s)", "", turns::TurnConfig::default().answer_start.as_secs()));
            }
            Progress::GatewayHungUp { reason } => {
                say(&format!("{:>11} the gateway hung up: {reason}", ""));
                self.cut = Some(reason);
            }
            Progress::HungUp => say(&format!("{:>11} the caller hung up", "")),
        }
    }

    /// Prints the gateway's transcript entries not printed yet; whether it keeps a transcript.
    async fn show_transcript(&mut self, wire: &str) -> bool {
        let Some(id) = &self.call_id else { return false };
        let Ok(Some(entries)) = self.control.call(id).await.map(|c| c.transcript) else { return false };
        let mut first = true;
        for e in entries.iter().skip(self.shown) {
            if e.role == "assistant" {
                let mut notes = vec![];
                if first {
                    notes.push(wire.to_owned());
                    first = false;
                }
                if let Some(ms) = e.latency_ms {
                    notes.push(format!("gateway {ms:.0} ms"));
                }
                if e.interrupted {
                    notes.push("interrupted".into());
                }
                say(&format!("{} assistant: {}  [{}]", stamp(Duration::from_secs_f64(e.at.max(0.0))), e.text, notes.join("; ")));
            } else {
                say(&format!("{:>11} heard: {}", "", e.text));
            }
        }
        self.shown = self.shown.max(entries.len());
        self.transcript = Some(entries);
        true
    }
}

/// The transcript's turns: the caller's lines as spoken, and the gateway's turns from its own
/// transcript when it keeps one with assistant turns, else as heard; in time order.
pub fn merge(heard: &[Turn], gateway: Option<&[TranscriptEntry]>) -> Vec<Turn> {
    let said: Vec<Turn> = gateway
        .unwrap_or_default()
        .iter()
        .filter(|e| e.role == "assistant")
        .map(|e| Turn { at: Duration::from_secs_f64(e.at.max(0.0)), role: Role::Assistant, text: e.text.clone() })
        .collect();
    let mut turns: Vec<Turn> = if said.is_empty() { heard.to_vec() } else { heard.iter().filter(|t| t.role == Role::Caller).cloned().chain(said).collect() };
    // Stable: a caller's line and an answer at the same instant keep the caller first.
    turns.sort_by_key(|t| (t.at, t.role == Role::Assistant));
    turns
}

fn stamp(at: Duration) -> String {
    format!("[{:>6.2} s]", at.as_secs_f64())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Each line of the script as 8 kHz speech, from espeak-ng.
async fn synthesize(script: &[String]) -> Result<Vec<Line>, String> {
    let config = EspeakConfig { words_per_minute: 170, pitch: 40, ..EspeakConfig::default() };
    let tts = EspeakTts::new(config).map_err(|e| format!("the caller's voice: {e}"))?;
    let mut lines = Vec::with_capacity(script.len());
    for text in script {
        let (pcm, _) = crate::speech::synthesise(&tts, AudioFormat::PCM_8K, &TtsOptions::default(), std::slice::from_ref(text))
            .await
            .map_err(|e| format!("{e} (saying {text:?})"))?;
        if pcm.is_empty() {
            return Err(format!("espeak-ng said nothing for {text:?}"));
        }
        lines.push(Line { pcm });
    }
    Ok(lines)
}

/// A random seed from the OS (the clock and pid without one).
fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(ms: u64, role: Role, text: &str) -> Turn {
        Turn { at: Duration::from_millis(ms), role, text: text.into() }
    }

    fn entry(role: &str, text: &str, at: f64) -> TranscriptEntry {
        TranscriptEntry { role: role.into(), text: text.into(), at, interrupted: false, latency_ms: None }
    }

    #[test]
    fn without_a_gateway_transcript_the_heard_turns_stay() {
        let heard = [turn(500, Role::Caller, "Hi"), turn(540, Role::Assistant, "(audio, 1.0 s)"), turn(2500, Role::Caller, "Bye")];
        assert_eq!(merge(&heard, None), heard);
        assert_eq!(merge(&heard, Some(&[entry("caller", "hi", 1.0)])), heard);
    }

    #[test]
    fn the_gateway_transcript_gives_the_assistant_text_in_time_order() {
        let heard = [
            turn(2000, Role::Caller, "What are your hours?"),
            turn(4000, Role::Assistant, "(audio, 2.0 s)"),
            turn(7000, Role::Caller, "Goodbye."),
            turn(8500, Role::Assistant, "(audio, 1.0 s)"),
        ];
        let gateway = [
            entry("assistant", "Hello!", 0.3),
            entry("caller", "what are your hours", 3.1),
            entry("assistant", "Nine to five.", 3.9),
            entry("caller", "goodbye", 7.9),
            entry("assistant", "Bye!", 8.4),
        ];
        let merged: Vec<(Role, String)> = merge(&heard, Some(&gateway)).into_iter().map(|t| (t.role, t.text)).collect();
        let want = [
            (Role::Assistant, "Hello!"),
            (Role::Caller, "What are your hours?"),
            (Role::Assistant, "Nine to five."),
            (Role::Caller, "Goodbye."),
            (Role::Assistant, "Bye!"),
        ];
        assert_eq!(merged, want.map(|(r, t)| (r, t.to_owned())));
    }
}
