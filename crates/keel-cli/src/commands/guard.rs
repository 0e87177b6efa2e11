//! `keel guard`: check texts against policy, train classifiers, benchmark, explain the
//! effective policy, and query the audit log.

use anyhow::{bail, Context, Result};
use keel_guard::audit::{query_jsonl, query_sqlite, summarize, AuditLog, AuditQuery};
use keel_guard::classify::linear::LinearClassifier;
use keel_guard::classify::logistic::TrainConfig;
use keel_guard::classify::minilm::{find_model, MiniLm, MiniLmClassifier};
use keel_guard::{Guard, Message, Moderator, Scope, Verdict};
use std::io::{BufRead, Read};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum GuardCmd {
    /// Check a text (argument or stdin) or a JSONL batch; prints one verdict per input.
    Check {
        /// Text to check; read from stdin when absent and no --batch is given.
        text: Option<String>,
        /// Profile stack, comma-separated (default is always the base), or .toml paths.
        #[arg(long, default_value = "default", value_delimiter = ',')]
        profile: Vec<String>,
        /// input (what the user sends) or output (what the model answers).
        #[arg(long, default_value = "input")]
        scope: String,
        /// keel | openai | llama-guard
        #[arg(long, default_value = "keel")]
        format: String,
        /// JSONL file: each line {"text": ...} or {"messages": [{"role","content"}...]}.
        #[arg(long)]
        batch: Option<PathBuf>,
        /// Directory holding a trained linear classifier (linear.json).
        #[arg(long)]
        linear: Option<PathBuf>,
        /// Directory holding a trained MiniLM head (minilm_head.json).
        #[arg(long)]
        minilm_head: Option<PathBuf>,
        /// MiniLM model directory (default: $KEEL_MINILM_DIR or ~/.cache/keel/all-MiniLM-L6-v2).
        #[arg(long)]
        minilm_dir: Option<PathBuf>,
        #[arg(long)]
        audit_jsonl: Option<PathBuf>,
        #[arg(long)]
        audit_sqlite: Option<PathBuf>,
    },
    /// Train a classifier on labelled JSONL ({"text": ..., "categories": [...]}).
    Train {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// linear | minilm
        #[arg(long, default_value = "linear")]
        kind: String,
        #[arg(long)]
        minilm_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Quality, robustness and speed on labelled sets.
    Bench {
        /// The shared data/ directory; without it the built-in set is used.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value = "default", value_delimiter = ',')]
        profile: Vec<String>,
        /// Also measure the MiniLM classifier from this model directory.
        #[arg(long)]
        minilm: Option<PathBuf>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 2000)]
        speed_prompts: usize,
        /// Write the report as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the effective policy of a profile stack.
    Explain {
        #[arg(long, default_value = "default", value_delimiter = ',')]
        profile: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Query the audit log (SQLite --db or JSONL --jsonl).
    Audit {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long)]
        jsonl: Option<PathBuf>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Epoch milliseconds, or YYYY-MM-DD[THH:MM:SS] (UTC).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// Print counts by action and category instead of records.
        #[arg(long)]
        count: bool,
    },
}

