//! `keel guard bench`: quality on labelled sets (rules-only, classifier-only, combined),
//! robustness under each obfuscation, and speed on 1k-character prompts.
//!
//! Detection means "some category other than `pii` triggered"; false-block means the action
//! was block or redirect on a benign prompt. Classifiers are trained on one half of the data
//! and every figure is reported on the other half.

pub mod data;
pub mod obfuscate;
pub mod speed;

use crate::classify::linear::LinearClassifier;
use crate::classify::logistic::TrainConfig;
use crate::classify::minilm::{MiniLm, MiniLmClassifier};
use crate::classify::{Example, TextClassifier};
use crate::engine::{Guard, Moderator};
use crate::error::Result;
use crate::policy::{builtin::load_stack, ActionKind, Scope};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The shared `data/` directory; `None` uses the built-in set.
    pub data: Option<PathBuf>,
    pub profiles: Vec<String>,
    pub seed: u64,
    /// MiniLM model directory; `None` skips the embedding classifier.
    pub minilm: Option<PathBuf>,
    /// Number of 1k-character prompts for the speed test.
    pub speed_prompts: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub recall: f32,
    pub recall_by_category: BTreeMap<String, f32>,
    /// Same-category recall: the labelled category itself triggered.
    pub strict_recall_by_category: BTreeMap<String, f32>,
    pub false_positive_rate: f32,
    pub false_block_rate: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub data: String,
    pub train: (usize, usize),
    pub test: (usize, usize),
    pub profiles: Vec<String>,
    pub quality: BTreeMap<String, Quality>,
    /// mode → obfuscation → (recall, recall / plain recall).
    pub robustness: BTreeMap<String, BTreeMap<String, (f32, f32)>>,
    pub speed: BTreeMap<String, speed::Speed>,
    pub classifier_heldout: BTreeMap<String, Vec<crate::classify::CategoryMetrics>>,
    pub notes: Vec<String>,
}

fn detected(g: &Guard, text: &str) -> (bool, crate::verdict::Verdict) {
    let v = g.scan_text(text, Scope::Input);
    (v.categories.iter().any(|c| c != "pii"), v)
}

pub fn quality(g: &Guard, harmful: &[Example], benign: &[Example]) -> Quality {
    let mut per: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut hit = 0;
    for e in harmful {
        let (d, v) = detected(g, &e.text);
        hit += d as usize;
        let cat = e.categories.first().cloned().unwrap_or_default();
        let s = per.entry(cat.clone()).or_default();
        s.0 += 1;
        s.1 += d as usize;
        s.2 += v.categories.contains(&cat) as usize;
    }
    let (mut fp, mut fb) = (0, 0);
    for e in benign {
        let (d, v) = detected(g, &e.text);
        fp += d as usize;
        fb += matches!(v.action, ActionKind::Block | ActionKind::Redirect) as usize;
    }
    let r = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    Quality {
        recall: r(hit, harmful.len()),
        recall_by_category: per.iter().map(|(k, s)| (k.clone(), r(s.1, s.0))).collect(),
        strict_recall_by_category: per.iter().map(|(k, s)| (k.clone(), r(s.2, s.0))).collect(),
        false_positive_rate: r(fp, benign.len()),
        false_block_rate: r(fb, benign.len()),
    }
}

fn recall(g: &Guard, texts: &[String]) -> f32 {
    let hit = texts.iter().filter(|t| detected(g, t).0).count();
    hit as f32 / texts.len().max(1) as f32
}

/// A guard for `profiles` whose categories only use `detectors`.
fn restricted(profiles: &[String], detectors: &[&str]) -> Result<Guard> {
    let mut p = load_stack(profiles)?;
    for c in &mut p.categories {
        c.detectors
            .retain(|d| detectors.contains(&d.as_str()) || d.starts_with("pii."));
    }
    Guard::new(p)
}

