//! The gateway the demo calls: its configuration on loopback, its process, and what the demo
//! reads from its control API.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sample;
use crate::config::Config;

/// The number of the demo's phone.
pub const NUMBER: &str = "+15550100";

/// How long the gateway may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the gateway may take to exit after SIGTERM (its drain time is 1 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// RTP port pairs in the demo's range.
const RTP_PAIRS: u16 = 10;

/// The assistant that answers, and the speech section to run it with.
#[derive(Clone, Debug)]
pub struct Assistant {
    /// The `[[assistants]]` table.
    pub table: toml::Table,
    /// The `[speech]` table, if any.
    pub speech: Option<toml::Value>,
    /// Where it comes from, for the report.
    pub source: String,
}

impl Assistant {
    /// The built-in sample assistant, with the local speech engines.
    pub fn sample() -> Assistant {
        Assistant { table: sample::assistant(), speech: None, source: "the built-in sample assistant".into() }
    }

    /// The first `[[assistants]]` of a configuration file (with its knowledge) and its `[speech]`.
    /// The file's other sections are not read: the demo has its own phone and addresses.
    pub fn from_file(path: &Path) -> Result<Assistant, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.to_string().trim()))?;
        let table = match doc.remove("assistants") {
            Some(toml::Value::Array(list)) => match list.into_iter().next() {
                Some(toml::Value::Table(t)) => t,
                _ => return Err(format!("{}: no [[assistants]] entry to answer the demo call", path.display())),
            },
            _ => return Err(format!("{}: no [[assistants]] entry to answer the demo call", path.display())),
        };
        Ok(Assistant { table, speech: doc.remove("speech"), source: format!("the first assistant of {}", path.display()) })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        self.table.get("id").and_then(toml::Value::as_str).unwrap_or("")
    }

    /// Its name (its id when it has none).
    pub fn name(&self) -> &str {
        self.table.get("name").and_then(toml::Value::as_str).filter(|n| !n.is_empty()).unwrap_or(self.id())
    }

    /// Its greeting.
    pub fn first_message(&self) -> &str {
        self.table.get("firstMessage").and_then(toml::Value::as_str).unwrap_or("")
    }
}

/// The loopback addresses of the demo gateway.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    /// SIP (UDP and TCP).
    pub sip: SocketAddr,
    /// Control API.
    pub control: SocketAddr,
    /// RTP range, first and last port.
    pub rtp: (u16, u16),
    /// The caller's SIP address: the phone's trunk.
    pub caller: SocketAddr,
}

impl Addresses {
    /// Free loopback ports for the gateway, around the caller's SIP address. A port found free
    /// may be taken by someone else before the gateway binds it: the gateway then fails to start
    /// and says so.
    pub fn pick(caller: SocketAddr, seed: u64) -> Result<Addresses, String> {
        let ip = Ipv4Addr::LOCALHOST;
        let sip = (0..20)
            .find_map(|_| {
                let udp = UdpSocket::bind((ip, 0)).ok()?;
                let addr = udp.local_addr().ok()?;
                TcpListener::bind(addr).ok().map(|_| addr)
            })
            .ok_or("no free loopback port for the gateway's SIP")?;
        let control = TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map_err(|e| format!("no free loopback port for the control API: {e}"))?;
        // An RTP range whose first pair is free (the gateway skips pairs it cannot bind).
        let mut x = seed | 1;
        let rtp = (0..200)
            .find_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let first = 20_000 + 2 * (x % 9_000) as u16;
                let free = UdpSocket::bind((ip, first)).is_ok() && UdpSocket::bind((ip, first + 1)).is_ok();
                free.then_some((first, first + 2 * RTP_PAIRS - 1))
            })
            .ok_or("no free RTP ports on loopback")?;
        Ok(Addresses { sip, control, rtp, caller })
    }
}

