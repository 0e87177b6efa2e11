//! The `keel guard` subcommand as a standalone binary, so the CLI can be built and run from
//! this crate before (and independently of) its wiring into `keel`:
//! `cargo run -p keel-guard --example guard_cli -- explain --profile region-eu`.

#[path = "../../keel-cli/src/commands/guard.rs"]
mod guard;

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: guard::GuardCmd,
}

fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    guard::run(cli.cmd)
}
