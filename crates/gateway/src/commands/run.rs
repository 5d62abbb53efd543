//! `happ-gateway run --config FILE`.

use std::path::Path;

use crate::config::Config;

/// Exit status for a configuration error (EX_CONFIG would be 78; sysexits' EX_USAGE, 64, is what
/// operators' tooling usually checks for "fix the input").
pub const EXIT_CONFIG: u8 = 64;

/// Starts logging as the configuration says (`RUST_LOG` overrides the level).
pub fn init_logging(config: &Config) {
    let filter = std::env::var("RUST_LOG").ok().unwrap_or_else(|| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the daemon; returns the exit status.
pub fn run(path: &Path) -> u8 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            return EXIT_CONFIG;
        }
    };
    init_logging(&config);
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("happ-gateway: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(crate::daemon::run(config, path, crate::control::serve)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("happ-gateway: {e}");
            1
        }
    }
}
