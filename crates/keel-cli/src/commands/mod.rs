//! One module per `keel` subcommand. Each exposes clap args and a `run` function.

pub mod demo;
pub mod eval;
pub mod pretrain;
pub mod redteam;
pub mod tokenizer;
pub mod world;
