//! One module per subcommand.

pub mod bench;
pub mod check;
pub mod codec;
pub mod demo;
pub mod dial;
pub mod run;
pub mod speech;
