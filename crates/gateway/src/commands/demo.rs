//! `happ-gateway demo [--config FILE] [--caller FILE] [--out DIR]`: see [`crate::demo`].

use crate::cli::DemoArgs;
use crate::demo::{self, Options};

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<(), String> {
    demo::run(&Options { config: args.config.clone(), caller: args.caller.clone(), out: args.out.clone() })
}
