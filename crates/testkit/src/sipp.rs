//! SIPp as a caller (UAC) or callee (UAS) for real-peer tests.
//!
//! [`Sipp`] builds one SIPp run: a built-in scenario (`-sn`) or one of the scenario files of the
//! workspace's `tests/sipp/` (see [`scenario_dir`]), whose `{{NAME}}` and `{{NAME|default}}`
//! placeholders the harness fills before writing the file into the run's own temporary
//! directory. Every run gets its own loopback ports (SIP, media, and SIPp's control port, whose
//! fixed default 8888 would collide between parallel tests), its own directory for the traces,
//! and its own process group (killed on drop; a watchdog kills it if the test process dies).
//! [`Sipp::spawn`] returns once SIPp has bound its ports; [`SippHandle::wait`]
//! gives a [`SippOutcome`]: exit code, successful and failed calls, the message, error and
//! screen logs, and the digest checks asked for with [`Sipp::expect_digest`].
//!
//! SIPp 3.6's quirks met here: `verifyauth` reads only an `Authorization` header and ignores
//! `qop`, so a 407 challenge with `qop="auth"` is checked by the harness instead
//! (with `happ_sip::digest`); `[authentication]` answers MD5 challenges only; its digest `uri` is
//! `sip:` and the remote address, not the Request-URI.
//!
//! ```no_run
//! use happ_testkit::sipp::Sipp;
//! let uas = Sipp::scenario("uas_answer.xml").spawn().unwrap();
//! let uac = Sipp::scenario("uac_hold.xml").remote(uas.local_addr()).spawn().unwrap();
//! let (uac, uas) = (uac.wait().unwrap(), uas.wait().unwrap());
//! assert!(uac.succeeded() && uas.succeeded(), "{}\n{}", uac.report(), uas.report());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use happ_sip::digest::{self, Credentials, Login};

use tempfile::TempDir;

use crate::pcap;
use crate::ports::free_port;

/// The workspace's `tests/sipp/` directory, holding the scenario files.
pub fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp")
}

/// Where SIPp's Debian package keeps its pcaps (`g711a.pcap`, `dtmf_2833_*.pcap`).
pub const SIPP_PCAP_DIR: &str = "/usr/share/sip-tester";

/// SIP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (SIPp `-t u1`).
    #[default]
    Udp,
    /// TCP (SIPp `-t t1`).
    Tcp,
}

impl Transport {
    /// The `transport=` URI parameter value.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    fn sipp_mode(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }
}

