//! `keel data validate | render | curate`: check a dataset row by row, show which tokens it
//! trains on, and curate it (filters, dedup, decontamination, mixing) with a report.

use super::data_args::DatasetArgs;
use anyhow::{bail, Context, Result};
use keel_data::chat::{KeelChatTemplate, Message, Truncation};
use keel_data::curate::rows::{load_eval_set, load_rows, world_eval_set, world_rows};
use keel_data::curate::{curate, CurateConfig, CurateRow, EvalSet};
use keel_data::formats::{count_reasons, load_dataset, prepare, BadRow};
use keel_data::jsonl::{read_jsonl, write_jsonl};
use keel_data::render::{render_keel, render_with_template, Rendered};
use keel_data::tokenizer::KeelTokenizer;
use keel_data::world::write::bank_path;
use keel_data::world::{Split, TaskBanks};
use keel_model::chat_template::{ChatMessage, ChatTemplate};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum DataCmd {
    /// Validate dataset files (JSONL or Parquet): every bad row as file:line: field: reason.
    Validate(ValidateArgs),
    /// Show exactly which tokens rows train on, under Keel's or the model's chat template.
    Render(RenderArgs),
    /// Filter, deduplicate, decontaminate and mix a dataset; writes the set and a report.
    Curate(CurateArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TruncArg {
    Drop,
    TruncateLeft,
}

impl From<TruncArg> for Truncation {
    fn from(t: TruncArg) -> Self {
        match t {
            TruncArg::Drop => Truncation::Drop,
            TruncArg::TruncateLeft => Truncation::TruncateLeft,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Dataset files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// A Keel checkpoint (or tokenizer.json) to also check lengths with Keel's template.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Longest example in tokens (with --model).
    #[arg(long, default_value_t = 512)]
    pub seq_len: usize,
    #[arg(long, value_enum, default_value = "drop")]
    pub truncation: TruncArg,
    /// Bad rows to print per file (all are in --report).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Write every bad row and the counts as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateArg {
    /// Keel's template for Keel checkpoints, the model's own otherwise.
    Auto,
    Keel,
    Model,
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// Dataset file (JSONL or Parquet).
    pub file: PathBuf,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Checkpoint directory (tokenizer.json + tokenizer_config.json) or GGUF file.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub template: TemplateArg,
    /// Rows to show.
    #[arg(long, default_value_t = 3)]
    pub rows: usize,
    /// Valid rows to skip first.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// Also print one line per token (index, id, * if trained, piece).
    #[arg(long)]
    pub tokens: bool,
    /// Highlight trained text in reverse video instead of [[…]].
    #[arg(long)]
    pub color: bool,
    /// Apply `keel sft`'s length policy (Keel template only).
    #[arg(long)]
    pub seq_len: Option<usize>,
    #[arg(long, value_enum, default_value = "drop")]
    pub truncation: TruncArg,
}

#[derive(clap::Args, Debug)]
pub struct CurateArgs {
    /// Dataset files to curate (JSONL or Parquet), concatenated in order.
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// A world directory (`keel world --out`): curate its train SFT rows, decontaminated
    /// against its test prompts.
    #[arg(long)]
    pub world: Option<PathBuf>,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Field holding a row's category (for --mix).
    #[arg(long, default_value = "category")]
    pub category_key: String,
    /// Evaluation files to decontaminate against (field --eval-key, else user turns, else text).
    #[arg(long)]
    pub eval: Vec<PathBuf>,
    #[arg(long, default_value = "prompt")]
    pub eval_key: String,
    /// Target mix, e.g. `instruction=0.6,safety=0.3,honesty=0.1` (the world's categories fold
    /// into instruction/safety/honesty; other labels are used as they are).
    #[arg(long)]
    pub mix: Option<String>,
    /// CurateConfig as JSON (any subset); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub near_threshold: Option<f64>,
    #[arg(long)]
    pub no_exact_dedup: bool,
    #[arg(long)]
    pub no_near_dedup: bool,
    /// Write the curated set as Parquet instead of JSONL.
    #[arg(long)]
    pub parquet: bool,
    /// Output directory: curated.jsonl (or .parquet), dropped.jsonl, curate_report.{json,md}.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Validate(a) => validate(a),
        DataCmd::Render(a) => render(a),
        DataCmd::Curate(a) => curate_cmd(a),
    }
}

fn keel_tokenizer(model: &Path) -> Result<KeelTokenizer> {
    let p = if model.is_dir() {
        model.join("tokenizer.json")
    } else {
        model.to_path_buf()
    };
    Ok(KeelTokenizer::from_file(&p)?)
}

fn validate(a: ValidateArgs) -> Result<()> {
    let opts = a.dataset.load_options();
    let tok = a.model.as_deref().map(keel_tokenizer).transpose()?;
    let mut report = serde_json::Map::new();
    let mut total_bad = 0;
    for f in &a.files {
        let ds = load_dataset(f, &opts)?;
        let mut bad: Vec<BadRow> = ds.bad.clone();
        let mut kept = ds.examples.len();
        if let Some(tok) = &tok {
            let t = KeelChatTemplate::new(tok)?;
            let p = prepare(
                tok,
                &t,
                &ds.examples,
                a.seq_len,
                a.truncation.into(),
                a.dataset.strict,
            )?;
            kept = p.examples.len();
            bad.extend(p.bad);
        }
        for b in bad.iter().take(a.show) {
            println!("{b}");
        }
        if bad.len() > a.show {
            println!("… and {} more", bad.len() - a.show);
        }
        let counts = count_reasons(&bad);
        println!(
            "{}: {kept} rows ok, {} bad {counts:?}",
            f.display(),
            bad.len()
        );
        total_bad += bad.len();
        report.insert(
            f.display().to_string(),
            json!({"ok": kept, "bad": bad.len(), "bad_by_reason": counts, "bad_rows": bad}),
        );
    }
    if let Some(r) = &a.report {
        keel_core::artifact::write_json_atomic(r, &report)?;
    }
    if total_bad > 0 {
        eprintln!("{total_bad} bad rows would be skipped by training (--strict makes them fatal)");
    }
    Ok(())
}

/// A model's tokenizer and Jinja template, without loading weights where possible.
fn model_template(model: &Path) -> Result<(tokenizers::Tokenizer, Option<ChatTemplate>)> {
    if !model.is_dir() {
        let m = keel_model::load::load_model(model)?;
        let t = m.chat_template()?;
        return Ok((m.tokenizer, t));
    }
    let tj = model.join("tokenizer.json");
    let tok = tokenizers::Tokenizer::from_file(&tj)
        .map_err(|e| anyhow::anyhow!("{}: {e}", tj.display()))?;
    let cfg_path = model.join("tokenizer_config.json");
    let cfg: Value = match std::fs::read(&cfg_path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| cfg_path.display().to_string())?,
        Err(_) => Value::Null,
    };
    let token = |k: &str| match &cfg[k] {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(String::from),
        _ => None,
    };
    let src = match &cfg["chat_template"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|e| e["name"] == "default")
            .or(list.first())
            .and_then(|e| e["template"].as_str())
            .map(String::from),
        _ => std::fs::read_to_string(model.join("chat_template.jinja")).ok(),
    };
    let t = src
        .map(|s| {
            ChatTemplate::new(
                s,
                cfg_path.display().to_string(),
                token("bos_token"),
                token("eos_token"),
            )
        })
        .transpose()?;
    Ok((tok, t))
}

fn render(a: RenderArgs) -> Result<()> {
    let ds = load_dataset(&a.file, &a.dataset.load_options())?;
    for b in ds.bad.iter().take(5) {
        eprintln!("skipped {b}");
    }
    let keel = match a.template {
        TemplateArg::Model => None,
        TemplateArg::Keel => Some(keel_tokenizer(&a.model)?),
        TemplateArg::Auto => keel_tokenizer(&a.model).ok(),
    };
    let model = if keel.is_none() {
        let (tok, t) = model_template(&a.model)?;
        let t = t.with_context(|| {
            format!(
                "{}: no chat template (use --template keel)",
                a.model.display()
            )
        })?;
        Some((tok, t))
    } else {
        None
    };
    let (mut total, mut trained, mut shown) = (0, 0, 0);
    for s in ds.examples.iter().skip(a.skip).take(a.rows) {
        let r: Option<Rendered> = match (&keel, &model) {
            (Some(tok), _) => {
                let t = KeelChatTemplate::new(tok)?;
                render_keel(
                    tok,
                    &t,
                    &s.example,
                    a.seq_len.map(|n| (n, a.truncation.into())),
                )
            }
            (None, Some((tok, t))) => {
                let f = |ms: &[Message], gen: bool| {
                    let ms: Vec<ChatMessage> = ms
                        .iter()
                        .map(|m| ChatMessage::new(m.role.as_str(), m.content.clone()))
                        .collect();
                    t.render(&ms, gen).map_err(|e| e.to_string())
                };
                Some(render_with_template(tok, &f, &s.example)?)
            }
            (None, None) => unreachable!("one template is always chosen above"),
        };
        println!("── {}:{} ──", a.file.display(), s.line);
        let Some(r) = r else {
            println!("(longer than --seq-len even after truncation: `keel sft` drops it)\n");
            continue;
        };
        println!(
            "{}",
            if a.color {
                r.highlighted()
            } else {
                r.bracketed()
            }
        );
        let note = if r.prefix_stable {
            ""
        } else {
            " (template rewrites earlier turns: trained = assistant content)"
        };
        println!(
            "tokens {}, trained {}{}{note}\n",
            r.total(),
            r.trained(),
            if r.truncated > 0 {
                format!(", {} cut from the prompt", r.truncated)
            } else {
                String::new()
            }
        );
        if a.tokens {
            println!("{}", r.token_table());
        }
        total += r.total();
        trained += r.trained();
        shown += 1;
    }
    println!(
        "{shown} rows: {total} tokens, {trained} trained ({:.1}%); template: {}",
        100.0 * trained as f64 / total.max(1) as f64,
        if keel.is_some() {
            "keel"
        } else {
            "model's own"
        }
    );
    Ok(())
}

fn read_banks(dir: &Path, split: Split) -> Result<TaskBanks> {
    let p = |b: &str| bank_path(dir, split, b);
    Ok(TaskBanks {
        instructions: read_jsonl(&p("instructions"))?,
        harmful: read_jsonl(&p("harmful"))?,
        benign_sensitive: read_jsonl(&p("benign_sensitive"))?,
        unanswerable: read_jsonl(&p("unanswerable"))?,
        false_premise: read_jsonl(&p("false_premise"))?,
        preferences: read_jsonl(&p("preferences"))?,
        facts: read_jsonl(&p("facts"))?,
    })
}

fn parse_mix(s: &str) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--mix: expected group=ratio, got {part:?}"))?;
        let v: f64 = v
            .trim()
            .parse()
            .with_context(|| format!("--mix: bad ratio in {part:?}"))?;
        m.insert(k.trim().to_string(), v);
    }
    Ok(m)
}