/// The gateway configuration of the demo: loopback addresses, one trunk phone answered by
/// `handler` and linked to `assistant`, no `[happ]`.
pub fn config_text(assistant: &Assistant, handler: &str, addresses: &Addresses, token: &str) -> Result<String, String> {
    let mut doc = toml::Table::new();
    let table = |pairs: Vec<(&str, toml::Value)>| toml::Value::Table(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
    doc.insert("sip".into(), table(vec![("listen", addresses.sip.to_string().into())]));
    doc.insert(
        "rtp".into(),
        table(vec![("bind", "127.0.0.1".into()), ("port_range", format!("{}-{}", addresses.rtp.0, addresses.rtp.1).into()), ("inactivity_secs", 30.into())]),
    );
    doc.insert("control".into(), table(vec![("listen", addresses.control.to_string().into()), ("token", token.into())]));
    doc.insert("calls".into(), table(vec![("max_concurrent", 2.into()), ("max_duration_secs", 300.into()), ("drain_secs", 1.into())]));
    doc.insert("log".into(), table(vec![("level", "info".into())]));
    doc.insert(
        "phones".into(),
        toml::Value::Array(vec![table(vec![
            ("phoneNumber", NUMBER.into()),
            ("sipLogin", "demo".into()),
            ("telephonyUrl", addresses.caller.to_string().into()),
            ("codec", "alaw".into()),
            ("assistantId", assistant.id().into()),
            ("register", false.into()),
            ("handler", handler.into()),
        ])]),
    );
    doc.insert("assistants".into(), toml::Value::Array(vec![toml::Value::Table(assistant.table.clone())]));
    if let Some(speech) = &assistant.speech {
        doc.insert("speech".into(), speech.clone());
    }
    let text = toml::to_string(&doc).map_err(|e| format!("cannot write the demo configuration: {e}"))?;
    // Checked here, with the environment the gateway will see, so a bad assistant or [speech]
    // is reported as such rather than as a gateway that did not start.
    Config::from_text(Path::new("(the demo's configuration built from it)"), &text, |name| std::env::var(name).ok())
        .map_err(|e| format!("{} cannot be used: {e}", assistant.source))?;
    Ok(text)
}

/// A `happ-gateway run` child process.
pub struct Gateway {
    child: Child,
    config: PathBuf,
    log: PathBuf,
    stopped: bool,
}

impl Gateway {
    /// Writes `config` to a private temporary file and starts this program's `run` on it, its
    /// output to `log`.
    pub fn start(config: &str, log: &Path, seed: u64) -> Result<Gateway, String> {
        let path = std::env::temp_dir().join(format!("happ-gateway-demo-{}-{:08x}.toml", std::process::id(), seed as u32));
        write_private(&path, config).map_err(|e| format!("cannot write the demo configuration {}: {e}", path.display()))?;
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to start the gateway: {e}"))?;
        let child = Command::new(exe).arg("run").arg("--config").arg(&path).stdin(Stdio::null()).stdout(out).stderr(err).spawn();
        match child {
            Ok(child) => Ok(Gateway { child, config: path, log: log.to_owned(), stopped: false }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(format!("cannot start the gateway: {e}"))
            }
        }
    }

    /// Waits until `/readyz` says 200; fails when the process exits first or takes too long.
    pub async fn wait_ready(&mut self, control: &Control) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                return Err(format!("the gateway exited ({status}) before it was ready\n{}", self.log_tail(15)));
            }
            if control.ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the gateway was not ready within {} s\n{}", READY_TIMEOUT.as_secs(), self.log_tail(15)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines of its log, indented, after a line naming the file.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n");
        format!("the gateway's log ({}) ends with:\n{tail}", self.log.display())
    }

    /// SIGTERM, then a kill if it has not exited within a few seconds.
    pub fn stop(&mut self) -> Result<ExitStatus, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.stopped = true;
            return Ok(status);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.stopped = true;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.stopped = true;
                    return Err(format!("the gateway did not stop within {} s of SIGTERM and was killed", STOP_TIMEOUT.as_secs()));
                }
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // The control token is in it: readable by this user only.
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

/// The gateway's control API on loopback.
pub struct Control {
    client: reqwest::Client,
    base: String,
    token: String,
}

/// A call as `GET /calls` and `GET /calls/{id}` show it (the fields the demo reads).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInfo {
    /// Its id.
    pub id: String,
    /// `inbound` or `outbound`.
    #[serde(default)]
    pub direction: String,
    /// Seconds since the epoch.
    #[serde(default)]
    pub started_at: u64,
    /// The SIP Call-ID.
    #[serde(default)]
    pub sip_call_id: Option<String>,
    /// What the gateway heard and said, when its handler keeps a transcript.
    #[serde(default)]
    pub transcript: Option<Vec<TranscriptEntry>>,
}

/// One turn of the gateway's transcript.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptEntry {
    /// `caller` or `assistant`.
    pub role: String,
    /// What was heard or said.
    pub text: String,
    /// Seconds since the answer.
    pub at: f64,
    /// Whether the caller cut it short.
    #[serde(default)]
    pub interrupted: bool,
    /// The gateway's own latency for an assistant turn.
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

