//! `happ-gateway speech {tts,stt,chat}`: try the configured speech and LLM providers from the
//! shell (credentials, audio, latency) before taking calls. Without `--config` they use the local
//! offline engines.

use std::path::Path;
use std::time::{Duration, Instant};

use happ_fixtures::Audio;
use happ_media::Law;
use happ_speech::{AudioFormat, ChatRequest, Encoding, Frame, LlmEvent, Message, SttEvent, SttOptions, TtsOptions, negotiate};

use crate::cli::{SpeechArgs, SpeechCommand};
use crate::config::{AssistantConfig, Config, SpeechConfig};
use crate::speech;

/// Runs a `speech` subcommand.
pub fn run(args: &SpeechArgs) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => Some(Config::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let speech_config = config.as_ref().map(|c| c.speech.clone()).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        match &args.command {
            SpeechCommand::Tts { text, out, voice } => tts(&speech_config, text, out, voice.as_deref()).await,
            SpeechCommand::Stt { input, fast, keywords } => stt(&speech_config, input, *fast, keywords).await,
            SpeechCommand::Chat { assistant, text } => chat(config.as_ref(), &speech_config, assistant.as_deref(), text).await,
        }
    })
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
}

async fn tts(config: &SpeechConfig, text: &str, out: &Path, voice: Option<&str>) -> Result<(), String> {
    let provider = speech::tts(config)?;
    // What a call would ask for: 8 kHz G.711 when the provider makes it, else its nearest.
    let format = negotiate(AudioFormat::MULAW_8K, provider.formats()).ok_or("the provider declares no format")?.format;
    let options = TtsOptions { voice: voice.map(str::to_owned), ..TtsOptions::default() };
    // Sentence by sentence, as the bridge feeds it from the LLM.
    let (samples, latency) = speech::synthesise(&*provider, format, &options, &happ_call::text::sentences(text)).await?;
    write_wav(out, &samples, format.sample_rate)?;
    let seconds = samples.len() as f64 / f64::from(format.sample_rate);
    println!(
        "{}: {:.2} s of audio ({:?} {} Hz) in {}; first audio after {}; real-time factor {:.3}; written to {}",
        provider.name(),
        seconds,
        format.encoding,
        format.sample_rate,
        millis(Some(latency.total)),
        millis(latency.first_audio),
        latency.total.as_secs_f64() / seconds.max(1e-9),
        out.display()
    );
    Ok(())
}

fn write_wav(path: &Path, samples: &[i16], rate: u32) -> Result<(), String> {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for &s in samples {
        w.write_sample(s).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    w.finalize().map_err(|e| format!("{}: {e}", path.display()))
}

async fn stt(config: &SpeechConfig, input: &Path, fast: bool, keywords: &[String]) -> Result<(), String> {
    let provider = speech::stt(config)?;
    let wav = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let audio = Audio::from_wav(&wav).map_err(|e| format!("{}: {e}", input.display()))?;
    let call = AudioFormat { encoding: Encoding::Pcm16, sample_rate: audio.rate };
    let format = negotiate(call, provider.formats()).ok_or("the provider declares no format")?.format;
    let audio = audio.resampled(format.sample_rate).map_err(|e| format!("{}: {e}", input.display()))?;
    let options = SttOptions { keywords: keywords.to_vec(), ..SttOptions::default() };
    let mut session = provider.start(format, &options).map_err(|e| format!("{}: {e}", provider.name()))?;
    let frame = format.sample_rate as usize / 50;
    let started = Instant::now();
    let mut coded = vec![0u8; frame];
    let print = |event: &SttEvent, started: Instant| match event {
        SttEvent::Partial(t) => {
            println!("{:>7.0} ms  partial  [{:.2}-{:.2} s] {}", started.elapsed().as_secs_f64() * 1e3, t.start.as_secs_f64(), t.end.as_secs_f64(), t.text)
        }
        SttEvent::Final(t) => println!(
            "{:>7.0} ms  final    [{:.2}-{:.2} s] {}{}",
            started.elapsed().as_secs_f64() * 1e3,
            t.start.as_secs_f64(),
            t.end.as_secs_f64(),
            t.text,
            if t.end_of_turn { "  (end of turn)" } else { "" }
        ),
        SttEvent::Done(_) => {}
    };
    let mut transcript = Vec::new();
    for (i, chunk) in audio.samples.chunks(frame).enumerate() {
        let pushed = match format.encoding {
            Encoding::Pcm16 => session.push(Frame::Pcm(chunk)),
            Encoding::Mulaw | Encoding::Alaw => {
                let law = if format.encoding == Encoding::Mulaw { Law::Ulaw } else { Law::Alaw };
                let n = law.encode(chunk, &mut coded);
                session.push(Frame::G711(&coded[..n]))
            }
        };
        pushed.map_err(|e| format!("{}: {e}", provider.name()))?;
        if !fast {
            // Paced like a call, so latencies mean what they will mean on the phone.
            tokio::time::sleep_until((started + Duration::from_millis(20 * (i as u64 + 1))).into()).await;
        }
        // Events that are ready now, without waiting.
        while let Some(event) = futures_now(&mut *session) {
            let event = event.map_err(|e| format!("{}: {e}", provider.name()))?;
            print(&event, started);
            if let SttEvent::Final(t) = event {
                transcript.push(t.text);
            }
        }
    }
    session.end_of_speech();
    session.finish();
    let latency = loop {
        match session.next_event().await {
            Some(Ok(SttEvent::Done(latency))) => break latency,
            Some(Ok(event)) => {
                print(&event, started);
                if let SttEvent::Final(t) = event {
                    transcript.push(t.text);
                }
            }
            Some(Err(e)) => return Err(format!("{}: {e}", provider.name())),
            None => return Err(format!("{}: the session ended without finishing", provider.name())),
        }
    };
    println!(
        "{}: {:?} {} Hz; first partial after {}; final {} after the end of the audio",
        provider.name(),
        format.encoding,
        format.sample_rate,
        millis(latency.first_partial),
        millis(latency.final_after_end_of_speech)
    );
    println!("transcript: {}", transcript.join(" "));
    Ok(())
}

/// The session's next event if one is ready, without waiting.
fn futures_now(session: &mut dyn happ_speech::SttSession) -> Option<Result<SttEvent, happ_speech::Error>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match session.poll_event(&mut cx) {
        std::task::Poll::Ready(event) => event,
        std::task::Poll::Pending => None,
    }
}

