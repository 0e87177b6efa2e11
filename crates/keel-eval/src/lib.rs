//! keel-eval: Keel's evaluation harness.
//!
//! - [`generator`]: the [`Generator`] trait every target/judge/attacker implements;
//!   [`openai::OpenAiEndpoint`] for OpenAI-compatible servers; [`FnGenerator`] for closures.
//! - [`suite`], [`builtin`], [`loaders`]: suite spec files (TOML), built-in world and
//!   public suites, and loaders for public benchmark formats.
//! - [`evaluate`], [`runner`]: concurrent, resumable runs journaled to `results.jsonl`.
//! - [`scorers`], [`refusal`], [`mc`], [`reward`], [`judge`], [`winrate`]: three-valued
//!   per-item scoring (pass / fail / unscored) and judges.
//! - [`metrics`], [`stats`]: aggregates with Wilson / bootstrap intervals, Cohen's kappa.
//! - [`label`] (RLAIF preference labelling) and [`constitution`] (Constitutional AI).
//! - [`runlog`], [`report`], [`compare`]: results into `run.json`; model card + HTML report;
//!   run-to-run comparison with a regression gate. [`pairwise`]: win rates between two runs;
//!   [`target_spec`]: `endpoint:URL#MODEL` / `local:PATH` judge specs.
//! - [`redteam`]: attack library, PAIR-style iterative attacker, garak-compatible reports.

pub mod builtin;
pub mod compare;
pub mod constitution;
pub mod error;
pub mod evaluate;
pub mod generator;
pub mod guarded;
pub mod item;
pub mod judge;
pub mod label;
pub mod loaders;
pub mod local;
pub mod mc;
pub mod metrics;
pub mod openai;
pub mod pairwise;
pub mod record;
pub mod redteam;
pub mod refusal;
pub mod report;
pub mod reward;
pub mod runlog;
pub mod runner;
pub mod scorers;
pub mod stats;
pub mod suite;
pub mod target_spec;
pub mod winrate;

pub use error::{EvalError, GenError, Result};
pub use generator::{
    FnGenerator, GenRequest, GenResponse, Generator, Message, Prompt, Role, SamplingParams,
};
pub use openai::{OpenAiEndpoint, RetryPolicy};
pub use record::{Counts, ItemRecord, Outcome};
pub use suite::SuiteSpec;
