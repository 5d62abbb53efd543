//! Offline speech-to-text with pocketsphinx, Debian's `pocketsphinx` and `pocketsphinx-en-us`
//! packages: no account, no network, and it works on 8 kHz call audio.
//!
//! # How it listens
//!
//! Each session runs one `pocketsphinx_continuous` process and streams the call's audio into its
//! standard input as it arrives, so the decoder works while the caller speaks and only the last
//! fraction of a second is left at the end of the turn. Its own voice activity detector closes
//! each utterance after [`SphinxConfig::end_silence`] of silence and prints the words with their
//! times, which become [`SttEvent::Final`]s with `end_of_turn`. It gives no partials.
//!
//! - **8 kHz audio** is doubled to 16 kHz by spectral folding ([`fold`]): the packaged model
//!   was trained on 16 kHz speech and hears almost nothing right in properly resampled
//!   telephone audio; folded, it recognises 36 of the 40 spoken-digit fixtures after a µ-law
//!   round trip.
//! - **The language model** is built per session ([`lm`]) from the built-in conversational
//!   phrases ([`phrases::CONVERSATION`], replaceable in [`SphinxConfig::phrases`]) plus the
//!   session's [`SttOptions::keywords`]: the assistant's knowledge, names and products. Only
//!   words with a pronunciation in the dictionary count; the files are cached per vocabulary.
//! - **A process per session** rather than the C library in the daemon: a decoder crash or
//!   hang on odd audio takes down one recognition, never the gateway, and cancelling is a kill.
//!   The price is a fork and a model load per call (about 100 ms, off the caller's critical
//!   path: it happens while the caller's first words are already being buffered).

mod fold;
pub mod lm;
mod output;
pub mod phrases;
pub mod text;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use self::lm::BigramModel;
use self::output::OutputParser;
use self::text::Dictionary;
use crate::stt::{Frame, SttEvent, SttLatency, SttOptions, SttProvider, SttSession};
use crate::{AudioFormat, Error, TimeoutPhase, Transcript};

/// Where Debian's packages put the recogniser and its US English model.
const PROGRAM: &str = "pocketsphinx_continuous";
const MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us/en-us";
const DICTIONARY: &str = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";

/// Audio is handed to the recogniser in pieces of this length: pocketsphinx reads 128 ms at a
/// time anyway, and batching keeps the per-frame cost of a session to a copy.
const BATCH_MS: u32 = 100;

/// Settings of the local recogniser.
#[derive(Clone, Debug)]
pub struct SphinxConfig {
    /// The recogniser program, by name (looked up in `PATH`) or path.
    pub program: PathBuf,
    /// The acoustic model directory (16 kHz).
    pub model_dir: PathBuf,
    /// The pronunciation dictionary.
    pub dictionary: PathBuf,
    /// The phrases every session's language model starts from; the session's keywords are
    /// added.
    pub phrases: Vec<String>,
    /// Silence that ends an utterance (the recogniser's VAD). Default 300 ms, like Deepgram's
    /// endpointing default in our config.
    pub end_silence: Duration,
    /// Audio the recogniser may fall behind by before a push fails. Default 10 s.
    pub max_backlog: Duration,
    /// After `finish`, how long the last utterance may take. Default 10 s.
    pub finish_timeout: Duration,
}

impl Default for SphinxConfig {
    fn default() -> Self {
        Self {
            program: PROGRAM.into(),
            model_dir: MODEL_DIR.into(),
            dictionary: DICTIONARY.into(),
            phrases: phrases::CONVERSATION.iter().map(|&p| p.to_owned()).collect(),
            end_silence: Duration::from_millis(300),
            max_backlog: Duration::from_secs(10),
            finish_timeout: Duration::from_secs(10),
        }
    }
}

