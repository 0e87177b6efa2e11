//! `keel`: the one binary for every stage of the alignment pipeline.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Take a language model through the alignment pipeline and keep it aligned."
)]
struct Cli {
    /// Log level filter (error, warn, info, debug, trace) or a tracing directive.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded default end to end: world → tokenizer → pretrain → evaluation → summary.
    Demo(commands::demo::DemoArgs),
    /// Generate the synthetic world: corpus, task banks, splits, manifest.
    World(commands::world::WorldArgs),
    /// Train or inspect tokenizers.
    #[command(subcommand)]
    Tokenizer(commands::tokenizer::TokenizerCmd),
    /// Pretrain a model from scratch on a text corpus.
    Pretrain(commands::pretrain::PretrainArgs),
    /// Explicit policy enforcement: check, train classifiers, benchmark, explain profiles, audit.
    #[command(subcommand)]
    Guard(commands::guard::GuardCmd),
    /// Benchmarks: training and generation throughput, against the PyTorch reference.
    #[command(subcommand)]
    Bench(commands::bench::BenchCmd),
    /// Generate text from a model (Keel checkpoint, HF directory or GGUF file).
    Generate(commands::generate::GenerateArgs),
    /// Interactive chat with a model through its chat template.
    Chat(commands::chat::ChatArgs),
    /// Export a model (GGUF or checkpoint) as a Hugging Face safetensors directory.
    Export(commands::export::ExportArgs),
    /// Supervised fine-tuning on chat demonstrations, loss on assistant tokens only.
    Sft(commands::sft::SftArgs),
    /// LoRA adapters: merge into the base model.
    #[command(subcommand)]
    Lora(commands::lora::LoraCmd),
    /// Datasets: validate, render trained tokens, curate (dedupe, filter, decontaminate, mix).
    Data {
        #[command(subcommand)]
        cmd: commands::data::DataCmd,
    },
    /// Train a reward (preference) model on ranked pairs (Bradley–Terry).
    Rm(commands::rm::RmArgs),
    /// Direct preference optimisation: DPO, IPO, SimPO, ORPO, KTO.
    Dpo(commands::dpo::DpoArgs),
    /// RLHF: PPO, GRPO or RLOO against a reward, with a KL leash to the reference.
    Rl(commands::rl::RlArgs),
    /// RLAIF: an AI judge labels preference pairs (position-swapped), with agreement report.
    Label(commands::label::LabelArgs),
    /// Constitutional AI: critique-and-revise SFT data, and principle-based preferences.
    Constitution(commands::constitution::ConstitutionArgs),
    /// Transparency report (model card + HTML with charts) from a run folder.
    Report(commands::report::ReportArgs),
    /// Compare two runs and flag regressions.
    Compare(commands::compare::CompareArgs),
    /// Evaluate a target (endpoint or local model) on a suite.
    Eval(commands::eval::EvalArgs),
    /// Red-team a target with the attack library; attack success rates and garak JSONL.
    Redteam(commands::redteam::RedteamArgs),
}

fn main() -> std::process::ExitCode {
    // candle's elementwise thread pool spins 25,000 rounds before sleeping, fighting the
    // matmul threads for the cores; measured +21% training throughput on 2 cores without it.
    // Must be set before candle's first parallel op; a user's own setting wins.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::World(a) => commands::world::run(a),
        Command::Tokenizer(c) => commands::tokenizer::run(c),
        Command::Pretrain(a) => commands::pretrain::run(a),
        Command::Guard(c) => commands::guard::run(c),
        Command::Bench(c) => commands::bench::run(c),
        Command::Generate(a) => commands::generate::run(a),
        Command::Chat(a) => commands::chat::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Sft(a) => commands::sft::run(a),
        Command::Lora(c) => commands::lora::run(c),
        Command::Data { cmd } => commands::data::run(cmd),
        Command::Rm(a) => commands::rm::run(a),
        Command::Dpo(a) => commands::dpo::run(a),
        Command::Rl(a) => commands::rl::run(a),
        Command::Label(a) => commands::label::run(a),
        Command::Constitution(a) => commands::constitution::run(a),
        Command::Report(a) => commands::report::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Redteam(a) => commands::redteam::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
