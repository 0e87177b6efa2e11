//! One module per `keel` subcommand. Each exposes clap args and a `run` function.

pub mod demo;
pub mod pretrain;
