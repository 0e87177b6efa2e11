//! One module per `keel` subcommand. Each exposes clap args and a `run` function.

pub mod bench;
pub mod chat;
pub mod compare;
pub mod constitution;
pub mod data;
pub mod data_args;
pub mod demo;
pub mod dpo;
pub mod eval;
pub mod export;
pub mod generate;
pub mod guard;
pub mod label;
pub mod lora;
pub mod lora_args;
pub mod pretrain;
pub mod redteam;
pub mod report;
pub mod rl;
pub mod rm;
pub mod sft;
pub mod tokenizer;
pub mod world;
