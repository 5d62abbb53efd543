//! Offline text-to-speech with the `espeak-ng` program, streamed sentence by sentence.
//!
//! One `espeak-ng --stdout` process runs per stream, without text arguments: in that mode it reads
//! stdin line by line and synthesises each line as soon as it is complete, writing its audio
//! (and flushing it) before reading the next line. Each [`TtsStream::push_text`] becomes one line,
//! so a sentence is spoken while the LLM still writes the next one, with no process start per
//! sentence. [`TtsStream::finish`] closes stdin; espeak-ng speaks what is left and exits, which
//! ends the stream. (`--stdin` would wait for end of input before speaking anything.)
//!
//! espeak-ng writes a WAV header with unknown lengths, then 16-bit mono PCM at 22,050 Hz, the rate
//! of its formant synthesiser, and has no option to change it. The stream reads the rate from the
//! header and resamples to the 16 kHz or 8 kHz asked for with a polyphase windowed-sinc filter.
//!
//! The process is started when the stream is built inside a tokio runtime (else at the first poll),
//! so loading the voice overlaps with the LLM writing its first sentence. [`TtsStream::cancel`]
//! kills it at once (SIGKILL); dropping the stream does the same.
//!
//! # Errors
//!
//! - The program not found: [`Error::Config`] naming it, from [`EspeakTts::new`] (searched on
//!   `PATH`) or when the stream starts it.
//! - An unknown voice: espeak-ng exits with "voice does not exist": [`Error::Config`] naming the
//!   voice, at the first poll.
//! - Any other non-zero exit: [`Error::Unavailable`] with its stderr; output that is not WAV:
//!   [`Error::Protocol`]; no output within `stall_timeout` of new text or of `finish`:
//!   [`Error::Timeout`] with [`TimeoutPhase::Idle`].

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Output, Stdio};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Sleep;

use super::resample::Resampler;
use super::wav::WavReader;
use crate::tts::{AudioChunk, TtsEvent, TtsLatency, TtsOptions, TtsProvider, TtsStream};
use crate::{AudioFormat, Encoding, Error, TimeoutPhase};

/// The formats produced, preferred first. Both are resampled from espeak-ng's 22,050 Hz.
const FORMATS: [AudioFormat; 2] = [AudioFormat::PCM_16K, AudioFormat::PCM_8K];

/// Bytes read from espeak-ng's stdout at once: 93 ms of audio at 22,050 Hz.
const READ_SIZE: usize = 4096;

/// Settings of the espeak-ng provider.
#[derive(Clone, Debug, PartialEq)]
pub struct EspeakConfig {
    /// The program: a name searched on `PATH`, or a path. Default `espeak-ng`.
    pub program: PathBuf,
    /// The voice when a stream's options name none: `en-us`, `en-gb`, `en-us+f3` (a variant), `de`.
    /// `espeak-ng --voices` lists them. Default `en-us`.
    pub voice: String,
    /// Speaking rate in words per minute, 80 to 450. Default 175, espeak-ng's own.
    pub words_per_minute: u32,
    /// Pitch, 0 to 99. Default 50.
    pub pitch: u32,
    /// Limit for espeak-ng to produce audio after new text, or to end after `finish`. Default 5 s;
    /// synthesis normally runs hundreds of times faster than real time.
    pub stall_timeout: Duration,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        Self { program: PathBuf::from("espeak-ng"), voice: "en-us".into(), words_per_minute: 175, pitch: 50, stall_timeout: Duration::from_secs(5) }
    }
}

/// The espeak-ng text-to-speech provider; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct EspeakTts {
    config: EspeakConfig,
    /// `config.program` resolved on `PATH`.
    program: PathBuf,
}

impl EspeakTts {
    /// A provider with `config`. Fails when the program is not found or a setting is out of range.
    pub fn new(config: EspeakConfig) -> Result<Self, Error> {
        if !(80..=450).contains(&config.words_per_minute) {
            return Err(Error::Config { detail: format!("espeak-ng words_per_minute {} is outside 80..=450", config.words_per_minute) });
        }
        if config.pitch > 99 {
            return Err(Error::Config { detail: format!("espeak-ng pitch {} is outside 0..=99", config.pitch) });
        }
        check_voice(&config.voice)?;
        let program = find_program(&config.program)
            .ok_or_else(|| Error::Config { detail: format!("text-to-speech program {:?} not found (install the espeak-ng package)", config.program) })?;
        Ok(Self { config, program })
    }