pub fn run(cfg: &BenchConfig, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let mut notes = Vec::new();
    let (harmful, benign, label) = match &cfg.data {
        Some(root) => {
            let (h, b) = data::shared(root)?;
            (h, b, root.display().to_string())
        }
        None => {
            let all = data::builtin();
            let (h, b): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| !e.categories.is_empty());
            notes.push(
                "built-in set (68 prompts): figures are a smoke test, not a measurement".into(),
            );
            (h, b, "builtin".to_string())
        }
    };
    let (h_train, h_test) = data::split(&harmful, cfg.seed, "guard-bench-harmful");
    let (b_train, b_test) = data::split(&benign, cfg.seed, "guard-bench-benign");
    let train: Vec<Example> = h_train.iter().chain(&b_train).cloned().collect();
    log(&format!(
        "train {} harmful + {} benign; test {} + {}",
        h_train.len(),
        b_train.len(),
        h_test.len(),
        b_test.len()
    ));

    let tcfg = TrainConfig {
        seed: cfg.seed,
        ..Default::default()
    };
    let linear = LinearClassifier::train(&train, &tcfg)?;
    let mut heldout = BTreeMap::new();
    heldout.insert("linear".to_string(), linear.meta.metrics.clone());
    let linear_model = std::sync::Arc::new(linear);

    let minilm: Option<MiniLmClassifier> = match &cfg.minilm {
        Some(dir) => {
            log("embedding training set with MiniLM…");
            let m = MiniLmClassifier::train(MiniLm::load(dir)?, &train, &tcfg)?;
            heldout.insert("minilm".to_string(), m.head.metrics.clone());
            Some(m)
        }
        None => {
            notes.push("MiniLM not given (--minilm DIR): embedding classifier not measured".into());
            None
        }
    };
    let minilm = minilm.map(std::sync::Arc::new);
    let with = |g: Guard, lin: bool, mini: bool| {
        let mut g = g;
        if lin {
            g = g.with_classifier(Box::new(Shared(linear_model.clone())));
        }
        if let (true, Some(m)) = (mini, &minilm) {
            g = g.with_classifier(Box::new(Shared(m.clone())));
        }
        g
    };
    let mut modes: Vec<(String, Guard)> = vec![
        ("rules".into(), restricted(&cfg.profiles, &["rules"])?),
        (
            "linear".into(),
            with(restricted(&cfg.profiles, &["linear"])?, true, false),
        ),
        (
            "rules+linear".into(),
            with(
                restricted(&cfg.profiles, &["rules", "linear"])?,
                true,
                false,
            ),
        ),
    ];
    if minilm.is_some() {
        modes.push((
            "minilm".into(),
            with(restricted(&cfg.profiles, &["minilm"])?, false, true),
        ));
        modes.push((
            "rules+linear+minilm".into(),
            with(
                restricted(&cfg.profiles, &["rules", "linear", "minilm"])?,
                true,
                true,
            ),
        ));
    }

    let mut quality_map = BTreeMap::new();
    let mut robustness = BTreeMap::new();
    for (name, g) in &modes {
        log(&format!("quality: {name}"));
        let q = quality(g, &h_test, &b_test);
        let plain = q.recall;
        quality_map.insert(name.clone(), q);
        let mut rob = BTreeMap::new();
        for kind in obfuscate::ALL {
            let mut rng = keel_core::rng::rng_for(cfg.seed, &format!("guard-obfuscate-{kind}"));
            let texts: Vec<String> = h_test
                .iter()
                .map(|e| obfuscate::apply(kind, &e.text, &mut rng))
                .collect();
            let r = recall(g, &texts);
            rob.insert(
                kind.to_string(),
                (r, if plain > 0.0 { r / plain } else { 0.0 }),
            );
        }
        robustness.insert(name.clone(), rob);
    }

    log("speed…");
    let prompts = speed::prompts_1k(&harmful, &benign, cfg.speed_prompts, cfg.seed);
    let mut speed_map = BTreeMap::new();
    for (name, g) in &modes {
        let n = if name.contains("minilm") {
            prompts.len().min(50)
        } else {
            prompts.len()
        };
        let mut sp = speed::measure(g, &prompts[..n]);
        if name.contains("minilm") {
            // MiniLM embeds on worker threads: this thread's CPU time undercounts the work.
            sp.cpu_checks_per_s = None;
        }
        speed_map.insert(name.clone(), sp);
    }
    Ok(Report {
        data: label,
        train: (h_train.len(), b_train.len()),
        test: (h_test.len(), b_test.len()),
        profiles: cfg.profiles.clone(),
        quality: quality_map,
        robustness,
        speed: speed_map,
        classifier_heldout: heldout,
        notes,
    })
}

