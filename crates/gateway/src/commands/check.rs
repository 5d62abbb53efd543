//! `happ-gateway check --config FILE`: validates the configuration and shows what would run.

use std::path::Path;

use crate::config::{Config, Handler, TelephonyUrl};
use crate::dns::Dns;

use super::run::EXIT_CONFIG;

/// Checks the file; prints the phones, their registrars and assistants; returns the exit status.
pub fn run(path: &Path) -> u8 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            return EXIT_CONFIG;
        }
    };
    println!("{}: valid", path.display());
    println!("SIP: listening on {} (UDP and TCP){}", config.sip.listen, config.sip.public_address.map(|a| format!(", advertising {a}")).unwrap_or_default());
    println!("RTP: {} ports {} ({} calls)", config.rtp.bind, config.rtp.port_range, config.rtp.capacity());
    match &config.control {
        Some(c) => println!("control API: http://{}", c.listen),
        None => println!("control API: none"),
    }
    if let Some(h) = &config.happ {
        println!("Happ platform: {} (token set: {}); not used by this build, which serves the phones below", h.base_url, !h.token.is_blank());
    }
    if config.speech.stt.is_some() || config.speech.tts.is_some() {
        println!(
            "speech: stt {}, tts {} (adapters are not in this build)",
            config.speech.stt.as_deref().unwrap_or("local"),
            config.speech.tts.as_deref().unwrap_or("local")
        );
    }
    let resolved = tokio::runtime::Builder::new_current_thread().enable_all().build().ok().map(|rt| {
        rt.block_on(async {
            match Dns::new(&config.sip.dns_servers) {
                Ok(dns) => crate::daemon::resolve_phones(&config, &dns).await,
                Err(e) => config.phones.iter().map(|_| Err(e.clone())).collect(),
            }
        })
    });
    println!("phones ({}):", config.phones.len());
    for (i, p) in config.phones.iter().enumerate() {
        let url = TelephonyUrl::parse(&p.telephony_url).map(|u| u.to_string()).unwrap_or_default();
        let mode = if p.register { format!("registers as {}@{}", p.sip_login, url) } else { format!("trunk: accepts INVITEs from {url}") };
        println!("  {}  {mode}", p.phone_number);
        let targets = resolved.as_ref().and_then(|r| r.get(i));
        match targets {
            Some(Ok(t)) => println!("      resolves to {}", t.iter().map(|t| format!("{} ({})", t.addr, t.transport)).collect::<Vec<_>>().join(", ")),
            Some(Err(e)) => println!("      does not resolve now: {e}"),
            None => {}
        }
        let handler = match Handler::parse(&p.handler) {
            Ok(Handler::Assistant) => {
                format!("assistant {:?} (not in this build: calls are refused with 480)", p.assistant_id.as_deref().unwrap_or("from Happ"))
            }
            Ok(Handler::Echo) => "echo".into(),
            Ok(Handler::Play(f)) => format!("play {}", f.display()),
            Err(e) => e,
        };
        println!("      codec {}, {handler}{}", p.codec, p.max_calls.map(|m| format!(", at most {m} calls")).unwrap_or_default());
    }
    if !config.assistants.is_empty() {
        println!("assistants ({}):", config.assistants.len());
        for a in &config.assistants {
            println!("  {}  {:?} ({} {}, {})", a.id, a.name, a.llm_provider, a.llm_model, a.language);
            if !a.first_message.is_empty() {
                println!("      greets with {:?}", a.first_message);
            }
            println!("      prompt: {} characters", a.prompt_text.chars().count());
        }
    }
    for w in config.warnings() {
        println!("warning: {w}");
    }
    0
}