/// The local pocketsphinx recogniser.
#[derive(Debug)]
pub struct SphinxStt {
    config: SphinxConfig,
    program: PathBuf,
    dictionary: Dictionary,
    /// Language model and dictionary files per vocabulary, in a directory removed on drop.
    files: Mutex<HashMap<u64, Arc<ModelFiles>>>,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct ModelFiles {
    lm: PathBuf,
    dict: PathBuf,
    words: usize,
}

const FORMATS: [AudioFormat; 2] = [AudioFormat::PCM_8K, AudioFormat::PCM_16K];

impl SphinxStt {
    /// A recogniser with `config`. Fails, naming what is missing, when the program, the model or
    /// the dictionary is not installed.
    pub fn new(config: SphinxConfig) -> Result<Self, Error> {
        let program = find_program(&config.program).ok_or_else(|| Error::Config {
            detail: format!("{} not found: install Debian's pocketsphinx package or set its path", config.program.display()),
        })?;
        if !config.model_dir.join("mdef").is_file() {
            return Err(Error::Config { detail: format!("no acoustic model in {}: install Debian's pocketsphinx-en-us package", config.model_dir.display()) });
        }
        let text = std::fs::read_to_string(&config.dictionary)
            .map_err(|e| Error::Config { detail: format!("pronunciation dictionary {}: {e}", config.dictionary.display()) })?;
        let dictionary = Dictionary::parse(&text);
        if dictionary.is_empty() {
            return Err(Error::Config { detail: format!("pronunciation dictionary {} has no entries", config.dictionary.display()) });
        }
        let dir = tempfile::Builder::new()
            .prefix("happ-sphinx-")
            .tempdir()
            .map_err(|e| Error::Config { detail: format!("temporary directory for language models: {e}") })?;
        Ok(Self { config, program, dictionary, files: Mutex::new(HashMap::new()), dir })
    }

    /// The language model for the built-in phrases plus `keywords`, written once per vocabulary.
    fn model_files(&self, keywords: &[String]) -> Result<Arc<ModelFiles>, Error> {
        let mut hasher = DefaultHasher::new();
        keywords.hash(&mut hasher);
        let key = hasher.finish();
        let mut files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = files.get(&key) {
            return Ok(f.clone());
        }
        let mut model = BigramModel::new();
        for phrase in self.config.phrases.iter().chain(keywords) {
            for sentence in text::sentences(phrase, &self.dictionary) {
                model.add_sentence(&sentence);
            }
        }
        if model.is_empty() {
            return Err(Error::Config { detail: "no phrase or keyword has a word the pronunciation dictionary knows".into() });
        }
        let vocabulary = model.vocabulary();
        let lm = self.dir.path().join(format!("{key:016x}.arpa"));
        let dict = self.dir.path().join(format!("{key:016x}.dict"));
        let write = |path: &Path, text: String| std::fs::write(path, text).map_err(|e| Error::Config { detail: format!("writing {}: {e}", path.display()) });
        write(&lm, model.to_arpa())?;
        write(&dict, self.dictionary.subset(vocabulary.iter().copied()))?;
        let f = Arc::new(ModelFiles { lm, dict, words: vocabulary.len() });
        files.insert(key, f.clone());
        Ok(f)
    }

