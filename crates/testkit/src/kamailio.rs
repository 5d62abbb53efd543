//! Kamailio as a registrar and proxy for real-peer tests.
//!
//! [`Kamailio::start`] fills the template `tests/kamailio/registrar.cfg` (see
//! [`config_template`]) for one test, writes it into a temporary directory of its own and runs
//! Kamailio in the foreground on a free loopback port, UDP and TCP, in a process group of its
//! own (killed on drop, even when the test panics; a watchdog kills it when the test process
//! dies). It returns once Kamailio answers both on its control socket and over SIP. What the
//! registrar does is described at the top of the template:
//!
//! - REGISTER: digest authentication against [`KamailioConfig::users`] (401, `qop="auth"`,
//!   [`KamailioConfig::algorithm`]: Kamailio 5.6 offers MD5 or SHA-256, one per instance),
//!   then saved in memory; below [`KamailioConfig::min_expires`] 423 Interval Too Brief with
//!   Min-Expires; above [`KamailioConfig::max_expires`] lowered to it.
//! - A wrong password gets a new challenge or 403 Forbidden ([`WrongPassword`]).
//! - Requests to a registered user (the Request-URI's user part) are record-routed and relayed
//!   to its contacts (all of them, in parallel); unknown users get 404.
//! - Requests from a known user (the From user) must pass proxy authentication (407,
//!   `qop="auth"`), then go to a registered user or to [`KamailioConfig::outbound_target`]
//!   (the "PSTN" side, a SIPp UAS in tests), else 404.
//! - In-dialog requests follow loose routing.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::free_port;
use crate::sipp::{Group, Transport, fill_placeholders, write_file};
use happ_sip::digest::Algorithm;

/// The workspace's `tests/kamailio/registrar.cfg`, the configuration template.
pub fn config_template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/kamailio/registrar.cfg")
}

/// What a request with a wrong password gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WrongPassword {
    /// A new challenge (401 for REGISTER, 407 otherwise), as Kamailio's default configuration
    /// does: a client that keeps retrying loops on it.
    #[default]
    Rechallenge,
    /// 403 Forbidden.
    Forbidden,
}

/// How to run the registrar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KamailioConfig {
    /// User names and their plaintext passwords. Names: letters, digits and `._~+-`;
    /// passwords: printable ASCII without `"`, `\` or `$`.
    pub users: Vec<(String, String)>,
    /// Digest algorithm of the challenges (Kamailio's `auth` module `algorithm`).
    pub algorithm: Algorithm,
    /// Shortest registration accepted, in seconds (shorter ones get 423 with Min-Expires).
    pub min_expires: u32,
    /// Longest registration, in seconds (longer ones are granted this); also the default.
    pub max_expires: u32,
    /// Where authenticated calls from users to numbers not registered here go.
    pub outbound_target: Option<SocketAddr>,
    /// Transport toward the outbound target.
    pub outbound_transport: Transport,
    /// Response to a wrong password.
    pub wrong_password: WrongPassword,
    /// Realm of the challenges.
    pub realm: String,
    /// Lifetime of a nonce in seconds; an older one gets a challenge with `stale=true`.
    pub nonce_expire: u32,
    /// Kamailio's log level (`debug`): 1 warnings, 2 information (each request's
    /// authentication result), 3 debugging.
    pub log_level: u8,
    /// Port for UDP and TCP; a free one unless set.
    pub port: Option<u16>,
    /// Users not in [`users`](Self::users) authenticate with this prefix followed by their
    /// name: for load tests with thousands of users, more than Kamailio's configuration can
    /// list. Same characters as a password.
    pub password_prefix: Option<String>,
}

impl Default for KamailioConfig {
    fn default() -> Self {
        KamailioConfig {
            users: Vec::new(),
            algorithm: Algorithm::Md5,
            min_expires: 60,
            max_expires: 3600,
            outbound_target: None,
            outbound_transport: Transport::Udp,
            wrong_password: WrongPassword::Rechallenge,
            realm: "happ.test".to_owned(),
            nonce_expire: 300,
            log_level: 2,
            port: None,
            password_prefix: None,
        }
    }
}

