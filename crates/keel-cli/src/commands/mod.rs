//! One module per `keel` subcommand. Each exposes clap args and a `run` function.

pub mod bench;
pub mod demo;
pub mod eval;
pub mod guard;
pub mod pretrain;
pub mod redteam;
pub mod sft;
pub mod tokenizer;
pub mod world;
