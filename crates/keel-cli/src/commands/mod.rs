//! One module per `keel` subcommand. Each exposes clap args and a `run` function.

pub mod bench;
pub mod chat;
pub mod demo;
pub mod eval;
pub mod export;
pub mod generate;
pub mod guard;
pub mod pretrain;
pub mod redteam;
pub mod sft;
pub mod tokenizer;
pub mod world;
