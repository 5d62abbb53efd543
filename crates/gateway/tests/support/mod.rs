//! A `happ-gateway run` process for integration tests: its configuration, its loopback ports,
//! its control API, its log; plus the peers the tests drive directly (an RTP talker, raw SIP).
//!
//! Each test starts its own gateway on free loopback ports (SIP, control API, and an RTP range
//! of its own, so that the RTP port of a call is known: the first pair of the range), with the
//! phones' passwords and the control token passed through the environment, as in production.
//! The process is killed when the [`Gateway`] is dropped, and its log is printed when a test
//! fails while it runs.

#![allow(dead_code, clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use happ_media::Law;
use happ_media::rtp::{HEADER_LEN, RtpHeader, RtpPacket};
use happ_media::units::Ssrc;
use happ_testkit::ports::free_port;
use serde_json::Value;
use tempfile::TempDir;

/// The control token of every test gateway.
pub const TOKEN: &str = "test-control-token";

/// A phone of the gateway's configuration.
#[derive(Clone, Debug)]
pub struct Phone {
    /// `phoneNumber`.
    pub number: String,
    /// `sipLogin`.
    pub login: String,
    /// `password` (passed through the environment).
    pub password: String,
    /// `telephonyUrl`.
    pub url: String,
    /// `codec`.
    pub codec: &'static str,
    /// `register`.
    pub register: bool,
    /// `handler`.
    pub handler: String,
    /// `maxCalls`.
    pub max_calls: Option<u32>,
    /// `answerDelayMs`.
    pub answer_delay_ms: u64,
    /// `assistantId`.
    pub assistant_id: Option<String>,
}

impl Phone {
    /// A trunk phone (no registration; INVITEs accepted from `url`'s address) answering with
    /// the echo handler.
    pub fn trunk(number: &str, url: impl ToString) -> Phone {
        Phone {
            number: number.to_owned(),
            login: number.trim_start_matches('+').to_owned(),
            password: String::new(),
            url: url.to_string(),
            codec: "alaw",
            register: false,
            handler: "echo".to_owned(),
            max_calls: None,
            answer_delay_ms: 0,
            assistant_id: None,
        }
    }

    /// A phone registering `login` with `password` at `url`, answering with the echo handler.
    pub fn registered(number: &str, login: &str, password: &str, url: impl ToString) -> Phone {
        Phone { login: login.to_owned(), password: password.to_owned(), register: true, ..Phone::trunk(number, url) }
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The phones.
    pub phones: Vec<Phone>,
    /// `calls.max_concurrent`.
    pub max_concurrent: u32,
    /// `calls.ring_timeout_secs`.
    pub ring_timeout_secs: u64,
    /// `calls.drain_secs`.
    pub drain_secs: u64,
    /// `sip.registration_expires`.
    pub registration_expires: u32,
    /// `rtp.inactivity_secs`.
    pub inactivity_secs: u64,
    /// RTP port pairs in the range.
    pub rtp_pairs: u16,
    /// `sip.dns_servers`.
    pub dns_servers: Vec<SocketAddr>,
    /// `log.level`.
    pub log_level: &'static str,
    /// `sip.session_expires` and `sip.min_session_expires`.
    pub session_timer: (u32, u32),
    /// `[happ]`: base URL, token, `sync_secs`.
    pub happ: Option<(String, String, u64)>,
    /// `happ.outbox` (default: in the gateway's directory).
    pub happ_outbox: Option<PathBuf>,
    /// More configuration, appended as is (`[[assistants]]`, `[speech]`).
    pub extra: String,
}

impl Setup {
    /// These phones, with defaults for the rest.
    pub fn with_phones(phones: Vec<Phone>) -> Setup {
        Setup {
            phones,
            max_concurrent: 10,
            ring_timeout_secs: 30,
            drain_secs: 10,
            registration_expires: 300,
            inactivity_secs: 30,
            rtp_pairs: 4,
            dns_servers: Vec::new(),
            log_level: "info,happ_gateway=debug,happ_sip=debug",
            session_timer: (1800, 90),
            happ: None,
            happ_outbox: None,
            extra: String::new(),
        }
    }
}

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    dir: TempDir,
    /// Its SIP address (UDP and TCP).
    pub sip: SocketAddr,
    /// Its control API, `http://127.0.0.1:PORT`.
    pub control: String,
    /// The first port of its RTP range: the RTP port of the first call.
    pub rtp: u16,
    control_port: u16,
    http: reqwest::blocking::Client,
}

