//! `happ-server`: the local Happ-compatible REST server.
//!
//! ```sh
//! happ-server --listen 127.0.0.1:8090 --seed fixtures/happ/seed.json --token happ_local_dev_token
//! happ-server --fail-next 3 --fail-status 429 --retry-after 1          # the next 3 requests get 429
//! happ-server --fail-rate 0.2 --fail-status 503 --fault-seed 7         # 20 % of requests get 503
//! happ-server --latency-ms 300                                         # every request waits 300 ms
//! happ-server --faults faults.json                                     # rules as for POST /_admin/faults
//! happ-server --company-id acme --auth-event auth --join-event subscribe  # Socket.IO at /ws
//! ```
//!
//! REST and Socket.IO share the port: the Engine.IO endpoint is `ws://ADDR/ws/`.
//!
//! Exit status: 0 after SIGINT/SIGTERM, 2 for bad arguments, 64 for a bad seed or faults file,
//! 1 when the address cannot be bound.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use happ_server::{FaultAction, FaultConfig, FaultRule, HappServer, Seed, ServerConfig};

/// A local Happ-compatible REST server for tests and development.
#[derive(Debug, Parser)]
#[command(name = "happ-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Seed file (JSON: assistants, knowledge, tools, phones, chats, messages).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Accepted X-Access-Token (repeat for several).
    #[arg(long = "token", default_value = "happ_local_dev_token")]
    tokens: Vec<String>,
    /// Fault rules file (JSON, as for POST /_admin/faults); the flags below add rules after it.
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Fail the next N API requests.
    #[arg(long)]
    fail_next: Option<u32>,
    /// Fail this fraction (0 to 1) of API requests.
    #[arg(long)]
    fail_rate: Option<f64>,
    /// Status of the injected failures.
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
    /// Retry-After of the injected failures (seconds).
    #[arg(long)]
    retry_after: Option<u32>,
    /// Only fail requests to this route template (e.g. /api/chats/{chatId}/messages).
    #[arg(long)]
    fail_route: Option<String>,
    /// Delay every API request by this many milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Seed of the fault draws (overrides the faults file's).
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Seed of the id generator.
    #[arg(long, default_value_t = 1)]
    id_seed: u64,
    /// Socket.IO: the company id the authentication answers and whose room gets the events.
    #[arg(long, default_value = "local-company")]
    company_id: String,
    /// Socket.IO: the event that authenticates a socket.
    #[arg(long, default_value = "authenticate")]
    auth_event: String,
    /// Socket.IO: the event that joins the company room.
    #[arg(long, default_value = "join")]
    join_event: String,
    /// Socket.IO: the company room, `{companyId}` replaced by the id.
    #[arg(long, default_value = "company:{companyId}")]
    room_template: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match config(&args) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("happ-server: {message}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("happ-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match HappServer::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("happ-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(url = %server.base_url(), socket_io = %server.socket_url(), tokens = args.tokens.len(), "happ-server listening");
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn config(args: &Args) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::new("");
    config.listen = args.listen;
    config.tokens = args.tokens.iter().map(|t| t.as_str().into()).collect();
    config.id_seed = args.id_seed;
    config.socket.company_id.clone_from(&args.company_id);
    config.socket.auth_event.clone_from(&args.auth_event);
    config.socket.join_event.clone_from(&args.join_event);
    config.socket.room_template.clone_from(&args.room_template);
    if let Some(path) = &args.seed {
        config.seed = Seed::from_path(path).map_err(|e| e.to_string())?;
    }
    let mut faults = match &args.faults {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read faults file {}: {e}", path.display()))?;
            serde_json::from_str::<FaultConfig>(&text).map_err(|e| format!("faults file {}: {e}", path.display()))?
        }
        None => FaultConfig::default(),
    };
    if let Some(seed) = args.fault_seed {
        faults.seed = seed;
    }
    if let Some(rate) = args.fail_rate
        && !(0.0..=1.0).contains(&rate)
    {
        return Err(format!("--fail-rate must be between 0 and 1, not {rate}"));
    }
    if args.fail_next.is_some() || args.fail_rate.is_some() {
        faults.rules.push(FaultRule {
            method: None,
            route: args.fail_route.clone(),
            skip: 0,
            times: args.fail_next,
            rate: args.fail_rate,
            action: FaultAction::Error { status: args.fail_status, retry_after: args.retry_after.map(|s| s.to_string()), body: None },
        });
    }
    if let Some(ms) = args.latency_ms {
        faults.rules.push(FaultRule { method: None, route: args.fail_route.clone(), skip: 0, times: None, rate: None, action: FaultAction::Delay { ms } });
    }
    config.faults = faults;
    Ok(config)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
