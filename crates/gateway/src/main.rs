//! `happ-gateway`: the SIP voice gateway for Happ assistants, and its tools.
#![forbid(unsafe_code)]

mod api;
mod assistant;
mod bench;
mod cli;
mod commands;
mod config;
mod control;
mod daemon;
mod demo;
mod dns;
mod metrics;
mod pii;
mod platform;
mod ports;
mod speech;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let status = match cli.command {
        cli::Command::Run(args) => commands::run::run(&args.config),
        cli::Command::Check(args) => commands::check::run(&args.config),
        cli::Command::Demo(args) => report(commands::demo::run(&args)),
        cli::Command::Dial(args) => commands::dial::run(&args),
        cli::Command::Codec(args) => report(commands::codec::run(&args)),
        cli::Command::Bench(args) => report(commands::bench::run(&args)),
        cli::Command::Speech(args) => report(commands::speech::run(&args)),
    };
    ExitCode::from(status)
}

fn report(result: Result<(), String>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            1
        }
    }
}