/// A failure of the harness itself (not of the calls: those are in [`SippOutcome`]).
#[derive(Debug)]
pub enum Error {
    /// A file or process operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// The scenario could not be prepared (unknown file, missing or unused placeholder).
    Scenario(String),
    /// SIPp exited, or never listened, before the test could use it.
    Start {
        /// What happened.
        reason: String,
        /// SIPp's logs.
        report: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Scenario(m) => write!(f, "SIPp scenario: {m}"),
            Error::Start { reason, report } => write!(f, "SIPp did not start: {reason}\n{report}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

#[derive(Clone, Debug)]
enum Source {
    Builtin(String),
    File(PathBuf),
}

/// One SIPp run, built up option by option; see the module documentation.
#[derive(Clone, Debug)]
pub struct Sipp {
    source: Source,
    placeholders: BTreeMap<String, String>,
    ip: Ipv4Addr,
    port: Option<u16>,
    media_port: Option<u16>,
    remote: Option<SocketAddr>,
    transport: Transport,
    service: Option<String>,
    calls: u32,
    rate: Option<f64>,
    limit: Option<u32>,
    credentials: Option<(String, String)>,
    keys: Vec<(String, String)>,
    sets: Vec<(String, String)>,
    timeout: Duration,
    rtp_echo: bool,
    trace_messages: bool,
    extra: Vec<String>,
    digest: Option<(String, String)>,
}

impl Sipp {
    /// A built-in scenario (`-sn uac`, `-sn uas`, `-sn uac_pcap`...). The built-in `uas` does
    /// not copy Record-Route: use `uas_answer.xml` behind a record-routing proxy.
    pub fn builtin(name: &str) -> Sipp {
        Sipp::new(Source::Builtin(name.to_owned()))
    }

    /// A scenario file of [`scenario_dir`], by file name (`"uac_hold.xml"`).
    pub fn scenario(file_name: &str) -> Sipp {
        Sipp::new(Source::File(scenario_dir().join(file_name)))
    }

    /// A scenario file anywhere, with the same placeholder filling.
    pub fn scenario_path(path: impl Into<PathBuf>) -> Sipp {
        Sipp::new(Source::File(path.into()))
    }

    fn new(source: Source) -> Sipp {
        Sipp {
            source,
            placeholders: BTreeMap::new(),
            ip: Ipv4Addr::LOCALHOST,
            port: None,
            media_port: None,
            remote: None,
            transport: Transport::Udp,
            service: None,
            calls: 1,
            rate: None,
            limit: None,
            credentials: None,
            keys: Vec::new(),
            sets: Vec::new(),
            timeout: Duration::from_secs(25),
            rtp_echo: false,
            trace_messages: true,
            extra: Vec::new(),
            digest: None,
        }
    }

    /// Fills `{{name}}` in the scenario file. Every value given must be used by the file.
    pub fn placeholder(mut self, name: &str, value: impl ToString) -> Sipp {
        self.placeholders.insert(name.to_owned(), value.to_string());
        self
    }

    /// Plays `pcap` (placeholders `PCAP`, its absolute path, and `PCAP_MS`, its length in ms).
    pub fn play_pcap(self, pcap: impl AsRef<Path>) -> Result<Sipp, Error> {
        let path = pcap.as_ref();
        let path = path.canonicalize().map_err(io_err(format!("pcap {}", path.display())))?;
        let length = pcap_duration(&path)?;
        Ok(self.placeholder("PCAP", path.display()).placeholder("PCAP_MS", length.as_millis()))
    }

    /// Local address for SIP and media (`-i`, `-mi`); 127.0.0.1 unless set.
    pub fn local_ip(mut self, ip: Ipv4Addr) -> Sipp {
        self.ip = ip;
        self
    }

    /// Local SIP port (`-p`); a free one unless set.
    pub fn local_port(mut self, port: u16) -> Sipp {
        self.port = Some(port);
        self
    }

    /// Local media port (`-mp`); SIPp uses it and the next ports (RTCP, video echo), so by
    /// default a free range of four.
    pub fn media_port(mut self, port: u16) -> Sipp {
        self.media_port = Some(port);
        self
    }

    /// Where a UAC sends its requests (a UAS answers wherever requests come from).
    pub fn remote(mut self, addr: SocketAddr) -> Sipp {
        self.remote = Some(addr);
        self
    }

    /// SIP transport (`-t u1` or `-t t1`).
    pub fn transport(mut self, transport: Transport) -> Sipp {
        self.transport = transport;
        self
    }

    /// User part of the Request-URI, `[service]` (`-s`).
    pub fn service(mut self, user: &str) -> Sipp {
        self.service = Some(user.to_owned());
        self
    }

    /// Number of calls before SIPp exits (`-m`); 1 unless set.
    pub fn calls(mut self, calls: u32) -> Sipp {
        self.calls = calls;
        self
    }

    /// Call rate in calls per second (`-r`).
    pub fn rate(mut self, calls_per_second: f64) -> Sipp {
        self.rate = Some(calls_per_second);
        self
    }

    /// Most calls at once (`-l`).
    pub fn limit(mut self, calls: u32) -> Sipp {
        self.limit = Some(calls);
        self
    }

    /// Credentials for `[authentication]` (`-au`, `-ap`): MD5 only in SIPp 3.6.
    pub fn credentials(mut self, user: &str, password: &str) -> Sipp {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// A keyword `[name]` for the scenario (`-key`).
    pub fn key(mut self, name: &str, value: impl ToString) -> Sipp {
        self.keys.push((name.to_owned(), value.to_string()));
        self
    }

    /// A global variable `[$name]` for the scenario (`-set`).
    pub fn set(mut self, name: &str, value: impl ToString) -> Sipp {
        self.sets.push((name.to_owned(), value.to_string()));
        self
    }

    /// SIPp's global timeout (`-timeout`, an error when reached); [`SippHandle::wait`] kills it
    /// a little later if it is still running. 25 s unless set.
    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.timeout = timeout;
        self
    }

    /// Leaves out the message trace (`-trace_msg`), which slows SIPp down under load: the
    /// outcome then has no messages.
    pub fn without_message_trace(mut self) -> Sipp {
        self.trace_messages = false;
        self
    }

    /// Echoes the RTP received on the media port (`-rtp_echo`).
    pub fn rtp_echo(mut self) -> Sipp {
        self.rtp_echo = true;
        self
    }

    /// Any other SIPp argument, after the harness's own.
    pub fn arg(mut self, arg: impl Into<String>) -> Sipp {
        self.extra.push(arg.into());
        self
    }

    /// After the run, checks every `Authorization` and `Proxy-Authorization` SIPp received
    /// against `password` ([`digest::verify`]); the outcome fails if one does not match or none
    /// came from `user`.
    pub fn expect_digest(mut self, user: &str, password: &str) -> Sipp {
        self.digest = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Spawns and waits: [`Sipp::spawn`] then [`SippHandle::wait`].
    pub fn run(self) -> Result<SippOutcome, Error> {
        self.spawn()?.wait()
    }

    /// Starts SIPp and returns once it has bound its SIP, media and control sockets. Ports the
    /// harness chose are chosen again when another process took one first (tests run in
    /// parallel, so a port free when chosen may be gone a moment later).
    pub fn spawn(self) -> Result<SippHandle, Error> {
        let mut attempt = 1;
        loop {
            match self.spawn_once() {
                Err(Error::Start { report, .. }) if attempt < 5 && report.contains("Address already in use") => attempt += 1,
                other => return other,
            }
        }
    }

    fn spawn_once(&self) -> Result<SippHandle, Error> {
        let dir = tempfile::Builder::new().prefix("happ-sipp-").tempdir().map_err(io_err("temporary directory"))?;
        let (source_args, name) = match &self.source {
            Source::Builtin(name) => {
                if !self.placeholders.is_empty() {
                    return Err(Error::Scenario(format!("built-in scenario {name} has no placeholders")));
                }
                (vec!["-sn".to_owned(), name.clone()], name.clone())
            }
            Source::File(path) => {
                let template = fs::read_to_string(path).map_err(io_err(format!("scenario {}", path.display())))?;
                let text = fill_placeholders(&template, &self.placeholders).map_err(|m| Error::Scenario(format!("{}: {m}", path.display())))?;
                let file = dir.path().join("scenario.xml");
                fs::write(&file, text).map_err(io_err("writing the scenario"))?;
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                (vec!["-sf".to_owned(), file.display().to_string()], name)
            }
        };
        // Built-in pcap scenarios refer to pcap/g711a.pcap, relative to the working directory.
        if Path::new(SIPP_PCAP_DIR).is_dir() {
            std::os::unix::fs::symlink(SIPP_PCAP_DIR, dir.path().join("pcap")).map_err(io_err("pcap link"))?;
        }

        let port = self.port.unwrap_or_else(|| free_port(1));
        let media_port = self.media_port.unwrap_or_else(|| free_port(4));
        let control_port = free_port(1);
        let ip = self.ip.to_string();
        let files = Files::new(dir.path());

        let mut cmd = Command::new("sipp");
        if let Some(remote) = self.remote {
            cmd.arg(remote.to_string());
        }
        cmd.args(&source_args)
            .args(["-i", &ip, "-p", &port.to_string(), "-mi", &ip, "-mp", &media_port.to_string()])
            .args(["-t", self.transport.sipp_mode(), "-m", &self.calls.to_string()])
            .args(["-cp", &control_port.to_string(), "-nostdin"])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs().max(1)), "-timeout_error"]);
        if let Some(rate) = self.rate {
            cmd.args(["-r", &rate.to_string()]);
        }
        if let Some(limit) = self.limit {
            cmd.args(["-l", &limit.to_string()]);
        }
        if let Some(service) = &self.service {
            cmd.args(["-s", service]);
        }
        if let Some((user, password)) = &self.credentials {
            cmd.args(["-au", user, "-ap", password]);
        }
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        for (k, v) in &self.sets {
            cmd.args(["-set", k, v]);
        }
        if self.rtp_echo {
            cmd.arg("-rtp_echo");
        }
        if self.trace_messages {
            cmd.arg("-trace_msg").arg("-message_file").arg(&files.messages);
        }
        cmd.arg("-trace_stat").arg("-stf").arg(&files.stats);
        cmd.arg("-trace_err").arg("-error_file").arg(&files.errors);
        cmd.arg("-trace_screen").arg("-screen_file").arg(&files.screen);
        cmd.args(&self.extra);
        let stderr = File::create(&files.stderr).map_err(io_err("SIPp stderr file"))?;
        cmd.current_dir(dir.path()).stdout(Stdio::null()).stderr(stderr);

        let group = Group::spawn(&mut cmd).map_err(io_err("starting sipp (Debian package sip-tester)"))?;
        let mut handle = SippHandle {
            group: Some(group),
            name,
            local: SocketAddr::new(IpAddr::V4(self.ip), port),
            media_port,
            control_port,
            transport: self.transport,
            deadline: Instant::now() + self.timeout + Duration::from_secs(5),
            digest: self.digest.clone(),
            files,
            dir,
        };
        handle.await_bound()?;
        Ok(handle)
    }
}

/// The length of the RTP in a pcap: from the first packet to the end of the last (the mean
/// spacing added).
pub fn pcap_duration(path: &Path) -> Result<Duration, Error> {
    let bytes = fs::read(path).map_err(io_err(format!("pcap {}", path.display())))?;
    let datagrams = pcap::read_udp(&bytes).map_err(|e| Error::Scenario(format!("{}: {e}", path.display())))?;
    match datagrams.as_slice() {
        [] => Err(Error::Scenario(format!("{}: no UDP packets", path.display()))),
        [_] => Ok(Duration::from_millis(20)),
        [first, .., last] => {
            let span = last.at.saturating_sub(first.at);
            Ok(span + span / (datagrams.len() as u32 - 1))
        }
    }
}

/// Replaces every `{{NAME}}` (or `{{NAME|default}}`) of `template` with `values[NAME]` (or the
/// default). Fails on a placeholder without value or default, and on a value no placeholder
/// uses (a misspelt name would otherwise go unnoticed).
pub fn fill_placeholders(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut used = BTreeSet::new();
    let mut missing = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed {{".to_owned());
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once('|') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(format!("bad placeholder name {{{{{inner}}}}}"));
        }
        match (values.get(name), default) {
            (Some(v), _) => {
                used.insert(name);
                out.push_str(v);
            }
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                missing.insert(name);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if !missing.is_empty() {
        return Err(format!("no value for {}", missing.into_iter().collect::<Vec<_>>().join(", ")));
    }
    let unused: Vec<&str> = values.keys().map(String::as_str).filter(|k| !used.contains(k)).collect();
    if !unused.is_empty() {
        return Err(format!("no placeholder named {}", unused.join(", ")));
    }
    Ok(out)
}

#[derive(Debug)]
struct Files {
    messages: PathBuf,
    stats: PathBuf,
    errors: PathBuf,
    screen: PathBuf,
    stderr: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            messages: dir.join("messages.log"),
            stats: dir.join("stats.csv"),
            errors: dir.join("errors.log"),
            screen: dir.join("screen.log"),
            stderr: dir.join("stderr.log"),
        }
    }
}

/// A running SIPp; killed (its whole process group) when dropped.
#[derive(Debug)]
pub struct SippHandle {
    group: Option<Group>,
    name: String,
    local: SocketAddr,
    media_port: u16,
    control_port: u16,
    transport: Transport,
    deadline: Instant,
    digest: Option<(String, String)>,
    files: Files,
    dir: TempDir,
}

impl SippHandle {
    /// The local SIP address (`-i`, `-p`): where to send requests to a UAS.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The local media port (`-mp`).
    pub fn media_port(&self) -> u16 {
        self.media_port
    }