impl Control {
    /// The control API at `addr` with `token`.
    pub fn new(addr: SocketAddr, token: &str) -> Result<Control, String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Control { client, base: format!("http://{addr}"), token: token.to_owned() })
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        self.client.get(format!("{}/readyz", self.base)).send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {path}: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("GET {path}: {e}"))
    }

    /// The gateway's id of the call with this SIP Call-ID (else its newest inbound call).
    pub async fn find_call(&self, sip_call_id: &str) -> Result<String, String> {
        let calls: Vec<CallInfo> = self.get("/calls").await?;
        if let Some(c) = calls.iter().find(|c| c.sip_call_id.as_deref() == Some(sip_call_id)) {
            return Ok(c.id.clone());
        }
        calls
            .iter()
            .filter(|c| c.direction == "inbound")
            .max_by_key(|c| c.started_at)
            .map(|c| c.id.clone())
            .ok_or_else(|| "the gateway lists no inbound call".into())
    }

    /// One call.
    pub async fn call(&self, id: &str) -> Result<CallInfo, String> {
        self.get(&format!("/calls/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses() -> Addresses {
        Addresses {
            sip: "127.0.0.1:5070".parse().expect("test setup"),
            control: "127.0.0.1:8099".parse().expect("test setup"),
            rtp: (30_000, 30_019),
            caller: "127.0.0.1:5080".parse().expect("test setup"),
        }
    }

    #[test]
    fn the_demo_configuration_has_one_trunk_phone_on_loopback_and_no_platform() {
        let text = config_text(&Assistant::sample(), "echo", &addresses(), "t0k3n").expect("test setup");
        let config = Config::from_text(Path::new("demo.toml"), &text, |_| None).expect("test setup");
        assert_eq!(config.sip.listen, addresses().sip);
        assert!(config.happ.is_none());
        let control = config.control.expect("test setup");
        assert_eq!((control.listen, control.token.expose()), (addresses().control, "t0k3n"));
        assert_eq!(config.phones.len(), 1);
        let phone = &config.phones[0];
        assert!(!phone.register);
        assert_eq!((phone.telephony_url.as_str(), phone.handler.as_str()), ("127.0.0.1:5080", "echo"));
        assert_eq!(phone.assistant_id.as_deref(), Some(sample::ID));
        assert_eq!(config.assistants[0].knowledge.len(), sample::KNOWLEDGE.len());
    }

    #[test]
    fn a_file_gives_its_first_assistant_and_speech_but_not_its_addresses() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("mine.toml");
        std::fs::write(
            &path,
            r#"
[sip]
listen = "0.0.0.0:5060"
[[phones]]
phoneNumber = "+1"
sipLogin = "1"
password = "${NOT_SET_ANYWHERE_FOR_THE_DEMO}"
telephonyUrl = "sip.example.com"
[[assistants]]
id = "shop"
name = "Bike Shop"
firstMessage = "Bikes!"
llmProvider = "local"
[[assistants.knowledge]]
name = "Hours"
resourceContent = "Open daily."
[[assistants]]
id = "other"
[speech.local]
voice = "en-gb"
"#,
        )
        .expect("test setup");
        let assistant = Assistant::from_file(&path).expect("test setup");
        assert_eq!((assistant.id(), assistant.name(), assistant.first_message()), ("shop", "Bike Shop", "Bikes!"));
        let text = config_text(&assistant, "echo", &addresses(), "t").expect("test setup");
        let config = Config::from_text(Path::new("demo.toml"), &text, |_| None).expect("test setup");
        assert_eq!(config.sip.listen, addresses().sip);
        assert_eq!(config.assistants.len(), 1);
        assert_eq!(config.assistants[0].knowledge[0].resource_content, "Open daily.");
        assert_eq!(config.speech.local.voice.as_deref(), Some("en-gb"));
        assert_eq!(config.phones[0].assistant_id.as_deref(), Some("shop"));
    }

    #[test]
    fn a_file_without_assistants_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("none.toml");
        std::fs::write(&path, "[sip]\nlisten = \"0.0.0.0:5060\"\n").expect("test setup");
        let e = Assistant::from_file(&path).expect_err("an error");
        assert!(e.contains("none.toml") && e.contains("[[assistants]]"), "{e}");
    }

    #[test]
    fn a_transcript_reads_as_the_control_api_writes_it() {
        let call: CallInfo = serde_json::from_str(
            r#"{"id":"c1","direction":"inbound","startedAt":5,"sipCallId":"x@y","state":"answered",
                "transcript":[{"role":"assistant","text":"Hello!","at":0.4,"interrupted":false,"latencyMs":null},
                              {"role":"caller","text":"hours","at":2.5,"interrupted":false,"latencyMs":null},
                              {"role":"assistant","text":"Nine to five.","at":4.0,"interrupted":true,"latencyMs":812.5}]}"#,
        )
        .expect("test setup");
        let t = call.transcript.expect("test setup");
        assert_eq!(t[2], TranscriptEntry { role: "assistant".into(), text: "Nine to five.".into(), at: 4.0, interrupted: true, latency_ms: Some(812.5) });
        let bare: CallInfo = serde_json::from_str(r#"{"id":"c2","direction":"inbound","startedAt":5}"#).expect("test setup");
        assert!(bare.transcript.is_none());
    }
}
