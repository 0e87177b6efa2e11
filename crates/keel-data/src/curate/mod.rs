//! Dataset curation: filters, deduplication, decontamination and mixing, with a report.
//!
//! [`curate`] runs each row through these stages in order; a row is dropped by the first
//! stage it fails, and counted under that [`DropReason`]:
//!
//! 1. length (words, characters) — `too_short` / `too_long`;
//! 2. character classes — `bad_characters` (control / U+FFFD), `low_alpha`;
//! 3. quality of the assistant text (Gopher rules) — `low_quality`, `repetitive`;
//! 4. decontamination against eval sets (13-gram, 8-gram for short items) — `contaminated`;
//! 5. exact duplicates after whitespace/case normalisation — `exact_duplicate`;
//! 6. near duplicates (MinHash + LSH, exact Jaccard ≥ threshold) — `near_duplicate`;
//! 7. mixing by category ratio — `mix_excluded` (no ratio), `mix_downsampled`.
//!
//! Decontamination comes before deduplication so every copy of a leaked item is reported as
//! contaminated; the first copy of a duplicate group is the one kept.

pub mod decontam;
pub mod filters;
pub mod minhash;
pub mod mix;
pub mod report;
pub mod rows;
pub mod text;

pub use decontam::{DecontamConfig, EvalSet};
pub use report::{CurateReport, DroppedRow};
pub use rows::{mix_group, CurateRow};

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Why a row was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    TooShort,
    TooLong,
    BadCharacters,
    LowAlpha,
    LowQuality,
    Repetitive,
    Contaminated,
    ExactDuplicate,
    NearDuplicate,
    MixExcluded,
    MixDownsampled,
}

/// Curation settings. Defaults keep every well-formed row of Keel's world except duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CurateConfig {
    pub seed: u64,
    pub min_words: usize,
    pub max_words: usize,
    pub min_chars: usize,
    pub max_chars: usize,
    pub max_bad_char_ratio: f64,
    pub min_alpha_char_ratio: f64,
    /// Quality rules apply to assistant texts of at least this many words.
    pub repetition_min_words: usize,
    pub min_alpha_word_ratio: f64,
    pub max_dup_5gram_ratio: f64,
    pub max_dup_line_ratio: f64,
    pub exact_dedup: bool,
    pub near_dedup: bool,
    /// Exact Jaccard of word shingles at or above which two rows are near duplicates.
    pub near_threshold: f64,
    pub shingle_words: usize,
    pub lsh_bands: usize,
    pub lsh_rows: usize,
    pub decontam: DecontamConfig,
    /// Target share per mix group (see [`mix_group`]); `None` keeps every category.
    pub mix: Option<BTreeMap<String, f64>>,
    /// Dropped rows shown per reason in the report.
    pub examples_per_reason: usize,
}

impl Default for CurateConfig {
    fn default() -> Self {
        CurateConfig {
            seed: 0,
            min_words: 2,
            max_words: 8192,
            min_chars: 4,
            max_chars: 65_536,
            max_bad_char_ratio: 0.0,
            min_alpha_char_ratio: 0.25,
            repetition_min_words: 50,
            min_alpha_word_ratio: 0.8,
            max_dup_5gram_ratio: 0.15,
            max_dup_line_ratio: 0.3,
            exact_dedup: true,
            near_dedup: true,
            near_threshold: 0.8,
            shingle_words: 5,
            lsh_bands: 16,
            lsh_rows: 8,
            decontam: DecontamConfig::default(),
            mix: None,
            examples_per_reason: 3,
        }
    }
}

/// Kept rows (in input order), every dropped row, and the report.
#[derive(Debug, Clone)]
pub struct CurateOutcome {
    pub kept: Vec<CurateRow>,
    pub dropped: Vec<DroppedRow>,
    pub report: CurateReport,
}

/// Curate `rows` against `eval_sets`. Deterministic for a given `cfg.seed`.
pub fn curate(
    rows: Vec<CurateRow>,
    cfg: &CurateConfig,
    eval_sets: &[EvalSet],
) -> Result<CurateOutcome> {
    let n_in = rows.len();
    let mut verdicts: Vec<Option<(DropReason, String)>> = vec![None; n_in];
    let texts: Vec<String> = rows.iter().map(CurateRow::text).collect();
    for (i, r) in rows.iter().enumerate() {
        verdicts[i] = filters::length(cfg, &texts[i])
            .or_else(|| filters::char_class(cfg, &texts[i]))
            .or_else(|| filters::quality(cfg, &r.assistant_text()));
    }
    let deco = decontam::Decontaminator::new(eval_sets, cfg.decontam);
    for (i, v) in verdicts.iter_mut().enumerate() {
        if v.is_none() {
            *v = deco.check(&texts[i]).map(|c| {
                (
                    DropReason::Contaminated,
                    format!("{}[{}] shares \"{}\"", c.eval_set, c.eval_index, c.ngram),
                )
            });
        }
    }
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut lsh = minhash::LshIndex::new(cfg.seed, cfg.lsh_bands, cfg.lsh_rows, cfg.near_threshold);
    let mut lsh_row: Vec<usize> = Vec::new();
    for i in 0..n_in {
        if verdicts[i].is_some() {
            continue;
        }
        if cfg.exact_dedup {
            let key = text::normalise(&texts[i]);
            if let Some(&j) = first_seen.get(&key) {
                verdicts[i] = Some((
                    DropReason::ExactDuplicate,
                    format!("same text as {}", rows[j].source),
                ));
                continue;
            }
            first_seen.insert(key, i);
        }
        if cfg.near_dedup {
            let set = text::shingles(&text::words(&texts[i]), cfg.shingle_words);
            match lsh.check_and_insert(set) {
                Ok(_) => lsh_row.push(i),
                Err((id, j)) => {
                    verdicts[i] = Some((
                        DropReason::NearDuplicate,
                        format!("Jaccard {j:.3} with {}", rows[lsh_row[id]].source),
                    ));
                }
            }
        }
    }
    if let Some(ratios) = &cfg.mix {
        let live: Vec<usize> = (0..n_in).filter(|&i| verdicts[i].is_none()).collect();
        let groups: Vec<String> = live.iter().map(|&i| rows[i].group()).collect();
        let cats: Vec<&str> = groups.iter().map(String::as_str).collect();
        let keep = mix::select(&cats, ratios, cfg.seed)?;
        for ((&i, g), k) in live.iter().zip(&groups).zip(keep) {
            if k {
                continue;
            }
            verdicts[i] = Some(if ratios.get(g).is_some_and(|r| *r > 0.0) {
                (
                    DropReason::MixDownsampled,
                    format!("group {g} above its share"),
                )
            } else {
                (DropReason::MixExcluded, format!("group {g} has no ratio"))
            });
        }
    }
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut groups_in: BTreeMap<String, usize> = BTreeMap::new();
    for ((row, v), t) in rows.into_iter().zip(verdicts).zip(&texts) {
        *groups_in.entry(row.group()).or_insert(0) += 1;
        match v {
            None => kept.push(row),
            Some((reason, detail)) => dropped.push(DroppedRow {
                source: row.source.clone(),
                category: row.category.clone(),
                reason,
                detail,
                text: text::preview(t, 300),
            }),
        }
    }
    let report = CurateReport::build(cfg, n_in, &kept, &dropped, groups_in, deco.summary());
    Ok(CurateOutcome {
        kept,
        dropped,
        report,
    })
}