    /// The run's directory (scenario, traces).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits for SIPp to exit (at most its timeout and a few seconds more, then kills it) and
    /// collects the outcome.
    pub fn wait(mut self) -> Result<SippOutcome, Error> {
        let mut exit = None;
        let mut timed_out = false;
        if let Some(group) = self.group.as_mut() {
            loop {
                match group.try_wait() {
                    Ok(Some(status)) => {
                        exit = Some(status);
                        break;
                    }
                    Ok(None) if Instant::now() >= self.deadline => {
                        timed_out = true;
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(20)),
                    Err(e) => return Err(io_err("waiting for sipp")(e)),
                }
            }
        }
        if let Some(mut group) = self.group.take() {
            let status = group.terminate(Duration::from_secs(1));
            exit = exit.or(status);
        }
        Ok(self.collect(exit, timed_out))
    }

    /// Kills SIPp now and collects what it logged.
    pub fn stop(mut self) -> SippOutcome {
        let exit = self.group.take().and_then(|mut g| g.terminate(Duration::from_secs(1)));
        self.collect(exit, false)
    }

    fn collect(&self, exit: Option<ExitStatus>, timed_out: bool) -> SippOutcome {
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        let stats = read(&self.files.stats);
        let (successful, failed) = parse_stats(&stats);
        let mut outcome = SippOutcome {
            name: self.name.clone(),
            exit_code: exit.and_then(|s| s.code()),
            timed_out,
            successful,
            failed,
            messages: read(&self.files.messages),
            errors: read(&self.files.errors),
            screen: read(&self.files.screen),
            stderr: read(&self.files.stderr),
            digest_failures: Vec::new(),
        };
        if let Some((user, password)) = &self.digest {
            outcome.digest_failures = check_digests(&outcome.traced(), user, password);
        }
        outcome
    }