impl KamailioConfig {
    /// The default configuration with these users.
    pub fn with_users(users: &[(&str, &str)]) -> KamailioConfig {
        KamailioConfig { users: users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect(), ..Default::default() }
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str, v: &str| Err(Error::Config(format!("{what} {v:?} has characters the harness does not put in a Kamailio config")));
        for (user, password) in &self.users {
            if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || "._~+-".contains(c)) {
                return bad("user name", user);
            }
            if !safe_literal(password) {
                return bad("password of", user);
            }
        }
        if let Some(prefix) = &self.password_prefix
            && !safe_literal(prefix)
        {
            return bad("password_prefix", prefix);
        }
        if !safe_literal(&self.realm) {
            return bad("realm", &self.realm);
        }
        if !matches!(self.algorithm, Algorithm::Md5 | Algorithm::Sha256) {
            return Err(Error::Config(format!("algorithm {}: Kamailio 5.6 challenges with MD5 or SHA-256 only", self.algorithm.as_str())));
        }
        if self.min_expires > self.max_expires {
            return Err(Error::Config(format!("min_expires {} above max_expires {}", self.min_expires, self.max_expires)));
        }
        Ok(())
    }
}

/// Printable ASCII that can sit in a Kamailio string literal as it is.
fn safe_literal(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| (c.is_ascii_graphic() && !"\"\\$".contains(c)) || c == ' ')
}