fn curate_cmd(a: CurateArgs) -> Result<()> {
    let mut cfg: CurateConfig = match &a.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid curate config", p.display()))?
        }
        None => CurateConfig::default(),
    };
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(t) = a.near_threshold {
        cfg.near_threshold = t;
    }
    cfg.exact_dedup &= !a.no_exact_dedup;
    cfg.near_dedup &= !a.no_near_dedup;
    if let Some(m) = &a.mix {
        cfg.mix = Some(parse_mix(m)?);
    }
    let mut rows: Vec<CurateRow> = Vec::new();
    let mut evals: Vec<EvalSet> = Vec::new();
    if let Some(w) = &a.world {
        rows.extend(world_rows(&read_banks(w, Split::Train)?));
        // Test only: validation reuses the training templates by design (it measures new
        // entities, not new phrasings), so its prompts share template n-grams with train.
        evals.push(world_eval_set("world/test", &read_banks(w, Split::Test)?));
    }
    let opts = a.dataset.load_options();
    let mut invalid = 0;
    for f in &a.data {
        let (r, bad) = load_rows(f, &opts, Some(&a.category_key))?;
        for b in bad.iter().take(5) {
            eprintln!("skipped {b}");
        }
        invalid += bad.len();
        rows.extend(r);
    }
    if rows.is_empty() {
        bail!("nothing to curate: give --data FILE and/or --world DIR");
    }
    for e in &a.eval {
        evals.push(load_eval_set(e, &a.eval_key)?);
    }
    let start = Instant::now();
    let out = curate(rows, &cfg, &evals)?;
    let secs = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let curated = if a.parquet {
        let p = a.out.join("curated.parquet");
        let ex: Vec<_> = out.kept.iter().map(|r| r.example.clone()).collect();
        keel_data::parquet::write_examples(&p, &ex, Default::default())?;
        p
    } else {
        let p = a.out.join("curated.jsonl");
        let rows: Vec<Value> = out
            .kept
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r.example).unwrap_or(Value::Null);
                if let (Value::Object(o), Some(c)) = (&mut v, &r.category) {
                    o.insert(a.category_key.clone(), Value::String(c.clone()));
                }
                v
            })
            .collect();
        write_jsonl(&p, &rows)?;
        p
    };
    write_jsonl(&a.out.join("dropped.jsonl"), &out.dropped)?;
    out.report.write(&a.out)?;
    println!(
        "{} rows in ({invalid} invalid rows skipped before), {} kept → {}; dropped {:?}; {secs:.2}s",
        out.report.rows_in,
        out.report.rows_out,
        curated.display(),
        out.report.dropped
    );
    println!("report: {}", a.out.join("curate_report.md").display());
    Ok(())
}