    /// Returns when SIPp owns its sockets: the SIP port (listening, for TCP), the media port
    /// and the control port, all bound at its start (read from /proc, which never takes a port
    /// from SIPp, and checked against SIPp's own descriptors, not a process that got the port
    /// first), or when it has already exited (a quick UAC: [`SippHandle::wait`] tells how).
    /// Fails with its logs if it could not bind a port or takes over 5 s.
    fn await_bound(&mut self) -> Result<(), Error> {
        let limit = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = self.group.as_ref().map(Group::pid) {
                let owned = sockets_of(pid);
                if !owned.is_empty()
                    && owns_port(&owned, self.transport, self.local.port())
                    && owns_port(&owned, Transport::Udp, self.media_port)
                    && owns_port(&owned, Transport::Udp, self.control_port)
                {
                    return Ok(());
                }
            }
            let reason = match self.group.as_mut().map(Group::try_wait) {
                Some(Ok(Some(status))) if fs::read_to_string(&self.files.stderr).is_ok_and(|e| e.contains("Address already in use")) => {
                    Some(format!("exited with {status}"))
                }
                Some(Ok(Some(_))) => return Ok(()),
                Some(Err(e)) => Some(format!("cannot be waited for: {e}")),
                _ => (Instant::now() >= limit).then(|| format!("sockets not bound after 5 s ({})", self.local)),
            };
            if let Some(reason) = reason {
                let exit = self.group.take().and_then(|mut g| g.terminate(Duration::from_secs(1)));
                let report = self.collect(exit, false).report();
                return Err(Error::Start { reason, report });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SippHandle {
    fn drop(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.terminate(Duration::from_millis(500));
        }
    }
}

/// The inodes of the sockets process `pid` has open (from /proc/PID/fd).
fn sockets_of(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return BTreeSet::new() };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// Whether one of the sockets `inodes` is bound to `port` with `transport` (TCP: listening),
/// from /proc/net/{udp,tcp}{,6}: local address in column 1, state in 3, inode in 9.
fn owns_port(inodes: &BTreeSet<u64>, transport: Transport, port: u16) -> bool {
    let tables: &[&str] = match transport {
        Transport::Udp => &["/proc/net/udp", "/proc/net/udp6"],
        Transport::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
    };
    let port_hex = format!(":{port:04X}");
    tables.iter().any(|t| {
        fs::read_to_string(t).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() > 9
                    && cols[1].ends_with(&port_hex)
                    && (transport == Transport::Udp || cols[3] == "0A")
                    && cols[9].parse().is_ok_and(|inode: u64| inodes.contains(&inode))
            })
        })
    })
}

