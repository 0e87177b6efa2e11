//! `keel eval` / `keel redteam` / `keel report` / `keel compare` runnable before they are
//! wired into the `keel` binary:
//! `cargo run -p keel-eval --example keel_eval -- eval --suite ... --out ...`.
//! It compiles the command modules of keel-cli as they are, so behaviour is identical.

#[path = "../../keel-cli/src/commands/compare.rs"]
mod compare;
#[allow(dead_code)]
#[path = "../../keel-cli/src/commands/eval.rs"]
mod eval;
#[allow(dead_code)]
#[path = "../../keel-cli/src/commands/redteam.rs"]
mod redteam;
#[path = "../../keel-cli/src/commands/report.rs"]
mod report;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Eval(eval::EvalArgs),
    Redteam(redteam::RedteamArgs),
    Report(report::ReportArgs),
    Compare(compare::CompareArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Eval(a) => eval::run(a),
        Cmd::Redteam(a) => redteam::run(a),
        Cmd::Report(a) => report::run(a),
        Cmd::Compare(a) => compare::run(a),
    }
}