pub fn run(cmd: GuardCmd) -> Result<()> {
    match cmd {
        GuardCmd::Check {
            text,
            profile,
            scope,
            format,
            batch,
            linear,
            minilm_head,
            minilm_dir,
            audit_jsonl,
            audit_sqlite,
        } => {
            let scope = Scope::parse(&scope)
                .with_context(|| format!("--scope: `{scope}` is not input or output"))?;
            if !["keel", "openai", "llama-guard"].contains(&format.as_str()) {
                bail!("--format: `{format}` is not keel, openai or llama-guard");
            }
            let mut guard = Guard::from_profiles(&profile)?;
            if let Some(dir) = linear {
                guard = guard.with_classifier(Box::new(LinearClassifier::load(&dir)?));
            }
            if let Some(head) = minilm_head {
                let model = find_model(minilm_dir.as_deref()).context(
                    "MiniLM model not found; run scripts/fetch_minilm.sh or pass --minilm-dir",
                )?;
                guard = guard.with_classifier(Box::new(MiniLmClassifier::load(&model, &head)?));
            }
            if audit_jsonl.is_some() || audit_sqlite.is_some() {
                guard = guard.with_audit(AuditLog::open(
                    audit_jsonl.as_deref(),
                    audit_sqlite.as_deref(),
                )?);
            }
            let emit = |v: &Verdict, n: usize| match format.as_str() {
                "openai" => println!("{}", v.to_openai(&format!("modr-keel-{n}"))),
                "llama-guard" => println!("{}", v.to_llama_guard()),
                _ => println!("{}", v.to_keel_json()),
            };
            if let Some(path) = batch {
                let f =
                    std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
                for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
                    let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&line)
                        .with_context(|| format!("{}:{}: invalid JSON", path.display(), i + 1))?;
                    let verdict = if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                        guard.scan_text(t, scope)
                    } else if let Some(m) = v.get("messages") {
                        let msgs: Vec<Message> =
                            serde_json::from_value(m.clone()).with_context(|| {
                                format!(
                                    "{}:{}: field `messages` must be [{{role, content}}]",
                                    path.display(),
                                    i + 1
                                )
                            })?;
                        guard.scan_conversation(&msgs)
                    } else {
                        bail!(
                            "{}:{}: needs a `text` or `messages` field",
                            path.display(),
                            i + 1
                        );
                    };
                    emit(&verdict, i);
                }
            } else {
                let t = match text {
                    Some(t) => t,
                    None => {
                        let mut s = String::new();
                        std::io::stdin()
                            .read_to_string(&mut s)
                            .context("reading stdin")?;
                        s
                    }
                };
                emit(&guard.scan_text(&t, scope), 0);
            }
            Ok(())
        }
        GuardCmd::Train {
            data,
            out,
            kind,
            minilm_dir,
            seed,
        } => {
            let examples = keel_guard::classify::read_jsonl(&data)?;
            let cfg = TrainConfig {
                seed,
                ..Default::default()
            };
            let metrics = match kind.as_str() {
                "linear" => {
                    let mut m = LinearClassifier::train(&examples, &cfg)?;
                    m.save(&out)?;
                    m.meta.metrics
                }
                "minilm" => {
                    let dir = find_model(minilm_dir.as_deref()).context(
                        "MiniLM model not found; run scripts/fetch_minilm.sh or pass --minilm-dir",
                    )?;
                    let m = MiniLmClassifier::train(MiniLm::load(&dir)?, &examples, &cfg)?;
                    m.save(&out)?;
                    m.head.metrics
                }
                other => bail!("--kind: `{other}` is not linear or minilm"),
            };
            println!(
                "trained {kind} on {} examples → {}",
                examples.len(),
                out.display()
            );
            println!("held-out (20%) per category: precision / recall / ECE (support)");
            for m in metrics {
                println!(
                    "  {:<20} {:.2} / {:.2} / {:.3} ({})",
                    m.category, m.precision, m.recall, m.ece, m.support
                );
            }
            Ok(())
        }
        GuardCmd::Bench {
            data,
            profile,
            minilm,
            seed,
            speed_prompts,
            out,
        } => {
            let cfg = keel_guard::bench::BenchConfig {
                data,
                profiles: profile,
                seed,
                minilm,
                speed_prompts,
            };
            let report = keel_guard::bench::run(&cfg, &mut |m| eprintln!("{m}"))?;
            print!("{}", report.render());
            if let Some(p) = out {
                keel_core::artifact::write_json_atomic(&p, &report)?;
            }
            Ok(())
        }
        GuardCmd::Explain { profile, json } => {
            let policy = keel_guard::policy::builtin::load_stack(&profile)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&policy)?);
            } else {
                print!("{}", policy.explain());
            }
            Ok(())
        }
        GuardCmd::Audit {
            db,
            jsonl,
            action,
            category,
            since,
            until,
            limit,
            count,
        } => {
            let q = AuditQuery {
                action,
                category,
                since_ms: since.as_deref().map(parse_time).transpose()?,
                until_ms: until.as_deref().map(parse_time).transpose()?,
                limit,
            };
            let recs = match (db, jsonl) {
                (Some(d), _) => query_sqlite(&d, &q)?,
                (None, Some(j)) => query_jsonl(&j, &q)?,
                (None, None) => bail!("give --db FILE.sqlite or --jsonl FILE.jsonl"),
            };
            if count {
                println!("{}", serde_json::to_string_pretty(&summarize(&recs))?);
            } else {
                for r in recs {
                    println!("{}", serde_json::to_string(&r)?);
                }
            }
            Ok(())
        }
    }
}

/// Epoch milliseconds, or `YYYY-MM-DD[THH:MM[:SS]]` in UTC.
fn parse_time(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || anyhow::anyhow!("time `{s}`: expected epoch ms or YYYY-MM-DD[THH:MM[:SS]]");
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let t: Vec<i64> = time
        .trim_end_matches('Z')
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    if d.len() != 3 || t.len() < 2 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t.get(2).copied().unwrap_or(0);
    Ok(secs * 1000)
}