/// `SuccessfulCall(C)` and `FailedCall(C)` of the last line of SIPp's statistics file.
fn parse_stats(csv: &str) -> (u64, u64) {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return (0, 0) };
    let Some(last) = lines.next_back() else { return (0, 0) };
    let columns: Vec<&str> = header.split(';').collect();
    let values: Vec<&str> = last.split(';').collect();
    let get = |name: &str| columns.iter().position(|c| *c == name).and_then(|i| values.get(i)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

fn check_digests(messages: &[Traced], user: &str, password: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let mut checked = 0;
    for m in messages.iter().filter(|m| !m.sent) {
        let Some(method) = m.method() else { continue };
        for name in ["Authorization", "Proxy-Authorization"] {
            for value in m.headers(name) {
                checked += 1;
                if let Err(e) = verify_digest(value, method, user, password) {
                    failures.push(format!("{method} {name}: {e}"));
                }
            }
        }
    }
    if checked == 0 {
        failures.push(format!("no Authorization or Proxy-Authorization received (expected credentials of {user})"));
    }
    failures
}

/// Checks credentials (an `Authorization` or `Proxy-Authorization` value) that a peer sent
/// with a `method` request: they parse, name `user`, and their response matches `password`.
fn verify_digest(value: &str, method: &str, user: &str, password: &str) -> Result<(), String> {
    let credentials = Credentials::parse(value).map_err(|e| format!("{e}: {value}"))?;
    if credentials.username != user {
        return Err(format!("username {}, expected {user}", credentials.username));
    }
    if digest::verify(&credentials, method, &Login { username: user, password }, &[]) {
        Ok(())
    } else {
        Err(format!("response {} does not match the password of {user}", credentials.response))
    }
}

/// What a SIPp run did.
#[derive(Clone, Debug)]
pub struct SippOutcome {
    /// The scenario's file name, or the built-in scenario's name.
    pub name: String,
    /// SIPp's exit code: 0 when every call succeeded, 1 when one failed, 255 on a fatal error;
    /// `None` when killed.
    pub exit_code: Option<i32>,
    /// Still running at its deadline, so killed.
    pub timed_out: bool,
    /// Successful calls (cumulative, from the statistics file).
    pub successful: u64,
    /// Failed calls (cumulative, from the statistics file).
    pub failed: u64,
    /// Every message sent and received (`-trace_msg`); see [`SippOutcome::traced`].
    pub messages: String,
    /// Unexpected messages and other errors (`-trace_err`).
    pub errors: String,
    /// The final screens (`-trace_screen`): message counts per scenario step.
    pub screen: String,
    /// SIPp's standard error.
    pub stderr: String,
    /// Digest responses that did not match (see [`Sipp::expect_digest`]).
    pub digest_failures: Vec<String>,
}

impl SippOutcome {
    /// Exit code 0, at least one successful call, none failed, and the digests matched.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.successful > 0 && self.failed == 0 && self.digest_failures.is_empty()
    }

    /// Everything useful in a failure message: counts, errors, screens and messages.
    pub fn report(&self) -> String {
        let mut r = format!(
            "== SIPp {}: exit {:?}{}, {} successful, {} failed call(s)\n",
            self.name,
            self.exit_code,
            if self.timed_out { " (killed at its deadline)" } else { "" },
            self.successful,
            self.failed
        );
        for f in &self.digest_failures {
            r.push_str(&format!("digest check: {f}\n"));
        }
        for (title, text) in [("stderr", &self.stderr), ("errors", &self.errors), ("screen", &self.screen), ("messages", &self.messages)] {
            if !text.trim().is_empty() {
                r.push_str(&format!("-- {title}:\n{}\n", text.trim_end()));
            }
        }
        r
    }

    /// The messages of the message log, in order.
    pub fn traced(&self) -> Vec<Traced> {
        parse_message_log(&self.messages)
    }

    /// The status codes of the responses received, in order.
    pub fn received_statuses(&self) -> Vec<u16> {
        self.traced().iter().filter(|m| !m.sent).filter_map(Traced::status).collect()
    }

    /// The first received response with this status code.
    pub fn received_response(&self, code: u16) -> Option<Traced> {
        self.traced().into_iter().find(|m| !m.sent && m.status() == Some(code))
    }

    /// The first received request with this method.
    pub fn received_request(&self, method: &str) -> Option<Traced> {
        self.traced().into_iter().find(|m| !m.sent && m.method() == Some(method))
    }
}

