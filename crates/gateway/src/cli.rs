//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// happ-gateway: puts Happ AI assistants on the phone network over SIP.
#[derive(Debug, Parser)]
#[command(name = "happ-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGTERM or SIGINT (calls drain, phones unregister).
    Run(ConfigArg),
    /// Validate a configuration and show the phones, their registrars and assistants.
    Check(ConfigArg),
    /// A real SIP call on loopback: an internal caller talks to a gateway started for it; the
    /// conversation is printed, and a transcript and a stereo recording are written.
    Demo(DemoArgs),
    /// Ask a running gateway to place a call, and report how it went.
    Dial(DialArgs),
    /// G.711 conversion like sox: 16-bit little-endian PCM <-> G.711 bytes, stdin to stdout.
    Codec(CodecArgs),
    /// Built-in benchmarks on the speech fixtures; `--json` prints one JSON object.
    Bench(BenchArgs),
    /// Try a speech or LLM provider: synthesize to a WAV, transcribe a WAV, or chat with an
    /// assistant, with latencies. Without --config, the local offline engines.
    Speech(SpeechArgs),
}

#[derive(Debug, Args)]
pub struct SpeechArgs {
    /// The configuration whose `[speech]` providers and assistants to use.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SpeechCommand,
}

#[derive(Debug, Subcommand)]
pub enum SpeechCommand {
    /// Synthesize text (sentence by sentence, as calls do) into a 16-bit WAV.
    Tts {
        /// What to say.
        #[arg(long)]
        text: String,
        /// The WAV file to write.
        #[arg(long)]
        out: PathBuf,
        /// The provider's voice (its default when absent).
        #[arg(long)]
        voice: Option<String>,
    },
    /// Transcribe a WAV file, streamed in 20 ms frames like call audio; prints partials and
    /// finals with their timings.
    Stt {
        /// The 16-bit PCM WAV file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Push the audio as fast as the provider takes it instead of in real time.
        #[arg(long)]
        fast: bool,
        /// Words and phrases to favour (repeatable).
        #[arg(long = "keyword")]
        keywords: Vec<String>,
    },
    /// Ask an assistant one question; prints the streamed answer and any tool calls.
    Chat {
        /// The assistant's id (from the configuration or the platform).
        #[arg(long)]
        assistant: Option<String>,
        /// What the caller says.
        #[arg(long)]
        text: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file (TOML; see config/gateway.example.toml).
    #[arg(long, short)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A configuration whose first [[assistants]] entry (with its knowledge) and [speech]
    /// answer the call, instead of the built-in sample bakery.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// What the caller says: one line per turn (blank lines and # comments skipped), instead of
    /// the built-in questions.
    #[arg(long)]
    pub caller: Option<PathBuf>,
    /// Where transcript.txt, call.wav and gateway.log are written.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DialArgs {
    /// The number to call.
    #[arg(long)]
    pub to: String,
    /// The phone to call from (its number or SIP login).
    #[arg(long)]
    pub phone: String,
    /// The assistant to use instead of the phone's.
    #[arg(long)]
    pub assistant: Option<String>,
    /// The gateway's configuration, to find its control API and token.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The control API's URL (default: from --config).
    #[arg(long)]
    pub control: Option<String>,
    /// The control token (default: $GATEWAY_CONTROL_TOKEN, then --config).
    #[arg(long)]
    pub token: Option<String>,
    /// Return once the call is placed, without waiting for the answer.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the answer, seconds.
    #[arg(long, default_value_t = 90)]
    pub wait_secs: u64,
}

#[derive(Debug, Args)]
pub struct CodecArgs {
    /// Encode PCM to G.711, or decode G.711 to PCM.
    #[arg(value_enum)]
    pub direction: CodecDirection,
    /// The G.711 law.
    #[arg(long, value_enum)]
    pub law: LawArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CodecDirection {
    /// 16-bit little-endian PCM in, G.711 out.
    Encode,
    /// G.711 in, 16-bit little-endian PCM out.
    Decode,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LawArg {
    /// A-law (PCMA).
    Alaw,
    /// µ-law (PCMU).
    Ulaw,
}

impl From<LawArg> for happ_media::Law {
    fn from(l: LawArg) -> Self {
        match l {
            LawArg::Alaw => happ_media::Law::Alaw,
            LawArg::Ulaw => happ_media::Law::Ulaw,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub which: Bench,
    /// Print one JSON object on stdout instead of a report.
    #[arg(long)]
    pub json: bool,
    /// Runs of each measurement; the best is reported.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub runs: u64,
    /// Seconds of simulated call per run (jitter and pipeline; default 60), or of steady calls
    /// per level (turn; default 20).
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Bench {
    /// G.711 encode and decode, ns per sample.
    Codec,
    /// The jitter buffer on seeded network traces: cost, late loss, delay.
    Jitter,
    /// The whole media session of a call, both ways with 16 kHz resampling: CPU per call-second.
    Pipeline,
    /// Voice activity detection: CPU per call-second, accuracy on labelled speech in noise.
    Vad,
    /// The gateway's share of voice-to-voice latency on real RTP calls with zero-delay
    /// providers, at 1, 100 and 500 concurrent calls; CPU per conversational call-second.
    Turn,
}