    /// Starts a stream producing `format`, with its concrete type (for [`EspeakStream::process_id`]).
    pub fn stream(&self, format: AudioFormat, options: &TtsOptions) -> Result<EspeakStream, Error> {
        if !FORMATS.contains(&format) {
            return Err(Error::Config { detail: format!("espeak-ng produces 16 or 8 kHz PCM, not {format:?}") });
        }
        // A named voice wins; else the language, which espeak-ng knows by the same tags (`en-us`,
        // `de`); else the configured voice.
        let voice = options.voice.clone().or_else(|| options.language.as_ref().map(|l| l.to_ascii_lowercase())).unwrap_or_else(|| self.config.voice.clone());
        check_voice(&voice)?;
        let mut command = Command::new(&self.program);
        command
            .args(["--stdout", "-b", "1", "-v", &voice, "-s", &self.config.words_per_minute.to_string(), "-p", &self.config.pitch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut stream = EspeakStream {
            command: Some(command),
            program: self.program.clone(),
            voice,
            format,
            state: State::Running,
            child: None,
            stdin: None,
            stdout: None,
            input: Vec::new(),
            written: 0,
            finishing: false,
            wav: WavReader::new(),
            resampler: None,
            samples: Vec::new(),
            resampled: Vec::new(),
            read_buf: vec![0; READ_SIZE],
            stall_timeout: self.config.stall_timeout,
            stall_at: None,
            deadline: None,
            first_text: None,
            latency: TtsLatency::default(),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            stream.spawn()?;
        }
        Ok(stream)
    }
}

impl TtsProvider for EspeakTts {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn formats(&self) -> &[AudioFormat] {
        &FORMATS
    }

    fn start(&self, format: AudioFormat, options: &TtsOptions) -> Result<Box<dyn TtsStream>, Error> {
        Ok(Box::new(self.stream(format, options)?))
    }
}

type ExitFuture = Pin<Box<dyn Future<Output = io::Result<Output>> + Send>>;

enum State {
    /// The process runs (or is about to start); text goes in, audio comes out.
    Running,
    /// Its stdout ended: waiting for its exit status and stderr.
    Exiting(ExitFuture),
    /// Cancelled; the error is still to be given.
    Cancelled,
    /// Over: everything was given.
    Done,
}

/// A running espeak-ng synthesis; see the [module docs](self).
pub struct EspeakStream {
    /// The command, until the process is started.
    command: Option<Command>,
    program: PathBuf,
    voice: String,
    format: AudioFormat,
    state: State,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    /// Text lines for stdin; `input[written..]` is not written yet.
    input: Vec<u8>,
    written: usize,
    /// `finish` was called: stdin closes once `input` is written.
    finishing: bool,
    wav: WavReader,
    resampler: Option<Resampler>,
    /// Reused buffers: samples at espeak-ng's rate, then at the output rate.
    samples: Vec<i16>,
    resampled: Vec<i16>,
    read_buf: Vec<u8>,
    stall_timeout: Duration,
    /// When espeak-ng must have produced output by, while text or `finish` awaits it.
    stall_at: Option<tokio::time::Instant>,
    deadline: Option<Pin<Box<Sleep>>>,
    first_text: Option<Instant>,
    latency: TtsLatency,
}

impl fmt::Debug for EspeakStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspeakStream").field("voice", &self.voice).field("format", &self.format).field("latency", &self.latency).finish_non_exhaustive()
    }
}