/// One SIP message of SIPp's message log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// Sent by SIPp (else received).
    pub sent: bool,
    /// The message, start line to body.
    pub text: String,
}

impl Traced {
    /// The start line.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim_end()
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line().strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        let line = self.start_line();
        if line.starts_with("SIP/") {
            return None;
        }
        line.split_whitespace().next()
    }

    /// The values of every header `name` (case-insensitive, no compact forms), trimmed.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    /// The value of the first header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The body.
    pub fn body(&self) -> &str {
        self.split().1
    }

    fn head(&self) -> &str {
        self.split().0
    }

    fn split(&self) -> (&str, &str) {
        for sep in ["\r\n\r\n", "\n\n"] {
            if let Some(i) = self.text.find(sep) {
                return (&self.text[..i], &self.text[i + sep.len()..]);
            }
        }
        (&self.text, "")
    }
}

/// Splits SIPp's `-trace_msg` file: blocks opened by a line of dashes, then a line saying
/// "UDP message sent (N bytes):" or "TCP message received [N] bytes :", then the message.
fn parse_message_log(log: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in log.split("\n-----------------------------------------------").map(|b| b.trim_start_matches('-')) {
        let mut lines = block.splitn(3, '\n');
        let _stamp = lines.next();
        let Some(direction) = lines.next() else { continue };
        let sent = if direction.contains("message sent") {
            true
        } else if direction.contains("message received") {
            false
        } else {
            continue;
        };
        let text = lines.next().unwrap_or("").trim_matches(|c| c == '\r' || c == '\n');
        if !text.is_empty() {
            out.push(Traced { sent, text: text.to_owned() });
        }
    }
    out
}