async fn chat(config: Option<&Config>, speech_config: &SpeechConfig, assistant: Option<&str>, text: &str) -> Result<(), String> {
    let assistant = find_assistant(config, assistant).await?;
    let (provider, model) = speech::llm(speech_config, &assistant)?;
    let mut messages = Vec::new();
    if !assistant.prompt_text.is_empty() {
        messages.push(Message::System(assistant.prompt_text.clone()));
    }
    if !assistant.first_message.is_empty() {
        messages.push(Message::Assistant { content: assistant.first_message.clone(), tool_calls: Vec::new() });
    }
    messages.push(Message::User(text.to_owned()));
    let mut request = ChatRequest::new(model, messages);
    request.tools = speech::builtin_tools();
    let mut stream = provider.chat(request).map_err(|e| format!("{}: {e}", provider.name()))?;
    let mut printed = false;
    loop {
        match stream.next_event().await {
            Some(Ok(LlmEvent::Text(t))) => {
                print!("{t}");
                printed = true;
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
            }
            Some(Ok(LlmEvent::ToolCall(call))) => {
                if printed {
                    println!();
                    printed = false;
                }
                println!("tool call: {}({})", call.name, call.arguments);
            }
            Some(Ok(LlmEvent::Done(summary))) => {
                if printed {
                    println!();
                }
                println!(
                    "{}: finish {:?}; first token after {}; total {}",
                    provider.name(),
                    summary.finish,
                    millis(summary.latency.first_token),
                    millis(Some(summary.latency.total))
                );
                return Ok(());
            }
            Some(Err(e)) => return Err(format!("{}: {e}", provider.name())),
            None => return Err(format!("{}: the stream ended without finishing", provider.name())),
        }
    }
}

/// The assistant `id` from the configuration file, else from the platform (`[happ]`). Without a
/// configuration: a local assistant with no knowledge, unless `id` names one.
async fn find_assistant(config: Option<&Config>, id: Option<&str>) -> Result<AssistantConfig, String> {
    let Some(config) = config else {
        return match id {
            None => Ok(AssistantConfig { id: "local".into(), ..AssistantConfig::default() }),
            Some(id) => Err(format!("assistant {id}: give --config with [[assistants]] or [happ] to find it")),
        };
    };
    let id = match id {
        Some(id) => id,
        None if config.assistants.len() == 1 => &config.assistants[0].id,
        None => return Err("--assistant: which one? the configuration has several or none".into()),
    };
    if let Some(a) = config.assistants.iter().find(|a| a.id == id) {
        return Ok(a.clone());
    }
    let Some(happ) = &config.happ else {
        return Err(format!("assistant {id}: not in the configuration's [[assistants]], and there is no [happ] to ask"));
    };
    let client = crate::platform::client(happ)?;
    let assistant_id = id.to_owned().into();
    let assistant = client.assistant(&assistant_id).await.map_err(|e| format!("assistant {id} from the platform: {e}"))?;
    let knowledge = client.knowledge(&assistant_id).await.map_err(|e| format!("knowledge of assistant {id} from the platform: {e}"))?;
    Ok(crate::platform::assistant_config(&assistant, &knowledge))
}
