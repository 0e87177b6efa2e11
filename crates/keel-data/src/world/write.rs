//! Writing a world to disk.
//!
//! Layout of the output directory (all paths fixed, so later stages can find them):
//!
//! ```text
//! <dir>/manifest.json                  keel_core Manifest: every file, rows, bytes, sha256
//! <dir>/entities.json                  the ground-truth entity table (Entities)
//! <dir>/corpus/train.jsonl             {"text"} pretraining documents
//! <dir>/corpus/validation.jsonl        {"text"} held-out documents, training distribution
//! <dir>/corpus/heldout_phrasing.jsonl  {"text"} the same facts in never-trained phrasings
//! <dir>/tasks/<split>/instructions.jsonl       TaskRow
//! <dir>/tasks/<split>/harmful.jsonl            TaskRow (hazard = "S1".."S14")
//! <dir>/tasks/<split>/benign_sensitive.jsonl   TaskRow (must_include)
//! <dir>/tasks/<split>/unanswerable.jsonl       TaskRow
//! <dir>/tasks/<split>/false_premise.jsonl      TaskRow
//! <dir>/tasks/<split>/preferences.jsonl        PreferenceRow
//! <dir>/tasks/<split>/facts.jsonl              ClozeRow
//! ```
//! with `<split>` one of `train`, `validation`, `test`. Every file is written atomically.

use super::{Split, World};
use crate::error::Result;
use crate::jsonl::write_jsonl;
use keel_core::artifact::write_json_atomic;
use keel_core::manifest::Manifest;
use std::path::{Path, PathBuf};

/// Task bank file stems, in the order they are written.
pub const BANK_FILES: [&str; 7] = [
    "instructions",
    "harmful",
    "benign_sensitive",
    "unanswerable",
    "false_premise",
    "preferences",
    "facts",
];

pub const MANIFEST_FILE: &str = "manifest.json";
pub const ENTITIES_FILE: &str = "entities.json";

/// `<dir>/corpus/<split>.jsonl` (train or validation).
pub fn corpus_path(dir: &Path, split: Split) -> PathBuf {
    dir.join("corpus").join(format!("{split}.jsonl"))
}

/// `<dir>/corpus/heldout_phrasing.jsonl`: the generalisation probe corpus.
pub fn heldout_phrasing_path(dir: &Path) -> PathBuf {
    dir.join("corpus").join("heldout_phrasing.jsonl")
}

/// `<dir>/tasks/<split>/<bank>.jsonl`.
pub fn bank_path(dir: &Path, split: Split, bank: &str) -> PathBuf {
    dir.join("tasks")
        .join(split.as_str())
        .join(format!("{bank}.jsonl"))
}

/// What [`World::write`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldSummary {
    pub dir: PathBuf,
    /// (relative path, rows, bytes) for every file, manifest excluded.
    pub files: Vec<(String, u64, u64)>,
    /// Bytes of document text in the training corpus (without JSON framing).
    pub corpus_train_text_bytes: u64,
    pub entities: usize,
}

impl std::fmt::Display for WorldSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "world written to {} ({} entities, {:.2} MB of training text)",
            self.dir.display(),
            self.entities,
            self.corpus_train_text_bytes as f64 / 1e6
        )?;
        for (path, rows, bytes) in &self.files {
            writeln!(
                f,
                "  {path:<40} {rows:>7} rows {:>10.1} KB",
                *bytes as f64 / 1e3
            )?;
        }
        Ok(())
    }
}

impl World {
    /// Write every file of the world under `dir` (created if needed) and a manifest.
    pub fn write(&self, dir: &Path) -> Result<WorldSummary> {
        let mut rel: Vec<(String, u64)> = Vec::new();
        write_json_atomic(&dir.join(ENTITIES_FILE), &self.entities)?;
        rel.push((
            ENTITIES_FILE.to_string(),
            self.entities.named().len() as u64,
        ));
        for (split, docs) in [
            (Split::Train, &self.corpus.train),
            (Split::Validation, &self.corpus.validation),
        ] {
            let n = write_jsonl(&corpus_path(dir, split), docs)?;
            rel.push((format!("corpus/{split}.jsonl"), n));
        }
        let n = write_jsonl(&heldout_phrasing_path(dir), &self.corpus.heldout_phrasing)?;
        rel.push(("corpus/heldout_phrasing.jsonl".to_string(), n));
        for split in Split::ALL {
            let b = self.banks(split);
            for bank in BANK_FILES {
                let p = bank_path(dir, split, bank);
                let n = match bank {
                    "instructions" => write_jsonl(&p, &b.instructions)?,
                    "harmful" => write_jsonl(&p, &b.harmful)?,
                    "benign_sensitive" => write_jsonl(&p, &b.benign_sensitive)?,
                    "unanswerable" => write_jsonl(&p, &b.unanswerable)?,
                    "false_premise" => write_jsonl(&p, &b.false_premise)?,
                    "preferences" => write_jsonl(&p, &b.preferences)?,
                    _ => write_jsonl(&p, &b.facts)?,
                };
                rel.push((format!("tasks/{split}/{bank}.jsonl"), n));
            }
        }
        let config = serde_json::to_value(&self.config).expect("config serialises");
        let mut manifest = Manifest::new("keel world", Some(self.seed), config);
        for (path, rows) in &rel {
            manifest.add_file(dir, path, Some(*rows))?;
        }
        manifest.write(&dir.join(MANIFEST_FILE))?;
        Ok(WorldSummary {
            dir: dir.to_path_buf(),
            files: manifest
                .files
                .iter()
                .map(|f| (f.path.clone(), f.rows.unwrap_or(0), f.bytes))
                .collect(),
            corpus_train_text_bytes: self.corpus.train.iter().map(|d| d.text.len() as u64).sum(),
            entities: self.entities.named().len(),
        })
    }
}