    /// Starts a session (the trait's `start`, with the concrete type).
    pub fn session(&self, format: AudioFormat, options: &SttOptions) -> Result<SphinxSession, Error> {
        if !FORMATS.contains(&format) {
            return Err(Error::Config { detail: format!("local recogniser takes 8 or 16 kHz PCM, not {format:?}") });
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Config { detail: "local recogniser needs a tokio runtime".into() })?;
        let files = self.model_files(&options.keywords)?;
        let _enter = runtime.enter();
        let mut child = tokio::process::Command::new(&self.program)
            .arg("-hmm")
            .arg(&self.config.model_dir)
            .arg("-dict")
            .arg(&files.dict)
            .arg("-lm")
            .arg(&files.lm)
            .args(["-infile", "/dev/stdin", "-time", "yes", "-logfn", "/dev/null"])
            // The VAD counts 10 ms frames.
            .args(["-vad_postspeech", &(self.config.end_silence.as_millis() / 10).max(1).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Unavailable { status: None, detail: format!("starting {}: {e}", self.program.display()) })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Unavailable { status: None, detail: "recogniser pipes missing".into() });
        };
        let pid = child.id();
        tracing::debug!(words = files.words, pid, "local recogniser started");
        let batches = (self.config.max_backlog.as_millis() / u128::from(BATCH_MS)).max(1) as usize;
        let (audio_tx, audio_rx) = mpsc::channel::<Vec<u8>>(batches);
        let (event_tx, event_rx) = mpsc::channel(64);
        let finished = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_audio(stdin, audio_rx));
        let reader = tokio::spawn(read_transcripts(child, stdout, event_tx, finished.clone()));
        Ok(SphinxSession {
            format,
            pid,
            audio: Some(audio_tx),
            batch: Vec::with_capacity(batch_bytes()),
            events: event_rx,
            writer,
            reader,
            finished,
            finish_timeout: self.config.finish_timeout,
            deadline: None,
            end_of_speech: None,
            latency: SttLatency::default(),
            state: SessionState::Running,
        })
    }
}

impl SttProvider for SphinxStt {
    fn name(&self) -> &str {
        "pocketsphinx"
    }

    fn formats(&self) -> &[AudioFormat] {
        &FORMATS
    }

    fn start(&self, format: AudioFormat, options: &SttOptions) -> Result<Box<dyn SttSession>, Error> {
        Ok(Box::new(self.session(format, options)?))
    }
}

fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// 16 kHz bytes per batch.
fn batch_bytes() -> usize {
    AudioFormat::PCM_16K.bytes_per_millis(BATCH_MS)
}

/// What the reader task reports.
enum Out {
    Final(Transcript),
    /// The recogniser's output ended: `Ok` after `finish`, an error otherwise.
    End(Result<(), Error>),
}

async fn write_audio(mut stdin: tokio::process::ChildStdin, mut audio: mpsc::Receiver<Vec<u8>>) {
    while let Some(batch) = audio.recv().await {
        if stdin.write_all(&batch).await.is_err() {
            // The recogniser is gone; the reader reports why.
            return;
        }
    }
    // The sender was dropped (`finish`): closing stdin makes the recogniser end its last
    // utterance and exit.
    let _ = stdin.shutdown().await;
}

async fn read_transcripts(mut child: tokio::process::Child, stdout: tokio::process::ChildStdout, events: mpsc::Sender<Out>, finished: Arc<AtomicBool>) {
    let mut reader = BufReader::new(stdout);
    let mut parser = OutputParser::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) => break,
            Ok(_) => {
                let done = parser.line(line.trim_end_matches('\n'));
                // The recogniser writes an utterance's lines in one flush: once they are all
                // read, the utterance is complete.
                let done = done.into_iter().chain(if reader.buffer().is_empty() { parser.flush() } else { None });
                for u in done {
                    if !u.text.is_empty() && events.send(Out::Final(u.into_transcript())).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = events.send(Out::End(Err(Error::Closed { detail: format!("reading the recogniser: {e}") }))).await;
                return;
            }
        }
    }
    if let Some(u) = parser.flush().filter(|u| !u.text.is_empty()) {
        let _ = events.send(Out::Final(u.into_transcript())).await;
    }
    let status = child.wait().await;
    let end = match status {
        Ok(s) if s.success() && finished.load(Ordering::Acquire) => Ok(()),
        Ok(s) => Err(Error::Closed { detail: format!("recogniser exited ({s}) before the audio ended") }),
        Err(e) => Err(Error::Closed { detail: format!("recogniser: {e}") }),
    };
    let _ = events.send(Out::End(end)).await;
}

#[derive(Debug, PartialEq, Eq)]
enum SessionState {
    Running,
    Cancelled,
    Over,
}