impl EspeakStream {
    /// The next event: `None` once the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<TtsEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The operating-system id of the espeak-ng process while it runs.
    pub fn process_id(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Latency so far.
    pub fn latency(&self) -> TtsLatency {
        self.latency
    }

    /// Starts the process if it is not running yet; must run inside a tokio runtime.
    fn spawn(&mut self) -> Result<(), Error> {
        let Some(mut command) = self.command.take() else { return Ok(()) };
        let mut child = command.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::Config { detail: format!("text-to-speech program {:?} not found (install the espeak-ng package)", self.program) },
            _ => Error::Unavailable { status: None, detail: format!("cannot start {:?}: {e}", self.program) },
        })?;
        self.stdin = child.stdin.take();
        self.stdout = child.stdout.take();
        self.child = Some(child);
        Ok(())
    }

    /// Writes pending text to stdin as far as the pipe takes it, and closes stdin after the last
    /// line once finishing.
    fn write_input(&mut self, cx: &mut Context<'_>) {
        let Some(stdin) = &mut self.stdin else { return };
        while self.written < self.input.len() {
            match Pin::new(&mut *stdin).poll_write(cx, &self.input[self.written..]) {
                Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                Poll::Pending => return,
                // The process died (a bad voice makes it exit at once): its exit status and stderr
                // tell why, once stdout ends.
                Poll::Ready(_) => {
                    self.stdin = None;
                    return;
                }
            }
        }
        self.input.clear();
        self.written = 0;
        if self.finishing {
            // Dropping the pipe is espeak-ng's end of input.
            self.stdin = None;
        }
    }

    /// Expects output within the stall timeout from now.
    fn arm_stall(&mut self) {
        self.stall_at = Some(tokio::time::Instant::now() + self.stall_timeout);
    }

    /// Whether the stall deadline passed; registers the waker otherwise.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.stall_at else { return false };
        let sleep = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        sleep.as_mut().poll(cx).is_ready()
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<TtsEvent, Error>>> {
        self.kill();
        self.state = State::Done;
        Poll::Ready(Some(Err(e)))
    }

    fn kill(&mut self) {
        self.stdin = None;
        self.stdout = None;
        if let Some(child) = &mut self.child {
            // An error means it already exited; either way nothing more will come from it.
            let _ = child.start_kill();
        }
        self.child = None;
    }

    /// Decodes bytes read from stdout; the audio they complete, if any.
    fn handle_bytes(&mut self, n: usize) -> Result<Option<AudioChunk>, Error> {
        self.samples.clear();
        self.wav.push(&self.read_buf[..n], &mut self.samples).map_err(|detail| Error::Protocol { detail: format!("espeak-ng output: {detail}") })?;
        if self.resampler.is_none()
            && let Some(rate) = self.wav.sample_rate()
        {
            self.resampler = Some(Resampler::new(rate, self.format.sample_rate));
        }
        self.resampled.clear();
        if let Some(resampler) = &mut self.resampler {
            resampler.process(&self.samples, &mut self.resampled);
        }
        Ok(self.chunk())
    }

    /// The samples in `resampled` as a chunk, or `None` if there are none.
    fn chunk(&mut self) -> Option<AudioChunk> {
        if self.resampled.is_empty() {
            return None;
        }
        if self.latency.first_audio.is_none() {
            self.latency.first_audio = self.first_text.map(|t| t.elapsed());
        }
        debug_assert_eq!(self.format.encoding, Encoding::Pcm16);
        let data: Vec<u8> = self.resampled.iter().flat_map(|s| s.to_le_bytes()).collect();
        Some(AudioChunk { format: self.format, data: Bytes::from(data) })
    }

    /// What espeak-ng's exit means.
    fn exit_error(&self, output: &Output) -> Option<Error> {
        if output.status.success() {
            return None;
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Some(if stderr.contains("voice does not exist") {
            Error::Config { detail: format!("espeak-ng voice {:?}: {stderr}", self.voice) }
        } else {
            Error::Unavailable { status: None, detail: format!("espeak-ng exited with {}: {stderr}", output.status) }
        })
    }
}

impl TtsStream for EspeakStream {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push_text(&mut self, text: &str) -> Result<(), Error> {
        if self.finishing {
            return Err(Error::Config { detail: "text pushed after finish".into() });
        }
        // One line is one utterance to espeak-ng: line breaks inside the text would split it.
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() || !matches!(self.state, State::Running) {
            return Ok(());
        }
        self.first_text.get_or_insert_with(Instant::now);
        self.input.extend_from_slice(line.as_bytes());
        self.input.push(b'\n');
        self.arm_stall();
        if tokio::runtime::Handle::try_current().is_ok() {
            self.spawn()?;
            // Hand the line over now, not at the next poll: the owner may be busy elsewhere. A
            // full pipe is retried, with the real waker, by the next poll.
            self.write_input(&mut Context::from_waker(Waker::noop()));
        }
        Ok(())
    }

