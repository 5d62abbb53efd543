//! SIP load on the gateway, with real peers on loopback: calls per second (setup and
//! teardown) placed by SIPp, and phones kept registered at Kamailio with digest
//! authentication.
//!
//! ```text
//! cargo bench -p happ-gateway --bench sip_load                   # both, default sizes
//! cargo bench -p happ-gateway --bench sip_load -- calls          # call rates only
//! cargo bench -p happ-gateway --bench sip_load -- phones 1000 5000 20000
//! ```
//!
//! Calls: SIPp calls a trunk phone (echo handler) at rising rates; each call is INVITE, 100,
//! 180, 200 with SDP, ACK, then at once BYE and 200, and the gateway binds an RTP/RTCP pair and
//! starts the call's media task for it. A rate passes when every call succeeded and SIPp kept
//! it; the gateway's CPU time per call comes from `/proc`. Phones: the gateway registers N
//! phones at Kamailio (401 challenge, then credentials) with a 120 s lifetime, so each is
//! refreshed every 60 s; the figures are the time until all are registered and the CPU the
//! gateway spends to keep them so over a refresh period.
//!
//! SIPp, Kamailio and the gateway share the machine's cores: the rates are what the three
//! reach together, and the CPU per call or per refresh is the gateway's alone.

#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use happ_testkit::kamailio::{Kamailio, KamailioConfig};
use happ_testkit::sipp::Sipp;
use support::{Gateway, Phone, Setup};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    let sizes: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if matches!(which, "all" | "calls") {
        calls();
    }
    if matches!(which, "all" | "phones") {
        phones(if sizes.is_empty() { &[1000, 5000] } else { &sizes });
    }
}

/// CPU time (user + system) of a process so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the
    // 12th and stime the 13th. Linux reports them in USER_HZ, 100 per second.
    let fields: Vec<u64> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// A UDP socket that swallows the gateway's RTP, so that it does not bounce as ICMP errors.
struct Sink {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Sink {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buf);
            }
        });
        Sink { port, stop }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn calls() {
    println!("== call setup and teardown: SIPp -> gateway (trunk phone, echo handler), UDP");
    let setup = Setup { max_concurrent: 2000, rtp_pairs: 2000, log_level: "warn", ..Setup::with_phones(vec![Phone::trunk("+4930111", "127.0.0.1:5999")]) };
    let gw = Gateway::start(&setup);
    let sink = Sink::start();
    println!("{:>8} {:>8} {:>8} {:>10} {:>12} {:>14}", "target", "calls", "failed", "achieved", "gateway CPU", "CPU per call");
    for rate in [100u32, 200, 400, 800, 1200, 1600, 2000, 2500, 3000, 4000, 5000] {
        let calls = rate * 10;
        let cpu_before = cpu_time(gw.pid());
        let started = Instant::now();
        let run = Sipp::scenario("uac_talk.xml")
            .placeholder("SDP_PORT", sink.port)
            .placeholder("TALK_MS", 0)
            .remote(gw.sip)
            .service("4930111")
            .calls(calls)
            .rate(f64::from(rate))
            .limit(rate * 2)
            .timeout(Duration::from_secs(u64::from(calls / rate) + 60))
            .without_message_trace()
            .run()
            .expect("SIPp");
        let elapsed = started.elapsed();
        let cpu = cpu_time(gw.pid()) - cpu_before;
        let achieved = run.successful as f64 / elapsed.as_secs_f64();
        let per_call = cpu.as_secs_f64() * 1e6 / run.successful.max(1) as f64;
        println!("{:>6}/s {:>8} {:>8} {:>8.0}/s {:>10.2} s {:>11.0} µs", rate, run.successful, run.failed, achieved, cpu.as_secs_f64(), per_call);
        if run.failed > 0 || achieved < f64::from(rate) * 0.9 {
            println!("stopped: {} failed, {achieved:.0} calls/s achieved of {rate}", run.failed);
            break;
        }
    }
    thread::sleep(Duration::from_secs(1));
    for line in gw.metrics().lines().filter(|l| l.starts_with("happ_gateway_calls_total") || l.starts_with("happ_gateway_calls_rejected_total")) {
        println!("{line}");
    }
}

fn phones(sizes: &[usize]) {
    println!("== phones registered at Kamailio (digest auth, 120 s lifetime, refreshed at 60 s)");
    println!("{:>8} {:>14} {:>12} {:>9} {:>16} {:>18}", "phones", "all registered", "startup CPU", "retrans.", "refresh CPU/60s", "still registered");
    for &n in sizes {
        // Kamailio's configuration cannot list thousands of users: each has the password
        // "pw-" followed by its name.
        let users: Vec<(String, String)> = (0..n).map(|i| (format!("u{i}"), format!("pw-u{i}"))).collect();
        let config = KamailioConfig { password_prefix: Some("pw-".into()), log_level: 1, min_expires: 60, max_expires: 3600, ..KamailioConfig::default() };
        let k = Kamailio::start(config).unwrap_or_else(|e| panic!("{e}"));
        let url = k.addr().to_string();
        let phones = users.iter().enumerate().map(|(i, (u, p))| Phone::registered(&format!("+49301{i:06}"), u, p, &url)).collect();
        let started = Instant::now();
        let gw = Gateway::start(&Setup { registration_expires: 120, log_level: "warn", ..Setup::with_phones(phones) });
        let registered = |gw: &Gateway| gw.metric(r#"happ_gateway_phones{state="registered"}"#) as usize;
        while registered(&gw) < n && started.elapsed() < Duration::from_secs(300) {
            thread::sleep(Duration::from_millis(100));
        }
        let all = started.elapsed();
        let startup_cpu = cpu_time(gw.pid());
        let retransmissions = gw.metric("happ_gateway_sip_retransmissions_total");
        // One whole refresh period.
        let before = (cpu_time(gw.pid()), gw.metric("happ_gateway_sip_registrations_total"));
        thread::sleep(Duration::from_secs(62));
        let cpu = cpu_time(gw.pid()) - before.0;
        let refreshed = gw.metric("happ_gateway_sip_registrations_total") - before.1;
        println!(
            "{:>8} {:>12.2} s {:>10.2} s {:>9} {:>14.2} s {:>10} ({refreshed:.0} refreshes)",
            n,
            all.as_secs_f64(),
            startup_cpu.as_secs_f64(),
            retransmissions,
            cpu.as_secs_f64(),
            registered(&gw)
        );
    }
}
