//! `happ-gateway dial --to NUMBER --phone PHONE`: asks a running daemon to place a call and
//! reports how it went.

use std::time::{Duration, Instant};

use crate::api::DialRequest;
use crate::cli::DialArgs;
use crate::config::Config;

/// Places the call; returns the exit status (0 answered, 1 failed, 64 bad configuration).
pub fn run(args: &DialArgs) -> u8 {
    let (base, token) = match endpoint(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            return super::run::EXIT_CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            return 1;
        }
    };
    match runtime.block_on(dial(&base, &token, args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            1
        }
    }
}

/// The control API's address and token: from flags, else the environment, else the config.
fn endpoint(args: &DialArgs) -> Result<(String, String), String> {
    let from_config = match &args.config {
        Some(path) => Some(Config::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let control = from_config.as_ref().and_then(|c| c.control.clone());
    let base = args
        .control
        .clone()
        .or_else(|| control.as_ref().map(|c| format!("http://{}", c.listen)))
        .ok_or("no control API: give --control URL or --config FILE with a [control] section")?;
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("GATEWAY_CONTROL_TOKEN").ok())
        .or_else(|| control.map(|c| c.token.expose().to_owned()))
        .ok_or("no control token: give --token, set GATEWAY_CONTROL_TOKEN, or --config FILE")?;
    Ok((base.trim_end_matches('/').to_owned(), token))
}

async fn dial(base: &str, token: &str, args: &DialArgs) -> Result<u8, String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let request = DialRequest { to: args.to.clone(), phone: args.phone.clone(), assistant: args.assistant.clone() };
    let response =
        client.post(format!("{base}/calls")).bearer_auth(token).json(&request).send().await.map_err(|e| format!("cannot reach the gateway at {base}: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| format!("bad answer from the gateway: {e}"))?;
    if !status.is_success() {
        return Err(format!("the gateway refused the call ({status}): {}", body["error"].as_str().unwrap_or("?")));
    }
    let call: CallViewDe = serde_json::from_value(body).map_err(|e| format!("bad answer from the gateway: {e}"))?;
    println!("call {} from {} to {}: {}", call.id, call.phone, call.remote, call.state);
    if args.no_wait {
        return Ok(0);
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = client.get(format!("{base}/calls/{}", call.id)).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
        let v: CallViewDe = r.json().await.map_err(|e| format!("bad answer from the gateway: {e}"))?;
        match v.state.as_str() {
            "answered" => {
                println!("answered{}", v.codec.map(|c| format!(" ({c})")).unwrap_or_default());
                return Ok(0);
            }
            "ended" => {
                let status = v.status.map(|s| format!("{s} ")).unwrap_or_default();
                println!("not answered: {status}{}", v.reason.unwrap_or_default());
                return Ok(1);
            }
            _ if Instant::now() > deadline => {
                println!("still ringing after {} s", args.wait_secs);
                return Ok(1);
            }
            _ => {}
        }
    }
}

/// The fields of a call (`crate::api::CallView`) the command reads.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallViewDe {
    id: String,
    phone: String,
    remote: String,
    state: String,
    codec: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
}