    fn finish(&mut self) {
        if self.finishing {
            return;
        }
        self.finishing = true;
        self.arm_stall();
        if self.stdin.is_some() {
            self.write_input(&mut Context::from_waker(Waker::noop()));
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<TtsEvent, Error>>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Cancelled => {
                    self.state = State::Done;
                    return Poll::Ready(Some(Err(Error::Cancelled)));
                }
                State::Exiting(exit) => match exit.as_mut().poll(cx) {
                    Poll::Ready(Ok(output)) => {
                        self.child = None;
                        if let Some(e) = self.exit_error(&output) {
                            return self.fail(e);
                        }
                        if !self.finishing {
                            return self.fail(Error::Closed { detail: "espeak-ng ended before finish".into() });
                        }
                        self.state = State::Done;
                        self.latency.total = self.first_text.map(|t| t.elapsed()).unwrap_or_default();
                        return Poll::Ready(Some(Ok(TtsEvent::Done(self.latency))));
                    }
                    Poll::Ready(Err(e)) => return self.fail(Error::Unavailable { status: None, detail: format!("waiting for espeak-ng: {e}") }),
                    Poll::Pending if self.stalled(cx) => return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: self.stall_timeout }),
                    Poll::Pending => return Poll::Pending,
                },
                State::Running => {
                    if let Err(e) = self.spawn() {
                        return self.fail(e);
                    }
                    self.write_input(cx);
                    let Some(stdout) = &mut self.stdout else { return self.fail(Error::Closed { detail: "espeak-ng stdout is gone".into() }) };
                    let mut buf = ReadBuf::new(&mut self.read_buf);
                    match Pin::new(stdout).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                            // End of output: the resampler's tail, then the exit status.
                            self.stdout = None;
                            self.stdin = None;
                            self.resampled.clear();
                            if let Some(resampler) = &mut self.resampler {
                                resampler.flush(&mut self.resampled);
                            }
                            let Some(child) = self.child.take() else { return self.fail(Error::Closed { detail: "espeak-ng is gone".into() }) };
                            self.state = State::Exiting(Box::pin(child.wait_with_output()));
                            if let Some(chunk) = self.chunk() {
                                return Poll::Ready(Some(Ok(TtsEvent::Audio(chunk))));
                            }
                        }
                        Poll::Ready(Ok(())) => {
                            let n = buf.filled().len();
                            // Output proves espeak-ng is working on the text; after finish, the
                            // deadline moves with each read until the end.
                            if self.finishing {
                                self.arm_stall();
                            } else {
                                self.stall_at = None;
                            }
                            match self.handle_bytes(n) {
                                Ok(Some(chunk)) => return Poll::Ready(Some(Ok(TtsEvent::Audio(chunk)))),
                                Ok(None) => {}
                                Err(e) => return self.fail(e),
                            }
                        }
                        Poll::Ready(Err(e)) => return self.fail(Error::Closed { detail: format!("reading espeak-ng output: {e}") }),
                        Poll::Pending if self.stalled(cx) => return self.fail(Error::Timeout { phase: TimeoutPhase::Idle, after: self.stall_timeout }),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
    }

    fn cancel(&mut self) {
        if !matches!(self.state, State::Done) {
            self.kill();
            self.command = None;
            self.state = State::Cancelled;
        }
    }
}

/// A voice name as espeak-ng spells them: letters, digits, `-`, `_`, `+` (a variant) and `/`
/// (a directory of its voices).
fn check_voice(voice: &str) -> Result<(), Error> {
    let valid = !voice.is_empty() && voice.len() <= 64 && voice.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'));
    if valid { Ok(()) } else { Err(Error::Config { detail: format!("espeak-ng voice {voice:?} is not a voice name") }) }
}

/// `program` if it is a path to a file, else the first file of that name in a `PATH` directory.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}
