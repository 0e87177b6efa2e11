//! `keel world`: generate the embedded synthetic world (corpus + task banks + manifest).

use anyhow::Context;
use keel_data::world::{generate, WorldConfig};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorldSize {
    /// A few dozen entities; generates in milliseconds (tests, smoke runs).
    Tiny,
    /// About 360 entities and 1.2 MB of pretraining text (a ~10-minute pipeline on a laptop).
    Default,
}

/// Generate the synthetic world into a directory.
#[derive(Debug, Clone, clap::Args)]
pub struct WorldArgs {
    /// Output directory (created if missing; existing world files are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the same seed and settings give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Size preset the other options override.
    #[arg(long, value_enum, default_value_t = WorldSize::Default)]
    pub size: WorldSize,
    /// JSON file with WorldConfig fields; fields it omits take the built-in defaults
    /// (not the --size preset).
    #[arg(long, conflicts_with = "size")]
    pub config: Option<PathBuf>,
    /// Number of towns.
    #[arg(long)]
    pub towns: Option<usize>,
    /// Number of people.
    #[arg(long)]
    pub people: Option<usize>,
    /// Number of creature species.
    #[arg(long)]
    pub creatures: Option<usize>,
    /// Number of products.
    #[arg(long)]
    pub products: Option<usize>,
    /// Encyclopedia articles per entity in the training corpus.
    #[arg(long)]
    pub articles_per_entity: Option<usize>,
    /// Short stories per person in the training corpus.
    #[arg(long)]
    pub stories_per_person: Option<usize>,
    /// General pages (everyday explanations, help-desk refusals) in the training corpus.
    #[arg(long)]
    pub general_pages: Option<usize>,
    /// Fraction of entities held out for validation task banks.
    #[arg(long)]
    pub validation_fraction: Option<f64>,
    /// Fraction of entities held out for test task banks.
    #[arg(long)]
    pub test_fraction: Option<f64>,
}

impl WorldArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> anyhow::Result<WorldConfig> {
        let mut cfg = match (&self.config, self.size) {
            (Some(p), _) => keel_core::artifact::read_json(p)
                .with_context(|| format!("reading world config {}", p.display()))?,
            (None, WorldSize::Tiny) => WorldConfig::tiny(),
            (None, WorldSize::Default) => WorldConfig::default(),
        };
        let set = |field: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut cfg.towns, self.towns);
        set(&mut cfg.people, self.people);
        set(&mut cfg.creatures, self.creatures);
        set(&mut cfg.products, self.products);
        set(&mut cfg.articles_per_entity, self.articles_per_entity);
        set(&mut cfg.stories_per_person, self.stories_per_person);
        set(&mut cfg.general_pages, self.general_pages);
        if let Some(f) = self.validation_fraction {
            cfg.validation_fraction = f;
        }
        if let Some(f) = self.test_fraction {
            cfg.test_fraction = f;
        }
        Ok(cfg)
    }
}

pub fn run(args: WorldArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let start = std::time::Instant::now();
    let world = generate(&cfg, args.seed)?;
    let summary = world
        .write(&args.out)
        .with_context(|| format!("writing world to {}", args.out.display()))?;
    print!("{summary}");
    println!("seed {} · {:.2}s", args.seed, start.elapsed().as_secs_f64());
    Ok(())
}
