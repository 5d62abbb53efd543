//! `happ-gateway`: the SIP voice gateway for Happ assistants, and its tools.
#![forbid(unsafe_code)]

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Codec(args) => commands::codec::run(&args),
        cli::Command::Bench(args) => commands::bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("happ-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