/// A running local recognition; see the [module docs](self).
pub struct SphinxSession {
    format: AudioFormat,
    pid: Option<u32>,
    /// `None` after `finish`.
    audio: Option<mpsc::Sender<Vec<u8>>>,
    /// 16 kHz little-endian bytes not yet handed to the writer.
    batch: Vec<u8>,
    events: mpsc::Receiver<Out>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    finished: Arc<AtomicBool>,
    finish_timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    end_of_speech: Option<Instant>,
    latency: SttLatency,
    state: SessionState,
}

impl std::fmt::Debug for SphinxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SphinxSession").field("format", &self.format).field("state", &self.state).finish_non_exhaustive()
    }
}

impl SphinxSession {
    /// The next event: `None` once the session is over.
    pub async fn next_event(&mut self) -> Option<Result<SttEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The recogniser's process id (for diagnostics).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn send_batch(&mut self) -> Result<(), Error> {
        let Some(audio) = &self.audio else { return Ok(()) };
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(batch_bytes()));
        audio.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Unavailable { status: None, detail: "local recogniser fell too far behind the call audio".into() },
            mpsc::error::TrySendError::Closed(_) => Error::Closed { detail: "local recogniser stopped taking audio".into() },
        })
    }
}

impl SttSession for SphinxSession {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn push(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        if self.state != SessionState::Running {
            return Err(Error::Cancelled);
        }
        if self.audio.is_none() {
            return Err(Error::Config { detail: "audio pushed after finish".into() });
        }
        let Frame::Pcm(samples) = frame else {
            return Err(Error::Config { detail: "local recogniser takes PCM frames, not G.711".into() });
        };
        if self.format.sample_rate == 8_000 {
            fold::fold_to_16k_le(samples, &mut self.batch);
        } else {
            fold::pcm_le(samples, &mut self.batch);
        }
        if self.batch.len() >= batch_bytes() { self.send_batch() } else { Ok(()) }
    }

    fn end_of_speech(&mut self) {
        self.end_of_speech = Some(Instant::now());
    }

    fn finish(&mut self) {
        if self.audio.is_some() {
            // A full queue loses the last batch only when the recogniser is 10 s behind, and
            // then the session already reported it.
            let _ = self.send_batch();
            self.finished.store(true, Ordering::Release);
            self.audio = None;
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SttEvent, Error>>> {
        match self.state {
            SessionState::Cancelled => {
                self.state = SessionState::Over;
                return Poll::Ready(Some(Err(Error::Cancelled)));
            }
            SessionState::Over => return Poll::Ready(None),
            SessionState::Running => {}
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(Out::Final(t))) => {
                if let Some(mark) = self.end_of_speech.take() {
                    self.latency.final_after_end_of_speech = Some(mark.elapsed());
                }
                return Poll::Ready(Some(Ok(SttEvent::Final(t))));
            }
            Poll::Ready(Some(Out::End(result))) => {
                self.state = SessionState::Over;
                return Poll::Ready(Some(result.map(|()| SttEvent::Done(self.latency))));
            }
            Poll::Ready(None) => {
                self.state = SessionState::Over;
                return Poll::Ready(Some(Err(Error::Closed { detail: "local recogniser task ended".into() })));
            }
            Poll::Pending => {}
        }
        // Output only comes at utterance ends, so silence is normal while audio flows; after
        // `finish` the recogniser must end within the limit.
        if self.audio.is_none() {
            let timeout = self.finish_timeout;
            let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if deadline.as_mut().poll(cx).is_ready() {
                self.cancel();
                self.state = SessionState::Over;
                return Poll::Ready(Some(Err(Error::Timeout { phase: TimeoutPhase::Idle, after: timeout })));
            }
        }
        Poll::Pending
    }

    fn cancel(&mut self) {
        if self.state == SessionState::Running {
            self.state = SessionState::Cancelled;
        }
        self.audio = None;
        // Aborting the reader drops the child process handle, which kills it (`kill_on_drop`).
        self.writer.abort();
        self.reader.abort();
    }
}

impl Drop for SphinxSession {
    fn drop(&mut self) {
        self.writer.abort();
        self.reader.abort();
    }
}