/// A failure to run Kamailio.
#[derive(Debug)]
pub enum Error {
    /// A file or process operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// The configuration cannot be used.
    Config(String),
    /// Kamailio exited, or did not answer in time.
    Start {
        /// What happened.
        reason: String,
        /// Kamailio's own log.
        log: String,
    },
    /// A control command failed.
    Rpc {
        /// The command.
        command: String,
        /// What kamcmd said.
        output: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Config(m) => write!(f, "Kamailio configuration: {m}"),
            Error::Start { reason, log } => write!(f, "Kamailio did not start: {reason}\n--- Kamailio log ---\n{}", tail(log, 200)),
            Error::Rpc { command, output } => write!(f, "kamcmd {command}: {output}"),
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

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running Kamailio; see the module documentation.
#[derive(Debug)]
pub struct Kamailio {
    config: KamailioConfig,
    port: u16,
    group: Option<Group>,
    kamailio: PathBuf,
    kamcmd: PathBuf,
    dir: TempDir,
}

impl Kamailio {
    /// Writes the configuration and starts Kamailio; returns once it answers. On failure the
    /// error holds Kamailio's log. A port the harness chose is chosen again when another
    /// process took it first (tests run in parallel).
    pub fn start(config: KamailioConfig) -> Result<Kamailio, Error> {
        config.validate()?;
        let mut attempt = 1;
        loop {
            match Kamailio::start_once(config.clone()) {
                Err(Error::Start { log, .. }) if config.port.is_none() && attempt < 5 && log.contains("Address already in use") => attempt += 1,
                other => return other,
            }
        }
    }

    fn start_once(config: KamailioConfig) -> Result<Kamailio, Error> {
        let dir = tempfile::Builder::new().prefix("happ-kamailio-").tempdir().map_err(io_err("temporary directory"))?;
        let mut k = Kamailio {
            port: config.port.unwrap_or_else(|| free_port(1)),
            group: None,
            kamailio: program("kamailio")?,
            kamcmd: program("kamcmd")?,
            config,
            dir,
        };
        fs::create_dir_all(k.run_dir()).map_err(io_err("run directory"))?;
        let template = fs::read_to_string(config_template()).map_err(io_err("reading tests/kamailio/registrar.cfg"))?;
        let text = fill_placeholders(&template, &k.placeholders()).map_err(|m| Error::Config(format!("registrar.cfg: {m}")))?;
        write_file(&k.cfg_path(), &text).map_err(|e| Error::Config(e.to_string()))?;
        k.launch()?;
        Ok(k)
    }

    /// Where it listens, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its SIP URI over `transport`, as a proxy or registrar address.
    pub fn uri(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("sip:{}", self.addr()),
            Transport::Tcp => format!("sip:{};transport=tcp", self.addr()),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &KamailioConfig {
        &self.config
    }

    /// The contact addresses registered for `user` (none if not registered).
    pub fn registered(&self, user: &str) -> Result<Vec<String>, Error> {
        // `s:` keeps kamcmd from sending a numeric user name ("1001") as an integer.
        let out = self.rpc(&["ul.lookup", "location", &format!("s:{user}")])?;
        if out.contains("AOR not found") {
            return Ok(Vec::new());
        }
        if out.trim_start().starts_with("error") {
            return Err(Error::Rpc { command: format!("ul.lookup location {user}"), output: out });
        }
        Ok(out.lines().filter_map(|l| l.trim().strip_prefix("Address: ")).map(str::to_owned).collect())
    }

    /// A control command through `kamcmd` (`["ul.dump"]`, `["core.version"]`...): its output.
    pub fn rpc(&self, args: &[&str]) -> Result<String, Error> {
        let out = Command::new(&self.kamcmd)
            .arg("-s")
            .arg(format!("unix:{}", self.ctl_socket().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("running kamcmd"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() { Ok(text) } else { Err(Error::Rpc { command: args.join(" "), output: text }) }
    }

    /// Stops and starts it again on the same port with the same configuration: registrations
    /// and nonces are lost, as in a real restart.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let mut log = OpenOptions::new().append(true).create(true).open(self.log_path()).map_err(io_err("Kamailio log"))?;
        let _ = io::Write::write_all(&mut log, b"\n--- restarted by the test harness ---\n");
        self.launch()
    }

    /// Stops it (TERM to its process group, then KILL); [`Kamailio::restart`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.terminate(Duration::from_secs(3));
        }
    }

    /// Kamailio's log so far (standard error, all runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Its temporary directory (configuration, log, control socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn placeholders(&self) -> std::collections::BTreeMap<String, String> {
        let c = &self.config;
        let mut defines = Vec::new();
        if let Some(target) = c.outbound_target {
            defines.push(format!("#!define OUTBOUND_TARGET \"sip:{target};transport={}\"", c.outbound_transport.uri_param()));
        }
        if let Some(prefix) = &c.password_prefix {
            defines.push(format!("#!define PASSWORD_PREFIX \"{prefix}\""));
        }
        if c.wrong_password == WrongPassword::Forbidden {
            defines.push("#!define WRONG_PASSWORD_403".to_owned());
        }
        let users: Vec<String> = c.users.iter().map(|(u, p)| format!("\t$sht(users=>{u}) = \"{p}\";")).collect();
        [
            ("DEFINES", defines.join("\n")),
            ("DEBUG", c.log_level.to_string()),
            ("IP", Ipv4Addr::LOCALHOST.to_string()),
            ("PORT", self.port.to_string()),
            ("CTL_SOCKET", self.ctl_socket().display().to_string()),
            ("MIN_EXPIRES", c.min_expires.to_string()),
            ("MAX_EXPIRES", c.max_expires.to_string()),
            ("ALGORITHM", c.algorithm.as_str().to_owned()),
            ("NONCE_EXPIRE", c.nonce_expire.to_string()),
            ("REALM", c.realm.clone()),
            ("USERS", users.join("\n")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn cfg_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.cfg")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn ctl_socket(&self) -> PathBuf {
        self.dir.path().join("ctl.sock")
    }

    /// Runs Kamailio in the foreground (`-DD`), logging to stderr (`-E`) into the log file,
    /// and waits until it answers.
    fn launch(&mut self) -> Result<(), Error> {
        let _ = fs::remove_file(self.ctl_socket());
        let log = OpenOptions::new().append(true).create(true).open(self.log_path()).map_err(io_err("Kamailio log"))?;
        let log2 = log.try_clone().map_err(io_err("Kamailio log"))?;
        let mut cmd = Command::new(&self.kamailio);
        cmd.arg("-f")
            .arg(self.cfg_path())
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(self.run_dir())
            .arg("-P")
            .arg(self.dir.path().join("kamailio.pid"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        self.group = Some(Group::spawn(&mut cmd).map_err(io_err("starting kamailio (Debian package kamailio)"))?);
        self.await_ready(Duration::from_secs(10))
    }

    fn await_ready(&mut self, limit: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + limit;
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err("probe socket"))?;
        probe.set_read_timeout(Some(Duration::from_millis(100))).map_err(io_err("probe socket"))?;
        for attempt in 0u32.. {
            let exited = match self.group.as_mut().map(Group::try_wait) {
                Some(Ok(Some(status))) => Some(format!("exited with {status}")),
                Some(Err(e)) => Some(format!("cannot be waited for: {e}")),
                Some(Ok(None)) => None,
                None => Some("not started".to_owned()),
            };
            if let Some(reason) = exited {
                self.stop();
                return Err(Error::Start { reason, log: self.log() });
            }
            if self.ctl_socket().exists() && self.rpc(&["core.version"]).is_ok() && self.answers_sip(&probe, attempt) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Error::Start { reason: format!("no answer on {} within {limit:?}", self.addr()), log: self.log() });
            }
            thread::sleep(Duration::from_millis(20));
        }
        unreachable!("the loop above returns")
    }

    /// Sends an OPTIONS over UDP: any response means the SIP workers run.
    fn answers_sip(&self, probe: &UdpSocket, attempt: u32) -> bool {
        let Ok(local) = probe.local_addr() else { return false };
        let msg = format!(
            "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{attempt};rport\r\n\
             From: <sip:probe@{local}>;tag=ready\r\nTo: <sip:{addr}>\r\nCall-ID: ready-{attempt}@{local}\r\n\
             CSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            addr = self.addr(),
            cseq = attempt + 1,
        );
        if probe.send_to(msg.as_bytes(), self.addr()).is_err() {
            return false;
        }
        let mut buf = [0u8; 2048];
        matches!(probe.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 "))
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A program from PATH, or from the sbin directories where Debian puts Kamailio's (not on a
/// non-root user's PATH).
fn program(name: &str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Config(format!("{name} not found on PATH or in /usr/sbin (Debian package kamailio)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_checked() {
        assert!(KamailioConfig::with_users(&[("alice", "s3cret!")]).validate().is_ok());
        assert!(KamailioConfig::with_users(&[("+4930123", "a b")]).validate().is_ok());
        assert!(KamailioConfig::with_users(&[("al ice", "x")]).validate().is_err());
        assert!(KamailioConfig::with_users(&[("alice", "x\"y")]).validate().is_err());
        assert!(KamailioConfig::with_users(&[("alice", "$x")]).validate().is_err());
        assert!(KamailioConfig::with_users(&[("alice", "")]).validate().is_err());
        assert!(KamailioConfig { min_expires: 10, max_expires: 5, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn template_fills_completely() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = Kamailio {
            config: KamailioConfig {
                outbound_target: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 5099))),
                wrong_password: WrongPassword::Forbidden,
                ..KamailioConfig::with_users(&[("alice", "secret")])
            },
            port: 5098,
            group: None,
            kamailio: PathBuf::new(),
            kamcmd: PathBuf::new(),
            dir,
        };
        let text = fill_placeholders(&fs::read_to_string(config_template()).expect("template"), &k.placeholders()).expect("filled");
        assert!(text.contains("#!define OUTBOUND_TARGET \"sip:127.0.0.1:5099;transport=udp\""));
        assert!(text.contains("#!define WRONG_PASSWORD_403"));
        assert!(text.contains("$sht(users=>alice) = \"secret\";"));
        assert!(text.contains("listen=tcp:127.0.0.1:5098"));
        assert!(!text.contains("{{"));
    }
}