/// The `happ-gateway` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_happ-gateway")
}

impl Gateway {
    /// Writes the configuration and starts the gateway; returns once `/readyz` says ready.
    pub fn start(setup: &Setup) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let sip_port = free_port(1);
        let control_port = free_port(1);
        let rtp = free_port(setup.rtp_pairs * 2);
        let config = config_text(setup, sip_port, control_port, rtp, false);
        let path = dir.path().join("gateway.toml");
        fs::write(&path, config).expect("write config");
        let log = fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let mut command = Command::new(binary());
        command.args(["run", "--config"]).arg(&path).env("GATEWAY_CONTROL_TOKEN", TOKEN).env_remove("RUST_LOG");
        for (i, p) in setup.phones.iter().enumerate() {
            command.env(format!("TEST_PHONE_PASSWORD_{i}"), &p.password);
        }
        let child = command.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log).spawn().expect("start happ-gateway");
        let mut gw = Gateway {
            child: Some(child),
            dir,
            sip: SocketAddr::from((Ipv4Addr::LOCALHOST, sip_port)),
            control: format!("http://127.0.0.1:{control_port}"),
            rtp,
            control_port,
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = gw.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("happ-gateway exited at start-up ({status}):\n{}", gw.log());
            }
            if gw.http.get(format!("{}/readyz", gw.control)).send().is_ok_and(|r| r.status() == 200) {
                return gw;
            }
            assert!(Instant::now() < deadline, "happ-gateway not ready within 20 s:\n{}", gw.log());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// `GET path` with the token: the status and the JSON body (`Null` when not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.control)).bearer_auth(TOKEN).send().expect("control API");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.control)).bearer_auth(TOKEN).json(body).send().expect("control API");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> u16 {
        self.http.delete(format!("{}{path}", self.control)).bearer_auth(TOKEN).send().expect("control API").status().as_u16()
    }

    /// `GET /phones`.
    pub fn phones(&self) -> Vec<Value> {
        let (status, v) = self.get("/phones");
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// The phone with this number.
    pub fn phone(&self, number: &str) -> Value {
        self.phones().into_iter().find(|p| p["phoneNumber"] == number).unwrap_or_else(|| panic!("no phone {number}"))
    }

    /// `GET /calls`.
    pub fn calls(&self) -> Vec<Value> {
        let (status, v) = self.get("/calls");
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.control)).bearer_auth(TOKEN).send().expect("control API");
        assert_eq!(r.status(), 200);
        r.text().expect("metrics text")
    }

    /// The value of the sample named exactly `series` (name and labels, as exposed), 0 when
    /// absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.metrics();
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Rewrites the configuration file for `setup` (same addresses and ports; passwords written
    /// into the file, since the process's environment is fixed) and sends SIGHUP.
    pub fn reconfigure(&self, setup: &Setup) {
        let text = config_text(setup, self.sip.port(), self.control_port, self.rtp, true);
        fs::write(self.dir.path().join("gateway.toml"), text).expect("write config");
        let status = Command::new("kill").args(["-HUP", &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "happ-gateway still running after {limit:?}:\n{}", self.log());
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if thread::panicking() {
                eprintln!("--- happ-gateway log ---\n{}", self.log());
            }
        }
    }
}