/// A spawned program in a process group of its own, with a watchdog in the same group that
/// kills the group when the test process dies (its stdin, a pipe from us, then closes), so
/// that no peer outlives a test, even one killed by a signal. Dropping it kills the group.
#[derive(Debug)]
pub(crate) struct Group {
    leader: Child,
    leader_status: Option<ExitStatus>,
    watchdog: Option<(Child, ChildStdin)>,
}

/// The watchdog: ignores the TERM sent to the group, and on end of input (the test process
/// gone) kills the group.
const WATCHDOG: &str = r#"trap '' TERM INT HUP; read -r _; kill -s TERM -- "-$1" 2>/dev/null; sleep 1; kill -s KILL -- "-$1" 2>/dev/null"#;

impl Group {
    /// Spawns `cmd` as the leader of a new process group, and its watchdog.
    pub(crate) fn spawn(cmd: &mut Command) -> io::Result<Group> {
        cmd.process_group(0);
        let leader = cmd.spawn()?;
        let pgid = leader.id();
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog", &pgid.to_string()])
            .process_group(pgid as i32)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut w| w.stdin.take().map(|stdin| (w, stdin)));
        Ok(Group { leader, leader_status: None, watchdog })
    }

    /// The leader's process id, also the group id.
    pub(crate) fn pid(&self) -> u32 {
        self.leader.id()
    }

    /// The leader's exit status, if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.leader_status.is_none() {
            self.leader_status = self.leader.try_wait()?;
        }
        Ok(self.leader_status)
    }

    /// Sends `signal` (a name: TERM, KILL) to the whole group, while it surely still exists
    /// (its leader not reaped, or the watchdog alive, holds the group id).
    fn signal(&self, signal: &str) {
        if self.leader_status.is_some() && self.watchdog.is_none() {
            return;
        }
        let _ = Command::new("kill").args(["-s", signal, "--", &format!("-{}", self.pid())]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// TERM to the group, up to `grace` for the leader to exit, then KILL to the group; reaps
    /// the leader and the watchdog. The leader's exit status, if it exited.
    pub(crate) fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if matches!(self.try_wait(), Ok(None)) {
            self.signal("TERM");
            let limit = Instant::now() + grace;
            while matches!(self.try_wait(), Ok(None)) && Instant::now() < limit {
                thread::sleep(Duration::from_millis(10));
            }
        }
        self.signal("KILL");
        if self.leader_status.is_none() {
            self.leader_status = self.leader.wait().ok();
        }
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.leader_status
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.leader_status.is_none() || self.watchdog.is_some() {
            self.terminate(Duration::from_millis(500));
        }
    }
}

