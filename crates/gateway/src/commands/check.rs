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
    if config.speech.stt.is_some() || config.speech.tts.is_some() {
        println!(
            "speech: stt {}, tts {}{}",
            config.speech.stt_chain().join(", then "),
            config.speech.tts_chain().join(", then "),
            config.speech.llm_fallback.as_ref().map(|l| format!(", LLM fallback {l}")).unwrap_or_default()
        );
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("happ-gateway: cannot start the runtime");
        return 1;
    };
    // With [happ], what the platform serves now joins the file's phones (the file's win).
    let mut shown = config.clone();
    let mut platform_assistants = Vec::new();
    let mut status = 0;
    if let Some(h) = &config.happ {
        let fetched = match crate::platform::client(h) {
            Ok(client) => rt.block_on(crate::platform::fetch(&client)).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(catalog) => {
                println!("Happ platform: {}: {} phones, {} linked assistants", h.base_url, catalog.phones.len(), catalog.assistants.len());
                shown.phones = crate::platform::merge_phones(&catalog.phones, &config.phones);
                platform_assistants = catalog.assistants;
            }
            Err(e) => {
                println!("Happ platform: {}: cannot read the phones and assistants: {e}", h.base_url);
                status = 1;
            }
        }
    }
    let resolved = rt.block_on(async {
        match Dns::new(&shown.sip.dns_servers) {
            Ok(dns) => crate::daemon::resolve_phones(&shown, &dns).await,
            Err(e) => shown.phones.iter().map(|_| Err(e.clone())).collect(),
        }
    });
    let config = shown;
    println!("phones ({}):", config.phones.len());
    for (i, p) in config.phones.iter().enumerate() {
        let url = TelephonyUrl::parse(&p.telephony_url).map(|u| u.to_string()).unwrap_or_default();
        let mode = if p.register { format!("registers as {}@{}", p.sip_login, url) } else { format!("trunk: accepts INVITEs from {url}") };
        println!("  {}  {mode}", p.phone_number);
        match resolved.get(i) {
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
    if !platform_assistants.is_empty() {
        println!("assistants of the platform ({}):", platform_assistants.len());
    }
    for a in &platform_assistants {
        println!(
            "  {}  {:?} ({} {}, {}), from the platform: {} knowledge entries, {} tools",
            a.config.id,
            a.config.name,
            a.config.llm_provider,
            a.config.llm_model,
            a.config.language,
            a.knowledge.len(),
            a.tools.len()
        );
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
    status
}