fn config_text(setup: &Setup, sip_port: u16, control_port: u16, rtp: u16, inline_passwords: bool) -> String {
    let mut t = format!(
        "[sip]\nlisten = \"127.0.0.1:{sip_port}\"\nregistration_expires = {}\nkeepalive_secs = 10\ndns_servers = [{}]\nsession_expires = {}\nmin_session_expires = {}\n\n\
         [rtp]\nbind = \"127.0.0.1\"\nport_range = \"{rtp}-{}\"\ninactivity_secs = {}\n\n\
         [control]\nlisten = \"127.0.0.1:{control_port}\"\ntoken = \"${{GATEWAY_CONTROL_TOKEN}}\"\n\n\
         [calls]\nmax_concurrent = {}\nring_timeout_secs = {}\ndrain_secs = {}\n\n\
         [log]\nlevel = \"{}\"\n",
        setup.registration_expires,
        setup.dns_servers.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "),
        setup.session_timer.0,
        setup.session_timer.1,
        rtp + setup.rtp_pairs * 2 - 1,
        setup.inactivity_secs,
        setup.max_concurrent,
        setup.ring_timeout_secs,
        setup.drain_secs,
        setup.log_level,
    );
    if let Some((url, token, secs)) = &setup.happ {
        let _ = write!(t, "\n[happ]\nbase_url = \"{url}\"\ntoken = '{token}'\nsync_secs = {secs}\n");
        if let Some(path) = &setup.happ_outbox {
            let _ = writeln!(t, "outbox = '{}'", path.display());
        }
    }
    for (i, p) in setup.phones.iter().enumerate() {
        let password = if inline_passwords { format!("'{}'", p.password) } else { format!("\"${{TEST_PHONE_PASSWORD_{i}}}\"") };
        let _ = write!(
            t,
            "\n[[phones]]\nphoneNumber = \"{}\"\nsipLogin = \"{}\"\npassword = {password}\ntelephonyUrl = \"{}\"\n\
             codec = \"{}\"\nregister = {}\nhandler = \"{}\"\nanswerDelayMs = {}\n",
            p.number, p.login, p.url, p.codec, p.register, p.handler, p.answer_delay_ms
        );
        if let Some(m) = p.max_calls {
            let _ = writeln!(t, "maxCalls = {m}");
        }
        if let Some(a) = &p.assistant_id {
            let _ = writeln!(t, "assistantId = \"{a}\"");
        }
    }
    t.push('\n');
    t.push_str(&setup.extra);
    t
}

/// Polls `f` every 50 ms until it gives a value; panics with `what` after `limit`.
pub fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The fixture speech at 8 kHz (the JFK recording of `fixtures/`), `ms` long.
pub fn speech(ms: usize) -> Vec<i16> {
    let mut pcm = happ_testkit::captures::jfk_8k();
    pcm.truncate(ms * 8);
    pcm
}

/// Datagrams received, with their arrival times.
type Datagrams = Arc<std::sync::Mutex<Vec<(Instant, Vec<u8>)>>>;

/// An RTP endpoint of the test: sends audio paced at 20 ms and collects what comes back.
pub struct RtpPeer {
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    receiver: Option<thread::JoinHandle<()>>,
    got: Datagrams,
    seq: std::sync::atomic::AtomicU16,
    /// When the peer was bound: the origin of its RTP clock.
    started: Instant,
}

/// One received RTP packet: its payload type and payload.
#[derive(Clone, Debug)]
pub struct Received {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Payload.
    pub payload: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The payload decoded with `law`, and its level in dBFS (-100 for digital silence).
    pub fn level_db(&self, law: Law) -> f64 {
        let mut pcm = vec![0i16; self.payload.len()];
        law.decode(&self.payload, &mut pcm);
        let power = pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len().max(1) as f64;
        10.0 * (power / 32768f64.powi(2)).max(1e-10).log10()
    }
}