/// Writes `text` to `path`, creating or truncating it.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let mut f = File::create(path).map_err(io_err(format!("writing {}", path.display())))?;
    f.write_all(text.as_bytes()).map_err(io_err(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_are_filled_with_values_and_defaults() {
        let t = "a={{A}} b={{B|7}} c={{C|}}";
        assert_eq!(fill_placeholders(t, &values(&[("A", "1")])).expect("filled"), "a=1 b=7 c=");
        assert_eq!(fill_placeholders(t, &values(&[("A", "1"), ("B", "2")])).expect("filled"), "a=1 b=2 c=");
    }

    #[test]
    fn missing_and_unused_placeholders_are_errors() {
        assert!(fill_placeholders("{{A}}", &values(&[])).expect_err("an error").contains("no value for A"));
        assert!(fill_placeholders("{{A}}", &values(&[("A", "1"), ("B", "2")])).expect_err("an error").contains("no placeholder named B"));
        assert!(fill_placeholders("{{a}}", &values(&[])).is_err());
        assert!(fill_placeholders("{{A", &values(&[])).is_err());
    }

    #[test]
    fn every_scenario_file_names_its_placeholders_well() {
        for entry in fs::read_dir(scenario_dir()).expect("tests/sipp") {
            let path = entry.expect("entry").path();
            let text = fs::read_to_string(&path).expect("scenario");
            // Give every placeholder without default a value, then it must fill.
            let mut v = BTreeMap::new();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("{{") {
                let end = rest[i..].find("}}").expect("closed placeholder");
                let inner = &rest[i + 2..i + end];
                if !inner.contains('|') {
                    v.insert(inner.to_owned(), "x".to_owned());
                }
                rest = &rest[i + end..];
            }
            fill_placeholders(&text, &v).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn statistics_give_the_cumulative_counts() {
        let csv = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C)\n\
                   t;0;0;0;0;\n\
                   t;1;3;0;2;\n";
        assert_eq!(parse_stats(csv), (3, 2));
        assert_eq!(parse_stats(""), (0, 0));
    }

    #[test]
    fn message_log_splits_into_messages() {
        let log = "----------------------------------------------- 2026-01-01 00:00:00.000000\n\
                   UDP message sent (100 bytes):\n\nINVITE sip:a@b SIP/2.0\r\nVia: x\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\n\n\
                   ----------------------------------------------- 2026-01-01 00:00:00.100000\n\
                   TCP message received [50] bytes :\n\nSIP/2.0 407 Proxy Authentication Required\r\n\
                   Proxy-Authenticate: Digest realm=\"r\"\r\n\r\n\n";
        let m = parse_message_log(log);
        assert_eq!(m.len(), 2);
        assert!(m[0].sent && m[0].method() == Some("INVITE") && m[0].body().starts_with("v=0"));
        assert_eq!(m[0].header("cseq"), Some("1 INVITE"));
        assert!(!m[1].sent);
        assert_eq!(m[1].status(), Some(407));
        assert_eq!(m[1].header("Proxy-Authenticate"), Some("Digest realm=\"r\""));
    }

    #[test]
    fn pcap_length_of_the_sipp_capture() {
        let path = Path::new(SIPP_PCAP_DIR).join("g711a.pcap");
        let d = pcap_duration(&path).expect("readable pcap");
        assert!((7000..7100).contains(&d.as_millis()), "{d:?}");
    }
}