/// Lets several guards share one trained classifier.
struct Shared<T>(std::sync::Arc<T>);

impl<T: TextClassifier> TextClassifier for Shared<T> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn categories(&self) -> &[String] {
        self.0.categories()
    }
    fn predict(&self, text: &str) -> Vec<f32> {
        self.0.predict(text)
    }
}

impl Report {
    /// The report as a readable table.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "data: {}   profiles: default{}",
            self.data,
            self.profiles
                .iter()
                .filter(|p| *p != "default")
                .map(|p| format!(",{p}"))
                .collect::<String>()
        );
        let _ = writeln!(
            s,
            "train: {} harmful / {} benign   test: {} harmful / {} benign",
            self.train.0, self.train.1, self.test.0, self.test.1
        );
        let _ = writeln!(
            s,
            "\nquality (test half)        recall   FP-rate  false-block"
        );
        for (m, q) in &self.quality {
            let _ = writeln!(
                s,
                "  {m:<24} {:>6.1}%  {:>6.1}%  {:>6.1}%",
                q.recall * 100.0,
                q.false_positive_rate * 100.0,
                q.false_block_rate * 100.0
            );
        }
        if let Some((m, q)) = self.quality.iter().last() {
            let _ = writeln!(
                s,
                "\nrecall by labelled category ({m}): any-category / same-category"
            );
            for (c, r) in &q.recall_by_category {
                let _ = writeln!(
                    s,
                    "  {c:<20} {:>6.1}% / {:>6.1}%",
                    r * 100.0,
                    q.strict_recall_by_category[c] * 100.0
                );
            }
        }
        let _ = writeln!(
            s,
            "\nrobustness: recall under obfuscation (ratio to plain recall; target ≥ 0.95)"
        );
        for (m, rob) in &self.robustness {
            let cells: Vec<String> = rob
                .iter()
                .map(|(k, (r, ratio))| format!("{k} {:.1}% ({ratio:.2})", r * 100.0))
                .collect();
            let _ = writeln!(s, "  {m}: {}", cells.join(", "));
        }
        let _ = writeln!(
            s,
            "\nspeed on ~1000-char prompts, one thread (checks/s by wall clock; by CPU time)"
        );
        for (m, sp) in &self.speed {
            let cpu = sp
                .cpu_checks_per_s
                .map_or(String::new(), |c| format!("; {c:>7.0} per CPU-s"));
            let _ = writeln!(
                s,
                "  {m:<24} p50 {:>8.1} µs  p99 {:>8.1} µs  {:>9.0} checks/s{cpu}  (n={})",
                sp.p50_us, sp.p99_us, sp.checks_per_s, sp.n
            );
        }
        for (k, mets) in &self.classifier_heldout {
            let _ = writeln!(
                s,
                "\n{k} classifier, calibration hold-out (P / R / ECE, support):"
            );
            for m in mets {
                let _ = writeln!(
                    s,
                    "  {:<20} {:.2} / {:.2} / {:.3}  ({})",
                    m.category, m.precision, m.recall, m.ece, m.support
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}