impl RtpPeer {
    /// Binds a loopback port and starts collecting.
    pub fn bind() -> RtpPeer {
        let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind RTP"));
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, st, g) = (socket.clone(), stop.clone(), got.clone());
        let receiver = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = s.recv(&mut buf) {
                    g.lock().expect("not poisoned").push((Instant::now(), buf[..n].to_vec()));
                }
            }
        });
        RtpPeer { socket, stop, receiver: Some(receiver), got, seq: std::sync::atomic::AtomicU16::new(1000), started: Instant::now() }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("addr").port()
    }

    /// Sends `pcm` to `to` as 20 ms packets of `law` with payload type `pt`, paced in real
    /// time.
    pub fn send(&self, to: SocketAddr, law: Law, pt: u8, pcm: &[i16]) {
        let start = Instant::now();
        // A talkspurt, as a phone sends it: its first timestamp is the RTP clock of now, the
        // next ones 160 apart.
        let first = self.timestamp();
        let mut buf = [0u8; HEADER_LEN + 160];
        for (i, frame) in pcm.chunks_exact(160).enumerate() {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let timestamp = first.wrapping_add(160 * i as u32);
            let header = RtpHeader { marker: i == 0, payload_type: pt, seq, timestamp, ssrc: Ssrc(0x7E57) };
            header.write(&mut buf).expect("header fits");
            law.encode(frame, &mut buf[HEADER_LEN..]);
            self.socket.send_to(&buf, to).expect("send RTP");
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }

    /// The RTP clock of now (8 kHz since the peer was bound), on a 20 ms boundary.
    fn timestamp(&self) -> u32 {
        let ms = self.started.elapsed().as_millis() as u32;
        5000 + ms / 20 * 160
    }

    /// Sends `digits` as RFC 4733 events (payload type `pt`): each 100 ms, three packets and
    /// three end packets, 100 ms apart.
    pub fn send_dtmf(&self, to: SocketAddr, pt: u8, digits: &str) {
        let mut buf = [0u8; HEADER_LEN + 4];
        for c in digits.chars() {
            let code = happ_media::dtmf::Digit::from_char(c).expect("a keypad key").0;
            let ts = self.timestamp();
            for i in 0..6u16 {
                let end = i >= 3;
                let duration = if end { 800u16 } else { 160 * (i + 1) };
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                RtpHeader { marker: i == 0, payload_type: pt, seq, timestamp: ts, ssrc: Ssrc(0x7E57) }.write(&mut buf).expect("header fits");
                buf[HEADER_LEN] = code;
                buf[HEADER_LEN + 1] = if end { 0x80 | 10 } else { 10 };
                buf[HEADER_LEN + 2..].copy_from_slice(&duration.to_be_bytes());
                self.socket.send_to(&buf, to).expect("send RTP");
                thread::sleep(Duration::from_millis(20));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `ms` of silence, paced.
    pub fn send_silence(&self, to: SocketAddr, law: Law, pt: u8, ms: usize) {
        self.send(to, law, pt, &vec![0i16; ms * 8]);
    }

    /// Stops collecting; the RTP packets received (RTCP left out).
    pub fn finish(mut self) -> Vec<Received> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.receiver.take() {
            h.join().expect("receiver");
        }
        self.received()
    }

    /// The RTP packets received so far (RTCP left out).
    pub fn received(&self) -> Vec<Received> {
        let datagrams = self.got.lock().expect("not poisoned").clone();
        datagrams
            .iter()
            .filter(|(_, d)| !happ_media::rtp::is_rtcp(d))
            .filter_map(|(at, d)| {
                RtpPacket::parse(d).ok().map(|p| Received { payload_type: p.payload_type(), seq: p.seq(), payload: p.payload().to_vec(), at: *at })
            })
            .collect()
    }
}

/// Sends raw SIP over UDP from a socket of the test and collects the responses.
pub struct RawSip {
    socket: UdpSocket,
    to: SocketAddr,
}

impl RawSip {
    /// A socket on `ip` (127.0.0.1, or another loopback address to look like a stranger).
    pub fn new(ip: Ipv4Addr, to: SocketAddr) -> RawSip {
        let socket = UdpSocket::bind((ip, 0)).expect("bind SIP");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        RawSip { socket, to }
    }

    /// The local address.
    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("addr")
    }

    /// Sends `text` (line ends `\n` become `\r\n`).
    pub fn send(&self, text: &str) {
        self.send_bytes(text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes());
    }

    /// Sends bytes as they are.
    pub fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.to).expect("send SIP");
    }

    /// The datagrams received within `wait`, as text.
    pub fn receive(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        out
    }

    /// Waits for a response whose status line starts with `SIP/2.0 {code}`, at most `wait`.
    pub fn expect_status(&self, code: u16, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        let mut buf = [0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.starts_with(&format!("SIP/2.0 {code} ")) {
                    return text;
                }
                seen.push(text);
            }
        }
        panic!("no {code} within {wait:?}; received:\n{}", seen.join("\n----\n"));
    }
}

/// A WAV file of `pcm` at 8 kHz in `dir`.
pub fn wav(dir: &Path, name: &str, pcm: &[i16]) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec { channels: 1, sample_rate: 8_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&path, spec).expect("create WAV");
    for s in pcm {
        w.write_sample(*s).expect("write WAV");
    }
    w.finalize().expect("finish WAV");
    path
}

/// Reads a file to a string, empty when absent.
pub fn read(path: &Path) -> String {
    let mut s = String::new();
    let _ = fs::File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    s
}
